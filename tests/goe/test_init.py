"""Setup, unload, polling, faults and staleness, against the simulator."""

from __future__ import annotations

from datetime import timedelta
import logging

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.ev_cloud.api.goe import STATUS_KEYS
from custom_components.ev_cloud.const import DOMAIN
from tests.conftest import setup_entry
from tests.goe.fixtures import SERIAL, TOKEN
from tests.simulators.goe import CORE, HOME_ONLY_KEYS, PRO, GoeFault, SimCharger

POWER = "sensor.go_e_charger_012345_charge_power"
ONLINE = "binary_sensor.go_e_charger_012345_online"
ISSUE_ID = "01JGOECLOUDENTRY000000000_goe_012345_cloud_api_disabled"


async def _tick(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    seconds: float = 120,
    *,
    wait_for_poll: bool = True,
) -> None:
    """Move the frozen clock and fire what became due (a poll, a timeout)."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    # Coordinators poll in background tasks; a request to a SLOW charger only ends
    # when a later tick fires its timeout, so waiting for it here would hang.
    await hass.async_block_till_done(wait_background_tasks=wait_for_poll)


def _integration_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name.startswith("custom_components.ev_cloud")
        and record.levelno >= logging.WARNING
    ]


async def test_setup_and_unload(
    hass: HomeAssistant, goe_entry: MockConfigEntry
) -> None:
    """The entry loads with one coordinator and unloads cleanly."""
    await setup_entry(hass, goe_entry)
    assert goe_entry.state is ConfigEntryState.LOADED
    assert list(goe_entry.runtime_data.coordinators) == ["goe_012345"]
    assert hass.states.get(POWER).state == "11.04"
    assert await hass.config_entries.async_unload(goe_entry.entry_id)
    assert goe_entry.state is ConfigEntryState.NOT_LOADED
    assert hass.states.get(POWER).state == STATE_UNAVAILABLE


async def test_setup_without_entries_registers_actions(hass: HomeAssistant) -> None:
    """Actions exist as soon as the integration is set up, even with no entry."""
    assert await async_setup_component(hass, DOMAIN, {})
    assert hass.services.has_service(DOMAIN, "start_charging")
    assert hass.services.has_service(DOMAIN, "stop_charging")


async def test_unknown_provider(hass: HomeAssistant) -> None:
    """An entry of a provider this version does not know fails with a clear error."""
    entry = MockConfigEntry(domain=DOMAIN, data={"provider": "future"})
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.reason is not None
    assert "does not know" in entry.reason


async def test_cloud_api_disabled_raises_repair_issue(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A 403 at setup retries later and tells the user how to enable the cloud API."""
    goe_charger.fault = GoeFault.CLOUD_API_DISABLED
    await setup_entry(hass, goe_entry)
    assert goe_entry.state is ConfigEntryState.SETUP_RETRY
    issue = issue_registry.async_get_issue(DOMAIN, ISSUE_ID)
    assert issue is not None
    assert issue.translation_key == "cloud_api_disabled"
    assert issue.translation_placeholders == {"name": f"go-e Charger {SERIAL}"}

    goe_charger.fault = GoeFault.NONE
    await hass.config_entries.async_reload(goe_entry.entry_id)
    await hass.async_block_till_done()
    assert goe_entry.state is ConfigEntryState.LOADED
    assert issue_registry.async_get_issue(DOMAIN, ISSUE_ID) is None


async def test_removing_entry_removes_its_issue(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    issue_registry: ir.IssueRegistry,
) -> None:
    """An issue of a removed entry does not outlive it."""
    goe_charger.fault = GoeFault.CLOUD_API_DISABLED
    await setup_entry(hass, goe_entry)
    assert issue_registry.async_get_issue(DOMAIN, ISSUE_ID) is not None
    await hass.config_entries.async_remove(goe_entry.entry_id)
    assert issue_registry.async_get_issue(DOMAIN, ISSUE_ID) is None


async def test_wrong_token_starts_reauth(
    hass: HomeAssistant, goe_entry: MockConfigEntry, goe_charger: SimCharger
) -> None:
    """A 401 stops the entry and asks the user for a new token."""
    goe_charger.token = "regenerated"
    await setup_entry(hass, goe_entry)
    assert goe_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


async def test_wrong_token_at_runtime_starts_reauth(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A token regenerated later also leads to reauth."""
    await setup_entry(hass, goe_entry)
    goe_charger.token = "regenerated"
    await _tick(hass, freezer)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


async def test_stale_at_setup_shows_last_known_values(
    hass: HomeAssistant, goe_entry: MockConfigEntry, goe_charger: SimCharger
) -> None:
    """A charger that stopped reporting still gets its entities, marked offline."""
    goe_charger.fault = GoeFault.STALE
    goe_charger.advance(3600)
    await setup_entry(hass, goe_entry)
    assert goe_entry.state is ConfigEntryState.LOADED
    assert hass.states.get(ONLINE).state == STATE_OFF
    assert hass.states.get(POWER).state == "11.04"
    # The outdated request, then the one with a long age that got the last data.
    assert [request["age"] for request in goe_charger.status_requests[-2:]] == [
        "30",
        "3660",
    ]


async def test_stale_keeps_values_and_marks_offline(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Outdated data keeps the last values, turns Online off, and logs once."""
    freezer.move_to("2026-11-01T12:00:00+00:00")
    await setup_entry(hass, goe_entry)
    goe_charger.fault = GoeFault.STALE
    goe_charger.advance(90)
    with caplog.at_level(logging.INFO):
        await _tick(hass, freezer, 30)
        last_update = hass.states.get("sensor.go_e_charger_012345_last_update")
        # The data age the cloud reported (90 s), not the time of our request.
        assert last_update.state == "2026-11-01T11:59:00+00:00"
        await _tick(hass, freezer, 120)
    assert hass.states.get(POWER).state == "11.04"
    assert hass.states.get(ONLINE).state == STATE_OFF
    messages = [r.getMessage() for r in caplog.records if "stopped reporting" in r.msg]
    assert len(messages) == 1
    # While offline the idle interval applies, even with a car connected.
    coordinator = goe_entry.runtime_data.coordinators["goe_012345"]
    assert coordinator.update_interval == timedelta(seconds=120)

    goe_charger.fault = GoeFault.NONE
    with caplog.at_level(logging.INFO):
        await _tick(hass, freezer)
    assert hass.states.get(ONLINE).state == STATE_ON
    assert any("reports again" in record.msg for record in caplog.records)
    assert coordinator.update_interval == timedelta(seconds=30)


@pytest.mark.parametrize(
    "fault",
    [
        GoeFault.OFFLINE,
        GoeFault.CLOUD_API_DISABLED,
        GoeFault.SERVER_ERROR,
        GoeFault.MALFORMED,
        GoeFault.SLOW,
    ],
)
async def test_faults_make_entities_unavailable_with_one_log_line(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    fault: GoeFault,
) -> None:
    """Each failure: unavailable, one log line without traceback or token; recovery."""
    await setup_entry(hass, goe_entry)
    goe_charger.fault = fault
    goe_charger.slow_seconds = 30  # longer than the client's 15 s timeout
    slow = fault is GoeFault.SLOW
    for _ in range(3):
        await _tick(hass, freezer, wait_for_poll=not slow)
        if slow:
            await _tick(hass, freezer, 20)  # past the client's 15 s timeout
    assert hass.states.get(POWER).state == STATE_UNAVAILABLE
    warnings = _integration_warnings(caplog)
    assert len(warnings) == 1, [record.getMessage() for record in warnings]
    assert warnings[0].exc_info is None
    assert all(TOKEN not in record.getMessage() for record in caplog.records)

    goe_charger.fault = GoeFault.NONE
    await _tick(hass, freezer)
    assert hass.states.get(POWER).state == "11.04"


async def test_poll_interval_follows_the_car(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Cloud: 30 s while a car is connected, 120 s without one."""
    await setup_entry(hass, goe_entry)
    coordinator = goe_entry.runtime_data.coordinators["goe_012345"]
    assert coordinator.update_interval == timedelta(seconds=30)
    goe_charger.unplug()
    await _tick(hass, freezer, 30)
    assert coordinator.update_interval == timedelta(seconds=120)
    requests = len(goe_charger.status_requests)
    await _tick(hass, freezer, 60)
    assert len(goe_charger.status_requests) == requests  # not yet due
    await _tick(hass, freezer, 60)
    assert len(goe_charger.status_requests) == requests + 1


async def test_local_entry(
    hass: HomeAssistant, goe_local_entry: MockConfigEntry
) -> None:
    """The local API entry polls every 5 s while charging."""
    await setup_entry(hass, goe_local_entry)
    assert goe_local_entry.state is ConfigEntryState.LOADED
    coordinator = goe_local_entry.runtime_data.coordinators["goe_012345"]
    assert coordinator.update_interval == timedelta(seconds=5)
    assert hass.states.get(POWER).state == "11.04"


@pytest.mark.parametrize("goe_model", [CORE, PRO])
@pytest.mark.parametrize("entry", ["goe_entry", "goe_local_entry"])
async def test_polls_leave_out_the_keys_a_core_lacks(
    hass: HomeAssistant,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
    request: pytest.FixtureRequest,
    caplog: pytest.LogCaptureFixture,
    entry: str,
) -> None:
    """The first poll learns what a CORE or PRO lacks; the next asks without it."""
    config_entry: MockConfigEntry = request.getfixturevalue(entry)
    await setup_entry(hass, config_entry)
    assert config_entry.state is ConfigEntryState.LOADED
    await _tick(hass, freezer)
    filters = [set(r["filter"].split(",")) for r in goe_charger.status_requests]
    assert filters == [set(STATUS_KEYS), set(STATUS_KEYS) - HOME_ONLY_KEYS]
    assert goe_charger.status_codes == [400, 200]
    assert hass.states.get(POWER).state == "11.04"
    assert _integration_warnings(caplog) == []


async def test_firmware_update_reaches_the_device_registry(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    """After a firmware update the device page shows the new version and name."""
    await setup_entry(hass, goe_entry)
    [device] = dr.async_entries_for_config_entry(device_registry, goe_entry.entry_id)
    assert device.sw_version == "60.4"
    goe_charger.state["fwv"] = "61.1"
    goe_charger.state["fna"] = "Garage"
    await _tick(hass, freezer)
    [device] = dr.async_entries_for_config_entry(device_registry, goe_entry.entry_id)
    assert (device.sw_version, device.name) == ("61.1", "Garage")
