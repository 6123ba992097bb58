"""EVLinkHA accounts: vehicles polled within a monthly call allowance, and pushed.

EVLinkHA counts calls against an allowance in a rolling 30 days (free 300 per user,
basic 2,000 and pro 10,000 per vehicle). EV Cloud keeps the calls it made, day by
day, in Home Assistant's storage, reads every vehicle with one call (the vehicle
list), polls at the pace the allowance keeps up with and keeps a share for
commands. Pro accounts push vehicle data to a webhook, so polling can be rare.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

from aiohttp import web
from homeassistant.components import webhook
from homeassistant.const import EVENT_CORE_CONFIG_UPDATE
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.util import dt as dt_util

from ...api import (
    AccessDeniedError,
    CommandRejectedError,
    DeviceOfflineError,
    EvCloudError,
    QuotaExhaustedError,
)
from ...api.budget import QuotaBudget
from ...api.evlinkha import EvLinkClient, EvLinkVehicle, parse_push
from ...const import CONF_SERVER_URL, DOMAIN, LOGGER
from ...device import (
    ChargeControl,
    DeviceData,
    EvCloudAccount,
    EvCloudDevice,
    PollPolicy,
    RepairIssue,
)
from ...models import EvCloudConfigEntry
from ...quota import StoredQuota, async_load_quota
from .const import (
    COMMAND_TIERS,
    CONF_ALLOWANCE_BASIC,
    CONF_ALLOWANCE_FREE,
    CONF_ALLOWANCE_PRO,
    CONF_WEBHOOK_ID,
    DEFAULT_ALLOWANCES,
    NAME,
)
from .entities import ENTITIES
from .push import async_check_reachable, async_drop_issue, external_url
from .state import VehicleState

POLICY = PollPolicy(active=300, idle=1800, min_active=60, min_idle=300)
COMMAND_RESERVE: Final = 0.1  # of the allowance, for tiers that may send commands
# A repair once the calls counted hold polls to less than half their steady pace.
LOW_QUOTA_SLOWDOWN: Final = 2.0
# Data is stale when it is older than the poll interval plus this grace.
STALE_GRACE: Final = 60


def policy_for(data: Mapping[str, Any]) -> PollPolicy:
    """EVLinkHA poll intervals (the allowance may ask for longer ones)."""
    return POLICY


def allowance(tier: str | None, vehicles: int, options: Mapping[str, Any]) -> int:
    """The calls the tier allows per window: per user, or per vehicle."""

    def option(key: str) -> int:
        return int(options.get(key, DEFAULT_ALLOWANCES[key]))

    if tier == "pro":
        return option(CONF_ALLOWANCE_PRO) * max(vehicles, 1)
    if tier == "basic":
        return option(CONF_ALLOWANCE_BASIC) * max(vehicles, 1)
    return option(CONF_ALLOWANCE_FREE)


class EvLinkAccount(EvCloudAccount):
    """One EVLinkHA user (an API key) and its vehicles."""

    device_list_interval = timedelta(hours=6)

    def __init__(self, hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
        """Prepare; the budget is loaded and the tier read at setup."""
        self.hass = hass
        self.entry = entry
        self.tier: str | None = None
        self.budget: QuotaBudget | None = None
        self._stored: StoredQuota | None = None
        self.client: EvLinkClient | None = None
        self.vehicles: dict[str, EvLinkDevice] = {}
        self._listed: dict[str, EvLinkVehicle] = {}
        self._read_at: datetime | None = None
        self._lock = asyncio.Lock()
        # Each vehicle's current poll interval (s), by device key: the list is
        # read once per the shortest of them, so a parked vehicle's long
        # interval never holds back the polls of one that charges.
        self._intervals: dict[str, float] = {}
        self._warned_push = False
        self._stop_listening: list[CALLBACK_TYPE] = []
        # What the profile's Webhook URL takes: Home Assistant's external URL
        # (None without one); looked up at setup, each list read and each change.
        self.webhook_url: str | None = None

    async def async_setup(self) -> None:
        """Load the stored allowance, read the tier, listen for pushes."""
        data = self.entry.data
        self._stored = await async_load_quota(
            self.hass, f"{NAME}_{self.entry.entry_id}", allowance=1
        )
        self.budget = self._stored.budget
        self.client = EvLinkClient(
            async_get_clientsession(self.hass),
            data[CONF_SERVER_URL],
            data["api_key"],
            budget=self.budget,
        )
        me = await self.client.async_get_me()
        self.tier = me.tier
        self.budget.reserve = COMMAND_RESERVE if me.tier in COMMAND_TIERS else 0.0
        # One vehicle until the listing says how many the allowance is for.
        self.budget.allowance = allowance(me.tier, 1, self.entry.options)
        webhook.async_register(
            self.hass, DOMAIN, "EVLinkHA", data[CONF_WEBHOOK_ID], self._async_webhook
        )
        self._check_push()
        self._stop_listening.append(
            self.hass.bus.async_listen(
                EVENT_CORE_CONFIG_UPDATE, self._async_core_config_updated
            )
        )

    @callback
    def _async_core_config_updated(self, _event: Event[Any]) -> None:
        """Home Assistant's external URL may have changed."""
        self._check_push()

    def _check_push(self) -> None:
        """Where EVLinkHA can reach Home Assistant; a repair if nowhere (pro)."""
        self.webhook_url = external_url(self.hass)
        async_check_reachable(self.hass, self.entry, self.tier)

    async def async_unload(self) -> None:
        """Stop listening for pushes; store what was spent right away."""
        webhook.async_unregister(self.hass, self.entry.data[CONF_WEBHOOK_ID])
        while self._stop_listening:
            self._stop_listening.pop()()
        async_drop_issue(self.hass, self.entry)
        if self._stored is not None:
            await self._stored.async_save()

    @property
    def webhook_id(self) -> str:
        """The id of the webhook EVLinkHA pushes to (the profile's Webhook ID)."""
        return str(self.entry.data[CONF_WEBHOOK_ID])

    def command_client(self) -> EvLinkClient:
        """The client, for a device's commands."""
        return self._client()

    def _client(self) -> EvLinkClient:
        if self.client is None:
            raise DeviceOfflineError("The account is not set up")
        return self.client

    async def async_list_devices(self) -> list[EvCloudDevice[Any]]:
        """Every vehicle of the account; the allowance follows their number."""
        # The list read of this poll cycle serves the listing too.
        await self._async_read(force=self._read_at is None)
        for vehicle_id in self._listed:
            if vehicle_id not in self.vehicles:
                self.vehicles[vehicle_id] = EvLinkDevice(self, vehicle_id)
        for gone in set(self.vehicles) - set(self._listed):
            self._intervals.pop(self.vehicles.pop(gone).key, None)
        if self.budget is not None:
            self.budget.allowance = allowance(
                self.tier, len(self._listed), self.entry.options
            )
        return [self.vehicles[v] for v in self._listed]

    async def _async_read(self, *, force: bool = False, asked: bool = False) -> None:
        """One call reads every vehicle; at most once per poll cycle.

        A read someone `asked` for (a refresh, a command) reads the service
        again, if the allowance has a poll to spare; else the cycle's read stands.
        """
        async with self._lock:
            now = dt_util.utcnow()
            if asked and not force and not self._poll_to_spare(now):
                LOGGER.debug(
                    "%s: no call to spare for the read asked for; the last read stands",
                    self.entry.title,
                )
                asked = False
            shortest = min(self._intervals.values(), default=float(POLICY.idle))
            fresh = timedelta(seconds=shortest * 0.9)
            recent = self._read_at is not None and now - self._read_at < fresh
            if recent and not (force or asked):
                return
            vehicles = await self._client().async_get_vehicles()
            self._listed = {v.vehicle_id: v for v in vehicles}
            self._read_at = now
            self.webhook_url = external_url(self.hass)

    def _poll_to_spare(self, now: datetime) -> bool:
        budget = self.budget
        return (
            budget is not None
            and budget.paused_until <= now.timestamp()
            and budget.calls_left > budget.reserved
        )

    def listed_vehicle(self, vehicle_id: str) -> EvLinkVehicle | None:
        """The vehicle as the newest read shows it, without reading."""
        return self._listed.get(vehicle_id)

    async def async_vehicle(
        self, vehicle_id: str, *, asked: bool = False
    ) -> EvLinkVehicle:
        """The vehicle as the newest read shows it (`asked`: read it now)."""
        await self._async_read(asked=asked)
        if (vehicle := self._listed.get(vehicle_id)) is None:
            raise DeviceOfflineError("The vehicle is no longer listed by EVLinkHA")
        return vehicle

    def forget(self) -> None:
        """After a command: the next poll reads again."""
        self._read_at = None

    def poll_interval(self, device: EvCloudDevice[Any], usual: timedelta) -> timedelta:
        """`usual`, or longer so that the allowance lasts the whole window."""
        seconds = usual.total_seconds()
        if self.budget is not None:
            seconds = max(seconds, self.budget.interval_for(1))
        self._intervals[device.key] = seconds
        return timedelta(seconds=seconds)

    def calls_left(self) -> int:
        """Calls left in this window (commands' share included)."""
        return self.budget.calls_left if self.budget else 0

    def quota_low(self) -> bool:
        """The calls counted hold polls to less than half their steady pace."""
        budget = self.budget
        return budget is not None and budget.slowdown() >= LOW_QUOTA_SLOWDOWN

    async def _async_webhook(
        self, hass: HomeAssistant, webhook_id: str, request: web.Request
    ) -> web.Response:
        """A push from EVLinkHA: show each known vehicle's new data."""
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        vehicles = parse_push(payload)
        if not vehicles:
            log = LOGGER.debug if self._warned_push else LOGGER.warning
            log("%s: ignored a push EV Cloud cannot read", self.entry.title)
            self._warned_push = True
            return web.Response(status=200)
        # Pushes forward Enode's events, which may name a vehicle by Enode's id
        # rather than EVLinkHA's: the VIN then tells which vehicle it is.
        by_vin = {v.vin: v.vehicle_id for v in self._listed.values() if v.vin}
        for pushed in vehicles:
            vehicle_id = pushed.vehicle_id
            if vehicle_id not in self.vehicles and pushed.vin in by_vin:
                vehicle_id = by_vin[pushed.vin]
            if (device := self.vehicles.get(vehicle_id)) is not None:
                device.receive(replace(pushed, vehicle_id=vehicle_id))
        return web.Response(status=200)

    def diagnostics(self) -> dict[str, Any]:
        """Tier and allowance facts a bug report needs."""
        budget = self.budget
        return {
            "tier": self.tier,
            "allowance": budget.allowance if budget else None,
            "calls_counted": budget.spent if budget else None,
            "calls_left": budget.calls_left if budget else None,
            "oldest_day_leaves": budget.window_ends if budget else None,
            "slowdown": round(budget.slowdown(), 2) if budget else None,
            "poll_interval": min(self._intervals.values(), default=None),
            "push_reachable": self.webhook_url is not None,
        }


class EvLinkDevice(EvCloudDevice[VehicleState]):
    """One vehicle of an EVLinkHA account."""

    provider = NAME
    entities = ENTITIES
    poll_policy = POLICY

    def __init__(self, account: EvLinkAccount, vehicle_id: str) -> None:
        """Read `vehicle_id` through `account`."""
        super().__init__(vehicle_id)
        self.account = account
        self._last: VehicleState | None = None
        self._last_push: datetime | None = None
        self._interval = float(POLICY.idle)
        self._asked = False  # a read was asked for: read the list itself

    def _data(self, vehicle: EvLinkVehicle) -> DeviceData[VehicleState]:
        state = VehicleState(
            vehicle=vehicle,
            tier=self.account.tier,
            calls_left=self.account.calls_left(),
            last_push=self._last_push,
            webhook_url=self.account.webhook_url,
            webhook_id=self.account.webhook_id,
        )
        self._last = state
        data_time = vehicle.charge.last_updated or vehicle.last_seen
        if data_time is not None and vehicle.last_seen is not None:
            data_time = max(data_time, vehicle.last_seen)
        age = (dt_util.utcnow() - data_time).total_seconds() if data_time else None
        online = age is not None and age <= self._interval + STALE_GRACE
        return DeviceData(state=state, online=online, data_time=data_time)

    async def async_fetch(self) -> DeviceData[VehicleState]:
        """The vehicle from the account's newest read."""
        asked, self._asked = self._asked, False
        vehicle = await self.account.async_vehicle(self.device_id, asked=asked)
        return self._data(vehicle)

    def want_fresh(self) -> None:
        """The next read reads the list itself, if the allowance can spare it."""
        self._asked = True

    def receive(self, vehicle: EvLinkVehicle) -> None:
        """Data EVLinkHA pushed for this vehicle."""
        self._last_push = dt_util.utcnow()
        self.push(self._data(vehicle))

    def next_interval(
        self, data: DeviceData[VehicleState], options: Mapping[str, Any]
    ) -> timedelta:
        """The usual interval, or longer so that the allowance lasts."""
        usual = super().next_interval(data, options) or timedelta(seconds=POLICY.idle)
        interval = self.account.poll_interval(self, usual)
        self._interval = interval.total_seconds()
        return interval

    def covered_interval(self, options: Mapping[str, Any]) -> None:
        """Calls are scarce: while a linked charger charges the car, none.

        The charger's events (stopped, disconnected) ask for the next reading.
        """
        return None

    def is_active(self, state: VehicleState) -> bool:
        """Poll faster (within the allowance) while plugged in."""
        return bool(state.vehicle.charge.is_plugged_in)

    def repair_issue(self, error: EvCloudError | None) -> RepairIssue | None:
        """The allowance ran out, or soon will."""
        if isinstance(error, QuotaExhaustedError):
            return RepairIssue("evlinkha_quota_exhausted")
        if self.account.quota_low():
            return RepairIssue(
                "evlinkha_quota_low", {"calls_left": str(self.account.calls_left())}
            )
        return None

    @property
    def listed_name(self) -> str:
        """Named as the account's list names it (before it could be read)."""
        return self._name(self.account.listed_vehicle(self.device_id))

    def _name(self, vehicle: EvLinkVehicle | None) -> str:
        """By its name at EVLinkHA."""
        return (vehicle and vehicle.name) or f"EVLinkHA {self.device_id[-6:]}"

    def device_info(self, state: VehicleState) -> DeviceInfo:
        """The vehicle, by its name at EVLinkHA."""
        vehicle = state.vehicle
        return DeviceInfo(
            identifiers={(DOMAIN, self.key)},
            manufacturer=vehicle.brand or vehicle.vendor or "EVLinkHA",
            model=vehicle.model,
            name=self._name(vehicle),
        )

    @property
    def charge_control(self) -> ChargeControl[VehicleState] | None:
        """Only basic and pro tiers, and vehicles that can, start and stop."""
        return self if self._last is not None and self._last.can_charge else None

    charge_control_missing = "evlinkha_charge_control_unavailable"

    async def async_start_charging(self, state: VehicleState) -> None:
        """START, unless the vehicle already charges."""
        if state.vehicle.charge.is_charging:
            return
        await self._async_charging(state, start=True)

    async def async_stop_charging(self, state: VehicleState) -> None:
        """STOP, unless the vehicle does not charge."""
        if state.vehicle.charge.is_charging is False:
            return
        await self._async_charging(state, start=False)

    async def _async_charging(self, state: VehicleState, *, start: bool) -> None:
        name = state.vehicle.name or self.device_id
        try:
            await self.account.command_client().async_set_charging(
                self.device_id, start
            )
        except CommandRejectedError as err:
            key = (
                "evlinkha_smart_charging"
                if err.reason == "smart_charging"
                else "evlinkha_command_refused"
            )
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key=key,
                translation_placeholders={"name": name, "error": str(err)},
            ) from err
        except AccessDeniedError as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="evlinkha_charge_control_unavailable",
                translation_placeholders={"name": name},
            ) from err
        self.account.forget()


def create_account(hass: HomeAssistant, entry: EvCloudConfigEntry) -> EvLinkAccount:
    """The account of an EVLinkHA entry."""
    return EvLinkAccount(hass, entry)
