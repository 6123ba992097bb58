"""Keep an entry's devices in step with what its account lists."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_send

from .api import AuthenticationError, EvCloudError
from .const import DOMAIN, LOGGER
from .coordinator import EvCloudCoordinator
from .models import EvCloudConfigEntry, signal_device_added


async def async_sync_devices(
    hass: HomeAssistant, entry: EvCloudConfigEntry, *, initial: bool = False
) -> None:
    """Give every device the account lists a coordinator, and drop the others.

    Each new device is read once. One that cannot be read yet is tried again at
    the next listing, and its registry entries (with the user's names, areas and
    disabled flags) stay: only a device the account no longer lists is removed.
    At setup (`initial`) a failed listing, a rejected login, or devices none of
    which can be read raise, so that setup retries; later a failed listing keeps
    everything as it is.
    """
    runtime = entry.runtime_data
    try:
        devices = await runtime.account.async_list_devices()
    except EvCloudError as err:
        if initial:
            raise
        LOGGER.debug("Listing the devices of %s failed: %s", entry.title, err)
        return
    listed = {device.key: device for device in devices}
    runtime.listed = set(listed)
    failures: list[EvCloudError] = []
    for key, device in listed.items():
        if key in runtime.coordinators:
            continue
        coordinator = EvCloudCoordinator(hass, entry, device)
        try:
            await coordinator.async_first_read()
        except AuthenticationError:
            await coordinator.async_shutdown()
            raise
        except EvCloudError as err:
            # One unreadable vehicle must not keep the others of the account away.
            log = LOGGER.info if initial else LOGGER.debug
            log("%s: %s cannot be read yet: %s", entry.title, key, err)
            failures.append(err)
            await coordinator.async_shutdown()
            continue
        runtime.coordinators[key] = coordinator
        if not initial:
            LOGGER.info("%s: new device %s", entry.title, key)
            async_dispatcher_send(hass, signal_device_added(entry), coordinator)
    if initial and failures and not runtime.coordinators:
        raise failures[0]
    for key in set(runtime.coordinators) - set(listed):
        LOGGER.info("%s: device %s is gone", entry.title, key)
        await runtime.coordinators.pop(key).async_shutdown()
    _remove_unlisted_devices(hass, entry)


def _remove_unlisted_devices(hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
    """Remove registry devices (and their entities) the account no longer lists."""
    registry = dr.async_get(hass)
    listed = {(DOMAIN, key) for key in entry.runtime_data.listed}
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not device.identifiers & listed:
            registry.async_remove_device(device.id)
