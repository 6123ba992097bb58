"""A simulated OVMS server v3: the HTTP API of the ApiHttp and ApiHttpCore plugins.

Facts: providers.md section 2 and api-docs/ovms-server-v3-http.txt. Like the real
server, each car's state travels as the comma-separated v2 records it sends (S state,
D doors/environment, L location, W or Y TPMS); the API handlers split those records
and copy the pieces verbatim, so record fields come out as JSON strings while bit
flags and message ages are numbers.

The simulation is deterministic: the simulated clock starts at the real UTC time and
only moves when `OvmsSimulator.advance` is called. Record ages, idle session expiry
and the rate-limit quota all use that clock. Faults (`OvmsFault`) are only observable
through real HTTP, exactly as a client would meet them.

Where the sources leave room, the simulator chooses:
an unknown vehicle id is 403 like a foreign one (the server cannot tell them apart);
a request with credentials but no live cookie connects as peer "-", which stays until
a DELETE (as on the real server); tokens added with `add_user` carry the default
permit "auth", so they read data but cannot open a cookie session (403 "Insufficient
rights"); sessions are checked for idle expiry at each `advance()` instead of every
10 s; unknown /api calls answer 404 before authentication, as the real dispatcher
routes first.

The older server software (`OvmsSimulator(server="v2")`): the "v2 server",
openvehicles/Open-Vehicle-Server @ eae8472 `v2/server/ovms_server.pl`, which
servers such as ovms.dexters-web.de still run. It answers differently:
- a missing or expired session, and a login with wrong credentials, are
  `404 Authentication failed` (reason and text body), never 401; only
  `GET /api/cookie` is served without a session, and it accepts only the
  account password: there are no API tokens and no `?username=&password=` on
  other calls; a login leaves an older session of the client alone;
- every request in a session extends it (`session_timeout`, 120 s idle by
  default); the session holds the account's vehicles as they were at its login;
- a call it does not know is `404 Unrecognised API call` within a session (and
  `404 Authentication failed` without one); a vehicle of another account is
  `404 Forbidden`, a paranoid record `404 Vehicle is paranoid`; connect and
  disconnect (`/api/vehicle/<id>`) and every command call are
  `404 Not yet implemented`;
- the status, charge, location and tpms answers carry no record times or ages
  (`m_msgtime_*`, `m_msgage_*`), status lacks `temperature_cabin` and has
  `handbrake`, charge lacks `temperature_cabin`, tpms is read from the "W" record
  only; `/api/protocol` answers as on v3 (records S and F first);
- it has no rate limit.
Not simulated: its `GET /api/lock` names a handler that does not exist (a typo
in the source); here it is `404 Not yet implemented` like the other commands.

`protocol_refused=True` (either server): `/api/protocol` is a call the server does
not know, answered `404 Unrecognised API call` as for any unknown call.

A failing car (`SimVehicle.failing`): the server answers 500 with its HTML error page
on that car's record calls (status, charge, location, tpms, protocol, historical)
while the vehicle list still lists it, as when a stored record breaks the server's
handler. Other cars of the account are unaffected.

Control endpoint (only with `OvmsSimulator(control=True)`, as in the demo that
`python -m tests.simulators ovms` runs), outside `/api/` so that no client of the
real API can reach it, and exempt from faults and the rate limit:

    POST /_sim/vehicles/<id>/failing   body {"failing": true} (or false)
        -> 200 {"vehicle": "<id>", "failing": true}; 404 unknown car; 400 bad body
    GET  /_sim/vehicles/<id>
        -> 200 the car's charging facts and the codes of the commands it got over
           an attached v2 port (`v2_commands`); 404 unknown car
    POST /_sim/vehicles/<id>/charge    body {"soc": 50}, optionally "at": [lat, lon]
        -> the car stops (where "at" says, else where it is), is plugged in at
           that state of charge and charges (a known starting point for a test
           of commands); 200 as GET; 400 bad body

`DEMO` (at the end) is that demo: an account with two cars, a v2 port
(`ovms_v2.py`) on which DEMO takes commands, and how a user adds it in Home
Assistant.
"""

import argparse
import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from enum import StrEnum
import hashlib
import json
import logging
import math
import os
import re
import time
from typing import Any
import uuid

from aiohttp import web

from .common import SimServer, close_connection, issued
from .demo import SimulatorDemo, device_key, emit, every_second

_LOGGER = logging.getLogger(__name__)

COOKIE_NAME = "ovmsapisession"
# The session id of a request without a live cookie session (as the real server).
NO_SESSION = "-"
KM_PER_MILE = 1.609344
KPA_TO_PSI = 0.14503773773020923  # the factor ApiHttpCore uses
RATE_LIMIT_TICK = 60.0  # the server refills quotas once a minute
RATE_LIMIT_EXPIRE = 300.0  # a client's quota entry is dropped after this idle time
CONSUMPTION_KWH_PER_KM = 0.16


def _names(text: str) -> tuple[str, ...]:
    """Whitespace-separated names, for the long key lists below."""
    return tuple(text.split())


CHARGE_STATES = _names(
    """
    charging topoff done prepare timerwait heating stopped
    """
)
# Numeric keys the firmware also sends (fields 14 and 15, not exposed by the API).
CHARGE_STATE_KEYS = {
    "charging": 1,
    "topoff": 2,
    "done": 4,
    "prepare": 13,
    "timerwait": 14,
    "heating": 15,
    "stopped": 21,
}
CHARGE_MODE_KEYS = {"standard": 0, "storage": 1, "range": 3, "performance": 4}
TPMS_FORMATS = ("Y", "W", "none")
WHEELS = ("fl", "fr", "rl", "rr")
SERVER_ERROR_BODY = (
    "<html><head><title>500 Internal Server Error</title></head>"
    "<body><h1>Internal Server Error</h1></body></html>"
)
MALFORMED_BODY = "<html>oops"
PARANOID_MESSAGE = "(encrypted)"
# The calls that read a car's stored records: a failing car answers 500 on these.
RECORD_CALLS = frozenset(
    f"GET:{name}"
    for name in ("status", "charge", "location", "tpms", "protocol", "historical")
)
CONTROL_PREFIX = "/_sim/"
CONTROL_FAILING_RE = re.compile(r"/_sim/vehicles/([^/]+)/failing")
CONTROL_VEHICLE_RE = re.compile(r"/_sim/vehicles/([^/]+)")
CONTROL_CHARGE_RE = re.compile(r"/_sim/vehicles/([^/]+)/charge")

# Field names of the records, in the order the car sends them. Names starting with
# "_" are never copied into an API answer as they are.
S_FIELDS = _names(
    """
    soc units linevoltage chargecurrent chargestate mode idealrange
    estimatedrange chargelimit chargeduration chargeb4 chargekwh chargesubstate
    _chargestate_key _chargemode_key chargetimermode chargestarttime
    chargetimerstale cac100 charge_etr_full charge_etr_limit charge_limit_range
    charge_limit_soc cooldown_active cooldown_tbattery cooldown_timelimit
    charge_estimate charge_etr_range charge_etr_soc idealrange_max chargetype
    chargepower battvoltage soh chargepowerinput chargerefficiency batt_current
    batt_range_speed charge_kwh_grid charge_kwh_grid_total batt_capacity
    """
)
D_FIELDS = _names(
    """
    _doors1 _doors2 _lockunlock temperature_pem temperature_motor
    temperature_battery tripmeter odometer speed parkingtimer
    temperature_ambient _doors3 staletemps staleambient vehicle12v _doors4
    vehicle12v_ref _doors5 temperature_charger vehicle12v_current
    temperature_cabin
    """
)
L_FIELDS = _names(
    """
    latitude longitude direction altitude gpslock stalegps speed tripmeter
    drivemode power energyused energyrecd invpower invefficiency
    """
)
W_FIELDS = _names(
    """
    fr_pressure fr_temperature rr_pressure rr_temperature fl_pressure
    fl_temperature rl_pressure rl_temperature staletpms
    """
)
# API flag -> (D field, bit mask), exactly as ApiHttpCore decodes them. The server
# reads carawake from bit 1 of doors3 and alarmsounding from bit 2 of doors4, while
# the v3 firmware puts "awake" in bit 0 and "alarm" in bit 1: both stay unreliable.
D_FLAGS = {
    "fl_dooropen": ("_doors1", 0x01),
    "fr_dooropen": ("_doors1", 0x02),
    "cp_dooropen": ("_doors1", 0x04),
    "pilotpresent": ("_doors1", 0x08),
    "charging": ("_doors1", 0x10),
    "handbrake": ("_doors1", 0x40),
    "caron": ("_doors1", 0x80),
    "carlocked": ("_doors2", 0x08),
    "valetmode": ("_doors2", 0x10),
    "bt_open": ("_doors2", 0x40),
    "tr_open": ("_doors2", 0x80),
    "carawake": ("_doors3", 0x02),
    "alarmsounding": ("_doors4", 0x04),
    "charging_12v": ("_doors5", 0x10),
}

# Keys of each answer as documented (api-docs/ovms-server-v3-http.txt).
STATUS_S_KEYS = _names(
    """
    soc units idealrange idealrange_max estimatedrange mode chargestate cac100
    soh cooldown_active
    """
)
STATUS_D_KEYS = _names(
    """
    fl_dooropen fr_dooropen cp_dooropen pilotpresent charging caron carlocked
    valetmode bt_open tr_open temperature_pem temperature_motor
    temperature_battery temperature_charger temperature_cabin tripmeter odometer
    speed parkingtimer temperature_ambient carawake staletemps staleambient
    charging_12v vehicle12v vehicle12v_ref vehicle12v_current alarmsounding
    """
)
CHARGE_S_KEYS = _names(
    """
    linevoltage battvoltage chargecurrent chargepower chargetype chargestate soc
    units idealrange estimatedrange mode chargelimit chargeduration chargeb4
    chargekwh chargesubstate chargetimermode chargestarttime chargetimerstale
    cac100 soh charge_etr_full charge_etr_limit charge_limit_range
    charge_limit_soc cooldown_active cooldown_tbattery cooldown_timelimit
    charge_estimate charge_etr_range charge_etr_soc idealrange_max
    """
)
CHARGE_D_KEYS = _names(
    """
    cp_dooropen pilotpresent charging caron temperature_pem temperature_motor
    temperature_battery temperature_charger temperature_ambient
    temperature_cabin carawake staletemps staleambient charging_12v vehicle12v
    vehicle12v_ref vehicle12v_current
    """
)
LOCATION_KEYS = L_FIELDS[:12]
# Keys newer server versions add beyond the documented sets (`server_extras=True`).
EXTRA_STATUS_KEYS = ("handbrake",)
EXTRA_CHARGE_KEYS = _names(
    """
    chargepowerinput chargerefficiency batt_current batt_range_speed
    charge_kwh_grid charge_kwh_grid_total batt_capacity
    """
)
EXTRA_LOCATION_KEYS = ("invpower", "invefficiency")
# The v2 server's answers (ovms_server.pl @ eae8472): the same S keys; its D
# record ends at vehicle12v_current, and status decodes handbrake.
V2_STATUS_D_KEYS = _names(
    """
    fl_dooropen fr_dooropen cp_dooropen pilotpresent charging handbrake caron
    carlocked valetmode bt_open tr_open temperature_pem temperature_motor
    temperature_battery temperature_charger tripmeter odometer speed parkingtimer
    temperature_ambient carawake staletemps staleambient charging_12v vehicle12v
    vehicle12v_ref vehicle12v_current alarmsounding
    """
)
V2_CHARGE_D_KEYS = tuple(key for key in CHARGE_D_KEYS if key != "temperature_cabin")
SERVERS = ("v3", "v2")
# What the v2 server answers every command call (and connect/disconnect) with.
V2_COMMAND_CALLS = _names(
    """
    GET:vehicle DELETE:vehicle PUT:charge DELETE:charge GET:lock PUT:lock
    DELETE:lock GET:valet PUT:valet DELETE:valet GET:features PUT:features
    GET:parameters PUT:parameters PUT:reset PUT:homelink
    """
)


@dataclass
class _Call:
    """An authenticated API call, as ApiHttpCore passes it to a handler."""

    request: web.Request
    session_id: str  # the cookie's session id, or "-"
    username: str
    permissions: str
    rest: list[str]  # path segments after the call name (the vehicle id first)


type Handler = Callable[[_Call], web.Response]


class OvmsFault(StrEnum):
    """A failure mode of the whole simulated server."""

    NONE = "none"
    # 500 with an HTML body on every /api call (a broken server or proxy).
    SERVER_ERROR = "server_error"
    # 200 with a body that is not JSON on the JSON endpoints; side effects still
    # happen (a connect still registers the peer).
    MALFORMED = "malformed"
    # Every answer comes after `slow_seconds`.
    SLOW = "slow"


def utc_time(epoch: float) -> str:
    """`YYYY-MM-DD HH:MM:SS` in UTC, as the server stores record times."""
    return datetime.fromtimestamp(math.floor(epoch), UTC).strftime("%Y-%m-%d %H:%M:%S")


def _flag(value: bool, bit: int) -> int:
    return bit if value else 0


@dataclass
class SimVehicle:
    """One simulated car registered on the server.

    The car's state lives in plain attributes (distances in km, speeds in km/h,
    temperatures in °C); the records it sends render them in `units`. While the car
    is online and not silent, every `advance()` counts as the car having sent all its
    records "now", so their age is 0 and they show the current state (attribute edits
    show up at once). When it goes silent or offline, the records it sent last are
    frozen and age with the simulated clock.

    Connected app peers: the real car sends at a faster interval while apps are
    connected. Records here refresh on every advance anyway, so the simulation only
    records the peer counts the server told the car ("Z" messages) in
    `peer_counts_sent`; `fast_updates` says whether the car would be on its
    connected interval.
    """

    vehicle_id: str
    owner: str
    units: str = "K"
    paranoid: bool = False
    car_online: bool = True
    tpms_format: str = "Y"
    location_received: bool = True
    silent: bool = False
    # The server fails on this car's records (500, HTML body); it stays listed.
    failing: bool = False
    # Battery and charging.
    soc: float = 80.0
    soh: float = 100.0
    battery_kwh: float = 40.0
    full_range_km: float = 300.0
    cac100: float = 115.0  # Ah
    plugged_in: bool = False
    charging: bool = False
    chargestate: str = "stopped"
    charge_mode: str = "standard"
    charge_power_kw: float = 7.2
    line_voltage: int = 230
    charge_limit_amps: int = 32
    charge_limit_soc: int = 100
    charger_efficiency: int = 92  # %
    charge_kwh: float = 0.0  # energy of the current charge
    charge_seconds: float = 0.0  # duration of the current charge
    # Body.
    locked: bool = True
    valet: bool = False
    car_on: bool = False
    handbrake: bool = True
    fl_door_open: bool = False
    fr_door_open: bool = False
    charge_port_open: bool = False
    bonnet_open: bool = False
    trunk_open: bool = False
    awake: bool = False  # firmware bit the server never reads
    cooling_pump: bool = False  # the bit the server reports as `carawake`
    alarm_sounding: bool = False  # firmware bit the server never reads
    charging_12v: bool = False
    vehicle12v: float = 12.6
    # Driving and position.
    speed: float = 0.0  # km/h; while > 0, advance() drives
    odometer_km: float = 12345.6
    trip_km: float = 0.0
    energy_used_kwh: float = 0.0  # this trip
    parked_seconds: float = 3600.0
    latitude: float = 51.477928
    longitude: float = -0.001545
    direction: int = 90
    altitude: int = 40
    # Temperatures.
    temperature_pem: float = 25.0
    temperature_motor: float = 28.0
    temperature_battery: float = 22.0
    temperature_charger: float = 24.0
    temperature_ambient: float = 18.0
    temperature_cabin: float = 21.5
    # TPMS per wheel (fl, fr, rl, rr).
    tyre_pressure_kpa: dict[str, float] = field(
        default_factory=lambda: {"fl": 250.0, "fr": 250.0, "rl": 240.0, "rr": 240.0}
    )
    tyre_temperature: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(WHEELS, 20.0)
    )
    tyre_health: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(WHEELS, 100.0)
    )
    tyre_alert: dict[str, int] = field(default_factory=lambda: dict.fromkeys(WHEELS, 0))
    # App peers other than API sessions (e.g. the phone app).
    other_apps: int = 0
    # App peer counts the server sent to the car ("Z" messages), in order.
    peer_counts_sent: list[int] = field(default_factory=list)
    # Simulated epoch seconds; set by the simulator.
    now: float = field(default_factory=lambda: float(math.floor(time.time())))
    # code -> (message, time received, paranoid) while silent/offline, else None.
    _frozen: dict[str, tuple[str, int, bool]] | None = field(
        default=None, init=False, repr=False
    )

    def __post_init__(self) -> None:
        """Validate the settings; an offline or silent car starts with old records."""
        if self.units not in ("K", "M"):
            raise ValueError("units must be K or M")
        if self.tpms_format not in TPMS_FORMATS:
            raise ValueError(f"tpms_format must be one of {TPMS_FORMATS}")
        if self.chargestate not in CHARGE_STATES:
            raise ValueError(f"chargestate must be one of {CHARGE_STATES}")
        if self.charge_mode not in CHARGE_MODE_KEYS:
            raise ValueError(f"charge_mode must be one of {tuple(CHARGE_MODE_KEYS)}")
        # From here on, __setattr__ watches `silent` and `car_online`.
        object.__setattr__(self, "_frozen", None)
        if not self.sending:
            self._freeze()

    def __setattr__(self, name: str, value: Any) -> None:
        """Freeze the records when the car stops sending, thaw them when it resumes."""
        if name not in ("silent", "car_online") or "_frozen" not in self.__dict__:
            object.__setattr__(self, name, value)
            return
        was_sending = self.sending
        object.__setattr__(self, name, value)
        if was_sending and not self.sending:
            self._freeze()
        elif self.sending:
            object.__setattr__(self, "_frozen", None)

    # --- derived state -------------------------------------------------------------

    @property
    def sending(self) -> bool:
        """True while the car is connected to the server and sends its records."""
        return self.car_online and not self.silent

    @property
    def fast_updates(self) -> bool:
        """True while the car would send at its faster "connected" interval."""
        return bool(self.peer_counts_sent) and self.peer_counts_sent[-1] > 0

    def _distance(self, km: float) -> float:
        return km if self.units == "K" else km / KM_PER_MILE

    @property
    def ideal_range_km(self) -> float:
        """The ideal range at the current state of charge."""
        return self.full_range_km * self.soh / 100 * self.soc / 100

    def _minutes_to(self, target_soc: float) -> int:
        if not self.charging or self.charge_power_kw <= 0 or target_soc <= self.soc:
            return 0
        kwh = (target_soc - self.soc) / 100 * self.battery_kwh
        return math.ceil(kwh / self.charge_power_kw * 60)

    def _charge_substate(self) -> int:
        # Keys of the firmware's chargesubstate_key(): 1 scheduledstop,
        # 3 onrequest, 5 timerwait, 13 stopped, 0 none.
        match self.chargestate:
            case "charging" | "topoff":
                return 3
            case "done":
                return 1
            case "timerwait":
                return 5
            case "stopped" if self.plugged_in:
                return 13
        return 0

    # --- records -------------------------------------------------------------------

    def build_records(self) -> dict[str, str]:
        """The records the car would send now (message code -> comma-separated text)."""
        records = {"S": self._record_s(), "D": self._record_d()}
        if self.location_received:
            records["L"] = self._record_l()
        if self.tpms_format == "Y":
            records["Y"] = self._record_y()
        elif self.tpms_format == "W":
            records["W"] = self._record_w()
        return records

    def stored_records(self) -> dict[str, tuple[str, int, bool]]:
        """What the server has stored: code -> (message, time received, paranoid)."""
        if self._frozen is not None:
            return dict(self._frozen)
        received = math.floor(self.now)
        return {
            code: (message, received, self.paranoid)
            for code, message in self.build_records().items()
        }

    def _freeze(self) -> None:
        object.__setattr__(self, "_frozen", None)
        object.__setattr__(self, "_frozen", self.stored_records())

    def _record_s(self) -> str:
        power = self.charge_power_kw if self.charging else 0.0
        batt_voltage = 350.0 + self.soc * 0.5
        ideal = self._distance(self.ideal_range_km)
        limit_minutes = self._minutes_to(self.charge_limit_soc)
        values: list[object] = [
            f"{self.soc:.1f}",
            self.units,
            self.line_voltage if self.plugged_in else 0,
            self.charge_limit_amps if self.charging else 0,
            self.chargestate,
            self.charge_mode,
            round(ideal),
            round(ideal * 0.9),
            self.charge_limit_amps,
            int(self.charge_seconds),  # v3 firmware: seconds
            0,  # chargeb4
            round(self.charge_kwh * 10),  # 1/10 kWh
            self._charge_substate(),
            CHARGE_STATE_KEYS[self.chargestate],
            CHARGE_MODE_KEYS[self.charge_mode],
            0,  # chargetimermode
            0,  # chargestarttime
            0,  # chargetimerstale
            f"{self.cac100:.2f}",
            self._minutes_to(100),
            limit_minutes,
            0,  # charge_limit_range
            self.charge_limit_soc,
            0,  # cooldown_active
            0,  # cooldown_tbattery
            0,  # cooldown_timelimit
            0,  # charge_estimate
            0,  # charge_etr_range
            limit_minutes,  # charge_etr_soc
            round(self._distance(self.full_range_km * self.soh / 100)),
            0,  # chargetype
            f"{power:.3f}",
            f"{batt_voltage:.1f}",
            f"{self.soh:.1f}",
            f"{power / self.charger_efficiency * 100:.3f}",
            self.charger_efficiency if self.charging else 0,
            f"{-power * 1000 / batt_voltage if power else 0.0:.1f}",  # batt_current
            0,  # batt_range_speed
            f"{self.charge_kwh / self.charger_efficiency * 100:.3f}",
            f"{self.charge_kwh * 3:.3f}",  # lifetime grid energy: any plausible sum
            f"{self.battery_kwh:.1f}",
        ]
        return ",".join(str(value) for value in values)

    def _record_d(self) -> str:
        doors1 = (
            _flag(self.fl_door_open, 0x01)
            | _flag(self.fr_door_open, 0x02)
            | _flag(self.charge_port_open, 0x04)
            | _flag(self.plugged_in, 0x08)
            | _flag(self.charging, 0x10)
            | _flag(self.handbrake, 0x40)
            | _flag(self.car_on, 0x80)
        )
        doors2 = (
            _flag(self.locked, 0x08)
            | _flag(self.valet, 0x10)
            | _flag(self.bonnet_open, 0x40)
            | _flag(self.trunk_open, 0x80)
        )
        # Firmware layout: doors3 bit 0 awake, bit 1 cooling pump; doors4 bit 1 alarm.
        doors3 = _flag(self.awake, 0x01) | _flag(self.cooling_pump, 0x02)
        doors4 = _flag(self.alarm_sounding, 0x02)
        doors5 = _flag(self.charging_12v, 0x10)
        parked = self.speed == 0 and not self.car_on
        values: list[object] = [
            doors1,
            doors2,
            0,  # lock/unlock
            round(self.temperature_pem),
            round(self.temperature_motor),
            round(self.temperature_battery),
            round(self._distance(self.trip_km) * 10),  # 1/10 unit
            round(self._distance(self.odometer_km) * 10),  # 1/10 unit
            round(self._distance(self.speed)),
            int(self.parked_seconds) if parked else 0,
            round(self.temperature_ambient),
            doors3,
            1,  # staletemps
            1,  # staleambient
            f"{self.vehicle12v:.2f}",
            doors4,
            "12.60",  # vehicle12v_ref
            doors5,
            round(self.temperature_charger),
            f"{1.5 if self.charging_12v else 0.4:.2f}",
            f"{self.temperature_cabin:.1f}",
        ]
        return ",".join(str(value) for value in values)

    def _record_l(self) -> str:
        if self.charging:
            power = -self.charge_power_kw
        else:
            power = self.speed * CONSUMPTION_KWH_PER_KM
        values: list[object] = [
            f"{self.latitude:.6f}",
            f"{self.longitude:.6f}",
            self.direction,
            self.altitude,
            1,  # gpslock
            1,  # stalegps
            round(self._distance(self.speed)),
            round(self._distance(self.trip_km) * 10),
            0,  # drivemode (hex)
            f"{power:.3f}",
            f"{self.energy_used_kwh:.3f}",
            "0.000",  # energyrecd
            f"{power:.1f}",  # invpower
            95 if power else 0,  # invefficiency
        ]
        return ",".join(str(value) for value in values)

    def _record_y(self) -> str:
        names = [wheel.upper() for wheel in WHEELS]
        pressures = [f"{self.tyre_pressure_kpa[wheel]:.1f}" for wheel in WHEELS]
        temps = [f"{self.tyre_temperature[wheel]:.0f}" for wheel in WHEELS]
        health = [f"{self.tyre_health[wheel]:.0f}" for wheel in WHEELS]
        alerts = [str(self.tyre_alert[wheel]) for wheel in WHEELS]
        parts = [str(len(names)), *names]
        for values in (pressures, temps, health, alerts):
            parts += [str(len(values)), *values, "1"]  # each list ends with its stale
        return ",".join(parts)

    def _record_w(self) -> str:
        parts: list[str] = []
        for wheel in ("fr", "rr", "fl", "rl"):
            parts.append(f"{self.tyre_pressure_kpa[wheel] * KPA_TO_PSI:.1f}")
            parts.append(f"{self.tyre_temperature[wheel]:.0f}")
        parts.append("1")  # staletpms
        return ",".join(parts)

    # --- simulation ----------------------------------------------------------------

    def plug_in(self) -> None:
        """Connect a charging cable: the port opens and a new charge begins."""
        if self.speed:
            raise ValueError("stop the car before plugging in")
        if not self.plugged_in:
            self.plugged_in = True
            self.charge_port_open = True
            self.charge_kwh = 0.0
            self.charge_seconds = 0.0

    def unplug(self) -> None:
        """Remove the cable; charging stops."""
        self.charging = False
        self.charging_12v = False
        self.plugged_in = False
        self.charge_port_open = False
        self.chargestate = "stopped"

    def start_charging(self) -> None:
        """Start charging (needs the cable)."""
        if not self.plugged_in:
            raise ValueError("not plugged in")
        self.charging = True
        self.charging_12v = True
        self.awake = True
        self.chargestate = "charging"

    def stop_charging(self) -> None:
        """Stop charging; the cable stays in."""
        self.charging = False
        self.charging_12v = False
        self.chargestate = "stopped"

    def drive(self, km: float) -> None:
        """Drive `km` at once: odometer, trip and position grow, the battery drains."""
        if self.plugged_in:
            raise ValueError("unplug before driving")
        if km < 0:
            raise ValueError("km must not be negative")
        kwh = km * CONSUMPTION_KWH_PER_KM
        self.odometer_km += km
        self.trip_km += km
        self.energy_used_kwh += kwh
        self.soc = max(self.soc - kwh / self.battery_kwh * 100, 0.0)
        self.latitude += km / 111.0  # northwards, about 111 km per degree
        self.parked_seconds = 0.0

    def set_silent(self, silent: bool) -> None:
        """Stop (or resume) sending records; while silent the stored ones age."""
        self.silent = silent

    def advance(self, seconds: float) -> None:
        """Move this car's time: charging adds energy, driving adds distance."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        if self.charging and self.charge_power_kw > 0:
            target = float(self.charge_limit_soc)
            needed_kwh = max(target - self.soc, 0.0) / 100 * self.battery_kwh
            kwh = min(self.charge_power_kw * seconds / 3600, needed_kwh)
            self.charge_kwh += kwh
            self.charge_seconds += kwh / self.charge_power_kw * 3600
            self.soc = min(self.soc + kwh / self.battery_kwh * 100, target)
            if self.soc >= target:
                self.charging = False
                self.charging_12v = False
                self.chargestate = "done"
        if self.speed > 0 and not self.plugged_in:
            self.drive(self.speed * seconds / 3600)
        elif self.speed == 0:
            self.parked_seconds += seconds
        self.now += seconds


@dataclass
class OvmsToken:
    """An API token of a user (table ovms_apitokens)."""

    token: str
    permit: str = "auth"
    application: str = "notspecified"
    purpose: str = "notspecified"
    created: str = ""
    lastused: str = ""


@dataclass
class OvmsUser:
    """An account: its password grants every right (`*`), tokens their `permit`."""

    username: str
    password: str
    tokens: dict[str, OvmsToken] = field(default_factory=dict)


@dataclass
class OvmsSession:
    """A cookie session (`/api/cookie`)."""

    owner: str
    permissions: str
    last_used: float
    # v2 server: the ids of the owner's vehicles at the login (None on v3).
    vehicles: frozenset[str] | None = None


@dataclass
class _Quota:
    quota: int
    expire: float


class OvmsSimulator(SimServer):
    """The OVMS server's HTTP API on one port (v3, or the older v2 server)."""

    label = "OVMS simulator"

    def __init__(
        self,
        *,
        session_timeout: float = 120.0,
        burst: int = 120,
        per_minute: int = 60,
        max_quota: int = 240,
        hold_seconds: float = 20.0,
        host: str = "127.0.0.1",
        refresh_sessions: bool = True,
        server_extras: bool = False,
        control: bool = False,
        server: str = "v3",
        protocol_refused: bool = False,
    ) -> None:
        """Prepare the simulator; nothing listens until `start()`.

        `server="v2"` answers as the older server software does (see the module
        docstring; `refresh_sessions` and `server_extras` do not apply to it).
        `protocol_refused=True` makes `/api/protocol` an unknown call (404).

        `refresh_sessions=False` keeps a session's idle time counting from its login,
        as the current server source does (it never updates `sessionused`).
        `server_extras=True` adds the keys newer server versions return beyond the
        documented ones (see EXTRA_*_KEYS). `control=True` serves the control
        endpoint under /_sim/ (see the module docstring), for another process.
        """
        super().__init__(host)
        if server not in SERVERS:
            raise ValueError(f"server must be one of {SERVERS}")
        self.server = server
        self.protocol_refused = protocol_refused
        self.control = control
        self.session_timeout = session_timeout
        self.burst = burst
        self.per_minute = per_minute
        self.max_quota = max_quota
        self.hold_seconds = hold_seconds
        self.refresh_sessions = refresh_sessions
        self.server_extras = server_extras
        self.fault = OvmsFault.NONE
        self.slow_seconds = 30.0
        self.requests: list[tuple[str, str]] = []
        self.sessions: dict[str, OvmsSession] = {}
        self.connected_peers: dict[str, set[str]] = {}
        self.users: dict[str, OvmsUser] = {}
        self.rate_limits: dict[str, _Quota] = {}
        self._vehicles: dict[str, SimVehicle] = {}
        # (vehicle, code, params) of the commands an attached v2 port received;
        # the demo shares its `OvmsV2Server.commands` here for the control endpoint.
        self.v2_commands: list[tuple[str, int, tuple[str, ...]]] = []
        self._start_time = float(math.floor(time.time()))
        self._elapsed = 0.0

    # --- public interface ----------------------------------------------------------

    @property
    def now(self) -> float:
        """The simulated time (epoch seconds)."""
        return self._start_time + self._elapsed

    def add_user(
        self, username: str, password: str, tokens: Iterable[str] = ()
    ) -> None:
        """Register an account; each token gets the default permit `auth`."""
        if username in self.users:
            raise ValueError(f"duplicate user {username}")
        self.users[username] = OvmsUser(username, issued(password))
        for token in tokens:
            self.add_token(username, token)

    def add_token(
        self,
        username: str,
        token: str,
        *,
        permit: str = "auth",
        application: str = "notspecified",
        purpose: str = "notspecified",
    ) -> OvmsToken:
        """Register an API token; its `permit` lists the rights (`*` = all)."""
        created = utc_time(self.now)
        entry = OvmsToken(issued(token), permit, application, purpose, created, created)
        self.users[username].tokens[token] = entry
        return entry

    @property
    def vehicles(self) -> list[SimVehicle]:
        """All simulated vehicles."""
        return list(self._vehicles.values())

    def add_vehicle(self, vehicle: SimVehicle) -> SimVehicle:
        """Register a car; it joins the simulated clock (its stored records too)."""
        if vehicle.vehicle_id in self._vehicles:
            raise ValueError(f"duplicate vehicle {vehicle.vehicle_id}")
        vehicle.now = self.now
        if vehicle._frozen is not None:
            vehicle._freeze()  # an offline car's last records arrived just now
        self._vehicles[vehicle.vehicle_id] = vehicle
        return vehicle

    def remove_vehicle(self, vehicle_id: str) -> None:
        """Unregister a car (KeyError if unknown); its peers go with it."""
        del self._vehicles[vehicle_id]
        self.connected_peers.pop(vehicle_id, None)

    def vehicle(self, vehicle_id: str) -> SimVehicle:
        """The car with this id (KeyError if unknown)."""
        return self._vehicles[vehicle_id]

    def app_count(self, vehicle_id: str) -> int:
        """`v_apps_connected`: API sessions connected to the car plus other apps."""
        vehicle = self._vehicles[vehicle_id]
        return len(self.connected_peers.get(vehicle_id, ())) + vehicle.other_apps

    def advance(self, seconds: float) -> None:
        """Move simulated time: cars, record ages, idle sessions and rate quotas."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        before = self.now
        self._elapsed += seconds
        for vehicle in self._vehicles.values():
            vehicle.advance(seconds)
            vehicle.now = self.now  # no float drift between the car and the server
        # The real server checks every 10 s; checking at each advance is finer.
        for session_id, session in list(self.sessions.items()):
            if self.now - session.last_used > self.session_timeout:
                self._delete_session(session_id)
        self._rate_limit_ticks(before, self.now)

    def expire_sessions(self) -> None:
        """Drop every session now, as the server's idle timeout would."""
        for session_id in list(self.sessions):
            self._delete_session(session_id)

    # --- sessions, auth, rate limit ------------------------------------------------

    def _delete_session(self, session_id: str) -> None:
        """Log a session out: it is disconnected from all its owner's cars."""
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        for vehicle in self._vehicles.values():
            peers = self.connected_peers.get(vehicle.vehicle_id, set())
            if vehicle.owner == session.owner and session_id in peers:
                peers.discard(session_id)
                self._notify_car(vehicle)

    def _notify_car(self, vehicle: SimVehicle) -> None:
        # The server tells an online car its app peer count ("Z" message).
        if vehicle.car_online:
            vehicle.peer_counts_sent.append(self.app_count(vehicle.vehicle_id))

    def _authenticate(self, username: str, password: str) -> str:
        """The permissions the credentials grant, "" when they are wrong."""
        user = self.users.get(username)
        if user is None:
            return ""
        if password == user.password:
            return "*"
        token = user.tokens.get(password)
        if token is None:
            return ""
        token.lastused = utc_time(self.now)
        return token.permit

    def _rate_limit_ticks(self, before: float, after: float) -> None:
        """Run the once-a-minute quota ticker for every tick in (before, after]."""
        first = math.floor((before - self._start_time) / RATE_LIMIT_TICK) + 1
        last = math.floor((after - self._start_time) / RATE_LIMIT_TICK)
        for tick in range(first, last + 1):
            tick_time = self._start_time + tick * RATE_LIMIT_TICK
            for client, entry in list(self.rate_limits.items()):
                if entry.expire <= tick_time:
                    del self.rate_limits[client]
                else:
                    entry.quota = min(entry.quota + self.per_minute, self.max_quota)

    def _take_quota(self, client: str) -> bool:
        """Count a request (ApiHttp.pm `request`); False when it must be refused."""
        entry = self.rate_limits.get(client)
        if entry is None:
            # The first request only creates the entry, it costs nothing.
            entry = self.rate_limits[client] = _Quota(self.burst, 0.0)
        else:
            entry.quota = max(entry.quota - 1, 0)
        entry.expire = self.now + RATE_LIMIT_EXPIRE
        return entry.quota > 0

    # --- dispatcher ----------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if self.control and path.startswith(CONTROL_PREFIX):
            return await self._control(request)
        is_api = path == "/api" or path.startswith("/api/")
        if is_api:
            self.requests.append((request.method, path))
        if self.fault == OvmsFault.SLOW and not await self._sleep(self.slow_seconds):
            return close_connection(request)
        if is_api and self.fault == OvmsFault.SERVER_ERROR:
            return _server_error()
        # The v2 server has no rate limit.
        if self.server == "v3" and not self._take_quota(request.remote or ""):
            if not await self._sleep(self.hold_seconds):
                return close_connection(request)
            return _text(429, "Too many requests\n", "Too many requests")
        if not is_api:
            return _text(404, "not found\n", "not found")
        if self.server == "v2":
            response = self._dispatch_v2(request)
        else:
            response = self._dispatch(request)
        if (
            self.fault == OvmsFault.MALFORMED
            and response.status == 200
            and response.get("json")
        ):
            response = _text(200, MALFORMED_BODY, "Ok", "application/json")
        # The server's own clock, which record ages count on.
        response.headers["Date"] = formatdate(self.now, usegmt=True)
        return response

    def _dispatch(self, request: web.Request) -> web.Response:
        """ApiHttpCore `http_request_in_api`: route, authenticate, call."""
        segments = request.path.split("/")[2:]  # after "" and "api"
        name = segments[0] if segments else ""
        handler = self._handlers().get(f"{request.method.upper()}:{name}")
        if handler is None:
            # The reason phrase carries the server's typo.
            return _text(404, "Unrecognised API call\n", "Unrecongised API call")
        function, rights = handler
        session_id = _session_cookie(request)
        username: str | None = None
        permissions = "none"
        session = self.sessions.get(session_id)
        if session_id != NO_SESSION and session is not None:
            username, permissions = session.owner, session.permissions
            if self.refresh_sessions:
                session.last_used = self.now
        else:
            user, password = (
                request.query.get("username"),
                request.query.get("password"),
            )
            if user is not None and password is not None:
                permissions = self._authenticate(user, password)
                if permissions:
                    username = user
        if username is None or permissions in ("none", ""):
            return _text(401, "Authentication failed\n", "Unauthorized")
        if rights and not _is_permitted(permissions, rights):
            return _text(403, "Insufficient rights\n", "Forbidden")
        call = _Call(request, session_id, username, permissions, segments[1:])
        if f"{request.method.upper()}:{name}" in RECORD_CALLS:
            vehicle = self._owned(call)
            if vehicle is not None and vehicle.failing:
                return _server_error()
        return function(call)

    def _dispatch_v2(self, request: web.Request) -> web.Response:
        """The v2 server's `http_request_in_api`: login, else a live session first."""
        segments = request.path.split("/")[2:]  # after "" and "api"
        call_name = f"{request.method.upper()}:{segments[0] if segments else ''}"
        if call_name == "GET:cookie":
            return self._cookie_login_v2(request)
        session_id = _session_cookie(request)
        session = self.sessions.get(session_id)
        if session_id == NO_SESSION or session is None:
            return _text(404, "Authentication failed\n", "Authentication failed")
        session.last_used = self.now  # every call in a session extends it
        handler = self._handlers_v2().get(call_name)
        if handler is None:
            return _text(404, "Unrecognised API call\n", "Unrecongised API call")
        call = _Call(request, session_id, session.owner, "*", segments[1:])
        if call_name in RECORD_CALLS:
            vehicle = self._owned_v2(call)
            if vehicle is not None and vehicle.failing:
                return _server_error()
        return handler(call)

    async def _control(self, request: web.Request) -> web.Response:
        """The control endpoint: a car's state and switches, for another process."""
        if request.method == "GET" and (
            match := CONTROL_VEHICLE_RE.fullmatch(request.path)
        ):
            vehicle = self._vehicles.get(match[1])
            if vehicle is None:
                return _text(404, f"unknown vehicle {match[1]}\n", "not found")
            return _json(self._control_facts(vehicle))
        if request.method == "POST" and (
            match := CONTROL_CHARGE_RE.fullmatch(request.path)
        ):
            return await self._control_charge(request, match[1])
        match = CONTROL_FAILING_RE.fullmatch(request.path)
        if match is None or request.method != "POST":
            return _text(404, "not found\n", "not found")
        vehicle = self._vehicles.get(match[1])
        if vehicle is None:
            return _text(404, f"unknown vehicle {match[1]}\n", "not found")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("failing"), bool):
            return _text(400, 'body must be {"failing": true|false}\n', "Bad Request")
        vehicle.failing = body["failing"]
        _LOGGER.debug("vehicle %s failing: %s", vehicle.vehicle_id, vehicle.failing)
        return _json({"vehicle": vehicle.vehicle_id, "failing": vehicle.failing})

    def _control_facts(self, vehicle: SimVehicle) -> dict[str, Any]:
        vehicle_id = vehicle.vehicle_id
        return {
            "vehicle": vehicle_id,
            "plugged_in": vehicle.plugged_in,
            "charging": vehicle.charging,
            "chargestate": vehicle.chargestate,
            "soc": vehicle.soc,
            "speed": vehicle.speed,
            "commands": [
                code for car, code, _ in self.v2_commands if car == vehicle_id
            ],
        }

    async def _control_charge(
        self, request: web.Request, vehicle_id: str
    ) -> web.Response:
        vehicle = self._vehicles.get(vehicle_id)
        if vehicle is None:
            return _text(404, f"unknown vehicle {vehicle_id}\n", "not found")
        try:
            body = await request.json()
        except ValueError:
            body = None
        soc = body.get("soc") if isinstance(body, dict) else None
        here = [vehicle.latitude, vehicle.longitude]
        at = body.get("at", here) if isinstance(body, dict) else None
        if (
            isinstance(soc, bool)
            or not isinstance(soc, int | float)
            or not 0 <= soc < 100
            or not _position(at)
        ):
            return _text(
                400, 'body must be {"soc": 0..99, "at": [lat, lon]}\n', "Bad Request"
            )
        vehicle.speed = 0.0
        vehicle.latitude, vehicle.longitude = at
        vehicle.plug_in()
        vehicle.soc = float(soc)
        vehicle.start_charging()
        return _json(self._control_facts(vehicle))

    def _handlers(self) -> dict[str, tuple[Handler, tuple[str, ...]]]:
        not_implemented: tuple[Handler, tuple[str, ...]] = (self._not_implemented, ())
        table: dict[str, tuple[Handler, tuple[str, ...]]] = {
            "GET:cookie": (self._cookie_login, ("session",)),
            "DELETE:cookie": (self._cookie_logout, ("session",)),
            "GET:token": (self._token_list, ("token.admin", "admin")),
            "POST:token": (self._token_create, ("token.admin", "admin")),
            "DELETE:token": (self._token_delete, ("token.admin", "admin")),
            "GET:vehicles": (self._vehicles_list, ()),
            "GET:vehicle": (self._vehicle_connect, ()),
            "DELETE:vehicle": (self._vehicle_disconnect, ()),
            "GET:status": (self._status, ()),
            "GET:charge": (self._charge, ()),
            "GET:location": (self._location, ()),
            "GET:tpms": (self._tpms, ()),
            "GET:historical": (self._historical, ()),
        }
        for key in (
            "PUT:charge",
            "DELETE:charge",
            "GET:lock",
            "PUT:lock",
            "DELETE:lock",
            "GET:valet",
            "PUT:valet",
            "DELETE:valet",
            "GET:features",
            "PUT:features",
            "GET:parameters",
            "PUT:parameters",
            "PUT:reset",
            "PUT:homelink",
        ):
            table[key] = not_implemented
        if not self.protocol_refused:
            table["GET:protocol"] = (self._protocol, ())
        return table

    def _handlers_v2(self) -> dict[str, Handler]:
        """The v2 server's calls (each needs a live session)."""
        table: dict[str, Handler] = {
            "DELETE:cookie": self._cookie_logout,
            "GET:vehicles": self._vehicles_list_v2,
            "GET:status": self._status_v2,
            "GET:charge": self._charge_v2,
            "GET:location": self._location_v2,
            "GET:tpms": self._tpms_v2,
            "GET:historical": self._historical_v2,
        }
        for key in V2_COMMAND_CALLS:
            table[key] = self._not_implemented_v2
        if not self.protocol_refused:
            table["GET:protocol"] = self._protocol_v2
        return table

    def _owned(self, call: _Call) -> SimVehicle | None:
        """The car the call names if its user owns it (DbHasVehicle)."""
        vehicle = self._vehicles.get(call.rest[0]) if call.rest else None
        if vehicle is None or vehicle.owner != call.username:
            return None
        return vehicle

    def _owned_v2(self, call: _Call) -> SimVehicle | None:
        """The car the call names if the session listed it at its login."""
        session = self.sessions[call.session_id]
        vehicle_id = call.rest[0] if call.rest else None
        if vehicle_id is None or vehicle_id not in (session.vehicles or ()):
            return None
        # A car removed since the login is refused here too (a simplification:
        # the real server would answer with no records).
        return self._vehicles.get(vehicle_id)

    # --- handlers ------------------------------------------------------------------

    def _cookie_login(self, call: _Call) -> web.Response:
        if call.session_id in self.sessions:
            self._delete_session(call.session_id)
        new_id = issued(str(uuid.uuid4()).upper())  # Data::UUID style
        self.sessions[new_id] = OvmsSession(call.username, call.permissions, self.now)
        response = _text(200, "Login ok\n", "Ok")
        # Set directly: no Path/Expires attributes, as the real server sends it.
        response.headers["Set-Cookie"] = f"{COOKIE_NAME}={new_id}"
        return response

    def _cookie_logout(self, call: _Call) -> web.Response:
        self._delete_session(call.session_id)
        return _text(200, "Logout ok\n", "Logout ok" if self.server == "v2" else "Ok")

    def _token_list(self, call: _Call) -> web.Response:
        rows = [
            {
                "owner": call.username,
                "token": token.token,
                "application": token.application,
                "purpose": token.purpose,
                "permit": token.permit,
                "created": token.created,
                "refreshed": token.created,
                "lastused": token.lastused,
            }
            for token in self.users[call.username].tokens.values()
        ]
        return _json(rows)

    def _token_create(self, call: _Call) -> web.Response:
        query = call.request.query
        token = hashlib.sha256(os.urandom(64)).hexdigest()
        entry = self.add_token(
            call.username,
            token,
            permit=query.get("permit", "auth"),
            application=query.get("application", "notspecified"),
            purpose=query.get("purpose", "notspecified"),
        )
        body = {
            "owner": call.username,
            "token": token,
            "application": entry.application,
            "purpose": entry.purpose,
            "permit": entry.permit,
        }
        return _json(body, status=201, reason="Created")

    def _token_delete(self, call: _Call) -> web.Response:
        if not call.rest or not call.rest[0]:
            return _text(404, "Token not specified\n", "Token missing")
        self.users[call.username].tokens.pop(call.rest[0], None)
        return _json({"owner": call.username, "token": call.rest[0]})

    def _vehicles_list(self, call: _Call) -> web.Response:
        rows = [
            {
                "id": vehicle.vehicle_id,
                "v_net_connected": int(vehicle.car_online),
                "v_apps_connected": self.app_count(vehicle.vehicle_id),
                "v_btcs_connected": 0,
            }
            for vehicle in sorted(self._vehicles.values(), key=lambda v: v.vehicle_id)
            if vehicle.owner == call.username
        ]
        return _json(rows)

    def _vehicle_connect(self, call: _Call) -> web.Response:
        vehicle = self._owned(call)
        if vehicle is None:
            return _forbidden()
        previous = self.app_count(vehicle.vehicle_id)
        # Without a live cookie the peer is "-": it stays until a DELETE, like the
        # real server's "http:-" peer.
        self.connected_peers.setdefault(vehicle.vehicle_id, set()).add(call.session_id)
        self._notify_car(vehicle)
        result: dict[str, Any] = {
            "v_net_connected": int(vehicle.car_online),
            "v_apps_connected": self.app_count(vehicle.vehicle_id),
            "v_btcs_connected": 0,
            "v_first_peer": 1 if previous == 0 else 0,
        }
        stored = vehicle.stored_records().get("S")
        if stored is not None:
            result |= self._age("s", stored[1])
        return _json(result)

    def _vehicle_disconnect(self, call: _Call) -> web.Response:
        vehicle = self._owned(call)
        if vehicle is None:
            return _forbidden()
        self.connected_peers.get(vehicle.vehicle_id, set()).discard(call.session_id)
        self._notify_car(vehicle)
        # Declared as JSON, but the body is text (the real server's quirk).
        return _text(200, "Disconnect OK\n", "Ok", "application/json")

    def _protocol(self, call: _Call) -> web.Response:
        vehicle = self._owned(call)
        if vehicle is None:
            return _forbidden()
        return _json(_protocol_rows(vehicle, sorted(vehicle.stored_records())))

    def _historical(self, call: _Call) -> web.Response:
        if self._owned(call) is None:
            return _forbidden()
        return _json([])  # no history is kept

    def _status(self, call: _Call) -> web.Response:
        vehicle = self._owned(call)
        if vehicle is None:
            return _forbidden()
        extra_d = EXTRA_STATUS_KEYS if self.server_extras else ()
        return self._state_answer(vehicle, STATUS_S_KEYS, STATUS_D_KEYS + extra_d)

    def _charge(self, call: _Call) -> web.Response:
        vehicle = self._owned(call)
        if vehicle is None:
            return _forbidden()
        extra_s = EXTRA_CHARGE_KEYS if self.server_extras else ()
        return self._state_answer(vehicle, CHARGE_S_KEYS + extra_s, CHARGE_D_KEYS)

    def _location(self, call: _Call) -> web.Response:
        vehicle = self._owned(call)
        if vehicle is None:
            return _forbidden()
        stored = vehicle.stored_records().get("L")
        if stored is None:
            return _json({})
        message, received, paranoid = stored
        if paranoid:
            return _paranoid()
        fields = _split(message, L_FIELDS)
        extras = EXTRA_LOCATION_KEYS if self.server_extras else ()
        result = {key: fields[key] for key in LOCATION_KEYS + extras}
        return _json(result | self._age("l", received))

    def _tpms(self, call: _Call) -> web.Response:
        vehicle = self._owned(call)
        if vehicle is None:
            return _forbidden()
        records = vehicle.stored_records()
        # The extended V3 "Y" record wins; the V2 "W" record is the fallback.
        if "Y" in records:
            message, received, paranoid = records["Y"]
            if paranoid:
                return _paranoid()
            result = _decode_y(message)
            result |= self._age("y", received) | self._age("w", received)
            return _json(result)
        if "W" in records:
            message, received, paranoid = records["W"]
            if paranoid:
                return _paranoid()
            fields = _split(message, W_FIELDS)
            return _json(fields | self._age("w", received))
        return _json({})

    def _not_implemented(self, call: _Call) -> web.Response:
        return _text(501, "Not yet implemented\n", "Not Implemented")

    # --- handlers of the v2 server -------------------------------------------------

    def _cookie_login_v2(self, request: web.Request) -> web.Response:
        """Only the account password opens a session; an older one is left alone."""
        username = request.query.get("username")
        password = request.query.get("password")
        user = self.users.get(username) if username is not None else None
        if user is None or password != user.password:
            return _text(404, "Authentication failed\n", "Authentication failed")
        new_id = issued(str(uuid.uuid4()).upper())  # Data::UUID style
        owned = frozenset(
            vehicle.vehicle_id
            for vehicle in self._vehicles.values()
            if vehicle.owner == user.username
        )
        self.sessions[new_id] = OvmsSession(user.username, "*", self.now, owned)
        response = _text(200, "Login ok\n", "Authentication ok")
        response.headers["Set-Cookie"] = f"{COOKIE_NAME}={new_id}"
        return response

    def _vehicles_list_v2(self, call: _Call) -> web.Response:
        """The vehicles the session listed at its login."""
        rows = []
        for vehicle_id in sorted(self.sessions[call.session_id].vehicles or ()):
            vehicle = self._vehicles.get(vehicle_id)
            rows.append(
                {
                    "id": vehicle_id,
                    "v_net_connected": int(vehicle is not None and vehicle.car_online),
                    "v_apps_connected": vehicle.other_apps if vehicle else 0,
                    "v_btcs_connected": 0,
                }
            )
        return _json(rows, reason="Logout ok")  # the server's reason phrase

    def _protocol_v2(self, call: _Call) -> web.Response:
        vehicle = self._owned_v2(call)
        if vehicle is None:
            return _forbidden_v2()
        # ORDER BY field(m_code,"S","F") DESC, m_code ASC: F, S, then the others.
        first = {"F": 0, "S": 1}
        codes = sorted(
            vehicle.stored_records(), key=lambda code: (first.get(code, 2), code)
        )
        return _json(_protocol_rows(vehicle, codes), reason="Logout ok")

    def _historical_v2(self, call: _Call) -> web.Response:
        if self._owned_v2(call) is None:
            return _forbidden_v2()
        return _json([], reason="Historical Data")  # no history is kept

    def _status_v2(self, call: _Call) -> web.Response:
        vehicle = self._owned_v2(call)
        if vehicle is None:
            return _forbidden_v2()
        return self._state_answer_v2(
            vehicle, STATUS_S_KEYS, V2_STATUS_D_KEYS, "Vehicle Status"
        )

    def _charge_v2(self, call: _Call) -> web.Response:
        vehicle = self._owned_v2(call)
        if vehicle is None:
            return _forbidden_v2()
        # The server's reason phrase for a charge answer.
        return self._state_answer_v2(
            vehicle, CHARGE_S_KEYS, V2_CHARGE_D_KEYS, "Location"
        )

    def _location_v2(self, call: _Call) -> web.Response:
        vehicle = self._owned_v2(call)
        if vehicle is None:
            return _forbidden_v2()
        stored = vehicle.stored_records().get("L")
        if stored is None:
            return _json({}, reason="Location")
        message, _, paranoid = stored
        if paranoid:
            return _paranoid_v2()
        fields = _split(message, L_FIELDS)
        return _json({key: fields[key] for key in LOCATION_KEYS}, reason="Location")

    def _tpms_v2(self, call: _Call) -> web.Response:
        """Only the "W" record: a car that sends "Y" only has no tyres here."""
        vehicle = self._owned_v2(call)
        if vehicle is None:
            return _forbidden_v2()
        stored = vehicle.stored_records().get("W")
        if stored is None:
            return _json({}, reason="TPMS")
        message, _, paranoid = stored
        if paranoid:
            return _paranoid_v2()
        return _json(_split(message, W_FIELDS), reason="TPMS")

    def _not_implemented_v2(self, call: _Call) -> web.Response:
        return _text(404, "Not yet implemented\n", "Not yet implemented")

    def _state_answer_v2(
        self,
        vehicle: SimVehicle,
        s_keys: tuple[str, ...],
        d_keys: tuple[str, ...],
        reason: str,
    ) -> web.Response:
        """Status or charge as the v2 server answers them: no record times."""
        records = vehicle.stored_records()
        result: dict[str, Any] = {}
        if "S" in records:
            message, _, paranoid = records["S"]
            if paranoid:
                return _paranoid_v2()
            fields = _split(message, S_FIELDS)
            result |= {key: fields[key] for key in s_keys}
        if "D" in records and not records["D"][2]:
            fields = _split(records["D"][0], D_FIELDS)
            for key in d_keys:
                if key in D_FLAGS:
                    source, mask = D_FLAGS[key]
                    result[key] = _number(fields[source]) & mask
                else:
                    result[key] = fields[key]
        return _json(result, reason=reason)

    # --- answers -------------------------------------------------------------------

    def _age(self, suffix: str, received: int) -> dict[str, Any]:
        return {
            f"m_msgtime_{suffix}": utc_time(received),
            f"m_msgage_{suffix}": math.floor(self.now) - received,
        }

    def _state_answer(
        self, vehicle: SimVehicle, s_keys: tuple[str, ...], d_keys: tuple[str, ...]
    ) -> web.Response:
        """Status or charge: S record keys, then D keys (a paranoid D is skipped)."""
        records = vehicle.stored_records()
        result: dict[str, Any] = {}
        if "S" in records:
            message, received, paranoid = records["S"]
            if paranoid:
                return _paranoid()
            fields = _split(message, S_FIELDS)
            result |= {key: fields[key] for key in s_keys}
            result |= self._age("s", received)
        if "D" in records and not records["D"][2]:
            message, received, _ = records["D"]
            fields = _split(message, D_FIELDS)
            for key in d_keys:
                if key in D_FLAGS:
                    source, mask = D_FLAGS[key]
                    result[key] = _number(fields[source]) & mask
                else:
                    result[key] = fields[key]
            result |= self._age("d", received)
        return _json(result)


def _protocol_rows(vehicle: SimVehicle, codes: list[str]) -> list[dict[str, str]]:
    """`/api/protocol`: the stored records, in the order of `codes`."""
    stored = vehicle.stored_records()
    rows = []
    for code in codes:
        message, received, paranoid = stored[code]
        rows.append(
            {
                "m_code": code,
                "m_msg": PARANOID_MESSAGE if paranoid else message,
                "m_msgtime": utc_time(received),
                "m_paranoid": "1" if paranoid else "0",
                "m_ptoken": "",
            }
        )
    return rows


def _split(message: str, names: tuple[str, ...]) -> dict[str, str | None]:
    """Split a record like the server: missing trailing fields become null."""
    parts = message.split(",")
    return {
        name: parts[index] if index < len(parts) else None
        for index, name in enumerate(names)
    }


def _number(value: str | None) -> int:
    # Perl numifies a missing or odd field to 0.
    try:
        return int(value or 0)
    except ValueError:
        return 0


def _decode_y(message: str) -> dict[str, Any]:
    """Decode a "Y" record: counted lists of names, pressures, temps, health, alerts."""
    data = message.split(",")

    def counted() -> list[str]:
        count = int(data[0])
        values = data[1 : count + 1]
        del data[: count + 1]
        return values

    names = counted()
    lists: list[list[str]] = []
    stale: list[int] = []
    for _ in range(4):
        lists.append(counted())
        stale.append(int(data.pop(0)))
    pressures, temps, health, alerts = lists
    result: dict[str, Any] = {}
    for index, raw_name in enumerate(names):
        name = raw_name.lower()
        if index < len(pressures):
            result[f"{name}_pressure_kpa"] = pressures[index]
            # A computed number; Perl prints 15 significant digits.
            result[f"{name}_pressure"] = float(
                f"{float(pressures[index]) * KPA_TO_PSI:.15g}"
            )
        if index < len(temps):
            result[f"{name}_temperature"] = temps[index]
        if index < len(health):
            result[f"{name}_health"] = health[index]
        if index < len(alerts):
            result[f"{name}_alert"] = alerts[index]
    result["stale_pressure"] = stale[0]
    result["stale_temperature"] = stale[1]
    result["stale_health"] = stale[2]
    result["stale_alert"] = stale[3]
    result["staletpms"] = max(stale)
    return result


def _is_permitted(permissions: str, rights: tuple[str, ...]) -> bool:
    """Core.pm `IsPermitted`: `*` or any of the rights in the comma-separated list."""
    if permissions == "*":
        return True
    granted = {part.strip().lower() for part in permissions.split(",")}
    return any(right.lower() in granted for right in rights)


def _session_cookie(request: web.Request) -> str:
    """The `ovmsapisession` cookie value, parsed like the server does, or "-"."""
    for part in request.headers.get("Cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME and value:
            return value
    return NO_SESSION


def _position(value: Any) -> bool:
    """`value` is [latitude, longitude], in degrees."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
        and -90 <= value[0] <= 90
        and -180 <= value[1] <= 180
    )


def _text(
    status: int, body: str, reason: str, content_type: str = "text/plain"
) -> web.Response:
    response = web.Response(
        status=status, reason=reason, body=body.encode(), content_type=content_type
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _json(data: Any, status: int = 200, reason: str = "Ok") -> web.Response:
    """Canonical JSON (sorted keys, UTF-8), newline-terminated, like JSON::XS."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    response = _text(status, text + "\n", reason, "application/json")
    response["json"] = True  # for the MALFORMED fault
    return response


def _server_error() -> web.Response:
    return _text(500, SERVER_ERROR_BODY, "Internal Server Error", "text/html")


def _forbidden() -> web.Response:
    return _text(403, "Forbidden\n", "Forbidden")


def _paranoid() -> web.Response:
    return _text(502, "Paranoid vehicles not supported by api\n", "Bad Gateway")


def _forbidden_v2() -> web.Response:
    return _text(404, "Forbidden\n", "Forbidden")


def _paranoid_v2() -> web.Response:
    return _text(404, "Paranoid vehicles not supported by api\n", "Vehicle is paranoid")


# --- demo (python -m tests.simulators ovms) ----------------------------------------

DEMO_USER = "demo"
DEMO_PASSWORD = "demo-password"
DEMO_TOKEN = "demo-token"
# Fast, so that the state of charge visibly moves: 1 % every 10 s on 10 kWh.
DEMO_CHARGE_KW = 36.0
DEMO_BATTERY_KWH = 10.0
DEMO_DRIVE_SECONDS = 60  # DEMO drives this long at DEMO_DRIVE_SPEED after charging
DEMO_DRIVE_SPEED = 60.0  # km/h
DEMO_PARKED_SECONDS = 15  # before and after the drive
DEMO_SILENT_AFTER = 60  # ROADSTER goes silent after this many seconds
DEMO_SILENT_FOR = 120  # and sends again after this many
# DEMO takes commands over the v2 protocol (plain TCP) with these; ROADSTER none.
DEMO_V2_PASSWORD = "demo-v2-password"
DEMO_V2_PIN = "1234"
# The v2 port is the API port plus this (scripts/develop gives the simulators
# neighbouring API ports), or a free one.
DEMO_V2_PORT_OFFSET = 100
# Where DEMO parks and charges: the harness makes it Home Assistant's home, so
# that the car is at home at the charger it is linked to (the go-e demo's).
DEMO_HOME = (51.477928, -0.001545)


async def run_demo(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """An OVMS server with two cars, and the control endpoint (see the docstring).

    DEMO (km) charges to its limit, unplugs, drives for a minute (a round trip:
    it parks at home again), parks, plugs in again; stopped by a command, it
    waits plugged in for one to start it again.
    It takes commands on a v2 port (`v2_port`, password and PIN printed).
    ROADSTER (miles) stays parked, goes silent for a while (its record ages
    grow), then sends again.
    """
    from .ovms_v2 import OvmsV2Server  # it imports this module

    simulator = OvmsSimulator(host=args.host, control=True)
    simulator.add_user(DEMO_USER, DEMO_PASSWORD, [DEMO_TOKEN])
    demo = simulator.add_vehicle(
        SimVehicle(
            "DEMO",
            DEMO_USER,
            soc=55.0,
            charge_limit_soc=80,
            latitude=DEMO_HOME[0],
            longitude=DEMO_HOME[1],
            charge_power_kw=DEMO_CHARGE_KW,
            battery_kwh=DEMO_BATTERY_KWH,
        )
    )
    roadster = simulator.add_vehicle(
        SimVehicle("ROADSTER", DEMO_USER, units="M", tpms_format="W", soc=64.0)
    )
    demo.plug_in()
    demo.start_charging()
    await simulator.start(args.port)
    v2 = OvmsV2Server(simulator)
    v2.add_car("DEMO", DEMO_V2_PASSWORD, pin=DEMO_V2_PIN)
    simulator.v2_commands = v2.commands
    try:
        await v2.start(args.port + DEMO_V2_PORT_OFFSET if args.port else 0)
    except OSError:
        await v2.start()  # the derived port is taken
    try:
        emit(provider="ovms")
        emit(server_url=simulator.url)
        emit(username=DEMO_USER)
        emit(password=DEMO_PASSWORD)
        emit(token=DEMO_TOKEN)
        emit(vehicles=",".join(vehicle.vehicle_id for vehicle in simulator.vehicles))
        emit(v2_port=v2.port)
        emit(v2_password=DEMO_V2_PASSWORD)
        emit(v2_pin=DEMO_V2_PIN)
        since_event = 0  # seconds since DEMO's last story event
        elapsed = 0
        failing = {vehicle.vehicle_id: False for vehicle in simulator.vehicles}
        commands_seen = 0
        async for _ in every_second(stop):
            was_charging = demo.charging
            simulator.advance(1)
            elapsed += 1
            since_event += 1
            if was_charging and not demo.charging:
                since_event = 0
                emit(event="charge_done", vehicle="DEMO", soc=f"{demo.soc:.1f}")
            elif demo.chargestate == "done" and since_event >= DEMO_PARKED_SECONDS:
                demo.unplug()
                demo.speed = DEMO_DRIVE_SPEED
                since_event = 0
                emit(event="drive", vehicle="DEMO")
            elif demo.speed and since_event >= DEMO_DRIVE_SECONDS:
                demo.speed = 0.0
                demo.latitude, demo.longitude = DEMO_HOME  # back from the round trip
                since_event = 0
                emit(event="park", vehicle="DEMO", soc=f"{demo.soc:.1f}")
            elif (
                not demo.plugged_in
                and not demo.speed
                and since_event >= DEMO_PARKED_SECONDS
            ):
                demo.plug_in()
                demo.start_charging()
                since_event = 0
                emit(event="charge_start", vehicle="DEMO")
            # ROADSTER: a silent spell in every cycle.
            phase = elapsed % (DEMO_SILENT_AFTER + DEMO_SILENT_FOR)
            if phase == DEMO_SILENT_AFTER:
                roadster.set_silent(True)
                emit(event="silent", vehicle="ROADSTER")
            elif phase == 0:
                roadster.set_silent(False)
                emit(event="sending", vehicle="ROADSTER")
            # Switches made through the control endpoint, for the log.
            for vehicle in simulator.vehicles:
                if vehicle.failing != failing[vehicle.vehicle_id]:
                    failing[vehicle.vehicle_id] = vehicle.failing
                    emit(
                        event="failing", vehicle=vehicle.vehicle_id, on=vehicle.failing
                    )
            if since_event == 0:
                v2.push("DEMO")  # what the car sends its apps after a change
            if len(v2.commands) > commands_seen:
                for vehicle_id, code, _ in v2.commands[commands_seen:]:
                    emit(event="command", vehicle=vehicle_id, code=code)
                commands_seen = len(v2.commands)
    finally:
        await v2.stop()
        await simulator.stop()


DEMO = SimulatorDemo(
    run=run_demo,
    label="OVMS",
    needs=(
        "server_url",
        "username",
        "password",
        "vehicles",
        "v2_port",
        "v2_password",
        "v2_pin",
    ),
    identifier="username",
    menu_path=("ovms",),
    forms=(
        (
            "ovms",
            lambda sim: {
                "server_url": sim["server_url"],
                "username": sim["username"],
                "password": sim["password"],
            },
        ),
        ("ovms_vehicles", lambda sim: {"vehicles": sim["vehicles"].split(",")}),
        # DEMO gets commands; ROADSTER stays read-only.
        (
            "ovms_commands_setup",
            lambda sim: {
                "commands_vehicle": "DEMO",
                "server_password": sim["v2_password"],
                "pin": sim["v2_pin"],
                "advanced": {
                    "v2_address": f"127.0.0.1:{sim['v2_port']}",
                    "v2_tls": False,
                },
            },
        ),
    ),
    home=DEMO_HOME,
    # DEMO is charged at home by the go-e demo's charger; OVMS reports no
    # battery capacity, so the link is told DEMO's.
    options=(
        ("init", lambda sim: {"link_vehicle": "ovms_DEMO"}),
        (
            "charger_link",
            lambda sim: {
                "charger": _demo_charger(sim),
                "capacity": DEMO_BATTERY_KWH,
            },
        ),
    ),
)


def _demo_charger(sim: dict[str, str]) -> str:
    """The registry id of the go-e demo's charger (KeyError: there is none)."""
    prefix = device_key("goe_")
    chargers = [device for key, device in sorted(sim.items()) if key.startswith(prefix)]
    if not chargers:
        raise KeyError(f"{prefix}<serial>")
    return chargers[0]
