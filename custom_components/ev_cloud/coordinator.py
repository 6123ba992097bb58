"""One DataUpdateCoordinator per device, whatever the provider."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryNotReady,
    HomeAssistantError,
)
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .api import (
    AuthenticationError,
    CloudApiDisabledError,
    CommandRejectedError,
    DeviceOfflineError,
    EvCloudError,
    RateLimitedError,
    StaleDataError,
)
from .const import DOMAIN, LOGGER
from .device import DeviceData, EvCloudAccount, EvCloudDevice


@dataclass(slots=True)
class EvCloudRuntimeData:
    """What a loaded entry holds: its account and one coordinator per device key."""

    account: EvCloudAccount
    coordinators: dict[str, EvCloudCoordinator[Any]] = field(default_factory=dict)


type EvCloudConfigEntry = ConfigEntry[EvCloudRuntimeData]


def signal_device_added(entry: EvCloudConfigEntry) -> str:
    """Dispatcher signal sent with the coordinator of a device added at runtime."""
    return f"{DOMAIN}_{entry.entry_id}_device_added"


async def async_sync_devices(
    hass: HomeAssistant, entry: EvCloudConfigEntry, *, initial: bool = False
) -> None:
    """Give every device the account lists a coordinator, and drop the others.

    At setup (`initial`) a failed listing, or devices none of which can be read,
    propagate so that setup retries; later a failed listing keeps the devices as
    they are, and a device that cannot be read waits for the next listing.
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
    failures: list[ConfigEntryNotReady] = []
    for key, device in listed.items():
        if key in runtime.coordinators:
            continue
        if not initial:
            try:
                # A quiet first read: an unreadable new device would otherwise
                # log an error at every listing.
                await device.async_fetch()
            except EvCloudError as err:
                LOGGER.debug("%s: %s cannot be read yet: %s", entry.title, key, err)
                continue
        coordinator = EvCloudCoordinator(hass, entry, device)
        try:
            if initial:
                # Raises ConfigEntryNotReady, or ConfigEntryAuthFailed (propagated).
                await coordinator.async_config_entry_first_refresh()
            else:
                await coordinator.async_refresh()
        except ConfigEntryNotReady as err:
            # One unreadable vehicle must not keep the others of the account
            # away; it is tried again at the next listing.
            LOGGER.info("%s: %s cannot be read yet: %s", entry.title, key, err)
            failures.append(err)
            await coordinator.async_shutdown()
            continue
        runtime.coordinators[key] = coordinator
        if not initial:
            LOGGER.info("%s: new device %s", entry.title, key)
            async_dispatcher_send(hass, signal_device_added(entry), coordinator)
    if failures and not runtime.coordinators:
        raise failures[0]
    for key in set(runtime.coordinators) - set(listed):
        LOGGER.info("%s: device %s is gone", entry.title, key)
        await runtime.coordinators.pop(key).async_shutdown()
    _remove_unlisted_devices(hass, entry)


def _remove_unlisted_devices(hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
    """Remove registry devices (and their entities) the account no longer lists."""
    registry = dr.async_get(hass)
    current = {(DOMAIN, key) for key in entry.runtime_data.coordinators}
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not device.identifiers & current:
            registry.async_remove_device(device.id)


class EvCloudCoordinator[StateT](DataUpdateCoordinator[DeviceData[StateT]]):
    """Polls one device at an interval that follows what the device is doing."""

    config_entry: EvCloudConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: EvCloudConfigEntry,
        device: EvCloudDevice[StateT],
    ) -> None:
        """Poll `device` for `entry`, starting at its idle interval."""
        self.device = device
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {device.key}",
        )
        self.update_interval = device.initial_interval(entry.options)

    async def _async_update_data(self) -> DeviceData[StateT]:
        try:
            try:
                data = await self.device.async_fetch()
            except StaleDataError as err:
                data = await self._outdated(err)
        except AuthenticationError as err:
            raise ConfigEntryAuthFailed(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from err
        except CloudApiDisabledError as err:
            self._set_cloud_api_issue(active=True)
            raise UpdateFailed(
                translation_domain=DOMAIN, translation_key="cloud_api_disabled"
            ) from err
        except RateLimitedError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="rate_limited",
                retry_after=err.retry_after,
            ) from err
        except EvCloudError as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="update_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        self._set_cloud_api_issue(active=False)
        self._log_online_change(data.online)
        options = self.config_entry.options
        self.update_interval = self.device.next_interval(data, options)
        return data

    async def async_command(self, command: Awaitable[None]) -> None:
        """Run a command on the device, then refresh (debounced) to show its effect."""
        try:
            await command
        except AuthenticationError as err:
            self.config_entry.async_start_reauth(self.hass)
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="invalid_auth"
            ) from err
        except CommandRejectedError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_rejected",
                translation_placeholders={"error": str(err)},
            ) from err
        except (DeviceOfflineError, CloudApiDisabledError) as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="device_offline"
            ) from err
        except EvCloudError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="command_failed",
                translation_placeholders={"error": str(err)},
            ) from err
        await self.async_request_refresh()

    async def _outdated(self, err: StaleDataError) -> DeviceData[StateT]:
        """Keep the last values, marked offline, when the device stopped reporting."""
        previous: DeviceData[StateT] | None = self.data
        if previous is None:
            # Nothing shown yet: ask the service for what it last received.
            previous = await self.device.async_fetch_last_known(err)
        data_time = previous.data_time
        if err.age is not None:
            data_time = dt_util.utcnow() - timedelta(seconds=err.age)
        return replace(previous, online=False, data_time=data_time)

    def _log_online_change(self, online: bool) -> None:
        was_online = self.data.online if self.data is not None else True
        if was_online and not online:
            LOGGER.info("%s stopped reporting; showing its last values", self.name)
        elif online and not was_online:
            LOGGER.info("%s reports again", self.name)

    def _set_cloud_api_issue(self, *, active: bool) -> None:
        # Prefixed with the entry id so that removing the entry can find it.
        issue_id = f"{self.config_entry.entry_id}_{self.device.key}_cloud_api_disabled"
        if not active:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="cloud_api_disabled",
            translation_placeholders={"name": self.config_entry.title},
        )
