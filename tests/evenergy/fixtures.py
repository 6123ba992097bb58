"""ev.energy fixtures: a simulated service with a user, two vehicles and a charger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
import time
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.application_credentials import (
    ClientCredential,
    async_import_client_credential,
)
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.const import DOMAIN
from tests.simulators.evenergy import (
    ANY_REDIRECT_URI,
    EvEnergySimulator,
    SimEvse,
    SimVehicle,
    make_id,
)

USER_ID = make_id("user", 7)
CLIENT_ID = "sim-evenergy-client"
CLIENT_SECRET = "sim-evenergy-client-secret"
ORG_CLIENT_ID = "sim-evenergy-organisation"
ORG_CLIENT_SECRET = "sim-evenergy-organisation-secret"
CREDENTIAL = "evenergy_credential"  # the application credential's id
EMAIL = "driver@example.com"
SECRETS = (CLIENT_SECRET, ORG_CLIENT_SECRET)
# The user's e-mail names the entry ("ev.energy <e-mail>"), which Home Assistant
# shows and logs by design; it signs nobody in. So it may appear where the title
# does (log lines, texts that name the entry), never in diagnostics.
IDENTITIES = (EMAIL,)


# The simulated service's clock and Home Assistant's (frozen) start here.
START = datetime(2027, 1, 1, 12, tzinfo=UTC)


@pytest.fixture
async def evenergy_sim(
    socket_enabled: None, freezer: FrozenDateTimeFactory
) -> AsyncIterator[EvEnergySimulator]:
    """One user: Zoe charging at home, Van parked away, and the home charger.

    Home Assistant's clock is frozen at the service's start; tests move both.
    """
    freezer.move_to(START)
    simulator = EvEnergySimulator(start_time=START.timestamp())
    simulator.add_user(EMAIL, user_id=USER_ID)
    simulator.add_client(CLIENT_ID, CLIENT_SECRET, redirect_uris=[ANY_REDIRECT_URI])
    simulator.add_client(ORG_CLIENT_ID, ORG_CLIENT_SECRET, organisation_users=[USER_ID])
    zoe = simulator.add_vehicle(
        SimVehicle(USER_ID, description="Zoe", soc=42.0), plugged_in=True
    )
    simulator.add_vehicle(
        SimVehicle(USER_ID, description="Van", soc=77.0, at_home=False)
    )
    simulator.add_evse(SimEvse(USER_ID, vehicle_id=zoe.id))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


async def import_credential(hass: HomeAssistant) -> None:
    """The user's OAuth client, as added under Application credentials."""
    assert await async_setup_component(hass, "application_credentials", {})
    await async_import_client_credential(
        hass, DOMAIN, ClientCredential(CLIENT_ID, CLIENT_SECRET), CREDENTIAL
    )


def oauth_data(sim: EvEnergySimulator, **overrides: Any) -> dict[str, Any]:
    """Entry data of a user signed in through OAuth, with a fresh token."""
    token = sim.issue_token(CLIENT_ID, USER_ID)
    token["expires_at"] = time.time() + token["expires_in"]
    return {
        "provider": "evenergy",
        "auth": "oauth",
        "base_url": sim.url,
        "user_id": USER_ID,
        "auth_implementation": CREDENTIAL,
        "token": token,
        **overrides,
    }


@pytest.fixture
async def evenergy_entry(
    hass: HomeAssistant, evenergy_sim: EvEnergySimulator
) -> MockConfigEntry:
    """An ev.energy entry signed in through OAuth (not yet added to hass)."""
    await import_credential(hass)
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"ev.energy {EMAIL}",
        unique_id=USER_ID,
        entry_id="01JEVENERGYENTRY000000000",
        data=oauth_data(evenergy_sim),
    )


@pytest.fixture
def evenergy_organisation_entry(evenergy_sim: EvEnergySimulator) -> MockConfigEntry:
    """An ev.energy entry of an organisation acting for the user."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"ev.energy {EMAIL}",
        unique_id=USER_ID,
        entry_id="01JEVENERGYORGENTRY000000",
        data={
            "provider": "evenergy",
            "auth": "organisation",
            "base_url": evenergy_sim.url,
            "user_id": USER_ID,
            "client_id": ORG_CLIENT_ID,
            "client_secret": ORG_CLIENT_SECRET,
        },
    )
