"""A simulated EVLinkHA service (the hosted API and the self-hosted evlink-backend).

Facts: providers.md section 5 and api-docs/evlinkha.txt. One aiohttp server on
127.0.0.1 serves both API styles, over the same users and vehicles:

    /api/v1/ha/me | vehicles | status/{id} | charging/{id}   hosted, `X-API-Key`
    /api/ha/me | vehicles | status/{id} | charging/{id}      backend, `Authorization:
    /api/status/{id}                                          Bearer` (legacy keys)

Errors are FastAPI's `{"detail": ...}` (a list for a bad request body). The vehicles
are Enode vehicle objects as the backend caches them; what the API shows is the last
report (`SimVehicle.report`), written at each `advance()` and each change unless the
vehicle is `silent` (then `lastSeen` and the `lastUpdated` stamps stop moving).

The simulation is deterministic: the clock starts at the real time (or `start_time`)
and only moves with `EvLinkSimulator.advance`.

Allowance, as the backend code has it (rogasp/evlink-backend @ eb8e5ba,
`backend/app/api/dependencies.py`, `api_key_rate_limit`): the calls counted since a
window start. Free users, and basic or pro users whose `SimUser.tier_reset_date`
(Stripe's end of the paid period) is unset or past, are counted per user against the
free allowance in a rolling window (now - 30 days); basic and pro users with a
reset date ahead are counted from that date - 30 days, per vehicle on the
vehicle-specific endpoints (`status/{id}`, `charging/{id}`) and per user (all their
calls) on any other. A paid period renews by 30 days when it ends (`renews`).
Allowances: free 300, basic 2000, pro 10000 (and at most 2 / 5 linked vehicles,
else 403 on vehicle-specific endpoints). Only the endpoints named in
`EvLinkSimulator.counted_paths` count (default `status` and `charging`; the legacy
`/api/status` is `status`, never vehicle-specific); a call counts when it is
answered 2xx. Beyond the allowance `SimUser.purchased_tokens` are used, then 429.
For basic and pro the limiter looks the vehicle up first: an unknown or foreign
vehicle is 404 "Vehicle not found or does not belong to user." on counted endpoints
(the handlers' own 404 "Vehicle not found" / 403 "Access denied" otherwise).

Charging (`POST .../charging/{id}`, `{"action": "START"|"STOP"}`), in the backend's
order: 401, allowance (429), free tier 403, body 422 (list detail), 404/403 vehicle,
then Enode's verdict passed through as a string detail holding Enode's problem JSON:
400 START while unplugged / already charging / full, STOP while not charging; 422
under smart charging control. Accepted actions take effect `command_delay` simulated
seconds later (an Enode action: PENDING, then CONFIRMED).

Push, as the backend's `push_to_homeassistant` (`backend/app/api/webhook.py`): each
user's profile has two fields, `SimUser.ha_external_url` (Webhook URL) and
`SimUser.ha_webhook_id` (Webhook ID). For a pro user with both set, `push(vehicle_id)`
POSTs the raw Enode event, one per POST, as JSON (`{"createdAt", "version", "event":
"user:vehicle:updated", "user": {"id"}, "vehicle": Enode's vehicle, with Enode's
`id` and the `userId` the backend adds}`) to `<Webhook URL>/api/webhook/<Webhook ID>`
(the URL's trailing slash dropped) and returns the HTTP status; anyone else gets
nothing sent (None). `push_automatically` pushes each reported change during
`advance()` (await `flush_pushes()` to wait for them); `push_raw` sends any body to a
user's registered address.

`DEMO` (at the end) is what `python -m tests.simulators evlinkha` runs: one pro user
with a charging and a parked vehicle.
"""

import argparse
import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
import itertools
import json
import logging
import math
import re
import secrets
import time
from typing import Any
import uuid

import aiohttp
from aiohttp import web

from .common import SimServer, close_connection, issued
from .demo import SimulatorDemo, emit, every_second

_LOGGER = logging.getLogger(__name__)

HOSTED_PREFIX = "/api/v1/ha"
BACKEND_PREFIX = "/api/ha"
LEGACY_STATUS_PREFIX = "/api/status"
WINDOW_SECONDS = 30 * 86400.0
FREE, BASIC, PRO = "free", "basic", "pro"
TIERS = (FREE, BASIC, PRO)
# Backend defaults (rate_limit.<tier>.max_calls, .max_linked_vehicles).
MAX_CALLS = {FREE: 300, BASIC: 2000, PRO: 10000}
MAX_LINKED_VEHICLES = {BASIC: 2, PRO: 5}
DEFAULT_COUNTED_PATHS = frozenset({"status", "charging"})
DEFAULT_COMMAND_DELAY = 10.0  # simulated seconds until an action takes effect
WEBHOOK_EVENT = "user:vehicle:updated"
# The Enode API version an event names (the backend only logs it).
ENODE_VERSION = "2024-10-01"
CAPABILITIES = (
    "information",
    "chargeState",
    "location",
    "odometer",
    "setMaxCurrent",
    "startCharging",
    "stopCharging",
    "smartCharging",
)
# powerDeliveryState values.
UNKNOWN = "UNKNOWN"
UNPLUGGED = "UNPLUGGED"
INITIALIZING = "PLUGGED_IN:INITIALIZING"
CHARGING = "PLUGGED_IN:CHARGING"
COMPLETE = "PLUGGED_IN:COMPLETE"
STOPPED = "PLUGGED_IN:STOPPED"
NO_POWER = "PLUGGED_IN:NO_POWER"
FAULT = "PLUGGED_IN:FAULT"
DISCHARGING = "PLUGGED_IN:DISCHARGING"
POWER_DELIVERY_STATES = (
    UNKNOWN,
    UNPLUGGED,
    INITIALIZING,
    CHARGING,
    COMPLETE,
    STOPPED,
    NO_POWER,
    FAULT,
    DISCHARGING,
)
PROXY_ERROR_BODY = (
    "<html><head><title>500 Internal Server Error</title></head>"
    "<body><center><h1>500 Internal Server Error</h1></center></body></html>"
)
MALFORMED_BODY = '{"detail": "oops'
ENODE_PROBLEMS = "https://developers.enode.com/api/problems/"
FREE_TIER_DENIED = "This feature is not available for Free users."
_IDS = uuid.UUID("5f0c3d52-7a51-4c1e-9d6e-4e564c4b4841")  # namespace of made-up ids


class EvLinkFault(StrEnum):
    """A failure mode of the simulated service (`fault`, for every /api/ request)."""

    NONE = "none"
    # 500 with an HTML page from the proxy in front.
    SERVER_ERROR = "server_error"
    # 502 {"detail": "Error fetching vehicle data"}: the backend's store failed.
    BAD_GATEWAY = "bad_gateway"
    # 200 with a body that is not JSON.
    MALFORMED = "malformed"
    # The answer comes after `slow_seconds` (real time).
    SLOW = "slow"


def iso(epoch: float) -> str:
    """ISO 8601 UTC as Enode writes it, e.g. `2025-07-25T08:16:52.043000Z`."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class SimUser:
    """An EVLinkHA user with an API key and a tier ("free", "basic" or "pro")."""

    id: str
    api_key: str
    email: str
    tier: str = PRO
    name: str = "Sim User"
    role: str = "user"
    sms_credits: int = 0
    purchased_tokens: int = 0
    # End of the paid period (Stripe's current_period_end); unset or past: free.
    tier_reset_date: float | None = None
    renews: bool = True  # the paid period renews by 30 days when it ends
    # The profile's Home Assistant webhook fields (Webhook URL, Webhook ID).
    ha_external_url: str = ""
    ha_webhook_id: str = ""


@dataclass
class SimVehicle:
    """One vehicle (ids are made up by `add_vehicle` when empty).

    Plain attributes are the car's state; the API shows `report`, the snapshot
    taken at the last report. Switches: `silent` (no reports), `reachable`
    (isReachable), `power_state` (forces a powerDeliveryState, e.g. FAULT),
    `capable` (capability name -> isCapable; missing names are capable).
    """

    user_id: str
    id: str = ""
    enode_id: str = ""
    brand: str = "XPENG"
    model: str = "G6"
    year: int = 2025
    vin: str = ""
    display_name: str | None = None
    vendor: str | None = None  # default: brand
    battery_level: float = 50.0
    battery_capacity: float = 91.0  # kWh
    km_per_kwh: float = 6.0
    charge_limit: int = 90
    charge_power_kw: float = 11.0  # chargeRate while charging
    max_current: int | None = 16
    plugged_in: bool = False
    charging: bool = False
    latitude: float = 59.3293
    longitude: float = 18.0686
    odometer: float = 1234.0
    smart_charging: bool = False
    smart_deadline: str | None = None
    minimum_charge_limit: int = 0
    reachable: bool = True
    silent: bool = False
    power_state: str | None = None
    capable: dict[str, bool] = field(default_factory=dict)
    # Set by the simulator.
    report: dict[str, Any] = field(default_factory=dict, init=False)
    last_seen: float | None = field(default=None, init=False)

    @property
    def full(self) -> bool:
        """At or above the charge limit."""
        return self.battery_level >= self.charge_limit - 1e-9

    @property
    def power_delivery_state(self) -> str:
        """Enode's powerDeliveryState of the current state."""
        if self.power_state is not None:
            return self.power_state
        if not self.plugged_in:
            return UNPLUGGED
        if self.charging:
            return CHARGING
        return COMPLETE if self.full else STOPPED

    def charge(self, seconds: float) -> bool:
        """Charge for `seconds` when charging; True when the limit was reached."""
        if not (self.plugged_in and self.charging) or self.power_state is not None:
            return False
        added = self.charge_power_kw * seconds / 3600
        self.battery_level += added / self.battery_capacity * 100
        if self.full:
            self.battery_level = float(max(self.charge_limit, 0))
            self.charging = False
            return True
        return False

    def state(self, now: float) -> dict[str, Any]:
        """The Enode vehicle fields as they are now (`now` stamps the blocks)."""
        stamp = iso(now)
        charging = self.power_delivery_state == CHARGING
        remaining: int | None = None
        if charging and self.charge_power_kw > 0:
            kwh = (self.charge_limit - self.battery_level) / 100 * self.battery_capacity
            remaining = math.ceil(max(kwh, 0) / self.charge_power_kw * 60)
        level = round(self.battery_level)
        capabilities = {
            name: {
                "isCapable": self.capable.get(name, True),
                "interventionIds": [] if self.capable.get(name, True) else ["ivn-1"],
            }
            for name in CAPABILITIES
        }
        return {
            "isReachable": self.reachable,
            "lastSeen": stamp,
            "chargeState": {
                "batteryLevel": level,
                "range": round(
                    self.battery_level / 100 * self.battery_capacity * self.km_per_kwh,
                    1,
                ),
                "isCharging": charging,
                "isPluggedIn": self.plugged_in,
                "isFullyCharged": self.plugged_in and self.full,
                "batteryCapacity": self.battery_capacity,
                "chargeRate": self.charge_power_kw if charging else None,
                "chargeLimit": self.charge_limit,
                "chargeTimeRemaining": remaining,
                "maxCurrent": self.max_current,
                "powerDeliveryState": self.power_delivery_state,
                "lastUpdated": stamp,
            },
            "information": {
                "displayName": self.display_name,
                "vin": self.vin,
                "brand": self.brand,
                "model": self.model,
                "year": self.year,
            },
            "location": {
                "id": None,
                "latitude": self.latitude,
                "longitude": self.longitude,
                "lastUpdated": stamp,
            },
            "odometer": {"distance": round(self.odometer, 1), "lastUpdated": stamp},
            "vendor": self.vendor or self.brand.upper(),
            "smartChargingPolicy": {
                "deadline": self.smart_deadline,
                "isEnabled": self.smart_charging,
                "minimumChargeLimit": self.minimum_charge_limit,
            },
            "capabilities": capabilities,
        }


@dataclass
class EnodeAction:
    """A charging action the backend created at Enode."""

    id: str
    user_id: str
    vehicle_id: str
    enode_vehicle_id: str
    kind: str  # START or STOP
    created: float
    due: float
    state: str = "PENDING"  # then CONFIRMED (or CANCELLED)
    completed: float | None = None

    def json(self) -> dict[str, Any]:
        """Enode's action object."""
        return {
            "id": self.id,
            "userId": self.user_id,
            "createdAt": iso(self.created),
            "updatedAt": iso(self.completed or self.created),
            "completedAt": None if self.completed is None else iso(self.completed),
            "state": self.state,
            "targetId": self.enode_vehicle_id,
            "targetType": "vehicle",
            "kind": self.kind,
            "failureReason": None,
        }


class _Error(Exception):
    """An answer `{"detail": detail}` with `status`."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(status)
        self.status = status
        self.detail = detail


# (style, endpoint, vehicle id) of an API path; style "hosted", "backend", "legacy".
_PATHS = (
    ("hosted", re.compile(rf"{HOSTED_PREFIX}/(me|vehicles)")),
    ("hosted", re.compile(rf"{HOSTED_PREFIX}/(status|charging)/([^/]+)")),
    ("backend", re.compile(rf"{BACKEND_PREFIX}/(me|vehicles)")),
    ("backend", re.compile(rf"{BACKEND_PREFIX}/(status|charging)/([^/]+)")),
    ("legacy", re.compile(r"/api/(status)/([^/]+)")),
)
_METHODS = {"me": "GET", "vehicles": "GET", "status": "GET", "charging": "POST"}


class EvLinkSimulator(SimServer):
    """EVLinkHA's API, both styles, on one port.

    Control attributes: `fault`, `slow_seconds`, `counted_paths` (endpoint names
    that use the allowance: me, vehicles, status, charging), `max_calls` (tier ->
    allowance), `command_delay`, `charging_fault` (True: Enode fails, 502),
    `push_automatically`; per user (SimUser): tier, tier_reset_date, the webhook
    fields.
    Logs: `requests` ((method, path) of every /api/ request), `counted` ((method,
    path) of every call that used the allowance), `actions` (EnodeAction),
    `pushes` ((vehicle id or None, HTTP status or None) of every push).
    """

    label = "EVLinkHA simulator"

    def __init__(
        self, *, host: str = "127.0.0.1", start_time: float | None = None
    ) -> None:
        """Prepare the simulator; nothing listens until `start()`."""
        super().__init__(host)
        self.fault = EvLinkFault.NONE
        self.slow_seconds = 30.0
        self.counted_paths: set[str] = set(DEFAULT_COUNTED_PATHS)
        self.max_calls: dict[str, int] = dict(MAX_CALLS)
        self.max_linked_vehicles: dict[str, int] = dict(MAX_LINKED_VEHICLES)
        self.command_delay = DEFAULT_COMMAND_DELAY
        self.charging_fault = False
        self.push_automatically = False
        self.requests: list[tuple[str, str]] = []
        self.counted: list[tuple[str, str]] = []
        self.actions: list[EnodeAction] = []
        self.pushes: list[tuple[str | None, int | None]] = []
        self.users: dict[str, SimUser] = {}
        self._vehicles: dict[str, SimVehicle] = {}
        # (user id, vehicle id or None) -> times of counted calls.
        self._calls: dict[tuple[str, str | None], list[float]] = {}
        self._ids = itertools.count(1)
        self._start_time = float(
            math.floor(time.time()) if start_time is None else start_time
        )
        self._elapsed = 0.0
        self._push_tasks: set[asyncio.Task[int | None]] = set()
        self._session: aiohttp.ClientSession | None = None

    # --- set-up --------------------------------------------------------------------

    @property
    def now(self) -> float:
        """The simulated time (epoch seconds)."""
        return self._start_time + self._elapsed

    def _new_id(self, kind: str) -> str:
        return str(uuid.uuid5(_IDS, f"{kind}-{next(self._ids)}"))

    def add_user(
        self,
        email: str = "driver@example.com",
        tier: str = PRO,
        *,
        api_key: str = "",
        user_id: str = "",
        **attributes: Any,
    ) -> SimUser:
        """Register a user; the key and id are made up when not given.

        `attributes`: other SimUser fields (name, role, sms_credits,
        purchased_tokens, tier_reset_date, renews, ha_external_url,
        ha_webhook_id). A basic or pro user's paid period ends 30 days from now
        unless `tier_reset_date` says otherwise.
        """
        if tier not in TIERS:
            raise ValueError(f"unknown tier {tier}")
        user = SimUser(
            user_id or self._new_id("user"),
            issued(api_key or f"evlink_{secrets.token_urlsafe(24)}"),
            email,
            tier,
            **(
                {"tier_reset_date": self.now + WINDOW_SECONDS if tier != FREE else None}
                | attributes
            ),
        )
        if user.id in self.users:
            raise ValueError(f"duplicate user {user.id}")
        if any(other.api_key == user.api_key for other in self.users.values()):
            raise ValueError("duplicate API key")
        self.users[user.id] = user
        return user

    @property
    def vehicles(self) -> list[SimVehicle]:
        """All simulated vehicles."""
        return list(self._vehicles.values())

    def add_vehicle(self, vehicle: SimVehicle) -> SimVehicle:
        """Register a vehicle of a known user; it reports at once."""
        if vehicle.user_id not in self.users:
            raise ValueError(f"unknown user {vehicle.user_id}")
        vehicle.id = vehicle.id or self._new_id("vehicle")
        vehicle.enode_id = vehicle.enode_id or self._new_id("enode")
        vehicle.vin = vehicle.vin or f"LSIM{next(self._ids):013d}"
        if vehicle.id in self._vehicles:
            raise ValueError(f"duplicate vehicle {vehicle.id}")
        self._vehicles[vehicle.id] = vehicle
        self.sample(vehicle, force=True)
        return vehicle

    def vehicle(self, vehicle_id: str) -> SimVehicle:
        """The vehicle with this id (KeyError if unknown)."""
        return self._vehicles[vehicle_id]

    def remove_vehicle(self, vehicle_id: str) -> None:
        """Unlink a vehicle: the API answers 404 for it from now on."""
        del self._vehicles[vehicle_id]

    # --- story ---------------------------------------------------------------------

    def plug_in(self, vehicle_id: str, *, charge: bool = True) -> None:
        """Plug a vehicle in; it starts charging unless full or `charge` is False."""
        vehicle = self._vehicles[vehicle_id]
        vehicle.plugged_in = True
        vehicle.charging = charge and not vehicle.full
        self._changed(vehicle)

    def unplug(self, vehicle_id: str) -> None:
        """Unplug a vehicle (charging ends)."""
        vehicle = self._vehicles[vehicle_id]
        vehicle.plugged_in = False
        vehicle.charging = False
        self._changed(vehicle)

    def drive(self, vehicle_id: str, km: float, kwh_per_km: float = 0.16) -> None:
        """Drive (unplugged) at once: odometer up, battery down, moved a little."""
        vehicle = self._vehicles[vehicle_id]
        vehicle.plugged_in = False
        vehicle.charging = False
        vehicle.odometer += km
        used = km * kwh_per_km / vehicle.battery_capacity * 100
        vehicle.battery_level = max(vehicle.battery_level - used, 0.0)
        vehicle.latitude += km / 1000
        self._changed(vehicle)

    def set_charging(self, vehicle_id: str, charging: bool) -> None:
        """Start or stop charging at once (as the car or a schedule would)."""
        vehicle = self._vehicles[vehicle_id]
        vehicle.charging = charging and vehicle.plugged_in and not vehicle.full
        self._changed(vehicle)

    def advance(self, seconds: float) -> None:
        """Move simulated time: actions take effect, vehicles charge and report."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        end = self._elapsed + seconds
        while True:
            pending = [
                action
                for action in self.actions
                if action.state == "PENDING" and action.due <= self._start_time + end
            ]
            target = min((action.due for action in pending), default=None)
            step_end = end if target is None else target - self._start_time
            step = max(step_end - self._elapsed, 0.0)
            for vehicle in self._vehicles.values():
                vehicle.charge(step)
            self._elapsed = max(self._elapsed, step_end)
            if target is None:
                break
            for action in pending:
                if action.due == target:
                    self._apply(action)
        for user in self.users.values():
            reset = user.tier_reset_date
            while user.renews and reset is not None and self.now >= reset:
                reset += WINDOW_SECONDS
            user.tier_reset_date = reset
        for vehicle in self._vehicles.values():
            self.sample(vehicle)

    def _apply(self, action: EnodeAction) -> None:
        vehicle = self._vehicles.get(action.vehicle_id)
        action.completed = self.now
        if vehicle is None:
            action.state = "CANCELLED"
            return
        action.state = "CONFIRMED"
        if action.kind == "START":
            vehicle.charging = vehicle.plugged_in and not vehicle.full
        else:
            vehicle.charging = False

    def _changed(self, vehicle: SimVehicle) -> None:
        """Report after a change, as the next Enode poll would."""
        self.sample(vehicle)

    def sample(self, vehicle: SimVehicle, *, force: bool = False) -> bool:
        """Take a report now (not while `silent`, unless forced).

        Returns whether anything but the time stamps changed; with
        `push_automatically` such a change is pushed.
        """
        if vehicle.silent and not force:
            return False
        before = _without_stamps(vehicle.report)
        vehicle.report = vehicle.state(self.now)
        vehicle.last_seen = self.now
        changed = before != _without_stamps(vehicle.report)
        if (
            changed
            and self.push_automatically
            and self.webhook_target(vehicle.user_id) is not None
        ):
            self._schedule_push(vehicle.id)
        return changed

    # --- allowance -----------------------------------------------------------------

    def _user(self, user: SimUser | str) -> SimUser:
        return user if isinstance(user, SimUser) else self.users[user]

    def paid(self, user: SimUser | str) -> bool:
        """Counted as basic or pro: such a tier and a paid period ahead."""
        user = self._user(user)
        reset = user.tier_reset_date
        return user.tier != FREE and reset is not None and reset > self.now

    def window_start(self, user: SimUser | str) -> float:
        """Since when the user's calls count (epoch seconds).

        Paid: the end of the paid period - 30 days; free (or a period that ended):
        now - 30 days, a rolling window.
        """
        user = self._user(user)
        if self.paid(user) and user.tier_reset_date is not None:
            return user.tier_reset_date - WINDOW_SECONDS
        return self.now - WINDOW_SECONDS

    def calls_used(self, user: SimUser | str, vehicle_id: str | None = None) -> int:
        """Counted calls since the user's window start.

        Counted per user (`vehicle_id` is ignored) unless paid; paid: the
        vehicle's calls, or with no `vehicle_id` all calls of the user.
        """
        user = self._user(user)
        since = self.window_start(user)
        per_vehicle = self.paid(user) and vehicle_id is not None
        return sum(
            1
            for (owner, vehicle), times in self._calls.items()
            if owner == user.id and (not per_vehicle or vehicle == vehicle_id)
            for at in times
            if at >= since
        )

    def allowance(self, user: SimUser | str) -> int:
        """The user's monthly allowance (per user for free, per vehicle otherwise)."""
        user = self._user(user)
        return self.max_calls[user.tier if self.paid(user) else FREE]

    def _limit(self, user: SimUser, vehicle_id: str | None) -> str | None:
        """The backend's limiter; the vehicle key the call is counted under.

        `vehicle_id` is that of a vehicle-specific endpoint, else None.
        """
        key: str | None = None
        if self.paid(user) and vehicle_id is not None:
            vehicle = self._vehicles.get(vehicle_id)
            if vehicle is None or vehicle.user_id != user.id:
                raise _Error(404, "Vehicle not found or does not belong to user.")
            linked = sum(1 for v in self._vehicles.values() if v.user_id == user.id)
            most = self.max_linked_vehicles[user.tier]
            if linked > most:
                raise _Error(
                    403,
                    f"{user.tier.capitalize()} tier allows max {most} linked "
                    f"vehicles. You have {linked}.",
                )
            key = vehicle_id
        used = self.calls_used(user, key)
        allowed = self.allowance(user)
        if used >= allowed:
            if user.purchased_tokens <= 0:
                raise _Error(
                    429,
                    f"Rate limit exceeded for {user.tier} tier. Monthly allowance "
                    f"({used}/{allowed}) and purchased tokens (0) are exhausted.",
                )
            user.purchased_tokens -= 1
        return key

    # --- push ----------------------------------------------------------------------

    def webhook_target(self, user: SimUser | str) -> str | None:
        """Where the backend posts the user's events; None: it sends nothing.

        Pro users only, and only with both profile fields filled in.
        """
        user = self._user(user)
        if user.tier != PRO or not user.ha_external_url or not user.ha_webhook_id:
            return None
        return f"{user.ha_external_url.rstrip('/')}/api/webhook/{user.ha_webhook_id}"

    def push_payload(self, vehicle_id: str) -> dict[str, Any]:
        """What `push` sends for a vehicle: its last report as a raw Enode event."""
        vehicle = self._vehicles[vehicle_id]
        report = vehicle.report
        body = (
            {"id": vehicle.enode_id, "userId": vehicle.user_id}
            | {key: report[key] for key in ("lastSeen", "isReachable")}
            | _blocks(report)
            | {"capabilities": report["capabilities"]}
        )
        return {
            "createdAt": iso(self.now),
            "version": ENODE_VERSION,
            "event": WEBHOOK_EVENT,
            "user": {"id": vehicle.user_id},
            "vehicle": body,
        }

    async def push(self, vehicle_id: str) -> int | None:
        """POST the vehicle's event where its user's profile says.

        Its HTTP status; None when nothing was sent or nothing answered.
        """
        target = self.webhook_target(self._vehicles[vehicle_id].user_id)
        if target is None:
            return None
        payload = self.push_payload(vehicle_id)
        return await self._post(target, vehicle_id, json.dumps(payload).encode())

    async def push_raw(
        self,
        user: SimUser | str,
        body: bytes | str | Any,
        content_type: str = "application/json",
    ) -> int | None:
        """POST any body (bytes, text, or an object sent as JSON) for `user`."""
        target = self.webhook_target(user)
        if target is None:
            return None
        if isinstance(body, str):
            data = body.encode()
        elif isinstance(body, bytes):
            data = body
        else:
            data = json.dumps(body).encode()
        return await self._post(target, None, data, content_type)

    async def _post(
        self,
        target: str,
        vehicle_id: str | None,
        data: bytes,
        content_type: str = "application/json",
    ) -> int | None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        status: int | None = None
        try:
            async with self._session.post(
                target,
                data=data,
                headers={"Content-Type": content_type},
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as err:
            _LOGGER.debug("push to the webhook failed: %s", err)
        self.pushes.append((vehicle_id, status))
        return status

    def _schedule_push(self, vehicle_id: str) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: nobody could receive it
        task = loop.create_task(self.push(vehicle_id))
        self._push_tasks.add(task)
        task.add_done_callback(self._push_tasks.discard)

    async def flush_pushes(self) -> None:
        """Wait until the automatic pushes made so far are answered."""
        while self._push_tasks:
            await asyncio.gather(*self._push_tasks, return_exceptions=True)

    # --- server --------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop serving; pending slow answers and pushes end."""
        for task in list(self._push_tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._push_tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
        await super().stop()

    @property
    def hosted_url(self) -> str:
        """The hosted API root, e.g. `http://127.0.0.1:40123/api/v1/ha`."""
        return f"{self.url}{HOSTED_PREFIX}"

    @property
    def backend_url(self) -> str:
        """The self-hosted backend's API root, e.g. `http://127.0.0.1:40123/api/ha`."""
        return f"{self.url}{BACKEND_PREFIX}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if not (path == "/api" or path.startswith("/api/")):
            return _detail(404, "Not Found")
        self.requests.append((request.method, path))
        match self.fault:
            case EvLinkFault.SLOW:
                if not await self._sleep(self.slow_seconds):
                    return close_connection(request)
            case EvLinkFault.SERVER_ERROR:
                return web.Response(
                    status=500, text=PROXY_ERROR_BODY, content_type="text/html"
                )
            case EvLinkFault.BAD_GATEWAY:
                return _detail(502, "Error fetching vehicle data")
            case EvLinkFault.MALFORMED:
                return web.Response(
                    status=200, text=MALFORMED_BODY, content_type="application/json"
                )
        body: Any = None
        if request.method == "POST" and request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = _INVALID
        try:
            return self._api(request, body)
        except _Error as error:
            return _detail(error.status, error.detail)

    def _route(self, request: web.Request) -> tuple[str, str, str | None]:
        path = request.path.rstrip("/")
        for style, pattern in _PATHS:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            endpoint = match.group(1)
            if _METHODS[endpoint] != request.method:
                raise _Error(405, "Method Not Allowed")
            vehicle_id = match.group(2) if pattern.groups == 2 else None
            return style, endpoint, vehicle_id
        raise _Error(404, "Not Found")

    def _authenticate(self, request: web.Request, style: str) -> SimUser:
        if style == "hosted":
            key = request.headers.get("X-API-Key", "").strip()
        else:
            scheme, _, key = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not key.strip():
                raise _Error(401, "Invalid authorization header")
            key = key.strip()
        for user in self.users.values():
            if key and secrets.compare_digest(user.api_key.encode(), key.encode()):
                return user
        raise _Error(401, "Invalid API key")

    def _api(self, request: web.Request, body: Any) -> web.Response:
        style, endpoint, vehicle_id = self._route(request)
        user = self._authenticate(request, style)
        counted = endpoint in self.counted_paths
        # The backend's vehicle-specific paths are /api/ha/status|charging/{id}.
        specific = vehicle_id if style != "legacy" else None
        key = self._limit(user, specific) if counted else None
        match endpoint:
            case "me":
                response = _json(
                    {
                        "user_id": user.id,
                        "tier": user.tier,
                        "email": user.email,
                        "name": user.name,
                        "role": user.role,
                        "sms_credits": user.sms_credits,
                    }
                )
            case "vehicles":
                response = _json(
                    [
                        _vehicle_json(vehicle)
                        for vehicle in self._vehicles.values()
                        if vehicle.user_id == user.id
                    ]
                )
            case "status":
                vehicle = self._own(user, vehicle_id)
                response = _json(
                    _legacy_json(vehicle)
                    if style == "legacy"
                    else _status_json(vehicle)
                )
            case _:
                response = self._charging(user, vehicle_id, body)
        if counted:
            self._calls.setdefault((user.id, key), []).append(self.now)
            self.counted.append((request.method, request.path))
        return response

    def _own(self, user: SimUser, vehicle_id: str | None) -> SimVehicle:
        vehicle = self._vehicles.get(vehicle_id or "")
        if vehicle is None:
            raise _Error(404, "Vehicle not found")
        if vehicle.user_id != user.id:
            raise _Error(403, "Access denied")
        return vehicle

    def _charging(
        self, user: SimUser, vehicle_id: str | None, body: Any
    ) -> web.Response:
        if user.tier == FREE:
            raise _Error(403, FREE_TIER_DENIED)
        action = _charging_action(body)
        vehicle = self._own(user, vehicle_id)
        if self.charging_fault:
            raise _Error(502, "Failed to trigger charging action")
        if vehicle.smart_charging:
            raise _enode_error(
                422,
                "Unprocessable Entity",
                "Vehicle is under smart charging control. Disable smart charging "
                "to control charging manually.",
            )
        if action == "START":
            if not vehicle.plugged_in:
                raise _enode_error(400, "Bad Request", "Vehicle is not plugged in.")
            if vehicle.charging:
                raise _enode_error(400, "Bad Request", "Vehicle is already charging.")
            if vehicle.full:
                raise _enode_error(
                    400, "Bad Request", "Vehicle is fully charged to its charge limit."
                )
        elif not vehicle.charging:
            raise _enode_error(400, "Bad Request", "Vehicle is not charging.")
        # A pending action of the same kind is reused, another one is cancelled.
        enode_action: EnodeAction | None = None
        for pending in self.actions:
            if pending.vehicle_id != vehicle.id or pending.state != "PENDING":
                continue
            if pending.kind == action:
                enode_action = pending
            else:
                pending.state = "CANCELLED"
                pending.completed = self.now
        if enode_action is None:
            enode_action = EnodeAction(
                self._new_id("action"),
                user.id,
                vehicle.id,
                vehicle.enode_id,
                action,
                self.now,
                self.now + self.command_delay,
            )
            self.actions.append(enode_action)
        return _json(
            {
                "status": "success",
                "vehicle_id": vehicle.id,
                "enode_vehicle_id": vehicle.enode_id,
                "action": action,
                "enode_response": enode_action.json(),
            }
        )


# --- helpers -----------------------------------------------------------------------

_INVALID = object()  # a body that is not JSON


def _without_stamps(report: dict[str, Any]) -> dict[str, Any]:
    text = json.dumps(report, sort_keys=True)
    return json.loads(re.sub(r'"\d{4}-\d\d-\d\dT[^"]*Z"', '""', text))


def _charging_action(body: Any) -> str:
    """The action of a charging body; FastAPI's 422 (pydantic v1 style) otherwise."""
    if body is None:
        raise _Error(
            422,
            [{"loc": ["body"], "msg": "field required", "type": "value_error.missing"}],
        )
    if body is _INVALID:
        raise _Error(
            422,
            [
                {
                    "loc": ["body", 0],
                    "msg": "Expecting value: line 1 column 1 (char 0)",
                    "type": "value_error.jsondecode",
                }
            ],
        )
    if not isinstance(body, dict):
        raise _Error(
            422,
            [
                {
                    "loc": ["body"],
                    "msg": "value is not a valid dict",
                    "type": "type_error.dict",
                }
            ],
        )
    if "action" not in body:
        raise _Error(
            422,
            [
                {
                    "loc": ["body", "action"],
                    "msg": "field required",
                    "type": "value_error.missing",
                }
            ],
        )
    action = body["action"]
    if not isinstance(action, str) or not re.fullmatch(r"START|STOP", action):
        raise _Error(
            422,
            [
                {
                    "loc": ["body", "action"],
                    "msg": 'string does not match regex "^(START|STOP)$"',
                    "type": "value_error.str.regex",
                    "ctx": {"pattern": "^(START|STOP)$"},
                }
            ],
        )
    return action


def _enode_error(status: int, title: str, detail: str) -> _Error:
    """Enode's error passed through: the detail is Enode's response text."""
    problem = {
        "type": f"{ENODE_PROBLEMS}{title.lower().replace(' ', '-')}",
        "title": title,
        "detail": detail,
    }
    return _Error(status, json.dumps(problem))


def _blocks(report: dict[str, Any]) -> dict[str, Any]:
    return {
        key: report[key]
        for key in (
            "chargeState",
            "information",
            "location",
            "odometer",
            "vendor",
            "smartChargingPolicy",
        )
    }


def _name(report: dict[str, Any]) -> str:
    info = report["information"]
    return f"{info.get('brand', '')} {info.get('model', '')}"


def _vehicle_json(vehicle: SimVehicle) -> dict[str, Any]:
    """An item of `/vehicles`."""
    report = vehicle.report
    return {
        "vehicleId": vehicle.id,
        "vehicleName": _name(report),
        "latitude": report["location"]["latitude"],
        "longitude": report["location"]["longitude"],
        "lastSeen": report["lastSeen"],
        "isReachable": report["isReachable"],
    } | _blocks(report)


def _status_json(vehicle: SimVehicle) -> dict[str, Any]:
    """`/ha/status/{id}`."""
    report = vehicle.report
    return (
        {"vehicleName": _name(report), "isReachable": report["isReachable"]}
        | _blocks(report)
        | {"capabilities": report["capabilities"], "lastSeen": report["lastSeen"]}
    )


def _legacy_json(vehicle: SimVehicle) -> dict[str, Any]:
    """`/api/status/{id}`: the legacy root keys, no capabilities."""
    report = vehicle.report
    charge = report["chargeState"]
    return {
        "batteryLevel": charge["batteryLevel"],
        "range": charge["range"],
        "isCharging": charge["isCharging"],
        "isPluggedIn": charge["isPluggedIn"],
        "chargingState": charge["powerDeliveryState"],
        "vehicleName": _name(report),
        "latitude": report["location"]["latitude"],
        "longitude": report["location"]["longitude"],
        "lastSeen": report["lastSeen"],
        "isReachable": report["isReachable"],
    } | _blocks(report)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(data).encode(), content_type="application/json"
    )


def _detail(status: int, detail: Any) -> web.Response:
    response = _json({"detail": detail}, status)
    if status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


# --- demo (python -m tests.simulators evlinkha) ------------------------------------

DEMO_EMAIL = "evlink-demo@example.com"  # not the ev.energy demo's: titles find entries
DEMO_API_KEY = "evlink_sim_demo_key"
# The battery level moves 1 % every 50 s on 10 kWh (polls are rare: the allowance).
DEMO_CHARGE_KW = 7.2
DEMO_BATTERY_KWH = 10.0
DEMO_UNPLUG_AFTER = 30  # seconds after the battery is full
DEMO_PLUG_IN_AFTER = 20  # seconds after unplugging
DEMO_SILENT_AFTER = 60  # the parked vehicle goes silent after this many seconds
DEMO_SILENT_FOR = 120  # and reports again after this many


def demo_simulator(host: str = "127.0.0.1") -> tuple[EvLinkSimulator, SimUser]:
    """The demo's set-up: a pro user, a charging and a parked vehicle."""
    simulator = EvLinkSimulator(host=host)
    user = simulator.add_user(DEMO_EMAIL, PRO, api_key=DEMO_API_KEY, name="Demo User")
    charging = simulator.add_vehicle(
        SimVehicle(
            user.id,
            brand="XPENG",
            model="G6",
            battery_level=55.0,
            battery_capacity=DEMO_BATTERY_KWH,
            charge_power_kw=DEMO_CHARGE_KW,
            charge_limit=80,
        )
    )
    simulator.add_vehicle(
        SimVehicle(
            user.id,
            brand="Tesla",
            model="Model 3",
            year=2022,
            battery_level=72.0,
            battery_capacity=60.0,
            odometer=48_000.0,
            latitude=59.3326,
            longitude=18.0649,
        )
    )
    simulator.plug_in(charging.id)
    return simulator, user


async def run_demo(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """One pro user with a charging and a parked vehicle.

    The charging one charges to its limit (PLUGGED_IN:COMPLETE), stays plugged in a
    while, unplugs, drives a little and plugs in again. The parked one goes silent
    now and then (its lastSeen stops moving).
    """
    simulator, user = demo_simulator(args.host)
    charging, parked = simulator.vehicles
    await simulator.start(args.port)
    try:
        emit(provider="evlinkha")
        emit(server_url=simulator.url)
        emit(api_url=simulator.hosted_url)
        emit(api_key=user.api_key)
        emit(email=user.email)
        emit(vehicles=f"{charging.id},{parked.id}")
        since_event = 0
        elapsed = 0
        async for _ in every_second(stop):
            was_full = charging.full
            simulator.advance(1)
            elapsed += 1
            since_event += 1
            if charging.full and not was_full:
                since_event = 0
                emit(event="complete", vehicle=charging.id)
            elif charging.full and since_event >= DEMO_UNPLUG_AFTER:
                simulator.drive(charging.id, 10.0, kwh_per_km=0.3)
                since_event = 0
                emit(event="unplug", vehicle=charging.id)
            elif not charging.plugged_in and since_event >= DEMO_PLUG_IN_AFTER:
                simulator.plug_in(charging.id)
                since_event = 0
                emit(event="plug_in", vehicle=charging.id)
            phase = elapsed % (DEMO_SILENT_AFTER + DEMO_SILENT_FOR)
            if phase == DEMO_SILENT_AFTER:
                parked.silent = True
                emit(event="silent", vehicle=parked.id)
            elif phase == 0:
                parked.silent = False
                emit(event="reporting", vehicle=parked.id)
    finally:
        await simulator.stop()


DEMO = SimulatorDemo(
    run=run_demo,
    label="EVLinkHA",
    needs=("server_url", "api_key", "email"),
    identifier="email",  # the entry's title is "EVLinkHA <email>"
    menu_path=("evlinkha",),
    # The flow takes the server root; the client appends /api/v1/ha unless the
    # URL has a path of its own.
    forms=(
        (
            "evlinkha",
            lambda sim: {
                "api_key": sim["api_key"],
                "advanced": {"server_url": sim["server_url"]},
            },
        ),
    ),
)
