"""Fixtures: simulators on 127.0.0.1 and config entries that point at them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import logging
from typing import Any
from unittest.mock import PropertyMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

# Import our package before Home Assistant's loader looks for custom integrations,
# so it finds the repository's custom_components instead of the harness's own.
from custom_components.ev_cloud.const import CONF_PROVIDER, CONF_SERVER_URL, DOMAIN
from custom_components.ev_cloud.providers.goe.const import (
    CONF_CONNECTION,
    CONF_SERIAL,
    CONNECTION_CLOUD,
    CONNECTION_LOCAL,
    NAME as PROVIDER_GOE,
)
from tests.simulators.goe import GoeSimulator, SimCharger
from tests.simulators.ovms import OvmsSimulator, SimVehicle

SERIAL = "012345"
TOKEN = "sim-token-012345"
OVMS_USER = "demo"
OVMS_PASSWORD = "demo-password-secret"
OVMS_TOKEN = "demo-api-token-secret"
SECRETS = (TOKEN, OVMS_PASSWORD, OVMS_TOKEN)


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Every test may load custom integrations."""


@pytest.fixture(autouse=True)
def no_secret_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No test may see a credential in any log record, traceback included."""
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.get_records("setup") + caplog.get_records("call"):
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        for secret in SECRETS:
            assert secret not in text, f"secret logged by {record.name}: {text[:200]}"


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create every entity enabled, including those disabled by default."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


# The harness blocks sockets; simulators need them, and connections stay limited to
# 127.0.0.1 by the harness's allow-list.


@pytest.fixture
async def goe_sim(socket_enabled: None) -> AsyncIterator[GoeSimulator]:
    """A go-e simulator with one charger whose car has charged for ten minutes."""
    charger = SimCharger(serial=SERIAL, token=TOKEN)
    charger.plug_in()
    charger.advance(600)
    simulator = GoeSimulator([charger])
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
def goe_charger(goe_sim: GoeSimulator) -> SimCharger:
    """The simulated charger."""
    return goe_sim.charger(SERIAL)


def goe_cloud_data(sim: GoeSimulator, **overrides: Any) -> dict[str, Any]:
    """Entry data of a go-e cloud entry for the simulated charger."""
    return {
        CONF_PROVIDER: PROVIDER_GOE,
        CONF_CONNECTION: CONNECTION_CLOUD,
        CONF_SERIAL: SERIAL,
        "token": TOKEN,
        CONF_SERVER_URL: sim.cloud_url,
        **overrides,
    }


@pytest.fixture
def goe_entry(goe_sim: GoeSimulator) -> MockConfigEntry:
    """A go-e cloud entry (not yet added to hass)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"go-e Charger {SERIAL}",
        unique_id=SERIAL,
        entry_id="01JGOECLOUDENTRY000000000",
        data=goe_cloud_data(goe_sim),
    )


@pytest.fixture
def goe_local_entry(goe_sim: GoeSimulator) -> MockConfigEntry:
    """A go-e local-API entry (not yet added to hass)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"go-e Charger {SERIAL}",
        unique_id=SERIAL,
        entry_id="01JGOELOCALENTRY000000000",
        data={
            CONF_PROVIDER: PROVIDER_GOE,
            CONF_CONNECTION: CONNECTION_LOCAL,
            CONF_SERIAL: SERIAL,
            "host": goe_sim.local_host(SERIAL),
        },
    )


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add the entry to hass and set it up."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


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
