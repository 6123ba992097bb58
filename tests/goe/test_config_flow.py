"""Config flow: every path for go-e, against the simulator."""

from __future__ import annotations

from typing import Any

from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.test_util.aiohttp import AiohttpClientMocker

from custom_components.ev_cloud.const import (
    CONF_ACTIVE_INTERVAL,
    CONF_IDLE_INTERVAL,
    DOMAIN,
)
from custom_components.ev_cloud.flow import SECRET_PLACEHOLDER
from custom_components.ev_cloud.link import CONF_PRICE_ENTITY
from tests.forms import suggested
from tests.goe.fixtures import SERIAL, TOKEN, goe_cloud_data
from tests.simulators.common import issued
from tests.simulators.goe import CORE, PRO, GoeFault, GoeSimulator, SimCharger


async def _open_goe_form(hass: HomeAssistant, step: str) -> dict[str, Any]:
    """Walk the menus (provider, then connection) to a go-e form."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert "goe" in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "goe"}
    )
    assert result["type"] is FlowResultType.MENU
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": step}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step
    return result


def _cloud_input(sim: GoeSimulator, **overrides: Any) -> dict[str, Any]:
    return {
        "serial": "12345",
        "token": TOKEN,
        "advanced": {"server_url": sim.cloud_url},
        **overrides,
    }


async def test_cloud_flow_creates_entry(
    hass: HomeAssistant, goe_sim: GoeSimulator
) -> None:
    """Serial (leading zero added) and token create the entry, unique by serial."""
    form = await _open_goe_form(hass, "goe_cloud")
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _cloud_input(goe_sim)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"go-e Charger {SERIAL}"
    assert result["data"] == goe_cloud_data(goe_sim)
    assert result["result"].unique_id == SERIAL


@pytest.mark.parametrize(
    ("user_input", "fault", "errors"),
    [
        ({"serial": "12ab"}, GoeFault.NONE, {"serial": "invalid_serial"}),
        (
            {"advanced": {"server_url": "ftp://example"}},
            GoeFault.NONE,
            {"advanced": "invalid_url"},
        ),
        ({"token": "wrong"}, GoeFault.NONE, {"base": "invalid_auth"}),
        ({}, GoeFault.CLOUD_API_DISABLED, {"base": "cloud_api_disabled"}),
        ({}, GoeFault.SERVER_ERROR, {"base": "cannot_connect"}),
        ({}, GoeFault.MALFORMED, {"base": "cannot_connect"}),
    ],
)
async def test_cloud_flow_errors_recover(
    hass: HomeAssistant,
    goe_sim: GoeSimulator,
    goe_charger: SimCharger,
    user_input: dict[str, Any],
    fault: GoeFault,
    errors: dict[str, str],
) -> None:
    """Each problem shows its error on the form, and fixing it creates the entry."""
    form = await _open_goe_form(hass, "goe_cloud")
    goe_charger.fault = fault
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _cloud_input(goe_sim, **user_input)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == errors
    goe_charger.fault = GoeFault.NONE
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _cloud_input(goe_sim)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_cloud_flow_token_of_another_charger(
    hass: HomeAssistant, goe_sim: GoeSimulator
) -> None:
    """A token that answers for another serial is refused as invalid."""
    goe_sim.add_charger(SimCharger(serial="000002", token="other-token"))
    form = await _open_goe_form(hass, "goe_cloud")
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _cloud_input(goe_sim, token="other-token")
    )
    assert result["errors"] == {"base": "invalid_auth"}


async def test_cloud_flow_accepts_charger_without_recent_data(
    hass: HomeAssistant, goe_sim: GoeSimulator, goe_charger: SimCharger
) -> None:
    """Outdated data (404) proves the token; the entry is created."""
    goe_charger.fault = GoeFault.STALE
    goe_charger.advance(3600)
    form = await _open_goe_form(hass, "goe_cloud")
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _cloud_input(goe_sim)
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_cloud_flow_already_configured(
    hass: HomeAssistant, goe_sim: GoeSimulator, goe_entry: MockConfigEntry
) -> None:
    """The same charger cannot be added twice."""
    goe_entry.add_to_hass(hass)
    form = await _open_goe_form(hass, "goe_cloud")
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], _cloud_input(goe_sim)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_local_flow(
    hass: HomeAssistant, goe_sim: GoeSimulator, goe_charger: SimCharger
) -> None:
    """The local API is found by host; the serial comes from the charger."""
    form = await _open_goe_form(hass, "goe_local")
    goe_charger.fault = GoeFault.OFFLINE
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], {"host": goe_sim.local_host(SERIAL)}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    goe_charger.fault = GoeFault.NONE
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], {"host": f" {goe_sim.local_host(SERIAL)} "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == SERIAL
    assert result["data"] == {
        "provider": "goe",
        "connection": "local",
        "host": goe_sim.local_host(SERIAL),
        "serial": SERIAL,
    }


@pytest.mark.parametrize("goe_model", [CORE, PRO])
@pytest.mark.parametrize("step", ["goe_cloud", "goe_local"])
async def test_core_and_pro_are_added(
    hass: HomeAssistant, goe_sim: GoeSimulator, goe_charger: SimCharger, step: str
) -> None:
    """CORE and PRO answer our filter with 400 and the keys they have: added."""
    form = await _open_goe_form(hass, step)
    user_input = (
        _cloud_input(goe_sim)
        if step == "goe_cloud"
        else {"host": goe_sim.local_host(SERIAL)}
    )
    result = await hass.config_entries.flow.async_configure(form["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].unique_id == SERIAL
    assert goe_charger.status_codes[0] == 400
    assert result["result"].state is ConfigEntryState.LOADED


async def test_reauth(
    hass: HomeAssistant, goe_sim: GoeSimulator, goe_entry: MockConfigEntry
) -> None:
    """A new token is checked and stored; the entry reloads."""
    goe_entry.add_to_hass(hass)
    result = await goe_entry.start_reauth_flow(hass)
    assert result["step_id"] == "goe_reauth"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"token": " "}
    )
    assert result["errors"] == {"token": "secret_required"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"token": "still-wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"token": TOKEN}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert goe_entry.data["token"] == TOKEN
    assert goe_entry.data["server_url"] == goe_sim.cloud_url
    await hass.async_block_till_done()
    assert goe_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_cloud(
    hass: HomeAssistant, goe_sim: GoeSimulator, goe_entry: MockConfigEntry
) -> None:
    """Reconfigure shows the cloud form filled in and updates the entry."""
    goe_sim.add_charger(SimCharger(serial="000002", token="other-token"))
    goe_entry.add_to_hass(hass)
    result = await goe_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "goe_cloud"
    # Another charger's serial and token: refused, the entry keeps its charger.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _cloud_input(goe_sim, serial="2", token="other-token")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_device"

    result = await goe_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _cloud_input(goe_sim, advanced={"server_url": f"{goe_sim.cloud_url}/"}),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert goe_entry.data["server_url"] == f"{goe_sim.cloud_url}/"
    await hass.async_block_till_done()
    assert goe_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_keeps_the_stored_token(
    hass: HomeAssistant, goe_sim: GoeSimulator, goe_entry: MockConfigEntry
) -> None:
    """The form shows a placeholder, not the token; sent back, it keeps the token."""
    goe_entry.add_to_hass(hass)
    result = await goe_entry.start_reconfigure_flow(hass)
    assert suggested(result) == {
        "serial": SERIAL,
        "token": SECRET_PLACEHOLDER,
        "advanced": {"server_url": goe_sim.cloud_url},
    }
    # Cleared: a form error, no exception.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _cloud_input(goe_sim, token=" ")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"token": "secret_required"}

    result = await goe_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _cloud_input(goe_sim, serial=SERIAL, token=SECRET_PLACEHOLDER),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert goe_entry.data == goe_cloud_data(goe_sim)


async def test_reconfigure_checks_a_new_token(
    hass: HomeAssistant,
    goe_sim: GoeSimulator,
    goe_charger: SimCharger,
    goe_entry: MockConfigEntry,
) -> None:
    """A typed token is checked and replaces the stored one; it is hidden too."""
    goe_entry.add_to_hass(hass)
    goe_charger.token = issued("sim-token-new-012345")
    result = await goe_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _cloud_input(goe_sim, serial=SERIAL)
    )
    assert result["errors"] == {"base": "invalid_auth"}
    assert suggested(result)["token"] == SECRET_PLACEHOLDER
    # The placeholder now stands for what was typed: still refused.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _cloud_input(goe_sim, token=SECRET_PLACEHOLDER)
    )
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _cloud_input(goe_sim, token=goe_charger.token)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert goe_entry.data["token"] == goe_charger.token


async def test_reconfigure_local(
    hass: HomeAssistant, goe_sim: GoeSimulator, goe_local_entry: MockConfigEntry
) -> None:
    """A local entry is reconfigured through the local form."""
    goe_local_entry.add_to_hass(hass)
    result = await goe_local_entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "goe_local"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"host": goe_sim.local_host(SERIAL)}
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert goe_local_entry.state is ConfigEntryState.LOADED


async def test_options_flow(
    hass: HomeAssistant, goe_sim: GoeSimulator, goe_entry: MockConfigEntry
) -> None:
    """Intervals are saved as whole seconds and bounded by the provider's limits."""
    goe_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(goe_entry.entry_id)
    result = await hass.config_entries.options.async_init(goe_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    schema = result["data_schema"].schema
    # A charger's entry also names the price of its energy (charging sessions).
    assert {str(key) for key in schema} - {
        CONF_ACTIVE_INTERVAL,
        CONF_IDLE_INTERVAL,
    } == {CONF_PRICE_ENTITY}
    bounds = {
        str(key): (value.config["min"], value.config["max"])
        for key, value in schema.items()
        if str(key) != CONF_PRICE_ENTITY
    }
    assert bounds == {CONF_ACTIVE_INTERVAL: (10, 3600), CONF_IDLE_INTERVAL: (30, 3600)}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_ACTIVE_INTERVAL: 15.0, CONF_IDLE_INTERVAL: 300.0}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert goe_entry.options == {CONF_ACTIVE_INTERVAL: 15, CONF_IDLE_INTERVAL: 300}
    await hass.async_block_till_done()
    coordinator = next(iter(goe_entry.runtime_data.coordinators.values()))
    # The car charges: the active interval applies after the reload.
    assert coordinator.update_interval.total_seconds() == 15


async def test_cloud_flow_without_server_url_uses_go_e_cloud(
    hass: HomeAssistant, aioclient_mock: AiohttpClientMocker
) -> None:
    """No server URL: the charger's own go-e cloud address is asked.

    Tests cannot reach the real go-e cloud, so Home Assistant's HTTP mock answers
    for it here, with what the simulator would send.
    """
    aioclient_mock.get(
        "https://012345.api.v3.go-e.io/api/status",
        json=SimCharger(serial=SERIAL, token=TOKEN).status(),
    )
    form = await _open_goe_form(hass, "goe_cloud")
    result = await hass.config_entries.flow.async_configure(
        form["flow_id"], {"serial": SERIAL, "token": TOKEN, "advanced": {}}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert "server_url" not in result["data"]
    # Validation, then the new entry's first poll; both with the token in a header.
    assert aioclient_mock.call_count == 2
    for _method, url, _data, headers in aioclient_mock.mock_calls:
        assert headers["Authorization"] == f"Bearer {TOKEN}"
        assert "token" not in url.query
