"""ev.energy in Home Assistant: sign-in, entities, commands, budget, staleness."""

from __future__ import annotations

from datetime import timedelta
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant import config_entries
from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
)
from homeassistant.core import Event, HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion

from custom_components.ev_cloud.api import AuthenticationError
from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.diagnostics import async_get_config_entry_diagnostics
from custom_components.ev_cloud.flow import SECRET_PLACEHOLDER
from custom_components.ev_cloud.providers.evenergy.oauth import OAuthToken
from tests.conftest import setup_entry
from tests.entities import registry_and_states
from tests.evenergy.fixtures import (
    CLIENT_ID,
    ORG_CLIENT_ID,
    ORG_CLIENT_SECRET,
    USER_ID,
    import_credential,
)
from tests.forms import suggested
from tests.simulators.common import issued
from tests.simulators.evenergy import EvEnergyFault, EvEnergySimulator

ZOE = "zoe"
VAN = "van"


async def _tick(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    sim: EvEnergySimulator,
    seconds: float,
) -> None:
    """Let `seconds` pass for Home Assistant and the service alike."""
    sim.advance(seconds)
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


def _vehicle_id(sim: EvEnergySimulator, description: str) -> str:
    return next(v.id for v in sim.vehicles if v.description.lower() == description)


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, name: str) -> str:
    registry = dr.async_get(hass)
    return next(
        device.id
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if device.name == name
    )


# --- entities ----------------------------------------------------------------------


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_entities(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Two vehicles and the home charger, every entity with its state."""
    await setup_entry(hass, evenergy_entry)
    assert registry_and_states(hass, entity_registry, evenergy_entry.entry_id) == (
        snapshot
    )
    devices = dr.async_entries_for_config_entry(
        dr.async_get(hass), evenergy_entry.entry_id
    )
    assert sorted(device.name or "" for device in devices) == [
        "Charger SIM-EVSE-0001",
        "Van",
        "Zoe",
    ]


async def test_values(hass: HomeAssistant, evenergy_entry: MockConfigEntry) -> None:
    """Units and conversions: W to kW, metres to km, the long current-type names."""
    await setup_entry(hass, evenergy_entry)
    assert hass.states.get("sensor.zoe_battery").state == "42"
    assert hass.states.get("binary_sensor.zoe_charging").state == STATE_ON
    assert hass.states.get("binary_sensor.zoe_plugged_in").state == STATE_ON
    assert hass.states.get("sensor.zoe_charge_power").state == "7.4"
    assert hass.states.get("sensor.zoe_current_type").state == "ac"
    assert hass.states.get("sensor.zoe_odometer").state == "12345.0"
    assert hass.states.get("binary_sensor.van_at_home").state == STATE_OFF
    assert hass.states.get("binary_sensor.zoe_at_home").state == STATE_ON
    assert hass.states.get("switch.zoe_smart_charging").state == STATE_ON
    assert hass.states.get("number.zoe_maximum_charge_limit").state == "80"
    assert hass.states.get("binary_sensor.charger_sim_evse_0001_plugged_in").state == (
        STATE_ON
    )


# --- sign-in -------------------------------------------------------------------------


async def _start_oauth(hass: HomeAssistant, sim: EvEnergySimulator) -> dict[str, Any]:
    """Menu, sign-in form (with the simulator as service address), then external."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evenergy"}
    )
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evenergy_oauth"}
    )
    assert result["type"] is FlowResultType.FORM
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"advanced": {"base_url": sim.url}}
    )


async def _consent(
    hass_client_no_auth: ClientSessionGenerator, result: dict[str, Any]
) -> None:
    """The user signs in at the service, which redirects back to Home Assistant."""
    assert result["type"] is FlowResultType.EXTERNAL_STEP
    async with (
        aiohttp.ClientSession() as browser,
        browser.get(result["url"], allow_redirects=False) as answer,
    ):
        assert answer.status == 302
        back = urlsplit(answer.headers["Location"])
    assert back.path == "/auth/external/callback"
    client = await hass_client_no_auth()
    response = await client.get(f"{back.path}?{back.query}")
    assert response.status == 200


@pytest.mark.usefixtures("current_request_with_host")
async def test_oauth_flow_creates_entry(
    hass: HomeAssistant,
    evenergy_sim: EvEnergySimulator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Application credential, authorize at the service, back with a code, entry."""
    await import_credential(hass)
    result = await _start_oauth(hass, evenergy_sim)
    assert urlsplit(result["url"]).netloc == urlsplit(evenergy_sim.url).netloc
    query = parse_qs(urlsplit(result["url"]).query)
    assert query["client_id"] == [CLIENT_ID]
    await _consent(hass_client_no_auth, result)
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "ev.energy driver@example.com"
    entry = result["result"]
    assert entry.unique_id == USER_ID
    assert entry.data["base_url"] == evenergy_sim.url
    assert entry.data["auth"] == "oauth"
    assert "refresh_token" in entry.data["token"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    # The same user again: already configured.
    result = await _start_oauth(hass, evenergy_sim)
    await _consent(hass_client_no_auth, result)
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


@pytest.mark.usefixtures("current_request_with_host")
async def test_oauth_flow_needs_application_credentials(
    hass: HomeAssistant, evenergy_sim: EvEnergySimulator
) -> None:
    """Without an OAuth client the flow says where to add one."""
    result = await _start_oauth(hass, evenergy_sim)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "missing_credentials"


async def test_oauth_form_rejects_a_bad_address(
    hass: HomeAssistant, evenergy_sim: EvEnergySimulator
) -> None:
    """A service address that is no URL is a form error, nothing is sent."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evenergy"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evenergy_oauth"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"advanced": {"base_url": "api.example.com"}}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"advanced": "invalid_url"}


async def _organisation_form(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evenergy"}
    )
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evenergy_organisation"}
    )


async def test_organisation_flow(
    hass: HomeAssistant, evenergy_sim: EvEnergySimulator
) -> None:
    """Client id and secret of an organisation, acting for one user; errors first."""
    form = await _organisation_form(hass)
    user_input = {
        "client_id": ORG_CLIENT_ID,
        "client_secret": "wrong-secret",
        "user_id": USER_ID,
        "advanced": {"base_url": evenergy_sim.url},
    }
    result = await hass.config_entries.flow.async_configure(form["flow_id"], user_input)
    assert result["errors"] == {"base": "invalid_auth"}
    evenergy_sim.token_fault = EvEnergyFault.SERVER_ERROR
    user_input["client_secret"] = ORG_CLIENT_SECRET
    result = await hass.config_entries.flow.async_configure(form["flow_id"], user_input)
    assert result["errors"] == {"base": "cannot_connect"}
    evenergy_sim.token_fault = EvEnergyFault.NONE
    result = await hass.config_entries.flow.async_configure(form["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"]["auth"] == "organisation"
    assert result["result"].unique_id == USER_ID
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED


@pytest.mark.parametrize("form", ["id", "url", "url with slash"])
async def test_organisation_flow_takes_the_user_id_or_url(
    hass: HomeAssistant, evenergy_sim: EvEnergySimulator, form: str
) -> None:
    """The user is named by id or by URL; EvEnergy-User carries what was typed.

    The entry belongs to the user's id either way (one entry per user).
    """
    typed = {
        "id": USER_ID,
        "url": f"{evenergy_sim.api_url}/users/{USER_ID}",
        "url with slash": f"{evenergy_sim.api_url}/users/{USER_ID}/",
    }[form]
    form_result = await _organisation_form(hass)
    result = await hass.config_entries.flow.async_configure(
        form_result["flow_id"],
        {
            "client_id": ORG_CLIENT_ID,
            "client_secret": ORG_CLIENT_SECRET,
            "user_id": f" {typed} ",
            "advanced": {"base_url": evenergy_sim.url},
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == USER_ID
    assert result["data"]["user_id"] == typed
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.zoe_battery").state == "42"
    assert set(evenergy_sim.user_headers) == {typed}


@pytest.mark.parametrize(
    "typed",
    [
        "alice",
        "user01JEVSM0000000000000000",  # 25 characters after "user"
        "vhcl01JEVSM00000000000000007",
        "https://api.ev.energy/v2/vehicles/vhcl01JEVSM0000000000000000007",
        "ftp://api.ev.energy/v2/users/user01JEVSM0000000000000000007",
    ],
)
async def test_organisation_flow_refuses_a_value_that_names_no_user(
    hass: HomeAssistant, evenergy_sim: EvEnergySimulator, typed: str
) -> None:
    """Neither a user id nor a user's URL: a form error, and nothing is sent."""
    form = await _organisation_form(hass)
    user_input = {
        "client_id": ORG_CLIENT_ID,
        "client_secret": ORG_CLIENT_SECRET,
        "user_id": typed,
        "advanced": {"base_url": evenergy_sim.url},
    }
    result = await hass.config_entries.flow.async_configure(form["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"user_id": "invalid_user"}
    assert evenergy_sim.token_requests == []
    assert evenergy_sim.requests == []
    # Corrected, the same form adds the user.
    user_input["user_id"] = USER_ID
    result = await hass.config_entries.flow.async_configure(form["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_organisation_flow_user_outside_the_organisation(
    hass: HomeAssistant, evenergy_sim: EvEnergySimulator
) -> None:
    """A well-formed user the service refuses (400 problem+json): a field error."""
    stranger = evenergy_sim.add_user("stranger@example.com")
    form = await _organisation_form(hass)
    for typed in (stranger.id, f"{evenergy_sim.api_url}/users/{stranger.id}"):
        result = await hass.config_entries.flow.async_configure(
            form["flow_id"],
            {
                "client_id": ORG_CLIENT_ID,
                "client_secret": ORG_CLIENT_SECRET,
                "user_id": typed,
                "advanced": {"base_url": evenergy_sim.url},
            },
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"user_id": "unknown_user"}
    assert evenergy_sim.user_headers == [
        stranger.id,
        f"{evenergy_sim.api_url}/users/{stranger.id}",
    ]


async def test_organisation_reauth_of_a_user_named_by_url(
    hass: HomeAssistant,
    evenergy_organisation_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
) -> None:
    """An entry added with the user's URL takes a new secret for the same user."""
    user_url = f"{evenergy_sim.api_url}/users/{USER_ID}"
    evenergy_organisation_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        evenergy_organisation_entry,
        data={**evenergy_organisation_entry.data, "user_id": user_url},
    )
    await hass.config_entries.async_setup(evenergy_organisation_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.zoe_battery").state == "42"
    result = await evenergy_organisation_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"client_secret": ORG_CLIENT_SECRET}
    )
    assert result["reason"] == "reauth_successful"
    assert evenergy_organisation_entry.data["user_id"] == user_url
    assert set(evenergy_sim.user_headers) == {user_url}


async def test_token_is_refreshed(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """An expired access token is renewed with the refresh token, quietly."""
    await setup_entry(hass, evenergy_entry)
    evenergy_sim.token_lifetime = 600
    await _tick(hass, freezer, evenergy_sim, 36_000)  # the first token expires
    assert "refresh_token" in evenergy_sim.token_requests
    assert evenergy_entry.state is ConfigEntryState.LOADED
    assert hass.states.get("sensor.zoe_battery").state != STATE_UNAVAILABLE


async def test_token_refused_before_its_expiry_is_refreshed(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The service ends the access token early: refreshed once, no reauth."""
    await setup_entry(hass, evenergy_entry)
    evenergy_sim.expire_tokens()
    await _tick(hass, freezer, evenergy_sim, 300)
    assert evenergy_sim.token_requests == ["refresh_token"]
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert hass.states.get("sensor.zoe_battery").state == "43"


async def test_oauth_token_marks_only_the_refused_token_expired(
    hass: HomeAssistant,
) -> None:
    """A refused token is marked expired; a token refreshed meanwhile is kept."""
    token = {"access_token": "old", "expires_at": 1e12}
    entry = MockConfigEntry(domain=DOMAIN, data={"token": token})
    entry.add_to_hass(hass)
    getter = OAuthToken(hass, entry, lambda: None)
    with pytest.raises(AuthenticationError):
        await getter()
    getter.invalidate("another")  # refused before the refresh: refreshed already
    assert entry.data["token"]["expires_at"] == 1e12
    getter.invalidate("old")
    assert entry.data["token"] == {"access_token": "old", "expires_at": 0}
    hass.config_entries.async_update_entry(entry, data={})
    getter.invalidate()  # no token stored: nothing to mark
    assert entry.data == {}


async def test_refused_refresh_starts_reauth(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A refresh token the service revoked: sign in again (a reauth flow)."""
    await setup_entry(hass, evenergy_entry)
    evenergy_sim.revoke(USER_ID)
    await _tick(hass, freezer, evenergy_sim, 36_000)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]
    assert flows[0]["step_id"] == "evenergy_reauth_oauth"


async def test_token_the_service_dropped_early_is_renewed(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A token refused before it expires is renewed once: no reauth.

    A server that forgot it, or a clock ahead of ours, must not send the user to
    sign in while the refresh token works.
    """
    await setup_entry(hass, evenergy_entry)
    old = evenergy_entry.data["token"]["access_token"]
    evenergy_sim.expire_tokens()
    await _tick(hass, freezer, evenergy_sim, 600)
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert evenergy_sim.token_requests == ["refresh_token"]
    assert evenergy_entry.data["token"]["access_token"] != old
    assert hass.states.get("sensor.zoe_battery").state != STATE_UNAVAILABLE
    # Refused again after the renewal: the user signs in again.
    evenergy_sim.revoke(USER_ID)
    await _tick(hass, freezer, evenergy_sim, 600)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


async def test_refresh_that_cannot_connect_is_retried(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """A token endpoint that fails (500) is a normal retry, not a reauth."""
    await setup_entry(hass, evenergy_entry)
    evenergy_sim.token_fault = EvEnergyFault.SERVER_ERROR
    await _tick(hass, freezer, evenergy_sim, 36_000)
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert hass.states.get("sensor.zoe_battery").state == STATE_UNAVAILABLE
    evenergy_sim.token_fault = EvEnergyFault.NONE
    await _tick(hass, freezer, evenergy_sim, 600)
    assert hass.states.get("sensor.zoe_battery").state != STATE_UNAVAILABLE


@pytest.mark.usefixtures("current_request_with_host")
async def test_reauth_signs_in_again(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Reauth confirms, goes through the service again and keeps the entry."""
    await setup_entry(hass, evenergy_entry)
    old_token = evenergy_entry.data["token"]["access_token"]
    result = await evenergy_entry.start_reauth_flow(hass)
    assert result["step_id"] == "evenergy_reauth_oauth"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    await _consent(hass_client_no_auth, result)
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert evenergy_entry.data["token"]["access_token"] != old_token


async def test_organisation_reauth(
    hass: HomeAssistant,
    evenergy_organisation_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
) -> None:
    """An organisation's new secret is checked before it is stored."""
    await setup_entry(hass, evenergy_organisation_entry)
    result = await evenergy_organisation_entry.start_reauth_flow(hass)
    assert result["step_id"] == "evenergy_reauth"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"client_secret": "wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"client_secret": ORG_CLIENT_SECRET}
    )
    assert result["reason"] == "reauth_successful"


# --- commands -------------------------------------------------------------------------


async def _charge(hass: HomeAssistant, action: str, device_id: str) -> None:
    await hass.services.async_call(
        DOMAIN, action, {"device_id": device_id}, blocking=True
    )


async def test_boost_start_and_stop_are_idempotent(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
) -> None:
    """Start boosts the smart session once; stop ends it once."""
    await setup_entry(hass, evenergy_entry)
    zoe = _device_id(hass, evenergy_entry, "Zoe")
    vehicle_id = _vehicle_id(evenergy_sim, ZOE)
    await _charge(hass, "start_charging", zoe)
    session = evenergy_sim.current_session(vehicle_id)
    assert session is not None
    assert session.current is not None
    assert session.current.mode == "BOOST"
    boosts = [p for m, p in evenergy_sim.requests if p.endswith("/boost_start")]
    await _charge(hass, "start_charging", zoe)  # already boosting: nothing sent
    assert [p for m, p in evenergy_sim.requests if p.endswith("/boost_start")] == boosts
    await _charge(hass, "stop_charging", zoe)
    assert session.current is not None
    assert session.current.mode == "SMART"
    await _charge(hass, "stop_charging", zoe)  # not boosting: nothing to end
    assert len([p for m, p in evenergy_sim.requests if p.endswith("/boost_end")]) == 1


async def test_boost_refusals_say_what_to_do(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
) -> None:
    """Not plugged in, smart charging off (409), car unreachable (503)."""
    await setup_entry(hass, evenergy_entry)
    with pytest.raises(ServiceValidationError) as caught:
        await _charge(hass, "start_charging", _device_id(hass, evenergy_entry, "Van"))
    assert caught.value.translation_key == "evenergy_not_plugged_in"

    zoe = _device_id(hass, evenergy_entry, "Zoe")
    vehicle = evenergy_sim.vehicle(_vehicle_id(evenergy_sim, ZOE))
    vehicle.unreachable = True
    with pytest.raises(HomeAssistantError) as caught:
        await _charge(hass, "start_charging", zoe)
    assert caught.value.translation_key == "evenergy_unreachable"
    vehicle.unreachable = False

    await hass.services.async_call(
        SWITCH_DOMAIN,
        SERVICE_TURN_OFF,
        {ATTR_ENTITY_ID: "switch.zoe_smart_charging"},
        blocking=True,
    )
    assert not vehicle.smart_charging_enabled
    with pytest.raises(HomeAssistantError) as caught:
        await _charge(hass, "start_charging", zoe)
    assert caught.value.translation_key == "evenergy_boost_refused"


async def test_settings_reach_the_service(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
) -> None:
    """Smart charging and the maximum charge limit are PATCHed and shown."""
    await setup_entry(hass, evenergy_entry)
    vehicle = evenergy_sim.vehicle(_vehicle_id(evenergy_sim, ZOE))
    await hass.services.async_call(
        "number",
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: "number.zoe_maximum_charge_limit", ATTR_VALUE: 90},
        blocking=True,
    )
    assert vehicle.maximum_charge_limit_percentage == 90
    await hass.services.async_call(
        SWITCH_DOMAIN,
        SERVICE_TURN_OFF,
        {ATTR_ENTITY_ID: "switch.zoe_smart_charging"},
        blocking=True,
    )
    await hass.services.async_call(
        SWITCH_DOMAIN,
        SERVICE_TURN_ON,
        {ATTR_ENTITY_ID: "switch.zoe_smart_charging"},
        blocking=True,
    )
    assert vehicle.smart_charging_enabled
    await hass.async_block_till_done()
    assert hass.states.get("number.zoe_maximum_charge_limit").state == "90"


async def test_commands_become_events_and_a_sensor(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Each command the service logs after setup fires one ev_cloud_command."""
    events: list[Event] = []
    hass.bus.async_listen(f"{DOMAIN}_command", events.append)
    await setup_entry(hass, evenergy_entry)
    await _charge(hass, "start_charging", _device_id(hass, evenergy_entry, "Zoe"))
    for _ in range(6):  # the command history is read every fifth poll
        await _tick(hass, freezer, evenergy_sim, 60)
    assert [event.data["command"] for event in events] == ["start_charge"]
    assert hass.states.get("sensor.zoe_last_command").state == "start_charge"


async def test_missing_debug_scope_is_said_once(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Without debug:read: one log line, a note in diagnostics, no command sensor."""
    evenergy_sim.clients[CLIENT_ID].scopes.discard("debug:read")
    await setup_entry(hass, evenergy_entry)
    for _ in range(6):
        await _tick(hass, freezer, evenergy_sim, 60)
    lines = [r for r in caplog.records if "debug:read" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].levelno == logging.INFO
    diagnostics = await async_get_config_entry_diagnostics(hass, evenergy_entry)
    assert diagnostics["account"]["command_history"] == "missing debug:read scope"
    assert hass.states.get("sensor.zoe_last_command").state == "unknown"
    assert hass.states.get("sensor.zoe_battery").state != STATE_UNAVAILABLE


# --- budget and staleness -------------------------------------------------------------


async def test_rate_limit_pauses_the_account(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """429 with retry-after pauses everything; the sensor shows what is left."""
    await setup_entry(hass, evenergy_entry)
    left = int(hass.states.get("sensor.zoe_requests_left_this_hour").state)
    assert 0 < left < 1000
    evenergy_sim.hourly_limit = 0
    await _tick(hass, freezer, evenergy_sim, 300)
    assert hass.states.get("sensor.zoe_battery").state == STATE_UNAVAILABLE
    refused = len(evenergy_sim.requests)
    await _tick(hass, freezer, evenergy_sim, 30)  # within the pause
    assert len(evenergy_sim.requests) == refused
    evenergy_sim.hourly_limit = 1000
    await _tick(hass, freezer, evenergy_sim, 3600)
    assert hass.states.get("sensor.zoe_battery").state != STATE_UNAVAILABLE


async def test_silent_vehicle_is_offline_with_its_values(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """sampled_at that stops moving: Online off, the last values stay."""
    await setup_entry(hass, evenergy_entry)
    evenergy_sim.vehicle(_vehicle_id(evenergy_sim, VAN)).silent = True
    await _tick(hass, freezer, evenergy_sim, 600)
    await _tick(hass, freezer, evenergy_sim, 600)
    assert hass.states.get("binary_sensor.van_online").state == STATE_OFF
    assert hass.states.get("sensor.van_battery").state == "77"
    assert hass.states.get("binary_sensor.zoe_online").state == STATE_ON


async def test_organisation_reconfigure(
    hass: HomeAssistant,
    evenergy_organisation_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
) -> None:
    """The organisation form comes back filled in; the same user is updated."""
    await setup_entry(hass, evenergy_organisation_entry)
    result = await evenergy_organisation_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "evenergy_organisation"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "client_id": ORG_CLIENT_ID,
            "client_secret": ORG_CLIENT_SECRET,
            "user_id": USER_ID,
            "advanced": {"base_url": evenergy_sim.url + "/"},
        },
    )
    assert result["reason"] == "reconfigure_successful"
    assert evenergy_organisation_entry.data["base_url"] == evenergy_sim.url


def _organisation_input(sim: EvEnergySimulator, secret: str) -> dict[str, Any]:
    return {
        "client_id": ORG_CLIENT_ID,
        "client_secret": secret,
        "user_id": USER_ID,
        "advanced": {"base_url": sim.url},
    }


async def test_organisation_reconfigure_keeps_the_stored_secret(
    hass: HomeAssistant,
    evenergy_organisation_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
) -> None:
    """The form shows a placeholder, not the client secret; sent back, it is kept."""
    await setup_entry(hass, evenergy_organisation_entry)
    result = await evenergy_organisation_entry.start_reconfigure_flow(hass)
    assert suggested(result) == {
        "client_id": ORG_CLIENT_ID,
        "client_secret": SECRET_PLACEHOLDER,
        "user_id": USER_ID,
        "advanced": {"base_url": evenergy_sim.url},
    }
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _organisation_input(evenergy_sim, "")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"client_secret": "secret_required"}

    result = await evenergy_organisation_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _organisation_input(evenergy_sim, SECRET_PLACEHOLDER)
    )
    assert result["reason"] == "reconfigure_successful"
    assert evenergy_organisation_entry.data["client_secret"] == ORG_CLIENT_SECRET
    await hass.async_block_till_done()


async def test_organisation_reconfigure_checks_a_new_secret(
    hass: HomeAssistant,
    evenergy_organisation_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
) -> None:
    """A typed secret is checked and replaces the stored one; it is hidden too."""
    await setup_entry(hass, evenergy_organisation_entry)
    new_secret = issued("sim-evenergy-organisation-new-secret")
    evenergy_sim.clients[ORG_CLIENT_ID].client_secret = new_secret
    result = await evenergy_organisation_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _organisation_input(evenergy_sim, SECRET_PLACEHOLDER)
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert suggested(result)["client_secret"] == SECRET_PLACEHOLDER

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _organisation_input(evenergy_sim, new_secret)
    )
    assert result["reason"] == "reconfigure_successful"
    assert evenergy_organisation_entry.data["client_secret"] == new_secret
    await hass.async_block_till_done()


@pytest.mark.usefixtures("current_request_with_host")
async def test_oauth_reconfigure_signs_in_again(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    """Reconfigure shows the sign-in form with the address, then OAuth again."""
    await setup_entry(hass, evenergy_entry)
    result = await evenergy_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "evenergy_oauth"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"advanced": {"base_url": evenergy_sim.url}}
    )
    await _consent(hass_client_no_auth, result)
    result = await hass.config_entries.flow.async_configure(result["flow_id"])
    assert result["reason"] == "reconfigure_successful"


async def test_no_token_in_any_log_record(
    hass: HomeAssistant,
    evenergy_entry: MockConfigEntry,
    evenergy_sim: EvEnergySimulator,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Access and refresh tokens (old and renewed) never reach a log record."""
    await setup_entry(hass, evenergy_entry)
    first = dict(evenergy_entry.data["token"])
    evenergy_sim.token_lifetime = 600
    await _tick(hass, freezer, evenergy_sim, 36_000)  # renewed
    evenergy_sim.token_fault = EvEnergyFault.SERVER_ERROR
    await _tick(hass, freezer, evenergy_sim, 900)  # renewing fails
    renewed = evenergy_entry.data["token"]
    tokens = {
        first["access_token"],
        first["refresh_token"],
        renewed["access_token"],
        renewed["refresh_token"],
    }
    assert len(tokens) == 4
    for record in caplog.records:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        for token in tokens:
            assert token not in text, record.name
