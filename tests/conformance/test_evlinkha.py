"""EVLinkHA: what the service's published source shows, against the simulator.

The hosted `/api/v1` service is not public; its behaviour is inferred from the
public backend (rogasp/evlink-backend @ eb8e5ba) and the official integration
(rogasp/evlinkha-homeassistant @ b54e629). Each case names its source; the
simulator reproduces the fact (`SimUser.ha_external_url` / `ha_webhook_id`, the
rolling window of free users, `SimUser.tier_reset_date` of paid ones).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from homeassistant import config_entries
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ev_cloud.api import QuotaExhaustedError, RateLimitedError
from custom_components.ev_cloud.api.budget import DAY, QuotaBudget
from custom_components.ev_cloud.api.evlinkha import EvLinkClient
from custom_components.ev_cloud.const import DOMAIN
from tests.conftest import setup_entry
from tests.evlinkha.fixtures import API_KEY, USER_ID, WEBHOOK_ID
from tests.simulators.evlinkha import EvLinkSimulator, SimUser, SimVehicle

START = 1_780_000_000.0
MONTH = 30 * DAY


def _leaves(epoch: float) -> float:
    """When a call made at `epoch` leaves EV Cloud's count (its UTC day + 30 days)."""
    return (epoch // DAY + 1) * DAY + MONTH


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[EvLinkSimulator]:
    """The simulated service, with no user yet."""
    simulator = EvLinkSimulator(start_time=START)
    async with simulator:
        yield simulator


def _client(
    sim: EvLinkSimulator,
    session: aiohttp.ClientSession,
    user: SimUser,
    allowance: int,
) -> tuple[EvLinkClient, QuotaBudget]:
    """Our client for `user`, with a budget of `allowance` on the service's clock."""
    budget = QuotaBudget(allowance=allowance, clock=lambda: sim.now)
    return EvLinkClient(session, sim.url, user.api_key, budget=budget), budget


async def test_push_needs_the_profile_fields_url_and_id_apart(
    hass: HomeAssistant,
    evlinkha_sim: EvLinkSimulator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """The profile has two fields; the service posts to <url>/api/webhook/<id>.

    Source: rogasp/evlink-backend @ eb8e5ba, backend/app/api/webhook.py
    (`push_to_homeassistant`: ha_external_url and ha_webhook_id, nothing sent
    when either is empty, one raw Enode event per POST, pro tier only) and
    frontend/src/components/profile/HaWebhookSettingsCard.tsx (the fields
    "Webhook URL" and "Webhook ID"). Setup shows the two values apart; entered
    so, a push goes through Home Assistant's webhook endpoint to the vehicle.
    """
    assert await async_setup_component(hass, DOMAIN, {})
    client = await hass_client_no_auth()
    await hass.config.async_update(external_url=str(client.make_url("/")))
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evlinkha"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"api_key": API_KEY, "advanced": {"server_url": evlinkha_sim.url}},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    user = evlinkha_sim.users[USER_ID]
    user.ha_external_url = result["description_placeholders"]["webhook_url"]
    user.ha_webhook_id = result["description_placeholders"]["webhook_id"]
    vehicle = next(v for v in evlinkha_sim.vehicles if v.display_name == "G6")
    vehicle.battery_level = 77.0
    evlinkha_sim.sample(vehicle, force=True)
    sent = len(evlinkha_sim.requests)
    assert await evlinkha_sim.push(vehicle.id) == 200
    await hass.async_block_till_done()
    assert hass.states.get("sensor.g6_battery").state == "77.0"
    assert len(evlinkha_sim.requests) == sent


async def test_the_webhook_id_is_shown_to_copy(
    hass: HomeAssistant, evlinkha_entry: MockConfigEntry
) -> None:
    """The webhook id is a sensor the user copies from.

    Source: rogasp/evlinkha-homeassistant @ b54e629, custom_components/evlinkha/
    sensor.py (`EVLinkHAWebhookIdSensor`, "Webhook ID"). Ours is a diagnostic
    sensor of each vehicle of a pro account.
    """
    await setup_entry(hass, evlinkha_entry)
    assert hass.states.get("sensor.g6_webhook_id").state == WEBHOOK_ID


async def test_our_count_is_never_below_the_services(
    sim: EvLinkSimulator, session: aiohttp.ClientSession
) -> None:
    """Only status and charging calls count there; every call but /me here.

    Source: rogasp/evlink-backend @ eb8e5ba, backend/app/api/dependencies.py
    (`rate_limited_endpoints`: /api/status/, /api/ha/status/, /api/ha/charging/)
    and backend/app/api/ha.py (/ha/me and /ha/vehicles have no rate limit).
    The hosted service's counting is not public, so EV Cloud counts more.
    """
    user = sim.add_user("pro@example.com", "pro")
    car = sim.add_vehicle(SimVehicle(user.id))
    sim.plug_in(car.id, charge=False)
    client, budget = _client(sim, session, user, allowance=100)
    await client.async_get_me()
    await client.async_get_vehicles()
    await client.async_get_status(car.id)
    await client.async_set_charging(car.id, True)
    assert sim.calls_used(user, car.id) == 2
    assert budget.spent == 3


async def test_free_tier_window_rolls(
    sim: EvLinkSimulator, session: aiohttp.ClientSession
) -> None:
    """Free tier: the calls of the last 30 days count, per user.

    Source: rogasp/evlink-backend @ eb8e5ba, backend/app/api/dependencies.py
    (`api_key_rate_limit`: window_start = now - 30 days for the free tier,
    `count_polls_since(user_id, ...)`) and docs/flow/subscriptions_and_rate_
    limiting.md. After "Monthly allowance" (429), EV Cloud waits until its
    oldest counted day has left that window, not until a window of its own,
    started when its budget was, ends; then the service accepts again.
    """
    user = sim.add_user("free@example.com", "free")
    car = sim.add_vehicle(SimVehicle(user.id))
    client, budget = _client(sim, session, user, allowance=300)
    sim.advance(25 * DAY)
    first = sim.now
    for _ in range(2):
        await client.async_get_status(car.id)
    sim.max_calls["free"] = 2
    sim.advance(DAY)
    with pytest.raises(QuotaExhaustedError, match=r"\(2/2\)"):
        await client.async_get_status(car.id)
    assert budget.paused_until == _leaves(first)
    sent = len(sim.requests)
    sim.advance(START + MONTH - sim.now)  # a fixed window from START would end
    with pytest.raises(RateLimitedError, match="pause"):
        await client.async_get_status(car.id)
    assert len(sim.requests) == sent
    sim.advance(_leaves(first) - sim.now)
    assert sim.calls_used(user) == 0
    await client.async_get_status(car.id)


async def test_paid_tier_window_lies_within_ours(
    sim: EvLinkSimulator, session: aiohttp.ClientSession
) -> None:
    """Paid tiers: the calls since the paid period's end - 30 days, per vehicle.

    Source: rogasp/evlink-backend @ eb8e5ba, backend/app/api/dependencies.py
    (window_start = tier_reset_date - 30 days, `count_polls_since_for_vehicle`)
    and docs/flow/subscriptions_and_rate_limiting.md (tier_reset_date is the
    Stripe period's end). That window never reaches further back than the
    last 30 days, so EV Cloud's rolling count holds every call it counts: a
    window of EV Cloud's own that ended (30 days after its budget began) would
    start afresh while the service still counts, and be refused.
    """
    user = sim.add_user("pro@example.com", "pro", tier_reset_date=START + 10 * DAY)
    car = sim.add_vehicle(SimVehicle(user.id))
    sim.max_calls["pro"] = 3
    client, budget = _client(sim, session, user, allowance=3)
    sim.advance(25 * DAY)  # the service's period renewed on day 10
    for _ in range(3):
        await client.async_get_status(car.id)
    assert sim.calls_used(user, car.id) == 3
    sim.advance(START + MONTH - sim.now)
    sent = len(sim.requests)
    with pytest.raises(RateLimitedError, match="used up"):
        await client.async_get_status(car.id)
    assert len(sim.requests) == sent
    assert sim.calls_used(user, car.id) == 3  # the service still counts them
    sim.advance(budget.window_ends - sim.now)
    await client.async_get_status(car.id)


async def test_basic_tier_starts_and_stops_charging(
    hass: HomeAssistant,
    evlinkha_sim: EvLinkSimulator,
    evlinkha_entry: MockConfigEntry,
) -> None:
    """START and STOP need basic or pro, though one docs page says pro only.

    Source: rogasp/evlink-backend @ eb8e5ba, backend/app/api/ha.py
    (`post_vehicle_charging` depends on `require_basic_or_pro_tier`).
    """
    evlinkha_sim.users[USER_ID].tier = "basic"
    evlinkha_sim.remove_vehicle(
        next(v.id for v in evlinkha_sim.vehicles if v.display_name == "Model 3")
    )
    await setup_entry(hass, evlinkha_entry)
    await hass.services.async_call(
        SWITCH_DOMAIN,
        SERVICE_TURN_OFF,
        {ATTR_ENTITY_ID: "switch.g6_charge"},
        blocking=True,
    )
    assert [action.kind for action in evlinkha_sim.actions] == ["STOP"]
