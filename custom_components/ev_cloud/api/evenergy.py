"""ev.energy API v2 client: vehicles, chargers, sessions. Facts: providers.md §1.

The API answers JSON (lists are plain arrays; the next page is only in the `Link`
header), errors as RFC 9457 `application/problem+json`, and enum values in upper
case (some of them long strings: `"AC - Typically home chargers"`); this client
hands out lower-case keys. Every request carries `EvEnergy-Version: 2` and a bearer
token from the injected token getter, which no exception text or repr may show.

Rate limit: `x-ratelimit-limit` requests (default 1000) per rolling hour per OAuth
application and user. Polls go through the `RequestBudget` and may use 80 % of the
limit; the remaining 20 % are kept for commands (boost, PATCH), which only a pause
after a 429 holds back. See `new_budget` and `RequestBudget.follow`.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
import json
import math
import re
from typing import Any
from urllib.parse import quote_plus

import aiohttp
from yarl import URL

from .budget import RequestBudget
from .errors import (
    AccessDeniedError,
    AuthenticationError,
    CommandRejectedError,
    CommunicationError,
    DeviceOfflineError,
    InvalidResponseError,
    RateLimitedError,
    VehicleNotAvailableError,
)
from .parsing import (
    boolean as _bool,
    clean_detail as _clean,
    enum_key,
    integer as _int,
    text as _text,
    utc_datetime as _datetime,
)
from .paths import append_segments

DEFAULT_BASE_URL = "https://api.ev.energy"
API_VERSION = "2"
DEFAULT_TIMEOUT = 30.0

# Requests per rolling hour per (OAuth application + user) when the server does not
# say (`x-ratelimit-limit`); the share of it kept for commands.
DEFAULT_RATE_LIMIT = 1000
RATE_LIMIT_WINDOW = 3600.0
COMMAND_RESERVE = 0.2
# How many minutes of polls the budget may send at once: 10 minutes of 800/h is 133
# requests, so a full bucket plus an hour of refill (933) stays below the limit.
BURST_MINUTES = 10.0
# Seconds to wait after a 429 without a usable retry-after header.
DEFAULT_RETRY_AFTER = 60.0

PAGE_SIZE = 100  # the largest page the API serves
# Stop following `Link: rel="next"` after this many pages (a server that loops).
MAX_PAGES = 50
# The newest sessions pages searched for a vehicle's plugged-in session.
SESSION_PAGES = 3
# Command logs without `since`: only the newest page.
NO_LINK = "about:blank"

# A client-credentials token is renewed this long before it expires (at most a
# tenth of its lifetime); without `expires_in` it is taken to last 10 hours.
TOKEN_MARGIN = 60.0
DEFAULT_TOKEN_LIFETIME = 36_000.0

INTEGRATION_STATES = ("unintegrated", "active", "inactive")
VEHICLE_STATES = (
    "driving",
    "recently_finished_driving",
    "stationary",
    "in_service",
    "plugged_in_not_charging",
    "plugged_in_charging",
    "plugged_in_complete",
    "plugged_in_near_ready_by_time",
    "plugged_in_almost_complete",
    "unknown",
)
CURRENT_TYPES = ("ac", "dc")
EVSE_MODES = (
    "unknown",
    "idle",
    "delay",
    "charge",
    "discharge",
    "ffr",
    "load_match",
    "export_match",
    "peak_time",
    "deep_sleep",
)
LOCK_MODES = ("unlocked", "smart", "locked")
SESSION_MODES = ("smart", "boost", "unmanaged_home", "unmanaged_otg", "managed_otg")
COMMANDS = ("start_charge", "stop_charge", "wake_up", "send_schedule")


# `EvEnergy-User` names the user an organisation acts for. The spec's pattern is
# a user id; the docs' prose says "the URL of the user" (the user's `url`, e.g.
# `https://api.ev.energy/v2/users/user01HN2NJ9NMRZBXT1H6FT9N7735`). Both forms
# are accepted and sent as given.
USER_ID_PATTERN = re.compile(r"user[A-Z\d]{26}")
_USER_URL = re.compile(r"https?://[^/?#\s]+(?:/[^?#\s]*)?/users/(user[A-Z\d]{26})/?")


def user_reference_id(value: str) -> str | None:
    """The user id an `EvEnergy-User` value names: the id itself, or the user's URL.

    None for anything else (the form asks again before a request is sent).
    """
    value = value.strip()
    if USER_ID_PATTERN.fullmatch(value):
        return value
    match = _USER_URL.fullmatch(value)
    return match.group(1) if match else None


def api_url(base_url: str) -> str:
    """The API root of a host root (`https://api.ev.energy` -> `.../v2`)."""
    return f"{base_url.rstrip('/')}/v2"


def authorize_url(base_url: str) -> str:
    """The OAuth 2 authorization endpoint of a host root."""
    return f"{base_url.rstrip('/')}/o/authorize/"


def token_url(base_url: str) -> str:
    """The OAuth 2 token endpoint of a host root."""
    return f"{base_url.rstrip('/')}/o/token/"


def new_budget(limit: int = DEFAULT_RATE_LIMIT) -> RequestBudget:
    """A budget for one (application + user) pair with `limit` requests an hour.

    Polls refill at 80 % of the limit (1000/h: 13.3 a minute, one every 4.5 s) and
    may send up to `BURST_MINUTES` of that at once; the client makes it follow the
    limit and the remaining requests the server reports.
    """
    per_minute = (1 - COMMAND_RESERVE) * limit * 60 / RATE_LIMIT_WINDOW
    maximum = max(1, math.floor(per_minute * BURST_MINUTES))
    return RequestBudget(burst=maximum, per_minute=per_minute, maximum=maximum)


type TokenGetter = Callable[[], Awaitable[str]]
"""Returns a valid access token; may raise AuthenticationError / CommunicationError.

One that also has `invalidate(token)` is told when the server refuses a token,
so that its next call renews it.
"""


@dataclass(frozen=True, slots=True)
class VehicleStatus:
    """A vehicle status log (`VehicleStatusLog`); every field may be missing."""

    sampled_at: datetime | None = None
    logged_at: datetime | None = None
    state_of_charge: int | None = None  # %
    is_charging: bool | None = None
    is_plugged_in: bool | None = None
    is_complete: bool | None = None
    charge_rate_watts: int | None = None
    charge_level_wh: int | None = None
    target_charge_level_wh: int | None = None
    target_charge_level_percentage: int | None = None
    charge_energy_added_wh: int | None = None
    minutes_to_full: int | None = None
    current_type: str | None = None  # one of CURRENT_TYPES
    odometer_meters: int | None = None
    state: str | None = None  # one of VEHICLE_STATES


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A vehicle, with its latest status log when the server inlined it."""

    vehicle_id: str
    description: str | None = None
    integrated: str | None = None  # one of INTEGRATION_STATES
    battery_size_wh: int | None = None
    maximum_charge_limit_percentage: int | None = None
    smart_charging_enabled: bool | None = None
    disabled: bool = False
    status: VehicleStatus | None = None


@dataclass(frozen=True, slots=True)
class Location:
    """A vehicle location log: only whether the car is at home, no coordinates."""

    sampled_at: datetime | None = None
    at_home: bool | None = None


@dataclass(frozen=True, slots=True)
class CommandLog:
    """A command ev.energy sent to a vehicle."""

    logged_at: datetime | None = None
    command: str | None = None  # one of COMMANDS
    current_milliamps: int | None = None
    command_id: str | None = None  # internal_command_id (a UUID)


@dataclass(frozen=True, slots=True)
class EvseStatus:
    """A charger status log (`EVSEStatusLog`)."""

    sampled_at: datetime | None = None
    is_plugged_in: bool | None = None
    is_charging: bool | None = None
    charge_rate_watts: int | None = None
    meter_reading_wh: int | None = None
    mode: str | None = None  # one of EVSE_MODES


@dataclass(frozen=True, slots=True)
class Evse:
    """A charger (EVSE), with its latest status log when the server inlined it."""

    evse_id: str
    cpid: str | None = None
    lock_mode: str | None = None  # one of LOCK_MODES
    status: EvseStatus | None = None


@dataclass(frozen=True, slots=True)
class ChargingSession:
    """A plug-in episode and the mode of its current sub-session."""

    session_id: str
    vehicle_id: str | None = None
    evse_id: str | None = None
    start: datetime | None = None  # plugged in
    end: datetime | None = None  # unplugged; None while plugged in
    mode: str | None = None  # one of SESSION_MODES; None without inlined sub-sessions


@dataclass(frozen=True, slots=True)
class User:
    """An ev.energy user: the id that names the account, and its e-mail."""

    user_id: str
    email: str | None


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The `x-ratelimit-*` headers of the last answer."""

    limit: int | None = None
    remaining: int | None = None


# --- parsing -----------------------------------------------------------------------
# Every helper returns None for a missing or mistyped value instead of raising
# (the general ones come from `parsing`).


def current_type_key(value: Any) -> str | None:
    """The current type as "ac"/"dc" (from "AC - Typically home chargers", "AC")."""
    if not isinstance(value, str):
        return None
    return enum_key(value.split(" - ", 1)[0], CURRENT_TYPES)


def _resource_id(value: Any) -> str | None:
    """The id of a related resource: inlined ({"id": ...}) or its URL."""
    if isinstance(value, dict):
        return _text(value.get("id"))
    if isinstance(value, str) and value:
        segments = [segment for segment in URL(value).path.split("/") if segment]
        return segments[-1] if segments else None
    return None


def parse_vehicle_status(raw: Any) -> VehicleStatus | None:
    """A VehicleStatusLog; None for a URL (not expanded), null or anything else."""
    if not isinstance(raw, dict):
        return None
    return VehicleStatus(
        sampled_at=_datetime(raw.get("sampled_at")),
        logged_at=_datetime(raw.get("logged_at")),
        state_of_charge=_int(raw.get("state_of_charge_percentage")),
        is_charging=_bool(raw.get("is_charging")),
        is_plugged_in=_bool(raw.get("is_plugged_in")),
        is_complete=_bool(raw.get("is_complete")),
        charge_rate_watts=_int(raw.get("charge_rate_watts")),
        charge_level_wh=_int(raw.get("charge_level_watt_hours")),
        target_charge_level_wh=_int(raw.get("target_charge_level_watt_hours")),
        target_charge_level_percentage=_int(raw.get("target_charge_level_percentage")),
        charge_energy_added_wh=_int(raw.get("charge_energy_added_watt_hours")),
        minutes_to_full=_int(raw.get("minutes_to_full_charge")),
        current_type=current_type_key(raw.get("current_type")),
        odometer_meters=_int(raw.get("odometer_meters")),
        state=enum_key(raw.get("state"), VEHICLE_STATES),
    )


def _vehicle(raw: Any) -> Vehicle | None:
    if not isinstance(raw, dict) or (vehicle_id := _text(raw.get("id"))) is None:
        return None
    return Vehicle(
        vehicle_id=vehicle_id,
        description=_text(raw.get("description")),
        integrated=enum_key(raw.get("integrated"), INTEGRATION_STATES),
        battery_size_wh=_int(raw.get("battery_size_watt_hours")),
        maximum_charge_limit_percentage=_int(
            raw.get("maximum_charge_limit_percentage")
        ),
        smart_charging_enabled=_bool(raw.get("smart_charging_enabled")),
        disabled=raw.get("disabled") is True,
        status=parse_vehicle_status(raw.get("latest_status_log")),
    )


def parse_vehicle(raw: Any) -> Vehicle:
    """One Vehicle; InvalidResponseError when it is no object with an id."""
    vehicle = _vehicle(raw)
    if vehicle is None:
        raise InvalidResponseError("ev.energy sent a vehicle without an id")
    return vehicle


def parse_vehicles(raw: Any) -> list[Vehicle]:
    """A page of vehicles; entries without an id are skipped."""
    return [vehicle for item in _list(raw) if (vehicle := _vehicle(item))]


def parse_location(raw: Any) -> Location | None:
    """A VehicleLocationLog."""
    if not isinstance(raw, dict):
        return None
    return Location(
        sampled_at=_datetime(raw.get("sampled_at")), at_home=_bool(raw.get("at_home"))
    )


def parse_command_logs(raw: Any) -> list[CommandLog]:
    """A page of VehicleCommandLogs."""
    return [
        CommandLog(
            logged_at=_datetime(item.get("logged_at")),
            command=enum_key(item.get("command"), COMMANDS),
            current_milliamps=_int(item.get("current_milliamps")),
            command_id=_text(item.get("internal_command_id")),
        )
        for item in _list(raw)
        if isinstance(item, dict)
    ]


def parse_evse_status(raw: Any) -> EvseStatus | None:
    """An EVSEStatusLog; None for a URL (not expanded), null or anything else."""
    if not isinstance(raw, dict):
        return None
    return EvseStatus(
        sampled_at=_datetime(raw.get("sampled_at")),
        is_plugged_in=_bool(raw.get("is_plugged_in")),
        is_charging=_bool(raw.get("is_charging")),
        charge_rate_watts=_int(raw.get("charge_rate_watts")),
        meter_reading_wh=_int(raw.get("meter_reading_watt_hours")),
        mode=enum_key(raw.get("mode"), EVSE_MODES),
    )


def parse_evses(raw: Any) -> list[Evse]:
    """A page of EVSEs; entries without an id are skipped."""
    return [
        Evse(
            evse_id=evse_id,
            cpid=_text(item.get("cpid")),
            lock_mode=enum_key(item.get("lock_mode"), LOCK_MODES),
            status=parse_evse_status(item.get("latest_status_log")),
        )
        for item in _list(raw)
        if isinstance(item, dict) and (evse_id := _text(item.get("id")))
    ]


def _current_mode(sub_sessions: Any) -> str | None:
    """The mode of the newest unfinished inlined sub-session."""
    if not isinstance(sub_sessions, list):
        return None
    running = [
        sub for sub in sub_sessions if isinstance(sub, dict) and sub.get("end") is None
    ]
    if not running:
        return None
    oldest = datetime.min.replace(tzinfo=UTC)
    newest = max(running, key=lambda sub: _datetime(sub.get("start")) or oldest)
    return enum_key(newest.get("mode"), SESSION_MODES)


def _session(raw: Any) -> ChargingSession | None:
    if not isinstance(raw, dict) or (session_id := _text(raw.get("id"))) is None:
        return None
    end = _datetime(raw.get("end"))
    return ChargingSession(
        session_id=session_id,
        vehicle_id=_resource_id(raw.get("vehicle")),
        evse_id=_resource_id(raw.get("evse")),
        start=_datetime(raw.get("start")),
        end=end,
        mode=None if end is not None else _current_mode(raw.get("sub_sessions")),
    )


def parse_session(raw: Any) -> ChargingSession:
    """One ChargingSession; InvalidResponseError when it is no object with an id."""
    session = _session(raw)
    if session is None:
        raise InvalidResponseError("ev.energy sent a charging session without an id")
    return session


def parse_sessions(raw: Any) -> list[ChargingSession]:
    """A page of ChargingSessions (newest first); entries without an id skipped."""
    return [session for item in _list(raw) if (session := _session(item))]


def _list(raw: Any) -> list[Any]:
    if not isinstance(raw, list):
        raise InvalidResponseError("ev.energy sent a list that is no JSON array")
    return raw


_LINK = re.compile(r"<([^>]*)>((?:\s*;\s*[^;,]+)*)")
_REL = re.compile(r"""\brel\s*=\s*"?([^";]+)"?""", re.IGNORECASE)


def parse_link_next(header: str | None) -> str | None:
    """The `rel="next"` target of an RFC 8288 Link header; None at the end.

    ev.energy marks "no next page" with `<about:blank>`.
    """
    if not header:
        return None
    for match in _LINK.finditer(header):
        rel = _REL.search(match.group(2))
        if rel is None or "next" not in rel.group(1).lower().split():
            continue
        target = match.group(1).strip()
        return None if not target or target == NO_LINK else target
    return None


def _header_int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def parse_retry_after(headers: Mapping[str, str]) -> float:
    """Seconds from `retry-after` or `RetryAfter` (any case); 60 without one."""
    for name, value in headers.items():
        if name.lower() not in ("retry-after", "retryafter"):
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        if math.isfinite(seconds):
            return max(0.0, seconds)
    return DEFAULT_RETRY_AFTER


def problem_text(problem: Mapping[str, Any]) -> str | None:
    """`detail` and `field_errors` of an RFC 9457 problem, joined readably.

    {"detail": "Invalid input.", "field_errors": {"x": ["Too big."]}} gives
    "Invalid input. x: Too big."
    """
    parts: list[str] = []
    if detail := _text(problem.get("detail")):
        parts.append(detail)
    elif title := _text(problem.get("title")):
        parts.append(title)
    field_errors = problem.get("field_errors")
    if isinstance(field_errors, dict):
        parts.extend(
            f"{field}: {' '.join(messages)}"
            for field, messages in _field_messages(field_errors)
        )
    return " ".join(parts) if parts else None


def _field_messages(
    errors: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, list[str]]]:
    for field, value in errors.items():
        name = f"{prefix}{field}"
        if isinstance(value, str):
            yield name, [value]
        elif isinstance(value, list):
            messages = [item for item in value if isinstance(item, str)]
            if messages:
                yield name, messages
        elif isinstance(value, dict):
            yield from _field_messages(value, f"{name}.")


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# --- client ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one HTTP exchange returned (the body as bytes, never logged)."""

    status: int
    body: bytes
    content_type: str
    headers: Mapping[str, str]
    url: URL

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise InvalidResponseError(
                "ev.energy sent a body that is not JSON"
            ) from None

    def problem(self) -> Mapping[str, Any] | None:
        """The problem details of an error answer, if it is JSON."""
        if "json" not in self.content_type:
            return None
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


async def _exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: URL,
    client_timeout: aiohttp.ClientTimeout,
    **kwargs: Any,
) -> _Answer:
    """One HTTP exchange. No error names the URL, the token or an aiohttp error.

    The errors are raised outside the `except` blocks so that no exception of
    aiohttp (whose text can hold the URL) is kept as cause or context.
    """
    failure: str
    try:
        async with session.request(
            method, url, timeout=client_timeout, **kwargs
        ) as response:
            return _Answer(
                status=response.status,
                body=await response.read(),
                content_type=response.content_type,
                headers=response.headers,
                url=response.url,
            )
    except TimeoutError:
        failure = "timeout"
    except aiohttp.ClientError as err:
        failure = type(err).__name__
    if failure == "timeout":
        raise CommunicationError("ev.energy did not answer in time")
    raise CommunicationError(f"Cannot reach ev.energy ({failure})")


def _basic_auth(client_id: str, client_secret: str) -> str:
    """HTTP Basic client authentication as RFC 6749 §2.3.1 has it.

    Both parts are form-urlencoded before they are joined (the server decodes
    them), so a secret may hold ":" and any other character.
    """
    user_pass = f"{quote_plus(client_id)}:{quote_plus(client_secret)}"
    return "Basic " + base64.b64encode(user_pass.encode()).decode("ascii")


class ClientCredentials:
    """A TokenGetter for an organisation: the OAuth 2 client-credentials grant.

    The client authenticates with HTTP Basic. The token is cached until shortly
    before it expires (`TOKEN_MARGIN`); concurrent callers share one token request.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        client_id: str,
        client_secret: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Get tokens for `client_id` from the token endpoint of `base_url`."""
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        """Name the client, never its secret or token."""
        return (
            f"ClientCredentials(base_url={self._base_url!r}, "
            f"client_id={self._client_id!r})"
        )

    def invalidate(self, token: str | None = None) -> None:
        """Forget the cached token (only if it is `token`, when given)."""
        if token is None or token == self._token:
            self._token = None

    async def __call__(self) -> str:
        """A valid access token, from the cache or a new token request."""
        async with self._lock:
            if self._token is not None and self._clock() < self._expires:
                return self._token
            self._token = None
            token, lifetime = await self._request()
            margin = min(TOKEN_MARGIN, lifetime / 10)
            self._token = token
            self._expires = self._clock() + lifetime - margin
            return token

    async def _request(self) -> tuple[str, float]:
        answer = await _exchange(
            self._session,
            "POST",
            URL(token_url(self._base_url)),
            self._timeout,
            data={"grant_type": "client_credentials"},
            headers={
                "Accept": "application/json",
                "Authorization": _basic_auth(self._client_id, self._client_secret),
            },
        )
        if answer.status in (400, 401):
            problem = answer.problem() or {}
            code = problem.get("error")
            reason = (
                f" ({code})"
                if isinstance(code, str) and re.fullmatch(r"[a-z_]{1,40}", code)
                else ""
            )
            raise AuthenticationError(
                f"ev.energy rejected the client ID or secret{reason}"
            )
        if answer.status == 429:
            raise RateLimitedError(
                "ev.energy asked to slow down", parse_retry_after(answer.headers)
            )
        if answer.status >= 500:
            raise CommunicationError(f"ev.energy failed (HTTP {answer.status})")
        if answer.status != 200:
            raise CommunicationError(
                f"Unexpected answer from ev.energy (HTTP {answer.status})"
            )
        body = answer.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise InvalidResponseError("ev.energy sent no access token")
        expires_in = body.get("expires_in")
        lifetime = (
            float(expires_in)
            if isinstance(expires_in, int | float)
            and not isinstance(expires_in, bool)
            and math.isfinite(expires_in)
            and expires_in > 0
            else DEFAULT_TOKEN_LIFETIME
        )
        return token, lifetime


class EvEnergyClient:
    """One ev.energy user (or organisation acting for `user_id`).

    Polls (every GET) take one request from `budget` first; commands (boost,
    PATCH) only wait for a pause the server asked for. After every answer the
    budget follows the `x-ratelimit-*` headers (see `RequestBudget.follow`).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        token: TokenGetter,
        *,
        base_url: str = DEFAULT_BASE_URL,
        user_id: str | None = None,
        budget: RequestBudget | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Talk to the API of `base_url` (the host root) with tokens from `token`."""
        self._session = session
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._api = URL(api_url(self._base_url))
        self._user_id = user_id
        self._budget = budget
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.rate_limit = RateLimit()

    def __repr__(self) -> str:
        """Name the service and user, never the token."""
        return f"EvEnergyClient(base_url={self._base_url!r}, user_id={self._user_id!r})"

    # --- reads (polls) --------------------------------------------------------------

    async def async_get_user_id(self) -> str:
        """The id of the token's user (the first of `/users`)."""
        return (await self.async_get_user()).user_id

    async def async_get_user(self) -> User:
        """The user the requests act for (the token's, or `user_id`'s).

        An organisation's `user_id` (an id or the user's URL) that the service
        refuses raises CommandRejectedError with reason "unknown_user": the
        request carries nothing else it could refuse.
        """
        try:
            answer = await self._request("GET", self._url("users"), what="user")
        except CommandRejectedError as err:
            if self._user_id is None:
                raise
            raise CommandRejectedError(
                f"ev.energy refused the user to act for: {err}", reason="unknown_user"
            ) from None
        wanted = None if self._user_id is None else user_reference_id(self._user_id)
        users = [
            User(user_id, _text(item.get("email")))
            for item in _list(answer.json())
            if isinstance(item, dict) and (user_id := _text(item.get("id")))
        ]
        for user in users:
            if self._user_id is None or user.user_id == wanted:
                return user
        raise InvalidResponseError("ev.energy listed no user for these credentials")

    async def async_get_vehicles(self) -> list[Vehicle]:
        """Every vehicle with its latest status log (all pages)."""
        url = self._url("vehicles").with_query(
            page_size=PAGE_SIZE, expand="latest_status_log"
        )
        return [
            vehicle
            async for page in self._pages(url, what="vehicle list")
            for vehicle in parse_vehicles(page)
        ]

    async def async_get_vehicle(self, vehicle_id: str) -> Vehicle:
        """One vehicle with its latest status log."""
        url = self._url("vehicles", vehicle_id).with_query(expand="latest_status_log")
        answer = await self._request("GET", url, what="vehicle")
        return parse_vehicle(answer.json())

    async def async_get_latest_location(self, vehicle_id: str) -> Location | None:
        """The vehicle's newest location log; None when it has none."""
        url = self._url("vehicles", vehicle_id, "location_logs").with_query(page_size=1)
        answer = await self._request("GET", url, what="vehicle")
        items = _list(answer.json())
        return parse_location(items[0]) if items else None

    async def async_get_command_logs(
        self, vehicle_id: str, since: datetime | None = None
    ) -> list[CommandLog]:
        """Commands sent to the vehicle, newest first (needs the `debug:read` scope).

        With `since`: every log from then on (all pages, at most MAX_PAGES);
        without: the newest page (PAGE_SIZE logs).
        """
        query: dict[str, str | int] = {"page_size": PAGE_SIZE}
        if since is not None:
            query["logged_at__gte"] = _iso(since)
        url = self._url("vehicles", vehicle_id, "command_logs").with_query(query)
        logs: list[CommandLog] = []
        async for page in self._pages(url, what="vehicle", scope="debug:read"):
            logs.extend(parse_command_logs(page))
            if since is None:
                break
        return logs

    async def async_get_evses(self) -> list[Evse]:
        """Every charger with its latest status log (all pages)."""
        url = self._url("evses").with_query(
            page_size=PAGE_SIZE, expand="latest_status_log"
        )
        return [
            evse
            async for page in self._pages(url, what="charger list")
            for evse in parse_evses(page)
        ]

    async def async_get_active_session(self, vehicle_id: str) -> ChargingSession | None:
        """The vehicle's plugged-in (unfinished) session, or None.

        The public spec names no filter for `/charging_sessions`; the request
        asks for `vehicle_id` and `is_finished=false` all the same and checks
        each session itself, so a server that ignores them costs only more
        reading. Sessions come newest first with their sub-sessions inlined; the
        search ends at the vehicle's newest session (an older one cannot still
        be running) or after SESSION_PAGES pages.
        """
        url = self._url("charging_sessions").with_query(
            vehicle_id=vehicle_id,
            is_finished="false",
            page_size=PAGE_SIZE // 4,
            expand="sub_sessions",
        )
        pages = 0
        async for page in self._pages(url, what="charging session list"):
            for session in parse_sessions(page):
                if session.vehicle_id == vehicle_id:
                    return session if session.end is None else None
            pages += 1
            if pages >= SESSION_PAGES:
                break
        return None

    # --- commands ------------------------------------------------------------------

    async def async_boost_start(self, session_id: str) -> ChargingSession:
        """Charge now: switch the session's smart sub-session to boost."""
        return await self._boost(session_id, "boost_start")

    async def async_boost_end(self, session_id: str) -> ChargingSession:
        """Back to smart charging."""
        return await self._boost(session_id, "boost_end")

    async def _boost(self, session_id: str, action: str) -> ChargingSession:
        url = self._url("charging_sessions", session_id, action)
        answer = await self._request("POST", url, what="charging session", command=True)
        return parse_session(answer.json())

    async def async_update_vehicle(
        self,
        vehicle_id: str,
        *,
        smart_charging_enabled: bool | None = None,
        maximum_charge_limit_percentage: int | None = None,
    ) -> Vehicle:
        """Change the given settings (PATCH); the answer is the changed vehicle."""
        body: dict[str, bool | int] = {}
        if smart_charging_enabled is not None:
            body["smart_charging_enabled"] = smart_charging_enabled
        if maximum_charge_limit_percentage is not None:
            body["maximum_charge_limit_percentage"] = maximum_charge_limit_percentage
        if not body:
            raise ValueError("Nothing to change")
        url = self._url("vehicles", vehicle_id).with_query(expand="latest_status_log")
        answer = await self._request(
            "PATCH", url, what="vehicle", command=True, json_body=body
        )
        return parse_vehicle(answer.json())

    # --- transport ----------------------------------------------------------------

    def _url(self, *segments: str) -> URL:
        """An API URL; each segment (e.g. an id) is quoted as one path segment."""
        return append_segments(self._api, *segments)

    async def _pages(
        self, url: URL, *, what: str, scope: str | None = None
    ) -> AsyncIterator[Any]:
        """The JSON of each page, following `Link: rel="next"` to the end."""
        seen: set[str] = set()
        next_url: URL | None = url
        while next_url is not None and len(seen) < MAX_PAGES:
            seen.add(str(next_url))
            answer = await self._request("GET", next_url, what=what, scope=scope)
            yield answer.json()
            target = parse_link_next(answer.headers.get("Link"))
            next_url = None if target is None else self._follow(answer.url, target)
            if next_url is not None and str(next_url) in seen:
                raise InvalidResponseError("ev.energy links a page it sent before")

    def _follow(self, current: URL, target: str) -> URL:
        """A next-page link, resolved; it must stay on the API's host.

        The bearer token goes with it, so a link elsewhere is refused.
        """
        try:
            resolved = current.join(URL(target))
        except ValueError:
            raise InvalidResponseError(
                "ev.energy sent an unreadable page link"
            ) from None
        if resolved.origin() != self._api.origin():
            raise InvalidResponseError("ev.energy linked a page on another host")
        return resolved

    def _observe(self, headers: Mapping[str, str]) -> None:
        """Keep the rate-limit headers and let the budget follow them."""
        limit = _header_int(headers, "x-ratelimit-limit")
        remaining = _header_int(headers, "x-ratelimit-remaining")
        if limit is None and remaining is None:
            return
        self.rate_limit = RateLimit(limit=limit, remaining=remaining)
        if self._budget is not None:
            self._budget.follow(
                limit=limit if limit is not None else DEFAULT_RATE_LIMIT,
                remaining=remaining,
                window=RATE_LIMIT_WINDOW,
                reserve=COMMAND_RESERVE,
            )

    async def _request(
        self,
        method: str,
        url: URL,
        *,
        what: str,
        command: bool = False,
        scope: str | None = None,
        json_body: Mapping[str, Any] | None = None,
    ) -> _Answer:
        """Send a request and return a 2xx answer, or raise the error it means.

        `what` names the resource for a 404, `scope` the permission for a 403.
        A token the server refuses is renewed once when the token getter can
        renew it (it has `invalidate(token)`, as `ClientCredentials` has).
        """
        if self._budget is not None:
            self._budget.acquire(command=command)
        for attempt in range(2):
            token = await self._token()
            headers = {
                "Authorization": f"Bearer {token}",
                "EvEnergy-Version": API_VERSION,
                "Accept": "application/json",
            }
            if self._user_id:
                headers["EvEnergy-User"] = self._user_id
            answer = await _exchange(
                self._session,
                method,
                url,
                self._timeout,
                headers=headers,
                json=json_body,
            )
            self._observe(answer.headers)
            invalidate = getattr(self._token, "invalidate", None)
            if answer.status == 401 and attempt == 0 and invalidate is not None:
                # Refused before it expired: renew it once (a new client token,
                # or an OAuth refresh) before the credentials count as refused.
                invalidate(token)
                continue
            self._raise_for_status(
                answer, token, what=what, command=command, scope=scope
            )
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    def _raise_for_status(
        self,
        answer: _Answer,
        token: str,
        *,
        what: str,
        command: bool,
        scope: str | None,
    ) -> None:
        status = answer.status
        if 200 <= status < 300:
            return
        problem = answer.problem()
        raw = problem_text(problem) if problem is not None else None
        detail = _clean(raw, token) if raw else None
        if status == 401:
            raise AuthenticationError("ev.energy rejected the access token")
        if status == 403:
            needs = f" ({scope})" if scope else ""
            raise AccessDeniedError(
                f"The ev.energy credentials lack the permission for this request{needs}"
            )
        if status == 404:
            if command:
                raise CommandRejectedError(
                    f"The ev.energy {what} does not exist or has ended"
                )
            raise VehicleNotAvailableError(
                f"The ev.energy {what} does not exist or cannot be accessed",
                "not_owned",
            )
        if status in (400, 409, 422):
            raise CommandRejectedError(
                detail or f"ev.energy rejected the request (HTTP {status})"
            )
        if status == 429:
            retry_after = parse_retry_after(answer.headers)
            if self._budget is not None:
                self._budget.pause(retry_after)
            raise RateLimitedError("ev.energy asked to slow down", retry_after)
        if status == 503 and problem is not None:
            raise DeviceOfflineError(
                detail or "The command could not be delivered to the device"
            )
        if status >= 500:
            raise CommunicationError(f"ev.energy failed (HTTP {status})")
        raise CommunicationError(f"Unexpected answer from ev.energy (HTTP {status})")


__all__ = [
    "API_VERSION",
    "COMMANDS",
    "COMMAND_RESERVE",
    "CURRENT_TYPES",
    "DEFAULT_BASE_URL",
    "DEFAULT_RATE_LIMIT",
    "EVSE_MODES",
    "INTEGRATION_STATES",
    "LOCK_MODES",
    "SESSION_MODES",
    "VEHICLE_STATES",
    "ChargingSession",
    "ClientCredentials",
    "CommandLog",
    "EvEnergyClient",
    "Evse",
    "EvseStatus",
    "Location",
    "RateLimit",
    "TokenGetter",
    "Vehicle",
    "VehicleStatus",
    "api_url",
    "authorize_url",
    "current_type_key",
    "enum_key",
    "new_budget",
    "parse_link_next",
    "parse_retry_after",
    "problem_text",
    "token_url",
    "user_reference_id",
]
