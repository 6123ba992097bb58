"""Solar surplus: start, current steps and stop on the go-e simulator."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.conftest import setup_entry
from tests.simulators.goe import SimCharger

from .conftest import (
    CHARGING,
    CURRENT,
    PHASES,
    PLUGGED_IN,
    device_id,
    set_number,
    setup_automation,
    setup_input_number,
    tick,
)

MINUTE = timedelta(minutes=1)


async def _stopped_charger(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    charger: SimCharger,
    freezer: FrozenDateTimeFactory,
) -> str:
    """Set the entry up and stop the charge the simulator starts with."""
    freezer.move_to("2026-06-01T10:00:00+00:00")
    await setup_entry(hass, entry)
    charger_id = device_id(hass, entry)
    await hass.services.async_call(
        "ev_cloud", "stop_charging", {"device_id": charger_id}, blocking=True
    )
    await tick(hass, freezer, timedelta(seconds=20))
    assert hass.states.get(CHARGING).state == "off"
    charger.set_log.clear()
    return charger_id


@pytest.mark.usefixtures("blueprint_dir")
async def test_current_follows_the_surplus(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Start at the surplus's current, step,, stop at the minimum; on/off times held."""
    charger_id = await _stopped_charger(hass, goe_entry, goe_charger, freezer)
    grid = await setup_input_number(hass, "grid_power", 0)
    await setup_automation(
        hass,
        "solar_surplus.yaml",
        {
            "grid_power": grid,
            "charger": charger_id,
            "charging_sensor": CHARGING,
            "plugged_in_sensor": PLUGGED_IN,
            "current_number": CURRENT,
            "phase_select": PHASES,
            "start_threshold": 2500,
        },
    )

    # 5 kW export right after the stop: the pause has not lasted 5 minutes yet.
    await set_number(hass, grid, -5000)
    await tick(hass, freezer, 4 * MINUTE)
    assert goe_charger.set_log == []

    # After the minimum off time: three phases carry 6 A, 5000 W / 690 V = 7 A.
    await tick(hass, freezer, MINUTE)
    assert goe_charger.set_log == [{"psm": 2}, {"amp": 7}, {"frc": 2}]
    assert hass.states.get(CHARGING).state == "on"

    # The car takes 7 A on three phases: 170 W are left, less than one ampere.
    await set_number(hass, grid, -170)
    await tick(hass, freezer, MINUTE)
    assert len(goe_charger.set_log) == 3

    # More export: two amperes more, and the grid shows the car's new draw; an
    # import: two amperes fewer; a larger one: down to the minimum, not below.
    await set_number(hass, grid, -1500)
    assert goe_charger.set_log[3:] == [{"amp": 9}]
    await set_number(hass, grid, -120)
    await tick(hass, freezer, MINUTE)
    await set_number(hass, grid, 1000)
    assert goe_charger.set_log[3:] == [{"amp": 9}, {"amp": 7}]
    await set_number(hass, grid, -380)
    await tick(hass, freezer, MINUTE)
    await set_number(hass, grid, 3000)
    await tick(hass, freezer, MINUTE)
    assert goe_charger.set_log[3:] == [{"amp": 9}, {"amp": 7}, {"amp": 6}]

    # Importing at the minimum current: the charge keeps its 10 minutes.
    await tick(hass, freezer, 5 * MINUTE)
    assert goe_charger.set_log[6:] == []
    await tick(hass, freezer, 3 * MINUTE)
    assert goe_charger.set_log[6:] == [{"frc": 1}]
    assert hass.states.get(CHARGING).state == "off"

    # Export again: a pause of 5 minutes first, then a start on one phase
    # (3000 W do not carry 6 A on three phases).
    await set_number(hass, grid, -3000)
    await tick(hass, freezer, 3 * MINUTE)
    assert goe_charger.set_log[7:] == []
    await tick(hass, freezer, 3 * MINUTE)
    assert goe_charger.set_log[7:10] == [{"psm": 1}, {"amp": 13}, {"frc": 2}]


@pytest.mark.usefixtures("blueprint_dir")
async def test_start_and_stop_without_a_current_number(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Without a current number the blueprint starts and stops (positive export)."""
    charger_id = await _stopped_charger(hass, goe_entry, goe_charger, freezer)
    grid = await setup_input_number(hass, "grid_power", 0)
    await setup_automation(
        hass,
        "solar_surplus.yaml",
        {
            "grid_power": grid,
            "export_sign": "positive",
            "charger": charger_id,
            "charging_sensor": CHARGING,
            "start_threshold": 2000,
            "stop_threshold": 0,
            "min_on_minutes": 2,
            "min_off_minutes": 1,
        },
    )
    await tick(hass, freezer, 2 * MINUTE)
    await set_number(hass, grid, 1500)  # below the start threshold
    await tick(hass, freezer, 2 * MINUTE)
    assert goe_charger.set_log == []
    await set_number(hass, grid, 2500)
    await tick(hass, freezer, MINUTE)
    assert goe_charger.set_log == [{"frc": 2}]
    await set_number(hass, grid, -100)
    await tick(hass, freezer, MINUTE)
    assert goe_charger.set_log == [{"frc": 2}]  # on for less than 2 minutes
    await tick(hass, freezer, 2 * MINUTE)
    assert goe_charger.set_log == [{"frc": 2}, {"frc": 1}]
