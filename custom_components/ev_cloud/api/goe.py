"""go-e Charger client: the cloud API v2 and the charger's local HTTP API v2.

Both speak the same key/value protocol (`/api/status`, `/api/set`); they differ in
transport, authentication and how they report errors. Facts: providers.md section 4.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import IntEnum
import json
from typing import Any

import aiohttp

from .errors import (
    AuthenticationError,
    CloudApiDisabledError,
    CommandRejectedError,
    CommunicationError,
    DeviceOfflineError,
    InvalidResponseError,
    RateLimitedError,
    StaleDataError,
)
from .limiter import RequestSpacer

CLOUD_URL_TEMPLATE = "https://{serial}.api.v3.go-e.io"
# The keys we read; `filter=` keeps responses small (the full status has ~300 keys).
STATUS_KEYS: tuple[str, ...] = (
    "alw",
    "ama",
    "amp",
    "car",
    "cbl",
    "cus",
    "err",
    "eto",
    "frc",
    "fna",
    "fwv",
    "lck",
    "mca",
    "modelStatus",
    "nrg",
    "pnp",
    "psm",
    "rssi",
    "sse",
    "tma",
    "typ",
    "ust",
    "var",
    "wh",
)
# The cloud default; older data is reported as outdated (404), which we show as offline.
DEFAULT_MAX_AGE = 30
DEFAULT_TIMEOUT = 15.0
MIN_REQUEST_INTERVAL = 1.0  # the charger cannot deliver data faster (cloudapi-en.md)
# Below this firmware the `err` codes follow the older hand-written list.
ERROR_ENUM_FIRMWARE = 59


class CarState(IntEnum):
    """`car`: state of the vehicle connection."""

    UNKNOWN = 0
    IDLE = 1
    CHARGING = 2
    WAIT_CAR = 3
    COMPLETE = 4
    ERROR = 5
    INITIALIZING = 6


class ForceState(IntEnum):
    """`frc`: 0 lets the charger's logic decide, 1 forbids, 2 forces charging."""

    NEUTRAL = 0
    OFF = 1
    ON = 2


class PhaseMode(IntEnum):
    """`psm`: phase switch mode."""

    AUTO = 0
    FORCE_1 = 1
    FORCE_3 = 2


class CableLockMode(IntEnum):
    """`ust`: cable lock setting."""

    NORMAL = 0
    AUTO_UNLOCK = 1
    ALWAYS_LOCK = 2


class CableUnlockStatus(IntEnum):
    """`cus`: cable unlock status."""

    UNKNOWN = 0
    UNLOCKED = 1
    UNLOCK_FAILED = 2
    LOCKED = 3
    LOCK_FAILED = 4
    LOCK_UNLOCK_POWEROUT = 5


# `err` names: the firmware exports (>= 59) renumbered the list after 10.
_ERRORS_FW59 = {
    0: "none",
    1: "fi_ac",
    2: "fi_dc",
    3: "phase",
    4: "overvolt",
    5: "overamp",
    6: "diode",
    7: "pp_invalid",
    8: "gnd_invalid",
    9: "contactor_stuck",
    10: "contactor_miss",
    12: "status_lock_stuck_open",
    13: "status_lock_stuck_locked",
    14: "fi_unknown",
    15: "unknown",
    16: "overtemp",
    17: "no_comm",
    18: "cp_invalid",
    23: "rdc_self_test_failed",
}
_ERRORS_LEGACY = {
    **{code: name for code, name in _ERRORS_FW59.items() if code <= 10},
    11: "fi_unknown",
    12: "unknown",
    13: "overtemp",
    14: "no_comm",
    15: "status_lock_stuck_open",
    16: "status_lock_stuck_locked",
}
ERROR_NAMES: frozenset[str] = frozenset(_ERRORS_FW59.values()) | frozenset(
    _ERRORS_LEGACY.values()
)


def error_name(code: int | None, firmware: str | None) -> str | None:
    """Name an `err` code in the enum that matches the firmware, or None."""
    if code is None:
        return None
    table = _ERRORS_LEGACY
    major = _firmware_major(firmware)
    if major is None or major >= ERROR_ENUM_FIRMWARE:
        table = _ERRORS_FW59
    return table.get(code, "unknown")


def _firmware_major(firmware: str | None) -> int | None:
    if not firmware:
        return None
    head = firmware.split(".", 1)[0]
    return int(head) if head.isdigit() else None


@dataclass(frozen=True, slots=True)
class GoeStatus:
    """The charger status we use, typed; a value is None when the charger omits it."""

    serial: str
    firmware: str | None
    name: str | None
    model: str | None
    variant: int | None
    car_state: CarState | None
    charging_allowed: bool | None
    requested_current: int | None
    min_current: int | None
    max_current: int | None
    force_state: ForceState | None
    phase_mode: PhaseMode | None
    phases: int | None
    voltages: tuple[float | None, float | None, float | None]
    currents: tuple[float | None, float | None, float | None]
    powers: tuple[float | None, float | None, float | None]
    power_total: float | None
    session_energy: float | None
    total_energy: float | None
    error_code: int | None
    temperatures: tuple[float, ...]
    cable_lock_mode: CableLockMode | None
    cable_unlock_status: CableUnlockStatus | None
    cable_limit: int | None
    signal_strength: int | None
    model_status: int | None
    # Keys we read that this charger lacks (absent from its answers), sorted:
    # CORE and PRO have no cable lock (`cus`, `lck`, `ust`) and no `cbl`.
    missing_keys: tuple[str, ...] = ()

    @property
    def error(self) -> str | None:
        """The error name in the enum of this firmware."""
        return error_name(self.error_code, self.firmware)

    @property
    def plugged_in(self) -> bool | None:
        """True while a car is connected."""
        if self.car_state is None or self.car_state == CarState.UNKNOWN:
            return None
        return self.car_state in (
            CarState.CHARGING,
            CarState.WAIT_CAR,
            CarState.COMPLETE,
        )

    @property
    def charging(self) -> bool | None:
        """True while energy flows to the car."""
        if self.car_state is None:
            return None
        return self.car_state == CarState.CHARGING


@dataclass(frozen=True, slots=True)
class GoeReading:
    """A status and the time the charger produced it (None when not reported)."""

    status: GoeStatus
    data_time: datetime | None


def parse_status(raw: Mapping[str, Any]) -> GoeStatus:
    """Build a typed status from the JSON object; mistyped values become None."""
    serial = raw.get("sse")
    if not isinstance(serial, str) or not serial:
        raise InvalidResponseError("The charger status has no serial number")
    nrg = raw.get("nrg")
    nrg_values: list[Any] = nrg if isinstance(nrg, list) else []

    def nrg_at(index: int) -> float | None:
        return _number(nrg_values[index]) if index < len(nrg_values) else None

    tma = raw.get("tma")
    return GoeStatus(
        serial=serial,
        firmware=_string(raw.get("fwv")),
        name=_string(raw.get("fna")),
        model=_string(raw.get("typ")),
        variant=_integer(raw.get("var")),
        car_state=_enum(CarState, raw.get("car")),
        charging_allowed=_boolean(raw.get("alw")),
        requested_current=_integer(raw.get("amp")),
        min_current=_integer(raw.get("mca")),
        max_current=_integer(raw.get("ama")),
        force_state=_enum(ForceState, raw.get("frc")),
        phase_mode=_enum(PhaseMode, raw.get("psm")),
        phases=_integer(raw.get("pnp")),
        voltages=(nrg_at(0), nrg_at(1), nrg_at(2)),
        currents=(nrg_at(4), nrg_at(5), nrg_at(6)),
        powers=(nrg_at(7), nrg_at(8), nrg_at(9)),
        power_total=nrg_at(11),
        session_energy=_number(raw.get("wh")),
        total_energy=_number(raw.get("eto")),
        error_code=_integer(raw.get("err")),
        temperatures=tuple(
            number
            for value in (tma if isinstance(tma, list) else [])
            if (number := _number(value)) is not None
        ),
        cable_lock_mode=_enum(CableLockMode, raw.get("ust")),
        cable_unlock_status=_enum(CableUnlockStatus, raw.get("cus")),
        cable_limit=_integer(raw.get("cbl")),
        signal_strength=_integer(raw.get("rssi")),
        model_status=_integer(raw.get("modelStatus")),
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _boolean(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _enum[E: IntEnum](enum: type[E], value: Any) -> E | None:
    number = _integer(value)
    if number is None:
        return None
    try:
        return enum(number)
    except ValueError:
        return None


def normalize_serial(serial: str) -> str:
    """Return the 6-digit serial with leading zeros; ValueError when not 1-6 digits."""
    serial = serial.strip()
    if not serial.isdigit() or len(serial) > 6:
        raise ValueError("A go-e serial number has up to 6 digits")
    return serial.zfill(6)


def encode_value(value: int | bool | str | None) -> str:
    """Encode one `/api/set` value the way the charger expects (JSON)."""
    return json.dumps(value)


class GoeClient:
    """Talks to one go-e charger, through the cloud or its local HTTP API."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        min_interval: float | None = None,
    ) -> None:
        """Use `base_url` (the API root) with the cloud token, or none for local.

        Requests start at least `min_interval` seconds apart (default
        MIN_REQUEST_INTERVAL).
        """
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        if min_interval is None:
            min_interval = MIN_REQUEST_INTERVAL
        self._spacer = RequestSpacer(min_interval)
        # Keys the charger left out of its answers, and the firmware that did.
        self._missing_keys: frozenset[str] = frozenset()
        self._firmware: str | None = None

    @classmethod
    def cloud(
        cls,
        session: aiohttp.ClientSession,
        serial: str,
        token: str,
        server_url: str | None = None,
        **kwargs: Any,
    ) -> GoeClient:
        """Client for the cloud API; `server_url` replaces the charger's address."""
        base_url = server_url or CLOUD_URL_TEMPLATE.format(serial=serial)
        return cls(session, base_url, token=token, **kwargs)

    @classmethod
    def local(
        cls, session: aiohttp.ClientSession, host: str, **kwargs: Any
    ) -> GoeClient:
        """Client for the charger's local HTTP API v2 at `host` (name or IP[:port])."""
        base = host if "://" in host else f"http://{host}"
        return cls(session, base, **kwargs)

    @property
    def is_cloud(self) -> bool:
        """True when talking to the cloud (token auth, cloud status codes)."""
        return self._token is not None

    @property
    def missing_keys(self) -> frozenset[str]:
        """The keys this charger lacks, as learnt from its answers."""
        return self._missing_keys

    async def async_get_status(self, max_age: float = DEFAULT_MAX_AGE) -> GoeReading:
        """Read the status; StaleDataError when the data is older than max_age.

        Keys the charger lacks are left out of the filter once learnt, so that
        it answers 200 and no key is asked for in vain.
        """
        keys = [key for key in STATUS_KEYS if key not in self._missing_keys]
        params = {"filter": ",".join(keys)}
        if self.is_cloud:
            params["age"] = f"{max_age:g}"
        status, headers, body = await self._request("/api/status", params)
        if status in (200, 400):
            # CORE and PRO answer 400 when the filter names keys they lack, yet
            # send the keys they have, locally and through the cloud alike.
            raw = _json_object(body) if status == 200 else _filtered_status(body, keys)
            parsed = self._learn_missing_keys(
                keys, raw, parse_status(raw), refused=status == 400
            )
            return GoeReading(parsed, _http_date(headers.get("Last-Modified")))
        if status == 404 and self.is_cloud and (stale := _outdated(body)):
            raise stale
        raise self._error(status, headers)

    def _learn_missing_keys(
        self,
        asked: Sequence[str],
        raw: Mapping[str, Any],
        status: GoeStatus,
        *,
        refused: bool,
    ) -> GoeStatus:
        """Remember the asked keys a 400 answer lacks; the status says which they are.

        Only a 400 says the charger lacks them: a key absent from a 200 answer
        (a glitch) is asked for again.
        """
        if status.firmware != self._firmware:
            # First answer, or a firmware update that may have added keys: keys
            # missing before are asked for again.
            self._missing_keys = frozenset()
            self._firmware = status.firmware
        if refused:
            self._missing_keys |= {key for key in asked if key not in raw}
        return replace(status, missing_keys=tuple(sorted(self._missing_keys)))

    async def async_set(self, values: Mapping[str, int | bool | str | None]) -> None:
        """Write keys; raises CommandRejectedError when the charger refuses any."""
        params = {key: encode_value(value) for key, value in values.items()}
        status, headers, body = await self._request("/api/set", params)
        if status in (200, 202):
            _raise_for_failed_keys(_json_object(body), values)
            return
        if status == 422:
            raise CommandRejectedError(f"The charger rejected {', '.join(values)}")
        if status == 500 and not self.is_cloud and (keys := _failed_keys(body, values)):
            # Some local APIs answer a refused key with 500 and the per-key body.
            raise CommandRejectedError(f"The charger rejected {', '.join(keys)}")
        if status == 404 and self.is_cloud:
            raise DeviceOfflineError("The charger is not online")
        raise self._error(status, headers)

    async def _request(
        self, path: str, params: Mapping[str, str]
    ) -> tuple[int, Mapping[str, str], str]:
        headers = {"Accept": "application/json"}
        if self._token is not None:
            # The token goes in a header so that no URL we might log contains it.
            headers["Authorization"] = f"Bearer {self._token}"
        await self._spacer.wait()
        try:
            async with self._session.get(
                f"{self._base_url}{path}",
                params=params,
                headers=headers,
                timeout=self._timeout,
            ) as response:
                body = await response.text()
                return response.status, response.headers, body
        except TimeoutError as err:
            raise CommunicationError("The charger did not answer in time") from err
        except aiohttp.ClientError as err:
            # The aiohttp message may contain the URL, so only its kind is kept.
            raise CommunicationError(
                f"Cannot reach the {'go-e cloud' if self.is_cloud else 'charger'}"
                f" ({type(err).__name__})"
            ) from None
        except UnicodeDecodeError as err:
            raise InvalidResponseError("The charger sent undecodable text") from err

    def _error(self, status: int, headers: Mapping[str, str]) -> Exception:
        if status == 401:
            return AuthenticationError("The go-e cloud rejected the API token")
        if status == 403 and self.is_cloud:
            return CloudApiDisabledError(
                "The charger is offline or its cloud API is disabled"
            )
        if status == 429:
            return RateLimitedError(
                "Too many requests", _retry_after(headers.get("Retry-After"))
            )
        return CommunicationError(f"Unexpected answer from the charger (HTTP {status})")


def _json_object(body: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        raise InvalidResponseError("The charger sent a body that is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidResponseError("The charger sent JSON that is not an object")
    return value


def _filtered_status(body: str, asked: Sequence[str]) -> dict[str, Any]:
    """The status in a 400 answer, which holds the asked keys the charger has.

    A 400 without such a body (an error object, an HTML page) is a refusal.
    """
    try:
        value = json.loads(body)
    except ValueError:
        value = None
    if isinstance(value, dict) and any(key in value for key in asked):
        return value
    reason = value.get("reason") if isinstance(value, dict) else None
    detail = f": {reason[:100]}" if isinstance(reason, str) and reason else ""
    raise InvalidResponseError(
        f"The charger refused the status request (HTTP 400{detail})"
    )


def _failed_keys(body: str, values: Mapping[str, object]) -> list[str]:
    """The sent keys that a local per-key body (`{"amp": "error"}`) names as failed."""
    try:
        value = json.loads(body)
    except ValueError:
        return []
    if not isinstance(value, dict):
        return []
    return [key for key in values if key in value and value[key] is not True]


def _raise_for_failed_keys(
    body: Mapping[str, Any], values: Mapping[str, object]
) -> None:
    """Raise when any key failed, in either body shape.

    Cloud: `{"succeeded": [{"amp": 16}], "failed": [{"frc": "reason"}]}`.
    Local: `{"amp": true, "frc": "error text"}`.
    """
    if "succeeded" in body or "failed" in body:
        failed = body.get("failed")
        names = [
            key
            for item in (failed if isinstance(failed, list) else [])
            for key in (item if isinstance(item, dict) else {item: None})
        ]
    else:
        names = [key for key in values if body.get(key) is not True]
    if names:
        raise CommandRejectedError(f"The charger rejected {', '.join(map(str, names))}")


def _outdated(body: str) -> StaleDataError | None:
    """The error for a 404 that is the cloud's "Data is outdated", else None.

    Any other 404 (an HTML page at a wrong server URL or path) is no answer of
    the go-e cloud, so it must not pass for a charger that stopped reporting.
    """
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    age = _number(value.get("age"))
    reason = value.get("reason")
    if age is None and not (isinstance(reason, str) and "outdated" in reason.lower()):
        return None
    return StaleDataError("The charger has no recent data", age)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except TypeError, ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


__all__ = [
    "CLOUD_URL_TEMPLATE",
    "STATUS_KEYS",
    "CableLockMode",
    "CableUnlockStatus",
    "CarState",
    "ForceState",
    "GoeClient",
    "GoeReading",
    "GoeStatus",
    "PhaseMode",
    "error_name",
    "normalize_serial",
    "parse_status",
]
