"""OVMS commands over the v2 protocol, against the simulated server (real TCP)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import json
import socket
from typing import Any

from homeassistant.components.button import DOMAIN as BUTTON_DOMAIN, SERVICE_PRESS
from homeassistant.components.lock import DOMAIN as LOCK_DOMAIN, LockState
from homeassistant.components.number import (
    ATTR_VALUE,
    DOMAIN as NUMBER_DOMAIN,
    SERVICE_SET_VALUE,
)
from homeassistant.components.repairs import ConfirmRepairFlow
from homeassistant.components.select import (
    ATTR_OPTION,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_LOCK,
    SERVICE_UNLOCK,
    STATE_OFF,
    STATE_ON,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.json import JSONEncoder
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.ev_cloud.api import CommunicationError
from custom_components.ev_cloud.api.ovms_v2 import OvmsV2Client
from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.diagnostics import async_get_config_entry_diagnostics
from custom_components.ev_cloud.flow import SECRET_PLACEHOLDER
from custom_components.ev_cloud.providers.ovms.commands import issue_id
from custom_components.ev_cloud.providers.ovms.flow import (
    format_address,
    kept_data,
    parse_address,
)
from custom_components.ev_cloud.providers.ovms.repairs import create_repair_flow
from custom_components.ev_cloud.repairs import async_create_fix_flow
from tests.conftest import setup_entry
from tests.entities import registry_and_states
from tests.forms import suggested
from tests.ovms.fixtures import (
    OVMS_PASSWORD,
    ROADSTER_V2_PASSWORD,
    V2_PASSWORD,
    V2_PIN,
    ovms_data,
    v2_data,
)
from tests.simulators.ovms import OvmsSimulator
from tests.simulators.ovms_v2 import OvmsV2Server

DEMO_CHARGING = "binary_sensor.ovms_demo_charging"
DEMO_CURRENT = "number.ovms_demo_charge_current_limit"
DEMO_MODE = "select.ovms_demo_charge_mode"
DEMO_WAKE = "button.ovms_demo_wake_up"
DEMO_LOCK = "lock.ovms_demo_lock"
NEW_V2_PASSWORD = "changed-on-the-module-secret"
NEW_ENTITIES = (DEMO_CURRENT, DEMO_MODE, DEMO_WAKE, DEMO_LOCK)


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, name: str) -> str:
    registry = dr.async_get(hass)
    return next(
        device.id
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if device.name == f"OVMS {name}"
    )


async def _settle(hass: HomeAssistant) -> None:
    """Let the debounced refresh after a command run (its cooldown is 10 s)."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=11))
    await hass.async_block_till_done()


async def _call(hass: HomeAssistant, domain: str, service: str, data: dict) -> None:
    """Call an action, then wait for the refresh that shows its effect."""
    await hass.services.async_call(domain, service, data, blocking=True)
    await _settle(hass)


async def _charge(
    hass: HomeAssistant, entry: MockConfigEntry, name: str, start: bool
) -> None:
    await _call(
        hass,
        DOMAIN,
        "start_charging" if start else "stop_charging",
        {"device_id": _device_id(hass, entry, name)},
    )


def repairs_flow_manager(hass: HomeAssistant) -> Any:
    """Home Assistant's repairs flow manager (what the fix button talks to)."""
    return hass.data["repairs"]["flow_manager"]


def _codes(v2: OvmsV2Server) -> list[tuple[str, int]]:
    return [(vehicle, code) for vehicle, code, _ in v2.commands]


# --- options: a vehicle's server password and PIN --------------------------------


async def _open_commands_step(
    hass: HomeAssistant, entry: MockConfigEntry, vehicle: str = "DEMO"
) -> dict[str, Any]:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert "commands_vehicle" in {str(key) for key in result["data_schema"].schema}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "active_interval": 60,
            "idle_interval": 300,
            "vehicles": ["DEMO", "ROADSTER"],
            "commands_vehicle": vehicle,
        },
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "ovms_commands"
    assert result["description_placeholders"] == {"vehicle": vehicle}
    return result


def _commands_input(
    v2: OvmsV2Server, password: str = V2_PASSWORD, **overrides: Any
) -> dict[str, Any]:
    return {
        "server_password": password,
        "advanced": {"v2_address": f"127.0.0.1:{v2.port}", "v2_tls": False},
        **overrides,
    }


async def test_options_set_up_commands(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
) -> None:
    """A checked password and a PIN are stored with the credentials; entities come."""
    await setup_entry(hass, ovms_entry)
    for entity_id in NEW_ENTITIES:
        assert hass.states.get(entity_id) is None
    form = await _open_commands_step(hass, ovms_entry)
    # Suggested: the address derived from the server URL (http: plain, 6867).
    suggested = {
        str(key): key.description["suggested_value"]
        for key in form["data_schema"].schema["advanced"].schema.schema
    }
    assert suggested == {"v2_address": "127.0.0.1:6867", "v2_tls": False}

    result = await hass.config_entries.options.async_configure(
        form["flow_id"], _commands_input(ovms_v2, pin=V2_PIN)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert "commands_vehicle" not in ovms_entry.options
    assert ovms_entry.data["vehicle_commands"] == {
        "DEMO": {"server_password": V2_PASSWORD, "pin": V2_PIN}
    }
    assert ovms_entry.data["v2_server"] == {
        "host": "127.0.0.1",
        "port": ovms_v2.port,
        "tls": False,
    }
    assert ovms_v2.logins_refused == 0
    await hass.async_block_till_done()
    assert ovms_entry.state is ConfigEntryState.LOADED
    for entity_id in NEW_ENTITIES:
        assert hass.states.get(entity_id) is not None, entity_id
    # The other car stays read-only.
    assert hass.states.get("button.ovms_roadster_wake_up") is None

    # An empty password removes the commands again.
    form = await _open_commands_step(hass, ovms_entry)
    result = await hass.config_entries.options.async_configure(
        form["flow_id"], _commands_input(ovms_v2, password="")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert ovms_entry.data["vehicle_commands"] == {}
    await hass.async_block_till_done()
    assert hass.states.get(DEMO_WAKE) is None


async def test_options_keep_the_stored_secrets_behind_placeholders(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
) -> None:
    """A car with commands: its secrets show as placeholders, and left so they stay.

    The PIN can go without typing the server password, which is checked again.
    """
    await setup_entry(hass, ovms_entry)
    form = await _open_commands_step(hass, ovms_entry)
    await hass.config_entries.options.async_configure(
        form["flow_id"], _commands_input(ovms_v2, pin=V2_PIN)
    )
    await hass.async_block_till_done()
    assert hass.states.get(DEMO_LOCK) is not None

    form = await _open_commands_step(hass, ovms_entry)
    shown = suggested(form)
    assert shown["server_password"] == SECRET_PLACEHOLDER
    assert shown["pin"] == SECRET_PLACEHOLDER
    # Wrong password typed: the stored one stays behind the placeholder.
    result = await hass.config_entries.options.async_configure(
        form["flow_id"], _commands_input(ovms_v2, password="wrong-password")
    )
    assert result["errors"] == {"base": "invalid_server_password"}
    assert suggested(result)["server_password"] == SECRET_PLACEHOLDER
    refused = ovms_v2.logins_refused
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _commands_input(ovms_v2, SECRET_PLACEHOLDER, pin="")
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert ovms_entry.data["vehicle_commands"] == {
        "DEMO": {"server_password": V2_PASSWORD}
    }
    assert ovms_v2.logins_refused == refused  # the stored password was checked
    await hass.async_block_till_done()
    assert hass.states.get(DEMO_LOCK) is None
    assert hass.states.get(DEMO_WAKE) is not None

    form = await _open_commands_step(hass, ovms_entry)
    assert "pin" not in suggested(form)
    result = await hass.config_entries.options.async_configure(
        form["flow_id"], _commands_input(ovms_v2, SECRET_PLACEHOLDER)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert ovms_entry.data["vehicle_commands"] == {
        "DEMO": {"server_password": V2_PASSWORD}
    }
    await hass.async_block_till_done()


async def test_options_without_pin_offer_no_lock(
    hass: HomeAssistant, ovms_entry: MockConfigEntry, ovms_v2: OvmsV2Server
) -> None:
    """The lock needs the car's PIN; the other commands do not."""
    await setup_entry(hass, ovms_entry)
    form = await _open_commands_step(hass, ovms_entry, "ROADSTER")
    result = await hass.config_entries.options.async_configure(
        form["flow_id"], _commands_input(ovms_v2, ROADSTER_V2_PASSWORD)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert hass.states.get("button.ovms_roadster_wake_up") is not None
    assert hass.states.get("lock.ovms_roadster_lock") is None


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        ({"server_password": "wrong-password"}, {"base": "invalid_server_password"}),
        ({"pin": "12,34"}, {"pin": "invalid_pin"}),
        (
            {"advanced": {"v2_address": "a b:1", "v2_tls": False}},
            {"advanced": "invalid_v2_address"},
        ),
        (
            {"advanced": {"v2_address": "127.0.0.1:99999", "v2_tls": False}},
            {"advanced": "invalid_v2_address"},
        ),
    ],
)
async def test_options_commands_errors(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
    user_input: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """A refused password or bad input is a form error; the form can be fixed."""
    await setup_entry(hass, ovms_entry)
    form = await _open_commands_step(hass, ovms_entry)
    result = await hass.config_entries.options.async_configure(
        form["flow_id"], _commands_input(ovms_v2) | user_input
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    assert "vehicle_commands" not in ovms_entry.data
    result = await hass.config_entries.options.async_configure(
        form["flow_id"], _commands_input(ovms_v2)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_options_commands_server_unreachable(
    hass: HomeAssistant, ovms_entry: MockConfigEntry
) -> None:
    """Nobody listens at the v2 address: cannot_connect."""
    await setup_entry(hass, ovms_entry)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    form = await _open_commands_step(hass, ovms_entry)
    result = await hass.config_entries.options.async_configure(
        form["flow_id"],
        {
            "server_password": V2_PASSWORD,
            "advanced": {"v2_address": f"127.0.0.1:{port}", "v2_tls": False},
        },
    )
    assert result["errors"] == {"base": "cannot_connect"}


async def test_options_commands_for_an_offline_car(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
) -> None:
    """The login proves the password even while the car is not connected."""
    await setup_entry(hass, ovms_entry)
    ovms_sim.vehicle("DEMO").car_online = False
    form = await _open_commands_step(hass, ovms_entry)
    result = await hass.config_entries.options.async_configure(
        form["flow_id"], _commands_input(ovms_v2)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


def test_v2_address_text() -> None:
    """host:port as typed, a bare host gets the standard port of its TLS choice."""
    assert parse_address("ovms.example:7000", True) == parse_address(
        " ovms.example:7000 ", True
    )
    address = parse_address("ovms.example", True)
    assert address is not None
    assert (address.port, address.tls) == (6870, True)
    address = parse_address("ovms.example", False)
    assert address is not None
    assert address.port == 6867
    address = parse_address("[::1]:6870", True)
    assert address is not None
    assert address.host == "::1"
    assert format_address(address) == "[::1]:6870"
    for bad in (
        "",
        "http://x/y",
        "x:port",
        "x:70000",
        "a b",
        "user@host:1",
        "ü" * 100 + ".example",
        "host\r\n:1",
    ):
        assert parse_address(bad, True) is None, bad


async def test_reauth_keeps_the_command_secrets(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
) -> None:
    """A new account password does not lose the cars' server passwords."""
    await setup_entry(hass, ovms_command_entry)
    result = await ovms_command_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"password": OVMS_PASSWORD}
    )
    assert result["reason"] == "reauth_successful"
    assert ovms_command_entry.data["vehicle_commands"]["DEMO"]["pin"] == V2_PIN
    assert "v2_server" in ovms_command_entry.data


# --- commands -------------------------------------------------------------------


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_command_entities(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The command entities of a car with a password and PIN, and none elsewhere."""
    await setup_entry(hass, ovms_command_entry)
    everything = registry_and_states(hass, entity_registry, ovms_command_entry.entry_id)
    new = {
        entity_id: entity
        for entity_id, entity in everything.items()
        if entity_id.split(".")[0] in ("number", "select", "button", "lock")
    }
    assert sorted(new) == sorted(NEW_ENTITIES)
    assert new == snapshot


async def test_start_and_stop_charging(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
) -> None:
    """Commands 11 / 12, only when the state differs; the state is read again."""
    await setup_entry(hass, ovms_command_entry)
    assert hass.states.get(DEMO_CHARGING).state == STATE_ON
    await _charge(hass, ovms_command_entry, "DEMO", start=True)
    assert ovms_v2.commands == []  # already charging

    await _charge(hass, ovms_command_entry, "DEMO", start=False)
    assert _codes(ovms_v2) == [("DEMO", 12)]
    assert not ovms_sim.vehicle("DEMO").charging
    assert hass.states.get(DEMO_CHARGING).state == STATE_OFF
    await _charge(hass, ovms_command_entry, "DEMO", start=False)
    assert _codes(ovms_v2) == [("DEMO", 12)]  # already stopped

    await _charge(hass, ovms_command_entry, "DEMO", start=True)
    assert _codes(ovms_v2) == [("DEMO", 12), ("DEMO", 11)]
    assert hass.states.get(DEMO_CHARGING).state == STATE_ON
    # Each command had a connection of its own, closed afterwards.
    assert ovms_v2.apps == []


async def test_start_refused_by_the_car(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
) -> None:
    """Not plugged in: result 1 without a text, "refused or cannot", translated."""
    ovms_sim.vehicle("DEMO").unplug()
    await setup_entry(hass, ovms_command_entry)
    with pytest.raises(HomeAssistantError) as caught:
        await _charge(hass, ovms_command_entry, "DEMO", start=True)
    assert caught.value.translation_key == "ovms_command_refused"
    assert caught.value.translation_placeholders == {"vehicle": "DEMO"}
    assert str(caught.value) == (
        "The car DEMO refused this command or cannot carry it out "
        "(OVMS does not say which)"  # Home Assistant drops the final stop
    )
    assert _codes(ovms_v2) == [("DEMO", 11)]


async def test_start_refused_with_the_cars_text(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
) -> None:
    """A vehicle module that answers itself: its own text is shown."""
    ovms_v2.cars["DEMO"].module_texts = True
    ovms_sim.vehicle("DEMO").unplug()
    await setup_entry(hass, ovms_command_entry)
    with pytest.raises(HomeAssistantError) as caught:
        await _charge(hass, ovms_command_entry, "DEMO", start=True)
    assert caught.value.translation_key == "ovms_command_refused_said"
    assert caught.value.translation_placeholders == {
        "vehicle": "DEMO",
        "error": "not plugged in",
    }
    assert str(caught.value) == (
        "The car DEMO refused this command or cannot carry it out. "
        "The car said: not plugged in"
    )


async def test_charge_mode_the_car_cannot_set(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
) -> None:
    """A car without charge modes answers 1 (not 2): refused or cannot, not unknown."""
    ovms_v2.cars["DEMO"].commands -= {10}
    await setup_entry(hass, ovms_command_entry)
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            SELECT_DOMAIN,
            SERVICE_SELECT_OPTION,
            {ATTR_ENTITY_ID: DEMO_MODE, ATTR_OPTION: "range"},
            blocking=True,
        )
    assert caught.value.translation_key == "ovms_command_refused"
    assert ovms_v2.commands == [("DEMO", 10, ("3",))]
    assert hass.states.get(DEMO_MODE).state == "standard"


async def test_unsupported_command(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
) -> None:
    """Result 2 (a code the firmware does not know): command_not_supported."""
    ovms_v2.forced_results[18] = (2, "")
    await setup_entry(hass, ovms_command_entry)
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: DEMO_WAKE}, blocking=True
        )
    assert caught.value.translation_key == "command_not_supported"


async def test_car_offline(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
) -> None:
    """A car not connected to the server: device_offline, nothing sent."""
    await setup_entry(hass, ovms_command_entry)
    ovms_sim.vehicle("DEMO").car_online = False
    with pytest.raises(HomeAssistantError) as caught:
        await _charge(hass, ovms_command_entry, "DEMO", start=False)
    assert caught.value.translation_key == "device_offline"
    assert ovms_v2.commands == []


async def test_charge_current_mode_wake_up(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
) -> None:
    """Number (15), select (10) and button (18) send their commands."""
    await setup_entry(hass, ovms_command_entry)
    assert hass.states.get(DEMO_CURRENT).state == "32.0"
    await _call(
        hass,
        NUMBER_DOMAIN,
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: DEMO_CURRENT, ATTR_VALUE: 16},
    )
    assert ovms_v2.commands[-1] == ("DEMO", 15, ("16",))
    assert ovms_sim.vehicle("DEMO").charge_limit_amps == 16
    assert hass.states.get(DEMO_CURRENT).state == "16.0"

    assert hass.states.get(DEMO_MODE).state == "standard"
    await _call(
        hass,
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: DEMO_MODE, ATTR_OPTION: "range"},
    )
    assert ovms_v2.commands[-1] == ("DEMO", 10, ("3",))
    assert hass.states.get(DEMO_MODE).state == "range"

    await hass.services.async_call(
        BUTTON_DOMAIN, SERVICE_PRESS, {ATTR_ENTITY_ID: DEMO_WAKE}, blocking=True
    )
    assert ovms_v2.commands[-1] == ("DEMO", 18, ())
    assert ovms_sim.vehicle("DEMO").awake


async def test_lock_and_unlock(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
) -> None:
    """Commands 20 / 22 carry the PIN, which appears nowhere else."""
    await setup_entry(hass, ovms_command_entry)
    assert hass.states.get(DEMO_LOCK).state == LockState.LOCKED
    await _call(hass, LOCK_DOMAIN, SERVICE_UNLOCK, {ATTR_ENTITY_ID: DEMO_LOCK})
    assert ovms_v2.commands[-1] == ("DEMO", 22, (V2_PIN,))
    assert not ovms_sim.vehicle("DEMO").locked
    assert hass.states.get(DEMO_LOCK).state == LockState.UNLOCKED
    await _call(hass, LOCK_DOMAIN, SERVICE_LOCK, {ATTR_ENTITY_ID: DEMO_LOCK})
    assert ovms_v2.commands[-1] == ("DEMO", 20, (V2_PIN,))
    assert hass.states.get(DEMO_LOCK).state == LockState.LOCKED


async def test_wrong_pin(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
) -> None:
    """The car refuses a wrong PIN; the error does not repeat the car's text.

    The simulated module's text repeats the PIN it got ("wrong PIN <pin>").
    """
    ovms_v2.cars["DEMO"].pin = "another-pin-1234"
    ovms_v2.cars["DEMO"].module_texts = True
    await setup_entry(hass, ovms_command_entry)
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            LOCK_DOMAIN, SERVICE_UNLOCK, {ATTR_ENTITY_ID: DEMO_LOCK}, blocking=True
        )
    assert caught.value.translation_key == "ovms_command_refused"
    assert caught.value.translation_placeholders == {"vehicle": "DEMO"}
    assert V2_PIN not in str(caught.value)


async def test_wrong_server_password_raises_a_repair_not_reauth(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The car's password changed: a repair issue for it; the account goes on."""
    await setup_entry(hass, ovms_command_entry)
    ovms_v2.cars["DEMO"].password = "changed-on-the-module"
    with pytest.raises(HomeAssistantError) as caught:
        await _charge(hass, ovms_command_entry, "DEMO", start=False)
    assert caught.value.translation_key == "ovms_server_password_refused"
    assert caught.value.translation_placeholders == {"vehicle": "DEMO"}
    issue = issue_registry.async_get_issue(
        DOMAIN, issue_id(ovms_command_entry.entry_id, "DEMO")
    )
    assert issue is not None
    assert issue.translation_key == "ovms_server_password"
    assert issue.translation_placeholders == {"name": "OVMS demo", "vehicle": "DEMO"}
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert ovms_command_entry.state is ConfigEntryState.LOADED
    # Reading goes on, and the issue survives it.
    coordinator = ovms_command_entry.runtime_data.coordinators["ovms_DEMO"]
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    assert issue_registry.async_get_issue(DOMAIN, issue.issue_id) is not None

    # The module's password is back: the next command works and ends the issue.
    ovms_v2.cars["DEMO"].password = V2_PASSWORD
    await _charge(hass, ovms_command_entry, "DEMO", start=False)
    assert issue_registry.async_get_issue(DOMAIN, issue.issue_id) is None


async def test_entry_removal_drops_the_password_issue(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The issue belongs to the entry."""
    await setup_entry(hass, ovms_command_entry)
    ovms_v2.cars["DEMO"].password = "changed-on-the-module"
    with pytest.raises(HomeAssistantError):
        await _charge(hass, ovms_command_entry, "DEMO", start=False)
    assert issue_registry.async_get_issue(
        DOMAIN, issue_id(ovms_command_entry.entry_id, "DEMO")
    )
    await hass.config_entries.async_remove(ovms_command_entry.entry_id)
    assert not issue_registry.issues


async def test_diagnostics_hide_the_command_secrets(
    hass: HomeAssistant, ovms_command_entry: MockConfigEntry
) -> None:
    """Server passwords, PINs and the v2 address stay out of a bug report."""
    await setup_entry(hass, ovms_command_entry)
    result = await async_get_config_entry_diagnostics(hass, ovms_command_entry)
    dumped = json.dumps(result, cls=JSONEncoder)
    for secret in (V2_PASSWORD, V2_PIN, "DEMO"):
        assert secret not in dumped
    assert result["entry"]["data"]["vehicle_commands"] == "**REDACTED**"
    account = result["account"]
    assert (account["cars_with_commands"], account["live_connections"]) == (1, 0)


async def test_without_password_the_car_is_read_only(
    hass: HomeAssistant,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
) -> None:
    """A car without a stored password has no command entities and no control."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="OVMS demo",
        data=ovms_data(ovms_sim) | v2_data(ovms_v2),
        options={"excluded_vehicles": []},
    )
    await setup_entry(hass, entry)
    for entity_id in NEW_ENTITIES:
        assert hass.states.get(entity_id) is None
    car = entry.runtime_data.coordinators["ovms_DEMO"].device
    assert car.charge_control is None


async def test_reconfigure_keeps_the_command_secrets(
    hass: HomeAssistant, ovms_command_entry: MockConfigEntry, ovms_sim: OvmsSimulator
) -> None:
    """The same server again: the cars' secrets and the v2 address stay."""
    await setup_entry(hass, ovms_command_entry)
    before = dict(ovms_command_entry.data)
    result = await ovms_command_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"server_url": ovms_sim.url, "username": "demo", "password": OVMS_PASSWORD},
    )
    assert result["reason"] == "reconfigure_successful"
    assert ovms_command_entry.data == before


def test_another_server_url_forgets_the_v2_address() -> None:
    """A v2 address set for one server says nothing about another."""
    current = {
        "server_url": "http://a.example:6868",
        "vehicle_commands": {"CAR": {"server_password": "x"}},
        "v2_server": {"host": "a.example", "port": 7000, "tls": False},
    }
    assert kept_data(current, {"server_url": "https://a.example:6869"}) == {
        "vehicle_commands": {"CAR": {"server_password": "x"}}
    }
    assert kept_data(current, {"server_url": "http://a.example:6868"}) == {
        "vehicle_commands": current["vehicle_commands"],
        "v2_server": current["v2_server"],
    }


async def test_repair_flow_takes_the_new_server_password(
    hass: HomeAssistant,
    ovms_command_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The issue's fix flow checks the new password, stores it beside the PIN."""
    assert await async_setup_component(hass, "repairs", {})
    await setup_entry(hass, ovms_command_entry)
    ovms_v2.cars["DEMO"].password = NEW_V2_PASSWORD
    with pytest.raises(HomeAssistantError):
        await _charge(hass, ovms_command_entry, "DEMO", start=False)
    issue = issue_registry.async_get_issue(
        DOMAIN, issue_id(ovms_command_entry.entry_id, "DEMO")
    )
    assert issue is not None
    assert issue.is_fixable

    flow = await repairs_flow_manager(hass).async_init(
        DOMAIN, data={"issue_id": issue.issue_id}
    )
    assert flow["step_id"] == "server_password"
    assert flow["description_placeholders"] == {"name": "OVMS demo", "vehicle": "DEMO"}
    result = await repairs_flow_manager(hass).async_configure(
        flow["flow_id"], {"server_password": "still-the-wrong-one"}
    )
    assert result["errors"] == {"base": "invalid_server_password"}
    result = await repairs_flow_manager(hass).async_configure(
        flow["flow_id"], {"server_password": NEW_V2_PASSWORD}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert issue_registry.async_get_issue(DOMAIN, issue.issue_id) is None
    assert ovms_command_entry.data["vehicle_commands"]["DEMO"] == {
        "server_password": NEW_V2_PASSWORD,
        "pin": V2_PIN,
    }
    await hass.async_block_till_done()
    assert ovms_command_entry.state is ConfigEntryState.LOADED
    await _charge(hass, ovms_command_entry, "DEMO", start=False)
    assert _codes(ovms_v2)[-1] == ("DEMO", 12)


async def test_repair_flow_of_removed_commands_only_confirms(
    hass: HomeAssistant, ovms_command_entry: MockConfigEntry
) -> None:
    """The car's commands were removed meanwhile: nothing to enter."""
    await setup_entry(hass, ovms_command_entry)
    flow = create_repair_flow(
        hass, ovms_command_entry, "x", {"entry_id": "e", "vehicle": "ROADSTER"}
    )
    assert isinstance(flow, ConfirmRepairFlow)
    flow = await async_create_fix_flow(hass, "x", {"entry_id": "nothing"})
    assert isinstance(flow, ConfirmRepairFlow)


async def test_a_host_name_that_cannot_be_encoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The v2 client reports it as a connection error, not a UnicodeError."""

    async def encode_host(*args: Any, **kwargs: Any) -> None:
        # What encoding a label over 63 characters raises (the test harness
        # resolves no names at all).
        raise UnicodeError("label too long")

    monkeypatch.setattr(asyncio, "open_connection", encode_host)
    client = OvmsV2Client("ü" * 100 + ".example", "DEMO", V2_PASSWORD, tls=False)
    with pytest.raises(CommunicationError, match="invalid host name"):
        await client.connect()


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        ({"server_password": "pässwört 🚗" * 50}, {"base": "invalid_server_password"}),
        ({"advanced": {"v2_address": "x" * 5000}}, {"advanced": "invalid_v2_address"}),
        ({"advanced": {"v2_address": "[::1"}}, {"advanced": "invalid_v2_address"}),
        ({"advanced": {"v2_address": "ü" * 100}}, {"advanced": "invalid_v2_address"}),
    ],
)
async def test_options_commands_bad_input(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
    user_input: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """Unicode, very long and broken input: a form error, never an exception."""
    await setup_entry(hass, ovms_entry)
    form = await _open_commands_step(hass, ovms_entry)
    result = await hass.config_entries.options.async_configure(
        form["flow_id"], _commands_input(ovms_v2) | user_input
    )
    assert result["errors"] == errors
