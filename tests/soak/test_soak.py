"""The soak: every provider's devices over simulated hours, with random faults.

Home Assistant's clock is frozen and moved in steps of STEP seconds together with
the simulators' clocks. After a warm-up, a baseline window is measured; then
each provider's service fails now and then (outages, 500s, slow answers,
revoked credentials the user re-enters, expired sessions and tokens), in an
order and at times drawn from a seeded RNG; then the faults stop, everything
recovers, and an end window is measured. The end window must not hold more
tasks, listeners, timers, dispatcher connections, unload callbacks or memory
than the baseline (TOLERANCE says what may differ, and why); no entity may be
duplicated or lost, every entry must be loaded and every entity that had a
value at the baseline must have one again.

In the normal suite the soak is short (SHORT: a few simulated hours, a few
devices). `EV_CLOUD_SOAK=full` runs FULL (24 hours, 50 devices) and prints the
numbers; `EV_CLOUD_SOAK_SEED` picks another seed, `EV_CLOUD_SOAK_REPORT=<path>`
writes them as JSON.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
import os
from pathlib import Path
import random
import tracemalloc
from typing import Any

from aiohttp.test_utils import TestServer
import freezegun.api
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.storage import Store
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.diagnostics import async_get_config_entry_diagnostics
from custom_components.ev_cloud.providers import PROVIDERS
from tests.secret_guard import SecretGuard
from tests.soak.measure import (
    STRUCTURE,
    Counts,
    count,
    growth,
    instances,
    measured,
    start_tracing,
    stop_tracing,
)
from tests.soak.world import PROVIDERS_IN_SOAK, Fault, SoakProvider, World

START = datetime(2027, 1, 1, 6, tzinfo=UTC)
STEP = 10  # seconds: Home Assistant's and the services' clocks move together
SAMPLE_EVERY = 60  # seconds between counts
STORY_EVERY = 900  # seconds between things happening to the cars
SIGN_IN_EVERY = 900  # the user answers a re-authentication within this time
DIAGNOSTICS_EVERY = 3600  # a bug report now and then (the secret guard reads it)
MEMORY_SAMPLES = 4  # memory is measured this many times per window
MEMORY_EVERY = 3600  # and every hour
SEED = 20270101


@dataclass(frozen=True)
class Plan:
    """How long, how many devices."""

    hours: float
    devices: int

    @property
    def seconds(self) -> int:
        """The whole run."""
        return round(self.hours * 3600)

    # The run's phases, in seconds from its start: a warm-up, the baseline window,
    # the faults, a quiet end whose last part is the end window.
    @property
    def baseline(self) -> tuple[int, int]:
        """After the warm-up, before any fault."""
        return self.seconds // 12, self.seconds // 6

    @property
    def faults(self) -> tuple[int, int]:
        """When services fail."""
        return self.seconds // 6, self.seconds * 5 // 6

    @property
    def end(self) -> tuple[int, int]:
        """Long after the last fault."""
        return self.seconds * 11 // 12, self.seconds


SHORT = Plan(hours=2, devices=6)
FULL = Plan(hours=24, devices=50)

# What the end window may hold beyond the baseline window (maxima of each).
TOLERANCE = {
    # Requests in flight when a sample is taken, and the server side of the
    # connections Home Assistant keeps alive to the simulators, vary.
    "tasks": 8,
    # Our tasks are only polls, listings and uploads in flight.
    "tasks_ours": 3,
    # Listeners are registered at setup; a reload must remove what it added.
    "listeners": 0,
    # Timers: polls, retries, keep-alive and debouncer timers come and go.
    "timers": 12,
    "timers_ours": 2,
    "dispatcher": 0,
    "unload_callbacks": 0,
}
# Bytes the traced memory may grow from the baseline window to the end window
# (each the lowest of its samples): caches Home Assistant and aiohttp fill once
# (DNS and URL caches, the translations of errors first seen during the faults,
# interned strings), a few hundred KiB; a leak of 100 bytes per poll would be
# several MiB over the full run.
MEMORY_TOLERANCE = 1024 * 1024
# The integration's accounts, devices, coordinators and entities (STRUCTURE) may
# not grow at all. Its other objects may grow by this many per device: each
# coordinator keeps the last error it saw (Home Assistant's `last_exception`,
# never cleared), and with it the frames of its traceback, which refer to a
# reading, an answer and the states parsed from it; snapshots may wait in an
# EV-Monitor queue.
OBJECTS_PER_DEVICE = 10


def _plan() -> Plan:
    plan = FULL if os.environ.get("EV_CLOUD_SOAK") == "full" else SHORT
    return Plan(
        hours=float(os.environ.get("EV_CLOUD_SOAK_HOURS", plan.hours)),
        devices=int(os.environ.get("EV_CLOUD_SOAK_DEVICES", plan.devices)),
    )


def _devices_per_provider(total: int) -> dict[str, int]:
    """Shares of `total` by the providers' weights, at least one each."""
    weights = {name: PROVIDERS_IN_SOAK[name].weight for name in PROVIDERS}
    shares = {
        name: max(1, round(total * weight / sum(weights.values())))
        for name, weight in weights.items()
    }
    # Rounding: the largest share takes up the difference.
    largest = max(shares, key=lambda name: shares[name])
    shares[largest] += total - sum(shares.values())
    return shares


@dataclass(order=True)
class Event:
    """A fault starting or ending at a time (seconds from the start)."""

    at: int
    order: int
    provider: str = field(compare=False)
    fault: Fault = field(compare=False)
    begin: bool = field(compare=False)


def fault_schedule(
    plan: Plan, providers: list[SoakProvider], rng: random.Random
) -> list[Event]:
    """Each provider's faults, one at a time: every kind once, then at random.

    The fault period is cut into slots per provider; a fault fills 30-70 % of
    its slot, somewhere in it. Token expiry happens at an instant.
    """
    first, last = plan.faults
    events: list[Event] = []
    order = 0
    for provider in providers:
        slots = max(len(provider.faults), (last - first) // 2400)
        slot = (last - first) // slots
        kinds = list(provider.faults)
        rng.shuffle(kinds)
        kinds += [rng.choice(provider.faults) for _ in range(slots - len(kinds))]
        for index, kind in enumerate(kinds):
            length = round(slot * rng.uniform(0.3, 0.7))
            if kind is Fault.TOKEN_EXPIRY:
                length = STEP
            begin = first + index * slot + rng.randrange(slot - length + 1)
            begin -= begin % STEP
            end = begin + max(length - length % STEP, STEP)
            events.append(Event(begin, order, provider.name, kind, True))
            events.append(Event(end, order + 1, provider.name, kind, False))
            order += 2
    return sorted(events)


async def settle(hass: HomeAssistant) -> None:
    """Run what is ready, until nothing is: work waiting on a timer stays waiting.

    Home Assistant's `async_block_till_done` would wait for an answer that a slow
    simulator sends only when the (frozen) clock moves on.
    """
    loop = hass.loop
    quiet = 0
    while quiet < 3:
        await asyncio.sleep(0)
        quiet = quiet + 1 if not loop._ready else 0  # type: ignore[attr-defined]


def _entities(hass: HomeAssistant) -> list[er.RegistryEntry]:
    registry = er.async_get(hass)
    return [
        entity
        for entry in hass.config_entries.async_entries(DOMAIN)
        for entity in er.async_entries_for_config_entry(registry, entry.entry_id)
    ]


def _devices(hass: HomeAssistant) -> set[str]:
    registry = dr.async_get(hass)
    return {
        device.id
        for entry in hass.config_entries.async_entries(DOMAIN)
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
    }


def _available(hass: HomeAssistant) -> set[str]:
    return {
        entry.entity_id
        for entry in _entities(hass)
        if (state := hass.states.get(entry.entity_id)) is not None
        and state.state != STATE_UNAVAILABLE
    }


@dataclass
class Report:
    """What the run measured."""

    plan: Plan
    seed: int
    devices: dict[str, int]
    faults: Counter[str] = field(default_factory=Counter)
    sign_ins: Counter[str] = field(default_factory=Counter)
    samples: list[tuple[int, Counts]] = field(default_factory=list)
    memory: list[tuple[int, int]] = field(default_factory=list)
    instances: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    growth: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def window(self, bounds: tuple[int, int]) -> dict[str, int]:
        """Each count's maximum in a window."""
        inside = [counts for at, counts in self.samples if bounds[0] <= at <= bounds[1]]
        return {
            name: max(counts.as_dict()[name] for counts in inside)
            for name in inside[0].as_dict()
        }

    def objects(self, bounds: tuple[int, int]) -> dict[str, int]:
        """Each kind of the integration's objects: its maximum in a window."""
        inside = [found for at, found in self.instances if bounds[0] <= at <= bounds[1]]
        return {name: max(found[name] for found in inside) for name in inside[0]}

    def lowest_memory(self, bounds: tuple[int, int]) -> int:
        """The least memory traced in a window."""
        return min(size for at, size in self.memory if bounds[0] <= at <= bounds[1])

    def as_dict(self) -> dict[str, Any]:
        """For the JSON report."""
        return {
            "hours": self.plan.hours,
            "devices": self.devices,
            "seed": self.seed,
            "faults": dict(sorted(self.faults.items())),
            "sign_ins": dict(sorted(self.sign_ins.items())),
            "baseline": self.window(self.plan.baseline),
            "end": self.window(self.plan.end),
            "memory_baseline": self.lowest_memory(self.plan.baseline),
            "memory_end": self.lowest_memory(self.plan.end),
            "objects_baseline": self.objects(self.plan.baseline),
            "objects_end": self.objects(self.plan.end),
            "memory_by_hour_kib": [
                round(size / 1024) for at, size in self.memory if at % MEMORY_EVERY == 0
            ],
            "memory_growth": self.growth,
            "objects_growth": self.classes,
            "first_sample": self.samples[0][1].as_dict(),
            "seconds": round(self.seconds, 1),
        }


def test_every_provider_is_in_the_soak() -> None:
    """A new provider joins the soak with a SoakProvider of its own."""
    assert set(PROVIDERS_IN_SOAK) == set(PROVIDERS)
    for name, provider in PROVIDERS_IN_SOAK.items():
        assert provider.name == name


def test_the_fault_schedule_is_seeded() -> None:
    """The same seed gives the same faults; every kind of each provider occurs."""

    class Stub:
        def __init__(self, name: str, kinds: tuple[Fault, ...]) -> None:
            self.name = name
            self.faults = kinds

    stubs: list[Any] = [Stub(n, p.faults) for n, p in PROVIDERS_IN_SOAK.items()]
    one = fault_schedule(SHORT, stubs, random.Random(SEED))
    assert one == fault_schedule(SHORT, stubs, random.Random(SEED))
    for stub in stubs:
        seen = {e.fault for e in one if e.provider == stub.name}
        assert seen == set(stub.faults)
    # One fault at a time per provider, inside the fault period.
    for stub in stubs:
        mine = [e for e in one if e.provider == stub.name]
        assert [e.begin for e in mine] == [True, False] * (len(mine) // 2)
        assert SHORT.faults[0] <= mine[0].at
        assert mine[-1].at <= SHORT.faults[1]


class Soak:
    """One run: the world, its schedule, and what is measured."""

    def __init__(
        self,
        hass: HomeAssistant,
        freezer: FrozenDateTimeFactory,
        plan: Plan,
        seed: int,
        forget: Callable[[], None],
        guard: SecretGuard,
    ) -> None:
        """Nothing runs until `async_setup`."""
        self.hass = hass
        self.freezer = freezer
        self.plan = plan
        self.rng = random.Random(seed)
        self.forget = forget
        self.guard = guard
        self.report = Report(plan, seed, _devices_per_provider(plan.devices))
        self.world: World
        self.events: list[Event] = []
        self.active: dict[str, Fault] = {}
        self.snapshots: dict[str, tracemalloc.Snapshot] = {}
        self.classes: dict[str, Counter[str]] = {}
        self.registry: set[tuple[str, str]] = set()
        self.available: set[str] = set()
        self.devices: set[str] = set()
        memory_at = {
            first + (last - first) * index // (MEMORY_SAMPLES - 1)
            for first, last in (plan.baseline, plan.end)
            for index in range(MEMORY_SAMPLES)
        }
        # And every hour, to see a trend.
        memory_at |= set(range(0, plan.seconds + 1, MEMORY_EVERY))
        self.memory_at = {at - at % SAMPLE_EVERY for at in memory_at}

    async def async_setup(self, aiohttp_client: ClientSessionGenerator) -> None:
        """The integration, its HTTP server, every provider's world."""
        assert await async_setup_component(self.hass, DOMAIN, {})
        # Home Assistant's HTTP server, for the OAuth sign-in and the webhook
        # (no access log: it cannot read the frozen clock's time zone).
        server = TestServer(self.hass.http.app)
        await server.start_server(access_log=None)
        self.world = World(self.hass, await aiohttp_client(server))
        # Sinks read the others' vehicles: they come last.
        for name in sorted(PROVIDERS, key=lambda n: PROVIDERS_IN_SOAK[n].sink):
            provider = PROVIDERS_IN_SOAK[name](self.world)
            self.world.providers.append(provider)
            await provider.async_start(self.report.devices[name])
        self.providers = {provider.name: provider for provider in self.world.providers}
        self.events = fault_schedule(self.plan, self.world.providers, self.rng)

    async def async_stop(self) -> None:
        """Stop the simulators."""
        for provider in self.world.providers:
            await provider.async_stop()

    async def async_run(self) -> None:
        """Every step from the start to the end."""
        for now in range(0, self.plan.seconds + STEP, STEP):
            await self._async_events(now)
            await self._async_user(now)
            self._measure(now)
            if now < self.plan.seconds:
                await self._async_tick()
        self.report.growth = growth(self.snapshots["baseline"], self.snapshots["end"])
        grown = self.classes["end"]
        grown.subtract(self.classes["baseline"])
        self.report.classes = [
            f"{count:+d} {name}" for name, count in grown.most_common(8) if count
        ]

    async def _async_events(self, now: int) -> None:
        """Faults start and end; the story goes on."""
        while self.events and self.events[0].at <= now:
            event = self.events.pop(0)
            provider = self.providers[event.provider]
            if event.begin:
                self.active[event.provider] = event.fault
                self.report.faults[f"{event.provider} {event.fault}"] += 1
                await provider.async_begin(event.fault, self.rng)
            else:
                del self.active[event.provider]
                await provider.async_end(event.fault)
                await settle(self.hass)
                signed_in = await provider.async_sign_in_again()
                self.report.sign_ins[provider.name] += signed_in
        if now and now % STORY_EVERY == 0 and now < self.plan.end[0]:
            for provider in self.world.providers:
                provider.story(self.rng)

    async def _async_user(self, now: int) -> None:
        """The user signs in again when asked, and downloads diagnostics."""
        if now % SIGN_IN_EVERY == 0:
            for provider in self.world.providers:
                if provider.name not in self.active:
                    signed_in = await provider.async_sign_in_again()
                    self.report.sign_ins[provider.name] += signed_in
        if now % DIAGNOSTICS_EVERY == 0:
            for entry in self.world.entries:
                if entry.state is ConfigEntryState.LOADED:
                    await async_get_config_entry_diagnostics(self.hass, entry)

    def _measure(self, now: int) -> None:
        if now == self.plan.baseline[0]:
            self.registry = {(e.entity_id, e.unique_id) for e in _entities(self.hass)}
            self.available = _available(self.hass)
            self.devices = _devices(self.hass)
        if now % SAMPLE_EVERY == 0:
            self.report.samples.append((now, count(self.hass, self.world.entries)))
            self.forget()
            self.guard.flush()
        if now in self.memory_at:
            size, snapshot = measured(self.forget)
            self.report.memory.append((now, size))
            found, by_class = instances()
            self.report.instances.append((now, found))
            if self.plan.baseline[0] <= now <= self.plan.baseline[1]:
                self.classes.setdefault("baseline", by_class)
                self.snapshots.setdefault("baseline", snapshot)
            self.classes["end"] = by_class
            self.snapshots["end"] = snapshot

    async def _async_tick(self) -> None:
        """Move every clock; the event loop's (frozen) clock fires the timers."""
        for provider in self.world.providers:
            provider.advance(STEP)
        self.freezer.tick(timedelta(seconds=STEP))
        await settle(self.hass)


@pytest.mark.usefixtures("socket_enabled", "current_request_with_host")
async def test_soak(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    aiohttp_client: ClientSessionGenerator,
    secret_guard: SecretGuard,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No growth, no duplicates, every entry loaded and every entity back."""
    plan = _plan()
    started = freezegun.api.real_perf_counter()
    freezer.move_to(START)
    # Hours of callbacks: asyncio's debug mode records a stack for each, and
    # freezegun inspects the stack at every clock reading (to let some modules
    # see the real time), which takes minutes. The rest of the suite keeps both.
    hass.loop.set_debug(False)
    monkeypatch.setattr(freezegun.api, "call_stack_inspection_limit", 0)
    logging_plugin = request.config.pluginmanager.get_plugin("logging-plugin")

    def forget() -> None:
        """Drop what the test harness keeps of the run (not Home Assistant's).

        pytest keeps every log record (the secret guard has read them), the
        harness's stand-in for storage every call it had (every write's data),
        and the simulators every request they answered.
        """
        caplog.clear()
        soak.world.forget()
        if logging_plugin is not None:
            logging_plugin.report_handler.clear()
        for name in ("async_load", "_async_write_data", "async_remove"):
            if (reset := getattr(getattr(Store, name), "reset_mock", None)) is not None:
                reset()

    seed = int(os.environ.get("EV_CLOUD_SOAK_SEED", SEED))
    soak = Soak(hass, freezer, plan, seed, forget, secret_guard)
    # Traced from the start: what a reload replaces was traced too.
    start_tracing()
    try:
        await soak.async_setup(aiohttp_client)
        await soak.async_run()
    finally:
        stop_tracing()
        await soak.async_stop()
    report = soak.report
    report.seconds = freezegun.api.real_perf_counter() - started
    _print(report)

    # Every entry is loaded, nothing waits for the user.
    for entry in soak.world.entries:
        assert entry.state is ConfigEntryState.LOADED, entry.title
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    # No entity duplicated or lost, no device gone.
    assert {(e.entity_id, e.unique_id) for e in _entities(hass)} == soak.registry
    per_unique_id = Counter((e.domain, e.unique_id) for e in _entities(hass))
    assert max(per_unique_id.values()) == 1
    assert soak.devices <= _devices(hass)
    # Every device is read again, every entity that had a value has one again,
    # no repair is left.
    for entry in soak.world.entries:
        for key, coordinator in entry.runtime_data.coordinators.items():
            assert coordinator.last_update_success, key
    assert soak.available <= _available(hass)
    assert not [
        issue_id for domain, issue_id in ir.async_get(hass).issues if domain == DOMAIN
    ]
    # Nothing grew.
    baseline, end = report.window(plan.baseline), report.window(plan.end)
    for name, limit in TOLERANCE.items():
        assert end[name] <= baseline[name] + limit, (name, baseline, end)
    grown = report.lowest_memory(plan.end) - report.lowest_memory(plan.baseline)
    assert grown <= MEMORY_TOLERANCE, report.growth
    objects = report.objects(plan.baseline), report.objects(plan.end)
    for name in STRUCTURE:
        assert objects[1][name] <= objects[0][name], (name, objects)
    limit = objects[0]["objects"] + OBJECTS_PER_DEVICE * objects[0]["devices"]
    assert objects[1]["objects"] <= limit, report.classes
    # Every kind of fault happened; revoked credentials were entered again.
    assert {key.split()[1] for key in report.faults} == set(Fault)
    assert sum(report.sign_ins.values()) > 0


def _print(report: Report) -> None:
    data = report.as_dict()
    lines = [
        f"soak: {data['hours']} h, devices {data['devices']}, seed {data['seed']}, "
        f"{data['seconds']} s",
        f"faults {data['faults']}",
        f"sign-ins {data['sign_ins']}",
        f"{'':18}{'first':>8}{'baseline':>10}{'end':>8}",
    ]
    for name, value in data["first_sample"].items():
        lines.append(
            f"{name:18}{value:>8}{data['baseline'][name]:>10}{data['end'][name]:>8}"
        )
    lines.append(
        f"{'memory (KiB)':18}{'':>8}{data['memory_baseline'] / 1024:>10.0f}"
        f"{data['memory_end'] / 1024:>8.0f}"
    )
    for name, value in data["objects_baseline"].items():
        lines.append(f"{name:18}{'':>8}{value:>10}{data['objects_end'][name]:>8}")
    lines.append(f"memory by hour (KiB): {data['memory_by_hour_kib']}")
    lines += [f"  {line}" for line in data["objects_growth"]]
    lines += [f"  {line}" for line in data["memory_growth"]]
    print("\n".join(lines))
    if path := os.environ.get("EV_CLOUD_SOAK_REPORT"):
        Path(path).write_text(json.dumps(data, indent=2) + "\n")
