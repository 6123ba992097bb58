"""EV-Monitor client: log in, list vehicles, name makes/models, push datasets.

Facts: providers.md §3 and api-docs/ev-monitor.txt. EV-Monitor (ev-monitor.com) is
a vehicle logbook we *write* to: Home Assistant pushes snapshots of a vehicle.

* Every call is an HTTP POST to `/api/<endpoint>`; the variables travel "in the
  post-body". The docs conflict on the encoding: they say the API "accepts and
  returns JSON only", yet they write the variables as form fields in PHP array
  notation (`data[0][general][speed]=...`), and no other client shows which one
  the service reads. So the body encoding is negotiated: form fields first
  (`application/x-www-form-urlencoded`, what PHP's `$_POST` decodes into those
  arrays); a login refused to them is tried once more as a JSON body, and any
  other call whose answer says fields are missing is repeated once as JSON with
  the same nesting (`data[0][general][soc]` is `{"data": [{"general": {"soc":
  ...}}]}`). What worked is remembered per service address (`encodings`, shared
  by the clients of one address): later calls go straight in it, and a refused
  login counts as wrong credentials after one request. Answers are JSON.
* Login with the account's e-mail and password gives a token that is valid for 10
  minutes; the client logs in again after `TOKEN_RENEW_AFTER` (9 minutes), and once
  more when an answer says the token is invalid or expired.
* Errors are in-band: `{"SUCCESS": "ERROR", "error": "..."}` (HTTP statuses are not
  documented). "Email / Password combination wrong!" is AuthenticationError; any
  other error of a push is CommandRejectedError (the service refuses the data:
  sending it again does not help). HTTP 5xx, timeouts, connection failures and
  answers that are not JSON are CommunicationError / InvalidResponseError (worth
  retrying).
* Only `login` and `get_vehicles` are confirmed paths; `PATHS` keeps the guessed
  ones in one place. The field names of a dataset's minimal part (vehicle id and
  time) are not in the readable docs either: `GENERAL_KEYS`.

No exception text, repr or cause chain of this client holds the password or the
token, and nothing of aiohttp (whose texts can name the URL) is kept as a cause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
import json
import math
import re
import time
from typing import Any, Literal

import aiohttp
from yarl import URL

from .errors import (
    AuthenticationError,
    CommandRejectedError,
    CommunicationError,
    InvalidResponseError,
    RateLimitedError,
)

type BodyEncoding = Literal["form", "json"]

DEFAULT_SERVER_URL = "https://ev-monitor.com"
# Paths the public docs do not confirm, in one place (login and get_vehicles are
# confirmed).
PATHS = {
    "login": "/api/login",
    "vehicles": "/api/get_vehicles",
    "make": "/api/get_make",
    "model": "/api/get_model",
    "push": "/api/push",
}
# The keys of a dataset's minimal part (`data[i][general][<key>]`); the docs' text
# for it is missing, so these are UNCONFIRMED.
GENERAL_KEYS = {"vehicle": "vehicle_id", "timestamp": "timestamp"}
DEFAULT_USER_AGENT = "EV Cloud (Home Assistant)"
DEFAULT_TIMEOUT = 30.0
TOKEN_LIFETIME = 600.0  # seconds, per the docs
TOKEN_RENEW_AFTER = 540.0  # log in again this long after the last login was sent
# The states the docs define: 0 off, 1 on, 10 charging (AC), 11 charging (DC).
STATES = (0, 1, 10, 11)
CHARGING_STATES = (10, 11)
WRONG_CREDENTIALS = "Email / Password combination wrong!"
FORM: BodyEncoding = "form"
JSON: BodyEncoding = "json"

# The longest server text an error message quotes.
MAX_DETAIL = 300


@dataclass(frozen=True, slots=True)
class EvMonitorVehicle:
    """One vehicle of the account (`get_vehicles`); make/model are opaque ids."""

    vehicle_id: str
    nickname: str | None
    make_id: str | None
    model_id: str | None


@dataclass(frozen=True, slots=True)
class Dataset:
    """One snapshot of a vehicle, in our own typed form (see `encode_datasets`).

    `power_kw` is the battery's power: positive flows out (driving), negative flows
    in (charging). `state`: 0 off, 1 on, 10 AC charging, 11 DC charging.
    """

    vehicle_id: str
    timestamp: datetime
    soc: float | None = None  # %
    range_km: float | None = None
    speed_kmh: float | None = None
    odometer_km: float | None = None
    power_kw: float | None = None
    battery_temp_c: float | None = None
    state: int | None = None
    latitude: float | None = None
    longitude: float | None = None
    accuracy_m: float | None = None


# --- encoding ------------------------------------------------------------------------


def _finite(value: float | None) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except TypeError, ValueError:
        return None
    return number if math.isfinite(number) else None


def _coordinate(value: float | None) -> float | None:
    """A latitude/longitude rounded to 7 decimals (about 1 cm)."""
    number = _finite(value)
    # + 0.0: no negative zero.
    return None if number is None else round(number, 7) + 0.0


def _unix(moment: datetime) -> int:
    """Seconds since the epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


def _int(value: float | None) -> int | None:
    """A value the docs type as int, rounded; None when it is not finite."""
    number = _finite(value)
    return None if number is None else round(number)


def _general(index: int, dataset: Dataset) -> dict[str, Any]:
    vehicle_id = dataset.vehicle_id.strip() if dataset.vehicle_id else ""
    if not vehicle_id:
        raise ValueError(f"Dataset {index} names no vehicle")
    state = dataset.state
    valid_state = (
        state if isinstance(state, int) and not isinstance(state, bool) else None
    )
    if valid_state not in STATES:
        valid_state = None
    batt: dict[str, int | None] = {"soc": _int(dataset.soc)}
    power = _finite(dataset.power_kw)
    if power is not None:
        charging = power < 0 or valid_state in CHARGING_STATES
        batt["w_charge" if charging else "w"] = round(abs(power) * 1000)
    batt["temp"] = _int(dataset.battery_temp_c)
    general: dict[str, Any] = {
        GENERAL_KEYS["vehicle"]: vehicle_id,
        GENERAL_KEYS["timestamp"]: _unix(dataset.timestamp),
        "speed": _int(dataset.speed_kmh),
        "range": _int(dataset.range_km),
        "state": valid_state,
        "odometer": _int(dataset.odometer_km),
    }
    general = {key: value for key, value in general.items() if value is not None}
    if battery := {key: value for key, value in batt.items() if value is not None}:
        general["batt"] = [battery]
    lat = _coordinate(dataset.latitude)
    lng = _coordinate(dataset.longitude)
    acc = _finite(dataset.accuracy_m)
    if lat is not None and lng is not None and acc is not None and acc >= 0:
        # The docs make lat, lng and acc mandatory in a GPS object.
        general["gps"] = {"lat": lat, "lng": lng, "acc": round(acc)}
    return general


def dataset_objects(datasets: Sequence[Dataset]) -> list[dict[str, Any]]:
    """The `data` array of a push, nested as the docs' PHP notation nests it.

    Dataset i is `{"general": {...}}`: vehicle id and time (seconds since the
    epoch), then `speed`, `range`, `state`, `odometer` (ints, km/h and km);
    battery 0 as `batt: [{soc, w | w_charge, temp}]` (ints: %, W, °C; the power
    goes to `w_charge` while charging, else `w`); the position as `gps: {lat,
    lng, acc}` (degrees with up to 7 decimals, metres), only when all three are
    known. Fields without a (finite) value are left out. ValueError for a dataset
    without a vehicle id.
    """
    return [
        {"general": _general(index, dataset)} for index, dataset in enumerate(datasets)
    ]


def _form_value(value: str | int | float) -> str:
    if isinstance(value, float):
        text = f"{value:.7f}".rstrip("0").rstrip(".")
        return "0" if text in ("", "-0") else text
    return str(value)


def php_fields(body: Mapping[str, Any]) -> dict[str, str]:
    """A nested body as form fields in PHP array notation.

    `{"data": [{"general": {"soc": 80}}]}` becomes `{"data[0][general][soc]":
    "80"}`: what PHP's `$_POST` decodes back into the same nesting.
    """
    fields: dict[str, str] = {}

    def put(key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for name, item in value.items():
                put(f"{key}[{name}]", item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                put(f"{key}[{index}]", item)
        else:
            fields[key] = _form_value(value)

    for name, value in body.items():
        put(name, value)
    return fields


def encode_datasets(datasets: Sequence[Dataset]) -> dict[str, str]:
    """The form fields of a push's datasets (`dataset_objects`, PHP notation).

    Dataset i becomes `data[i][general][...]`, battery 0
    `data[i][general][batt][0][...]`, the position `data[i][general][gps][...]`.
    """
    return php_fields({"data": dataset_objects(datasets)})


# --- parsing -------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A non-blank string (stripped) or an integer as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        return None
    return value.strip() or None


def parse_vehicles(raw: Any) -> list[EvMonitorVehicle]:
    """The `vehicles` of a `get_vehicles` answer; items without an id are skipped."""
    if not isinstance(raw, list):
        raise InvalidResponseError("EV-Monitor sent a vehicle list that is no list")
    vehicles: list[EvMonitorVehicle] = []
    for item in raw:
        if not isinstance(item, dict) or (vehicle_id := _text(item.get("id"))) is None:
            continue
        vehicles.append(
            EvMonitorVehicle(
                vehicle_id=vehicle_id,
                nickname=_text(item.get("nickname")),
                make_id=_text(item.get("make")),
                model_id=_text(item.get("model")),
            )
        )
    return vehicles


_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _json(body: bytes) -> Any:
    """JSON, tolerating a trailing comma (the docs' own example has one).

    The error is raised outside the `except` blocks: the decoder's exception (which
    keeps the body) is not chained to it.
    """
    text = body.decode("utf-8-sig", errors="replace")
    for candidate in (text, _TRAILING_COMMA.sub(r"\1", text)):
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise InvalidResponseError("EV-Monitor sent a body that is not JSON")


@dataclass(frozen=True, slots=True)
class _Reply:
    """An answer's `SUCCESS` (OK or not), its body and its error text."""

    ok: bool
    body: Mapping[str, Any]
    error: str | None


def _token_refused(reply: _Reply) -> bool:
    """An error about the token, not one that says it is missing (unread body)."""
    return (
        not reply.ok
        and is_token_error(reply.error)
        and not is_missing_fields_error(reply.error)
    )


def _reply(raw: Any) -> _Reply:
    if not isinstance(raw, dict):
        raise InvalidResponseError("EV-Monitor sent an answer that is no object")
    success = raw.get("SUCCESS")
    if not isinstance(success, str) or success.upper() not in ("OK", "ERROR"):
        raise InvalidResponseError("EV-Monitor sent an answer without SUCCESS")
    error = raw.get("error")
    return _Reply(
        ok=success.upper() == "OK",
        body=raw,
        error=error.strip() or None if isinstance(error, str) else None,
    )


_TOKEN_PROBLEM = re.compile(r"\btoken\b", re.IGNORECASE)


def is_token_error(error: str | None) -> bool:
    """Whether an in-band error is about the token (invalid, expired, missing)."""
    return bool(error and _TOKEN_PROBLEM.search(error))


_MISSING_FIELDS = re.compile(r"\b(missing|required)\b", re.IGNORECASE)


def is_missing_fields_error(error: str | None) -> bool:
    """Whether an in-band error says fields are missing (or required).

    What a service answers to a body it cannot read: to it, nothing was sent.
    """
    return bool(error and _MISSING_FIELDS.search(error))


def is_credentials_error(error: str | None) -> bool:
    """Whether an in-band error says the e-mail or password is wrong."""
    if not error:
        return False
    lowered = error.lower()
    return lowered == WRONG_CREDENTIALS.lower() or (
        "password" in lowered and ("wrong" in lowered or "invalid" in lowered)
    )


def server_root(server_url: str) -> URL:
    """The server URL without query, fragment or trailing slash.

    ValueError for a URL that is not http(s) with a host.
    """
    try:
        url = URL(server_url.strip())
    except ValueError, TypeError:
        raise ValueError("The server URL cannot be read") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError("The server URL must be an http(s) URL with a host")
    return url.with_query(None).with_fragment(None).with_path(url.path.rstrip("/"))


# --- client --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes
    retry_after: str | None


def _other(encoding: BodyEncoding) -> BodyEncoding:
    return JSON if encoding == FORM else FORM


class EvMonitorClient:
    """One EV-Monitor account (e-mail and password); keeps and renews the token."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        server_url: str,
        username: str,
        password: str,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        clock: Callable[[], float] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        encodings: MutableMapping[str, BodyEncoding] | None = None,
        confirm_refusal: bool = False,
    ) -> None:
        """Talk to `server_url` as `username` (the account's e-mail).

        `encodings` remembers, per service address, the body encoding that
        worked; share one mapping between the clients of an address.
        `confirm_refusal`: a login refused in the remembered encoding is tried
        in the other one too before it counts as wrong credentials (for forms,
        where the user may be signing in to a service that changed).
        """
        self._session = session
        self._root = server_root(server_url)
        self._address = str(self._root)
        self._encodings: MutableMapping[str, BodyEncoding] = (
            {} if encodings is None else encodings
        )
        self._confirm_refusal = confirm_refusal
        self._username = username
        self._password = password
        self._user_agent = user_agent
        self._clock = clock or time.monotonic
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._token: str | None = None
        self._token_since = 0.0
        self._logins = 0
        self._login_lock = asyncio.Lock()

    def __repr__(self) -> str:
        """Name the server, never the password or the token."""
        return f"EvMonitorClient(server_url={str(self._root)!r})"

    @property
    def logged_in(self) -> bool:
        """True while the client holds a token it considers fresh."""
        return self._token is not None and not self._stale()

    @property
    def login_count(self) -> int:
        """Successful logins so far."""
        return self._logins

    @property
    def body_encoding(self) -> BodyEncoding | None:
        """The body encoding the service address reads; None until one worked."""
        return self._encodings.get(self._address)

    async def async_login(self) -> None:
        """Log in now (AuthenticationError when the credentials are refused)."""
        async with self._login_lock:
            await self._login()

    async def async_get_vehicles(self) -> list[EvMonitorVehicle]:
        """Every vehicle of the account."""
        reply = await self._call("vehicles", {})
        if not reply.ok:
            raise CommunicationError(
                f"EV-Monitor refused the vehicle list{self._said(reply.error)}"
            )
        return parse_vehicles(reply.body.get("vehicles"))

    async def async_get_name(
        self, kind: Literal["make", "model"], item_id: str
    ) -> str | None:
        """The name of a make or model id; None when the service knows none."""
        if kind not in ("make", "model"):
            raise ValueError("kind must be 'make' or 'model'")
        reply = await self._call(kind, {kind: item_id})
        if not reply.ok:
            return None
        return _text(reply.body.get("name"))

    async def async_push(self, datasets: Sequence[Dataset], *, batch_id: str) -> None:
        """Push datasets; `batch_id` is our idempotency key (sent along).

        Nothing is sent for no datasets. CommandRejectedError when the service
        refuses the data: sending the same data again does not help.
        """
        if not datasets:
            return
        # The batch id goes in either encoding: a push repeated as JSON (or sent
        # again later) is recognised as the same upload.
        body = {
            "data": dataset_objects(datasets),
            "user-agent": self._user_agent,
            "batch_id": batch_id,
        }
        reply = await self._call("push", body)
        if not reply.ok:
            raise CommandRejectedError(
                f"EV-Monitor refused the data{self._said(reply.error)}"
            )

    # --- token --------------------------------------------------------------------

    def _stale(self) -> bool:
        return self._clock() - self._token_since >= TOKEN_RENEW_AFTER

    def _login_encodings(self) -> tuple[BodyEncoding, ...]:
        """The encodings a login is tried in, in turn, until one is accepted."""
        known = self.body_encoding
        if known is None:
            return (FORM, JSON)
        return (known, _other(known)) if self._confirm_refusal else (known,)

    async def _login(self) -> str:
        """Log in (the caller holds the lock); keep and return the token.

        A refusal in one encoding may only mean that the service could not read
        the body: the next encoding is tried before it counts.
        """
        self._token = None
        started = self._clock()
        credentials = {"username": self._username, "password": self._password}
        wrong_credentials = False
        for encoding in self._login_encodings():
            reply = await self._send(encoding, "login", credentials)
            if reply.ok:
                break
            if reply.error is None or is_credentials_error(reply.error):
                wrong_credentials = True
            elif not is_missing_fields_error(reply.error):
                raise CommunicationError(
                    f"EV-Monitor refused the login{self._said(reply.error)}"
                )
        else:
            if wrong_credentials:
                raise AuthenticationError("EV-Monitor rejected the e-mail or password")
            raise CommunicationError(
                f"EV-Monitor could not read the login{self._said(reply.error)}"
            )
        self._encodings[self._address] = encoding
        token = _text(reply.body.get("token"))
        if token is None:
            raise InvalidResponseError("EV-Monitor sent no token")
        self._token = token
        self._token_since = started
        self._logins += 1
        return token

    async def _token_for(self, rejected: str | None) -> str:
        """A fresh token; log in when there is none, it is old or was `rejected`.

        Concurrent callers share one login.
        """
        async with self._login_lock:
            token = self._token
            if token is not None and token != rejected and not self._stale():
                return token
            return await self._login()

    async def _call(self, endpoint: str, body: Mapping[str, Any]) -> _Reply:
        """Send with the token; log in again once when the answer rejects it."""
        token = await self._token_for(None)
        reply = await self._negotiate(endpoint, {"token": token, **body})
        if _token_refused(reply):
            token = await self._token_for(token)
            reply = await self._negotiate(endpoint, {"token": token, **body})
            if _token_refused(reply):
                self._token = None
                raise CommunicationError("EV-Monitor rejected a fresh token")
        return reply

    async def _negotiate(self, endpoint: str, body: Mapping[str, Any]) -> _Reply:
        """Send in the address's encoding; repeat a form the service missed as JSON.

        A repeat that fails too gives the first answer, unless the repeat's
        error says something else than missing fields.
        """
        encoding = self.body_encoding or FORM
        reply = await self._send(encoding, endpoint, body)
        if reply.ok or encoding == JSON or not is_missing_fields_error(reply.error):
            return reply
        repeat = await self._send(JSON, endpoint, body)
        if repeat.ok:
            self._encodings[self._address] = JSON
        elif is_missing_fields_error(repeat.error):
            return reply
        return repeat

    async def _send(
        self, encoding: BodyEncoding, endpoint: str, body: Mapping[str, Any]
    ) -> _Reply:
        answer = await self._post(endpoint, body, encoding)
        return _reply(_json(answer.body))

    # --- transport ----------------------------------------------------------------

    def _said(self, error: str | None) -> str:
        """The server's text as ": <text>" (no password or token), or "" for none."""
        if not error:
            return ""
        text = error
        for secret in (self._password, self._token):
            if secret:
                text = text.replace(secret, "***")
        text = " ".join(text.split())
        if len(text) > MAX_DETAIL:
            text = text[: MAX_DETAIL - 1] + "…"
        return f": {text}"

    async def _post(
        self, endpoint: str, body: Mapping[str, Any], encoding: BodyEncoding
    ) -> _Answer:
        """One POST of `body` as form fields or JSON; returns a 2xx answer.

        (Or a 4xx one that may hold JSON.)

        Redirects are not followed: the password or token would go with them. The
        errors are raised outside the `except` blocks so that no aiohttp exception
        (whose text can hold the URL) is kept as cause or context.
        """
        url = self._root.with_path(self._root.path.rstrip("/") + PATHS[endpoint])
        content: dict[str, Any] = (
            {"json": dict(body)} if encoding == JSON else {"data": php_fields(body)}
        )
        failure: str
        try:
            async with self._session.post(
                url,
                **content,
                headers={
                    "Accept": "application/json",
                    "User-Agent": self._user_agent,
                },
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                answer = _Answer(
                    status=response.status,
                    body=await response.read(),
                    retry_after=response.headers.get("Retry-After"),
                )
        except TimeoutError:
            failure = "timeout"
        except aiohttp.ClientError as err:
            failure = type(err).__name__
        else:
            self._raise_for_status(answer)
            return answer
        if failure == "timeout":
            raise CommunicationError("EV-Monitor did not answer in time")
        raise CommunicationError(f"Cannot reach EV-Monitor ({failure})")

    @staticmethod
    def _raise_for_status(answer: _Answer) -> None:
        """Raise for an HTTP status that cannot carry an in-band answer."""
        status = answer.status
        if 200 <= status < 300:
            return
        if status == 429:
            retry_after: float | None
            try:
                retry_after = float(answer.retry_after or "")
            except ValueError:
                retry_after = None
            if retry_after is not None and not math.isfinite(retry_after):
                retry_after = None
            raise RateLimitedError(
                "EV-Monitor asked to slow down",
                None if retry_after is None else max(0.0, retry_after),
            )
        if 300 <= status < 400:
            raise CommunicationError(
                f"EV-Monitor redirected the request (HTTP {status}); "
                "check the server URL"
            )
        if status == 404:
            raise CommunicationError(
                "EV-Monitor does not serve this API at the server URL (HTTP 404)"
            )
        if status >= 500:
            raise CommunicationError(f"EV-Monitor failed (HTTP {status})")
        # Other 4xx: the service may still have answered in band.
        try:
            _reply(_json(answer.body))
        except InvalidResponseError:
            raise CommunicationError(
                f"Unexpected answer from EV-Monitor (HTTP {status})"
            ) from None


__all__ = [
    "DEFAULT_SERVER_URL",
    "FORM",
    "GENERAL_KEYS",
    "JSON",
    "PATHS",
    "STATES",
    "TOKEN_LIFETIME",
    "TOKEN_RENEW_AFTER",
    "BodyEncoding",
    "Dataset",
    "EvMonitorClient",
    "EvMonitorVehicle",
    "dataset_objects",
    "encode_datasets",
    "is_credentials_error",
    "is_missing_fields_error",
    "is_token_error",
    "parse_vehicles",
    "php_fields",
    "server_root",
]
