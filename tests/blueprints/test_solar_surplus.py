"""Solar surplus: start, current steps and stop on the go-e simulator."""

from __future__ import annotations

from datetime import timedelta

from homeassistant.core import HomeAssistant

from .conftest import (
    CHARGING,
    CURRENT,
    PHASES,
    PLUGGED_IN,
    Goe,
    set_number,
    setup_automation,
    setup_input_number,
)

MINUTE = timedelta(minutes=1)


async def solar_surplus_on_a_stopped_charger(goe: Goe, **inputs: object) -> str:
    """The blueprint on the charger, its charge stopped; returns the grid power's id.

    The simulator's charge is stopped first and its command log cleared; the
    grid power is an input_number at 0 W the test moves.
    """
    await goe.set_up(at="2026-06-01T10:00:00+00:00")
    await goe.stop_charging()
    assert goe.hass.states.get(CHARGING).state == "off"
    goe.sim.set_log.clear()
    grid = await setup_input_number(goe.hass, "grid_power", 0)
    await setup_automation(
        goe.hass,
        "solar_surplus.yaml",
        {
            "grid_power": grid,
            "charger": goe.device_id,
            "charging_sensor": CHARGING,
            **inputs,
        },
    )
    return grid


async def test_current_follows_the_surplus(hass: HomeAssistant, goe: Goe) -> None:
    """Start at the surplus's current, step, stop at the minimum; on/off times held."""
    grid = await solar_surplus_on_a_stopped_charger(
        goe,
        plugged_in_sensor=PLUGGED_IN,
        current_number=CURRENT,
        phase_select=PHASES,
        start_threshold=2500,
    )

    # 5 kW export right after the stop: the pause has not lasted 5 minutes yet.
    await set_number(hass, grid, -5000)
    await goe.tick(4 * MINUTE)
    assert goe.sim.set_log == []

    # After the minimum off time: three phases carry 6 A, 5000 W / 690 V = 7 A.
    await goe.tick(MINUTE)
    assert goe.sim.set_log == [{"psm": 2}, {"amp": 7}, {"frc": 2}]
    assert hass.states.get(CHARGING).state == "on"

    # The car takes 7 A on three phases: 170 W are left, less than one ampere.
    await set_number(hass, grid, -170)
    await goe.tick(MINUTE)
    assert len(goe.sim.set_log) == 3

    # More export: two amperes more, and the grid shows the car's new draw; an
    # import: two amperes fewer; a larger one: down to the minimum, not below.
    await set_number(hass, grid, -1500)
    assert goe.sim.set_log[3:] == [{"amp": 9}]
    await set_number(hass, grid, -120)
    await goe.tick(MINUTE)
    await set_number(hass, grid, 1000)
    assert goe.sim.set_log[3:] == [{"amp": 9}, {"amp": 7}]
    await set_number(hass, grid, -380)
    await goe.tick(MINUTE)
    await set_number(hass, grid, 3000)
    await goe.tick(MINUTE)
    assert goe.sim.set_log[3:] == [{"amp": 9}, {"amp": 7}, {"amp": 6}]

    # Importing at the minimum current: the charge keeps its 10 minutes.
    await goe.tick(5 * MINUTE)
    assert goe.sim.set_log[6:] == []
    await goe.tick(3 * MINUTE)
    assert goe.sim.set_log[6:] == [{"frc": 1}]
    assert hass.states.get(CHARGING).state == "off"

    # Export again: a pause of 5 minutes first, then a start on one phase
    # (3000 W do not carry 6 A on three phases).
    await set_number(hass, grid, -3000)
    await goe.tick(3 * MINUTE)
    assert goe.sim.set_log[7:] == []
    await goe.tick(3 * MINUTE)
    assert goe.sim.set_log[7:10] == [{"psm": 1}, {"amp": 13}, {"frc": 2}]


async def test_start_and_stop_without_a_current_number(
    hass: HomeAssistant, goe: Goe
) -> None:
    """Without a current number the blueprint starts and stops (positive export)."""
    grid = await solar_surplus_on_a_stopped_charger(
        goe,
        export_sign="positive",
        start_threshold=2000,
        stop_threshold=0,
        min_on_minutes=2,
        min_off_minutes=1,
    )
    await goe.tick(2 * MINUTE)
    await set_number(hass, grid, 1500)  # below the start threshold
    await goe.tick(2 * MINUTE)
    assert goe.sim.set_log == []
    await set_number(hass, grid, 2500)
    await goe.tick(MINUTE)
    assert goe.sim.set_log == [{"frc": 2}]
    await set_number(hass, grid, -100)
    await goe.tick(MINUTE)
    assert goe.sim.set_log == [{"frc": 2}]  # on for less than 2 minutes
    await goe.tick(2 * MINUTE)
    assert goe.sim.set_log == [{"frc": 2}, {"frc": 1}]
