"""EV Cloud: electric vehicles and chargers from several cloud services."""

from __future__ import annotations

from datetime import datetime

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.typing import ConfigType

from .api import EvCloudError
from .const import CONF_PROVIDER, DOMAIN
from .coordinator import translate_error
from .devices import async_sync_devices
from .link import async_setup_links
from .models import EvCloudConfigEntry, EvCloudRuntimeData
from .providers import PROVIDERS
from .services import async_setup_services
from .sessions import async_remove_sessions, async_setup_sessions

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, once for all entries."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: EvCloudConfigEntry) -> bool:
    """Open the account, read every device once, then add their entities."""
    provider = PROVIDERS.get(entry.data.get(CONF_PROVIDER, ""))
    if provider is None:
        raise ConfigEntryError(
            translation_domain=DOMAIN, translation_key="unknown_provider"
        )
    account = provider.create_account(hass, entry)
    entry.runtime_data = EvCloudRuntimeData(provider, account)
    entry.async_on_unload(account.async_unload)
    entry.async_on_unload(entry.runtime_data.cancel_pending)
    try:
        await account.async_setup()
        await async_sync_devices(hass, entry, initial=True)
    except EvCloudError as err:
        raise translate_error(err, "setup") from err
    if interval := account.device_list_interval:

        async def _async_sync(_now: datetime) -> None:
            await async_sync_devices(hass, entry)

        entry.async_on_unload(async_track_time_interval(hass, _async_sync, interval))
    async_setup_links(hass, entry)
    await async_setup_sessions(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, provider.platforms)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: EvCloudConfigEntry) -> bool:
    """Unload the provider's platforms; the coordinators shut down with the entry."""
    return await hass.config_entries.async_unload_platforms(
        entry, entry.runtime_data.provider.platforms
    )


async def async_remove_entry(hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
    """Drop the repair issues and the stored sessions of the removed entry."""
    await async_remove_sessions(hass, entry)
    for domain, issue_id in list(ir.async_get(hass).issues):
        if domain == DOMAIN and issue_id.startswith(entry.entry_id):
            ir.async_delete_issue(hass, DOMAIN, issue_id)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: EvCloudConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow removing a device only when the service no longer lists it."""
    return not any(
        (DOMAIN, key) in device.identifiers for key in entry.runtime_data.listed
    )
