"""OVMS: commands set up while adding the account (the optional flow step).

Against the simulated server and its v2 port, over real TCP.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
from typing import Any

from homeassistant import config_entries
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr
import pytest

from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.providers.ovms.flow import (
    CommandsAnswer,
    parse_address,
    with_commands,
)
from tests.ovms.fixtures import (
    OVMS_PASSWORD,
    OVMS_USER,
    ROADSTER_V2_PASSWORD,
    V2_PASSWORD,
    V2_PIN,
    ovms_data,
)
from tests.simulators import ovms
from tests.simulators.ovms import OvmsSimulator
from tests.simulators.ovms_v2 import OvmsV2Server

STEP = "ovms_commands_setup"


async def _open_commands_setup(
    hass: HomeAssistant, sim: OvmsSimulator, vehicles: list[str]
) -> dict[str, Any]:
    """Go through the account and vehicle forms up to the commands step."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "ovms"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"server_url": sim.url, "username": OVMS_USER, "password": OVMS_PASSWORD},
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"vehicles": vehicles}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == STEP
    return result


def _input(
    v2: OvmsV2Server,
    vehicle: str = "DEMO",
    password: str = V2_PASSWORD,
    **overrides: Any,
) -> dict[str, Any]:
    return {
        "commands_vehicle": vehicle,
        "server_password": password,
        "advanced": {"v2_address": f"127.0.0.1:{v2.port}", "v2_tls": False},
        **overrides,
    }


def _suggested(form: dict[str, Any]) -> dict[str, Any]:
    return {
        str(key): key.description["suggested_value"]
        for key in form["data_schema"].schema["advanced"].schema.schema
    }


async def test_flow_sets_up_commands(
    hass: HomeAssistant, ovms_sim: OvmsSimulator, ovms_v2: OvmsV2Server
) -> None:
    """A checked password and PIN go into the new entry; its car takes commands."""
    form = await _open_commands_setup(hass, ovms_sim, ["DEMO", "ROADSTER"])
    schema = form["data_schema"].schema
    vehicle_key = next(key for key in schema if str(key) == "commands_vehicle")
    # Only the chosen vehicles, and none picked: skipping is the default.
    assert schema[vehicle_key].config["options"] == ["DEMO", "ROADSTER"]
    assert "suggested_value" not in (vehicle_key.description or {})
    # The address derived from the server URL (http: plain, 6867).
    assert _suggested(form) == {"v2_address": "127.0.0.1:6867", "v2_tls": False}

    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _input(ovms_v2, pin=V2_PIN)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == ovms_data(
        ovms_sim,
        vehicle_commands={"DEMO": {"server_password": V2_PASSWORD, "pin": V2_PIN}},
        v2_server={"host": "127.0.0.1", "port": ovms_v2.port, "tls": False},
    )
    assert result["options"] == {"excluded_vehicles": []}
    assert ovms_v2.logins_refused == 0
    await hass.async_block_till_done()
    assert hass.states.get("lock.ovms_demo_lock") is not None
    assert hass.states.get("button.ovms_demo_wake_up") is not None
    assert hass.states.get("button.ovms_roadster_wake_up") is None

    # The car takes a command through the new entry.
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.ovms_demo_wake_up"}, blocking=True
    )
    assert [(vehicle, code) for vehicle, code, _ in ovms_v2.commands] == [("DEMO", 18)]


async def test_flow_commands_without_pin_for_one_chosen_car(
    hass: HomeAssistant, ovms_sim: OvmsSimulator, ovms_v2: OvmsV2Server
) -> None:
    """Only the chosen car is offered; without a PIN there is no lock."""
    form = await _open_commands_setup(hass, ovms_sim, ["ROADSTER"])
    schema = form["data_schema"].schema
    vehicle_key = next(key for key in schema if str(key) == "commands_vehicle")
    assert schema[vehicle_key].config["options"] == ["ROADSTER"]
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _input(ovms_v2, "ROADSTER", ROADSTER_V2_PASSWORD)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["vehicle_commands"] == {
        "ROADSTER": {"server_password": ROADSTER_V2_PASSWORD}
    }
    assert result["options"] == {"excluded_vehicles": ["DEMO"]}
    await hass.async_block_till_done()
    assert hass.states.get("button.ovms_roadster_wake_up") is not None
    assert hass.states.get("lock.ovms_roadster_lock") is None


@pytest.mark.parametrize(
    "user_input",
    [
        {},
        # Typed but no vehicle picked: nothing is checked or stored.
        {"server_password": "typed-anyway", "advanced": {"v2_address": "a b"}},
    ],
)
async def test_flow_skips_commands(
    hass: HomeAssistant,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
    user_input: dict[str, Any],
) -> None:
    """No vehicle picked: the entry is made as without the step, read-only."""
    form = await _open_commands_setup(hass, ovms_sim, ["DEMO"])
    result = await hass.config_entries.flow.async_configure(form["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == ovms_data(ovms_sim)
    assert ovms_v2.logins_refused == 0
    assert not ovms_v2.apps
    await hass.async_block_till_done()
    assert hass.states.get("sensor.ovms_demo_battery") is not None
    assert hass.states.get("button.ovms_demo_wake_up") is None


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        ({"server_password": "wrong-password"}, {"base": "invalid_server_password"}),
        ({"server_password": ""}, {"server_password": "server_password_required"}),
        ({"pin": "12,34"}, {"pin": "invalid_pin"}),
        (
            {"advanced": {"v2_address": "a b:1", "v2_tls": False}},
            {"advanced": "invalid_v2_address"},
        ),
        (
            {"advanced": {"v2_address": "ü" * 100}},
            {"advanced": "invalid_v2_address"},
        ),
        ({"server_password": "pässwört 🚗" * 50}, {"base": "invalid_server_password"}),
    ],
)
async def test_flow_commands_errors_recover(
    hass: HomeAssistant,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
    user_input: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """A refused password or bad input is a form error; fixing it adds the entry."""
    form = await _open_commands_setup(hass, ovms_sim, ["DEMO", "ROADSTER"])
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _input(ovms_v2) | user_input
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == STEP
    assert result["errors"] == errors
    # The picked vehicle is kept for the next try.
    schema = result["data_schema"].schema
    vehicle_key = next(key for key in schema if str(key) == "commands_vehicle")
    assert vehicle_key.description == {"suggested_value": "DEMO"}
    assert not hass.config_entries.async_entries(DOMAIN)
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _input(ovms_v2)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["vehicle_commands"] == {
        "DEMO": {"server_password": V2_PASSWORD}
    }


async def test_flow_commands_server_unreachable(
    hass: HomeAssistant, ovms_sim: OvmsSimulator
) -> None:
    """Nobody listens at the v2 address: cannot_connect, the address stays."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    form = await _open_commands_setup(hass, ovms_sim, ["DEMO"])
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"],
        {
            "commands_vehicle": "DEMO",
            "server_password": V2_PASSWORD,
            "advanced": {"v2_address": f"127.0.0.1:{port}", "v2_tls": False},
        },
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert _suggested(result) == {"v2_address": f"127.0.0.1:{port}", "v2_tls": False}


async def test_flow_commands_at_the_derived_address(
    hass: HomeAssistant, ovms_sim: OvmsSimulator, ovms_v2: OvmsV2Server
) -> None:
    """The server URL's own v2 address is not stored (it follows the URL)."""
    form = await _open_commands_setup(hass, ovms_sim, ["DEMO"])
    # An empty address field keeps the suggested host and port; the v2
    # simulator listens elsewhere, so this only gets as far as the login.
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _input(ovms_v2, advanced={"v2_tls": False})
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert _suggested(result) == {"v2_address": "127.0.0.1:6867", "v2_tls": False}


async def test_flow_commands_entry_charges(
    hass: HomeAssistant, ovms_sim: OvmsSimulator, ovms_v2: OvmsV2Server
) -> None:
    """Stop charging through the entry the flow made: the car stops."""
    form = await _open_commands_setup(hass, ovms_sim, ["DEMO"])
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _input(ovms_v2)
    )
    await hass.async_block_till_done()
    assert hass.states.get("binary_sensor.ovms_demo_charging").state == STATE_ON
    entry = result["result"]
    assert entry.data["vehicle_commands"]
    registry = dr.async_get(hass)
    (device,) = dr.async_entries_for_config_entry(registry, entry.entry_id)
    await hass.services.async_call(
        DOMAIN, "stop_charging", {"device_id": device.id}, blocking=True
    )
    assert [(vehicle, code) for vehicle, code, _ in ovms_v2.commands] == [("DEMO", 12)]
    assert ovms_sim.vehicle("DEMO").charging is False


async def test_demo_forms_give_demo_commands(
    hass: HomeAssistant, socket_enabled: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo's forms, as the harness fills them in, give DEMO its commands."""
    stop = asyncio.Event()
    args = argparse.Namespace(host="127.0.0.1", port=0, local_port=0)
    task = asyncio.create_task(ovms.DEMO.run(args, stop))
    try:
        output = ""
        for _ in range(100):
            await asyncio.sleep(0.05)
            output += capsys.readouterr().out
            if all(f"{key}=" in output for key in ovms.DEMO.needs):
                break
        printed = dict(
            line.split("=", 1) for line in output.splitlines() if " " not in line
        )
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_USER}
        )
        for choice in ovms.DEMO.menu_path:
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], {"next_step_id": choice}
            )
        for step_id, user_input in ovms.DEMO.forms:
            assert result["step_id"] == step_id
            result = await hass.config_entries.flow.async_configure(
                result["flow_id"], user_input(printed)
            )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        assert result["data"]["vehicle_commands"] == {
            "DEMO": {
                "server_password": ovms.DEMO_V2_PASSWORD,
                "pin": ovms.DEMO_V2_PIN,
            }
        }
        await hass.async_block_till_done()
        assert hass.states.get("lock.ovms_demo_lock") is not None
        assert hass.states.get("button.ovms_roadster_wake_up") is None
        await hass.config_entries.async_unload(result["result"].entry_id)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def test_with_commands_keeps_only_what_the_url_does_not_say() -> None:
    """The derived v2 address is not stored; an empty password removes a car's."""
    data = {"server_url": "https://ovms.example:6869", "v2_server": {"host": "x"}}
    derived = parse_address("ovms.example", True)
    assert derived is not None
    new = with_commands(data, "DEMO", CommandsAnswer("secret", "", derived))
    assert new == {
        "server_url": "https://ovms.example:6869",
        "vehicle_commands": {"DEMO": {"server_password": "secret"}},
    }
    other = parse_address("ovms.example:7000", False)
    assert other is not None
    again = with_commands(new, "DEMO", CommandsAnswer("", "1234", other))
    assert again["vehicle_commands"] == {}
    assert again["v2_server"] == {"host": "ovms.example", "port": 7000, "tls": False}
    assert "v2_server" in data  # the input is not changed
