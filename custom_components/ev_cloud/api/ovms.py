"""OVMS server REST client (Open Vehicle Monitoring System). Facts: providers.md §2.

The server copies the car's record text field by field, so record fields arrive as
JSON strings ("85.3"); bit flags arrive as the bit value (0/4/8/16/128); a record the
server never received is `{}`. Credentials travel in the query string, so no URL of
this client may reach an exception text or a log.

Two generations of the server software answer the same calls. The older "v2
server" (Open-Vehicle-Server `v2/server/ovms_server.pl`, still run by e.g.
ovms.dexters-web.de) answers a missing or expired session and wrong credentials
with `404 Authentication failed` instead of 401, extends a session with every
request, has no API tokens, cannot connect a car (`/api/vehicle`) and leaves the
record times out of its per-record answers. The client tells the two apart from
their answers (`server_generation`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
import json
import logging
import math
import re
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
from yarl import URL

from .budget import RequestBudget
from .errors import (
    AuthenticationError,
    CommunicationError,
    EvCloudError,
    InvalidResponseError,
    NotSupportedError,
    RateLimitedError,
    VehicleNotAvailableError,
)
from .parsing import utc_datetime as _timestamp  # m_msgtime: "YYYY-MM-DD HH:MM:SS"

_LOGGER = logging.getLogger(__name__)

DEFAULT_SERVER_URL = "https://api.openvehicles.com:6869"
# The server holds a refused request 20 s before its 429; wait longer than that.
DEFAULT_TIMEOUT = 30.0

type Units = Literal["K", "M"]
type ServerGeneration = Literal["v2", "v3"]

CHARGE_STATES = (
    "charging",
    "topoff",
    "done",
    "prepare",
    "timerwait",
    "heating",
    "stopped",
)
CHARGE_MODES = ("standard", "storage", "range", "performance")
WHEELS = ("fl", "fr", "rl", "rr")

SESSION_COOKIE = "ovmsapisession"
# The server's own "no session" marker: sent on login so that no other session
# cookie (e.g. another account's, from a shared cookie jar) is taken for ours.
NO_SESSION = "-"
# What a cookie value may hold (RFC 6265 cookie-octet), so that it can travel
# as a header as it is.
_COOKIE_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]+")
# Seconds to wait after a 429 that carries no Retry-After (the server sends none).
DEFAULT_RETRY_AFTER = 60.0
PSI_TO_KPA = 6.894757
# A 401 sooner than this after a login is no session timeout (the server
# restarted, or the session was logged out): it says nothing of their lifetime.
MIN_SESSION_LIFETIME = 60.0
# The v2 server's answer to a missing or expired session and to wrong
# credentials, with status 404 (the v3 server's 401 has the same text).
AUTH_FAILED = b"Authentication failed"
# The answers that make up a car's state, read one by one when the server
# refuses `/api/protocol`.
RECORD_ENDPOINTS = ("status", "charge", "location", "tpms")


@dataclass(frozen=True, slots=True)
class RecordTime:
    """When the server stored a record (`m_msgtime_X`) and its age (`m_msgage_X`).

    Two readings of the same record are equal: the age grows with every reading.
    """

    msg_time: datetime | None = None  # UTC, aware
    msg_age: float | None = field(default=None, compare=False)  # seconds


@dataclass(frozen=True, slots=True)
class OvmsVehicle:
    """One entry of `/api/vehicles`."""

    vehicle_id: str
    car_online: bool  # v_net_connected > 0: the car's module is connected to the server
    apps_connected: int


@dataclass(frozen=True, slots=True)
class OvmsPeer:
    """What `GET /api/vehicle/<id>` (connect) answers."""

    car_online: bool
    apps_connected: int
    first_peer: bool
    status_time: RecordTime


@dataclass(frozen=True, slots=True)
class OvmsStatus:
    """`/api/status/<id>`: a subset of the S record plus the D record."""

    received: bool  # False when the server has no record yet ({})
    s_time: RecordTime = RecordTime()
    d_time: RecordTime = RecordTime()
    units: Units | None = None
    soc: float | None = None
    soh: float | None = None
    ideal_range: float | None = None
    ideal_range_max: float | None = None
    estimated_range: float | None = None
    charge_state: str | None = None  # one of CHARGE_STATES
    charge_mode: str | None = None  # one of CHARGE_MODES
    front_left_door_open: bool | None = None
    front_right_door_open: bool | None = None
    charge_port_open: bool | None = None
    trunk_open: bool | None = None
    bonnet_open: bool | None = None
    plugged_in: bool | None = None  # pilotpresent
    charging: bool | None = None
    car_on: bool | None = None
    locked: bool | None = None
    valet_mode: bool | None = None
    charging_12v: bool | None = None
    temperature_pem: float | None = None  # °C
    temperature_motor: float | None = None
    temperature_battery: float | None = None
    temperature_charger: float | None = None
    temperature_cabin: float | None = None
    temperature_ambient: float | None = None
    odometer: float | None = None  # in `units` (the wire value is tenths)
    tripmeter: float | None = None  # in `units` (tenths on the wire)
    speed: float | None = None  # `units` per hour
    parking_time: float | None = None  # seconds
    vehicle_12v: float | None = None  # V
    vehicle_12v_current: float | None = None  # A


@dataclass(frozen=True, slots=True)
class OvmsCharge:
    """`/api/charge/<id>`: the whole S record (plus some D flags)."""

    received: bool
    s_time: RecordTime = RecordTime()
    units: Units | None = None
    soc: float | None = None
    soh: float | None = None
    charge_state: str | None = None
    charge_substate: str | None = None
    charge_mode: str | None = None
    line_voltage: float | None = None  # V
    battery_voltage: float | None = None  # V
    charge_current: float | None = None  # A
    charge_current_limit: float | None = None  # A (chargelimit)
    charge_power: float | None = None  # kW
    charge_energy: float | None = None  # kWh this charge (tenths on the wire)
    time_to_full: float | None = None  # minutes (charge_etr_full)
    time_to_limit: float | None = None  # minutes (charge_etr_limit)
    charge_limit_soc: float | None = None  # %
    charge_limit_range: float | None = None  # in `units`
    ideal_range: float | None = None
    estimated_range: float | None = None
    plugged_in: bool | None = None
    charging: bool | None = None


@dataclass(frozen=True, slots=True)
class OvmsLocation:
    """`/api/location/<id>`: the L record."""

    received: bool
    l_time: RecordTime = RecordTime()
    latitude: float | None = None
    longitude: float | None = None
    direction: float | None = None  # degrees
    altitude: float | None = None  # m
    gps_lock: bool | None = None
    speed: float | None = None


@dataclass(frozen=True, slots=True)
class OvmsWheel:
    """One tyre of the TPMS record."""

    pressure: float | None = None  # kPa (V2 PSI values are converted)
    temperature: float | None = None  # °C


@dataclass(frozen=True, slots=True)
class OvmsTpms:
    """`/api/tpms/<id>`: the V3 "Y" record, or the V2 "W" record as a fallback."""

    received: bool
    time: RecordTime = RecordTime()
    wheels: dict[str, OvmsWheel] = field(default_factory=dict)  # keys from WHEELS


# --- parsing -----------------------------------------------------------------------
# Every helper returns None for a missing or mistyped value instead of raising.


def _number(value: Any) -> float | None:
    """A record field: a JSON string of a number ("85.3", "-12", ""), or a number."""
    if type(value) is str:  # by far the most common: first, and exactly
        try:
            number = float(value)
        except ValueError:
            return None
    elif isinstance(value, bool):
        return None
    elif isinstance(value, int | float):
        number = float(value)
    else:
        return None
    return number if math.isfinite(number) else None


def _tenths(value: Any) -> float | None:
    """A field sent in tenths of its unit (odometer, tripmeter, chargekwh)."""
    number = _number(value)
    return None if number is None else number / 10


def _flag(value: Any) -> bool | None:
    """A bit flag: the server sends the bit's value (0/4/8/...), so non-zero is True."""
    if isinstance(value, bool):
        return value
    number = _number(value)
    return None if number is None else number != 0


def _count(value: Any) -> int:
    """A peer count (a JSON number); anything else counts as none."""
    number = _number(value)
    return int(number) if number is not None and number > 0 else 0


def _choice(value: Any, choices: tuple[str, ...]) -> str | None:
    return value if isinstance(value, str) and value in choices else None


def _units(value: Any) -> Units | None:
    if value == "K":
        return "K"
    if value == "M":
        return "M"
    return None


def _record_time(raw: Mapping[str, Any], code: str) -> RecordTime:
    """Time and age of the record with message code `code` (lower case)."""
    return RecordTime(
        msg_time=_timestamp(raw.get(f"m_msgtime_{code}")),
        msg_age=_number(raw.get(f"m_msgage_{code}")),
    )


def parse_vehicles(raw: Any) -> list[OvmsVehicle]:
    """`/api/vehicles`: a JSON array; entries without an id are skipped."""
    if not isinstance(raw, list):
        raise InvalidResponseError(
            "The OVMS server sent a vehicle list that is no list"
        )
    return [
        OvmsVehicle(
            vehicle_id=entry["id"],
            car_online=_count(entry.get("v_net_connected")) > 0,
            apps_connected=_count(entry.get("v_apps_connected")),
        )
        for entry in raw
        if isinstance(entry, dict) and isinstance(entry.get("id"), str) and entry["id"]
    ]


def parse_peer(raw: Mapping[str, Any]) -> OvmsPeer:
    """`GET /api/vehicle/<id>` (connect)."""
    return OvmsPeer(
        car_online=_count(raw.get("v_net_connected")) > 0,
        apps_connected=_count(raw.get("v_apps_connected")),
        first_peer=_flag(raw.get("v_first_peer")) is True,
        status_time=_record_time(raw, "s"),
    )


def parse_status(raw: Mapping[str, Any]) -> OvmsStatus:
    """`/api/status/<id>`; `carawake` and `alarmsounding` are ignored (mis-decoded)."""
    if not raw:
        return OvmsStatus(received=False)
    return OvmsStatus(
        received=True,
        s_time=_record_time(raw, "s"),
        d_time=_record_time(raw, "d"),
        units=_units(raw.get("units")),
        soc=_number(raw.get("soc")),
        soh=_number(raw.get("soh")),
        ideal_range=_number(raw.get("idealrange")),
        ideal_range_max=_number(raw.get("idealrange_max")),
        estimated_range=_number(raw.get("estimatedrange")),
        charge_state=_choice(raw.get("chargestate"), CHARGE_STATES),
        charge_mode=_choice(raw.get("mode"), CHARGE_MODES),
        front_left_door_open=_flag(raw.get("fl_dooropen")),
        front_right_door_open=_flag(raw.get("fr_dooropen")),
        charge_port_open=_flag(raw.get("cp_dooropen")),
        trunk_open=_flag(raw.get("tr_open")),
        bonnet_open=_flag(raw.get("bt_open")),
        plugged_in=_flag(raw.get("pilotpresent")),
        charging=_flag(raw.get("charging")),
        car_on=_flag(raw.get("caron")),
        locked=_flag(raw.get("carlocked")),
        valet_mode=_flag(raw.get("valetmode")),
        charging_12v=_flag(raw.get("charging_12v")),
        temperature_pem=_number(raw.get("temperature_pem")),
        temperature_motor=_number(raw.get("temperature_motor")),
        temperature_battery=_number(raw.get("temperature_battery")),
        temperature_charger=_number(raw.get("temperature_charger")),
        temperature_cabin=_number(raw.get("temperature_cabin")),
        temperature_ambient=_number(raw.get("temperature_ambient")),
        odometer=_tenths(raw.get("odometer")),
        tripmeter=_tenths(raw.get("tripmeter")),
        speed=_number(raw.get("speed")),
        parking_time=_number(raw.get("parkingtimer")),
        vehicle_12v=_number(raw.get("vehicle12v")),
        vehicle_12v_current=_number(raw.get("vehicle12v_current")),
    )


def parse_charge(raw: Mapping[str, Any]) -> OvmsCharge:
    """`/api/charge/<id>`."""
    if not raw:
        return OvmsCharge(received=False)
    substate = raw.get("chargesubstate")
    return OvmsCharge(
        received=True,
        s_time=_record_time(raw, "s"),
        units=_units(raw.get("units")),
        soc=_number(raw.get("soc")),
        soh=_number(raw.get("soh")),
        charge_state=_choice(raw.get("chargestate"), CHARGE_STATES),
        charge_substate=substate if isinstance(substate, str) and substate else None,
        charge_mode=_choice(raw.get("mode"), CHARGE_MODES),
        line_voltage=_number(raw.get("linevoltage")),
        battery_voltage=_number(raw.get("battvoltage")),
        charge_current=_number(raw.get("chargecurrent")),
        charge_current_limit=_number(raw.get("chargelimit")),
        charge_power=_number(raw.get("chargepower")),
        charge_energy=_tenths(raw.get("chargekwh")),
        time_to_full=_number(raw.get("charge_etr_full")),
        time_to_limit=_number(raw.get("charge_etr_limit")),
        charge_limit_soc=_number(raw.get("charge_limit_soc")),
        charge_limit_range=_number(raw.get("charge_limit_range")),
        ideal_range=_number(raw.get("idealrange")),
        estimated_range=_number(raw.get("estimatedrange")),
        plugged_in=_flag(raw.get("pilotpresent")),
        charging=_flag(raw.get("charging")),
    )


def parse_location(raw: Mapping[str, Any]) -> OvmsLocation:
    """`/api/location/<id>`."""
    if not raw:
        return OvmsLocation(received=False)
    return OvmsLocation(
        received=True,
        l_time=_record_time(raw, "l"),
        latitude=_number(raw.get("latitude")),
        longitude=_number(raw.get("longitude")),
        direction=_number(raw.get("direction")),
        altitude=_number(raw.get("altitude")),
        gps_lock=_flag(raw.get("gpslock")),
        speed=_number(raw.get("speed")),
    )


def _is_v3_tpms(raw: Mapping[str, Any]) -> bool:
    return "m_msgtime_y" in raw or any(
        f"{wheel}_pressure_kpa" in raw for wheel in WHEELS
    )


def _psi_to_kpa(value: Any) -> float | None:
    psi = _number(value)
    return None if psi is None else psi * PSI_TO_KPA


def parse_tpms(raw: Mapping[str, Any]) -> OvmsTpms:
    """`/api/tpms/<id>`: the V3 "Y" keys when present, else the V2 "W" keys.

    Only wheels with a pressure or a temperature are listed; pressures are in kPa.
    """
    if not raw:
        return OvmsTpms(received=False)
    v3 = _is_v3_tpms(raw)
    wheels: dict[str, OvmsWheel] = {}
    for wheel in WHEELS:
        if v3:
            pressure = _number(raw.get(f"{wheel}_pressure_kpa"))
        else:
            pressure = _psi_to_kpa(raw.get(f"{wheel}_pressure"))
        temperature = _number(raw.get(f"{wheel}_temperature"))
        if pressure is not None or temperature is not None:
            wheels[wheel] = OvmsWheel(pressure=pressure, temperature=temperature)
    return OvmsTpms(
        received=True,
        time=_record_time(raw, "y" if v3 else "w"),
        wheels=wheels,
    )


# --- v2 protocol records, turned into the REST API's answers ------------------------
# The server's REST API (ApiHttpCore.pm) copies the fields of the car's stored
# records into its answers; a car's v2 connection delivers those records as they
# arrive. Field order of each message (OVMS-3 docs/source/protocol_v2/messages).


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_RECORD_S = _names(
    """
    soc units linevoltage chargecurrent chargestate mode idealrange estimatedrange
    chargelimit chargeduration chargeb4 chargekwh chargesubstate chargestate_key
    chargemode_key chargetimermode chargestarttime chargetimerstale cac100
    charge_etr_full charge_etr_limit charge_limit_range charge_limit_soc
    cooldown_active cooldown_tbattery cooldown_timelimit charge_estimate
    charge_etr_range charge_etr_soc idealrange_max chargetype chargepower
    battvoltage soh chargepowerinput chargerefficiency batt_current
    batt_range_speed charge_kwh_grid charge_kwh_grid_total batt_capacity
    """
)
_RECORD_D = _names(
    """
    doors1 doors2 lockunlock temperature_pem temperature_motor temperature_battery
    tripmeter odometer speed parkingtimer temperature_ambient doors3 staletemps
    staleambient vehicle12v doors4 vehicle12v_ref doors5 temperature_charger
    vehicle12v_current temperature_cabin
    """
)
_RECORD_L = _names(
    """
    latitude longitude direction altitude gpslock stalegps speed tripmeter
    drivemode power energyused energyrecd invpower invefficiency
    """
)
# The v2 TPMS record: pressure (PSI) and temperature per wheel, in this order.
_RECORD_W = _names(
    """
    fr_pressure fr_temperature rr_pressure rr_temperature fl_pressure
    fl_temperature rl_pressure rl_temperature staletpms
    """
)
# REST flag -> (door byte of the D record, bit); the answer holds the bit's value.
_DOOR_BITS: Mapping[str, tuple[str, int]] = {
    "fl_dooropen": ("doors1", 0x01),
    "fr_dooropen": ("doors1", 0x02),
    "cp_dooropen": ("doors1", 0x04),
    "pilotpresent": ("doors1", 0x08),
    "charging": ("doors1", 0x10),
    "handbrake": ("doors1", 0x40),
    "caron": ("doors1", 0x80),
    "carlocked": ("doors2", 0x08),
    "valetmode": ("doors2", 0x10),
    "bt_open": ("doors2", 0x40),
    "tr_open": ("doors2", 0x80),
    "charging_12v": ("doors5", 0x10),
}
_DOOR_BYTES = frozenset(byte for byte, _ in _DOOR_BITS.values())


def _fields(message: str, names: tuple[str, ...]) -> dict[str, str]:
    """The named fields of a record; fields a shorter record lacks are left out."""
    return dict(zip(names, message.split(","), strict=False))


def _door_bits(doors: Mapping[str, str]) -> dict[str, int]:
    values: dict[str, int] = {}
    for byte in _DOOR_BYTES:
        try:
            values[byte] = int(doors.get(byte) or 0)
        except ValueError:
            values[byte] = 0
    return {key: values[byte] & mask for key, (byte, mask) in _DOOR_BITS.items()}


def _tyres_y(message: str) -> dict[str, Any]:
    """The extended TPMS record: counted lists of wheel names, then of kPa, °C, ..."""
    values = message.split(",")
    position = 0

    def counted() -> list[str]:
        nonlocal position
        count = int(values[position])
        items = values[position + 1 : position + 1 + count]
        position += 1 + count
        return items

    names = [name.lower() for name in counted()]
    pressures = counted()
    position += 1  # each value list ends with its stale flag
    temperatures = counted()
    result: dict[str, Any] = {}
    for name, pressure in zip(names, pressures, strict=False):
        result[f"{name}_pressure_kpa"] = pressure
    for name, temperature in zip(names, temperatures, strict=False):
        result[f"{name}_temperature"] = temperature
    return result


def _times(code: str, received: datetime, now: datetime) -> dict[str, Any]:
    stored = received.astimezone(UTC).replace(tzinfo=None)
    return {
        f"m_msgtime_{code}": stored.isoformat(" ", "seconds"),  # as the server's
        f"m_msgage_{code}": max(0, math.floor((now - received).total_seconds())),
    }


def rest_answers(
    records: Mapping[str, str], received: Mapping[str, datetime], now: datetime
) -> dict[str, dict[str, Any]]:
    """The REST answers (status, charge, location, tpms) for a car's v2 records.

    `records` maps a message code (S, D, L, W, Y) to its text, `received` to when
    the server got it. Parse the answers with `parse_status`, `parse_charge`, ...;
    an answer without its record is `{}`, as on the server. Encrypted (paranoid)
    records cannot be read and are not passed in.
    """
    state: dict[str, Any] = {}
    if (message := records.get("S")) is not None:
        state.update(_fields(message, _RECORD_S))
        state.update(_times("s", received["S"], now))
    if (message := records.get("D")) is not None:
        fields = _fields(message, _RECORD_D)
        state.update(fields)
        state.update(_door_bits(fields))
        state.update(_times("d", received["D"], now))
    location: dict[str, Any] = {}
    if (message := records.get("L")) is not None:
        location = _fields(message, _RECORD_L) | _times("l", received["L"], now)
    tpms: dict[str, Any] = {}
    try:
        if (message := records.get("Y")) is not None:
            tpms = _tyres_y(message) | _times("y", received["Y"], now)
    except ValueError, IndexError:
        tpms = {}  # garbled: as if the car had not sent it
    if not tpms and (message := records.get("W")) is not None:
        tpms = _fields(message, _RECORD_W) | _times("w", received["W"], now)
    return {"status": state, "charge": state, "location": location, "tpms": tpms}


@dataclass(frozen=True, slots=True)
class OvmsRecords:
    """`/api/protocol/<id>`: every record the server stored for a car, as sent.

    One request instead of one per record: `answers()` turns them into what
    the status, charge, location and tpms endpoints would answer.
    """

    records: dict[str, str]  # message code -> the record's text
    received: dict[str, datetime]  # message code -> when the server stored it
    paranoid: frozenset[str]  # codes the car encrypts end to end (unreadable)
    server_time: datetime | None = None  # the server's clock when it answered

    def answers(self, now: datetime) -> dict[str, dict[str, Any]]:
        """The REST answers; ages count on the server's clock when it sent one."""
        return rest_answers(self.records, self.received, self.server_time or now)


def parse_records(raw: Any, date: str | None = None) -> OvmsRecords:
    """`/api/protocol/<id>`: rows of `m_code`, `m_msg`, `m_msgtime`, `m_paranoid`.

    A row that cannot be read counts as a record the server never received.
    """
    if not isinstance(raw, list):
        raise InvalidResponseError("The OVMS server sent records that are no list")
    records: dict[str, str] = {}
    received: dict[str, datetime] = {}
    paranoid: set[str] = set()
    for row in raw:
        if not isinstance(row, dict):
            continue
        code, message = row.get("m_code"), row.get("m_msg")
        stored = _timestamp(row.get("m_msgtime"))
        if not isinstance(code, str) or not code or stored is None:
            continue
        if _flag(row.get("m_paranoid")):
            paranoid.add(code)
        elif isinstance(message, str):
            records[code] = message
            received[code] = stored
    return OvmsRecords(records, received, frozenset(paranoid), _http_date(date))


def _http_date(value: str | None) -> datetime | None:
    """An HTTP Date header, or None when there is none or it cannot be read."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except TypeError, ValueError, IndexError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def _retry_after(value: str | None) -> float:
    try:
        seconds = float(value) if value else DEFAULT_RETRY_AFTER
    except ValueError:
        return DEFAULT_RETRY_AFTER
    return max(0.0, seconds) if math.isfinite(seconds) else DEFAULT_RETRY_AFTER


def vehicle_path(endpoint: str, vehicle_id: str) -> str:
    """`/api/<endpoint>/<id>` with the vehicle id quoted as one path segment."""
    return f"/api/{endpoint}/{quote(vehicle_id, safe='')}"


def _lacks_rights(answer: _Answer) -> bool:
    """403 "Insufficient rights": valid credentials without the needed right."""
    return "Insufficient rights" in answer.text


def _v2_auth_failed(answer: _Answer) -> bool:
    """The v2 server's 404 for a missing or expired session or wrong credentials."""
    return answer.body.startswith(AUTH_FAILED)


# --- client ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one HTTP exchange returned (the body as bytes, never logged)."""

    status: int
    body: bytes
    retry_after: str | None
    session_id: str | None
    date: str | None = None  # the server's clock (HTTP Date header)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise InvalidResponseError(
                "The OVMS server sent a body that is not JSON"
            ) from None

    def json_object(self) -> dict[str, Any]:
        value = self.json()
        if not isinstance(value, dict):
            raise InvalidResponseError(
                "The OVMS server sent JSON that is not an object"
            )
        return value


class OvmsClient:
    """One OVMS server account; the server, user and password (or API token).

    Logs in once (`/api/cookie`) and sends the session cookie itself, in a header
    (HA's shared aiohttp session has a cookie jar for every integration); logs in
    again when the server reports the session expired (v3: 401; the v2 server:
    404 "Authentication failed"). Every request takes one request from `budget`
    first.

    An API token whose permit lacks the `session` right cannot start a session (the
    default permit `auth` lacks it): the server then answers the login with 403
    "Insufficient rights" although the credentials are valid, and the client sends
    the credentials with every request instead (`uses_session` turns False).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        server_url: str,
        username: str,
        password: str,
        *,
        budget: RequestBudget | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to `server_url` (scheme, host and port) as `username`."""
        self._session = session
        self._server_url = server_url.rstrip("/")
        self._username = username
        self._password = password
        self._budget = budget
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        # A session whose jar keeps no cookies takes the session cookie as a
        # header. Any other jar may hold a cookie of the same name (another
        # account's on the same host), which only request cookies override.
        self._cookie_header = isinstance(session.cookie_jar, aiohttp.DummyCookieJar)
        self._session_id: str | None = None
        self._session_started = 0.0  # event loop time of the login
        self._session_used = 0.0  # event loop time of the session's last answer
        # Sessions end a fixed time after their login (the server's timeout_api,
        # 120 or 300 s), on the v2 server that long after their last request:
        # learnt from the first that ended, so that the next one is renewed
        # before a request is refused and sent again.
        self._session_lifetime: float | None = None
        self._generation: ServerGeneration | None = None
        # The server refused `/api/protocol`: a car's records are read one by one.
        self._each_record = False
        self._logins = 0
        self._query_credentials = False
        self._login_lock = asyncio.Lock()

    def __repr__(self) -> str:
        """Name the account, never its password."""
        return f"OvmsClient(server_url={self._server_url!r}, user={self._username!r})"

    @property
    def logged_in(self) -> bool:
        """True while the client holds a session cookie."""
        return self._session_id is not None

    @property
    def uses_session(self) -> bool:
        """False once the server refused a session and credentials travel each time."""
        return not self._query_credentials

    @property
    def login_due(self) -> bool:
        """True when the next request logs in first (no session, or an old one)."""
        if self._query_credentials:
            return False
        lifetime = self._session_lifetime
        return self._session_id is None or (
            lifetime is not None and self._session_age() >= lifetime
        )

    @property
    def login_count(self) -> int:
        """Successful logins so far; a new session has no connected vehicles."""
        return self._logins

    @property
    def server_generation(self) -> ServerGeneration | None:
        """The server software: "v2" (the older one) or "v3"; None until told.

        Learnt from the server's answers: how it refuses a session or
        credentials (v3: 401; v2: 404 "Authentication failed"), how it answers a
        call it does not implement (v3: 501; v2: 404 "Not yet implemented", also
        to connect), a connected car or a missing right (v3).
        """
        return self._generation

    @property
    def can_connect_vehicles(self) -> bool:
        """False on the v2 server, which does not implement `/api/vehicle` (connect)."""
        return self._generation != "v2"

    @property
    def reads_each_record(self) -> bool:
        """True once the server refused `/api/protocol`: each record is one request."""
        return self._each_record

    async def async_login(self) -> None:
        """Start a session (AuthenticationError when the credentials are refused).

        Returns normally when the credentials are valid but may not start a session.
        """
        async with self._login_lock:
            await self._login()

    async def async_logout(self) -> None:
        """End the session; the server disconnects this session's vehicles."""
        session_id, self._session_id = self._session_id, None
        if session_id is None:
            return
        try:
            await self._send("DELETE", "/api/cookie", session_id)
        except EvCloudError as err:
            _LOGGER.debug("OVMS logout failed: %s", err)

    async def async_get_vehicles(self) -> list[OvmsVehicle]:
        """The account's vehicles."""
        answer = await self._request("GET", "/api/vehicles")
        return parse_vehicles(answer.json())

    async def async_get_records(self, vehicle_id: str) -> OvmsRecords:
        """Every record the server stored for the car, in one request."""
        answer = await self._request("GET", vehicle_path("protocol", vehicle_id))
        return parse_records(answer.json(), answer.date)

    async def async_get_answers(
        self, vehicle_id: str, now: datetime
    ) -> dict[str, dict[str, Any]]:
        """The car's status, charge, location and tpms answers (see rest_answers).

        Made from every record in one request (`/api/protocol`); on a server that
        refuses that call, read from the per-record calls, one request each, from
        then on. A car whose state record is paranoid cannot be read.
        """
        if not self._each_record:
            path = vehicle_path("protocol", vehicle_id)
            answer = await self._request("GET", path, check=False)
            if answer.status != 404 or answer.text.startswith("Forbidden"):
                self._raise_for_status(answer)
                records = parse_records(answer.json(), answer.date)
                if "S" in records.paranoid:
                    raise VehicleNotAvailableError(
                        "The vehicle uses paranoid mode, which the OVMS server API "
                        "cannot read",
                        "paranoid",
                    )
                return records.answers(now)
            self._each_record = True
            _LOGGER.warning(
                "The OVMS server refuses to send a car's records in one request "
                "(HTTP 404 on /api/protocol); reading them one by one, "
                "%d requests a poll",
                len(RECORD_ENDPOINTS),
            )
        answers: dict[str, dict[str, Any]] = {}
        for endpoint in RECORD_ENDPOINTS:
            answer = await self._request("GET", vehicle_path(endpoint, vehicle_id))
            answers[endpoint] = answer.json_object()
        return answers

    async def async_get_status(self, vehicle_id: str) -> OvmsStatus:
        """Status and doors/environment."""
        answer = await self._request("GET", vehicle_path("status", vehicle_id))
        return parse_status(answer.json_object())

    async def async_get_charge(self, vehicle_id: str) -> OvmsCharge:
        """Charge record."""
        answer = await self._request("GET", vehicle_path("charge", vehicle_id))
        return parse_charge(answer.json_object())

    async def async_get_location(self, vehicle_id: str) -> OvmsLocation:
        """Location record."""
        answer = await self._request("GET", vehicle_path("location", vehicle_id))
        return parse_location(answer.json_object())

    async def async_get_tpms(self, vehicle_id: str) -> OvmsTpms:
        """Tyre pressures and temperatures."""
        answer = await self._request("GET", vehicle_path("tpms", vehicle_id))
        return parse_tpms(answer.json_object())

    async def async_connect_vehicle(self, vehicle_id: str) -> OvmsPeer:
        """Connect the session to the car so that it sends at its faster interval.

        NotSupportedError on the v2 server (404 "Not yet implemented").
        """
        answer = await self._request("GET", vehicle_path("vehicle", vehicle_id))
        peer = parse_peer(answer.json_object())
        self._generation = "v3"  # the v2 server cannot connect a car
        return peer

    async def async_disconnect_vehicle(self, vehicle_id: str) -> None:
        """Undo async_connect_vehicle."""
        # The body is the text "Disconnect OK" although the content type says JSON.
        await self._request("DELETE", vehicle_path("vehicle", vehicle_id))

    def _credentials(self) -> dict[str, str]:
        return {"username": self._username, "password": self._password}

    async def _login(self) -> str:
        """Log in (the caller holds the login lock); return the session id to send.

        That is NO_SESSION when the server refuses sessions to these credentials.
        """
        # Our previous cookie (if any) lets the server delete that session first; the
        # marker keeps a foreign cookie from the shared jar from being used instead.
        previous, self._session_id = self._session_id, None
        answer = await self._send(
            "GET", "/api/cookie", previous or NO_SESSION, params=self._credentials()
        )
        if self._session_refused(answer):
            raise AuthenticationError(
                "The OVMS server rejected the username or password"
            )
        if answer.status == 403 and _lacks_rights(answer):
            # Valid credentials (else 401) without the `session` right.
            self._query_credentials = True
            return NO_SESSION
        self._raise_for_status(answer)
        if not answer.session_id or not _COOKIE_VALUE.fullmatch(answer.session_id):
            raise InvalidResponseError("The OVMS server did not start a session")
        self._session_id = answer.session_id
        self._session_started = self._session_used = asyncio.get_running_loop().time()
        self._query_credentials = False
        self._logins += 1
        return answer.session_id

    async def _session_for(self, expired: str | None) -> str:
        """The current session id; log in when there is none or it is `expired`.

        Concurrent callers share one login.
        """
        async with self._login_lock:
            if self._session_id is not None and self._session_id != expired:
                return self._session_id
            if self._query_credentials:
                return NO_SESSION
            return await self._login()

    def _session_age(self) -> float:
        """Seconds the session has counted towards its end.

        Since its login on v3; since its last request on the v2 server, which
        extends a session with every request.
        """
        if self._generation == "v2":
            return asyncio.get_running_loop().time() - self._session_used
        return asyncio.get_running_loop().time() - self._session_started

    def _session_refused(self, answer: _Answer) -> bool:
        """True when the server refused the session or credentials (learns which)."""
        status = answer.status
        if status == 401:
            self._generation = "v3"
            return True
        if status == 404 and _v2_auth_failed(answer):
            self._generation = "v2"
            return True
        return False

    async def _request(self, method: str, path: str, *, check: bool = True) -> _Answer:
        """Send a request in the session; log in again once when it has expired.

        `check=False` returns an answer the session was not refused with as it
        is, instead of raising for its status.
        """
        session_id = self._session_id
        if session_id is None or self.login_due:
            session_id = await self._session_for(session_id)
        answer = await self._send_as(method, path, session_id)
        # (Most answers are 200: the status is compared before anything else.)
        if (
            answer.status >= 400
            and session_id != NO_SESSION
            and self._session_refused(answer)
        ):
            # The server ended the session (a few minutes after its login, or on
            # the v2 server a few minutes after its last request).
            if (
                session_id == self._session_id
                and (age := self._session_age()) >= MIN_SESSION_LIFETIME
            ):
                self._session_lifetime = min(self._session_lifetime or age, age)
            session_id = await self._session_for(session_id)
            answer = await self._send_as(method, path, session_id)
        if answer.status >= 400 and self._session_refused(answer):
            if session_id == NO_SESSION:
                raise AuthenticationError(
                    "The OVMS server rejected the username or password"
                )
            self._session_id = None
            raise AuthenticationError("The OVMS server ended the session")
        self._session_used = asyncio.get_running_loop().time()
        if check:
            self._raise_for_status(answer)
        return answer

    async def _send_as(self, method: str, path: str, session_id: str) -> _Answer:
        """Send in the session, or with the credentials when there is none."""
        params = self._credentials() if session_id == NO_SESSION else None
        return await self._send(method, path, session_id, params=params)

    async def _send(
        self,
        method: str,
        path: str,
        session_id: str,
        *,
        params: Mapping[str, str] | None = None,
    ) -> _Answer:
        """One HTTP exchange. No error text may name the URL: it can hold the password.

        The errors are raised outside the `except` blocks so that no exception of
        aiohttp (whose text holds the URL) is kept as cause or context.
        """
        if self._budget is not None:
            self._budget.acquire()
        headers = {"Accept": "application/json, text/plain"}
        cookies: dict[str, str] | None = None
        if self._cookie_header:
            headers["Cookie"] = f"{SESSION_COOKIE}={session_id}"
        else:
            cookies = {SESSION_COOKIE: session_id}
        failure: str
        try:
            async with self._session.request(
                method,
                URL(f"{self._server_url}{path}", encoded=True),
                params=params,
                headers=headers,
                cookies=cookies,
                timeout=self._timeout,
            ) as response:
                cookie = response.cookies.get(SESSION_COOKIE)
                return _Answer(
                    status=response.status,
                    body=await response.read(),
                    retry_after=response.headers.get("Retry-After"),
                    session_id=cookie.value if cookie is not None else None,
                    date=response.headers.get("Date"),
                )
        except TimeoutError:
            failure = "timeout"
        except aiohttp.ClientError as err:
            failure = type(err).__name__
        if failure == "timeout":
            raise CommunicationError("The OVMS server did not answer in time")
        raise CommunicationError(f"Cannot reach the OVMS server ({failure})")

    def _raise_for_status(self, answer: _Answer) -> None:
        """Raise the error for a status other than 2xx (callers handle 401 first)."""
        status = answer.status
        if 200 <= status < 300:
            return
        if status == 403:
            if _lacks_rights(answer):
                self._generation = "v3"  # the v2 server has no rights to lack
                raise AuthenticationError(
                    "The OVMS account or API token lacks the rights for this request"
                )
            raise VehicleNotAvailableError(
                "The vehicle is not registered to this OVMS account", "not_owned"
            )
        if status == 404:
            self._raise_for_404(answer)
        if status == 429:
            retry_after = _retry_after(answer.retry_after)
            if self._budget is not None:
                self._budget.pause(retry_after)
            raise RateLimitedError("The OVMS server asked to slow down", retry_after)
        if status == 501:
            self._generation = "v3"  # the v2 server answers 404 instead
            raise NotSupportedError("The OVMS server does not implement this request")
        if status == 502 and "Paranoid" in answer.text:
            raise VehicleNotAvailableError(
                "The vehicle uses paranoid mode, which the OVMS server API cannot read",
                "paranoid",
            )
        if status >= 500:
            raise CommunicationError(f"The OVMS server failed (HTTP {status})")
        raise CommunicationError(
            f"Unexpected answer from the OVMS server (HTTP {status})"
        )

    def _raise_for_404(self, answer: _Answer) -> None:
        """404: an unknown call; on the v2 server also what v3 answers otherwise."""
        text = answer.text
        if text.startswith("Forbidden"):  # v2 server; v3 answers 403
            raise VehicleNotAvailableError(
                "The vehicle is not registered to this OVMS account", "not_owned"
            )
        if text.startswith("Paranoid"):  # v2 server; v3 answers 502
            raise VehicleNotAvailableError(
                "The vehicle uses paranoid mode, which the OVMS server API cannot read",
                "paranoid",
            )
        if text.startswith("Not yet implemented"):  # v2 server; v3 answers 501
            self._generation = "v2"
            raise NotSupportedError("The OVMS server does not implement this request")
        raise CommunicationError("The OVMS server rejected an unsupported request")


__all__ = [
    "CHARGE_MODES",
    "CHARGE_STATES",
    "DEFAULT_SERVER_URL",
    "WHEELS",
    "OvmsCharge",
    "OvmsClient",
    "OvmsLocation",
    "OvmsPeer",
    "OvmsRecords",
    "OvmsStatus",
    "OvmsTpms",
    "OvmsVehicle",
    "OvmsWheel",
    "RecordTime",
    "ServerGeneration",
    "parse_charge",
    "parse_location",
    "parse_peer",
    "parse_records",
    "parse_status",
    "parse_tpms",
    "parse_vehicles",
    "vehicle_path",
]
