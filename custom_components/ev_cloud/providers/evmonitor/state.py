"""EV-Monitor: what the entities of a logbook connection show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class LogbookStatus:
    """The upload queue and how the last upload went."""

    queued: int
    last_upload: datetime | None
    last_error: str | None
    uploaded: int
    dropped: int
    # The EV-Monitor vehicle's make and model names, once read.
    model: str | None
