"""OVMS server accounts: every vehicle, polled within the server's request budget.

Requests are economical: a poll reads all of a car's records in one request
(`/api/protocol`), and one vehicle list read serves every car of the account.
While the car sends nothing new, the poll slows down; record ages decide whether
what is shown is stale. A server that refuses `/api/protocol` is read record by
record (four requests a poll), and polled that much less often.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import contextlib
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
from homeassistant.const import (
    CONF_PASSWORD,
    CONF_USERNAME,
    EVENT_HOMEASSISTANT_CLOSE,
)
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.aiohttp_client import async_create_clientsession
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from ...api import EvCloudError, NotSupportedError, VehicleNotAvailableError
from ...api.budget import BudgetRegistry, RequestBudget
from ...api.ovms import (
    DEFAULT_SERVER_URL,
    RECORD_ENDPOINTS,
    OvmsClient,
    OvmsVehicle,
    parse_charge,
    parse_location,
    parse_status,
    parse_tpms,
    rest_answers,
)
from ...api.ovms_v2 import OvmsV2Client
from ...const import CONF_EXCLUDED_DEVICES, CONF_SERVER_URL, DOMAIN, LOGGER
from ...device import (
    ChargeControl,
    DeviceData,
    EvCloudAccount,
    EvCloudDevice,
    PollPolicy,
    RepairIssue,
)
from ...models import EvCloudConfigEntry
from .commands import OvmsCommands, car_secrets, v2_server
from .const import CONF_LIVE_VEHICLES, NAME
from .entities import ENTITIES
from .live import OvmsLiveLink
from .state import OvmsCarState

# The server's limiter (ApiHttp.pm) gives a client 120 requests, adds 60 at each
# full minute of its own clock (up to 240), forgets a client idle for 300 s (who
# then starts at 120 again) and refuses the request that would leave nothing.
# Our bucket refills evenly, up to a minute's grant ahead of the server's steps:
# holding at most 59, it never counts a request the server has not granted, even
# right after the server forgot us.
BUDGET_BURST: Final = 59
BUDGET_PER_MINUTE: Final = 60
BUDGET_MAXIMUM: Final = 59
# One budget per server host, shared by every entry that uses it.
BUDGETS: HassKey[BudgetRegistry[RequestBudget]] = HassKey(f"{DOMAIN}_ovms_budgets")
SESSION: HassKey[aiohttp.ClientSession] = HassKey(f"{DOMAIN}_ovms_session")

POLICY = PollPolicy(active=60, idle=300, min_active=30, min_idle=60)
# Requests of an average poll: the car's records, and its share of the vehicle
# list read and of the logins (a session lasts a few minutes).
REQUESTS_PER_POLL: Final = 1.5
# The same when the server refuses `/api/protocol`: one request per record.
REQUESTS_PER_POLL_EACH_RECORD: Final = REQUESTS_PER_POLL - 1 + len(RECORD_ENDPOINTS)
# Data is stale when its record is older than the poll interval plus this grace.
STALE_GRACE: Final = 60
# The vehicle list says whether each car's module is connected to the server
# (the records' ages say how fresh the data is): read it once for all cars, at
# most every few minutes.
VEHICLE_LIST_MAX_AGE: Final = timedelta(seconds=290)
# While a car's records arrive over its open v2 connection, REST polls are only
# a check now and then.
LIVE_LINK_INTERVAL: Final = 900


def server_key(server_url: str) -> str:
    """The host (and port) that identifies an OVMS server."""
    return urlsplit(server_url).netloc.lower()


def unique_id(server_url: str, username: str) -> str:
    """An OVMS entry is unique per server and user."""
    return f"{server_key(server_url)}/{username.lower()}"


def client_from_data(
    hass: HomeAssistant, data: Mapping[str, Any], budget: RequestBudget | None = None
) -> OvmsClient:
    """Build the client that entry data (or flow input) describes."""
    return OvmsClient(
        _session(hass),
        data.get(CONF_SERVER_URL) or DEFAULT_SERVER_URL,
        data[CONF_USERNAME],
        data[CONF_PASSWORD],
        budget=budget,
    )


def _session(hass: HomeAssistant) -> aiohttp.ClientSession:
    """Home Assistant's connections, in a session whose jar keeps no cookies.

    Each account's session cookie then travels as a plain header. In the shared
    session's jar it would go with every request to the server's host (another
    account's, another integration's), and each request would have to override
    it, which costs aiohttp a new jar every time. One session serves every OVMS
    entry and flow until Home Assistant closes (an entry's own would close when
    the entry unloads, before its last requests: the logout).
    """
    if (session := hass.data.get(SESSION)) is None:
        session = hass.data[SESSION] = async_create_clientsession(
            hass, auto_cleanup=False, cookie_jar=aiohttp.DummyCookieJar()
        )

        @callback
        def _detach(_event: Event) -> None:
            session.detach()

        hass.bus.async_listen_once(EVENT_HOMEASSISTANT_CLOSE, _detach)
    return session


def _budget(hass: HomeAssistant, server_url: str) -> RequestBudget:
    budgets = hass.data.setdefault(BUDGETS, BudgetRegistry())
    return budgets.get(
        server_key(server_url),
        lambda: RequestBudget(
            burst=BUDGET_BURST, per_minute=BUDGET_PER_MINUTE, maximum=BUDGET_MAXIMUM
        ),
    )


class OvmsAccount(EvCloudAccount):
    """One user on one OVMS server, with its vehicles."""

    device_list_interval = timedelta(minutes=10)

    def __init__(self, hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
        """Set up the client of the entry's account."""
        self.hass = hass
        self.entry = entry
        server_url = entry.data.get(CONF_SERVER_URL) or DEFAULT_SERVER_URL
        self.budget = _budget(hass, server_url)
        self.client = client_from_data(hass, entry.data, self.budget)
        self.cars: dict[str, OvmsCar] = {}
        self._vehicles: list[OvmsVehicle] = []
        self._vehicles_time: float | None = None
        self._vehicles_lock = asyncio.Lock()

    async def async_setup(self) -> None:
        """Log in."""
        await self.client.async_login()

    @property
    def vehicles_due(self) -> bool:
        """True when the next `async_vehicles` asks the server."""
        return (
            self._vehicles_time is None
            or dt_util.utcnow().timestamp() - self._vehicles_time
            >= VEHICLE_LIST_MAX_AGE.total_seconds()
        )

    async def async_vehicles(self) -> list[OvmsVehicle]:
        """The account's vehicles, read at most once a minute for all of them.

        Cars' polls often fall together: the first reads, the others wait for
        it and take its result.
        """
        async with self._vehicles_lock:
            if self.vehicles_due:
                self._vehicles = await self.client.async_get_vehicles()
                self._vehicles_time = dt_util.utcnow().timestamp()
            return self._vehicles

    async def async_list_devices(self) -> list[EvCloudDevice[Any]]:
        """The vehicles the user did not exclude."""
        self._vehicles_time = None  # a listing always asks the server
        excluded = set(self.entry.options.get(CONF_EXCLUDED_DEVICES, []))
        listed = [
            vehicle.vehicle_id
            for vehicle in await self.async_vehicles()
            if vehicle.vehicle_id not in excluded
        ]
        for vehicle_id in set(self.cars) - set(listed):
            car = self.cars.pop(vehicle_id)
            await car.async_stop_link()
            car.release()
        for vehicle_id in listed:
            if vehicle_id not in self.cars:
                self.cars[vehicle_id] = OvmsCar(self, vehicle_id)
        return [self.cars[vehicle_id] for vehicle_id in listed]

    def selectable_devices(self) -> list[str]:
        """Every vehicle of the account, shown or left out."""
        return [vehicle.vehicle_id for vehicle in self._vehicles]

    def diagnostics(self) -> dict[str, Any]:
        """The server software, how records are read, commands and connections.

        No ids: how many cars take commands and keep a v2 connection open.
        """
        client = self.client
        return {
            # "v2": the older server software (no tokens, no connect); None
            # until an answer of the server told.
            "server_software": client.server_generation,
            # The server refused /api/protocol: each record is one request.
            "reads_each_record": client.reads_each_record,
            "cars_with_commands": sum(
                car.commands is not None for car in self.cars.values()
            ),
            "live_connections": sum(
                car.live_client is not None for car in self.cars.values()
            ),
        }

    def is_live(self, vehicle_id: str) -> bool:
        """True when the user switched live updates on for the vehicle."""
        return vehicle_id in self.entry.options.get(CONF_LIVE_VEHICLES, [])

    def set_live(self, vehicle_id: str, live: bool) -> None:
        """Remember the live-updates choice in the entry's options."""
        live_ids = set(self.entry.options.get(CONF_LIVE_VEHICLES, []))
        live_ids = live_ids | {vehicle_id} if live else live_ids - {vehicle_id}
        self.hass.config_entries.async_update_entry(
            self.entry,
            options={**self.entry.options, CONF_LIVE_VEHICLES: sorted(live_ids)},
        )

    async def async_unload(self) -> None:
        """Disconnect live vehicles and log out; errors do not matter any more."""
        for car in list(self.cars.values()):
            await car.async_stop_link()
            car.release()
        self.cars.clear()
        try:
            if self.client.can_connect_vehicles:
                for vehicle_id in self.entry.options.get(CONF_LIVE_VEHICLES, []):
                    await self.client.async_disconnect_vehicle(vehicle_id)
            await self.client.async_logout()
        except EvCloudError as err:
            LOGGER.debug("Logging out of OVMS failed: %s", err)


class OvmsCar(EvCloudDevice[OvmsCarState]):
    """One vehicle of an OVMS account."""

    provider = NAME
    entities = ENTITIES
    poll_policy = POLICY
    charge_control_missing = "ovms_commands_not_supported"

    def __init__(self, account: OvmsAccount, vehicle_id: str) -> None:
        """Poll `vehicle_id` through `account`."""
        super().__init__(vehicle_id)
        self.account = account
        self._last: OvmsCarState | None = None
        self._interval = float(POLICY.idle)
        self._connected_login: int | None = None
        self._last_data: DeviceData[OvmsCarState] | None = None
        secrets = car_secrets(account.entry.data, vehicle_id)
        self.commands: OvmsCommands | None = None
        self.link: OvmsLiveLink | None = None
        if secrets is not None:
            address = v2_server(account.entry.data)
            self.commands = OvmsCommands(self, address, secrets)
            self.link = OvmsLiveLink(self, address, secrets)
        self._link_started = False
        account.budget.consumers += 1

    @property
    def charge_control(self) -> ChargeControl[OvmsCarState] | None:
        """Start and stop over the v2 protocol, once the server password is known."""
        return self.commands

    @property
    def live_client(self) -> OvmsV2Client | None:
        """The car's open v2 connection (Live updates), if it is up."""
        link = self.link
        return link.client if link is not None and link.connected else None

    def _follow_live_setting(self) -> None:
        """Open the v2 connection when Live updates are on (and it can be opened)."""
        if self.link is not None and self.is_live and not self._link_started:
            self._link_started = True
            self.link.start()

    async def async_stop_link(self) -> None:
        """Close the v2 connection (Live updates off, car gone, entry unloaded)."""
        if self.link is not None and self._link_started:
            self._link_started = False
            await self.link.async_stop()

    def push_records(
        self,
        records: Mapping[str, str],
        received: Mapping[str, datetime],
        car_connected: bool | None,
    ) -> None:
        """Show the records the open connection delivered, as a poll would."""
        last = self._last
        if last is None:
            return  # the first poll has not shown the car yet
        readable = {code: text for code, text in records.items() if code in received}
        answers = rest_answers(readable, received, dt_util.utcnow())
        status = last.status
        if readable.keys() & {"S", "D"}:
            status = parse_status(answers["status"])
        state = replace(
            last,
            units=status.units or last.units,
            car_online=last.car_online if car_connected is None else car_connected,
            live_updates=self.live_updates,  # (switched on since the last poll)
            status=status,
            charge=parse_charge(answers["charge"]) if "S" in readable else last.charge,
            location=parse_location(answers["location"])
            if "L" in readable
            else last.location,
            tpms=parse_tpms(answers["tpms"])
            if readable.keys() & {"W", "Y"}
            else last.tpms,
        )
        self._last = state
        age = status.s_time.msg_age
        online = (
            car_connected is not False
            and age is not None
            and age <= self._interval + STALE_GRACE
        )
        data = DeviceData(state=state, online=online, data_time=status.s_time.msg_time)
        self._last_data = data
        self.push(data)

    def link_dropped(self) -> None:
        """Back to polling at the usual interval: show the last reading again."""
        if self._last_data is not None:
            self.push(self._last_data)

    def command(self) -> OvmsCommands:
        """The car's commands (its command entities exist only when it has them)."""
        if self.commands is None:
            raise RuntimeError("the car has no server password")
        return self.commands

    def release(self) -> None:
        """The vehicle left the account (or the entry unloads)."""
        self.account.budget.consumers -= 1

    async def async_fetch(self) -> DeviceData[OvmsCarState]:
        """Read the records that may have changed since the last poll.

        The poll takes the requests it may need from the budget first, so that
        it runs whole (or a few seconds later) instead of being refused halfway.
        """
        with self.account.budget.prepaid(self._requests_needed(), self.key):
            return await self._async_fetch()

    def _requests_needed(self) -> int:
        """The most requests the next poll sends."""
        client = self.account.client
        return (
            # Every record of the car at once, or one by one.
            (len(RECORD_ENDPOINTS) if client.reads_each_record else 1)
            + self.account.vehicles_due
            # A login first, or after a refusal when the server ended the
            # session sooner than expected (then the read goes again).
            + (1 if client.login_due else 2)
            + self._connect_due
        )

    @property
    def _connect_due(self) -> bool:
        """Live updates are on and a new session has not connected the car yet."""
        client = self.account.client
        return (
            self.is_live
            and self._connected_login != client.login_count
            and client.can_connect_vehicles
        )

    @property
    def is_live(self) -> bool:
        """True when the user switched live updates on for this car."""
        return self.account.is_live(self.device_id)

    async def _async_fetch(self) -> DeviceData[OvmsCarState]:
        client = self.account.client
        vehicle_id = self.device_id
        vehicles = {v.vehicle_id: v for v in await self.account.async_vehicles()}
        answers = await client.async_get_answers(vehicle_id, dt_util.utcnow())
        status = parse_status(answers["status"])
        charge = parse_charge(answers["charge"])
        if self._connect_due:
            # A new login (the session expired) disconnected the car: connect again.
            await self._async_connect()
        vehicle = vehicles.get(vehicle_id)
        car_online = vehicle.car_online if vehicle else None
        state = OvmsCarState(
            vehicle_id=vehicle_id,
            units=status.units or charge.units or "K",
            car_online=car_online,
            live_updates=self.live_updates,
            status=status,
            charge=charge,
            location=parse_location(answers["location"]),
            tpms=parse_tpms(answers["tpms"]),
            commands=self.commands is not None,
            lock_control=self.commands is not None and self.commands.has_pin,
        )
        self._last = state
        age = status.s_time.msg_age
        if age is not None:
            online = age <= self._interval + STALE_GRACE
        else:
            # No record age (the v2 server's per-record answers carry none):
            # the module's connection to the server says whether it reports.
            online = status.received and car_online is True
        data = DeviceData(state=state, online=online, data_time=status.s_time.msg_time)
        self._last_data = data
        self._follow_live_setting()
        return data

    @property
    def live_updates(self) -> bool:
        """Live updates are on and can work: by connecting, or over the v2 link."""
        return self.is_live and (
            self.account.client.can_connect_vehicles or self.link is not None
        )

    async def _async_connect(self) -> bool:
        """Connect the session to the car; False: the server cannot (said once).

        The v2 server answers 404 "Not yet implemented"; the client then knows
        the server and no poll asks again.
        """
        client = self.account.client
        try:
            await client.async_connect_vehicle(self.device_id)
        except NotSupportedError:
            self._connected_login = client.login_count
            LOGGER.info(
                "The OVMS server of %s runs the older server software, which "
                "cannot connect a car; %s",
                self.device_id,
                "its live updates come over its v2 connection"
                if self.link is not None
                else "it is polled as before",
            )
            return False
        self._connected_login = client.login_count
        return True

    def next_interval(
        self, data: DeviceData[OvmsCarState], options: Mapping[str, Any]
    ) -> timedelta:
        """The usual interval, longer while the car sends nothing new, within budget.

        A car that has not sent its status for a while is asked again after half
        that silence (up to the maximum): it notices a car that wakes up soon
        enough without polling a parked one every minute.
        """
        usual = super().next_interval(data, options) or timedelta(seconds=POLICY.idle)
        seconds = usual.total_seconds()
        silence = data.state.status.s_time.msg_age
        if silence is not None and silence > seconds:
            seconds = max(seconds, min(silence / 2, float(POLICY.maximum)))
        floor = self.account.budget.sustainable_interval(
            REQUESTS_PER_POLL_EACH_RECORD
            if self.account.client.reads_each_record
            else REQUESTS_PER_POLL
        )
        self._interval = max(seconds, floor)
        if self.live_client is not None:
            return timedelta(seconds=max(self._interval, LIVE_LINK_INTERVAL))
        return timedelta(seconds=self._interval)

    def repair_issue(self, error: EvCloudError | None) -> RepairIssue | None:
        """A vehicle the server will not serve: only its owner can change that."""
        if isinstance(error, VehicleNotAvailableError) and error.reason:
            return RepairIssue(f"vehicle_{error.reason}", {"vehicle": self.device_id})
        return None

    def is_active(self, state: OvmsCarState) -> bool:
        """Poll faster while the car is on or charging."""
        return bool(state.status.car_on or state.charging)

    async def async_set_live_updates(self, state: OvmsCarState, live: bool) -> None:
        """Connect the API session to the car (or disconnect it).

        The v2 server cannot connect a car: there Live updates need the car's
        v2 connection (its server password); without one, turning them on says so.
        """
        client = self.account.client
        if live:
            connected = client.can_connect_vehicles and await self._async_connect()
            if not connected and self.link is None:
                raise ServiceValidationError(
                    translation_domain=DOMAIN,
                    translation_key="ovms_live_not_supported",
                    translation_placeholders={"vehicle": self.device_id},
                )
        else:
            if client.can_connect_vehicles:
                # NotSupportedError: the v2 server, which connected nothing.
                with contextlib.suppress(NotSupportedError):
                    await client.async_disconnect_vehicle(self.device_id)
            self._connected_login = None
            await self.async_stop_link()
        self.account.set_live(self.device_id, live)
        self._follow_live_setting()

    @property
    def listed_name(self) -> str:
        """The name it has once read: the listing tells all there is."""
        return f"OVMS {self.device_id}"

    def device_info(self, state: OvmsCarState) -> DeviceInfo:
        """One vehicle of the OVMS server."""
        return DeviceInfo(
            identifiers={(DOMAIN, self.key)},
            manufacturer="Open Vehicle Monitoring System",
            model="OVMS vehicle",
            name=self.listed_name,
            configuration_url=None,
        )


def create_account(hass: HomeAssistant, entry: EvCloudConfigEntry) -> OvmsAccount:
    """The account of an OVMS entry."""
    return OvmsAccount(hass, entry)
