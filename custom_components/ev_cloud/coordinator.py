"""One DataUpdateCoordinator per device, whatever the provider."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, HomeAssistantError
from homeassistant.helpers import issue_registry as ir
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
from .const import CONF_ACTIVE_INTERVAL, CONF_IDLE_INTERVAL, DOMAIN, LOGGER
from .device import DeviceData, EvCloudDevice


@dataclass(slots=True)
class EvCloudRuntimeData:
    """What a loaded entry holds: one coordinator per device, by device key."""

    coordinators: dict[str, EvCloudCoordinator[Any]]


type EvCloudConfigEntry = ConfigEntry[EvCloudRuntimeData]


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
        self.update_interval = self._interval(active=False)

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
        self.update_interval = self._interval(
            active=data.online and self.device.is_active(data.state)
        )
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

    def _interval(self, *, active: bool) -> timedelta:
        policy = self.device.poll_policy
        options = self.config_entry.options
        if active:
            seconds = options.get(CONF_ACTIVE_INTERVAL, policy.active)
        else:
            seconds = options.get(CONF_IDLE_INTERVAL, policy.idle)
        return timedelta(seconds=seconds)

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
