"""The hourly allowance holds whatever the number of vehicles (1, 10, 50)."""

from __future__ import annotations

from datetime import timedelta
import logging

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from tests.conftest import setup_entry
from tests.evenergy.fixtures import USER_ID
from tests.simulators.evenergy import EvEnergySimulator, SimVehicle

HOURLY_LIMIT = 1000
POLL_SHARE = 0.8  # polls may use this much of the allowance; commands the rest
STEP = 30  # seconds between time steps of the simulated hour


@pytest.mark.parametrize("vehicles", [1, 10, 50])
async def test_an_hour_stays_within_the_allowance(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    freezer: FrozenDateTimeFactory,
    vehicles: int,
) -> None:
    """An hour of polling (half the fleet charging) uses at most 80 % of it.

    No request is refused (no 429), every vehicle stays available and no
    vehicle's data is older than twice its poll interval.
    """
    if vehicles == 1:  # a disabled vehicle is left out
        van = next(v for v in evenergy_sim.vehicles if v.description == "Van")
        van.disabled = True
    for number in range(vehicles - 2):
        evenergy_sim.add_vehicle(
            SimVehicle(USER_ID, description=f"Car {number}"),
            plugged_in=number % 2 == 0,
        )
    await setup_entry(hass, evenergy_entry)
    coordinators = evenergy_entry.runtime_data.coordinators
    assert len(coordinators) == vehicles + 1  # and the charger
    before = len(evenergy_sim.requests)
    for _ in range(3600 // STEP):
        evenergy_sim.advance(STEP)
        freezer.tick(timedelta(seconds=STEP))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
    used = len(evenergy_sim.requests) - before
    print(f"{vehicles} vehicle(s) and a charger: {used} requests in an hour")
    assert used <= HOURLY_LIMIT * POLL_SHARE, used
    assert all(c.last_update_success for c in coordinators.values())
    for coordinator in coordinators.values():
        assert coordinator.update_interval is not None
        age = evenergy_sim.now - coordinator.data.data_time.timestamp()
        assert age <= 2 * coordinator.update_interval.total_seconds() + STEP
    assert hass.states.get("sensor.zoe_battery").state != STATE_UNAVAILABLE


async def test_refresh_asked_for_waits_for_the_budget(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refresh the budget cannot afford now is put off, said at debug, not sent."""
    evenergy_sim.hourly_limit = 7  # the setup's six reads leave nothing to spare
    await setup_entry(hass, evenergy_entry)
    assert await async_setup_component(hass, "homeassistant", {})
    coordinator = next(iter(evenergy_entry.runtime_data.coordinators.values()))
    before = len(evenergy_sim.requests)
    caplog.clear()
    await coordinator.async_request_refresh()
    await hass.async_block_till_done()
    assert len(evenergy_sim.requests) == before
    assert coordinator.last_update_success  # the values shown stay
    waits = [
        r
        for r in caplog.records
        if "the read asked for waits" in r.getMessage() and r.levelno == logging.DEBUG
    ]
    assert len(waits) == 1
