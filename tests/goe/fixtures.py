"""go-e fixtures: a simulated charger and entries that point at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from unittest.mock import patch

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.const import CONF_PROVIDER, CONF_SERVER_URL, DOMAIN
from custom_components.ev_cloud.link import (
    CONF_CHARGER,
    CONF_CHARGER_LINKS,
    registered_device,
)
from custom_components.ev_cloud.providers.goe.const import (
    CONF_CONNECTION,
    CONF_SERIAL,
    CONNECTION_CLOUD,
    CONNECTION_LOCAL,
    NAME as PROVIDER_GOE,
)
from tests.conftest import setup_entry
from tests.simulators.goe import HOME, GoeSimulator, SimCharger

SERIAL = "012345"
TOKEN = "sim-token-012345"
SECRETS = (TOKEN,)


# The harness blocks sockets; simulators need them, and connections stay limited to
# 127.0.0.1 by the harness's allow-list.


@pytest.fixture
def no_request_spacing() -> Iterator[None]:
    """Let requests to the charger follow each other at once.

    With a frozen clock the client's 1 s spacing between requests never elapses,
    and with a real one it only slows tests down; tests/goe/test_client.py checks
    the spacing itself.
    """
    with patch("custom_components.ev_cloud.api.goe.MIN_REQUEST_INTERVAL", 0):
        yield


@pytest.fixture
def goe_model() -> str:
    """The simulated charger's model; parametrize it to test a CORE or PRO."""
    return HOME


@pytest.fixture
async def goe_sim(socket_enabled: None, goe_model: str) -> AsyncIterator[GoeSimulator]:
    """A go-e simulator with one charger whose car has charged for ten minutes."""
    charger = SimCharger(serial=SERIAL, token=TOKEN, model=goe_model)
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


async def link_to_goe(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    vehicle_entry: MockConfigEntry,
    links: dict[str, dict[str, Any]],
) -> str:
    """Set up the go-e entry, then the vehicle entry linked to its charger.

    `links`: the link options of each vehicle key (the charger is added);
    returns the charger's registry device id.
    """
    await setup_entry(hass, goe_entry)
    charger = registered_device(hass, f"goe_{SERIAL}")
    assert charger is not None
    vehicle_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        vehicle_entry,
        options={
            **vehicle_entry.options,
            CONF_CHARGER_LINKS: {
                key: {CONF_CHARGER: charger.id, **link} for key, link in links.items()
            },
        },
    )
    await hass.config_entries.async_setup(vehicle_entry.entry_id)
    await hass.async_block_till_done()
    return charger.id
