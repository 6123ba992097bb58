"""EVLinkHA in Home Assistant: sign-in, entities, push, the monthly allowance."""

from __future__ import annotations

from datetime import timedelta
import logging

from freezegun.api import FrozenDateTimeFactory
from homeassistant import config_entries
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.flow import SECRET_PLACEHOLDER
from tests.conftest import setup_entry
from tests.entities import registry_and_states
from tests.evlinkha.fixtures import API_KEY, USER_ID, WEBHOOK_ID
from tests.forms import suggested
from tests.simulators.common import issued
from tests.simulators.evlinkha import EvLinkSimulator

G6 = "sensor.g6_battery"


async def _tick(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: EvLinkSimulator,
    seconds: float,
) -> None:
    """Let `seconds` pass for Home Assistant and the service alike."""
    sim.advance(seconds)
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def _vehicle_id(sim: EvLinkSimulator, name: str) -> str:
    return next(v.id for v in sim.vehicles if v.display_name == name)


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, name: str) -> str:
    registry = dr.async_get(hass)
    return next(
        device.id
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if device.name == name
    )


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_entities(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Both vehicles with every entity (pro tier: the charge switch too)."""
    await setup_entry(hass, evlinkha_entry)
    assert registry_and_states(hass, entity_registry, evlinkha_entry.entry_id) == (
        snapshot
    )
    assert hass.states.get(G6).state == "50.0"
    assert hass.states.get("binary_sensor.g6_charging").state == STATE_ON
    assert hass.states.get("switch.g6_charge").state == STATE_ON


async def test_flow_creates_entry_and_shows_the_webhook(
    hass: HomeAssistant, evlinkha_sim: EvLinkSimulator
) -> None:
    """A wrong key first, then the right one: the entry and where to push."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evlinkha"}
    )
    assert result["type"] is FlowResultType.FORM
    user_input = {"api_key": "wrong", "advanced": {"server_url": evlinkha_sim.url}}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": API_KEY, "advanced": {"server_url": "x"}}
    )
    assert result["errors"] == {"advanced": "invalid_url"}
    user_input["api_key"] = API_KEY
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "EVLinkHA driver@example.com"
    assert result["result"].unique_id == USER_ID
    webhook_id = result["data"]["webhook_id"]
    assert webhook_id in result["description_placeholders"]["webhook_url"]
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED


async def test_push_is_shown_without_a_poll(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    hass_client_no_auth: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A pushed vehicle updates at once; bad pushes and strangers change nothing."""
    await setup_entry(hass, evlinkha_entry)
    client = await hass_client_no_auth()
    evlinkha_sim.webhook_url = str(client.make_url(f"/api/webhook/{WEBHOOK_ID}"))
    polled = len(evlinkha_sim.requests)
    vehicle = evlinkha_sim.vehicle(_vehicle_id(evlinkha_sim, "G6"))
    vehicle.battery_level = 61.0
    evlinkha_sim.sample(vehicle, force=True)
    assert await evlinkha_sim.push(vehicle.id) == 200
    await hass.async_block_till_done()
    assert hass.states.get(G6).state == "61.0"
    assert hass.states.get("sensor.g6_last_push").state != "unknown"
    assert len(evlinkha_sim.requests) == polled  # no poll was needed

    for _ in range(2):
        assert await evlinkha_sim.push_raw(b"not json", "text/plain") == 200
    warnings = [r for r in caplog.records if "ignored a push" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.DEBUG]
    stranger = evlinkha_sim.push_payload(vehicle.id)
    stranger["vehicle"] = {
        **stranger["vehicle"],
        "vehicleId": "someone-else",
        "information": {**stranger["vehicle"]["information"], "vin": "OTHERVIN"},
    }
    assert await evlinkha_sim.push_raw(stranger) == 200
    await hass.async_block_till_done()
    assert hass.states.get(G6).state == "61.0"

    # Enode's own id for a vehicle: found by its VIN.
    enode = evlinkha_sim.push_payload(vehicle.id)
    enode["vehicle"] = {**enode["vehicle"], "vehicleId": vehicle.enode_id}
    enode["vehicle"]["chargeState"] = {
        **enode["vehicle"]["chargeState"],
        "batteryLevel": 66,
    }
    assert await evlinkha_sim.push_raw(enode) == 200
    await hass.async_block_till_done()
    assert hass.states.get(G6).state == "66.0"


async def test_a_parked_vehicle_does_not_hold_back_a_charging_one(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """One list read per the shortest interval: the charging G6's 300 s.

    The parked Model 3 polls every 1800 s; its interval must not make the
    G6's next poll take the list read before (data twice as old).
    """
    await setup_entry(hass, evlinkha_entry)
    reads = []
    for _ in range(12):  # an hour, poll by poll of the G6
        sent = len(evlinkha_sim.requests)
        await _tick(hass, freezer, evlinkha_sim, 300)
        reads.append(len(evlinkha_sim.requests) - sent)
    assert reads == [1] * 12


@pytest.mark.parametrize("vehicles", [1, 2])
async def test_free_tier_month_stays_within_300_calls(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    freezer: FrozenDateTimeFactory,
    vehicles: int,
) -> None:
    """30 days on the free tier with a restart every three days: at most 300.

    The calls spent are stored, so ten restarts do not hand out ten fresh
    allowances; data is read all month long.
    """
    user = evlinkha_sim.users[USER_ID]
    user.tier = "free"
    if vehicles == 1:
        evlinkha_sim.remove_vehicle(_vehicle_id(evlinkha_sim, "Model 3"))
    await setup_entry(hass, evlinkha_entry)
    coordinators = evlinkha_entry.runtime_data.coordinators
    # Up to the last hour of the service's 30-day window (then a new one starts).
    for hour in range(30 * 24 - 1):
        await _tick(hass, freezer, evlinkha_sim, 3600)
        if hour % 72 == 71:  # a restart every three days
            assert await hass.config_entries.async_reload(evlinkha_entry.entry_id)
            await hass.async_block_till_done()
            coordinators = evlinkha_entry.runtime_data.coordinators
        assert all(c.last_update_success for c in coordinators.values()), hour
    used = evlinkha_sim.calls_used(user)
    print(f"free tier, {vehicles} vehicle(s): {used} of 300 calls in 30 days")
    assert used <= 300, used
    assert used >= 250, used  # and it is really used, not hoarded
    assert hass.states.get(G6).state not in ("unavailable", "unknown")


async def test_exhausted_allowance_pauses_with_a_repair(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """429 "allowance exhausted": a repair, one log line, nothing sent until then."""
    await setup_entry(hass, evlinkha_entry)
    evlinkha_sim.max_calls["pro"] = 0
    await _tick(hass, freezer, evlinkha_sim, 1800)
    issues = [
        issue
        for (domain, _), issue in issue_registry.issues.items()
        if domain == DOMAIN and issue.translation_key == "evlinkha_quota_exhausted"
    ]
    assert issues
    sent = len(evlinkha_sim.requests)
    for _ in range(6):
        await _tick(hass, freezer, evlinkha_sim, 1800)
    assert len(evlinkha_sim.requests) == sent  # no retry storm
    errors = [
        r
        for r in caplog.records
        if r.name.startswith("custom_components.ev_cloud")
        and r.levelno >= logging.WARNING
    ]
    assert len({r.getMessage() for r in errors}) <= 2  # one line per device


async def test_charging_is_idempotent_and_refusals_are_clear(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """START on a charging car sends nothing; unplugged and smart charging refuse."""
    await setup_entry(hass, evlinkha_entry)
    g6 = _device_id(hass, evlinkha_entry, "G6")
    before = len(evlinkha_sim.counted)
    await hass.services.async_call(
        DOMAIN, "start_charging", {"device_id": g6}, blocking=True
    )
    assert len(evlinkha_sim.counted) == before
    await hass.services.async_call(
        SWITCH_DOMAIN,
        SERVICE_TURN_OFF,
        {ATTR_ENTITY_ID: "switch.g6_charge"},
        blocking=True,
    )
    await _tick(hass, freezer, evlinkha_sim, 600)
    assert hass.states.get("binary_sensor.g6_charging").state == STATE_OFF

    parked = _device_id(hass, evlinkha_entry, "Model 3")
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            DOMAIN, "start_charging", {"device_id": parked}, blocking=True
        )
    assert caught.value.translation_key == "evlinkha_command_refused"

    vehicle = evlinkha_sim.vehicle(_vehicle_id(evlinkha_sim, "G6"))
    vehicle.smart_charging = True
    with pytest.raises(HomeAssistantError) as caught:
        await hass.services.async_call(
            SWITCH_DOMAIN,
            SERVICE_TURN_ON,
            {ATTR_ENTITY_ID: "switch.g6_charge"},
            blocking=True,
        )
    assert caught.value.translation_key == "evlinkha_smart_charging"


async def test_free_tier_has_no_charge_control(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
) -> None:
    """No switch, and the actions explain why."""
    evlinkha_sim.users[USER_ID].tier = "free"
    await setup_entry(hass, evlinkha_entry)
    assert hass.states.get("switch.g6_charge") is None
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "start_charging",
            {"device_id": _device_id(hass, evlinkha_entry, "G6")},
            blocking=True,
        )
    assert caught.value.translation_key == "evlinkha_charge_control_unavailable"


async def test_low_allowance_raises_a_repair_first(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Less than a tenth of the polls' share left: a repair before any refusal.

    Polls alone spread the allowance evenly and never get there; commands can
    (they may use all of it). The commands are stood in for by taking calls from
    the account's budget directly.
    """
    evlinkha_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        evlinkha_entry, options={"allowance_pro": 10}
    )
    assert await hass.config_entries.async_setup(evlinkha_entry.entry_id)
    await hass.async_block_till_done()
    budget = evlinkha_entry.runtime_data.account.budget
    assert budget is not None
    for _ in range(budget.calls_left - 2):
        budget.acquire(command=True)
    await _tick(hass, freezer, evlinkha_sim, 2 * 86400)
    keys = {
        issue.translation_key
        for (domain, _), issue in issue_registry.issues.items()
        if domain == DOMAIN
    }
    assert keys == {"evlinkha_quota_low"}


async def test_self_hosted_server(
    hass: HomeAssistant, evlinkha_sim: EvLinkSimulator
) -> None:
    """A server URL ending in /api/ha: the self-hosted backend's paths and Bearer."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evlinkha"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"api_key": API_KEY, "advanced": {"server_url": evlinkha_sim.backend_url}},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert hass.states.get(G6).state == "50.0"
    assert any(path.startswith("/api/ha/") for _, path in evlinkha_sim.requests)
    assert not any(path.startswith("/api/v1/") for _, path in evlinkha_sim.requests)


async def test_reconfigure_keeps_the_stored_key(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
) -> None:
    """The form shows a placeholder, not the API key; sent back, it keeps the key."""
    await setup_entry(hass, evlinkha_entry)
    result = await evlinkha_entry.start_reconfigure_flow(hass)
    assert suggested(result) == {
        "api_key": SECRET_PLACEHOLDER,
        "advanced": {"server_url": evlinkha_entry.data["server_url"]},
    }
    advanced = {"server_url": evlinkha_entry.data["server_url"]}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": "", "advanced": advanced}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"api_key": "secret_required"}

    result = await evlinkha_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": SECRET_PLACEHOLDER, "advanced": advanced}
    )
    assert result["reason"] == "reconfigure_successful"
    assert evlinkha_entry.data["api_key"] == API_KEY
    assert evlinkha_entry.data["webhook_id"] == WEBHOOK_ID
    await hass.async_block_till_done()


async def test_reconfigure_checks_a_new_key(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
) -> None:
    """A typed key is checked and replaces the stored one; it is hidden too."""
    await setup_entry(hass, evlinkha_entry)
    new_key = issued("evl-sim-api-key-new-secret")
    evlinkha_sim.users[USER_ID].api_key = new_key
    advanced = {"server_url": evlinkha_entry.data["server_url"]}
    result = await evlinkha_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": SECRET_PLACEHOLDER, "advanced": advanced}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert suggested(result)["api_key"] == SECRET_PLACEHOLDER

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": new_key, "advanced": advanced}
    )
    assert result["reason"] == "reconfigure_successful"
    assert evlinkha_entry.data["api_key"] == new_key
    await hass.async_block_till_done()


async def test_reauth_reconfigure_and_options(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
) -> None:
    """A new key is checked; reconfigure keeps the account; allowances are options."""
    await setup_entry(hass, evlinkha_entry)
    result = await evlinkha_entry.start_reauth_flow(hass)
    assert result["step_id"] == "evlinkha_reauth"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": API_KEY}
    )
    assert result["reason"] == "reauth_successful"
    assert evlinkha_entry.data["webhook_id"] == WEBHOOK_ID  # pushes keep working

    result = await evlinkha_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "evlinkha"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {"api_key": API_KEY, "advanced": {"server_url": evlinkha_sim.hosted_url}},
    )
    assert result["reason"] == "reconfigure_successful"
    assert evlinkha_entry.data["webhook_id"] == WEBHOOK_ID
    await hass.async_block_till_done()

    result = await hass.config_entries.options.async_init(evlinkha_entry.entry_id)
    fields = {str(key) for key in result["data_schema"].schema}
    assert {"allowance_free", "allowance_basic", "allowance_pro"} <= fields
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "active_interval": 300,
            "idle_interval": 1800,
            "allowance_free": 300,
            "allowance_basic": 2000,
            "allowance_pro": 5000,
        },
    )
    assert evlinkha_entry.options["allowance_pro"] == 5000
    await hass.async_block_till_done()
    budget = evlinkha_entry.runtime_data.account.budget
    assert budget is not None
    assert budget.allowance == 5000 * 2
