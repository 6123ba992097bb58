"""ev.energy accounts: every vehicle and charger of a user, within the hourly budget.

The account reads all vehicles (with their newest status) in one request and
all chargers in another, once per poll cycle, and every vehicle takes its part
from that; the newest location and the command history are read every few polls.
The service's rate-limit headers set the pace (`new_budget`): never more than
80 % of the hourly allowance for polls, the rest kept for commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_entry_oauth2_flow
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.util import dt as dt_util

from ...api import (
    AccessDeniedError,
    AuthenticationError,
    CommandRejectedError,
    DeviceOfflineError,
)
from ...api.evenergy import (
    ClientCredentials,
    CommandLog,
    EvEnergyClient,
    Evse,
    Vehicle,
    new_budget,
)
from ...const import DOMAIN, LOGGER
from ...device import (
    ChargeControl,
    DeviceData,
    EvCloudAccount,
    EvCloudDevice,
    PollPolicy,
)
from ...models import EvCloudConfigEntry
from .const import AUTH_OAUTH, CONF_AUTH, CONF_BASE_URL, CONF_USER_ID, NAME
from .entities import CHARGER_ENTITIES, VEHICLE_ENTITIES
from .oauth import EvEnergyOAuth, OAuthToken
from .state import ChargerState, VehicleState

POLICY = PollPolicy(active=60, idle=300, min_active=30, min_idle=60)
# The location and the command history are read when the vehicle's charging,
# plug or driving state changed (a command or a trip may be behind it), else
# every EXTRAS_EVERY polls. The two list reads (vehicles, chargers) are shared
# by every device of the account, once per poll cycle.
EXTRAS_EVERY: Final = 10
EXTRA_REQUESTS: Final = 2  # the location and the command history
EXTRA_REQUESTS_PER_POLL: Final = EXTRA_REQUESTS / EXTRAS_EVERY
LIST_REQUESTS: Final = 2
VEHICLES: Final = "vehicles"
EVSES: Final = "evses"
# Data is stale when it is older than the poll interval plus this grace.
STALE_GRACE: Final = 60
EVENT_COMMAND: Final = f"{DOMAIN}_command"


def policy_for(data: Mapping[str, Any]) -> PollPolicy:
    """ev.energy poll intervals."""
    return POLICY


class EvEnergyAccount(EvCloudAccount):
    """One ev.energy user (signed in with OAuth, or through an organisation)."""

    device_list_interval = timedelta(minutes=30)

    def __init__(self, hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
        """The client of the entry's user; the token comes at setup."""
        self.hass = hass
        self.entry = entry
        self.budget = new_budget()
        self._session: config_entry_oauth2_flow.OAuth2Session | None = None
        self.client = EvEnergyClient(
            async_get_clientsession(hass),
            self._token_getter(),
            base_url=entry.data[CONF_BASE_URL],
            user_id=None
            if entry.data[CONF_AUTH] == AUTH_OAUTH
            else entry.data[CONF_USER_ID],
            budget=self.budget,
        )
        self.vehicles: dict[str, EvEnergyVehicle] = {}
        self.chargers: dict[str, EvEnergyCharger] = {}
        self._vehicle_list: dict[str, Vehicle] = {}
        self._evse_list: dict[str, Evse] = {}
        self._read_at: dict[str, datetime] = {}  # list -> when it was read
        self._lists_lock = asyncio.Lock()
        # Each device's current poll interval (s): the lists are read once per
        # the shortest of them, however the devices' polls fall.
        self._intervals: dict[str, float] = {}
        self.command_history = True  # False once the service refused it (scope)

    def _token_getter(self) -> Callable[[], Awaitable[str]]:
        data = self.entry.data
        if data[CONF_AUTH] != AUTH_OAUTH:
            return ClientCredentials(
                async_get_clientsession(self.hass),
                data[CONF_BASE_URL],
                data["client_id"],
                data["client_secret"],
            )

        return OAuthToken(self.hass, self.entry, lambda: self._session)

    async def async_setup(self) -> None:
        """Find the entry's application credential (OAuth entries)."""
        if self.entry.data[CONF_AUTH] != AUTH_OAUTH:
            return
        try:
            credential = (
                await config_entry_oauth2_flow.async_get_config_entry_implementation(
                    self.hass, self.entry
                )
            )
        except ValueError as err:
            # The application credential was deleted: sign in again with another.
            raise AuthenticationError("The application credential is gone") from err
        except HomeAssistantError as err:
            raise DeviceOfflineError(
                "Application credentials are not available"
            ) from err
        assert isinstance(
            credential, config_entry_oauth2_flow.LocalOAuth2Implementation
        )
        implementation = EvEnergyOAuth(
            self.hass, credential, self.entry.data[CONF_BASE_URL]
        )
        self._session = config_entry_oauth2_flow.OAuth2Session(
            self.hass, self.entry, implementation
        )

    async def async_list_devices(self) -> list[EvCloudDevice[Any]]:
        """Every vehicle that is not disabled, and every charger."""
        await self._async_read_lists(VEHICLES, EVSES, force=True)
        for vehicle_id in self._vehicle_list:
            if vehicle_id not in self.vehicles:
                self.vehicles[vehicle_id] = EvEnergyVehicle(self, vehicle_id)
        for evse_id in self._evse_list:
            if evse_id not in self.chargers:
                self.chargers[evse_id] = EvEnergyCharger(self, evse_id)
        self._sync_consumers()
        return [
            *(self.vehicles[v] for v in self._vehicle_list),
            *(self.chargers[e] for e in self._evse_list),
        ]

    def _sync_consumers(self) -> None:
        for gone in set(self.vehicles) - set(self._vehicle_list):
            self._intervals.pop(self.vehicles.pop(gone).key, None)
        for gone in set(self.chargers) - set(self._evse_list):
            self._intervals.pop(self.chargers.pop(gone).key, None)
        self.budget.consumers = len(self.vehicles) + len(self.chargers)

    async def _async_read_lists(self, *lists: str, force: bool = False) -> None:
        """Read the named lists (VEHICLES, EVSES), each at most once per poll cycle.

        The devices' polls often fall together: the first reads, the others
        wait for it and take its result. Each list keeps its own read time, so
        one that was read is not read again because the other was refused.
        """
        async with self._lists_lock:
            now = dt_util.utcnow()
            shortest = min(self._intervals.values(), default=float(POLICY.min_active))
            fresh = timedelta(seconds=shortest * 0.9)
            for name in lists:
                read_at = self._read_at.get(name)
                if not force and read_at is not None and now - read_at < fresh:
                    continue
                if name == VEHICLES:
                    vehicles = await self.client.async_get_vehicles()
                    self._vehicle_list = {
                        v.vehicle_id: v for v in vehicles if not v.disabled
                    }
                else:
                    evses = await self.client.async_get_evses()
                    self._evse_list = {e.evse_id: e for e in evses}
                self._read_at[name] = now

    def poll_interval(self, device: EvCloudDevice[Any], usual: timedelta) -> timedelta:
        """`usual`, or longer when the account's hourly budget needs it.

        A poll cycle of the whole account costs the two list reads plus each
        vehicle's own requests; the cycle is spread so that all of it stays
        within the polls' share of the allowance.
        """
        devices = max(self.budget.consumers, 1)
        per_device = EXTRA_REQUESTS_PER_POLL + LIST_REQUESTS / devices
        floor = self.budget.sustainable_interval(per_device)
        seconds = max(usual.total_seconds(), floor)
        self._intervals[device.key] = seconds
        return timedelta(seconds=seconds)

    def forget_lists(self) -> None:
        """After a command: the next read asks the service again."""
        self._read_at.clear()

    def listed_vehicle(self, vehicle_id: str) -> Vehicle | None:
        """The vehicle as the newest list read shows it, without reading."""
        return self._vehicle_list.get(vehicle_id)

    def listed_evse(self, evse_id: str) -> Evse | None:
        """The charger as the newest list read shows it, without reading."""
        return self._evse_list.get(evse_id)

    async def async_vehicle(self, vehicle_id: str, *, fresh: bool = False) -> Vehicle:
        """The vehicle as the newest list read shows it (`fresh`: read it now)."""
        await self._async_read_lists(VEHICLES, force=fresh)
        if (vehicle := self._vehicle_list.get(vehicle_id)) is None:
            raise DeviceOfflineError("The vehicle is no longer listed by ev.energy")
        return vehicle

    async def async_evse(self, evse_id: str, *, fresh: bool = False) -> Evse:
        """The charger as the newest list read shows it (`fresh`: read it now)."""
        await self._async_read_lists(EVSES, force=fresh)
        if (evse := self._evse_list.get(evse_id)) is None:
            raise DeviceOfflineError("The charger is no longer listed by ev.energy")
        return evse

    async def async_new_commands(
        self, vehicle_id: str, since: datetime | None
    ) -> list[CommandLog]:
        """Commands logged since `since` (newest first), when the scope allows."""
        if not self.command_history:
            return []
        try:
            return await self.client.async_get_command_logs(vehicle_id, since)
        except AccessDeniedError:
            self.command_history = False
            LOGGER.info(
                "%s: the OAuth client lacks the debug:read scope; command history"
                " is not shown",
                self.entry.title,
            )
            return []

    def fire_command_event(self, vehicle: EvEnergyVehicle, command: CommandLog) -> None:
        """One Home Assistant event per command the service logged."""
        self.hass.bus.async_fire(
            EVENT_COMMAND,
            {
                "provider": NAME,
                "device_key": vehicle.key,
                "command": (command.command or "").lower() or None,
                "logged_at": command.logged_at.isoformat()
                if command.logged_at
                else None,
                "current_milliamps": command.current_milliamps,
            },
        )

    def diagnostics(self) -> dict[str, Any]:
        """Budget and scope facts a bug report needs."""
        rate = self.client.rate_limit
        return {
            "hourly_limit": rate.limit,
            "requests_left": rate.remaining,
            "poll_budget_per_minute": round(self.budget.per_minute, 2),
            "command_history": "shown"
            if self.command_history
            else "missing debug:read scope",
        }


class EvEnergyVehicle(EvCloudDevice[VehicleState]):
    """One vehicle of the account."""

    provider = NAME
    entities = VEHICLE_ENTITIES
    poll_policy = POLICY

    def __init__(self, account: EvEnergyAccount, vehicle_id: str) -> None:
        """Read `vehicle_id` through `account`."""
        super().__init__(vehicle_id)
        self.account = account
        self._polls = 0
        self._commanded = False  # a command was sent: read its log next poll
        self._last: VehicleState | None = None
        self._interval = float(POLICY.idle)
        self._fresh = False  # a read was asked for: read the list itself

    async def async_fetch(self) -> DeviceData[VehicleState]:
        """The vehicle from the account's list; location and commands when needed.

        The poll takes the requests it may need from the budget first (the
        list, the location and the command history), so that it runs whole or
        comes a few seconds later instead of being refused halfway.
        """
        with self.account.budget.prepaid(1 + EXTRA_REQUESTS, self.key):
            return await self._async_fetch()

    def want_fresh(self) -> None:
        """The next poll reads the list (and the location) itself."""
        self._fresh = True

    async def _async_fetch(self) -> DeviceData[VehicleState]:
        fresh = self._fresh
        vehicle = await self.account.async_vehicle(self.device_id, fresh=fresh)
        self._fresh = False
        last = self._last
        extras = (
            last is None
            or fresh
            or self._commanded
            or _moment(last.vehicle) != _moment(vehicle)
            or self._polls % EXTRAS_EVERY == 0
        )
        self._polls += 1
        self._commanded = False
        location = last.location if last else None
        command = last.last_command if last else None
        if extras:
            location = await self.account.client.async_get_latest_location(
                self.device_id
            )
            since = command.logged_at if command else None
            new = await self.account.async_new_commands(self.device_id, since)
            new = [
                c for c in new if since is None or (c.logged_at and c.logged_at > since)
            ]
            if new:
                if last is not None:  # the history before setup is not news
                    for logged in reversed(new):
                        self.account.fire_command_event(self, logged)
                command = new[0]
        state = VehicleState(
            vehicle=vehicle,
            location=location,
            last_command=command,
            requests_left=self.account.client.rate_limit.remaining,
        )
        self._last = state
        sampled = vehicle.status.sampled_at if vehicle.status else None
        age = (dt_util.utcnow() - sampled).total_seconds() if sampled else None
        online = age is not None and age <= self._interval + STALE_GRACE
        return DeviceData(state=state, online=online, data_time=sampled)

    def next_interval(
        self, data: DeviceData[VehicleState], options: Mapping[str, Any]
    ) -> timedelta:
        """The usual interval, within the account's hourly budget."""
        usual = super().next_interval(data, options) or timedelta(seconds=POLICY.idle)
        interval = self.account.poll_interval(self, usual)
        self._interval = interval.total_seconds()
        return interval

    def is_active(self, state: VehicleState) -> bool:
        """Poll faster while the vehicle is plugged in or driving."""
        status = state.vehicle.status
        return bool(status and (status.is_plugged_in or status.state == "driving"))

    @property
    def listed_name(self) -> str:
        """Named as the account's list names it (before it could be read)."""
        return self._name(self.account.listed_vehicle(self.device_id))

    def _name(self, vehicle: Vehicle | None) -> str:
        """As in the ev.energy app."""
        return (vehicle and vehicle.description) or f"ev.energy {self.device_id[-6:]}"

    def device_info(self, state: VehicleState) -> DeviceInfo:
        """The vehicle, named as in the ev.energy app."""
        return DeviceInfo(
            identifiers={(DOMAIN, self.key)},
            manufacturer="ev.energy",
            model="Vehicle",
            name=self._name(state.vehicle),
        )

    @property
    def charge_control(self) -> ChargeControl[VehicleState]:
        """Boost (charge now) on the current smart charging session."""
        return self

    async def async_start_charging(self, state: VehicleState) -> None:
        """Boost the current session; a boosted one stays as it is."""
        await self._async_boost(state, start=True)

    async def async_stop_charging(self, state: VehicleState) -> None:
        """End a boost (back to smart charging); nothing to do without one."""
        await self._async_boost(state, start=False)

    async def _async_boost(self, state: VehicleState, *, start: bool) -> None:
        name = state.vehicle.description or self.device_id
        if not state.plugged_in:
            raise _error("evenergy_not_plugged_in", name, invalid=True)
        client = self.account.client
        session = await client.async_get_active_session(self.device_id)
        if session is None:
            raise _error("evenergy_no_session", name, invalid=True)
        if (session.mode == "boost") == start:
            return  # already as asked
        try:
            if start:
                await client.async_boost_start(session.session_id)
            else:
                await client.async_boost_end(session.session_id)
        except CommandRejectedError as err:
            key = "evenergy_boost_refused" if start else "evenergy_not_boosting"
            raise _error(key, name, str(err)) from err
        except DeviceOfflineError as err:
            raise _error("evenergy_unreachable", name, str(err)) from err
        self._commanded = True
        self.account.forget_lists()

    async def async_set_smart_charging(self, enabled: bool) -> None:
        """Let ev.energy schedule charging (or not)."""
        await self.account.client.async_update_vehicle(
            self.device_id, smart_charging_enabled=enabled
        )
        self.account.forget_lists()

    async def async_set_charge_limit(self, percentage: float) -> None:
        """The highest state of charge smart charging aims for."""
        await self.account.client.async_update_vehicle(
            self.device_id, maximum_charge_limit_percentage=int(percentage)
        )
        self.account.forget_lists()


class EvEnergyCharger(EvCloudDevice[ChargerState]):
    """One charger (EVSE) of the account."""

    provider = NAME
    entities = CHARGER_ENTITIES
    poll_policy = POLICY

    def __init__(self, account: EvEnergyAccount, evse_id: str) -> None:
        """Read `evse_id` through `account`."""
        super().__init__(evse_id)
        self.account = account
        self._interval = float(POLICY.idle)
        self._fresh = False

    def want_fresh(self) -> None:
        """The next poll reads the list itself."""
        self._fresh = True

    async def async_fetch(self) -> DeviceData[ChargerState]:
        """The charger from the account's list (a refused read comes a bit later)."""
        with self.account.budget.prepaid(1, self.key):
            evse = await self.account.async_evse(self.device_id, fresh=self._fresh)
        self._fresh = False
        sampled = evse.status.sampled_at if evse.status else None
        age = (dt_util.utcnow() - sampled).total_seconds() if sampled else None
        online = age is not None and age <= self._interval + STALE_GRACE
        return DeviceData(state=ChargerState(evse), online=online, data_time=sampled)

    def next_interval(
        self, data: DeviceData[ChargerState], options: Mapping[str, Any]
    ) -> timedelta:
        """The usual interval, within the account's hourly budget."""
        usual = super().next_interval(data, options) or timedelta(seconds=POLICY.idle)
        interval = self.account.poll_interval(self, usual)
        self._interval = interval.total_seconds()
        return interval

    def is_active(self, state: ChargerState) -> bool:
        """Poll faster while a car is plugged in."""
        return bool(state.evse.status and state.evse.status.is_plugged_in)

    @property
    def listed_name(self) -> str:
        """Named as the account's list names it (before it could be read)."""
        return self._name(self.account.listed_evse(self.device_id))

    def _name(self, evse: Evse | None) -> str:
        """By its charge point id."""
        return f"Charger {(evse and evse.cpid) or self.device_id[-6:]}"

    def device_info(self, state: ChargerState) -> DeviceInfo:
        """The charger, by its charge point id."""
        return DeviceInfo(
            identifiers={(DOMAIN, self.key)},
            manufacturer="ev.energy",
            model="Charger",
            name=self._name(state.evse),
        )


def _moment(vehicle: Vehicle) -> tuple[object, ...]:
    """What changes when a command took effect or a trip started or ended.

    Not the odometer: it changes with every poll while driving, and reading the
    location and commands each time would use the requests of ten polls.
    """
    status = vehicle.status
    if status is None:
        return ()
    return (status.is_charging, status.is_plugged_in, status.state)


def _error(
    key: str, name: str, detail: str = "", *, invalid: bool = False
) -> HomeAssistantError:
    """A translated refusal; `invalid`: the call cannot work in this state."""
    kind = ServiceValidationError if invalid else HomeAssistantError
    return kind(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders={"name": name, "error": detail},
    )


def create_account(hass: HomeAssistant, entry: EvCloudConfigEntry) -> EvEnergyAccount:
    """The account of an ev.energy entry."""
    return EvEnergyAccount(hass, entry)
