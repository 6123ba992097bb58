"""EVLinkHA client: the user, their vehicles, charging. Facts: providers.md §5.

EVLinkHA wraps Enode: its vehicle objects are Enode's cached vehicle, with
`vehicleId`/`vehicleName` (and, on the legacy `/status`, deprecated top-level copies
of some charge keys) added. Two API styles exist:

* the hosted service, `https://api.evlinkha.cloud/api/v1/ha/...` with `X-API-Key`;
* the public backend (rogasp/evlink-backend, self-hosted), `.../api/ha/...` with
  `Authorization: Bearer <key>`.

Errors are FastAPI's `{"detail": "..."}` (a list of problems for a request that
failed validation). No exception text, repr or cause chain of this client holds the
API key, and nothing of aiohttp (whose texts can name the URL) is kept as a cause.

Quota: every call but `/me` is taken from the `QuotaBudget` before it is sent (a
charging command with `command=True`, so it may use the command reserve). The
public backend counts only status and charging calls, in a rolling 30 days
(rogasp/evlink-backend, `backend/app/api/dependencies.py`); what the hosted service
counts is not public, so counting each call keeps the budget on the safe side. A
429 that says the monthly allowance is used up raises `QuotaExhaustedError` and
pauses the budget until the oldest day it counted leaves the window.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
import json
import math
import re
from typing import Any, Literal

import aiohttp
from yarl import URL

from .budget import QuotaBudget
from .errors import (
    AccessDeniedError,
    AuthenticationError,
    CommandRejectedError,
    CommunicationError,
    InvalidResponseError,
    QuotaExhaustedError,
    RateLimitedError,
    VehicleNotAvailableError,
)
from .parsing import (
    boolean as _bool,
    clean_detail as _clean,
    enum_key as _key,
    integer as _int,
    text as _text,
    utc_datetime as _datetime,
)
from .paths import append_segments

DEFAULT_SERVER_URL = "https://api.evlinkha.cloud"
HOSTED_PATH = "/api/v1/ha"  # X-API-Key
SELF_HOSTED_PATH = "/api/ha"  # evlink-backend: Authorization: Bearer
DEFAULT_TIMEOUT = 30.0

type AuthStyle = Literal["key", "bearer"]

TIERS = ("free", "basic", "pro")
POWER_DELIVERY_STATES = (
    "unknown",
    "unplugged",
    "plugged_in_initializing",
    "plugged_in_charging",
    "plugged_in_complete",
    "plugged_in_stopped",
    "plugged_in_no_power",
    "plugged_in_fault",
    "plugged_in_discharging",
)
# Enode's capability names (`capabilities.<name>.isCapable`).
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


def api_root(server_url: str) -> tuple[str, AuthStyle]:
    """The API root of a server URL and how it takes the key ("key" or "bearer").

    A URL without a path gets the hosted service's `/api/v1/ha`; a path ending in
    `/api/ha` is the self-hosted backend (bearer token); any other path is used as
    given, with `X-API-Key`. Query and fragment are dropped. ValueError for a URL
    that is not http(s) with a host.
    """
    try:
        url = URL(server_url.strip())
    except ValueError, TypeError:
        raise ValueError("The server URL cannot be read") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("The server URL must be an http(s) URL with a host")
    path = url.path.rstrip("/")
    base = url.with_path("").with_query(None).with_fragment(None)
    root = str(base).rstrip("/")
    if not path:
        return root + HOSTED_PATH, "key"
    if path.endswith(SELF_HOSTED_PATH):
        return root + path, "bearer"
    return root + path, "key"


@dataclass(frozen=True, slots=True)
class Me:
    """The account behind the API key (`/me`)."""

    user_id: str
    tier: str | None  # one of TIERS
    email: str | None
    name: str | None


@dataclass(frozen=True, slots=True)
class ChargeState:
    """Enode's `chargeState`; every field may be missing."""

    battery_level: float | None = None  # %
    range_km: float | None = None
    is_charging: bool | None = None
    is_plugged_in: bool | None = None
    is_fully_charged: bool | None = None
    battery_capacity_kwh: float | None = None
    charge_rate_kw: float | None = None
    charge_limit: float | None = None  # %
    time_remaining_min: float | None = None
    max_current: float | None = None  # A
    power_delivery_state: str | None = None  # one of POWER_DELIVERY_STATES
    last_updated: datetime | None = None


@dataclass(frozen=True, slots=True)
class EvLinkVehicle:
    """One vehicle: a `/vehicles` item, a `/status` answer or a pushed vehicle."""

    vehicle_id: str
    name: str | None = None
    is_reachable: bool | None = None
    last_seen: datetime | None = None
    charge: ChargeState = ChargeState()
    latitude: float | None = None
    longitude: float | None = None
    odometer_km: float | None = None
    vendor: str | None = None
    brand: str | None = None
    model: str | None = None
    year: int | None = None
    vin: str | None = None
    smart_charging: bool | None = None
    # Names whose isCapable is true, sorted; None when the answer has none (the
    # vehicle list): the vehicle may then be capable of anything.
    capabilities: tuple[str, ...] | None = None


# --- parsing -----------------------------------------------------------------------
# Every helper returns None for a missing or mistyped value instead of raising
# (the general ones come from `parsing`).


def _number(value: Any) -> float | None:
    """A finite JSON number; booleans and strings are not numbers."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _object(value: Any) -> Mapping[str, Any]:
    """A JSON object, or an empty one for anything else."""
    return value if isinstance(value, dict) else {}


def power_delivery_key(value: Any) -> str | None:
    """Enode's `powerDeliveryState` as one of POWER_DELIVERY_STATES, or None."""
    return _key(value, POWER_DELIVERY_STATES)


def _first[T](*values: T | None) -> T | None:
    return next((value for value in values if value is not None), None)


def _charge_state(raw: Mapping[str, Any]) -> ChargeState:
    """`chargeState`, falling back to the deprecated top-level keys of `/status`."""
    charge = _object(raw.get("chargeState"))
    return ChargeState(
        battery_level=_first(
            _number(charge.get("batteryLevel")), _number(raw.get("batteryLevel"))
        ),
        range_km=_first(_number(charge.get("range")), _number(raw.get("range"))),
        is_charging=_first(
            _bool(charge.get("isCharging")), _bool(raw.get("isCharging"))
        ),
        is_plugged_in=_first(
            _bool(charge.get("isPluggedIn")), _bool(raw.get("isPluggedIn"))
        ),
        is_fully_charged=_bool(charge.get("isFullyCharged")),
        battery_capacity_kwh=_number(charge.get("batteryCapacity")),
        charge_rate_kw=_number(charge.get("chargeRate")),
        charge_limit=_number(charge.get("chargeLimit")),
        time_remaining_min=_number(charge.get("chargeTimeRemaining")),
        max_current=_number(charge.get("maxCurrent")),
        power_delivery_state=_first(
            power_delivery_key(charge.get("powerDeliveryState")),
            power_delivery_key(raw.get("chargingState")),
        ),
        last_updated=_datetime(charge.get("lastUpdated")),
    )


def _capabilities(raw: Any) -> tuple[str, ...] | None:
    if not isinstance(raw, Mapping):
        return None
    return tuple(
        sorted(
            name
            for name, capability in raw.items()
            if isinstance(name, str) and _object(capability).get("isCapable") is True
        )
    )


def _vehicle_id(raw: Mapping[str, Any]) -> str | None:
    """`vehicleId` (EVLinkHA's answers) or `id` (Enode's vehicle, as pushed)."""
    for key in ("vehicleId", "id"):
        value = raw.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if (text := _text(value)) is not None:
            return text
    return None


def _vehicle(raw: Mapping[str, Any], vehicle_id: str) -> EvLinkVehicle:
    info = _object(raw.get("information"))
    location = _object(raw.get("location"))
    brand = _text(info.get("brand"))
    model = _text(info.get("model"))
    made_of = " ".join(part for part in (brand, model) if part) or None
    return EvLinkVehicle(
        vehicle_id=vehicle_id,
        name=_first(
            _text(info.get("displayName")), _text(raw.get("vehicleName")), made_of
        ),
        is_reachable=_bool(raw.get("isReachable")),
        last_seen=_datetime(raw.get("lastSeen")),
        charge=_charge_state(raw),
        latitude=_first(
            _number(location.get("latitude")), _number(raw.get("latitude"))
        ),
        longitude=_first(
            _number(location.get("longitude")), _number(raw.get("longitude"))
        ),
        odometer_km=_number(_object(raw.get("odometer")).get("distance")),
        vendor=_text(raw.get("vendor")),
        brand=brand,
        model=model,
        year=_int(info.get("year")),
        vin=_text(info.get("vin")),
        smart_charging=_bool(_object(raw.get("smartChargingPolicy")).get("isEnabled")),
        capabilities=_capabilities(raw.get("capabilities")),
    )


def parse_vehicle(raw: Any) -> EvLinkVehicle | None:
    """A vehicle object; None when it is no JSON object or has no id.

    Reads `/vehicles` items, `/status` answers (preferring `chargeState.*` over the
    deprecated top-level keys) and pushed Enode vehicles alike.
    """
    if not isinstance(raw, dict) or (vehicle_id := _vehicle_id(raw)) is None:
        return None
    return _vehicle(raw, vehicle_id)


def _is_deletion(event: Any) -> bool:
    return isinstance(event, str) and event.endswith(":deleted")


def parse_push(payload: Any) -> list[EvLinkVehicle]:
    """The vehicles of a pushed webhook body; never raises.

    The body is an Enode event `{"event": ..., "vehicle": {...}}`, a bare
    `{"vehicle": {...}}`, or a list of events. Events without a readable vehicle,
    and deletions (`user:vehicle:deleted`, whose vehicle is gone), give nothing.
    """
    events = payload if isinstance(payload, list) else [payload]
    vehicles: list[EvLinkVehicle] = []
    for event in events:
        if not isinstance(event, dict) or _is_deletion(event.get("event")):
            continue
        vehicle = parse_vehicle(event.get("vehicle"))
        if vehicle is not None:
            vehicles.append(vehicle)
    return vehicles


def parse_me(raw: Any) -> Me:
    """`/me`; InvalidResponseError without a user id."""
    body = _object(raw)
    user_id = body.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if (user_id := _text(user_id)) is None:
        raise InvalidResponseError("EVLinkHA sent no user id")
    return Me(
        user_id=user_id,
        tier=_key(body.get("tier"), TIERS),
        email=_text(body.get("email")),
        name=_text(body.get("name")),
    )


# --- error texts ---------------------------------------------------------------------

_ALLOWANCE = re.compile(r"allowance\s*\(\s*(\d+)\s*/\s*(\d+)\s*\)", re.IGNORECASE)


def _problem(item: Any) -> str | None:
    """One FastAPI validation problem: "body.action: String should match ..."."""
    if isinstance(item, str):
        return _text(item)
    if not isinstance(item, dict):
        return None
    message = _text(item.get("msg"))
    loc = item.get("loc")
    where = (
        ".".join(str(part) for part in loc if isinstance(part, str | int))
        if isinstance(loc, list)
        else ""
    )
    if message is None:
        return None
    return f"{where}: {message}" if where else message


def _passed_through(text: str) -> str:
    """The message of an Enode problem the backend passed on as its detail.

    The backend hands Enode's error body on as text ('{"title": "Bad Request",
    "detail": "Vehicle is not plugged in."}'); its `detail` (or `title`) is the
    message. Any other text is kept as it is.
    """
    if not text.startswith("{"):
        return text
    try:
        problem = _object(json.loads(text))
    except ValueError:
        return text
    return _text(problem.get("detail")) or _text(problem.get("title")) or text


def detail_text(detail: Any) -> str | None:
    """FastAPI's `detail`, a string or a list of validation problems, as one text."""
    if isinstance(detail, str):
        text = _text(detail)
        return _passed_through(text) if text else None
    if isinstance(detail, list):
        problems = [text for item in detail if (text := _problem(item))]
        return "; ".join(problems) or None
    return None


def parse_allowance(text: str | None) -> tuple[int, int] | None:
    """(used, allowance) from "… Monthly allowance (300/300) …", or None."""
    match = _ALLOWANCE.search(text or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


# --- client ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one HTTP exchange returned (the body as bytes, never logged)."""

    status: int
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise InvalidResponseError(
                "EVLinkHA sent a body that is not JSON"
            ) from None

    def detail(self) -> tuple[Any, bool]:
        """FastAPI's `detail` of an error answer, and whether the body had one."""
        try:
            value = json.loads(self.body)
        except ValueError:
            return None, False
        if not isinstance(value, dict) or "detail" not in value:
            return None, False
        return value["detail"], True


class EvLinkClient:
    """One EVLinkHA account (one API key), on the hosted service or a backend."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        server_url: str,
        api_key: str,
        *,
        budget: QuotaBudget | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to `server_url` (see `api_root`) with `api_key`."""
        root, self.auth_style = api_root(server_url)
        self._session = session
        self._root = URL(root)
        self._api_key = api_key
        self._budget = budget
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        """Name the API root and auth style, never the key."""
        return f"EvLinkClient(root={str(self._root)!r}, auth={self.auth_style!r})"

    @property
    def root(self) -> str:
        """The API root the requests go to."""
        return str(self._root)

    async def async_get_me(self) -> Me:
        """The account behind the key (not counted against the budget)."""
        answer = await self._request("GET", ("me",), counted=False)
        return parse_me(answer.json())

    async def async_get_vehicles(self) -> list[EvLinkVehicle]:
        """Every vehicle of the account; items without an id are skipped."""
        answer = await self._request("GET", ("vehicles",))
        body = answer.json()
        if not isinstance(body, list):
            raise InvalidResponseError("EVLinkHA sent a vehicle list that is no list")
        return [vehicle for item in body if (vehicle := parse_vehicle(item))]

    async def async_get_status(self, vehicle_id: str) -> EvLinkVehicle:
        """The status of one vehicle, always named by `vehicle_id`.

        The answer's own id, if any, is not used: the hosted service may pass
        Enode's vehicle id through, which is not the id asked for.
        """
        answer = await self._request("GET", ("status", vehicle_id), vehicle=True)
        body = answer.json()
        if not isinstance(body, dict):
            raise InvalidResponseError("EVLinkHA sent a status that is no object")
        return _vehicle(body, vehicle_id)

    async def async_set_charging(self, vehicle_id: str, start: bool) -> None:
        """Start or stop charging (the service retries until the car follows)."""
        await self._request(
            "POST",
            ("charging", vehicle_id),
            vehicle=True,
            command=True,
            json_body={"action": "START" if start else "STOP"},
        )

    # --- transport ----------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.auth_style == "bearer":
            headers["Authorization"] = f"Bearer {self._api_key}"
        else:
            headers["X-API-Key"] = self._api_key
        return headers

    def _url(self, segments: tuple[str, ...]) -> URL:
        """The API URL of `segments`, each quoted as one path segment."""
        return append_segments(self._root, *segments)

    async def _request(
        self,
        method: str,
        segments: tuple[str, ...],
        *,
        counted: bool = True,
        vehicle: bool = False,
        command: bool = False,
        json_body: Mapping[str, Any] | None = None,
    ) -> _Answer:
        """Send a request and return its 2xx answer, or raise the error it means.

        Each segment (e.g. a vehicle id) is quoted as one path segment. A counted
        request is taken from the budget first; one the budget refuses is not sent.
        """
        if counted and self._budget is not None:
            self._budget.acquire(command=command)
        answer = await self._exchange(method, self._url(segments), json_body)
        self._raise_for_status(answer, vehicle=vehicle)
        return answer

    async def _exchange(
        self, method: str, url: URL, json_body: Mapping[str, Any] | None
    ) -> _Answer:
        """One HTTP exchange. No error names the URL, the key or an aiohttp error.

        Redirects are not followed: the key would go with them. The errors are
        raised outside the `except` blocks so that no aiohttp exception (whose
        text can hold the URL) is kept as cause or context.
        """
        failure: str
        try:
            async with self._session.request(
                method,
                url,
                headers=self._headers(),
                json=json_body,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                return _Answer(
                    status=response.status,
                    body=await response.read(),
                    headers=response.headers,
                )
        except TimeoutError:
            failure = "timeout"
        except aiohttp.ClientError as err:
            failure = type(err).__name__
        if failure == "timeout":
            raise CommunicationError("EVLinkHA did not answer in time")
        raise CommunicationError(f"Cannot reach EVLinkHA ({failure})")

    def _raise_for_status(self, answer: _Answer, *, vehicle: bool) -> None:
        status = answer.status
        if 200 <= status < 300:
            return
        raw, has_detail = answer.detail()
        text = detail_text(raw)
        detail = _clean(text, self._api_key) if text else None
        said = f": {detail}" if detail else ""
        if status == 401:
            raise AuthenticationError(f"EVLinkHA rejected the API key{said}")
        if status == 403:
            raise AccessDeniedError(f"EVLinkHA denied the request{said}")
        if status == 404 and vehicle:
            raise VehicleNotAvailableError(
                "The vehicle is unknown to EVLinkHA or belongs to another account",
                "not_owned",
            )
        if status == 400:
            raise CommandRejectedError(
                f"EVLinkHA rejected the command in the vehicle's state{said}",
                reason="unplugged_or_state",
            )
        if status == 422:
            if isinstance(raw, str):
                raise CommandRejectedError(
                    f"The vehicle is under schedule or smart charging control{said}",
                    reason="smart_charging",
                )
            raise CommandRejectedError(f"EVLinkHA refused the request{said}")
        if status == 429:
            self._raise_rate_limited(answer, detail)
        if 300 <= status < 400:
            raise CommunicationError(
                f"EVLinkHA redirected the request (HTTP {status}); check the server URL"
            )
        if status == 404:
            raise CommunicationError(
                "EVLinkHA does not serve this API at the server URL (HTTP 404)"
            )
        if status >= 500:
            raise CommunicationError(f"EVLinkHA failed (HTTP {status}){said}")
        extra = said if has_detail else ""
        raise CommunicationError(
            f"Unexpected answer from EVLinkHA (HTTP {status}){extra}"
        )

    def _raise_rate_limited(self, answer: _Answer, detail: str | None) -> None:
        counts = parse_allowance(detail)
        if counts is not None or (detail and "allowance" in detail.lower()):
            used, allowance = counts if counts is not None else (None, None)
            if self._budget is not None:
                self._budget.pause_until_calls_leave()
            shown = f" ({used}/{allowance})" if counts is not None else ""
            raise QuotaExhaustedError(
                f"The EVLinkHA monthly call allowance is used up{shown}",
                used=used,
                allowance=allowance,
            )
        retry_after = _retry_after(answer.headers)
        if retry_after is not None and self._budget is not None:
            self._budget.pause(retry_after)
        raise RateLimitedError("EVLinkHA asked to slow down", retry_after)


__all__ = [
    "CAPABILITIES",
    "DEFAULT_SERVER_URL",
    "HOSTED_PATH",
    "POWER_DELIVERY_STATES",
    "SELF_HOSTED_PATH",
    "TIERS",
    "AuthStyle",
    "ChargeState",
    "EvLinkClient",
    "EvLinkVehicle",
    "Me",
    "api_root",
    "detail_text",
    "parse_allowance",
    "parse_me",
    "parse_push",
    "parse_vehicle",
    "power_delivery_key",
]
