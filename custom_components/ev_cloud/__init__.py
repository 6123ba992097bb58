"""EV Cloud: electric vehicles and chargers from several cloud services."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.typing import ConfigType

from .const import CONF_PROVIDER, DOMAIN
from .coordinator import EvCloudConfigEntry, EvCloudCoordinator, EvCloudRuntimeData
from .providers import DEVICE_FACTORIES
from .services import async_setup_services

PLATFORMS = [
    Platform.BINARY_SENSOR,
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
    """Read every device of the entry once, then add their entities."""
    factory = DEVICE_FACTORIES.get(entry.data.get(CONF_PROVIDER, ""))
    if factory is None:
        raise ConfigEntryError(
            translation_domain=DOMAIN, translation_key="unknown_provider"
        )
    coordinators: dict[str, EvCloudCoordinator] = {}  # type: ignore[type-arg]
    for device in factory(hass, entry.data):
        coordinator = EvCloudCoordinator(hass, entry, device)
        await coordinator.async_config_entry_first_refresh()
        coordinators[device.key] = coordinator
    entry.runtime_data = EvCloudRuntimeData(coordinators)
    _remove_stale_devices(hass, entry)
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


def _remove_stale_devices(hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
    """Remove devices of the entry that the service no longer lists."""
    registry = dr.async_get(hass)
    current = {(DOMAIN, key) for key in entry.runtime_data.coordinators}
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not device.identifiers & current:
            registry.async_update_device(
                device.id, remove_config_entry_id=entry.entry_id
            )
