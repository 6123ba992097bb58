"""The benchmark itself: every provider at 1, 10 and 50 devices (scripts/bench).

Not part of the test suite (its name does not start with test_): scripts/bench
runs it in the form that EV_CLOUD_BENCH names and writes the figures to
EV_CLOUD_BENCH_OUTPUT (default .bench/results.json) after each case. Each case
runs through the story twice: on the frozen clock for the figures that must come
out the same every time, and on the shifted clock for CPU and setup times (see
tests/bench/harness.py). The full form measures memory in a third run of each
case through the short story (tracemalloc slows everything down several times,
so that run's other figures are not used).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
import json
import logging
import os
from pathlib import Path
import platform

from freezegun.api import FrozenDateTimeFactory
from homeassistant import const as ha_const
from homeassistant.core import HomeAssistant
import pytest

from custom_components.ev_cloud.providers import PROVIDERS

from .charger_link import LINKED_PROVIDERS, ChargedAtHomeDriver, LinkFigures
from .drivers import driver_for
from .harness import BenchRun, Result
from .story import LINK_STORY, SIZES, STORIES, Form, form_from_environment

FORM = form_from_environment()
STORY = STORIES[FORM]
OUTPUT = Path(os.environ.get("EV_CLOUD_BENCH_OUTPUT", ".bench/results.json"))
CASES = [(provider, devices) for provider in PROVIDERS for devices in SIZES]
LINK_CASES = [
    (provider, linked) for provider in LINKED_PROVIDERS for linked in (False, True)
]


@dataclass
class Collected:
    """The runs' figures, and the memory runs' peaks."""

    results: dict[tuple[str, int], Result] = field(default_factory=dict)
    timed: dict[tuple[str, int], Result] = field(default_factory=dict)
    peaks: dict[tuple[str, int], float | None] = field(default_factory=dict)
    links: dict[tuple[str, bool], LinkFigures] = field(default_factory=dict)

    def write(self) -> None:
        """Write the JSON file (in the cases' order)."""
        results = [
            replace(
                self.results[case].with_times(self.timed.get(case)),
                peak_memory_kib=self.peaks.get(case),
            )
            for case in CASES
            if case in self.results
        ]
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "form": FORM.value,
            "home_assistant": ha_const.__version__,
            "python": platform.python_version(),
            "machine": f"{cpu_model()}, {os.cpu_count()} CPUs",
            "date": datetime.now(UTC).date().isoformat(),
            "hours": STORY.hours,
            "story": [
                {"phase": phase.name, "hours": phase.seconds / 3600}
                for phase in STORY.phases
            ],
            "results": [result.as_dict() for result in results],
            "link_story": [
                {"phase": phase.name, "hours": phase.seconds / 3600}
                for phase in LINK_STORY.phases
            ],
            "link_charge_hours": LINK_STORY.charging().seconds
            * LINK_STORY.charge_share
            / 3600,
            "links": [
                self.links[case].as_dict() for case in LINK_CASES if case in self.links
            ],
        }
        OUTPUT.write_text(json.dumps(document, indent=2) + "\n")


def cpu_model() -> str:
    """The processor's name (Linux), or what the platform says."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


@pytest.fixture(scope="module")
def collected() -> Iterator[Collected]:
    """Every run's figures; the JSON file is written after each test."""
    runs = Collected()
    yield runs
    runs.write()


@pytest.fixture(autouse=True)
def write_after_each(collected: Collected) -> Iterator[None]:
    """Keep the file current, so that a stopped run leaves what it measured."""
    yield
    collected.write()


def integration_warnings(caplog: pytest.LogCaptureFixture) -> int:
    """Log records of EV Cloud at WARNING and above."""
    return sum(
        1
        for record in caplog.records
        if record.name.startswith("custom_components.ev_cloud")
        and record.levelno >= logging.WARNING
    )


@pytest.mark.parametrize(("provider", "devices"), CASES)
async def test_bench(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    caplog: pytest.LogCaptureFixture,
    collected: Collected,
    provider: str,
    devices: int,
) -> None:
    """One provider at one size through the story (the frozen clock)."""
    # What a user's Home Assistant logs by default: no debug records.
    caplog.set_level(logging.INFO)
    driver = driver_for(provider, devices, STORY)
    result = await BenchRun(hass, freezer, driver, STORY).async_run()
    result.integration_warnings = integration_warnings(caplog)
    collected.results[provider, devices] = result


@pytest.mark.parametrize(("provider", "devices"), CASES)
async def test_bench_times(
    hass: HomeAssistant,
    socket_enabled: None,
    caplog: pytest.LogCaptureFixture,
    collected: Collected,
    provider: str,
    devices: int,
) -> None:
    """The case again on the shifted clock: its CPU and setup times."""
    caplog.set_level(logging.INFO)
    driver = driver_for(provider, devices, STORY)
    collected.timed[provider, devices] = await BenchRun(
        hass, None, driver, STORY
    ).async_run()


@pytest.mark.skipif(FORM is not Form.FULL, reason="the full form measures memory")
@pytest.mark.parametrize(("provider", "devices"), CASES)
async def test_bench_memory(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    caplog: pytest.LogCaptureFixture,
    collected: Collected,
    provider: str,
    devices: int,
) -> None:
    """The case again through the short story, with tracemalloc: peak memory."""
    caplog.set_level(logging.INFO)
    story = STORIES[Form.SHORT]
    driver = driver_for(provider, devices, story)
    run = BenchRun(hass, freezer, driver, story)
    result = await run.async_run(trace_memory=True)
    collected.peaks[provider, devices] = result.peak_memory_kib


@pytest.mark.parametrize(("provider", "linked"), LINK_CASES)
async def test_bench_link(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    socket_enabled: None,
    caplog: pytest.LogCaptureFixture,
    collected: Collected,
    provider: str,
    linked: bool,
) -> None:
    """A car charged at home by a go-e charger, linked to it or not."""
    caplog.set_level(logging.INFO)
    driver = ChargedAtHomeDriver(provider, LINK_STORY, linked=linked)
    run = BenchRun(hass, freezer, driver, LINK_STORY)
    result = await run.async_run()
    collected.links[provider, linked] = LinkFigures.of(run, result)
