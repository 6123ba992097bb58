"""EV-Monitor fixtures: a simulated account with one logbook, and its entry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.ev_cloud.const import DOMAIN
from tests.simulators.evmonitor import (
    EvMonitorBodyMode,
    EvMonitorSimulator,
    SimVehicle,
)

EMAIL = "logbook-owner@example.com"
PASSWORD = "evm-sim-password-secret-0001"
# The e-mail is the user name EV-Monitor signs in with, a credential: it may
# appear nowhere (the entry is titled after the logbook, diagnostics redact it).
SECRETS = (PASSWORD, EMAIL)
# Except in the account form's user name field: its owner edits it there.
EDITABLE = (EMAIL,)
# The simulated service's clock and Home Assistant's (frozen) start here.
START = datetime(2027, 1, 1, 12, tzinfo=UTC)
# The entities an entry of the fixture reads (set by the tests as plain states).
SOURCE = {
    "soc": "sensor.car_battery",
    "range": "sensor.car_range",
    "speed": "sensor.car_speed",
    "odometer": "sensor.car_odometer",
    "power": "sensor.car_power",
    "battery_temperature": "sensor.car_battery_temperature",
    "charging": "binary_sensor.car_charging",
    "location": "device_tracker.car",
}


# Both body modes, for the test modules that run against each
# (`evmonitor_body_mode` overridden there with `params=BODY_MODES`).
BODY_MODES = (EvMonitorBodyMode.ANY, EvMonitorBodyMode.JSON_ONLY)


@pytest.fixture
def evmonitor_body_mode() -> EvMonitorBodyMode:
    """Which bodies the simulated service reads: form fields and JSON."""
    return EvMonitorBodyMode.ANY


@pytest.fixture
async def evmonitor_sim(
    socket_enabled: None,
    freezer: FrozenDateTimeFactory,
    evmonitor_body_mode: EvMonitorBodyMode,
) -> AsyncIterator[EvMonitorSimulator]:
    """One account with one vehicle, "The Rocket" (an Energica SS9)."""
    freezer.move_to(START)
    simulator = EvMonitorSimulator(
        start_time=START.timestamp(), body_mode=evmonitor_body_mode
    )
    user = simulator.add_user(EMAIL, PASSWORD)
    simulator.add_vehicle(user, "The Rocket", make="Energica", model="SS9")
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def rocket(simulator: EvMonitorSimulator) -> SimVehicle:
    """The account's vehicle."""
    return next(v for v in simulator.vehicles.values() if v.nickname == "The Rocket")


@pytest.fixture
def evmonitor_entry(evmonitor_sim: EvMonitorSimulator) -> MockConfigEntry:
    """An EV-Monitor entry fed by the entities in SOURCE (not yet added to hass)."""
    vehicle_id = rocket(evmonitor_sim).id
    return MockConfigEntry(
        domain=DOMAIN,
        title="EV-Monitor The Rocket",
        unique_id=vehicle_id,
        entry_id="01JEVMONITORENTRY00000000",
        data={
            "provider": "evmonitor",
            "server_url": evmonitor_sim.url,
            "username": EMAIL,
            "password": PASSWORD,
            "vehicle": vehicle_id,
        },
        options={
            **SOURCE,
            "active_interval": 60,
            "idle_interval": 900,
            "upload_interval": 300,
        },
    )


def park(hass: HomeAssistant, **changes: Any) -> None:
    """The source car parked (or with `changes`: field=value of its states)."""
    values = {
        "soc": 55,
        "range": 200,
        "speed": 0,
        "odometer": 12345.6,
        "power": 0,
        "battery_temperature": 21,
        "charging": "off",
    } | changes
    units = {
        "soc": "%",
        "range": "km",
        "speed": "km/h",
        "odometer": "km",
        "power": "kW",
        "battery_temperature": "°C",
    }
    for field, value in values.items():
        attributes = {"unit_of_measurement": units[field]} if field in units else {}
        hass.states.async_set(SOURCE[field], str(value), attributes)
    hass.states.async_set(
        SOURCE["location"],
        "not_home",
        {"latitude": 48.1371, "longitude": 11.5754, "gps_accuracy": 5},
    )


async def tick(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: EvMonitorSimulator,
    seconds: float,
) -> None:
    """Let `seconds` pass for Home Assistant and the service alike.

    In steps of 10 s, so that timers set by timers run in their turn.
    """
    while seconds > 0:
        step = min(seconds, 10.0)
        seconds -= step
        sim.advance(step)
        freezer.tick(timedelta(seconds=step))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
