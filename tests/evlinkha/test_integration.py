"""EVLinkHA in Home Assistant: sign-in, entities, push, the monthly allowance."""

from __future__ import annotations

from datetime import timedelta
import json
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant import config_entries
from homeassistant.components import webhook
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
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.diagnostics import async_get_config_entry_diagnostics
from custom_components.ev_cloud.flow import SECRET_PLACEHOLDER
from tests.conftest import setup_entry
from tests.entities import registry_and_states
from tests.evlinkha.fixtures import API_KEY, START, USER_ID, WEBHOOK_ID
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
    # No external URL: the id alone, and what to set (push.py's facts).
    assert result["description"] == "evlinkha_webhook_no_url"
    assert result["description_placeholders"] == {
        "webhook_id": result["data"]["webhook_id"]
    }
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
    user = evlinkha_sim.users[USER_ID]
    user.ha_external_url = str(client.make_url("/"))
    user.ha_webhook_id = WEBHOOK_ID
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
        assert await evlinkha_sim.push_raw(user, b"not json", "text/plain") == 200
    warnings = [r for r in caplog.records if "ignored a push" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.DEBUG]
    stranger = evlinkha_sim.push_payload(vehicle.id)
    stranger["vehicle"] = {
        **stranger["vehicle"],
        "id": "someone-else",
        "information": {**stranger["vehicle"]["information"], "vin": "OTHERVIN"},
    }
    assert await evlinkha_sim.push_raw(user, stranger) == 200
    await hass.async_block_till_done()
    assert hass.states.get(G6).state == "61.0"

    # EVLinkHA's own id for a vehicle (not Enode's): found at once.
    own = evlinkha_sim.push_payload(vehicle.id)
    own["vehicle"] = {
        **own["vehicle"],
        "id": vehicle.id,
        "information": {**own["vehicle"]["information"], "vin": None},
    }
    own["vehicle"]["chargeState"] = {
        **own["vehicle"]["chargeState"],
        "batteryLevel": 66,
    }
    assert await evlinkha_sim.push_raw(user, own) == 200
    await hass.async_block_till_done()
    assert hass.states.get(G6).state == "66.0"


async def _add_through_the_flow(
    hass: HomeAssistant, sim: EvLinkSimulator
) -> config_entries.ConfigFlowResult:
    """Add the simulated account as a user would; the flow's last result."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evlinkha"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"api_key": API_KEY, "advanced": {"server_url": sim.url}}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    return result


async def test_push_arrives_from_the_two_values_setup_shows(
    hass: HomeAssistant,
    evlinkha_sim: EvLinkSimulator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """The profile's Webhook URL and Webhook ID, as setup shows them: pushes arrive.

    rogasp/evlink-backend @ eb8e5ba: the profile card has the two fields
    (frontend/src/components/profile/HaWebhookSettingsCard.tsx) and the service
    posts each event to <Webhook URL>/api/webhook/<Webhook ID>
    (backend/app/api/webhook.py, `push_to_homeassistant`). The push goes
    through Home Assistant's own HTTP server and webhook component, and the
    vehicle updates with no call to the service.
    """
    # Home Assistant's HTTP server serves before any entry exists.
    assert await async_setup_component(hass, DOMAIN, {})
    client = await hass_client_no_auth()
    await hass.config.async_update(external_url=str(client.make_url("/")))
    result = await _add_through_the_flow(hass, evlinkha_sim)
    assert result["description"] == "evlinkha_webhook"
    shown = result["description_placeholders"]
    assert shown["webhook_url"] == str(client.make_url("/")).rstrip("/")
    assert shown["webhook_id"] == result["data"]["webhook_id"]
    assert "/api/webhook" not in shown["webhook_url"]
    # The user copies the two values into the profile's two fields.
    user = evlinkha_sim.users[USER_ID]
    user.ha_external_url = shown["webhook_url"]
    user.ha_webhook_id = shown["webhook_id"]
    # They can be looked up again: the vehicles' diagnostic sensors.
    assert hass.states.get("sensor.g6_webhook_url").state == shown["webhook_url"]
    assert hass.states.get("sensor.g6_webhook_id").state == shown["webhook_id"]

    polled = len(evlinkha_sim.requests)
    vehicle = evlinkha_sim.vehicle(_vehicle_id(evlinkha_sim, "G6"))
    vehicle.battery_level = 61.0
    evlinkha_sim.sample(vehicle, force=True)
    assert await evlinkha_sim.push(vehicle.id) == 200
    await hass.async_block_till_done()
    assert hass.states.get(G6).state == "61.0"
    assert len(evlinkha_sim.requests) == polled  # no call to the service


async def test_the_old_instructions_doubled_the_path(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """The whole webhook URL in the profile's Webhook URL reaches nothing.

    Setup used to show `<external URL>/api/webhook/<id>` to enter in the
    profile. The service appends /api/webhook/<Webhook ID> itself and sends
    nothing while the Webhook ID is empty (rogasp/evlink-backend @ eb8e5ba,
    backend/app/api/webhook.py): with the id left empty nothing is sent, with
    it filled in the path is doubled, which Home Assistant answers 404.
    """
    await setup_entry(hass, evlinkha_entry)
    client = await hass_client_no_auth()
    await hass.config.async_update(external_url=str(client.make_url("/")))
    external = str(client.make_url("/")).rstrip("/")
    old_instruction = webhook.async_generate_url(hass, WEBHOOK_ID)
    assert old_instruction == f"{external}/api/webhook/{WEBHOOK_ID}"
    user = evlinkha_sim.users[USER_ID]
    vehicle = evlinkha_sim.vehicle(_vehicle_id(evlinkha_sim, "G6"))
    vehicle.battery_level = 61.0
    evlinkha_sim.sample(vehicle, force=True)

    user.ha_external_url = old_instruction
    assert await evlinkha_sim.push(vehicle.id) is None  # no Webhook ID: nothing
    user.ha_webhook_id = WEBHOOK_ID
    assert evlinkha_sim.webhook_target(user) == (
        f"{external}/api/webhook/{WEBHOOK_ID}/api/webhook/{WEBHOOK_ID}"
    )
    assert await evlinkha_sim.push(vehicle.id) == 404
    await hass.async_block_till_done()
    assert hass.states.get(G6).state == "50.0"
    assert evlinkha_entry.runtime_data.coordinators  # the entry still works

    # The two fields as setup now shows them.
    user.ha_external_url = external
    assert await evlinkha_sim.push(vehicle.id) == 200
    await hass.async_block_till_done()
    assert hass.states.get(G6).state == "61.0"


async def test_no_external_url_is_a_repair_for_pro_accounts(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Without an external URL a pro account's pushes cannot arrive: say so.

    The repair goes once Home Assistant has one; a free account, which gets no
    pushes, gets no repair.
    """
    await setup_entry(hass, evlinkha_entry)
    issue_id = f"{evlinkha_entry.entry_id}_evlinkha_no_external_url"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "evlinkha_no_external_url"
    assert issue.translation_placeholders == {"name": evlinkha_entry.title}
    assert hass.states.get("sensor.g6_webhook_url").state == "unknown"
    assert hass.states.get("sensor.g6_webhook_id").state == WEBHOOK_ID

    await hass.config.async_update(external_url="https://home.example.com")
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert evlinkha_entry.runtime_data.account.webhook_url == (
        "https://home.example.com"
    )

    await hass.config.async_update(external_url=None)
    evlinkha_sim.users[USER_ID].tier = "free"
    assert await hass.config_entries.async_reload(evlinkha_entry.entry_id)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_diagnostics_keep_the_push_values_out(
    hass: HomeAssistant, evlinkha_entry: MockConfigEntry
) -> None:
    """The webhook id and Home Assistant's address are redacted; the facts stay."""
    await hass.config.async_update(external_url="https://home.example.com")
    await setup_entry(hass, evlinkha_entry)
    diagnostics = await async_get_config_entry_diagnostics(hass, evlinkha_entry)
    text = json.dumps(diagnostics, default=str)
    assert WEBHOOK_ID not in text
    assert "home.example.com" not in text
    account = diagnostics["account"]
    assert account["push_reachable"] is True
    assert account["calls_counted"] == 1  # the list read at setup
    assert account["slowdown"] == 1.0


async def test_stored_count_of_a_fixed_window_is_kept(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    hass_storage: dict[str, Any],
) -> None:
    """An upgrade: the count stored for a fixed window becomes calls per day.

    None is lost: they are spread over the days since the window began.
    """
    key = f"{DOMAIN}.quota.evlinkha_{evlinkha_entry.entry_id}"
    hass_storage[key] = {
        "version": 1,
        "key": key,
        "data": {
            "window_start": START.timestamp() - 10 * 86400,
            "spent": 120,
            "paused_until": 0.0,
        },
    }
    await setup_entry(hass, evlinkha_entry)
    budget = evlinkha_entry.runtime_data.account.budget
    assert budget is not None
    days = budget.as_dict()["days"]
    assert isinstance(days, dict)
    assert min(days) == "2026-12-22"
    assert budget.spent == 120 + len(evlinkha_sim.requests) - 1  # /me is free
    assert hass_storage[key]["minor_version"] == 2


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


async def _from_poll_to_poll(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: EvLinkSimulator,
    entry: MockConfigEntry,
    days: float,
    *,
    restart_every: float | None = None,
) -> list[int]:
    """Let `days` pass, going from one poll to the next; every poll must succeed.

    Polls come when they are due, as in Home Assistant (not at the next tick of
    a coarse test clock). With `restart_every` (seconds), the entry is reloaded
    that often. Returns the service's count of the user's calls after each step.
    """
    user = sim.users[USER_ID]
    end = dt_util.utcnow() + timedelta(days=days)
    since_restart = 0.0
    counts: list[int] = []
    while (left := (end - dt_util.utcnow()).total_seconds()) > 0:
        coordinators = entry.runtime_data.coordinators.values()
        step = min(c.update_interval.total_seconds() for c in coordinators) + 2
        if restart_every is not None:
            step = min(step, restart_every - since_restart)
        await _tick(hass, freezer, sim, min(step, left))
        since_restart += min(step, left)
        if restart_every is not None and since_restart >= restart_every:
            assert await hass.config_entries.async_reload(entry.entry_id)
            await hass.async_block_till_done()
            since_restart = 0.0
        coordinators = entry.runtime_data.coordinators.values()
        assert all(c.last_update_success for c in coordinators), dt_util.utcnow()
        counts.append(sim.calls_used(user))
    return counts


@pytest.mark.parametrize("vehicles", [1, 2])
async def test_free_tier_stays_within_300_calls_in_any_30_days(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    freezer: FrozenDateTimeFactory,
    issue_registry: ir.IssueRegistry,
    vehicles: int,
) -> None:
    """45 days on the free tier, a restart every three days: never over 300.

    The service counts the calls of the last 30 days, a rolling window
    (rogasp/evlink-backend @ eb8e5ba, backend/app/api/dependencies.py); the
    simulator counts so. The calls made are stored day by day, so restarts do
    not hand out fresh allowances, and no window of our own ends on day 30 to
    start afresh; data is read all along, with no repair.
    """
    user = evlinkha_sim.users[USER_ID]
    user.tier = "free"
    if vehicles == 1:
        evlinkha_sim.remove_vehicle(_vehicle_id(evlinkha_sim, "Model 3"))
    await setup_entry(hass, evlinkha_entry)
    counts = await _from_poll_to_poll(
        hass, freezer, evlinkha_sim, evlinkha_entry, 45, restart_every=3 * 86400
    )
    most, last = max(counts), counts[-1]
    print(f"free tier, {vehicles} vehicle(s): at most {most}, now {last} of 300")
    assert most <= 300, most
    assert last >= 280, last  # and it is really used, not hoarded
    assert hass.states.get(G6).state not in ("unavailable", "unknown")
    assert not [key for (domain, key) in issue_registry.issues if domain == DOMAIN]


async def test_allowance_used_up_resumes_when_the_oldest_day_leaves(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """After "Monthly allowance" (429), polls resume the day the oldest day leaves.

    The service's window rolls (rogasp/evlink-backend @ eb8e5ba,
    backend/app/api/dependencies.py: free tier, now - 30 days): the calls of the
    oldest day EV Cloud counted no longer count there once that day is more than
    30 days past, and a call may fit again. Not earlier, and not when a window
    of EV Cloud's own (30 days from setup, renewed every 30) would end.
    """
    user = evlinkha_sim.users[USER_ID]
    user.tier = "free"
    evlinkha_sim.remove_vehicle(_vehicle_id(evlinkha_sim, "Model 3"))
    await setup_entry(hass, evlinkha_entry)
    await _from_poll_to_poll(hass, freezer, evlinkha_sim, evlinkha_entry, 40)
    # The service lowers its free allowance (its settings table can): refused.
    evlinkha_sim.max_calls["free"] = 200
    budget = evlinkha_entry.runtime_data.account.budget
    assert budget is not None
    oldest_day_leaves = budget.window_ends
    old_window_ends = START.timestamp() + 2 * 30 * 86400
    assert oldest_day_leaves < old_window_ends - 15 * 86400
    while budget.paused_until <= dt_util.utcnow().timestamp():
        await _tick(hass, freezer, evlinkha_sim, 600)
    refused_at = dt_util.utcnow().timestamp()
    assert evlinkha_sim.requests[-1][1].startswith("/api/v1/ha/vehicles")
    assert budget.paused_until == oldest_day_leaves
    assert oldest_day_leaves - refused_at > 6 * 3600  # a wait, not a poll interval
    sent = len(evlinkha_sim.requests)
    # Nothing until the oldest counted day leaves ...
    while dt_util.utcnow().timestamp() < oldest_day_leaves - 3600:
        await _tick(hass, freezer, evlinkha_sim, 3600)
    await _tick(
        hass, freezer, evlinkha_sim, oldest_day_leaves - dt_util.utcnow().timestamp()
    )
    assert len(evlinkha_sim.requests) == sent
    # ... then polls try again, that day.
    await _tick(hass, freezer, evlinkha_sim, 120)
    assert len(evlinkha_sim.requests) == sent + 1
    tried = dt_util.utc_from_timestamp(dt_util.utcnow().timestamp())
    assert tried.date() == dt_util.utc_from_timestamp(oldest_day_leaves).date()


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
    """START on a charging car sends none; unplugged and smart charging refuse.

    (The refresh after the action reads the vehicle list.)
    """
    await setup_entry(hass, evlinkha_entry)
    g6 = _device_id(hass, evlinkha_entry, "G6")
    await hass.services.async_call(
        DOMAIN, "start_charging", {"device_id": g6}, blocking=True
    )
    assert not [path for _, path in evlinkha_sim.requests if "/charging/" in path]
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
    assert hass.states.get("sensor.g6_webhook_id") is None  # pro only
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
    """Polls held to less than half their pace: a repair before any refusal.

    Polls alone keep their pace and never get there; commands can (they may use
    all of the allowance). The commands are stood in for by taking calls from
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
        if domain == DOMAIN and issue.translation_key.startswith("evlinkha_quota")
    }
    assert keys == {"evlinkha_quota_low"}


async def test_refresh_asked_for_within_the_allowance(
    hass: HomeAssistant,
    evlinkha_entry: MockConfigEntry,
    evlinkha_sim: EvLinkSimulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refresh reads the service while a poll is to spare, else keeps the values.

    Refused, it costs no call and leaves the vehicle readable, said at debug.
    """
    assert await async_setup_component(hass, "homeassistant", {})
    await setup_entry(hass, evlinkha_entry)
    sent = len(evlinkha_sim.requests)
    await hass.services.async_call(
        "homeassistant", "update_entity", {ATTR_ENTITY_ID: G6}, blocking=True
    )
    assert len(evlinkha_sim.requests) == sent + 1
    budget = evlinkha_entry.runtime_data.account.budget
    assert budget is not None
    while budget.calls_left > budget.reserved:
        budget.acquire()
    caplog.set_level(logging.DEBUG, "custom_components.ev_cloud")
    await hass.services.async_call(
        "homeassistant", "update_entity", {ATTR_ENTITY_ID: G6}, blocking=True
    )
    await _tick(hass, freezer, evlinkha_sim, 11)  # past the refresh's debounce
    assert len(evlinkha_sim.requests) == sent + 1
    assert hass.states.get(G6).state == "50.0"
    assert "no call to spare for the read asked for" in caplog.text


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
