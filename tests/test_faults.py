"""Every provider through every fault: the documented state, two log lines, recovery.

For each provider (its simulator and entry from tests/<name>/fixtures.py) and
each `Fault` (tests/faults.py says how the provider's simulator shows it and
what the user should see), the test:

1. sets the entry up and makes the user's changes to the registry (renames an
   entity and gives its device a name of the user's own);
2. starts the fault and lets two poll intervals pass (a sink: two uploads):
   the entities end in the documented state, and each device logged exactly
   one line about it, without a traceback;
3. ends the fault (credentials: completes the reauth) and lets one poll
   interval pass (a sink: its documented retry delay; a rate limit: the wait
   it asked for): everything is back, with one more line per device;
4. checks that the user's registry entries are unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
import logging
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util, ssl as ssl_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.providers import PROVIDERS
from tests.conftest import setup_entry
from tests.evmonitor.test_integration import park
from tests.faults import ADAPTERS, RETRY_AFTER, Fault, Outcome, ProviderFaults
from tests.tls import Certificates, TlsFront, make_certificates

STEP = 10.0  # seconds of each clock tick (at least; a twelfth of the interval)
# Beyond the intervals: the clients' timeouts (at most 30 s) and a tick.
MARGIN = 60.0
# The sink's upload interval in the fixture's options.
UPLOAD_INTERVAL = 300.0
USER_NAME = "My car's value"
USER_ENTITY_ID = "garage_probe"
USER_DEVICE_NAME = "My device"

# Bugs the matrix found that are not fixed here: (provider, fault) -> reason.
KNOWN_BUGS: dict[tuple[str, Fault], str] = {}


def _cases() -> Iterator[Any]:
    for name in PROVIDERS:
        adapter = ADAPTERS[name]
        for fault in Fault:
            marks: list[pytest.MarkDecorator] = []
            if (reason := adapter.skips.get(fault)) is not None:
                marks.append(pytest.mark.skip(reason=reason))
            elif (bug := KNOWN_BUGS.get((name, fault))) is not None:
                marks.append(pytest.mark.xfail(strict=True, reason=bug))
            yield pytest.param(name, fault, marks=marks, id=f"{name}-{fault}")


def test_every_provider_has_an_adapter() -> None:
    """A new provider joins the matrix (tests/faults.py), or this fails."""
    assert set(ADAPTERS) == set(PROVIDERS)


@dataclass
class World:
    """One provider's simulator, entry and fault adapter."""

    adapter: ProviderFaults
    entry: MockConfigEntry


@pytest.fixture
def world(request: pytest.FixtureRequest, provider: str) -> World:
    """The simulator and entry of `provider` (from tests/<provider>/fixtures.py)."""
    sim = request.getfixturevalue(f"{provider}_sim")
    entry: MockConfigEntry = request.getfixturevalue(f"{provider}_entry")
    return World(ADAPTERS[provider](sim), entry)


@pytest.fixture
def certificates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Certificates:
    """A test authority that Home Assistant's HTTP client trusts (and nothing else)."""
    made = make_certificates(tmp_path)
    context = made.client_context()
    monkeypatch.setattr(ssl_util, "client_context", lambda *args: context)
    return made


class Clock:
    """Home Assistant's frozen clock and the simulator's, moved together."""

    def __init__(
        self, hass: HomeAssistant, freezer: FrozenDateTimeFactory, adapter: Any
    ) -> None:
        """Tick `hass` and the simulator behind `adapter`."""
        self.step = STEP
        self.hass = hass
        self.freezer = freezer
        self.adapter = adapter
        self.elapsed = 0.0
        # While requests hang (the TIMEOUT fault), waiting for them would never end:
        # only the ticks fire their timeouts.
        self.hanging = False

    async def advance(self, seconds: float, *, until: Any = None) -> None:
        """Let `seconds` pass in ticks of STEP; stop early once `until()` holds."""
        while seconds > 0:
            step = min(seconds, self.step)
            seconds -= step
            self.adapter.advance(step)
            self.freezer.tick(timedelta(seconds=step))
            self.elapsed += step
            async_fire_time_changed(self.hass)
            if self.hanging:
                # Waiting for tasks would wait for the hanging requests: let
                # the loop run what is ready instead.
                for _ in range(50):
                    await asyncio.sleep(0)
            else:
                await self.hass.async_block_till_done(wait_background_tasks=True)
            if until is not None and until():
                return


def _entity_ids(hass: HomeAssistant, entry: MockConfigEntry) -> list[str]:
    return [
        entity.entity_id
        for entity in er.async_entries_for_config_entry(
            er.async_get(hass), entry.entry_id
        )
        if entity.disabled_by is None
    ]


def _states(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, str]:
    states = {}
    for entity_id in _entity_ids(hass, entry):
        state = hass.states.get(entity_id)
        assert state is not None, entity_id
        states[entity_id] = state.state
    return states


def _registry(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    """What the user may have changed in the registries, by unique id."""
    entities = {
        entity.unique_id: (
            entity.entity_id,
            entity.name,
            entity.disabled_by,
            entity.device_id,
        )
        for entity in er.async_entries_for_config_entry(
            er.async_get(hass), entry.entry_id
        )
    }
    devices = {
        device.id: (device.name_by_user, tuple(sorted(device.identifiers)))
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        )
    }
    return {"entities": entities, "devices": devices}


def _rename_probe(hass: HomeAssistant, probe: str) -> str:
    """The user renames the probe entity and its device; its new entity id."""
    registry = er.async_get(hass)
    domain = probe.split(".", 1)[0]
    new_id = f"{domain}.{USER_ENTITY_ID}"
    entity = registry.async_update_entity(probe, name=USER_NAME, new_entity_id=new_id)
    assert entity.device_id is not None
    dr.async_get(hass).async_update_device(
        entity.device_id, name_by_user=USER_DEVICE_NAME
    )
    return new_id


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _our_lines(caplog: pytest.LogCaptureFixture, since: int) -> list[logging.LogRecord]:
    """Records at INFO and above from the integration (HA's coordinators log as it)."""
    return [
        record
        for record in caplog.records[since:]
        if record.name.startswith("custom_components.ev_cloud")
        and record.levelno >= logging.INFO
    ]


def _one_line_each(lines: list[logging.LogRecord], speakers: list[str]) -> None:
    """Exactly one line per speaker (a device, or a sink's entry), none else."""
    messages = [record.getMessage() for record in lines]
    assert len(messages) == len(speakers), messages
    for speaker in speakers:
        assert sum(speaker in message for message in messages) == 1, (
            speaker,
            messages,
        )


def _no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    for record in caplog.records:
        if record.levelno < logging.INFO:
            continue
        if not record.name.startswith(("custom_components", "homeassistant")):
            continue
        assert record.exc_info is None, record.getMessage()
        assert "Traceback" not in record.getMessage(), record.getMessage()


# Records Home Assistant keeps itself (the last charging session), not read
# from the service: they stay shown whatever the service does.
KEPT_LOCALLY = ("_last_charging_session",)


def _reauth_flows(hass: HomeAssistant) -> list[Any]:
    return [
        flow
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if flow["context"]["source"] == SOURCE_REAUTH
    ]


class Checks:
    """What the user sees of a provider, healthy and during a fault."""

    def __init__(self, hass: HomeAssistant, world: World, probe: str) -> None:
        """`probe`: the (renamed) value entity of the provider."""
        self.hass = hass
        self.adapter = world.adapter
        self.entry = world.entry
        self.probe = probe

    def probe_state(self) -> str:
        state = self.hass.states.get(self.probe)
        assert state is not None
        return state.state

    def healthy(self) -> None:
        states = _states(self.hass, self.entry)
        unavailable = [
            key for key, value in states.items() if value == STATE_UNAVAILABLE
        ]
        assert not unavailable, unavailable
        if self.adapter.polled:
            assert _is_number(self.probe_state()), self.probe_state()
            online = [key for key in states if key.endswith("_online")]
            assert online
            assert all(states[key] == STATE_ON for key in online), states
        else:
            assert self.probe_state() == "0"  # nothing waits
            assert self._sink_error() == STATE_UNKNOWN

    def _sink_error(self) -> str:
        state = self.hass.states.get("sensor.ev_monitor_the_rocket_last_upload_error")
        assert state is not None
        return state.state

    def failing(self, outcome: Outcome) -> None:
        states = _states(self.hass, self.entry)
        if outcome is Outcome.REAUTH:
            assert _reauth_flows(self.hass), "no reauth flow"
        if outcome is Outcome.UNCHANGED:
            self.healthy()
            return
        if not self.adapter.polled:
            # A sink keeps what waits, says why, and stays available.
            assert STATE_UNAVAILABLE not in states.values(), states
            assert int(self.probe_state()) >= 1
            assert self._sink_error() not in (STATE_UNKNOWN, STATE_UNAVAILABLE)
            return
        match outcome:
            case Outcome.UNAVAILABLE | Outcome.RATE_LIMITED | Outcome.REAUTH:
                available = [
                    key
                    for key, value in states.items()
                    if value != STATE_UNAVAILABLE and not key.endswith(KEPT_LOCALLY)
                ]
                assert not available, available
            case Outcome.VALUE_UNKNOWN:
                assert self.probe_state() == STATE_UNKNOWN
                assert STATE_UNAVAILABLE not in states.values(), states

    def shows_future_times(self) -> None:
        """A Last update from the clock that runs ahead is shown as it came."""
        now = dt_util.utcnow()
        times = [
            dt_util.parse_datetime(value)
            for key, value in _states(self.hass, self.entry).items()
            if key.endswith("_last_update") and value not in (STATE_UNKNOWN,)
        ]
        assert any(time is not None and time > now for time in times), times

    def settled(self) -> bool:
        """Whether everything is as before the fault."""
        try:
            self.healthy()
        except AssertionError:
            return False
        return True


def _interval(entry: MockConfigEntry, adapter: ProviderFaults) -> float:
    """The longest poll interval of the entry's devices (a sink: its uploads)."""
    if not adapter.polled:
        return UPLOAD_INTERVAL
    return max(
        coordinator.update_interval.total_seconds()
        for coordinator in entry.runtime_data.coordinators.values()
        if coordinator.update_interval is not None
    )


def _source_changes(hass: HomeAssistant) -> None:
    """The sink's source starts charging: a snapshot to upload."""
    park(hass, charging="on", power=7.4, soc=60)


@pytest.mark.parametrize(("provider", "fault"), list(_cases()))
async def test_fault(
    hass: HomeAssistant,
    world: World,
    provider: str,
    fault: Fault,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    """The fault ends in the documented state, logs twice per device, and heals."""
    adapter = world.adapter
    outcome = adapter.outcome(fault)
    front: TlsFront | None = None
    if fault is Fault.TLS_ERROR:
        front = await _behind_tls_front(request, world)
    try:
        await _run(hass, world, fault, outcome, freezer, caplog, front)
    finally:
        if front is not None:
            await front.stop()


async def _behind_tls_front(request: pytest.FixtureRequest, world: World) -> TlsFront:
    """Put the entry behind a TLS front that Home Assistant trusts."""
    certificates: Certificates = request.getfixturevalue("certificates")
    adapter = world.adapter
    sim = adapter.sim
    target = sim.cloud_url if adapter.name == "goe" else sim.url
    front = TlsFront(target, certificates)
    await front.start()
    entry = world.entry
    world.entry = MockConfigEntry(
        domain=DOMAIN,
        title=entry.title,
        unique_id=entry.unique_id,
        entry_id=entry.entry_id,
        data={**entry.data, adapter.url_key: front.url},
        options=dict(entry.options),
    )
    return front


async def _run(
    hass: HomeAssistant,
    world: World,
    fault: Fault,
    outcome: Outcome,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    front: TlsFront | None,
) -> None:
    adapter, entry = world.adapter, world.entry
    clock = Clock(hass, freezer, adapter)
    if not adapter.polled:
        park(hass)
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.LOADED
    probe = _rename_probe(hass, adapter.probe)
    checks = Checks(hass, world, probe)
    interval = _interval(entry, adapter)
    clock.step = max(STEP, interval / 12)
    if not adapter.polled:
        await clock.advance(interval)  # the snapshot taken at setup is uploaded
    checks.healthy()
    registry = _registry(hass, entry)
    # Each polled device says it once (HA's coordinators name it); a sink once.
    speakers = [c.name for c in entry.runtime_data.coordinators.values()]
    if not adapter.polled:
        speakers = [entry.title]
    renewals = adapter.renewals()

    # --- the fault starts ------------------------------------------------------------
    started = len(caplog.records)
    began = clock.elapsed
    if front is not None:
        front.distrust()
    else:
        await adapter.inject(fault, hass, entry)
    clock.hanging = fault is Fault.TIMEOUT
    if not adapter.polled:
        _source_changes(hass)
    first_hit = None
    if outcome is Outcome.RATE_LIMITED:
        fault_hits = adapter.http_fault
        assert fault_hits is not None
        await clock.advance(interval + MARGIN, until=lambda: fault_hits.hits > 0)
        first_hit, hits = clock.elapsed, fault_hits.hits
        assert hits > 0
        wait = RETRY_AFTER if fault is Fault.RATE_LIMITED else adapter.default_wait
        if wait is not None:
            # Nothing reaches the service until the wait is over.
            await clock.advance(wait - clock.step)
            assert fault_hits.hits == hits, "a request during the wait"
    # Two intervals: every device fails, and fails again without a new line.
    await clock.advance(began + 2 * (interval + MARGIN) - clock.elapsed)
    checks.failing(outcome)
    # The fault really happened.
    if adapter.http_fault is not None:
        assert adapter.http_fault.hits > 0
    if front is not None:
        assert front.handshakes_failed > 0
    if fault is Fault.EXPIRED_CREDENTIALS:
        assert adapter.renewals() > renewals, "the credentials were not renewed"
    if fault is Fault.CLOCK_SKEW:
        checks.shows_future_times()
    lines = _our_lines(caplog, started)
    quiet = outcome in (Outcome.VALUE_UNKNOWN, Outcome.UNCHANGED)
    _one_line_each(lines, [] if quiet else speakers)
    for record in lines:
        assert record.levelno >= logging.WARNING, record.getMessage()

    # --- the fault ends ------------------------------------------------------------
    ended = len(caplog.records)
    if front is not None:
        front.trust()
    elif outcome is Outcome.REAUTH:
        hass.config_entries.async_update_entry(
            entry, data={**entry.data, **adapter.new_credentials()}
        )
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
    else:
        await adapter.clear(fault)
    if first_hit is not None and fault is Fault.RATE_LIMITED:
        recovery = first_hit + RETRY_AFTER + interval + MARGIN - clock.elapsed
    elif adapter.polled:
        # A request sent just before the fault ended may still time out first.
        recovery = interval + (MARGIN if clock.hanging else clock.step)
    else:
        # A sink retries after the upload interval, doubled per failed upload
        # (two failed: twice the interval).
        recovery = 2 * interval + MARGIN
    if clock.hanging:
        await clock.advance(MARGIN)  # the last hanging requests time out
        recovery -= MARGIN
        clock.hanging = False
    await clock.advance(recovery, until=checks.settled)
    if not checks.settled():
        checks.healthy()  # says what is not back
    assert checks.settled(), f"not recovered {recovery} s after the fault ended"
    checks.healthy()
    # After a reauth the entry starts afresh: there is nothing to recover from.
    quiet = quiet or outcome is Outcome.REAUTH
    _one_line_each(_our_lines(caplog, ended), [] if quiet else speakers)
    _no_tracebacks(caplog)
    assert not _reauth_flows(hass) or outcome is Outcome.REAUTH
    assert _registry(hass, entry) == registry
    state = hass.states.get(probe)
    assert state is not None
    assert state.attributes.get("friendly_name", "").endswith(USER_NAME)
    assert hass.states.get(adapter.probe) is None
