"""Home Assistant's log: records, and the warnings and errors about ev_cloud."""

from collections.abc import Iterable
import os
from pathlib import Path
import re

from .common import DOMAIN

LOG_RECORD_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
# Expected once per start for every custom integration; not a problem of ours.
UNTESTED_WARNING = "has not been tested by Home Assistant"

MENTIONS_DOMAIN_RE = re.compile(rf"\b{DOMAIN}\b")


def mentions_ev_cloud(header: str) -> bool:
    """True for a log record from our loggers or about ev_cloud.

    That covers custom_components.ev_cloud's own loggers, "... for ev_cloud"
    (entry setup), "custom integration 'ev_cloud' ..." (deprecations that HA's
    frame helper reports) and "Setup of ev_cloud is taking ...".
    """
    return MENTIONS_DOMAIN_RE.search(header) is not None


def log_records(lines: Iterable[str]) -> list[list[str]]:
    """Group log lines into records: a header line and its continuation lines."""
    records: list[list[str]] = []
    for line in lines:
        if LOG_RECORD_RE.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)  # a traceback or multi-line message
    return records


def ev_cloud_problems(
    log: Path, *, include_tracebacks: bool = False
) -> list[list[str]]:
    """Warning/error records (with tracebacks) about ev_cloud from HA's log.

    With ``include_tracebacks``, also records of any logger whose traceback runs
    through custom_components/ev_cloud (an exception escaping into HA's core).
    """
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for record in log_records(lines):
        header = record[0]
        if not any(
            f" {level} " in header for level in ("WARNING", "ERROR", "CRITICAL")
        ):
            continue
        if UNTESTED_WARNING in header:
            continue
        ours = mentions_ev_cloud(header)
        if include_tracebacks and not ours:
            ours = any(f"custom_components/{DOMAIN}/" in line for line in record[1:])
        if ours:
            found.append(record)
    return found


def last_log_record(path: Path) -> str:
    """Return the last record line of a log file (for progress messages)."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 16384))
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    records = [line for line in lines if LOG_RECORD_RE.match(line)]
    return (records or lines or [""])[-1][:160]
