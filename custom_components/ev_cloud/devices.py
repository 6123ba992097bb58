"""Keep an entry's devices in step with what its account lists."""

from __future__ import annotations

from datetime import datetime
import math
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_call_later

from .api import AuthenticationError, EvCloudError, PollPostponedError
from .const import DOMAIN, LOGGER
from .coordinator import EvCloudCoordinator
from .device import EvCloudDevice
from .models import EvCloudConfigEntry, signal_device_added


async def async_sync_devices(
    hass: HomeAssistant, entry: EvCloudConfigEntry, *, initial: bool = False
) -> None:
    """Give every device the account lists a coordinator, and drop the others.

    Each new device is read once. One that cannot be read yet still gets its
    registry device and the entities it has whatever it reports, unavailable;
    the reason is logged once, and a repair follows when it persists. It is
    tried again at the next listing. Registry entries (with the user's names,
    areas and disabled flags) stay: only a device the account no longer lists
    is removed. At setup (`initial`) a failed listing, a rejected login, or
    devices none of which can be read raise, so that setup retries; later a
    failed listing keeps everything as it is.
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
    failures = await _async_read_new(hass, entry, listed, initial=initial)
    if initial and failures and not runtime.coordinators:
        for coordinator in runtime.unread.values():
            await coordinator.async_shutdown()
        runtime.unread.clear()
        raise failures[0]
    for key in set(runtime.coordinators) - set(listed):
        LOGGER.info("%s: device %s is gone", entry.title, key)
        await runtime.coordinators.pop(key).async_shutdown()
    for key in set(runtime.unread) - set(listed):
        await runtime.unread.pop(key).async_shutdown()
    _remove_unlisted_devices(hass, entry)


async def _async_read_new(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    listed: dict[str, EvCloudDevice[Any]],
    *,
    initial: bool,
    announce: bool = True,
) -> list[EvCloudError]:
    """Read each listed device that was not read yet; return the failures.

    A device whose first read our own budget put off (the other devices' first
    reads took it) is read again as soon as the budget allows, not at the next
    listing.
    """
    runtime = entry.runtime_data
    failures: list[EvCloudError] = []
    postponed: dict[str, EvCloudDevice[Any]] = {}
    wait = 0.0
    for key, device in listed.items():
        if key in runtime.coordinators:
            continue
        unread = runtime.unread.get(key)
        coordinator = unread or EvCloudCoordinator(hass, entry, device)
        try:
            await coordinator.async_first_read()
        except AuthenticationError:
            if unread is None:
                await coordinator.async_shutdown()
            raise
        except PollPostponedError as err:
            failures.append(err)
            if unread is None:
                await coordinator.async_shutdown()
            postponed[key] = device
            wait = max(wait, err.retry_after or 0.0)
            continue
        except EvCloudError as err:
            # One unreadable device must not keep the others of the account away.
            failures.append(err)
            if unread is None:
                LOGGER.warning(
                    "%s: %s cannot be read yet; its entities are unavailable "
                    "until it can: %s",
                    entry.title,
                    key,
                    err,
                )
                _add_unread(hass, entry, coordinator, initial=initial)
            else:
                LOGGER.debug("%s: %s still cannot be read: %s", entry.title, key, err)
            continue
        if unread is not None:
            # Its listener (`_add_unread`) took it among the read devices.
            continue
        runtime.coordinators[key] = coordinator
        if not initial:
            if announce:
                LOGGER.info("%s: new device %s", entry.title, key)
            async_dispatcher_send(hass, signal_device_added(entry), coordinator)
    if postponed:
        _read_later(hass, entry, postponed, wait)
    return failures


def _add_unread(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    coordinator: EvCloudCoordinator[Any],
    *,
    initial: bool,
) -> None:
    """Show a listed device that cannot be read yet, and watch for its first read.

    The registry device keeps the name it has; a new one is named as listed.
    Once read (at a listing, or when the user refreshes an entity), the device
    joins the read ones and gets the rest of its entities.
    """
    runtime = entry.runtime_data
    device = coordinator.device
    key = device.key
    identifiers = {(DOMAIN, key)}
    registry = dr.async_get(hass)
    info = DeviceInfo(identifiers=identifiers)
    if not any(
        identifiers & known.identifiers
        for known in dr.async_entries_for_config_entry(registry, entry.entry_id)
    ):
        info["name"] = device.listed_name
    registry.async_get_or_create(config_entry_id=entry.entry_id, **info)
    coordinator.update_interval = None  # read again at the next listing
    coordinator.mark_unread(info)
    runtime.unread[key] = coordinator

    @callback
    def _first_read() -> None:
        if coordinator.data is None or runtime.unread.get(key) is not coordinator:
            return
        remove_listener()
        del runtime.unread[key]
        runtime.coordinators[key] = coordinator
        LOGGER.info("%s: %s can be read now", entry.title, key)
        async_dispatcher_send(hass, signal_device_added(entry), coordinator)

    remove_listener = coordinator.async_add_listener(_first_read)
    if not initial:
        async_dispatcher_send(hass, signal_device_added(entry), coordinator)


def _read_later(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    devices: dict[str, EvCloudDevice[Any]],
    wait: float,
) -> None:
    """Read `devices` for the first time in `wait` seconds, if still listed."""
    runtime = entry.runtime_data

    async def _async_read(_now: datetime) -> None:
        runtime.cancel_read_later = None
        still = {key: d for key, d in devices.items() if key in runtime.listed}
        await _async_read_new(hass, entry, still, initial=False, announce=False)

    runtime.cancel_pending()
    LOGGER.debug(
        "%s: %d devices are read in %.0f s (request budget)",
        entry.title,
        len(devices),
        wait,
    )
    runtime.cancel_read_later = async_call_later(hass, math.ceil(wait) + 1, _async_read)


def _remove_unlisted_devices(hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
    """Remove registry devices (and their entities) the account no longer lists."""
    registry = dr.async_get(hass)
    listed = {(DOMAIN, key) for key in entry.runtime_data.listed}
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not device.identifiers & listed:
            registry.async_remove_device(device.id)
