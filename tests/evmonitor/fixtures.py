"""EV-Monitor fixtures: a simulated account with one logbook, and its entry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.const import DOMAIN
from tests.simulators.evmonitor import EvMonitorSimulator, SimVehicle

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


@pytest.fixture
async def evmonitor_sim(
    socket_enabled: None, freezer: FrozenDateTimeFactory
) -> AsyncIterator[EvMonitorSimulator]:
    """One account with one vehicle, "The Rocket" (an Energica SS9)."""
    freezer.move_to(START)
    simulator = EvMonitorSimulator(start_time=START.timestamp())
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
