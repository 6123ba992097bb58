"""EVLinkHA fixtures: a simulated pro account with two vehicles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

from freezegun.api import FrozenDateTimeFactory
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.const import DOMAIN
from tests.simulators.evlinkha import EvLinkSimulator, SimVehicle

API_KEY = "evl-sim-api-key-secret-0001"
USER_ID = "usr-sim-0001"
WEBHOOK_ID = "evlinkha-test-webhook-id"
# The webhook id is no credential of ours to guard in logs: Home Assistant logs
# the paths it serves, webhooks included, at debug level.
SECRETS = (API_KEY,)
EMAIL = "driver@example.com"
# The user's e-mail names the entry ("EVLinkHA <e-mail>"), which Home Assistant
# shows and logs by design; it signs nobody in (the API key does). So it may
# appear where the title does (log lines, texts that name the entry), never in
# diagnostics.
IDENTITIES = (EMAIL,)
# The simulated service's clock and Home Assistant's (frozen) start here.
START = datetime(2027, 1, 1, 12, tzinfo=UTC)


@pytest.fixture
async def evlinkha_sim(
    socket_enabled: None, freezer: FrozenDateTimeFactory
) -> AsyncIterator[EvLinkSimulator]:
    """A pro user: an XPENG G6 charging, a Tesla Model 3 parked.

    Every call counts (the hosted service's counting rules are not public).
    """
    freezer.move_to(START)
    simulator = EvLinkSimulator(start_time=START.timestamp())
    simulator.counted_paths = {"vehicles", "status", "charging"}
    user = simulator.add_user(EMAIL, "pro", api_key=API_KEY, user_id=USER_ID)
    g6 = simulator.add_vehicle(SimVehicle(user.id, display_name="G6"))
    simulator.plug_in(g6.id)
    simulator.add_vehicle(
        SimVehicle(user.id, brand="Tesla", model="Model 3", display_name="Model 3")
    )
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


@pytest.fixture
def evlinkha_entry(evlinkha_sim: EvLinkSimulator) -> MockConfigEntry:
    """An EVLinkHA entry (not yet added to hass)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"EVLinkHA {EMAIL}",
        unique_id=USER_ID,
        entry_id="01JEVLINKHAENTRY000000000",
        data={
            "provider": "evlinkha",
            "server_url": evlinkha_sim.url,
            "api_key": API_KEY,
            "webhook_id": WEBHOOK_ID,
        },
    )
