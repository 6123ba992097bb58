"""Every blueprint loads; the others than solar surplus on the go-e simulator."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_mock_service,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from tests.conftest import setup_entry
from tests.simulators.goe import SimCharger

from .conftest import (
    BLUEPRINTS,
    CHARGING,
    PLUGGED_IN,
    SESSION_ENERGY,
    device_id,
    set_number,
    setup_automation,
    setup_input_number,
    tick,
)

HOUR = timedelta(hours=1)


@pytest.mark.usefixtures("blueprint_dir")
async def test_every_blueprint_loads(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    """Home Assistant reads each file of the folder as a valid automation blueprint."""
    assert await async_setup_component(hass, "automation", {})
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "blueprint/list", "domain": "automation"})
    answer = await client.receive_json()
    assert answer["success"], answer
    files = sorted(f"ev_cloud/{path.name}" for path in BLUEPRINTS.glob("*.yaml"))
    loaded = {path: found for path, found in answer["result"].items() if path in files}
    assert sorted(loaded) == files
    errors = {
        path: found["error"] for path, found in loaded.items() if "error" in found
    }
    assert errors == {}
    assert len(files) == 5
    for found in loaded.values():
        assert found["metadata"]["domain"] == "automation"
        assert found["metadata"]["name"].startswith("EV Cloud - ")


@pytest.mark.usefixtures("blueprint_dir")
async def test_stop_at_target_soc(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The charge stops once when the SoC reaches the target entity's value."""
    await setup_entry(hass, goe_entry)
    assert hass.states.get(CHARGING).state == "on"
    soc = await setup_input_number(hass, "car_soc", 60, minimum=0)
    target = await setup_input_number(hass, "car_target", 80, minimum=0)
    await setup_automation(
        hass,
        "stop_at_target_soc.yaml",
        {
            "soc_sensor": soc,
            "charger": device_id(hass, goe_entry),
            "charging_sensor": CHARGING,
            "target_entity": target,
        },
    )
    await set_number(hass, soc, 79)
    assert goe_charger.set_log == []
    await set_number(hass, soc, 80)
    await tick(hass, freezer, timedelta(seconds=20))
    assert goe_charger.set_log == [{"frc": 1}]
    assert hass.states.get(CHARGING).state == "off"
    await set_number(hass, soc, 81)  # not charging: nothing more to stop
    assert goe_charger.set_log == [{"frc": 1}]


@pytest.mark.usefixtures("blueprint_dir")
async def test_plug_in_reminder(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
) -> None:
    """At the time, home, unplugged and low: one notification through the action.

    An input_boolean stands for the at-home sensor; notify.phone is a recording
    stand-in for a phone's notify action.
    """
    await hass.config.async_set_time_zone("UTC")
    freezer.move_to("2026-06-01T19:00:00+00:00")
    goe_charger.unplug()
    await setup_entry(hass, goe_entry)
    assert hass.states.get(PLUGGED_IN).state == "off"
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"car_home": {"initial": True}}}
    )
    soc = await setup_input_number(hass, "car_soc", 60, minimum=0)
    notifications = async_mock_service(hass, "notify", "phone")
    await setup_automation(
        hass,
        "plug_in_reminder.yaml",
        {
            "at_home_entity": "input_boolean.car_home",
            "plugged_in_sensor": PLUGGED_IN,
            "soc_sensor": soc,
            "soc_below": 50,
            "notify_action": "notify.phone",
        },
    )
    await tick(hass, freezer, HOUR, step=timedelta(minutes=15))
    assert notifications == []  # 60 % is not below 50 %
    await set_number(hass, soc, 40)
    await tick(hass, freezer, 24 * HOUR, step=timedelta(minutes=15))
    assert [call.data for call in notifications] == [
        {
            "title": "Plug the car in",
            "message": (
                "The car is at home and not plugged in. State of charge: 40.0 %."
            ),
        }
    ]


@pytest.mark.usefixtures("blueprint_dir")
async def test_charging_interrupted(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A charge that ends below the full SoC, still plugged in, is interrupted."""
    await setup_entry(hass, goe_entry)
    energy = hass.states.get(SESSION_ENERGY)
    soc = await setup_input_number(hass, "car_soc", 60, minimum=0)
    notifications = async_mock_service(hass, "notify", "phone")
    await setup_automation(
        hass,
        "charging_finished.yaml",
        {
            "charging_sensor": CHARGING,
            "session_energy_sensor": SESSION_ENERGY,
            "plugged_in_sensor": PLUGGED_IN,
            "soc_sensor": soc,
            "full_soc": 80,
            "notify_action": "notify.phone",
        },
    )
    await hass.services.async_call(
        "ev_cloud",
        "stop_charging",
        {"device_id": device_id(hass, goe_entry)},
        blocking=True,
    )
    await tick(hass, freezer, timedelta(seconds=20))
    unit = energy.attributes["unit_of_measurement"]
    assert [call.data for call in notifications] == [
        {
            "title": "Charging interrupted",
            "message": f"State of charge: 60.0 %. Charged: {energy.state} {unit}.",
        }
    ]


@pytest.mark.usefixtures("blueprint_dir")
async def test_cheapest_hours_nord_pool(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Two hours needed: the charge runs in the two cheapest hours before 16:00.

    The price sensor is a state the test sets, with a Nord Pool raw_today list.
    """
    await hass.config.async_set_time_zone("UTC")
    freezer.move_to("2026-06-01T10:00:00+00:00")
    await setup_entry(hass, goe_entry)
    prices = [0.30, 0.25, 0.10, 0.28, 0.12, 0.40, 0.05, 0.01]  # 10:00 .. 17:00
    raw_today = [
        {
            "start": f"2026-06-01T{10 + hour:02d}:00:00+00:00",
            "end": f"2026-06-01T{11 + hour:02d}:00:00+00:00",
            "value": price,
        }
        for hour, price in enumerate(prices)
    ]
    hass.states.async_set("sensor.nord_pool", "0.30", {"raw_today": raw_today})
    await setup_automation(
        hass,
        "cheapest_hours.yaml",
        {
            "price_sensor": "sensor.nord_pool",
            "charger": device_id(hass, goe_entry),
            "charging_sensor": CHARGING,
            "departure": "16:00:00",
            "hours_needed": 2,
        },
    )
    log_at: dict[str, list[dict[str, int]]] = {}
    for _ in range(7):
        await tick(hass, freezer, HOUR, step=timedelta(minutes=15))
        log_at[f"{10 + len(log_at) + 1}:00"] = list(goe_charger.set_log)
    # Cheapest before 16:00: 12:00 (0.10) and 14:00 (0.12); 16:00 onwards is
    # after the departure (then the next day's, unknown, hours count).
    assert log_at["11:00"] == [{"frc": 1}]
    assert log_at["12:00"] == [{"frc": 1}, {"frc": 2}]
    assert log_at["13:00"] == [{"frc": 1}, {"frc": 2}, {"frc": 1}]
    assert log_at["15:00"] == [
        {"frc": 1},
        {"frc": 2},
        {"frc": 1},
        {"frc": 2},
        {"frc": 1},
    ]
