"""The budgets the benchmark's figures must meet, in its short form (every test run).

Each provider at 1, 10 and 50 devices goes once through the short story (see
`story.py`, one simulated hour) at its default options; the tests share these
runs. A budget that EV Cloud does not meet yet is a strict xfail that says what
was measured, so that a fix shows up as an unexpected pass. EVLinkHA's allowance
at 1 and 2 vehicles, in any 30 days of 45, is tested in
tests/evlinkha/test_integration.py
(`test_free_tier_stays_within_300_calls_in_any_30_days`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
import contextlib
import importlib
import logging
import os
import pkgutil
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest

from custom_components import ev_cloud
from custom_components.ev_cloud.providers import PROVIDERS

from .charger_link import LINKED_PROVIDERS, ChargedAtHomeDriver, LinkFigures
from .drivers import DRIVERS, driver_for
from .harness import BenchRun, Result
from .story import LINK_STORY, SIZES, STORIES, Form

STORY = STORIES[Form.SHORT]
# Event-loop CPU per device update (median), at 10 devices per account.
CPU_BUDGET_MS = 1.0
CPU_DEVICES = 10
CPU_ATTEMPTS = 3
# EVLinkHA's free tier reads every 2.4 hours: no update in the short story. For
# its CPU, an allowance that lets it read at the shortest intervals (the cost
# of an update does not depend on how often it comes).
CPU_OPTIONS: Mapping[str, Mapping[str, Any]] = {
    "evlinkha": {
        "allowance_free": 100_000,
        "active_interval": 60,
        "idle_interval": 300,
    },
}


# Budgets EV Cloud does not meet yet, with what was measured (short form, and
# the full day of scripts/bench). See the README's "Measured budgets".
KNOWN_429: dict[tuple[str, int], str] = {}
KNOWN_UNREADABLE: dict[tuple[str, int], str] = {}
KNOWN_LIMIT: dict[tuple[str, int], str] = {}
# A car charged at home by a go-e charger (tests/bench/charger_link.py):
# vehicle provider -> what was measured, where the link does not meet the budget.
KNOWN_LINK_NO_SAVING: dict[str, str] = {}
KNOWN_LINK_ESTIMATE: dict[str, str] = {}
# Timed, so an expected failure here is not strict (a faster moment of the
# machine may meet the budget): provider -> what was measured.
KNOWN_CPU: dict[str, str] = {}

_RUNS: dict[tuple[str, int, str], Result] = {}
_LINK_RUNS: dict[tuple[str, bool], LinkFigures] = {}


@contextlib.contextmanager
def coverage_paused() -> Iterator[None]:
    """Measure without the coverage tracer (it multiplies the CPU time).

    Every module of the integration is imported first, while coverage runs:
    what a module does when it is imported happens only once.
    """
    try:
        import coverage
    except ImportError:  # pragma: no cover - the test requirements have it
        yield
        return
    current = coverage.Coverage.current()
    if current is None:
        yield
        return
    for module in pkgutil.walk_packages(ev_cloud.__path__, f"{ev_cloud.__name__}."):
        importlib.import_module(module.name)
    current.stop()
    try:
        yield
    finally:
        current.start()


async def run(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory | None,
    caplog: pytest.LogCaptureFixture,
    provider: str,
    devices: int,
    options: Mapping[str, Any] | None = None,
) -> Result:
    """A short-form run in `hass` (several may follow each other).

    Without `freezer`, on the shifted clock: the run that gives CPU times.
    """
    # What a user's Home Assistant logs by default: no debug records.
    caplog.set_level(logging.INFO)
    driver = driver_for(provider, devices, STORY, options)
    with coverage_paused():
        return await BenchRun(hass, freezer, driver, STORY).async_run()


async def measured(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    provider: str,
    devices: int,
    options: Mapping[str, Any] | None = None,
) -> Result:
    """The figures of a short-form run (made by the first test that asks)."""
    key = (provider, devices, repr(sorted((options or {}).items())))
    if key not in _RUNS:
        _RUNS[key] = await run(hass, freezer, caplog, provider, devices, options)
    return _RUNS[key]


async def linked_day(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    provider: str,
    *,
    linked: bool,
) -> LinkFigures:
    """A car of `provider` charged at home, linked or not, through its day."""
    if (provider, linked) not in _LINK_RUNS:
        caplog.set_level(logging.INFO)
        driver = ChargedAtHomeDriver(provider, LINK_STORY, linked=linked)
        bench = BenchRun(hass, freezer, driver, LINK_STORY)
        with coverage_paused():
            result = await bench.async_run()
        _LINK_RUNS[provider, linked] = LinkFigures.of(bench, result)
    return _LINK_RUNS[provider, linked]


def link_cases(known: Mapping[str, str]) -> list[Any]:
    """Every linked vehicle provider; the known failures as strict xfails."""
    return [
        pytest.param(
            provider,
            marks=[pytest.mark.xfail(strict=True, reason=known[provider])]
            if provider in known
            else [],
        )
        for provider in LINKED_PROVIDERS
    ]


def cases(known: Mapping[tuple[str, int], str]) -> list[Any]:
    """Every provider at every size; the known failures as strict xfails."""
    return [
        pytest.param(
            provider,
            devices,
            id=f"{provider}-{devices}",
            marks=[pytest.mark.xfail(strict=True, reason=known[provider, devices])]
            if (provider, devices) in known
            else [],
        )
        for provider in PROVIDERS
        for devices in SIZES
    ]


def test_every_provider_is_benchmarked() -> None:
    """A new provider joins the benchmark (tests/bench/drivers.py)."""
    assert set(DRIVERS) == set(PROVIDERS)


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(("provider", "devices"), cases(KNOWN_429))
async def test_no_http_429_at_defaults(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    provider: str,
    devices: int,
) -> None:
    """No service ever answers 429 at the default options, at any size."""
    result = await measured(hass, freezer, caplog, provider, devices)
    assert result.http_429 == 0


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(("provider", "devices"), cases(KNOWN_LIMIT))
async def test_within_the_service_limit(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    provider: str,
    devices: int,
) -> None:
    """The service's limit holds.

    go-e: at most 1 request a second per charger; OVMS: the server's quota
    never runs out; ev.energy: at most 1000 requests in any hour. EVLinkHA: see
    the module docstring; EV-Monitor documents no limit.
    """
    result = await measured(hass, freezer, caplog, provider, devices)
    assert result.quota.within is not False, result.quota.text


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(("provider", "devices"), cases(KNOWN_UNREADABLE))
async def test_devices_stay_readable_at_defaults(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    provider: str,
    devices: int,
) -> None:
    """Every device is read at setup, no read fails, data is always shown.

    A poll our own budget puts off keeps showing its values and is no failure.
    """
    result = await measured(hass, freezer, caplog, provider, devices)
    assert result.devices_at_setup == devices
    assert result.failed_updates == 0
    assert result.charging_shown_share == 1.0


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize("provider", link_cases(KNOWN_LINK_NO_SAVING))
async def test_charger_link_saves_requests(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    provider: str,
) -> None:
    """A car charged at home makes fewer requests a day linked to the charger.

    The same day (tests/bench/story.py, LINK_STORY) with a go-e charger at home,
    once without the link and once with it; requests to the vehicle's service.
    """
    alone = await linked_day(hass, freezer, caplog, provider, linked=False)
    linked = await linked_day(hass, freezer, caplog, provider, linked=True)
    assert alone.failed_updates == linked.failed_updates == 0
    assert linked.requests_per_day < alone.requests_per_day, (
        f"{linked.requests_per_day} a day linked, {alone.requests_per_day} not"
    )


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize("provider", link_cases(KNOWN_LINK_ESTIMATE))
async def test_charger_link_estimate_within_3_points(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    provider: str,
) -> None:
    """While the charger charges the linked car, its estimate is within 3 points.

    Of the car's true state of charge, at every step of the charge (the car's
    battery takes the charger's energy at 92 %). It is unknown only from the
    plug-in until the car's reading after it (the link's look, a minute later):
    a reading from before the drive home would not say what the drive used.
    """
    linked = await linked_day(hass, freezer, caplog, provider, linked=True)
    assert linked.estimated_share >= 0.99
    assert linked.worst_estimate_error is not None
    assert linked.worst_estimate_error <= 3, linked.worst_estimate_error


@pytest.mark.skipif(
    os.environ.get("EV_CLOUD_BENCH_CPU") != "1",
    reason=(
        "timed: a CPU figure depends on the machine and its load, so the unit "
        "suite does not judge it; EV_CLOUD_BENCH_CPU=1 runs it, scripts/bench "
        "reports it"
    ),
)
@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(
    "provider",
    [
        pytest.param(
            provider,
            marks=[pytest.mark.xfail(strict=False, reason=KNOWN_CPU[provider])]
            if provider in KNOWN_CPU
            else [],
        )
        for provider in PROVIDERS
    ],
)
async def test_cpu_per_update(
    hass: HomeAssistant,
    caplog: pytest.LogCaptureFixture,
    provider: str,
) -> None:
    """An update costs the event loop at most 1 ms of CPU (median of many).

    On the shifted clock (no freezer: see tests/bench/harness.py). What else
    runs on the machine only ever adds CPU time to the same work, so a run above
    the budget is measured again, up to CPU_ATTEMPTS times, and the best run
    counts (as `timeit` takes the best of its repeats).
    """
    options = CPU_OPTIONS.get(provider)
    result = await run(hass, None, caplog, provider, CPU_DEVICES, options)
    assert result.updates >= 100
    assert result.cpu_per_update_median_ms is not None
    medians = [result.cpu_per_update_median_ms]
    while medians[-1] is not None and medians[-1] > CPU_BUDGET_MS:
        if len(medians) == CPU_ATTEMPTS:
            break
        again = await run(hass, None, caplog, provider, CPU_DEVICES, options)
        medians.append(again.cpu_per_update_median_ms)
    best = min(median for median in medians if median is not None)
    assert best <= CPU_BUDGET_MS, f"{medians} ms per update"
