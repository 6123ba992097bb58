"""OVMS accounts in Home Assistant, against the OVMS server simulator.

Every test runs against both server generations: the current server software
("v3") and the older "v2 server" that servers such as ovms.dexters-web.de still
run (openvehicles/Open-Vehicle-Server @ eae8472, `v2/server/ovms_server.pl`).
"""

from __future__ import annotations

from datetime import timedelta
import json
import logging
from pathlib import Path
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant import config_entries
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.json import JSONEncoder
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.ev_cloud.api import VehicleNotAvailableError
from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.diagnostics import async_get_config_entry_diagnostics
from custom_components.ev_cloud.flow import SECRET_PLACEHOLDER
from custom_components.ev_cloud.providers.ovms.account import (
    BUDGET_PER_MINUTE,
    POLICY,
    REQUESTS_PER_POLL_EACH_RECORD,
    OvmsCar,
)
from tests.conftest import setup_entry
from tests.entities import registry_and_states
from tests.forms import suggested
from tests.ovms.fixtures import OVMS_PASSWORD, OVMS_TOKEN, OVMS_USER, ovms_data
from tests.simulators.common import issued
from tests.simulators.ovms import OvmsFault, OvmsSimulator, SimVehicle

COMPONENT = Path(__file__).parent.parent.parent / "custom_components" / "ev_cloud"
DEMO_BATTERY = "sensor.ovms_demo_battery"
DEMO_ONLINE = "binary_sensor.ovms_demo_online"
DEMO_LIVE = "switch.ovms_demo_live_updates"


@pytest.fixture(params=["v3", "v2"])
def ovms_server(request: pytest.FixtureRequest) -> str:
    """The simulated server's software: both generations."""
    return str(request.param)


# For what only the current server software has (API tokens, a rate limit,
# connecting a car over the REST API).
v3_only = pytest.mark.parametrize("ovms_server", ["v3"])


def _account_secret(sim: OvmsSimulator) -> str:
    """A second valid credential: the API token, or on the v2 server the password."""
    return OVMS_TOKEN if sim.server == "v3" else OVMS_PASSWORD


async def _tick(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: OvmsSimulator,
    seconds: float,
) -> None:
    """Let `seconds` pass for Home Assistant and the server alike."""
    sim.advance(seconds)
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def _logins(sim: OvmsSimulator) -> int:
    return sum(
        1 for method, path in sim.requests if path == "/api/cookie" and method == "GET"
    )


# --- config flow -----------------------------------------------------------------


async def _open_ovms_form(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "ovms"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "ovms"
    return result


def _login_input(sim: OvmsSimulator, **overrides: Any) -> dict[str, Any]:
    return {
        "server_url": f"{sim.url}/",
        "username": OVMS_USER,
        "password": OVMS_PASSWORD,
        **overrides,
    }


async def test_flow_adds_chosen_vehicles(
    hass: HomeAssistant, ovms_sim: OvmsSimulator
) -> None:
    """Log in, choose vehicles; the others are remembered as excluded."""
    form = await _open_ovms_form(hass)
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _login_input(ovms_sim)
    )
    assert result["step_id"] == "ovms_vehicles"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"vehicles": []}
    )
    assert result["errors"] == {"base": "no_vehicle_selected"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"vehicles": ["DEMO"]}
    )
    # Commands are optional: an empty answer skips them.
    assert result["step_id"] == "ovms_commands_setup"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"OVMS {OVMS_USER}"
    assert result["data"] == ovms_data(ovms_sim)
    assert result["options"] == {"excluded_vehicles": ["ROADSTER"]}
    entry = result["result"]
    assert entry.unique_id == f"{ovms_sim.url.removeprefix('http://')}/demo"
    await hass.async_block_till_done()
    assert hass.states.get(DEMO_BATTERY) is not None
    assert hass.states.get("sensor.ovms_roadster_battery") is None
    # The flow's own session was closed again.
    assert ("DELETE", "/api/cookie") in ovms_sim.requests


@pytest.mark.parametrize(
    ("user_input", "fault", "errors"),
    [
        ({"server_url": "ovms.example"}, OvmsFault.NONE, {"server_url": "invalid_url"}),
        ({"password": "wrong"}, OvmsFault.NONE, {"base": "invalid_auth"}),
        ({}, OvmsFault.SERVER_ERROR, {"base": "cannot_connect"}),
        ({}, OvmsFault.MALFORMED, {"base": "cannot_connect"}),
    ],
)
async def test_flow_errors_recover(
    hass: HomeAssistant,
    ovms_sim: OvmsSimulator,
    user_input: dict[str, Any],
    fault: OvmsFault,
    errors: dict[str, str],
) -> None:
    """Each problem is shown on the form; fixing it continues the flow."""
    form = await _open_ovms_form(hass)
    ovms_sim.fault = fault
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _login_input(ovms_sim, **user_input)
    )
    assert result["errors"] == errors
    ovms_sim.fault = OvmsFault.NONE
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _login_input(ovms_sim, password=_account_secret(ovms_sim))
    )
    assert result["step_id"] == "ovms_vehicles"


@pytest.mark.parametrize("ovms_server", ["v2"])
async def test_flow_v2_server_refuses_an_api_token(
    hass: HomeAssistant, ovms_sim: OvmsSimulator
) -> None:
    """The v2 server has no API tokens: a token is a wrong password there."""
    form = await _open_ovms_form(hass)
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _login_input(ovms_sim, password=OVMS_TOKEN)
    )
    assert result["errors"] == {"base": "invalid_auth"}


async def test_flow_account_without_vehicles(
    hass: HomeAssistant, ovms_sim: OvmsSimulator
) -> None:
    """An account with no vehicle cannot be added."""
    ovms_sim.add_user("empty", "empty-password")
    form = await _open_ovms_form(hass)
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"],
        _login_input(ovms_sim, username="empty", password="empty-password"),
    )
    assert result["errors"] == {"base": "no_vehicles"}


@v3_only  # the v2 server has no rate limit
async def test_flow_rate_limited(hass: HomeAssistant, ovms_sim: OvmsSimulator) -> None:
    """A server that refuses with 429 gets its own message."""
    ovms_sim.burst = 0
    ovms_sim.rate_limits.clear()
    form = await _open_ovms_form(hass)
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _login_input(ovms_sim)
    )
    assert result["errors"] == {"base": "rate_limited"}


async def test_flow_already_configured(
    hass: HomeAssistant, ovms_sim: OvmsSimulator, ovms_entry: MockConfigEntry
) -> None:
    """The same user on the same server cannot be added twice."""
    ovms_entry.add_to_hass(hass)
    form = await _open_ovms_form(hass)
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _login_input(ovms_sim)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reauth_and_reconfigure(
    hass: HomeAssistant, ovms_sim: OvmsSimulator, ovms_entry: MockConfigEntry
) -> None:
    """A new password (or token) is checked; reconfigure keeps the account."""
    ovms_entry.add_to_hass(hass)
    result = await ovms_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"password": "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"password": _account_secret(ovms_sim)}
    )
    assert result["reason"] == "reauth_successful"
    assert ovms_entry.data["password"] == _account_secret(ovms_sim)

    ovms_sim.add_user("other", "other-password")
    ovms_sim.add_vehicle(SimVehicle(vehicle_id="OTHER", owner="other"))
    result = await ovms_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "ovms"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _login_input(ovms_sim, username="other", password="other-password"),
    )
    assert result["reason"] == "wrong_device"
    result = await ovms_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _login_input(ovms_sim)
    )
    assert result["reason"] == "reconfigure_successful"
    assert ovms_entry.data["password"] == OVMS_PASSWORD
    await hass.async_block_till_done()
    assert ovms_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_keeps_the_stored_password(
    hass: HomeAssistant, ovms_sim: OvmsSimulator, ovms_entry: MockConfigEntry
) -> None:
    """The form shows a placeholder, not the password; sent back, it keeps it."""
    await setup_entry(hass, ovms_entry)
    result = await ovms_entry.start_reconfigure_flow(hass)
    assert suggested(result) == {
        "server_url": ovms_sim.url,
        "username": OVMS_USER,
        "password": SECRET_PLACEHOLDER,
    }
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _login_input(ovms_sim, password="")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"password": "secret_required"}

    result = await ovms_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _login_input(ovms_sim, password=SECRET_PLACEHOLDER)
    )
    assert result["reason"] == "reconfigure_successful"
    assert ovms_entry.data == ovms_data(ovms_sim)
    await hass.async_block_till_done()
    assert ovms_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_checks_a_new_password(
    hass: HomeAssistant, ovms_sim: OvmsSimulator, ovms_entry: MockConfigEntry
) -> None:
    """A typed password is checked and replaces the stored one; it is hidden too."""
    await setup_entry(hass, ovms_entry)
    new_password = issued("demo-password-new-secret")
    ovms_sim.users[OVMS_USER].password = new_password
    result = await ovms_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _login_input(ovms_sim, password="wrong-password")
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert suggested(result)["password"] == SECRET_PLACEHOLDER

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _login_input(ovms_sim, password=new_password)
    )
    assert result["reason"] == "reconfigure_successful"
    assert ovms_entry.data["password"] == new_password


async def test_options_choose_vehicles(
    hass: HomeAssistant, ovms_entry: MockConfigEntry
) -> None:
    """The options list the account's vehicles; unticked ones disappear."""
    await setup_entry(hass, ovms_entry)
    result = await hass.config_entries.options.async_init(ovms_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {"active_interval": 60, "idle_interval": 600, "vehicles": ["ROADSTER"]},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert ovms_entry.options["excluded_vehicles"] == ["DEMO"]
    await hass.async_block_till_done()
    assert hass.states.get(DEMO_BATTERY) is None
    assert hass.states.get("sensor.ovms_roadster_battery") is not None


# --- entities and polling ---------------------------------------------------------


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_entities(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every entity of both vehicles (km and miles), registry entry and state."""
    await setup_entry(hass, ovms_entry)
    assert ovms_entry.state is ConfigEntryState.LOADED
    assert registry_and_states(hass, entity_registry, ovms_entry.entry_id) == snapshot


async def test_session_expiry_logs_in_again(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An expired session costs one new login, and no entity goes unavailable."""
    await setup_entry(hass, ovms_entry)
    assert _logins(ovms_sim) == 1
    ovms_sim.expire_sessions()
    await _tick(hass, freezer, ovms_sim, 60)
    assert _logins(ovms_sim) == 2
    assert hass.states.get(DEMO_BATTERY).state != STATE_UNAVAILABLE


async def test_silent_car_is_stale_and_polled_less(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Old records keep their values, turn Online off, and slow the polling."""
    await setup_entry(hass, ovms_entry)
    coordinator = ovms_entry.runtime_data.coordinators["ovms_DEMO"]
    battery = hass.states.get(DEMO_BATTERY).state
    assert hass.states.get(DEMO_ONLINE).state == STATE_ON
    ovms_sim.vehicle("DEMO").set_silent(True)
    intervals = []
    for _ in range(4):
        await _tick(
            hass, freezer, ovms_sim, coordinator.update_interval.total_seconds()
        )
        intervals.append(coordinator.update_interval.total_seconds())
    assert hass.states.get(DEMO_ONLINE).state == STATE_OFF
    assert hass.states.get(DEMO_BATTERY).state == battery
    assert intervals == sorted(intervals)
    assert intervals[-1] > intervals[0]
    # The charge record did not change, so it was not asked for again.
    charge_reads = [path for _, path in ovms_sim.requests if path == "/api/charge/DEMO"]
    assert len(charge_reads) <= 2

    ovms_sim.vehicle("DEMO").set_silent(False)
    await _tick(hass, freezer, ovms_sim, coordinator.update_interval.seconds)
    assert hass.states.get(DEMO_ONLINE).state == STATE_ON


@v3_only  # the v2 server has no rate limit
async def test_rate_limit_pauses_the_whole_server(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A 429 makes every vehicle on that server wait instead of retrying at once."""
    await setup_entry(hass, ovms_entry)
    ovms_sim.burst = 0
    ovms_sim.per_minute = 0
    ovms_sim.rate_limits.clear()
    requests = len(ovms_sim.requests)
    await _tick(hass, freezer, ovms_sim, 300)
    assert hass.states.get(DEMO_BATTERY).state == STATE_UNAVAILABLE
    # The two vehicles polled at once; their refused requests paused the server.
    refused = len(ovms_sim.requests) - requests
    assert 1 <= refused <= 2
    await _tick(hass, freezer, ovms_sim, 30)
    assert len(ovms_sim.requests) - requests == refused


async def test_vehicles_come_and_go(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A vehicle added to the account appears; a removed one disappears."""
    await setup_entry(hass, ovms_entry)
    ovms_sim.add_vehicle(SimVehicle(vehicle_id="NEW1", owner=OVMS_USER))
    ovms_sim.remove_vehicle("ROADSTER")
    await _tick(hass, freezer, ovms_sim, 600)
    assert hass.states.get("sensor.ovms_new1_battery") is not None
    names = {
        device.name
        for device in dr.async_entries_for_config_entry(
            device_registry, ovms_entry.entry_id
        )
    }
    assert names == {"OVMS DEMO", "OVMS NEW1"}
    assert hass.states.get("sensor.ovms_roadster_battery") is None


@v3_only  # the v2 server cannot connect a car: see the tests below
async def test_live_updates(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Live updates connect the car, survive a new login and end with the entry."""
    await setup_entry(hass, ovms_entry)
    assert hass.states.get(DEMO_LIVE).state == STATE_OFF
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: DEMO_LIVE}, blocking=True
    )
    await hass.async_block_till_done()
    assert ovms_sim.app_count("DEMO") == 1
    assert ovms_entry.options["live_vehicles"] == ["DEMO"]
    assert hass.states.get(DEMO_LIVE).state == STATE_ON

    ovms_sim.expire_sessions()  # disconnects the car
    assert ovms_sim.app_count("DEMO") == 0
    coordinator = ovms_entry.runtime_data.coordinators["ovms_DEMO"]
    await _tick(hass, freezer, ovms_sim, coordinator.update_interval.seconds)
    assert ovms_sim.app_count("DEMO") == 1

    await hass.config_entries.async_unload(ovms_entry.entry_id)
    assert ovms_sim.app_count("DEMO") == 0
    assert not ovms_sim.sessions

    await hass.config_entries.async_setup(ovms_entry.entry_id)
    await hass.async_block_till_done()
    assert ovms_sim.app_count("DEMO") == 1  # remembered across a reload
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: DEMO_LIVE}, blocking=True
    )
    assert ovms_sim.app_count("DEMO") == 0
    assert ovms_entry.options["live_vehicles"] == []


async def test_charge_actions_explain_missing_commands(
    hass: HomeAssistant, ovms_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """OVMS cannot start or stop charging over HTTP; the action says so."""
    await setup_entry(hass, ovms_entry)
    device = next(
        device
        for device in dr.async_entries_for_config_entry(
            device_registry, ovms_entry.entry_id
        )
        if device.name == "OVMS DEMO"
    )
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "start_charging", {"device_id": device.id}, blocking=True
        )
    assert caught.value.translation_key == "ovms_commands_not_supported"


async def test_wrong_password_starts_reauth(
    hass: HomeAssistant, ovms_entry: MockConfigEntry, ovms_sim: OvmsSimulator
) -> None:
    """A changed password stops the entry and asks for the new one."""
    ovms_sim.users[OVMS_USER].password = "changed"
    ovms_sim.users[OVMS_USER].tokens.clear()
    await setup_entry(hass, ovms_entry)
    assert ovms_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


async def test_diagnostics_hide_credentials_and_position(
    hass: HomeAssistant, ovms_entry: MockConfigEntry
) -> None:
    """No password, user name or coordinates in the diagnostics.

    Called directly: the frozen clock of the OVMS fixture would make the test
    client's access token look expired to the HTTP view.
    """
    await setup_entry(hass, ovms_entry)
    result = await async_get_config_entry_diagnostics(hass, ovms_entry)
    dumped = json.dumps(result, cls=JSONEncoder)
    for secret in (OVMS_PASSWORD, OVMS_USER, "51.477928", "-0.001545"):
        assert secret not in dumped
    assert len(result["devices"]) == 2


async def test_diagnostics_hide_vehicle_ids(
    hass: HomeAssistant, ovms_entry: MockConfigEntry
) -> None:
    """Vehicle ids are often plates or VINs: none in states, options or keys."""
    ovms_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        ovms_entry,
        options={"excluded_vehicles": ["ROADSTER"], "live_vehicles": ["DEMO"]},
    )
    await hass.config_entries.async_setup(ovms_entry.entry_id)
    await hass.async_block_till_done()
    result = await async_get_config_entry_diagnostics(hass, ovms_entry)
    dumped = json.dumps(result, cls=JSONEncoder)
    assert "DEMO" not in dumped
    assert "ROADSTER" not in dumped
    assert result["devices_listed"] == 1


async def test_server_down_at_setup_retries(
    hass: HomeAssistant, ovms_entry: MockConfigEntry, ovms_sim: OvmsSimulator
) -> None:
    """A server error while logging in or listing: setup is retried later."""
    ovms_sim.fault = OvmsFault.SERVER_ERROR
    await setup_entry(hass, ovms_entry)
    assert ovms_entry.state is ConfigEntryState.SETUP_RETRY


async def test_vehicle_list_failures_keep_the_vehicles(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A failed listing changes nothing; an unreadable new vehicle waits.

    A paranoid (end-to-end encrypted) vehicle is listed but its records cannot be
    read: it gets its device, named as a read one is, and the entities every car
    has, unavailable until it can be read.
    """
    await setup_entry(hass, ovms_entry)
    ovms_sim.add_vehicle(
        SimVehicle(vehicle_id="SECRET", owner=OVMS_USER, paranoid=True)
    )
    ovms_sim.fault = OvmsFault.SERVER_ERROR
    await _tick(hass, freezer, ovms_sim, 600)
    ovms_sim.fault = OvmsFault.NONE
    assert set(ovms_entry.runtime_data.coordinators) == {"ovms_DEMO", "ovms_ROADSTER"}
    await _tick(hass, freezer, ovms_sim, 600)
    assert set(ovms_entry.runtime_data.coordinators) == {"ovms_DEMO", "ovms_ROADSTER"}
    assert set(ovms_entry.runtime_data.unread) == {"ovms_SECRET"}
    assert hass.states.get("sensor.ovms_secret_battery").state == STATE_UNAVAILABLE
    assert hass.states.get(DEMO_BATTERY).state != STATE_UNAVAILABLE


async def test_unreadable_vehicle_does_not_block_the_account(
    hass: HomeAssistant, ovms_entry: MockConfigEntry, ovms_sim: OvmsSimulator
) -> None:
    """A paranoid vehicle at setup is left out; the others load."""
    ovms_sim.add_vehicle(
        SimVehicle(vehicle_id="SECRET", owner=OVMS_USER, paranoid=True)
    )
    await setup_entry(hass, ovms_entry)
    assert ovms_entry.state is ConfigEntryState.LOADED
    assert set(ovms_entry.runtime_data.coordinators) == {"ovms_DEMO", "ovms_ROADSTER"}


async def test_requests_per_poll(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A parked car costs one request a poll: all its records at once."""
    ovms_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        ovms_entry,
        options={"excluded_vehicles": ["DEMO"]},  # only the parked car
    )
    await hass.config_entries.async_setup(ovms_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = ovms_entry.runtime_data.coordinators["ovms_ROADSTER"]
    before = len(ovms_sim.requests)
    polls = 20
    for _ in range(polls):
        await _tick(hass, freezer, ovms_sim, coordinator.update_interval.seconds)
    vehicle_requests = [
        path for _, path in ovms_sim.requests[before:] if path.endswith("/ROADSTER")
    ]
    assert vehicle_requests == ["/api/protocol/ROADSTER"] * polls


async def test_unreadable_vehicle_raises_a_repair_and_is_read_once(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Paranoid mode is the user's to change: say so, once per listing, and recover.

    The vehicle's records are asked for once per listing, not once to test and once
    to read.
    """
    secret = ovms_sim.add_vehicle(
        SimVehicle(vehicle_id="SECRET", owner=OVMS_USER, paranoid=True)
    )
    await setup_entry(hass, ovms_entry)
    issue_id = f"{ovms_entry.entry_id}_ovms_SECRET_vehicle_paranoid"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "vehicle_paranoid"
    assert issue.translation_placeholders == {"name": "OVMS demo", "vehicle": "SECRET"}

    before = len(ovms_sim.requests)
    await _tick(hass, freezer, ovms_sim, 600)  # the next listing
    reads = [p for _, p in ovms_sim.requests[before:] if p == "/api/protocol/SECRET"]
    assert len(reads) == 1
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None

    secret.paranoid = False
    await _tick(hass, freezer, ovms_sim, 600)
    assert "ovms_SECRET" in ovms_entry.runtime_data.coordinators
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_failing_vehicle_at_startup_keeps_its_registry_entries(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A car that fails at a restart keeps its device and the user's settings.

    Its records answer 500, yet its device, names, area and disabled flags stay;
    it comes back when it can be read again.
    """
    await setup_entry(hass, ovms_entry)
    battery = "sensor.ovms_roadster_battery"
    speed = "sensor.ovms_roadster_speed"
    entity_registry.async_update_entity(battery, name="Roadster charge")
    entity_registry.async_update_entity(
        speed, disabled_by=er.RegistryEntryDisabler.USER
    )
    [car] = [
        device
        for device in dr.async_entries_for_config_entry(
            device_registry, ovms_entry.entry_id
        )
        if (DOMAIN, "ovms_ROADSTER") in device.identifiers
    ]
    device_registry.async_update_device(car.id, area_id="garage", name_by_user="Red")

    ovms_sim.vehicle("ROADSTER").failing = True
    assert await hass.config_entries.async_reload(ovms_entry.entry_id)
    await hass.async_block_till_done()
    assert ovms_entry.state is ConfigEntryState.LOADED
    assert set(ovms_entry.runtime_data.coordinators) == {"ovms_DEMO"}
    kept = device_registry.async_get(car.id)
    assert kept is not None
    assert (kept.area_id, kept.name_by_user) == ("garage", "Red")
    assert entity_registry.async_get(battery).name == "Roadster charge"
    assert entity_registry.async_get(speed).disabled_by is er.RegistryEntryDisabler.USER
    assert hass.states.get(battery).state == STATE_UNAVAILABLE

    ovms_sim.vehicle("ROADSTER").failing = False
    await _tick(hass, freezer, ovms_sim, 600)  # the next listing reads it again
    assert "ovms_ROADSTER" in ovms_entry.runtime_data.coordinators
    assert hass.states.get(battery).state not in (STATE_UNAVAILABLE, "unknown")
    assert hass.states.get(battery).name == "Roadster charge"


@pytest.mark.parametrize("reason", ["paranoid", "not_owned"])
def test_unreadable_vehicle_issues_are_translated(reason: str) -> None:
    """Each reason the client reports has a repair text in every language."""
    car = OvmsCar.__new__(OvmsCar)
    car.device_id = "CAR"
    issue = car.repair_issue(VehicleNotAvailableError("no", reason))
    assert issue is not None
    for language in ("en", "de"):
        path = COMPONENT / "translations" / f"{language}.json"
        texts = json.loads(path.read_text())["issues"][issue.translation_key]
        assert "{vehicle}" in texts["description"]


# --- the v2 server: Live updates cannot connect, sessions end when idle -------------


def _problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Warnings and errors of the integration, and every failed poll."""
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("custom_components.ev_cloud")
        and (
            record.levelno >= logging.WARNING or "Error fetching" in record.getMessage()
        )
    ]


def _connects(sim: OvmsSimulator, vehicle_id: str) -> int:
    return sim.requests.count(("GET", f"/api/vehicle/{vehicle_id}"))


@pytest.mark.parametrize("ovms_server", ["v2"])
async def test_live_updates_on_a_v2_server_say_why_they_cannot_connect(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The v2 server answers connect with 404 "Not yet implemented".

    Turning Live updates on says, translated, that this server cannot connect
    the car; the switch stays off, polling goes on, and the server is not asked
    again.
    """
    await setup_entry(hass, ovms_entry)
    for _ in range(2):
        with pytest.raises(ServiceValidationError) as caught:
            await hass.services.async_call(
                SWITCH_DOMAIN,
                SERVICE_TURN_ON,
                {ATTR_ENTITY_ID: DEMO_LIVE},
                blocking=True,
            )
        assert caught.value.translation_key == "ovms_live_not_supported"
        assert caught.value.translation_placeholders == {"vehicle": "DEMO"}
    assert _connects(ovms_sim, "DEMO") == 1
    assert hass.states.get(DEMO_LIVE).state == STATE_OFF
    assert ovms_entry.options.get("live_vehicles", []) == []

    battery = hass.states.get(DEMO_BATTERY).state
    await _tick(hass, freezer, ovms_sim, 600)
    assert hass.states.get(DEMO_BATTERY).state != battery  # still polled
    assert _connects(ovms_sim, "DEMO") == 1
    assert _problems(caplog) == []
    result = await async_get_config_entry_diagnostics(hass, ovms_entry)
    assert result["account"]["server_software"] == "v2"


@pytest.mark.parametrize("ovms_server", ["v2"])
async def test_live_updates_left_on_fall_back_to_polling_on_a_v2_server(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Live updates on (from before) on a v2 server: one try to connect, one note.

    No poll fails, none asks to connect again, and the switch shows that Live
    updates are not at work.
    """
    ovms_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        ovms_entry, options={"excluded_vehicles": [], "live_vehicles": ["DEMO"]}
    )
    caplog.set_level(logging.INFO, "custom_components.ev_cloud")
    await hass.config_entries.async_setup(ovms_entry.entry_id)
    await hass.async_block_till_done()
    assert ovms_entry.state is ConfigEntryState.LOADED
    for _ in range(6):  # sessions end between these polls
        await _tick(hass, freezer, ovms_sim, 300)
    assert _connects(ovms_sim, "DEMO") == 1
    assert _logins(ovms_sim) > 1
    assert hass.states.get(DEMO_LIVE).state == STATE_OFF
    assert hass.states.get(DEMO_BATTERY).state != STATE_UNAVAILABLE
    assert _problems(caplog) == []
    notes = [r for r in caplog.records if "older server software" in r.getMessage()]
    assert len(notes) == 1

    # Turning it off works too (nothing to disconnect on this server).
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: DEMO_LIVE}, blocking=True
    )
    assert ovms_entry.options["live_vehicles"] == []
    assert ("DELETE", "/api/vehicle/DEMO") not in ovms_sim.requests
    await hass.config_entries.async_unload(ovms_entry.entry_id)
    assert ("DELETE", "/api/vehicle/DEMO") not in ovms_sim.requests


def _refused(sim: OvmsSimulator) -> int:
    """Requests sent again right after a login: the server had refused them."""
    requests = sim.requests
    login = ("GET", "/api/cookie")
    return sum(
        1
        for before, middle, after in zip(
            requests, requests[1:], requests[2:], strict=False
        )
        if middle == login and before == after and before != login
    )


@pytest.mark.parametrize("ovms_server", ["v2"])
async def test_a_day_parked_and_charging_on_a_v2_server(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """24 simulated hours on a server whose sessions end after 120 idle seconds.

    DEMO charges for hours (polled every minute: its session stays alive), then
    both cars are parked (polled every five minutes: every session ends between
    polls), then DEMO charges again. No poll fails, every car keeps being read;
    after the first session end the client logs in before a poll instead of
    having it refused, and renews nothing while the polls keep the session alive.
    """
    demo, roadster = ovms_sim.vehicle("DEMO"), ovms_sim.vehicle("ROADSTER")
    demo.soc, demo.charge_limit_soc, demo.charge_power_kw = 20.0, 80, 3.6
    await setup_entry(hass, ovms_entry)
    coordinators = ovms_entry.runtime_data.coordinators
    step = 30
    first_expiry: int | None = None
    logins_at_second_charge = logins_while_charging = 0
    for elapsed in range(step, 24 * 3600 + 1, step):
        if elapsed == 20 * 3600:  # plugged in since the first charge: charge on
            demo.charge_limit_soc = 100
            demo.start_charging()
        if elapsed == 20 * 3600 + 600:  # the polls are back at one a minute
            logins_at_second_charge = _logins(ovms_sim)
        if logins_at_second_charge and demo.charging:
            logins_while_charging = _logins(ovms_sim) - logins_at_second_charge
        sessions = set(ovms_sim.sessions)
        await _tick(hass, freezer, ovms_sim, step)
        if first_expiry is None and sessions - set(ovms_sim.sessions):
            first_expiry = elapsed
        for entity_id in (DEMO_BATTERY, "sensor.ovms_roadster_battery"):
            assert hass.states.get(entity_id).state != STATE_UNAVAILABLE, elapsed
    # The sessions ended while the cars were parked, not before.
    assert first_expiry is not None
    assert first_expiry > 6 * 3600
    assert _problems(caplog) == []  # no failed poll, no warning
    assert demo.chargestate == "done"
    assert float(hass.states.get(DEMO_BATTERY).state) == 100.0
    # Every car was read within its last poll interval.
    for key, coordinator in coordinators.items():
        assert coordinator.last_update_success, key
        age = dt_util.utcnow() - coordinator.data.data_time
        assert age <= coordinator.update_interval + timedelta(seconds=step), key
    reads = {
        vehicle.vehicle_id: ovms_sim.requests.count(
            ("GET", f"/api/protocol/{vehicle.vehicle_id}")
        )
        for vehicle in (demo, roadster)
    }
    assert reads["ROADSTER"] >= 24 * 3600 / 300 - 1
    assert reads["DEMO"] > reads["ROADSTER"]  # every minute while it charged
    # A session end costs a refused request (sent again after a login) only
    # while the client learns how long the server keeps an idle session (the
    # first end, and a shorter idle time later); then it logs in before a poll
    # that would meet an ended session.
    assert 1 <= _refused(ovms_sim) <= 3
    assert _logins(ovms_sim) > 24 * 3600 / 300 / 2  # a session per parked poll
    # While the car charged again (hours), its polls kept the session alive:
    # no new login, though the client had learnt a lifetime.
    assert logins_at_second_charge
    assert logins_while_charging == 0
    result = await async_get_config_entry_diagnostics(hass, ovms_entry)
    assert result["account"]["server_software"] == "v2"


# --- a server that refuses /api/protocol: each record is read on its own --------


async def test_protocol_refused_reads_each_record(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A 404 on `/api/protocol` is said once; the per-record calls read the cars.

    The entry loads with both devices and their values; later polls ask only
    the per-record calls (four requests), and the diagnostics say so.
    """
    ovms_sim.protocol_refused = True
    await setup_entry(hass, ovms_entry)
    assert ovms_entry.state is ConfigEntryState.LOADED
    devices = dr.async_entries_for_config_entry(device_registry, ovms_entry.entry_id)
    assert {device.name for device in devices} == {"OVMS DEMO", "OVMS ROADSTER"}
    demo = ovms_sim.vehicle("DEMO")
    assert float(hass.states.get(DEMO_BATTERY).state) == round(demo.soc, 1)
    assert hass.states.get("sensor.ovms_roadster_battery").state == "80.0"
    tracker = hass.states.get("device_tracker.ovms_demo_location")
    assert tracker.attributes["latitude"] == demo.latitude
    assert hass.states.get(DEMO_ONLINE).state == STATE_ON
    warnings = [r for r in caplog.records if "/api/protocol" in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING

    coordinator = ovms_entry.runtime_data.coordinators["ovms_ROADSTER"]
    before = len(ovms_sim.requests)
    await _tick(hass, freezer, ovms_sim, coordinator.update_interval.total_seconds())
    reads = sorted(
        path for _, path in ovms_sim.requests[before:] if path.endswith("/ROADSTER")
    )
    assert reads == [
        "/api/charge/ROADSTER",
        "/api/location/ROADSTER",
        "/api/status/ROADSTER",
        "/api/tpms/ROADSTER",
    ]
    assert ovms_sim.requests.count(("GET", "/api/protocol/ROADSTER")) <= 1
    result = await async_get_config_entry_diagnostics(hass, ovms_entry)
    assert result["account"]["reads_each_record"] is True
    assert len(warnings) == 1


@v3_only  # the rate limit is the v3 server's
async def test_reading_each_record_polls_within_the_server_budget(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Four requests a poll: charging cars are polled as often as the budget allows.

    14 charging cars, read record by record, cannot all be read every minute
    (the active interval) within 60 requests a minute: the budget sets their
    interval, and no poll is refused or put off.
    """
    for index in range(12):
        car = ovms_sim.add_vehicle(SimVehicle(f"CAR{index:02d}", OVMS_USER))
        car.plug_in()
        car.start_charging()
    ovms_sim.protocol_refused = True
    await setup_entry(hass, ovms_entry)
    for _ in range(40):
        await _tick(hass, freezer, ovms_sim, 30)
    # (At setup the budget may not reach every car; the next listing does.)
    coordinators = ovms_entry.runtime_data.coordinators
    assert len(coordinators) == 14
    assert _problems(caplog) == [ovms_warning(caplog)]
    charging = {
        key: c.update_interval.total_seconds()
        for key, c in coordinators.items()
        if key.startswith("ovms_CAR")
    }
    budget = REQUESTS_PER_POLL_EACH_RECORD * len(coordinators) * 60 / BUDGET_PER_MINUTE
    assert budget > POLICY.active
    assert set(charging.values()) == {budget}


def ovms_warning(caplog: pytest.LogCaptureFixture) -> str:
    """The one warning that the server refused /api/protocol."""
    [message] = [
        r.getMessage() for r in caplog.records if "/api/protocol" in r.getMessage()
    ]
    return message
