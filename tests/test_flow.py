"""The shared parts of the config and options flows."""

from __future__ import annotations

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.config_flow import EvCloudConfigFlow
from custom_components.ev_cloud.const import DOMAIN, LOGGER
from custom_components.ev_cloud.flow import valid_url


async def test_reauth_of_an_unknown_provider_aborts(hass: HomeAssistant) -> None:
    """An entry of a provider this version lacks cannot be re-authenticated."""
    entry = MockConfigEntry(domain=DOMAIN, data={"provider": "future"})
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "unknown_provider"


def test_flow_is_an_oauth2_handler_logging_as_the_integration() -> None:
    """Providers that sign in through application credentials use its steps."""
    flow = EvCloudConfigFlow()
    assert flow.logger is LOGGER
    assert callable(flow.async_step_pick_implementation)
    assert config_entries.HANDLERS[DOMAIN] is EvCloudConfigFlow


async def test_options_of_an_unloaded_account_offer_intervals_only(
    hass: HomeAssistant, ovms_entry: MockConfigEntry
) -> None:
    """Which vehicles exist is only known while the entry is loaded."""
    ovms_entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(ovms_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    fields = {str(key) for key in result["data_schema"].schema}
    assert fields == {"active_interval", "idle_interval"}


def test_valid_url() -> None:
    """http(s) with a host, stripped; anything else is refused."""
    assert valid_url(" https://example.com:6869 ") == "https://example.com:6869"
    for text in ("example.com", "ftp://example.com", "https://", "http:///path"):
        assert valid_url(text) is None, text
