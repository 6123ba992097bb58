"""Coordinators, one per device, and the table that maps api errors to HA's.

A device is polled, fed by pushed data, or both.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import replace
from datetime import timedelta
import math
from typing import Literal

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import (
    ConfigEntryAuthFailed,
    ConfigEntryNotReady,
    HomeAssistantError,
)
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .api import (
    AccessDeniedError,
    AuthenticationError,
    CloudApiDisabledError,
    CommandRejectedError,
    DeviceOfflineError,
    EvCloudError,
    NotSupportedError,
    PollPostponedError,
    RateLimitedError,
    StaleDataError,
    VehicleNotAvailableError,
)
from .const import DOMAIN, LOGGER
from .device import DeviceData, EvCloudDevice, RepairIssue
from .link import signal_charger_reading
from .models import EvCloudConfigEntry
from .readings import charger_reading

type Phase = Literal["setup", "update", "command"]

# Seconds a poll put off by our own budget may wait with the values it showed
# before (longer, and the device shows it cannot be read).
MAX_POSTPONE = 60
# Failed reads of a device never read before that make a repair issue: the one
# at setup (logged) and the next one (it persists).
UNREAD_REPAIR_AFTER = 2

# api error -> exception translation (first match wins); the message of the api
# error fills {error}. The phase decides the exception class (`translate_error`).
ERROR_TRANSLATIONS: tuple[tuple[type[EvCloudError], str], ...] = (
    (AuthenticationError, "invalid_auth"),
    (AccessDeniedError, "access_denied"),
    (RateLimitedError, "rate_limited"),
    (CloudApiDisabledError, "cloud_api_disabled"),
    (VehicleNotAvailableError, "vehicle_not_available"),
    (CommandRejectedError, "command_rejected"),
    (NotSupportedError, "command_not_supported"),
    (DeviceOfflineError, "device_offline"),
    (EvCloudError, "update_failed"),
)
# Commands that fail for a reason the table does not name say "command failed".
_GENERIC = {
    "setup": "update_failed",
    "update": "update_failed",
    "command": "command_failed",
}


def translate_error(err: EvCloudError, phase: Phase) -> HomeAssistantError:
    """The Home Assistant exception for an api error in setup, update or command."""
    key = next(key for kind, key in ERROR_TRANSLATIONS if isinstance(err, kind))
    if key == "update_failed":
        key = _GENERIC[phase]
    placeholders = {"error": str(err)}
    if isinstance(err, AuthenticationError) and phase != "command":
        return ConfigEntryAuthFailed(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders=placeholders,
        )
    if phase == "setup":
        return ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders=placeholders,
        )
    if phase == "update":
        return UpdateFailed(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders=placeholders,
            retry_after=_retry_after(err),
        )
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders,
    )


def _retry_after(err: EvCloudError) -> float | None:
    """Seconds before the next poll may go after a refusal, None for the interval.

    The coordinator schedules from the loop clock cut to whole seconds, so a
    poll may fire up to a second early: without the extra second, a wait under
    a second would come back before the budget refilled, again and again.
    """
    if not isinstance(err, RateLimitedError) or err.retry_after is None:
        return None
    return math.ceil(err.retry_after) + 1


class EvCloudCoordinator[StateT](DataUpdateCoordinator[DeviceData[StateT]]):
    """Reads one device at an interval that follows what the device is doing.

    A device whose service pushes data hands it over with `DevicePush`: pushed
    readings replace the polled ones, and a device without a poll policy is
    never polled at all.
    """

    config_entry: EvCloudConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: EvCloudConfigEntry,
        device: EvCloudDevice[StateT],
    ) -> None:
        """Read `device` for `entry`, starting at its idle interval."""
        self.device = device
        self._device_info: DeviceInfo | None = None
        # The repair issues of this device that exist (None: not looked up yet).
        self._issues: set[str] | None = None
        # Failed reads while the device was never read (RateLimitedError aside).
        self._unread_failures = 0
        # A read was asked for since the last poll (see async_request_refresh).
        self._asked = False
        # True while a charger link says its charger charges this vehicle.
        self.covered = False
        # Why the last read failed (None: it did not).
        self.last_read_error: EvCloudError | None = None
        # (entity class, description key) of the entities made for the device.
        self.entities_added: set[tuple[object, str]] = set()
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {device.key}",
            # A reading equal to the one shown (nothing new, or a poll put off)
            # writes no entity state.
            always_update=False,
        )
        self.update_interval = device.initial_interval(entry.options)
        device.set_push_listener(self.async_push)

    async def async_shutdown(self) -> None:
        """Stop polling and stop taking pushed data."""
        self.device.set_push_listener(None)
        await super().async_shutdown()

    async def async_first_read(self) -> None:
        """Read the device once, quietly: errors are raised, not logged."""
        data = await self._async_read()
        self.async_set_updated_data(data)

    def mark_unread(self, device_info: DeviceInfo) -> None:
        """Show the device, registered as `device_info`, as unavailable until read.

        Its first reading then updates the registry with the device's own info.
        Home Assistant logs the next failed poll only after one succeeded.
        """
        self.last_update_success = False
        self._device_info = device_info

    async def async_request_refresh(self) -> None:
        """A read someone asked for (an entity's update, a command): fresh data.

        Scheduled polls share what the account read in their cycle; this one
        reads the service, when the budget allows.
        """
        self.device.want_fresh()
        self._asked = True
        await super().async_request_refresh()

    async def _async_update_data(self) -> DeviceData[StateT]:
        asked, self._asked = self._asked, False
        try:
            return await self._async_read()
        except PollPostponedError as err:
            wait = _retry_after(err)
            interval = self.update_interval
            if asked:
                LOGGER.debug(
                    "%s: the read asked for waits %s s for the request budget",
                    self.name,
                    wait,
                )
                if self.data is not None and wait is not None and interval:
                    # The values of the last poll stay; no later than its next.
                    wait = min(wait, interval.total_seconds())
                    self.update_interval = timedelta(seconds=wait)
                    return self.data
            if self.data is None or wait is None or wait > MAX_POSTPONE:
                raise translate_error(err, "update") from err
            # Nothing failed: the values shown stay, and are read in a moment.
            self.update_interval = timedelta(seconds=wait)
            return self.data
        except EvCloudError as err:
            raise translate_error(err, "update") from err

    async def _async_read(self) -> DeviceData[StateT]:
        """Read the device; keep the values of one that stopped reporting."""
        try:
            try:
                data = await self.device.async_fetch()
            except StaleDataError as err:
                data = await self._outdated(err)
        except EvCloudError as err:
            self.last_read_error = err
            self._set_issue(err)
            raise
        self.last_read_error = None
        self._set_issue(None)
        self._accept(data)
        return data

    def async_push(self, data: DeviceData[StateT]) -> None:
        """Show a reading the service pushed, as if it had been polled."""
        self._accept(data)
        self.async_set_updated_data(data)

    def _accept(self, data: DeviceData[StateT]) -> None:
        """Bookkeeping for every new reading, polled or pushed."""
        self._log_online_change(data.online)
        self._update_device_registry(data.state)
        self.update_interval = self._next_interval(data)
        if self.device.entities.role == "charger":
            async_dispatcher_send(
                self.hass,
                signal_charger_reading(self.device.key),
                charger_reading(self.device, data),
            )

    def _next_interval(self, data: DeviceData[StateT]) -> timedelta | None:
        options = self.config_entry.options
        if self.covered:
            return self.device.covered_interval(options)
        return self.device.next_interval(data, options)

    def set_covered(self, covered: bool) -> None:
        """A charger link's charger charges this vehicle (True), or no longer.

        While covered, the device is polled at its `covered_interval`.
        """
        if covered == self.covered:
            return
        self.covered = covered
        data: DeviceData[StateT] | None = self.data  # None until read
        if data is None:
            return
        self.update_interval = self._next_interval(data)
        if self.update_interval is None:
            self._unschedule_refresh()

    async def async_command(self, command: Awaitable[None]) -> None:
        """Run a command on the device, then refresh (debounced) to show its effect."""
        try:
            await command
        except EvCloudError as err:
            if isinstance(err, AuthenticationError):
                self.config_entry.async_start_reauth(self.hass)
            raise translate_error(err, "command") from err
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

    def _update_device_registry(self, state: StateT) -> None:
        """Keep firmware, name and model in the device registry current."""
        info = self.device.device_info(state)
        if info == self._device_info:
            return
        if self._device_info is not None:
            # The entities registered the first one; later changes update it.
            dr.async_get(self.hass).async_get_or_create(
                config_entry_id=self.config_entry.entry_id, **info
            )
        self._device_info = info

    def _issue_for(self, error: EvCloudError | None) -> RepairIssue | None:
        """The device's own repair issue, else one for a device that stays unread."""
        if (issue := self.device.repair_issue(error)) is not None:
            return issue
        read: DeviceData[StateT] | None = self.data  # None until first read
        if error is None or read is not None:
            return None
        if not isinstance(error, RateLimitedError):
            self._unread_failures += 1
        if self._unread_failures < UNREAD_REPAIR_AFTER:
            return None
        return RepairIssue(
            "device_unreadable",
            {"device_id": self.device.device_id, "error": str(error)},
        )

    def _set_issue(self, error: EvCloudError | None) -> None:
        """Show the repair issue the device asks for; drop those it no longer does."""
        issue = self._issue_for(error)
        prefix = f"{self.config_entry.entry_id}_{self.device.key}_"
        wanted = None if issue is None else prefix + issue.translation_key
        if self._issues is None:
            # Once: issues an earlier setup of the entry left (every poll comes
            # here, and Home Assistant may hold many issues of all integrations).
            self._issues = {
                issue_id
                for domain, issue_id in ir.async_get(self.hass).issues
                if domain == DOMAIN and issue_id.startswith(prefix)
            }
        for issue_id in self._issues - {wanted}:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
        self._issues = set() if wanted is None else {wanted}
        if issue is None or wanted is None:
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            wanted,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=issue.translation_key,
            translation_placeholders={
                "name": self.config_entry.title,
                **(issue.placeholders or {}),
            },
        )
