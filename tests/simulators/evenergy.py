"""A simulated ev.energy API v2 with its OAuth 2 server.

Facts: providers.md section 1 and api-docs/ev-energy-v2.txt. One aiohttp server on
127.0.0.1 serves both halves, as api.ev.energy does:

    /o/authorize/     GET: a simulated user who is logged in and consents (302)
    /o/token/         POST: authorization_code, refresh_token, client_credentials
    /o/revoke_token/  POST: revoke an access or refresh token (trailing slash needed)
    /v2/...           the API: Bearer tokens, problem+json errors, rate limit

The simulation is deterministic: the simulated clock starts at the real time (or
`start_time`) and only moves with `EvEnergySimulator.advance`. Token lifetimes,
authorization codes, the rolling rate-limit hour and every timestamp use it. Faults
(`EvEnergyFault`) are only observable through real HTTP.

Where the sources leave room, the simulator chooses:
- `/v2/charging_sessions` filters: `vehicle_id`, `evse_id`, `is_finished`
  (true/false); a vehicle's current plugged-in session is
  `?vehicle_id=<id>&is_finished=false`. Sessions carry `sub_sessions` inline,
  newest first.
- A token's scopes are checked against its client's scopes at each request, so
  removing a scope from `SimClient.scopes` also affects tokens already issued.
- A client-credentials token names its user with `EvEnergy-User`: the user's id
  (the spec's pattern, `user` + 26 characters) or the user's URL (the `url` the
  user resource has, with or without the trailing slash; the docs' user-header
  page says "the URL of the user"). It is required on every endpoint but
  `/v2/users/`; a missing header, any other value or a user outside the
  organisation is a 400 problem+json (RFC 9457 `title`, `status`, `detail`, no
  `type`: neither the docs nor the spec name one for it). Its requests share
  one bucket per client.
- Unauthenticated requests (401) are logged in `requests` but use no budget and
  carry no rate-limit headers; 429 answers use no budget either.
- Status and location logs are written at each `advance()` (and at each change
  made through the API or the control methods) unless the vehicle is `silent`.
- Boost: `boost_start` ends the SMART sub-session and opens a BOOST one (START_CHARGE
  command log); `boost_end` ends it and opens a SMART one (STOP_CHARGE). A boost
  lasts until `boost_end`, unplugging, or smart charging being switched off.

`DEMO` (at the end) is what `python -m tests.simulators evenergy` runs: one user
with a charging and a parked vehicle and one charger.
"""

import argparse
import asyncio
import base64
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
import hashlib
import itertools
import json
import logging
import math
import re
import secrets
import time
from typing import Any
from urllib.parse import unquote_plus
import uuid

from aiohttp import web
from yarl import URL

from .common import SimServer, close_connection, issued
from .demo import SimulatorDemo, emit, every_second

_LOGGER = logging.getLogger(__name__)

API_VERSION = "2"
DEFAULT_TOKEN_LIFETIME = 36000  # seconds (10 h)
CODE_LIFETIME = 60.0  # an authorization code is valid for a minute
DEFAULT_HOURLY_LIMIT = 1000
RATE_LIMIT_WINDOW = 3600.0  # rolling hour
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_LOGS = 5000  # per vehicle/charger and kind; the oldest are dropped
ABOUT_BLANK = "about:blank"
PROBLEMS = "https://api.ev.energy/v2/problems/"
# Home Assistant's redirect URIs (my.home-assistant.io and a local instance).
DEFAULT_REDIRECT_URIS = (
    "https://my.home-assistant.io/redirect/oauth",
    "http://127.0.0.1:8123/auth/external/callback",
)
ANY_REDIRECT_URI = "*"  # in SimClient.redirect_uris: accept every redirect URI
DEFAULT_SCOPES = frozenset(
    {
        "vehicle:read",
        "vehicle:write",
        "evse:read",
        "evse:write",
        "charging_session:read",
        "charging_session:write",
        "user:read",
        "debug:read",
    }
)
AC = "AC - Typically home chargers"
DC = "DC - Typically OTG chargers"
# Sub-session modes.
SMART = "SMART"
BOOST = "BOOST"
UNMANAGED_HOME = "UNMANAGED_HOME"
BOOST_CURRENT_MILLIAMPS = 32000
RECENTLY_DRIVEN = 600.0  # seconds a vehicle counts as RECENTLY_FINISHED_DRIVING
SERVER_ERROR_BODY = (
    '<!doctype html><html lang="en"><head><title>Server Error (500)</title>'
    "</head><body><h1>Server Error (500)</h1><p></p></body></html>"
)
BAD_GATEWAY_BODY = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)
UNAVAILABLE_BODY = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head>"
    "<body><center><h1>503 Service Temporarily Unavailable</h1></center>"
    "</body></html>"
)
MALFORMED_BODY = "<html>oops"
NOT_FOUND = "Resource does not exist or cannot be accessed."
NO_PERMISSION = "You do not have permission to perform this action."
NOT_DELIVERED = "The command could not be delivered to the vehicle or charger."
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class EvEnergyFault(StrEnum):
    """A failure mode of the simulated service (`fault` for /v2/, `token_fault`)."""

    NONE = "none"
    # 500 with Django's HTML error page.
    SERVER_ERROR = "server_error"
    # 502 / 503 with an HTML page from the proxy in front.
    BAD_GATEWAY = "bad_gateway"
    UNAVAILABLE = "unavailable"
    # 200 with a body that is not JSON; nothing is applied.
    MALFORMED = "malformed"
    # The answer comes after `slow_seconds`.
    SLOW = "slow"


def iso(epoch: float) -> str:
    """ISO 8601 UTC with microseconds, e.g. `2026-08-24T14:15:22.000000Z`."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> float:
    """Epoch seconds of an ISO 8601 date-time (ValueError when it is none)."""
    value = datetime.fromisoformat(text.replace(" ", "+"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def make_id(prefix: str, number: int) -> str:
    """A 4-char prefix and a 26-char ULID-like id that sorts by `number`."""
    digits = []
    for _ in range(16):
        number, digit = divmod(number, 32)
        digits.append(_CROCKFORD[digit])
    return f"{prefix}01JEVSM000{''.join(reversed(digits))}"


@dataclass
class SimUser:
    """An ev.energy user."""

    id: str
    email: str
    first_name: str = "Sim"
    last_name: str = "User"


@dataclass
class SimClient:
    """An OAuth application ev.energy issued.

    `organisation_users` makes it an organisation client: it may use the
    client-credentials grant and act for these users (EvEnergy-User).
    """

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = DEFAULT_REDIRECT_URIS
    scopes: set[str] = field(default_factory=lambda: set(DEFAULT_SCOPES))
    organisation_users: set[str] | None = None


@dataclass
class _Grant:
    """An access token, with its refresh token (None for client credentials)."""

    client_id: str
    user_id: str | None
    scopes: frozenset[str]
    access_token: str
    refresh_token: str | None
    expires_at: float


@dataclass
class _Code:
    client_id: str
    user_id: str
    redirect_uri: str
    scopes: frozenset[str]
    expires_at: float
    code_challenge: str | None
    code_challenge_method: str


@dataclass
class SubSession:
    """A charging sub-session: one mode within a plug-in episode."""

    id: str
    mode: str
    start: float
    start_soc: float
    end: float | None = None
    energy_wh: float = 0.0
    end_soc: float | None = None


@dataclass
class ChargingSession:
    """A plug-in episode; `sub_sessions` newest first."""

    id: str
    user_id: str
    vehicle_id: str
    evse_id: str | None
    start: float
    end: float | None = None
    sub_sessions: list[SubSession] = field(default_factory=list)

    @property
    def current(self) -> SubSession | None:
        """The in-progress sub-session, if any."""
        if self.sub_sessions and self.sub_sessions[0].end is None:
            return self.sub_sessions[0]
        return None


@dataclass
class SimVehicle:
    """One simulated vehicle (ids are assigned by `add_vehicle` when empty).

    Plain attributes hold the state; the status logs the API shows are snapshots
    taken by `EvEnergySimulator.sample` (at each `advance()` unless `silent`).
    Switches: `silent` (no new logs: `sampled_at` stops moving), `unreachable`
    (boost commands answer 503), `smart_window` (whether the smart schedule lets
    the vehicle charge now).
    """

    user_id: str
    id: str = ""
    description: str = "My EV"
    battery_size_watt_hours: int = 64000
    soc: float = 50.0
    maximum_charge_limit_percentage: int | None = 80
    smart_charging_enabled: bool = True
    vehicle_class: str | None = "PASSENGER"
    integrated: str = "ACTIVE"
    disabled: bool = False
    charge_power_watts: int = 7400
    current_type: str = AC
    odometer_meters: int = 12_345_000
    at_home: bool = True
    smart_window: bool = True
    silent: bool = False
    unreachable: bool = False
    # Set by the simulator.
    plugged_in: bool = field(default=False, init=False)
    charge_energy_added_wh: float = field(default=0.0, init=False)
    session: ChargingSession | None = field(default=None, init=False)
    last_drive_end: float | None = field(default=None, init=False)
    status_logs: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=MAX_LOGS), init=False
    )
    location_logs: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=MAX_LOGS), init=False
    )
    command_logs: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=MAX_LOGS), init=False
    )

    @property
    def target_soc(self) -> int:
        """The charge target in %."""
        return self.maximum_charge_limit_percentage or 100

    @property
    def mode(self) -> str | None:
        """The mode of the current sub-session (None when unplugged)."""
        current = self.session.current if self.session else None
        return current.mode if current else None

    @property
    def complete(self) -> bool:
        """Plugged in and at its target."""
        return self.plugged_in and self.soc >= self.target_soc

    @property
    def charging(self) -> bool:
        """True while energy flows into the battery."""
        if not self.plugged_in or self.complete:
            return False
        mode = self.mode
        return mode in (BOOST, UNMANAGED_HOME) or (mode == SMART and self.smart_window)

    @property
    def state(self) -> str:
        """The VehicleStatusLog `state`."""
        if self.plugged_in:
            if self.complete:
                return "PLUGGED_IN_COMPLETE"
            return "PLUGGED_IN_CHARGING" if self.charging else "PLUGGED_IN_NOT_CHARGING"
        return "STATIONARY"

    def charge(self, seconds: float) -> float:
        """Charge for `seconds` if charging; returns the energy added (Wh)."""
        if not self.charging or self.charge_power_watts <= 0:
            return 0.0
        needed = (self.target_soc - self.soc) / 100 * self.battery_size_watt_hours
        added = min(self.charge_power_watts * seconds / 3600, max(needed, 0.0))
        self.soc = min(self.soc + added / self.battery_size_watt_hours * 100, 100.0)
        if needed - added < 1e-6:
            self.soc = float(self.target_soc)
        self.charge_energy_added_wh += added
        return added

    def status(self) -> dict[str, Any]:
        """The telematics fields of a VehicleStatusLog, from the current state."""
        battery = self.battery_size_watt_hours
        charging = self.charging
        rate = self.charge_power_watts if charging else 0
        minutes: int | None = None
        if charging and rate:
            remaining = (self.target_soc - self.soc) / 100 * battery
            minutes = math.ceil(remaining / rate * 60)
        elif self.complete:
            minutes = 0
        return {
            "state_of_charge_percentage": round(self.soc),
            "is_charging": charging,
            "is_plugged_in": self.plugged_in,
            "is_complete": self.complete,
            "charge_rate_watts": rate,
            "estimated_charge_rate_watts": (
                self.charge_power_watts if self.plugged_in else None
            ),
            "charge_level_watt_hours": round(self.soc / 100 * battery),
            "target_charge_level_watt_hours": round(self.target_soc / 100 * battery),
            "target_charge_level_percentage": self.target_soc,
            "charge_energy_added_watt_hours": round(self.charge_energy_added_wh),
            "minutes_to_full_charge": minutes,
            "current_type": self.current_type if self.plugged_in else None,
            "odometer_meters": self.odometer_meters,
            "data_source": "TELEMATICS",
            "state": self.state,
        }


@dataclass
class SimEvse:
    """One simulated charger; it serves the vehicle `vehicle_id` at home."""

    user_id: str
    id: str = ""
    cpid: str = "SIM-EVSE-0001"
    vehicle_id: str | None = None
    meter_reading_wh: float = 1_250_000.0
    max_current_milliamps: int = 32000
    voltage_millivolts: int = 230_000
    rssi_dbm: int = -61
    silent: bool = False
    status_logs: deque[dict[str, Any]] = field(
        default_factory=lambda: deque(maxlen=MAX_LOGS), init=False
    )


@dataclass
class _Call:
    """An authenticated API call."""

    request: web.Request
    grant: _Grant
    user_id: str | None  # the user it acts for (None: organisation-wide)
    match: dict[str, str]


type Handler = Callable[[_Call], web.Response]


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: str  # method name
    scope: str
    needs_user: bool = True


def _route(
    method: str, path: str, handler: str, scope: str, *, needs_user: bool = True
) -> _Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return _Route(method, re.compile(regex), handler, scope, needs_user)


ROUTES = (
    _route("GET", "/v2/users", "_list_users", "user:read", needs_user=False),
    _route("GET", "/v2/users/{id}", "_user", "user:read", needs_user=False),
    _route("GET", "/v2/vehicles", "_list_vehicles", "vehicle:read"),
    _route("GET", "/v2/vehicles/{id}", "_vehicle_get", "vehicle:read"),
    _route("PATCH", "/v2/vehicles/{id}", "_vehicle_patch", "vehicle:write"),
    _route("GET", "/v2/vehicles/{id}/status_logs", "_status_logs", "vehicle:read"),
    _route("GET", "/v2/vehicles/{id}/location_logs", "_location_logs", "vehicle:read"),
    _route("GET", "/v2/vehicles/{id}/command_logs", "_command_logs", "debug:read"),
    _route("GET", "/v2/evses", "_list_evses", "evse:read"),
    _route("GET", "/v2/evses/{id}", "_evse_get", "evse:read"),
    _route("GET", "/v2/evses/{id}/status_logs", "_evse_status_logs", "evse:read"),
    _route("GET", "/v2/charging_sessions", "_list_sessions", "charging_session:read"),
    _route(
        "GET", "/v2/charging_sessions/{id}", "_session_get", "charging_session:read"
    ),
    _route(
        "POST",
        "/v2/charging_sessions/{id}/boost_start",
        "_boost_start",
        "charging_session:write",
    ),
    _route(
        "POST",
        "/v2/charging_sessions/{id}/boost_end",
        "_boost_end",
        "charging_session:write",
    ),
)


class EvEnergySimulator(SimServer):
    """ev.energy's OAuth server and API v2 on one port.

    Control attributes: `token_lifetime` (s), `hourly_limit`, `retry_after_header`
    ("retry-after" or "RetryAfter"), `fault` (API) and `token_fault` (/o/token/),
    `slow_seconds`, `consent` (False: the user denies at /o/authorize/),
    `login_user` (the user id who consents; default the first user).
    Logs: `requests` ((method, path) of every /v2/ request), `token_requests`
    (grant_type of every /o/token/ request), `user_headers` (every EvEnergy-User
    value an organisation sent, as sent).
    """

    label = "ev.energy simulator"

    def __init__(
        self, *, host: str = "127.0.0.1", start_time: float | None = None
    ) -> None:
        """Prepare the simulator; nothing listens until `start()`."""
        super().__init__(host)
        self.token_lifetime: float = DEFAULT_TOKEN_LIFETIME
        self.hourly_limit = DEFAULT_HOURLY_LIMIT
        self.retry_after_header = "retry-after"
        self.fault = EvEnergyFault.NONE
        self.token_fault = EvEnergyFault.NONE
        self.slow_seconds = 30.0
        self.consent = True
        self.login_user: str | None = None
        self.requests: list[tuple[str, str]] = []
        self.token_requests: list[str] = []
        self.user_headers: list[str] = []
        self.users: dict[str, SimUser] = {}
        self.clients: dict[str, SimClient] = {}
        self.sessions: dict[str, ChargingSession] = {}
        self._vehicles: dict[str, SimVehicle] = {}
        self._evses: dict[str, SimEvse] = {}
        self._access: dict[str, _Grant] = {}
        self._refresh: dict[str, _Grant] = {}
        self._codes: dict[str, _Code] = {}
        self._buckets: dict[tuple[str, str | None], deque[float]] = {}
        self._ids = itertools.count(1)
        self._start_time = float(
            math.floor(time.time()) if start_time is None else start_time
        )
        self._elapsed = 0.0

    # --- set-up --------------------------------------------------------------------

    @property
    def now(self) -> float:
        """The simulated time (epoch seconds)."""
        return self._start_time + self._elapsed

    def _new_id(self, prefix: str) -> str:
        return make_id(prefix, next(self._ids))

    def add_user(self, email: str = "driver@example.com", user_id: str = "") -> SimUser:
        """Register a user (an id is made up when none is given)."""
        user = SimUser(user_id or self._new_id("user"), email)
        if user.id in self.users:
            raise ValueError(f"duplicate user {user.id}")
        self.users[user.id] = user
        return user

    def add_client(
        self,
        client_id: str,
        client_secret: str,
        *,
        redirect_uris: Iterable[str] = DEFAULT_REDIRECT_URIS,
        scopes: Iterable[str] = DEFAULT_SCOPES,
        organisation_users: Iterable[str] | None = None,
    ) -> SimClient:
        """Register an OAuth application (see `SimClient`)."""
        if client_id in self.clients:
            raise ValueError(f"duplicate client {client_id}")
        client = SimClient(
            client_id,
            issued(client_secret),
            tuple(redirect_uris),
            set(scopes),
            None if organisation_users is None else set(organisation_users),
        )
        self.clients[client_id] = client
        return client

    @property
    def vehicles(self) -> list[SimVehicle]:
        """All simulated vehicles."""
        return list(self._vehicles.values())

    def add_vehicle(
        self, vehicle: SimVehicle, *, plugged_in: bool = False
    ) -> SimVehicle:
        """Register a vehicle of a known user; it sends its first status at once."""
        if vehicle.user_id not in self.users:
            raise ValueError(f"unknown user {vehicle.user_id}")
        vehicle.id = vehicle.id or self._new_id("vhcl")
        if vehicle.id in self._vehicles:
            raise ValueError(f"duplicate vehicle {vehicle.id}")
        self._vehicles[vehicle.id] = vehicle
        if plugged_in:
            self.plug_in(vehicle.id)
        self.sample(vehicle, force=True)
        return vehicle

    def vehicle(self, vehicle_id: str) -> SimVehicle:
        """The vehicle with this id (KeyError if unknown)."""
        return self._vehicles[vehicle_id]

    @property
    def evses(self) -> list[SimEvse]:
        """All simulated chargers."""
        return list(self._evses.values())

    def add_evse(self, evse: SimEvse) -> SimEvse:
        """Register a charger of a known user."""
        if evse.user_id not in self.users:
            raise ValueError(f"unknown user {evse.user_id}")
        evse.id = evse.id or self._new_id("evse")
        if evse.id in self._evses:
            raise ValueError(f"duplicate evse {evse.id}")
        self._evses[evse.id] = evse
        self._sample_evse(evse, force=True)
        return evse

    def evse(self, evse_id: str) -> SimEvse:
        """The charger with this id (KeyError if unknown)."""
        return self._evses[evse_id]

    def _evse_of(self, vehicle: SimVehicle) -> SimEvse | None:
        if not vehicle.at_home:
            return None
        for evse in self._evses.values():
            if evse.vehicle_id == vehicle.id:
                return evse
        return None

    # --- story ---------------------------------------------------------------------

    def plug_in(self, vehicle_id: str) -> ChargingSession:
        """Plug a vehicle in: a charging session starts (SMART or UNMANAGED_HOME)."""
        vehicle = self._vehicles[vehicle_id]
        if vehicle.plugged_in and vehicle.session is not None:
            return vehicle.session
        vehicle.plugged_in = True
        vehicle.charge_energy_added_wh = 0.0
        evse = self._evse_of(vehicle)
        session = ChargingSession(
            self._new_id("cses"),
            vehicle.user_id,
            vehicle.id,
            evse.id if evse else None,
            self.now,
        )
        self.sessions[session.id] = session
        vehicle.session = session
        self._open_sub_session(
            vehicle, SMART if vehicle.smart_charging_enabled else UNMANAGED_HOME
        )
        self._changed(vehicle)
        return session

    def unplug(self, vehicle_id: str) -> None:
        """Unplug a vehicle: its session and sub-session end."""
        vehicle = self._vehicles[vehicle_id]
        session = vehicle.session
        if session is not None:
            self._close_sub_session(vehicle)
            session.end = self.now
        vehicle.session = None
        vehicle.plugged_in = False
        self._changed(vehicle)

    def drive(self, vehicle_id: str, km: float, wh_per_km: float = 160.0) -> None:
        """Drive (unplugged) at once: odometer up, charge down; then parked."""
        vehicle = self._vehicles[vehicle_id]
        if vehicle.plugged_in:
            self.unplug(vehicle_id)
        vehicle.odometer_meters += round(km * 1000)
        used = km * wh_per_km / vehicle.battery_size_watt_hours * 100
        vehicle.soc = max(vehicle.soc - used, 0.0)
        vehicle.last_drive_end = self.now
        self._changed(vehicle)

    def current_session(self, vehicle_id: str) -> ChargingSession | None:
        """The vehicle's session while plugged in."""
        return self._vehicles[vehicle_id].session

    def set_smart_charging(self, vehicle: SimVehicle, enabled: bool) -> None:
        """Switch smart charging (as PATCH does): SMART <-> UNMANAGED_HOME."""
        vehicle.smart_charging_enabled = enabled
        if vehicle.session is None:
            return
        mode = vehicle.mode
        if enabled and mode == UNMANAGED_HOME:
            self._close_sub_session(vehicle)
            self._open_sub_session(vehicle, SMART)
        elif not enabled and mode in (SMART, BOOST):
            self._close_sub_session(vehicle)
            self._open_sub_session(vehicle, UNMANAGED_HOME)

    def _open_sub_session(self, vehicle: SimVehicle, mode: str) -> None:
        assert vehicle.session is not None
        sub = SubSession(self._new_id("csub"), mode, self.now, vehicle.soc)
        vehicle.session.sub_sessions.insert(0, sub)

    def _close_sub_session(self, vehicle: SimVehicle) -> None:
        current = vehicle.session.current if vehicle.session else None
        if current is not None:
            current.end = self.now
            current.end_soc = vehicle.soc

    def advance(self, seconds: float) -> None:
        """Move simulated time: vehicles charge, chargers meter, logs are written."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._elapsed += seconds
        for vehicle in self._vehicles.values():
            added = vehicle.charge(seconds)
            current = vehicle.session.current if vehicle.session else None
            if current is not None:
                current.energy_wh += added
            evse = self._evse_of(vehicle) if vehicle.plugged_in else None
            if evse is not None:
                evse.meter_reading_wh += added
            self.sample(vehicle)
        for evse in self._evses.values():
            self._sample_evse(evse)

    def _changed(self, vehicle: SimVehicle) -> None:
        """Write logs after a change, as the next telematics poll would."""
        self.sample(vehicle)
        for evse in self._evses.values():
            if evse.vehicle_id == vehicle.id:
                self._sample_evse(evse)

    def sample(self, vehicle: SimVehicle, *, force: bool = False) -> None:
        """Write a status and a location log now (not while `silent`, unless forced).

        A log at the same instant as the last one replaces it.
        """
        if vehicle.silent and not force:
            return
        stamp = iso(self.now)
        status = {"sampled_at": stamp, "logged_at": stamp} | vehicle.status()
        if (
            vehicle.last_drive_end is not None
            and not vehicle.plugged_in
            and self.now - vehicle.last_drive_end < RECENTLY_DRIVEN
        ):
            status["state"] = "RECENTLY_FINISHED_DRIVING"
        location = {"sampled_at": stamp, "logged_at": stamp, "at_home": vehicle.at_home}
        for logs, entry in (
            (vehicle.status_logs, status),
            (vehicle.location_logs, location),
        ):
            if logs and logs[0]["sampled_at"] == stamp:
                logs[0] = entry
            else:
                logs.appendleft(entry)

    def _sample_evse(self, evse: SimEvse, *, force: bool = False) -> None:
        if evse.silent and not force:
            return
        vehicle = self._vehicles.get(evse.vehicle_id or "")
        plugged = bool(
            vehicle and vehicle.plugged_in and self._evse_of(vehicle) is evse
        )
        charging = bool(plugged and vehicle and vehicle.charging)
        power = vehicle.charge_power_watts if charging and vehicle else 0
        if charging:
            mode, pilot = "Charge", "C"
        elif plugged:
            mode, pilot = ("Idle" if vehicle and vehicle.complete else "Delay"), "B"
        else:
            mode, pilot = "Idle", "A"
        stamp = iso(self.now)
        entry = {
            "sampled_at": stamp,
            "logged_at": stamp,
            "is_plugged_in": plugged,
            "is_charging": charging,
            "charge_rate_watts": power,
            "export_power_watts": 0,
            "control_pilot_status": pilot,
            "meter_reading_watt_hours": round(evse.meter_reading_wh),
            "is_enabled": True,
            "max_current_rating_milliamps": evse.max_current_milliamps,
            "cable_current_rating_milliamps": evse.max_current_milliamps,
            "signal_strength_rssi_dbm": evse.rssi_dbm,
            "inlet_power_watts": power,
            "voltage_millivolts": evse.voltage_millivolts,
            "state_of_charge_percentage": None,
            "mode": mode,
        }
        if evse.status_logs and evse.status_logs[0]["sampled_at"] == stamp:
            evse.status_logs[0] = entry
        else:
            evse.status_logs.appendleft(entry)

    def _command(self, vehicle: SimVehicle, command: str) -> None:
        stamp = self.now
        if vehicle.command_logs:
            # Command logs are identified by their time: keep them distinct.
            last = parse_time(vehicle.command_logs[0]["logged_at"])
            stamp = max(stamp, last + 1e-3)
        number = next(self._ids)
        vehicle.command_logs.appendleft(
            {
                "logged_at": iso(stamp),
                "command": command,
                "external_command_id": f"ext-cmd-{number}",
                "current_milliamps": (
                    BOOST_CURRENT_MILLIAMPS if command == "START_CHARGE" else 0
                ),
                "internal_command_id": str(uuid.UUID(int=number)),
            }
        )

    # --- tokens --------------------------------------------------------------------

    def issue_token(self, client_id: str, user_id: str | None = None) -> dict[str, Any]:
        """A token response, as after a completed authorization (or client creds)."""
        client = self.clients[client_id]
        return self._issue(client, user_id, frozenset(client.scopes))

    def _issue(
        self, client: SimClient, user_id: str | None, scopes: frozenset[str]
    ) -> dict[str, Any]:
        grant = _Grant(
            client.client_id,
            user_id,
            scopes,
            issued(secrets.token_urlsafe(24)),
            None if user_id is None else issued(secrets.token_urlsafe(24)),
            self.now + self.token_lifetime,
        )
        self._access[grant.access_token] = grant
        answer: dict[str, Any] = {
            "access_token": grant.access_token,
            "expires_in": int(self.token_lifetime),
            "token_type": "Bearer",
            "scope": " ".join(sorted(scopes)),
        }
        if grant.refresh_token is not None:
            self._refresh[grant.refresh_token] = grant
            answer["refresh_token"] = grant.refresh_token
        return answer

    def _drop(self, grant: _Grant) -> None:
        self._access.pop(grant.access_token, None)
        if grant.refresh_token is not None:
            self._refresh.pop(grant.refresh_token, None)

    def revoke(self, user_id: str) -> None:
        """Revoke every token of a user: API calls 401, refreshes invalid_grant."""
        for grant in list(self._access.values()) + list(self._refresh.values()):
            if grant.user_id == user_id:
                self._drop(grant)

    def expire_tokens(self) -> None:
        """Let every access token expire now (refresh tokens stay valid)."""
        for grant in self._access.values():
            grant.expires_at = min(grant.expires_at, self.now)

    def rate_limit_remaining(self, client_id: str, user_id: str | None) -> int:
        """What `x-ratelimit-remaining` would say for this bucket now."""
        bucket = self._bucket((client_id, user_id))
        return max(self.hourly_limit - len(bucket), 0)

    # --- server --------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The API root, e.g. `http://127.0.0.1:40123/v2`."""
        return f"{self.url}/v2"

    @property
    def authorize_url(self) -> str:
        """The authorization endpoint."""
        return f"{self.url}/o/authorize/"

    @property
    def token_url(self) -> str:
        """The token endpoint."""
        return f"{self.url}/o/token/"

    async def _fault_answer(
        self, request: web.Request, fault: EvEnergyFault
    ) -> web.StreamResponse | None:
        if fault == EvEnergyFault.SLOW and not await self._sleep(self.slow_seconds):
            return close_connection(request)
        match fault:
            case EvEnergyFault.SERVER_ERROR:
                return _html(500, SERVER_ERROR_BODY)
            case EvEnergyFault.BAD_GATEWAY:
                return _html(502, BAD_GATEWAY_BODY)
            case EvEnergyFault.UNAVAILABLE:
                return _html(503, UNAVAILABLE_BODY)
            case EvEnergyFault.MALFORMED:
                return web.Response(
                    status=200, text=MALFORMED_BODY, content_type="application/json"
                )
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/v2/") or path == "/v2":
            self.requests.append((request.method, path))
            answer = await self._fault_answer(request, self.fault)
            if answer is not None:
                return answer
            if request.method in ("PATCH", "POST", "PUT") and request.can_read_body:
                try:
                    request["json_body"] = await request.json()
                except ValueError:
                    request["json_body"] = None
            return self._api(request)
        if path in ("/o/authorize/", "/o/authorize") and request.method == "GET":
            return self._authorize(request)
        if path in ("/o/token/", "/o/token") and request.method == "POST":
            answer = await self._fault_answer(request, self.token_fault)
            if answer is not None:
                return answer
            return await self._token(request)
        if path == "/o/revoke_token/" and request.method == "POST":
            return await self._revoke_token(request)
        if path.startswith("/o/"):
            return web.Response(status=405, text="Method Not Allowed")
        # Unauthenticated paths outside the API answer 403 on the real host.
        return _problem(403, "Forbidden", NO_PERMISSION)

    # --- OAuth ---------------------------------------------------------------------

    def _authorize(self, request: web.Request) -> web.Response:
        query = request.query
        client = self.clients.get(query.get("client_id", ""))
        if client is None:
            return _html(400, "<h1>Error: invalid_client</h1>")
        redirect_uri = query.get("redirect_uri")
        if redirect_uri is None and len(client.redirect_uris) == 1:
            redirect_uri = client.redirect_uris[0]
        if redirect_uri is None or (
            ANY_REDIRECT_URI not in client.redirect_uris
            and redirect_uri not in client.redirect_uris
        ):
            # Never redirect to an unregistered URI.
            return _html(
                400, "<h1>Error: invalid_request</h1><p>Mismatching redirect URI.</p>"
            )
        target = URL(redirect_uri)
        extra = {"state": query["state"]} if "state" in query else {}

        def redirect(**params: str) -> web.Response:
            location = target.update_query(params | extra)
            return web.Response(status=302, headers={"Location": str(location)})

        if query.get("response_type") != "code":
            return redirect(error="unsupported_response_type")
        if not self.consent:
            return redirect(error="access_denied")
        user_id = self.login_user or next(iter(self.users), None)
        if user_id is None or user_id not in self.users:
            return _html(400, "<h1>No user is logged in.</h1>")
        requested = query.get("scope")
        scopes = frozenset(requested.split()) if requested else frozenset(client.scopes)
        if not scopes <= client.scopes:
            return redirect(error="invalid_scope")
        method = query.get("code_challenge_method", "plain")
        if method not in ("plain", "S256"):
            return redirect(error="invalid_request")
        code = issued(secrets.token_urlsafe(24))
        self._codes[code] = _Code(
            client.client_id,
            user_id,
            redirect_uri,
            scopes,
            self.now + CODE_LIFETIME,
            query.get("code_challenge"),
            method,
        )
        return redirect(code=code)

    def _client_auth(
        self, request: web.Request, form: dict[str, str]
    ) -> SimClient | None:
        """The client of HTTP Basic or form credentials; None when they are wrong."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded.strip(), validate=True).decode()
            except ValueError:
                return None
            client_id, _, secret = decoded.partition(":")
            # RFC 6749 2.3.1: each part is form-urlencoded before Base64.
            client_id, secret = unquote_plus(client_id), unquote_plus(secret)
        client = self.clients.get(client_id or "")
        if client is None or not secrets.compare_digest(
            (secret or "").encode(), client.client_secret.encode()
        ):
            return None
        return client

    async def _token(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        grant_type = form.get("grant_type", "")
        self.token_requests.append(grant_type)
        client = self._client_auth(request, form)
        if client is None:
            return _oauth_error(401, "invalid_client")
        match grant_type:
            case "authorization_code":
                code = self._codes.pop(form.get("code", ""), None)
                if (
                    code is None
                    or code.client_id != client.client_id
                    or code.expires_at < self.now
                    or code.redirect_uri != form.get("redirect_uri")
                    or not _pkce_ok(code, form.get("code_verifier"))
                ):
                    return _oauth_error(400, "invalid_grant")
                answer = self._issue(client, code.user_id, code.scopes)
            case "refresh_token":
                grant = self._refresh.get(form.get("refresh_token", ""))
                if grant is None or grant.client_id != client.client_id:
                    return _oauth_error(400, "invalid_grant")
                self._drop(grant)  # rotation: the old pair is invalid from now on
                answer = self._issue(client, grant.user_id, grant.scopes)
            case "client_credentials":
                if client.organisation_users is None:
                    return _oauth_error(400, "unauthorized_client")
                answer = self._issue(client, None, frozenset(client.scopes))
            case _:
                return _oauth_error(400, "unsupported_grant_type")
        response = web.json_response(answer)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    async def _revoke_token(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        client = self._client_auth(request, form)
        if client is None:
            return _oauth_error(401, "invalid_client")
        token = form.get("token", "")
        grant = self._access.get(token) or self._refresh.get(token)
        if grant is not None and grant.client_id == client.client_id:
            self._drop(grant)
        return web.Response(status=200)

    # --- API plumbing --------------------------------------------------------------

    def _bucket(self, key: tuple[str, str | None]) -> deque[float]:
        bucket = self._buckets.setdefault(key, deque())
        while bucket and bucket[0] <= self.now - RATE_LIMIT_WINDOW:
            bucket.popleft()
        return bucket

    def _api(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthorized("Authentication credentials were not provided.")
        grant = self._access.get(token.strip())
        if grant is None or grant.expires_at <= self.now:
            return _unauthorized("The access token is invalid or has expired.")
        bucket = self._bucket((grant.client_id, grant.user_id))
        limit = self.hourly_limit
        if len(bucket) >= limit:
            wait = max(math.ceil(bucket[0] + RATE_LIMIT_WINDOW - self.now), 1)
            response = _problem(
                429,
                "Too many requests",
                f"Request was rate limited. Try again in {wait} seconds",
                problem="rate-limit-exceeded",
            )
            response.headers[self.retry_after_header] = str(wait)
            return _with_headers(response, limit, 0)
        bucket.append(self.now)
        response = self._authorized(request, grant)
        return _with_headers(response, limit, max(limit - len(bucket), 0))

    def _authorized(self, request: web.Request, grant: _Grant) -> web.Response:
        version = request.headers.get("EvEnergy-Version")
        if version is not None and version.strip() != API_VERSION:
            return _problem(
                400,
                "Unsupported version",
                f"Unsupported version: {version}. Supported versions: 2.",
            )
        path = request.path.rstrip("/")
        allowed: list[str] = []
        for route in ROUTES:
            match = route.pattern.fullmatch(path)
            if match is None:
                continue
            if route.method != request.method:
                allowed.append(route.method)
                continue
            client = self.clients.get(grant.client_id)
            if client is None or route.scope not in grant.scopes & client.scopes:
                return _problem(403, "Forbidden", NO_PERMISSION)
            user_id = grant.user_id
            if user_id is None:
                user_id, error = self._organisation_user(request, client, route)
                if error is not None:
                    return error
            call = _Call(request, grant, user_id, match.groupdict())
            handler: Handler = getattr(self, route.handler)
            return handler(call)
        if allowed:
            response = _problem(
                405,
                "Method Not Allowed",
                f'Method "{request.method}" not allowed.',
            )
            response.headers["Allow"] = ", ".join(allowed)
            return response
        return _problem(404, "Not Found", NOT_FOUND)

    def _organisation_user(
        self, request: web.Request, client: SimClient, route: _Route
    ) -> tuple[str | None, web.Response | None]:
        """The EvEnergy-User of a client-credentials call, or the error answer."""
        header = request.headers.get("EvEnergy-User", "").strip()
        if not header:
            if not route.needs_user:
                return None, None
            return None, _problem(
                400,
                "Missing EvEnergy-User header",
                "The EvEnergy-User header is required for this endpoint when "
                "using client credentials.",
            )
        self.user_headers.append(header)
        user_id = self._user_named(header)
        members = client.organisation_users or set()
        if user_id is None or user_id not in members:
            return None, _problem(
                400,
                "Invalid EvEnergy-User header",
                "The EvEnergy-User header does not name a user of your organisation.",
            )
        return user_id, None

    def _user_named(self, header: str) -> str | None:
        """The known user an EvEnergy-User value names: by id, or by its URL."""
        if header in self.users:
            return header
        prefix = f"{self.api_url}/users/"
        if header.startswith(prefix):
            user_id = header.removeprefix(prefix).removesuffix("/")
            if user_id in self.users:
                return user_id
        return None

    def _visible_users(self, call: _Call) -> list[SimUser]:
        if call.user_id is not None:
            return [self.users[call.user_id]]
        client = self.clients[call.grant.client_id]
        members = client.organisation_users or set()
        return [user for uid, user in self.users.items() if uid in members]

    def _own_vehicle(self, call: _Call) -> SimVehicle | None:
        vehicle = self._vehicles.get(call.match["id"])
        if vehicle is None or vehicle.user_id != call.user_id:
            return None
        return vehicle

    def _own_evse(self, call: _Call) -> SimEvse | None:
        evse = self._evses.get(call.match["id"])
        if evse is None or evse.user_id != call.user_id:
            return None
        return evse

    def _own_session(self, call: _Call) -> ChargingSession | None:
        session = self.sessions.get(call.match["id"])
        if session is None or session.user_id != call.user_id:
            return None
        return session

    # --- renderers -----------------------------------------------------------------

    def _user_json(self, user: SimUser) -> dict[str, Any]:
        return {
            "id": user.id,
            "url": f"{self.api_url}/users/{user.id}",
            "email": user.email,
            "first_name": user.first_name,
            "last_name": user.last_name,
        }

    def _status_log_json(
        self, vehicle: SimVehicle, entry: dict[str, Any]
    ) -> dict[str, Any]:
        vehicle_url = f"{self.api_url}/vehicles/{vehicle.id}"
        return {
            "url": f"{vehicle_url}/status_logs/{entry['sampled_at']}/",
            "vehicle": vehicle_url,
        } | entry

    def _vehicle_json(self, vehicle: SimVehicle, expand: set[str]) -> dict[str, Any]:
        url = f"{self.api_url}/vehicles/{vehicle.id}"
        latest: Any = None
        if vehicle.status_logs:
            entry = vehicle.status_logs[0]
            latest = (
                self._status_log_json(vehicle, entry)
                if "latest_status_log" in expand
                else f"{url}/status_logs/{entry['sampled_at']}/"
            )
        user = self.users[vehicle.user_id]
        battery = vehicle.battery_size_watt_hours
        return {
            "id": vehicle.id,
            "url": url,
            "trim": None,
            "user": (
                self._user_json(user)
                if "user" in expand
                else f"{self.api_url}/users/{user.id}"
            ),
            "latest_status_log": latest,
            "charging_sub_sessions": (
                f"{self.api_url}/charging_sub_sessions?vehicle_id={vehicle.id}"
            ),
            "integrated": vehicle.integrated,
            "battery_size_watt_hours": battery,
            "effective_battery_size_watt_hours": round(battery * 0.95),
            "maximum_charge_limit_percentage": vehicle.maximum_charge_limit_percentage,
            "description": vehicle.description,
            "disabled": vehicle.disabled,
            "smart_charging_enabled": vehicle.smart_charging_enabled,
            "vehicle_class": vehicle.vehicle_class,
        }

    def _evse_log_json(self, evse: SimEvse, entry: dict[str, Any]) -> dict[str, Any]:
        evse_url = f"{self.api_url}/evses/{evse.id}"
        return {
            "url": f"{evse_url}/status_logs/{entry['sampled_at']}/",
            "evse": evse_url,
        } | entry

    def _evse_json(self, evse: SimEvse, expand: set[str]) -> dict[str, Any]:
        url = f"{self.api_url}/evses/{evse.id}"
        latest: Any = None
        if evse.status_logs:
            entry = evse.status_logs[0]
            latest = (
                self._evse_log_json(evse, entry)
                if "latest_status_log" in expand
                else f"{url}/status_logs/{entry['sampled_at']}/"
            )
        return {
            "id": evse.id,
            "url": url,
            "cpid": evse.cpid,
            "model": None,
            "user": f"{self.api_url}/users/{evse.user_id}",
            "latest_status_log": latest,
            "ct_clamp": None,
            "lock_mode": "SMART",
            "location": None,
            "lifecycle_state": "COMMISSIONED",
            "charging_sub_sessions": (
                f"{self.api_url}/charging_sub_sessions?evse_id={evse.id}"
            ),
        }

    def _sub_session_json(
        self, session: ChargingSession, sub: SubSession
    ) -> dict[str, Any]:
        end = sub.end if sub.end is not None else self.now
        vehicle = self._vehicles.get(session.vehicle_id)
        end_soc = sub.end_soc
        if end_soc is None:
            end_soc = vehicle.soc if vehicle else sub.start_soc
        energy = round(sub.energy_wh)
        return {
            "id": sub.id,
            "url": f"{self.api_url}/charging_sub_sessions/{sub.id}",
            "start": iso(sub.start),
            "end": None if sub.end is None else iso(sub.end),
            "mode": sub.mode,
            "vehicle": f"{self.api_url}/vehicles/{session.vehicle_id}",
            "evse": (
                f"{self.api_url}/evses/{session.evse_id}" if session.evse_id else None
            ),
            "energy_delivered_watt_hours": energy,
            "grid_energy_delivered_watt_hours": energy,
            "solar_energy_delivered_watt_hours": 0,
            "percentage_added": max(round(end_soc - sub.start_soc), 0),
            "duration_minutes": math.floor((end - sub.start) / 60),
            "cost": None,
            "currency": None,
            "solar_mode_type": "OFF",
        }

    def _session_json(self, session: ChargingSession) -> dict[str, Any]:
        return {
            "id": session.id,
            "url": f"{self.api_url}/charging_sessions/{session.id}",
            "start": iso(session.start),
            "end": None if session.end is None else iso(session.end),
            "vehicle": f"{self.api_url}/vehicles/{session.vehicle_id}",
            "evse": (
                f"{self.api_url}/evses/{session.evse_id}" if session.evse_id else None
            ),
            "sub_sessions": [
                self._sub_session_json(session, sub) for sub in session.sub_sessions
            ],
        }

    # --- handlers ------------------------------------------------------------------

    def _list_users(self, call: _Call) -> web.Response:
        users = sorted(self._visible_users(call), key=lambda user: user.id)
        return _paginate(call.request, users, lambda user: user.id, self._user_json)

    def _user(self, call: _Call) -> web.Response:
        for user in self._visible_users(call):
            if user.id == call.match["id"]:
                return _json(self._user_json(user))
        return _problem(404, "Not Found", NOT_FOUND)

    def _list_vehicles(self, call: _Call) -> web.Response:
        expand = _expand(call.request)
        vehicles = sorted(
            (v for v in self._vehicles.values() if v.user_id == call.user_id),
            key=lambda v: v.id,
        )
        return _paginate(
            call.request,
            vehicles,
            lambda v: v.id,
            lambda v: self._vehicle_json(v, expand),
        )

    def _vehicle_get(self, call: _Call) -> web.Response:
        vehicle = self._own_vehicle(call)
        if vehicle is None:
            return _problem(404, "Not Found", NOT_FOUND)
        return _json(self._vehicle_json(vehicle, _expand(call.request)))

    def _vehicle_patch(self, call: _Call) -> web.Response:
        vehicle = self._own_vehicle(call)
        if vehicle is None:
            return _problem(404, "Not Found", NOT_FOUND)
        body = _json_body(call.request)
        if not isinstance(body, dict):
            return _problem(
                400, "Invalid input", "JSON parse error: expected a JSON object."
            )
        errors: dict[str, list[str]] = {}
        if "smart_charging_enabled" in body and not isinstance(
            body["smart_charging_enabled"], bool
        ):
            errors["smart_charging_enabled"] = ["Must be a valid boolean."]
        limit = body.get("maximum_charge_limit_percentage")
        if "maximum_charge_limit_percentage" in body and (
            message := _int_error(limit, 50, 100)
        ):
            errors["maximum_charge_limit_percentage"] = [message]
        if "vehicle_class" in body and body["vehicle_class"] not in (
            "PASSENGER",
            "COMMERCIAL",
            None,
        ):
            errors["vehicle_class"] = [
                f'"{body["vehicle_class"]}" is not a valid choice.'
            ]
        if "battery_size_watt_hours" in body:
            message = _int_error(body["battery_size_watt_hours"], 1000, 300000)
            if message is None and vehicle.integrated != "UNINTEGRATED":
                message = "Only unintegrated vehicles accept a battery size."
            if message:
                errors["battery_size_watt_hours"] = [message]
        if errors:
            return _field_errors(errors, "The request body contains invalid fields.")
        if "maximum_charge_limit_percentage" in body:
            vehicle.maximum_charge_limit_percentage = body[
                "maximum_charge_limit_percentage"
            ]
        if "vehicle_class" in body:
            vehicle.vehicle_class = body["vehicle_class"]
        if "battery_size_watt_hours" in body:
            vehicle.battery_size_watt_hours = body["battery_size_watt_hours"]
        if "smart_charging_enabled" in body:
            self.set_smart_charging(vehicle, body["smart_charging_enabled"])
        self._changed(vehicle)
        return _json(self._vehicle_json(vehicle, _expand(call.request)))

    def _log_list(
        self,
        call: _Call,
        logs: Iterable[dict[str, Any]],
        key: str,
        render: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> web.Response:
        query = call.request.query
        bounds: dict[str, float] = {}
        for suffix in ("gte", "lte"):
            name = f"{key}__{suffix}"
            if name in query:
                try:
                    bounds[suffix] = parse_time(query[name])
                except ValueError:
                    return _field_errors({name: ["Enter a valid date/time."]})
        selected = [
            entry
            for entry in logs
            if parse_time(entry[key]) >= bounds.get("gte", -math.inf)
            and parse_time(entry[key]) <= bounds.get("lte", math.inf)
        ]
        return _paginate(
            call.request,
            selected,
            lambda entry: parse_time(entry[key]),
            render,
            cursor_text=lambda entry: entry[key],
            parse_cursor=parse_time,
            newest_first=True,
        )

    def _status_logs(self, call: _Call) -> web.Response:
        vehicle = self._own_vehicle(call)
        if vehicle is None:
            return _problem(404, "Not Found", NOT_FOUND)
        return self._log_list(
            call,
            vehicle.status_logs,
            "sampled_at",
            lambda entry: self._status_log_json(vehicle, entry),
        )

    def _location_logs(self, call: _Call) -> web.Response:
        vehicle = self._own_vehicle(call)
        if vehicle is None:
            return _problem(404, "Not Found", NOT_FOUND)
        vehicle_url = f"{self.api_url}/vehicles/{vehicle.id}"
        return self._log_list(
            call,
            vehicle.location_logs,
            "sampled_at",
            lambda entry: (
                {
                    "url": f"{vehicle_url}/location_logs/{entry['sampled_at']}/",
                    "vehicle": vehicle_url,
                }
                | entry
            ),
        )

    def _command_logs(self, call: _Call) -> web.Response:
        vehicle = self._own_vehicle(call)
        if vehicle is None:
            return _problem(404, "Not Found", NOT_FOUND)
        vehicle_url = f"{self.api_url}/vehicles/{vehicle.id}"
        return self._log_list(
            call,
            vehicle.command_logs,
            "logged_at",
            lambda entry: (
                {
                    "url": f"{vehicle_url}/command_logs/{entry['logged_at']}/",
                    "vehicle": vehicle_url,
                }
                | entry
            ),
        )

    def _list_evses(self, call: _Call) -> web.Response:
        expand = _expand(call.request)
        cpid = call.request.query.get("cpid")
        evses = sorted(
            (
                evse
                for evse in self._evses.values()
                if evse.user_id == call.user_id and cpid in (None, evse.cpid)
            ),
            key=lambda evse: evse.id,
        )
        return _paginate(
            call.request,
            evses,
            lambda evse: evse.id,
            lambda evse: self._evse_json(evse, expand),
        )

    def _evse_get(self, call: _Call) -> web.Response:
        evse = self._own_evse(call)
        if evse is None:
            return _problem(404, "Not Found", NOT_FOUND)
        return _json(self._evse_json(evse, _expand(call.request)))

    def _evse_status_logs(self, call: _Call) -> web.Response:
        evse = self._own_evse(call)
        if evse is None:
            return _problem(404, "Not Found", NOT_FOUND)
        return self._log_list(
            call,
            evse.status_logs,
            "sampled_at",
            lambda entry: self._evse_log_json(evse, entry),
        )

    def _list_sessions(self, call: _Call) -> web.Response:
        query = call.request.query
        finished: bool | None = None
        if "is_finished" in query:
            raw = query["is_finished"].lower()
            if raw not in ("true", "false", "1", "0"):
                return _field_errors({"is_finished": ["Must be a valid boolean."]})
            finished = raw in ("true", "1")
        sessions = sorted(
            (
                session
                for session in self.sessions.values()
                if session.user_id == call.user_id
                and query.get("vehicle_id") in (None, session.vehicle_id)
                and query.get("evse_id") in (None, session.evse_id)
                and finished in (None, session.end is not None)
            ),
            key=lambda session: session.id,
            reverse=True,
        )
        return _paginate(
            call.request,
            sessions,
            lambda session: session.id,
            self._session_json,
            newest_first=True,
        )

    def _session_get(self, call: _Call) -> web.Response:
        session = self._own_session(call)
        if session is None:
            return _problem(404, "Not Found", NOT_FOUND)
        return _json(self._session_json(session))

    def _boost_start(self, call: _Call) -> web.Response:
        session = self._own_session(call)
        if session is None:
            return _problem(404, "Not Found", NOT_FOUND)
        vehicle = self._vehicles[session.vehicle_id]
        current = session.current
        if not vehicle.smart_charging_enabled:
            return _problem(
                409, "Conflict", "Smart charging is disabled for this vehicle."
            )
        if session.end is not None or current is None or current.mode != SMART:
            return _problem(
                409,
                "Conflict",
                "The current sub-session is not an in-progress SMART sub-session.",
            )
        if vehicle.unreachable:
            return _problem(503, "Service Unavailable", NOT_DELIVERED)
        self._close_sub_session(vehicle)
        self._open_sub_session(vehicle, BOOST)
        self._command(vehicle, "START_CHARGE")
        self._changed(vehicle)
        return _json(self._session_json(session))

    def _boost_end(self, call: _Call) -> web.Response:
        session = self._own_session(call)
        if session is None:
            return _problem(404, "Not Found", NOT_FOUND)
        vehicle = self._vehicles[session.vehicle_id]
        current = session.current
        if session.end is not None or current is None or current.mode != BOOST:
            return _problem(409, "Conflict", "The vehicle is not boosting.")
        if vehicle.unreachable:
            return _problem(503, "Service Unavailable", NOT_DELIVERED)
        self._close_sub_session(vehicle)
        self._open_sub_session(vehicle, SMART)
        self._command(vehicle, "STOP_CHARGE")
        self._changed(vehicle)
        return _json(self._session_json(session))


# --- helpers -----------------------------------------------------------------------


def _pkce_ok(code: _Code, verifier: str | None) -> bool:
    if code.code_challenge is None:
        return True
    if verifier is None:
        return False
    if code.code_challenge_method == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    else:
        computed = verifier
    return secrets.compare_digest(computed, code.code_challenge)


def _json(
    data: Any, status: int = 200, content_type: str = "application/json"
) -> web.Response:
    # Bytes, so that the content type carries no charset parameter.
    return web.Response(
        status=status, body=json.dumps(data).encode(), content_type=content_type
    )


def _html(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/html")


def _problem(
    status: int, title: str, detail: str, *, problem: str | None = None
) -> web.Response:
    """An RFC 9457 problem answer."""
    body: dict[str, Any] = {"status": status, "title": title, "detail": detail}
    if problem is not None:
        body = {"type": f"{PROBLEMS}{problem}/"} | body
    return _json(body, status=status, content_type="application/problem+json")


def _field_errors(
    errors: dict[str, list[str]], detail: str = "The request contains invalid fields."
) -> web.Response:
    body = {
        "type": f"{PROBLEMS}validation-error/",
        "status": 400,
        "title": "Invalid input",
        "detail": detail,
        "field_errors": errors,
    }
    return _json(body, status=400, content_type="application/problem+json")


def _unauthorized(detail: str) -> web.Response:
    response = _problem(401, "Unauthorized", detail)
    response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    response.headers["EvEnergy-Version"] = API_VERSION
    return response


def _oauth_error(status: int, error: str) -> web.Response:
    response = web.json_response({"error": error}, status=status)
    response.headers["Cache-Control"] = "no-store"
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Basic realm="oauth"'
    return response


def _with_headers(response: web.Response, limit: int, remaining: int) -> web.Response:
    response.headers["EvEnergy-Version"] = API_VERSION
    response.headers["x-ratelimit-limit"] = str(limit)
    response.headers["x-ratelimit-remaining"] = str(remaining)
    return response


def _int_error(value: Any, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "A valid integer is required."
    if value < low:
        return f"Ensure this value is greater than or equal to {low}."
    if value > high:
        return f"Ensure this value is less than or equal to {high}."
    return None


def _json_body(request: web.Request) -> Any:
    """The JSON body already read by the handler's caller (None when invalid)."""
    return request.get("json_body")


def _expand(request: web.Request) -> set[str]:
    return {
        part.strip()
        for value in request.query.getall("expand", [])
        for part in value.split(",")
        if part.strip()
    }


def _paginate[T](
    request: web.Request,
    items: list[T],
    key: Callable[[T], Any],
    render: Callable[[T], dict[str, Any]],
    *,
    cursor_text: Callable[[T], str] | None = None,
    parse_cursor: Callable[[str], Any] = str,
    newest_first: bool = False,
) -> web.Response:
    """One page of `items` (in listing order) and its RFC 5988 `Link` header."""
    query = request.query
    try:
        size = int(query.get("page_size", DEFAULT_PAGE_SIZE))
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_PAGE_SIZE:
        return _pagination_error("page_size")

    def later(item: T, cursor: Any) -> bool:
        """True when `item` comes after `cursor` in listing order."""
        return key(item) < cursor if newest_first else key(item) > cursor

    def earlier(item: T, cursor: Any) -> bool:
        return key(item) > cursor if newest_first else key(item) < cursor

    start = 0
    end = min(size, len(items))
    for name in ("page_after", "page_before"):
        if name not in query:
            continue
        try:
            cursor = parse_cursor(query[name])
        except ValueError:
            return _pagination_error(name)
        if name == "page_after":
            start = next(
                (i for i, item in enumerate(items) if later(item, cursor)), len(items)
            )
            end = min(start + size, len(items))
        else:
            end = sum(1 for item in items if earlier(item, cursor))
            start = max(end - size, 0)
        break  # page_before is ignored when page_after is given
    page = items[start:end]
    text = cursor_text or (lambda item: str(key(item)))
    base = {
        name: value
        for name, value in query.items()
        if name not in ("page_after", "page_before")
    }
    previous = next_ = ABOUT_BLANK
    if page and start > 0:
        previous = str(request.url.with_query(base | {"page_before": text(page[0])}))
    if page and end < len(items):
        next_ = str(request.url.with_query(base | {"page_after": text(page[-1])}))
    response = _json([render(item) for item in page])
    response.headers["Link"] = f'<{previous}>; rel="previous", <{next_}>; rel="next"'
    return response


def _pagination_error(name: str) -> web.Response:
    return _problem(
        400,
        "Invalid pagination parameter",
        f"Invalid value for pagination parameter: {name}",
        problem="pagination-parameters",
    )


# --- demo (python -m tests.simulators evenergy) ------------------------------------

DEMO_CLIENT_ID = "sim-evenergy-client"
DEMO_CLIENT_SECRET = "sim-evenergy-secret"
DEMO_EMAIL = "demo@example.com"
# Fast, so that the state of charge visibly moves: 1 % every 5 s on 10 kWh.
DEMO_CHARGE_WATTS = 72000
DEMO_BATTERY_WH = 10000
DEMO_UNPLUG_AFTER = 30  # seconds after the battery is full
DEMO_PLUG_IN_AFTER = 20  # seconds after unplugging
DEMO_SILENT_AFTER = 60  # the parked vehicle goes silent after this many seconds
DEMO_SILENT_FOR = 120  # and sends again after this many


async def run_demo(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """One user with a charging vehicle, a parked one and one charger.

    The charging vehicle charges to its limit, stays plugged in a while, unplugs,
    drives a little and plugs in again. The parked one goes silent now and then
    (its `sampled_at` stops moving).
    """
    simulator = EvEnergySimulator(host=args.host)
    user = simulator.add_user(DEMO_EMAIL)
    simulator.add_client(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        redirect_uris=(ANY_REDIRECT_URI,),
        organisation_users=[user.id],
    )
    charging = simulator.add_vehicle(
        SimVehicle(
            user.id,
            description="Demo EV",
            soc=55.0,
            battery_size_watt_hours=DEMO_BATTERY_WH,
            charge_power_watts=DEMO_CHARGE_WATTS,
        )
    )
    parked = simulator.add_vehicle(
        SimVehicle(
            user.id, description="Parked EV", soc=72.0, odometer_meters=48_000_000
        )
    )
    evse = simulator.add_evse(SimEvse(user.id, vehicle_id=charging.id))
    simulator.plug_in(charging.id)
    await simulator.start(args.port)
    try:
        emit(provider="evenergy")
        emit(base_url=simulator.url)
        emit(authorize_url=simulator.authorize_url)
        emit(token_url=simulator.token_url)
        emit(client_id=DEMO_CLIENT_ID)
        emit(client_secret=DEMO_CLIENT_SECRET)
        emit(user_id=user.id)
        emit(email=DEMO_EMAIL)
        emit(vehicles=f"{charging.id},{parked.id}")
        emit(evses=evse.id)
        since_event = 0
        elapsed = 0
        async for _ in every_second(stop):
            was_complete = charging.complete
            simulator.advance(1)
            elapsed += 1
            since_event += 1
            if charging.complete and not was_complete:
                since_event = 0
                emit(event="complete", vehicle=charging.id, soc=round(charging.soc))
            elif charging.complete and since_event >= DEMO_UNPLUG_AFTER:
                simulator.drive(charging.id, 10.0)
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
                emit(event="sending", vehicle=parked.id)
    finally:
        await simulator.stop()


DEMO = SimulatorDemo(
    run=run_demo,
    label="ev.energy",
    needs=("base_url", "client_id", "client_secret", "user_id", "email"),
    identifier="email",  # the entry's title names the user by e-mail
    # The user's own OAuth client (Settings > Application credentials), then the
    # sign-in at the simulator: it consents at once and sends the browser back.
    menu_path=("evenergy", "evenergy_oauth"),
    forms=(
        ("evenergy_oauth", lambda sim: {"advanced": {"base_url": sim["base_url"]}}),
    ),
    application_credential=("client_id", "client_secret"),
    external=True,
)
