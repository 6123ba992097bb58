"""OVMS fixtures: a simulated server with two cars and an entry for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.const import CONF_PROVIDER, CONF_SERVER_URL, DOMAIN
from tests.simulators.ovms import OvmsSimulator, SimVehicle

OVMS_USER = "demo"
OVMS_PASSWORD = "demo-password-secret"
OVMS_TOKEN = "demo-api-token-secret"
SECRETS = (OVMS_PASSWORD, OVMS_TOKEN)


@pytest.fixture
async def ovms_sim(
    socket_enabled: None, freezer: FrozenDateTimeFactory
) -> AsyncIterator[OvmsSimulator]:
    """An OVMS server with one account and two cars.

    DEMO (km) charges, ROADSTER (miles, older "W" tyre record) is parked. The
    clock is frozen first, so record times are fixed.
    """
    # Later than any real clock here: tokens made before the freeze stay valid.
    freezer.move_to("2027-01-01T12:00:00+00:00")
    simulator = OvmsSimulator(hold_seconds=0)
    simulator.add_user(OVMS_USER, OVMS_PASSWORD, tokens=[OVMS_TOKEN])
    demo = simulator.add_vehicle(SimVehicle(vehicle_id="DEMO", owner=OVMS_USER))
    demo.plug_in()
    demo.start_charging()
    simulator.add_vehicle(
        SimVehicle(vehicle_id="ROADSTER", owner=OVMS_USER, units="M", tpms_format="W")
    )
    simulator.advance(60)
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def ovms_data(sim: OvmsSimulator, **overrides: Any) -> dict[str, Any]:
    """Entry data of an OVMS entry for the simulated account."""
    return {
        CONF_PROVIDER: "ovms",
        CONF_SERVER_URL: sim.url,
        "username": OVMS_USER,
        "password": OVMS_PASSWORD,
        **overrides,
    }


@pytest.fixture
def ovms_entry(ovms_sim: OvmsSimulator) -> MockConfigEntry:
    """An OVMS entry (not yet added to hass)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"OVMS {OVMS_USER}",
        unique_id=f"{ovms_sim.url.removeprefix('http://')}/{OVMS_USER}",
        entry_id="01JOVMSENTRY0000000000000",
        data=ovms_data(ovms_sim),
        options={"excluded_vehicles": []},
    )
