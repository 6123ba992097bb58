"""Every blueprint loads; the others than solar surplus on the go-e simulator."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    async_fire_time_changed,
    async_mock_service,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from .conftest import (
    BLUEPRINTS,
    CHARGING,
    PLUGGED_IN,
    SESSION_ENERGY,
    Goe,
    set_number,
    setup_automation,
    setup_input_number,
)

HOUR = timedelta(hours=1)
QUARTER = timedelta(minutes=15)
SOC = "sensor.car_battery"
# 10:00 .. 17:00 on 2026-06-01 (UTC); before a 16:00 departure the cheapest are
# 12:00 (0.10), 14:00 (0.12), then 11:00 (0.25) and 13:00 (0.28).
PRICES = [0.30, 0.25, 0.10, 0.28, 0.12, 0.40, 0.05, 0.01]
# The cheapest-hours need from the SoC sensor: to 80 % of 50 kWh at 10 kW.
NEED_FROM_SOC = {
    "charge_power": 10,
    "soc_sensor": SOC,
    "target_soc": 80,
    "battery_capacity": 50,
}


def set_nord_pool_prices(hass: HomeAssistant) -> None:
    """A price sensor the test sets, with PRICES as a Nord Pool raw_today list."""
    raw_today = [
        {
            "start": f"2026-06-01T{10 + hour:02d}:00:00+00:00",
            "end": f"2026-06-01T{11 + hour:02d}:00:00+00:00",
            "value": price,
        }
        for hour, price in enumerate(PRICES)
    ]
    hass.states.async_set("sensor.nord_pool", "0.30", {"raw_today": raw_today})


def set_soc(hass: HomeAssistant, state: str) -> None:
    """The car's state of charge: a sensor state the test sets (any integration's)."""
    hass.states.async_set(
        SOC, state, {"device_class": "battery", "unit_of_measurement": "%"}
    )


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


async def test_stop_at_target_soc(hass: HomeAssistant, goe: Goe) -> None:
    """The charge stops once when the SoC reaches the target entity's value."""
    await goe.set_up()
    assert hass.states.get(CHARGING).state == "on"
    soc = await setup_input_number(hass, "car_soc", 60, minimum=0)
    target = await setup_input_number(hass, "car_target", 80, minimum=0)
    await setup_automation(
        hass,
        "stop_at_target_soc.yaml",
        {
            "soc_sensor": soc,
            "charger": goe.device_id,
            "charging_sensor": CHARGING,
            "target_entity": target,
        },
    )
    await set_number(hass, soc, 79)
    assert goe.sim.set_log == []
    await set_number(hass, soc, 80)
    await goe.tick(timedelta(seconds=20))
    assert goe.sim.set_log == [{"frc": 1}]
    assert hass.states.get(CHARGING).state == "off"
    await set_number(hass, soc, 81)  # not charging: nothing more to stop
    assert goe.sim.set_log == [{"frc": 1}]


async def test_plug_in_reminder(hass: HomeAssistant, goe: Goe) -> None:
    """At the time, home, unplugged and low: one notification through the action.

    An input_boolean stands for the at-home sensor; notify.phone is a recording
    stand-in for a phone's notify action.
    """
    goe.sim.unplug()
    await goe.set_up(at="2026-06-01T19:00:00+00:00")
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
    await goe.tick(HOUR, step=QUARTER)
    assert notifications == []  # 60 % is not below 50 %
    await set_number(hass, soc, 40)
    await goe.tick(24 * HOUR, step=QUARTER)
    assert [call.data for call in notifications] == [
        {
            "title": "Plug the car in",
            "message": (
                "The car is at home and not plugged in. State of charge: 40.0 %."
            ),
        }
    ]


async def test_charging_interrupted(hass: HomeAssistant, goe: Goe) -> None:
    """A charge that ends below the full SoC, still plugged in, is interrupted."""
    await goe.set_up()
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
    await goe.stop_charging()
    unit = energy.attributes["unit_of_measurement"]
    assert [call.data for call in notifications] == [
        {
            "title": "Charging interrupted",
            "message": f"State of charge: 60.0 %. Charged: {energy.state} {unit}.",
        }
    ]


async def test_cheapest_hours_nord_pool(hass: HomeAssistant, goe: Goe) -> None:
    """Two hours needed: the charge runs in the two cheapest hours before 16:00."""
    await goe.set_up(at="2026-06-01T10:00:00+00:00")
    set_nord_pool_prices(hass)
    await setup_cheapest_hours(goe, hours_needed=2)
    log_at: dict[str, list[dict[str, int]]] = {}
    for _ in range(7):
        await goe.tick(HOUR, step=QUARTER)
        log_at[f"{10 + len(log_at) + 1}:00"] = list(goe.sim.set_log)
    # 16:00 onwards is after the departure (then the next day's, unknown, hours
    # count).
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


async def run_quarters(
    goe: Goe, quarters: int, soc_per_quarter: float = 0
) -> list[tuple[str, int]]:
    """Step the clock by quarter hours; each command the charger got, with its time.

    With soc_per_quarter, the test plays the car: 10 s before a quarter ends,
    the SoC sensor rises by that much if the charging sensor was on during it
    (and the SoC is available).
    """
    hass, set_log = goe.hass, goe.sim.set_log
    commands: list[tuple[str, int]] = []
    seen = len(set_log)

    def record() -> None:
        nonlocal seen
        time = dt_util.utcnow().strftime("%H:%M:%S")
        commands.extend((time, sent["frc"]) for sent in set_log[seen:])
        seen = len(set_log)

    last_seconds = timedelta(seconds=10)
    for _ in range(quarters):
        # The check at the quarter's start (the first one is due at once).
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        record()
        charging = hass.states.get(CHARGING).state == "on"
        await goe.tick(QUARTER - last_seconds, step=QUARTER - last_seconds)
        record()
        soc = hass.states.get(SOC)
        if soc_per_quarter and charging and soc and soc.state != "unavailable":
            set_soc(hass, str(float(soc.state) + soc_per_quarter))
            await hass.async_block_till_done(wait_background_tasks=True)
            record()
        await goe.tick(last_seconds)
        record()
    return commands


async def setup_cheapest_hours(goe: Goe, **inputs: object) -> None:
    """The cheapest-hours automation on the go-e charger: sensor.nord_pool, 16:00."""
    await setup_automation(
        goe.hass,
        "cheapest_hours.yaml",
        {
            "price_sensor": "sensor.nord_pool",
            "charger": goe.device_id,
            "charging_sensor": CHARGING,
            "departure": "16:00:00",
            **inputs,
        },
    )


async def test_cheapest_hours_from_the_state_of_charge(
    hass: HomeAssistant, goe: Goe
) -> None:
    """40 % to 80 % of 50 kWh at 10 kW is 2 h: the two cheapest hours, as the SoC rises.

    The SoC sensor is a state the test sets; it plays the car, 5 % (2.5 kWh) per
    quarter hour of charging. The hours input (3 h) is not used.
    """
    await goe.set_up(at="2026-06-01T10:00:00+00:00")
    assert hass.states.get(CHARGING).state == "on"
    set_nord_pool_prices(hass)
    set_soc(hass, "40")
    await setup_cheapest_hours(goe, **NEED_FROM_SOC, hours_needed=3)
    commands = await run_quarters(goe, 24, soc_per_quarter=5)
    # 2 h in 12:00 and 14:00. At 13:00 (60 %) 1 h is left, which 14:00 covers,
    # so 13:00 and the third cheapest, 11:00, stay off. 80 % at 14:59:50 stops
    # the charge at once.
    assert commands == [
        ("10:00:00", 1),
        ("12:00:00", 2),
        ("13:00:00", 1),
        ("14:00:00", 2),
        ("14:59:50", 1),
    ]
    assert hass.states.get(SOC).state == "80.0"
    assert hass.states.get(CHARGING).state == "off"


@pytest.mark.parametrize("forecast", [True, False], ids=["nord_pool", "plain_price"])
async def test_cheapest_hours_stop_at_the_target(
    hass: HomeAssistant, goe: Goe, forecast: bool
) -> None:
    """In the cheapest hour, or at a price below the limit, the target stops the charge.

    It stops when the SoC reaches the target, not at the next quarter hour.
    """
    await goe.set_up(at="2026-06-01T12:05:00+00:00")
    if forecast:
        set_nord_pool_prices(hass)
    else:
        hass.states.async_set("sensor.nord_pool", "0.05")
    set_soc(hass, "79")
    await setup_cheapest_hours(goe, **NEED_FROM_SOC, price_limit=0.10)
    await goe.tick(QUARTER, step=timedelta(minutes=5))  # 12:20
    assert goe.sim.set_log == []  # 0.5 kWh to go: charging goes on
    set_soc(hass, "80")
    await goe.tick(timedelta(seconds=20))
    assert goe.sim.set_log == [{"frc": 1}]
    assert hass.states.get(CHARGING).state == "off"
    await goe.tick(HOUR, step=QUARTER)
    assert goe.sim.set_log == [{"frc": 1}]


async def test_cheapest_hours_without_a_state_of_charge(
    hass: HomeAssistant, goe: Goe
) -> None:
    """An unavailable SoC sensor: the hours input counts, until the SoC is back."""
    await goe.set_up(at="2026-06-01T10:00:00+00:00")
    set_nord_pool_prices(hass)
    set_soc(hass, "unavailable")
    await setup_cheapest_hours(goe, **NEED_FROM_SOC, hours_needed=3)
    commands = await run_quarters(goe, 5)  # to 11:15
    # 3 h: the three cheapest hours, 11:00 among them.
    assert commands == [("10:00:00", 1), ("11:00:00", 2)]
    set_soc(hass, "70")
    commands = await run_quarters(goe, 5, soc_per_quarter=5)
    # 75 % at 11:30: a quarter hour left, which the cheapest hour, 12:00, covers.
    assert commands == [("11:30:00", 1), ("12:00:00", 2), ("12:14:50", 1)]
