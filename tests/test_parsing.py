"""The shared readers of JSON values (api/parsing.py)."""

from __future__ import annotations

from datetime import UTC, datetime
import math
from typing import Any

import pytest

from custom_components.ev_cloud.api.parsing import (
    MAX_DETAIL,
    boolean,
    clean_detail,
    enum_key,
    integer,
    text,
    utc_datetime,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (-7, -7),
        (2**63 + 1, 2**63 + 1),  # exact, not through a float
        (42.0, 42),
        (42.5, None),
        (math.inf, None),
        (math.nan, None),
        (True, None),
        ("42", None),
        (None, None),
        ([1], None),
    ],
)
def test_integer(value: Any, expected: int | None) -> None:
    """Whole JSON numbers; booleans, strings and fractions are not integers."""
    assert integer(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), (1, None), ("true", None), (None, None)],
)
def test_boolean(value: Any, expected: bool | None) -> None:
    """Only JSON true and false."""
    assert boolean(value) is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Zoe", "Zoe"), ("  Zoe \n", "Zoe"), ("", None), ("   ", None), (5, None)],
)
def test_text(value: Any, expected: str | None) -> None:
    """A string with something in it, stripped."""
    assert text(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "2024-04-17T09:39:45.984584Z",
            datetime(2024, 4, 17, 9, 39, 45, 984584, tzinfo=UTC),
        ),
        ("2025-05-20T17:48:12+02:00", datetime(2025, 5, 20, 15, 48, 12, tzinfo=UTC)),
        ("2026-01-02 03:04:05", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),  # naive
        ("yesterday", None),
        ("", None),
        (1_700_000_000, None),
        (None, None),
    ],
)
def test_utc_datetime(value: Any, expected: datetime | None) -> None:
    """ISO 8601 date-times in UTC; a naive one is taken as UTC."""
    parsed = utc_datetime(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "choices", "expected"),
    [
        ("PLUGGED_IN_COMPLETE", ("plugged_in_complete",), "plugged_in_complete"),
        ("Load match", ("load_match",), "load_match"),
        ("Deep  sleep", ("deep_sleep",), "deep_sleep"),
        ("PLUGGED_IN:FAULT", ("plugged_in_fault",), "plugged_in_fault"),
        ("Three-phase ", ("three_phase",), "three_phase"),
        ("FLYING", ("driving",), None),
        (3, ("3",), None),
        (None, ("none",), None),
    ],
)
def test_enum_key(value: Any, choices: tuple[str, ...], expected: str | None) -> None:
    """Enum values as lower-case keys; values not among the choices are None."""
    assert enum_key(value, choices) == expected


def test_clean_detail() -> None:
    """Secrets masked, queries dropped, white space folded, length capped."""
    detail = (
        "Bad token tok-123 at https://api.example.com/v2/x?key=tok-123&a=1 "
        "(see https://example.com/help#part)\n\t again"
    )
    assert clean_detail(detail, "tok-123", "") == (
        "Bad token *** at https://api.example.com/v2/x "
        "(see https://example.com/help again"
    )
    assert clean_detail("no secrets here") == "no secrets here"
    long = clean_detail("x" * (MAX_DETAIL + 50))
    assert len(long) == MAX_DETAIL
    assert long.endswith("…")
    assert clean_detail("y" * MAX_DETAIL) == "y" * MAX_DETAIL
