"""A vehicle linked to the charger that charges it: the OVMS DEMO car and a go-e.

Both simulators serve real HTTP; the clock is frozen and moved by the tests.
The car's own charge model is switched off (`charge_power_kw = 0`): the test
moves its state of charge with the energy the go-e charger delivers, times a
true efficiency that differs from the link's option, so that the simulated car
and charger charge the same battery. The car "reports" every 30 minutes: it is
silent in between, so the server keeps its last records (with their time).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.ev_cloud.link import (
    CONF_CAPACITY,
    CONF_CHARGER,
    CONF_CHARGER_LINKS,
    registered_device,
)
from tests.conftest import setup_entry
from tests.goe.fixtures import SERIAL
from tests.simulators.goe import SimCharger
from tests.simulators.ovms import OvmsSimulator, SimVehicle

CAPACITY_KWH = 40.0  # the simulated car's battery (SimVehicle.battery_kwh)
TRUE_EFFICIENCY = 0.92  # what reaches the simulated battery
STEP_S = 30  # the charger is read every 30 s (go-e's active interval)
REPORT_S = 1800  # the car reports every 30 minutes
ESTIMATE = "sensor.ovms_demo_estimated_battery_level"
BATTERY = "sensor.ovms_demo_battery"
VEHICLE_KEY = "ovms_DEMO"


@pytest.fixture
def demo(hass: HomeAssistant, ovms_sim: OvmsSimulator) -> SimVehicle:
    """The OVMS DEMO car, plugged in at home, its state of charge moved by the test."""
    car = ovms_sim.vehicle("DEMO")
    car.latitude, car.longitude = hass.config.latitude, hass.config.longitude
    car.charge_power_kw = 0.0  # the test charges it from the go-e's energy
    car.soc = 30.0
    return car


async def link_entries(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    **options: Any,
) -> str:
    """Set up the charger, then the car linked to it; the charger's device id."""
    await setup_entry(hass, goe_entry)
    charger = registered_device(hass, f"goe_{SERIAL}")
    assert charger is not None
    link = {CONF_CHARGER: charger.id, **options}
    ovms_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        ovms_entry,
        options={**ovms_entry.options, CONF_CHARGER_LINKS: {VEHICLE_KEY: link}},
    )
    await hass.config_entries.async_setup(ovms_entry.entry_id)
    await hass.async_block_till_done()
    return charger.id


class Clock:
    """Moves the simulators and Home Assistant's clock together."""

    def __init__(
        self,
        hass: HomeAssistant,
        freezer: FrozenDateTimeFactory,
        charger: SimCharger,
        ovms: OvmsSimulator,
        car: SimVehicle,
    ) -> None:
        """Drive `charger` and `car` (in `ovms`) with the frozen clock."""
        self.hass, self.freezer = hass, freezer
        self.charger, self.ovms, self.car = charger, ovms, car
        self.elapsed = 0

    def report(self) -> None:
        """The car sends its records once (then is silent again)."""
        self.car.set_silent(False)
        self.ovms.advance(0)
        self.car.set_silent(True)

    async def step(self) -> None:
        """30 s: the charger delivers, the car's battery takes its share."""
        before = self.charger.state["eto"]
        self.charger.advance(STEP_S)
        kwh = (self.charger.state["eto"] - before) / 1000
        self.car.soc = min(
            100.0, self.car.soc + kwh * TRUE_EFFICIENCY / CAPACITY_KWH * 100
        )
        self.ovms.advance(STEP_S)
        self.elapsed += STEP_S
        if self.elapsed % REPORT_S == 0:
            self.report()
        self.freezer.tick(timedelta(seconds=STEP_S))
        async_fire_time_changed(self.hass)
        await self.hass.async_block_till_done(wait_background_tasks=True)


def estimate(hass: HomeAssistant) -> float | None:
    """The estimate sensor's value (None while unknown)."""
    state = hass.states.get(ESTIMATE)
    assert state is not None
    return None if state.state in ("unknown", "unavailable") else float(state.state)


async def test_estimate_follows_the_true_state_of_charge(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    goe_charger: SimCharger,
    ovms_sim: OvmsSimulator,
    demo: SimVehicle,
) -> None:
    """Charged 3 h, the car reporting every 30 min: within 3 points throughout."""
    clock = Clock(hass, freezer, goe_charger, ovms_sim, demo)
    clock.report()
    await link_entries(hass, goe_entry, ovms_entry, **{CONF_CAPACITY: CAPACITY_KWH})
    reported = float(hass.states.get(BATTERY).state)
    assert reported == pytest.approx(30.0, abs=0.1)
    worst = 0.0
    rose_between_reports = False
    for _ in range(3 * 3600 // STEP_S):
        await clock.step()
        value = estimate(hass)
        assert value is not None
        worst = max(worst, abs(value - demo.soc))
        car = float(hass.states.get(BATTERY).state)
        rose_between_reports |= value > car + 1
        assert value <= 100
    assert demo.soc > 60  # the charge really moved the battery
    assert worst <= 3, worst
    assert rose_between_reports
    attributes = hass.states.get(ESTIMATE).attributes
    assert attributes["charger"].startswith("go-e")
    assert attributes["base_battery_level"] == pytest.approx(demo.soc, abs=3)
