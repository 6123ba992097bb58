"""A linked vehicle rests while its charger charges it, and is read after events.

An EVLinkHA car on the free tier (300 calls in 30 days, its real allowance) and
an OVMS car, each linked to the go-e simulator's charger at home (the car stands
in the home zone). Both simulators serve real HTTP; the clock is frozen and
moved by the tests, the simulators' clocks with it. The requests counted are
the ones each simulator received.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Protocol

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.ev_cloud.link import (
    CONF_CAPACITY,
    LOOK_DELAY,
)
from tests.conftest import setup_entry
from tests.evlinkha.fixtures import USER_ID
from tests.goe.fixtures import link_to_goe
from tests.simulators.evlinkha import EvLinkSimulator, SimVehicle as EvLinkVehicle
from tests.simulators.goe import SimCharger
from tests.simulators.ovms import OvmsSimulator, SimVehicle as OvmsVehicle

STEP = timedelta(seconds=30)  # the go-e cloud's poll interval while charging
# The free tier's pace: 300 calls over 30 days and a day, one every 2.48 h.
FREE_TIER_PACE = timedelta(hours=31 * 24 / 300)
# How long after a charger event the car is read at the latest: the charger's
# poll (120 s while no car is plugged in, 30 s while charging), the link's
# delay, and a step.
LOOK_AFTER_PLUG_IN = timedelta(seconds=120) + LOOK_DELAY + STEP
LOOK_AFTER_CHARGE = STEP + LOOK_DELAY + STEP  # two minutes


class Service(Protocol):
    """A simulator whose clock moves (EVLinkHA, OVMS)."""

    def advance(self, seconds: float) -> None:
        """Move its clock."""


class Clock:
    """Moves Home Assistant's clock, the charger's and the car's service's."""

    def __init__(
        self,
        hass: HomeAssistant,
        freezer: FrozenDateTimeFactory,
        charger: SimCharger,
        service: Service,
    ) -> None:
        """Drive `charger` and `service` with the frozen clock."""
        self.hass, self.freezer = hass, freezer
        self.charger, self.service = charger, service

    async def run(
        self, duration: timedelta, requests: Callable[[], int] = lambda: 0
    ) -> int:
        """Let `duration` pass, a step at a time; the steps with `requests`."""
        steps = 0
        for _ in range(round(duration / STEP)):
            before = requests()
            seconds = STEP.total_seconds()
            self.charger.advance(seconds)
            self.service.advance(seconds)
            self.freezer.tick(STEP)
            async_fire_time_changed(self.hass)
            await self.hass.async_block_till_done(wait_background_tasks=True)
            steps += requests() > before
        return steps


# --- EVLinkHA, free tier ------------------------------------------------------


@pytest.fixture
def g6(hass: HomeAssistant, evlinkha_sim: EvLinkSimulator) -> EvLinkVehicle:
    """The free tier's only car, the G6: at home, not plugged in yet."""
    evlinkha_sim.users[USER_ID].tier = "free"
    for vehicle in evlinkha_sim.vehicles:
        if vehicle.display_name != "G6":
            evlinkha_sim.remove_vehicle(vehicle.id)
    (car,) = evlinkha_sim.vehicles
    car.latitude, car.longitude = hass.config.latitude, hass.config.longitude
    evlinkha_sim.unplug(car.id)
    return car


@pytest.fixture
def unplugged_charger(goe_charger: SimCharger) -> SimCharger:
    """The go-e charger with no car, ready for a long charge."""
    goe_charger.unplug()
    goe_charger.battery_wh_needed = 80_000  # longer than any test's charge
    return goe_charger


def vehicle_reads(sim: EvLinkSimulator) -> int:
    """The vehicle list reads EVLinkHA served so far (each counts as a call)."""
    return sum(1 for _, path in sim.requests if path.endswith("/vehicles"))


def plug_in(charger: SimCharger, sim: EvLinkSimulator, car: EvLinkVehicle) -> None:
    """The car is plugged into the charger, which starts charging it."""
    charger.plug_in()
    sim.plug_in(car.id)


@pytest.mark.parametrize("event", ["charge stopped", "unplugged"])
async def test_free_tier_car_rests_while_the_charger_charges_it(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    goe_entry: MockConfigEntry,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    unplugged_charger: SimCharger,
    g6: EvLinkVehicle,
    event: str,
) -> None:
    """Read once after the plug-in, then not while charging; once after the end.

    The rest lasts longer than the free tier's pace, so an unlinked car would be
    read in it (next test).
    """
    clock = Clock(hass, freezer, unplugged_charger, evlinkha_sim)
    key = f"evlinkha_{g6.id}"
    await link_to_goe(hass, goe_entry, evlinkha_entry, {key: {}})
    await clock.run(timedelta(minutes=10))
    coordinator = evlinkha_entry.runtime_data.coordinators[key]
    before = vehicle_reads(evlinkha_sim)

    plug_in(unplugged_charger, evlinkha_sim, g6)
    await clock.run(LOOK_AFTER_PLUG_IN)
    assert vehicle_reads(evlinkha_sim) == before + 1  # the look after the plug-in
    assert coordinator.covered
    assert coordinator.data.state.vehicle.charge.is_plugged_in

    looked = vehicle_reads(evlinkha_sim)
    await clock.run(FREE_TIER_PACE + timedelta(minutes=30))
    assert vehicle_reads(evlinkha_sim) == looked  # no call while charged
    assert unplugged_charger.charging

    if event == "unplugged":
        unplugged_charger.unplug()
        evlinkha_sim.unplug(g6.id)
    else:  # the car took what it needed: the charger stops, the cable stays in
        unplugged_charger.battery_wh_needed = unplugged_charger.state["wh"]
        evlinkha_sim.set_charging(g6.id, False)
    await clock.run(LOOK_AFTER_CHARGE)
    assert vehicle_reads(evlinkha_sim) == looked + 1  # the look after the event
    # Still plugged in at the charger after the charge, the estimate covers it.
    assert coordinator.covered is (event == "charge stopped")
    assert coordinator.data.state.vehicle.charge.is_charging is False


async def test_unlinked_free_tier_car_is_polled_while_charging(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    goe_entry: MockConfigEntry,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    unplugged_charger: SimCharger,
    g6: EvLinkVehicle,
) -> None:
    """Without the link, the same charge is polled at the free tier's pace."""
    clock = Clock(hass, freezer, unplugged_charger, evlinkha_sim)
    await setup_entry(hass, goe_entry)
    await setup_entry(hass, evlinkha_entry)
    await clock.run(timedelta(minutes=10))
    plug_in(unplugged_charger, evlinkha_sim, g6)
    await clock.run(LOOK_AFTER_PLUG_IN)
    before = vehicle_reads(evlinkha_sim)
    await clock.run(FREE_TIER_PACE + timedelta(minutes=30))
    assert vehicle_reads(evlinkha_sim) > before


# --- OVMS ---------------------------------------------------------------------

OVMS_KEY = "ovms_DEMO"
OVMS_WINDOW = timedelta(minutes=30)


def demo_reads(sim: OvmsSimulator) -> int:
    """Requests the OVMS server served for the DEMO car so far."""
    return sum(1 for _, path in sim.requests if path.endswith("/DEMO"))


@pytest.mark.parametrize(
    ("linked", "interval"), [(True, 300), (False, 60)], ids=["linked", "unlinked"]
)
async def test_ovms_car_is_polled_at_its_idle_interval_while_charged(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    goe_charger: SimCharger,
    linked: bool,
    interval: int,
) -> None:
    """Linked, the charging DEMO car is polled every 5 min, else every minute.

    The go-e charger charges it at home (both simulators' fixtures start so).
    """
    demo: OvmsVehicle = ovms_sim.vehicle("DEMO")
    demo.latitude, demo.longitude = hass.config.latitude, hass.config.longitude
    goe_charger.battery_wh_needed = 80_000
    clock = Clock(hass, freezer, goe_charger, ovms_sim)
    if linked:
        await link_to_goe(
            hass, goe_entry, ovms_entry, {OVMS_KEY: {CONF_CAPACITY: demo.battery_kwh}}
        )
    else:
        await setup_entry(hass, goe_entry)
        await setup_entry(hass, ovms_entry)
    await clock.run(timedelta(minutes=10))
    coordinator = ovms_entry.runtime_data.coordinators[OVMS_KEY]
    assert coordinator.covered is linked
    assert coordinator.update_interval == timedelta(seconds=interval)

    polls = await clock.run(OVMS_WINDOW, lambda: demo_reads(ovms_sim))
    assert polls == OVMS_WINDOW.total_seconds() / interval
