"""OVMS fixtures: a simulated server with two cars and an entry for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.const import CONF_PROVIDER, CONF_SERVER_URL, DOMAIN
from tests.simulators.ovms import OvmsSimulator, SimVehicle
from tests.simulators.ovms_v2 import OvmsV2Server

OVMS_USER = "demo"
OVMS_PASSWORD = "demo-password-secret"
OVMS_TOKEN = "demo-api-token-secret"
# The cars' v2 server passwords and DEMO's PIN (commands).
V2_PASSWORD = "demo-v2-server-password-secret"
ROADSTER_V2_PASSWORD = "roadster-v2-password-secret"
V2_PIN = "pin-4711-secret"
SECRETS = (OVMS_PASSWORD, OVMS_TOKEN, V2_PASSWORD, ROADSTER_V2_PASSWORD, V2_PIN)


@pytest.fixture
def ovms_server() -> str:
    """The server software the simulator runs ("v3"; a test module may override).

    tests/ovms/test_integration.py runs its tests against "v2" too.
    """
    return "v3"


@pytest.fixture
async def ovms_sim(
    socket_enabled: None, freezer: FrozenDateTimeFactory, ovms_server: str
) -> AsyncIterator[OvmsSimulator]:
    """An OVMS server with one account and two cars.

    DEMO (km) charges, ROADSTER (miles, older "W" tyre record) is parked. The
    clock is frozen first, so record times are fixed. The account's API token
    opens nothing on a "v2" server, which has no tokens.
    """
    # Later than any real clock here: tokens made before the freeze stay valid.
    freezer.move_to("2027-01-01T12:00:00+00:00")
    simulator = OvmsSimulator(hold_seconds=0, server=ovms_server)
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


@pytest.fixture
async def ovms_v2(ovms_sim: OvmsSimulator) -> AsyncIterator[OvmsV2Server]:
    """The simulated server's v2 port (plain TCP): DEMO with a PIN, ROADSTER without."""
    server = OvmsV2Server(ovms_sim)
    server.add_car("DEMO", V2_PASSWORD, pin=V2_PIN)
    server.add_car("ROADSTER", ROADSTER_V2_PASSWORD)
    async with server:
        yield server


def v2_data(v2: OvmsV2Server, **commands: dict[str, str]) -> dict[str, Any]:
    """Entry data that gives cars their v2 secrets, at the simulator's v2 port."""
    return {
        "vehicle_commands": commands,
        "v2_server": {"host": "127.0.0.1", "port": v2.port, "tls": False},
    }


@pytest.fixture
def ovms_command_entry(
    ovms_sim: OvmsSimulator, ovms_v2: OvmsV2Server
) -> MockConfigEntry:
    """An OVMS entry whose DEMO has commands (password and PIN), ROADSTER none."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"OVMS {OVMS_USER}",
        unique_id=f"{ovms_sim.url.removeprefix('http://')}/{OVMS_USER}",
        entry_id="01JOVMSENTRY0000000000000",
        data=ovms_data(ovms_sim)
        | v2_data(ovms_v2, DEMO={"server_password": V2_PASSWORD, "pin": V2_PIN}),
        options={"excluded_vehicles": []},
    )
