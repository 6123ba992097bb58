"""Reading values out of a service's JSON, the same way in every client.

Each reader returns None for a missing or mistyped value instead of raising, so
that one odd field never costs a whole answer. `clean_detail` makes a server's
text fit for an error message.
"""

from __future__ import annotations

from datetime import UTC, datetime
import math
import re
from typing import Any

# The longest server text an error message repeats.
MAX_DETAIL = 300
_URL_QUERY = re.compile(r"(https?://[^\s?#]*)[?#]\S*", re.IGNORECASE)
_SEPARATORS = re.compile(r"[\s:-]+")


def integer(value: Any) -> int | None:
    """A JSON integer (a whole float too); booleans and strings are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return None


def boolean(value: Any) -> bool | None:
    """A JSON true or false; nothing else counts."""
    return value if isinstance(value, bool) else None


def text(value: Any) -> str | None:
    """A string with something in it, stripped; a blank one is None."""
    if not isinstance(value, str):
        return None
    return value.strip() or None


def utc_datetime(value: Any) -> datetime | None:
    """An ISO 8601 date-time ("2024-04-17T09:39:45.984584Z") in UTC; naive is UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def enum_key(value: Any, choices: tuple[str, ...]) -> str | None:
    """An enum value as a lower-case key: "Load match" -> "load_match".

    Spaces, "-" and ":" become one "_" ("PLUGGED_IN:FAULT" -> "plugged_in_fault").
    A value not among `choices` (one the service added later) and anything that
    is not a string are None.
    """
    if not isinstance(value, str):
        return None
    key = _SEPARATORS.sub("_", value.strip()).lower()
    return key if key in choices else None


def clean_detail(detail: str, *secrets: str) -> str:
    """A server text fit for an error message: no secret, no query, not too long.

    Each secret becomes "***"; a URL keeps its path but loses query and fragment
    (they may hold credentials); white space is folded; at most MAX_DETAIL
    characters.
    """
    for secret in secrets:
        if secret:
            detail = detail.replace(secret, "***")
    detail = _URL_QUERY.sub(r"\1", detail)
    detail = " ".join(detail.split())
    return detail if len(detail) <= MAX_DETAIL else detail[: MAX_DETAIL - 1] + "…"
