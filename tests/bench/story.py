"""The day every benchmark device lives through, and the two lengths of it.

Every device of a run follows the same story at the same moments (the worst case
for bursts): parked, driving, charging (plugged in; the battery is full a
quarter before the phase ends, then it waits plugged in), parked. A vehicle's
service gets a fresh report from the car every `ACTIVE_REPORT` seconds while it
drives or charges and every `PARKED_REPORT` seconds otherwise (our assumption of
a typical telematics cadence; no service documents its own); a go-e charger
pushes its status to the cloud all the time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
import os
from typing import Final

PARKED = "parked"
DRIVING = "driving"
CHARGING = "charging"

ACTIVE_REPORT: Final = 60
PARKED_REPORT: Final = 600
# Driving speed (km/h) and consumption (kWh per km) of every simulated car.
SPEED_KMH: Final = 50.0
KWH_PER_KM: Final = 0.16
# The battery is full after this share of the charging phase.
CHARGE_SHARE: Final = 0.75
# Home Assistant's (frozen) clock and every simulator's start here.
START: Final = datetime(2027, 1, 4, tzinfo=UTC)
# Home Assistant's clock stops at least this often (seconds).
SAMPLE_EVERY: Final = 60
# Seconds between the samples of the data age Home Assistant shows.
AGE_SAMPLE_EVERY: Final = 10


@dataclass(frozen=True)
class Phase:
    """A part of the story: what every device does from `start` for `seconds`."""

    name: str
    start: int
    seconds: int

    @property
    def end(self) -> int:
        """Seconds after the start of the story when the phase ends."""
        return self.start + self.seconds


@dataclass(frozen=True)
class Story:
    """Phases one after the other, from the start of the day.

    `charge_share`: the share of the charging phase after which the battery is
    full (then the car waits plugged in).
    """

    phases: tuple[Phase, ...]
    charge_share: float = CHARGE_SHARE

    @classmethod
    def of(cls, *parts: tuple[str, float], charge_share: float = CHARGE_SHARE) -> Story:
        """A story from (phase name, hours) pairs."""
        phases: list[Phase] = []
        start = 0
        for name, hours in parts:
            seconds = round(hours * 3600)
            phases.append(Phase(name, start, seconds))
            start += seconds
        return cls(tuple(phases), charge_share)

    @property
    def seconds(self) -> int:
        """The length of the story."""
        return self.phases[-1].end

    @property
    def hours(self) -> float:
        """The length of the story in hours."""
        return self.seconds / 3600

    def phase_at(self, t: float) -> Phase:
        """The phase at `t` seconds (the last one from its end on)."""
        for phase in self.phases:
            if t < phase.end:
                return phase
        return self.phases[-1]

    def charging(self) -> Phase:
        """The charging phase."""
        return next(phase for phase in self.phases if phase.name == CHARGING)

    def report_every(self, t: float) -> int:
        """Seconds between a car's reports to its service at `t`."""
        phase = self.phase_at(t)
        if phase.name == DRIVING:
            return ACTIVE_REPORT
        if (
            phase.name == CHARGING
            and t < phase.start + self.charge_share * phase.seconds
        ):
            return ACTIVE_REPORT
        return PARKED_REPORT

    def boundaries(self) -> list[int]:
        """When a phase starts (seconds from the start)."""
        return [phase.start for phase in self.phases]


class Form(StrEnum):
    """How much of the benchmark runs."""

    FULL = "full"  # 1, 10 and 50 devices, a day of 24 hours (scripts/bench)
    SHORT = "short"  # the same sizes, a story of one hour (CI, the budget tests)


SIZES: Final = (1, 10, 50)
STORIES: Final = {
    Form.FULL: Story.of((PARKED, 8), (DRIVING, 1), (CHARGING, 4), (PARKED, 11)),
    Form.SHORT: Story.of(
        (PARKED, 1 / 6), (DRIVING, 1 / 6), (CHARGING, 0.5), (PARKED, 1 / 6)
    ),
}
# The day of a car charged at home by a charger (`charger_link.py`), in both
# forms (a day costs a few seconds): it comes home at 18:00, charges until
# about 23:00, waits plugged in, leaves at 07:00 and comes back the next evening
# (the story starts at 17:00, on the way home).
LINK_STORY: Final = Story.of(
    (DRIVING, 1), (CHARGING, 13), (DRIVING, 1), (PARKED, 9), charge_share=5 / 13
)
# scripts/bench sets it; "short" unless it says "full".
FORM_VARIABLE: Final = "EV_CLOUD_BENCH"


def form_from_environment() -> Form:
    """The form scripts/bench asked for."""
    value = os.environ.get(FORM_VARIABLE, Form.SHORT.value).strip().lower()
    return Form.FULL if value == Form.FULL.value else Form.SHORT
