"""ev.energy: facts from the spec and the docs that our reading had missed."""

from __future__ import annotations

from typing import Any

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.ev_cloud.const import DOMAIN
from tests.evenergy.fixtures import ORG_CLIENT_ID, ORG_CLIENT_SECRET, USER_ID
from tests.simulators.evenergy import EvEnergySimulator


async def _add_organisation(
    hass: HomeAssistant, sim: EvEnergySimulator, user: str
) -> dict[str, Any]:
    """The organisation form, sent with `user` as the user to act for."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evenergy"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evenergy_organisation"}
    )
    return await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "client_id": ORG_CLIENT_ID,
            "client_secret": ORG_CLIENT_SECRET,
            "user_id": user,
            "advanced": {"base_url": sim.url},
        },
    )


async def test_user_header_takes_the_users_url(
    hass: HomeAssistant, evenergy_sim: EvEnergySimulator
) -> None:
    """EvEnergy-User may be the user's URL; it is sent as the user typed it.

    Source: developers.ev.energy/docs/user-header ("The header should be set to the
    URL of the user"); the same in api-evangelist/ev-energy @ 7873251,
    authentication/ev-energy-authentication.yml ("the absolute URL of the user
    resource").
    """
    user_url = f"{evenergy_sim.api_url}/users/{USER_ID}"
    result = await _add_organisation(hass, evenergy_sim, user_url)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == USER_ID  # the same user as by id
    await hass.async_block_till_done()
    assert hass.states.get("sensor.zoe_battery").state == "42"
    assert set(evenergy_sim.user_headers) == {user_url}


async def test_user_header_pattern_is_a_user_id(
    hass: HomeAssistant, evenergy_sim: EvEnergySimulator
) -> None:
    r"""A user id is `user` + 26 characters; a value of neither form costs no request.

    Source: api-evangelist/ev-energy @ 7873251, openapi/ev-energy-api-v2-openapi.yaml,
    components.parameters.user and evenergy-user-required
    (`pattern: user[A-Z\d]{26}`).
    """
    result = await _add_organisation(hass, evenergy_sim, "user-alice")
    assert result["errors"] == {"user_id": "invalid_user"}
    assert evenergy_sim.token_requests == []
    assert evenergy_sim.requests == []
    result = await _add_organisation(hass, evenergy_sim, USER_ID)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert set(evenergy_sim.user_headers) == {USER_ID}


async def test_refused_user_header_is_a_field_error(
    hass: HomeAssistant, evenergy_sim: EvEnergySimulator
) -> None:
    """A refused EvEnergy-User is a 400 problem+json, shown at the user field.

    Source: developers.ev.energy/docs/user-header (endpoints that need the header
    answer 400 without it), developers.ev.energy/docs/errors and the spec's
    components.schemas.RFC9457ProblemDetail (api-evangelist/ev-energy @ 7873251).
    Neither names the answer to a user outside the organisation; the simulator
    gives it the same 400 problem (title, status, detail, no type).
    """
    stranger = evenergy_sim.add_user("stranger@example.com")
    result = await _add_organisation(
        hass, evenergy_sim, f"{evenergy_sim.api_url}/users/{stranger.id}"
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"user_id": "unknown_user"}
