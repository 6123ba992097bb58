"""EV Cloud: electric vehicles and chargers from several cloud services."""

from __future__ import annotations

from datetime import datetime

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryError,
    ConfigEntryNotReady,
)
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.event import async_track_time_interval
from homeassistant.helpers.typing import ConfigType

from .api import AuthenticationError, EvCloudError
from .const import CONF_PROVIDER, DOMAIN
from .coordinator import EvCloudConfigEntry, EvCloudRuntimeData, async_sync_devices
from .providers import ACCOUNT_FACTORIES
from .services import async_setup_services

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.DEVICE_TRACKER,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the actions, once for all entries."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: EvCloudConfigEntry) -> bool:
    """Open the account, read every device once, then add their entities."""
    factory = ACCOUNT_FACTORIES.get(entry.data.get(CONF_PROVIDER, ""))
    if factory is None:
        raise ConfigEntryError(
            translation_domain=DOMAIN, translation_key="unknown_provider"
        )
    account = factory(hass, entry)
    entry.runtime_data = EvCloudRuntimeData(account)
    entry.async_on_unload(account.async_unload)
    try:
        await account.async_setup()
        await async_sync_devices(hass, entry, initial=True)
    except AuthenticationError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except EvCloudError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="update_failed",
            translation_placeholders={"error": str(err)},
        ) from err
    if interval := account.device_list_interval:

        async def _async_sync(_now: datetime) -> None:
            await async_sync_devices(hass, entry)

        entry.async_on_unload(async_track_time_interval(hass, _async_sync, interval))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: EvCloudConfigEntry) -> bool:
    """Unload the platforms; the coordinators shut down with the entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)


async def async_remove_entry(hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
    """Drop the repair issues that belonged to the removed entry."""
    for domain, issue_id in list(ir.async_get(hass).issues):
        if domain == DOMAIN and issue_id.startswith(entry.entry_id):
            ir.async_delete_issue(hass, DOMAIN, issue_id)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: EvCloudConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Allow removing a device only when the service no longer lists it."""
    return not any(
        (DOMAIN, key) in device.identifiers for key in entry.runtime_data.coordinators
    )
