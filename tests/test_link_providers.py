"""Each vehicle provider linked to the go-e charger: the same link, no code of theirs.

OVMS, EVLinkHA and ev.energy cars, each plugged in at home in its simulator,
are linked to the simulated go-e charger. The go-e charges; the estimate adds
its energy to the car's reading; a session from plug-in to unplug at the charger
is the car's. Only the clock is frozen and moved by the test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.link import (
    CONF_CAPACITY,
    registered_device,
)
from tests.goe.fixtures import link_to_goe
from tests.simulators.goe import SimCharger

STEP = timedelta(seconds=30)


@dataclass(frozen=True)
class Car:
    """How a provider's fixtures give a car plugged in at home, and its key."""

    provider: str
    entry: str  # the fixture of the entry
    sim: str  # the fixture of the simulator
    key: Callable[[Any], str]  # the vehicle's device key, from the simulator
    at_home: Callable[[HomeAssistant, Any], None]
    advance: Callable[[Any, float], None]


def _ovms_home(hass: HomeAssistant, sim: Any) -> None:
    car = sim.vehicle("DEMO")
    car.latitude, car.longitude = hass.config.latitude, hass.config.longitude


def _evlinkha_car(sim: Any) -> Any:
    return next(car for car in sim.vehicles if car.display_name == "G6")


def _evlinkha_home(hass: HomeAssistant, sim: Any) -> None:
    car = _evlinkha_car(sim)
    car.latitude, car.longitude = hass.config.latitude, hass.config.longitude


def _zoe(sim: Any) -> Any:
    return next(car for car in sim.vehicles if car.description == "Zoe")


CARS = (
    Car(
        "ovms",
        "ovms_entry",
        "ovms_sim",
        lambda _sim: "ovms_DEMO",
        _ovms_home,
        lambda sim, seconds: sim.advance(seconds),
    ),
    Car(
        "evlinkha",
        "evlinkha_entry",
        "evlinkha_sim",
        lambda sim: f"evlinkha_{_evlinkha_car(sim).id}",
        _evlinkha_home,
        lambda sim, seconds: sim.advance(seconds),
    ),
    Car(
        "evenergy",
        "evenergy_entry",
        "evenergy_sim",
        lambda sim: f"evenergy_{_zoe(sim).id}",
        lambda _hass, _sim: None,  # Zoe is at home (the service says so)
        lambda sim, seconds: sim.advance(seconds),
    ),
)


@pytest.fixture(autouse=True)
def _no_request_spacing(no_request_spacing: None) -> None:
    """Requests reach the charger under the frozen clock."""


def _entity(hass: HomeAssistant, unique_id: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        Platform.SENSOR, DOMAIN, unique_id
    )
    assert entity_id is not None, unique_id
    return entity_id


@dataclass(frozen=True)
class CarUnderTest:
    """A car, its provider's simulator and the entry that reads it."""

    car: Car
    sim: Any
    entry: MockConfigEntry


@pytest.fixture(params=CARS, ids=lambda car: car.provider)
def car_under_test(request: pytest.FixtureRequest) -> CarUnderTest:
    """Each provider's car after another, with its simulator and entry."""
    car: Car = request.param
    return CarUnderTest(
        car, request.getfixturevalue(car.sim), request.getfixturevalue(car.entry)
    )


async def test_a_car_of_each_provider_charged_by_the_go_e(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    car_under_test: CarUnderTest,
) -> None:
    """The estimate grows with the charger's energy; the session is the car's."""
    car, sim, entry = car_under_test.car, car_under_test.sim, car_under_test.entry
    car.at_home(hass, sim)
    key = car.key(sim)

    async def step(times: int = 1) -> None:
        for _ in range(times):
            goe_charger.advance(STEP.total_seconds())
            car.advance(sim, STEP.total_seconds())
            freezer.tick(STEP)
            async_fire_time_changed(hass)
            await hass.async_block_till_done(wait_background_tasks=True)

    charger_id = await link_to_goe(hass, goe_entry, entry, {key: {CONF_CAPACITY: 50}})
    link = entry.runtime_data.links[key]
    estimate = _entity(hass, f"{key}_estimated_battery_level")

    # The charger's car connects anew: the session starts with it.
    goe_charger.unplug()
    await step(4)
    goe_charger.plug_in()
    await step(20)  # 10 minutes at the charger's 11 kW
    assert link.at_charger()
    state = hass.states.get(estimate)
    assert state is not None
    added = state.attributes["energy_added_kwh"]
    assert added is not None
    assert added > 0
    assert float(state.state) > state.attributes["base_battery_level"]

    events = []
    hass.bus.async_listen("ev_cloud_charging_session", events.append)
    goe_charger.unplug()
    await step(4)
    (event,) = events
    vehicle = registered_device(hass, key)
    assert vehicle is not None
    assert event.data["vehicle_device_id"] == vehicle.id
    assert event.data["charger_device_id"] == charger_id
    assert event.data["energy_kwh"] == pytest.approx(
        goe_charger.state["wh"] / 1000, abs=0.02
    )
    # Known at both ends (the start from the estimate less what was added).
    assert 0 < event.data["start_soc"] < event.data["end_soc"] <= 100
    session = hass.states.get(_entity(hass, f"{key}_last_charging_session"))
    assert session is not None
    assert float(session.state) == pytest.approx(event.data["energy_kwh"])
