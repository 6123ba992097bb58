"""A simulated EV-Monitor (ev-monitor.com vehicle logbook) API.

Facts: providers.md section 3 and api-docs/ev-monitor.txt. Every endpoint is a
POST under `/api/` and answers HTTP 200 with `{"SUCCESS": "OK", ...}` or the in-band
`{"SUCCESS": "ERROR", "error": "..."}`:

    /api/login          username (the account e-mail), password -> token
    /api/get_vehicles   token -> vehicles (every value a string)
    /api/get_make       token, make (id) -> name      path UNCONFIRMED (naming pattern)
    /api/get_model      token, model (id) -> name     path UNCONFIRMED (naming pattern)
    /api/push           token, user-agent (optional), data[i][general][...]
                        path UNCONFIRMED: the doc's readable part never names it

Body encoding: the doc says "accepts and returns JSON only" but writes PHP form
arrays (`data[0][general][speed]=...`); no client of the real service could be
found to tell which one it reads (independent-sources.md, EV-Monitor). So the
simulator has a mode per reading, `body_mode` (EvMonitorBodyMode):

* `ANY` (default): both are accepted: a JSON object body (`Content-Type:
  application/json`, e.g. `{"token": ..., "data": [{"general": {...}}]}`), or form
  fields (urlencoded or multipart) with PHP-style keys, which are parsed into the
  same nesting (`data[0][general][gps][lat]`).
* `JSON_ONLY`: the service decodes the raw body as JSON whatever its content type
  says, as a PHP service that reads only `php://input` would; a body that is no
  JSON object is read as no fields at all.
* `FORM_ONLY`: the service reads only form fields (PHP's `$_POST`); a JSON body is
  read as no fields at all.

A body the service cannot read is answered as an empty one, in the documented
error shape: the login "Email / Password combination wrong!", every other call
"Missing field token". In JSON, `data`, `motor` and `batt` may be lists or
objects keyed by index.

Tokens are valid `token_lifetime` (600) simulated seconds; afterwards every call
with it answers the in-band ERROR "Token expired" (an unknown token: "Invalid
token"). The clock starts at the real time (or `start_time`) and only moves with
`EvMonitorSimulator.advance`.

A dataset (`data[i]`) holds a `general` object. The doc's minimal dataset was lost
from the excerpt; this simulator requires `general[vehicle_id]` (an id from
get_vehicles, of the token's user) and `general[timestamp]` (Unix seconds), see
`MANDATORY_GENERAL` and the `mandatory` control attribute. Optional, as documented:
general `speed`, `range`, `state` (0, 1, 10, 11), `odometer`, `watt_100km`;
`motor[0..255]` and `batt[0..255]` objects whose documented fields are all optional
ints; `gps` (not an array) with `lat`, `lng`, `acc` mandatory and `alt` optional.
A missing mandatory field answers ERROR naming it (e.g. "Missing field
data[0][general][gps][acc]"); so does a value of the wrong type or an unknown field
(`strict`, default on). A push is all or nothing: one bad dataset stores none.

Idempotency (OUR OWN CONVENTION, the real API documents none): a push may carry
`batch_id` (form field or JSON key). A batch id already accepted for that user is
acknowledged again with `{"SUCCESS": "OK"}` without storing its datasets twice.

Every accepted dataset is recorded in `datasets` (`SimDataset`: user, vehicle id,
batch id, user-agent, encoding, the parsed `general` object, simulated receive
time).

`hold` (True): a push is read, validated, stored and recorded as usual, but its
answer is not sent: the request waits until the client gives up (closes the
connection), `hold` is switched off (then the answer goes out, unless the
simulator is `down` by then: the connection is closed) or the server stops. A
crash between the service storing a batch and the client hearing of it.

Control endpoint (only with `EvMonitorSimulator(control=True)`, as in the demo
that `python -m tests.simulators evmonitor` runs), outside `/api/` so that no
client of the real API can reach it, and exempt from `down`, `hold` and faults:

    POST /_sim/down   body {"down": true} (or false)  -> 200 {"down": true}
    POST /_sim/hold   body {"hold": true} (or false)  -> 200 {"hold": true}
    GET  /_sim/datasets  -> 200 {"datasets": [{"vehicle_id", "batch_id", "general",
        "received"}, ...] (every accepted dataset, in arrival order), "pushes":
        [{"batch_id", "datasets", "result"}, ...], "held": <pushes waiting now>}

Anything else under `/_sim/` answers 404, a bad body 400.

`DEMO` (at the end) is what `python -m tests.simulators evmonitor` runs: one user
with one vehicle nicknamed "The Rocket", and the control endpoint. Its entry logs
the OVMS demo's car DEMO (a device of that provider's entry, `DEMO.after`).
"""

import argparse
import asyncio
from dataclasses import dataclass
from enum import StrEnum
import hashlib
import itertools
import json
import logging
import math
import re
import secrets
import string
import time
from typing import Any

from aiohttp import web

from .common import SimServer, close_connection, issued
from .demo import SimulatorDemo, device_key, emit, every_second

_LOGGER = logging.getLogger(__name__)

API_PREFIX = "/api/"
CONTROL_PREFIX = "/_sim/"
CONTROL_SWITCHES = ("down", "hold")  # POST /_sim/<switch> {"<switch>": bool}
HOLD_POLL = 0.05  # seconds between looks at `hold` while an answer is held
ENDPOINTS = ("login", "get_vehicles", "get_make", "get_model", "push")
PUSH_ENDPOINT = "push"  # UNCONFIRMED path
TOKEN_LIFETIME = 600.0  # simulated seconds ("valid for 10 minutes")
LOGIN_FAILED = "Email / Password combination wrong!"
TOKEN_EXPIRED = "Token expired"
TOKEN_INVALID = "Invalid token"
TOKEN_MISSING = "Missing field token"
VEHICLE_UNKNOWN = "Vehicle not found"
MANDATORY_GENERAL = ("vehicle_id", "timestamp")
GENERAL_INTS = ("timestamp", "speed", "range", "state", "odometer", "watt_100km")
STATES = (0, 1, 10, 11)  # off, on, charging AC, charging DC
MOTOR_INTS = ("watt", "rpm", "torque", "temp", "coolfluid_temp", "coolfluid_pump")
BATT_INTS = (
    "soc",
    "soc_wh",
    "v",
    "vmin",
    "vmax",
    "i",
    "i_charge",
    "w",
    "w_charge",
    "i_charge_max",
    "i_discharge_max",
    "temp",
    "temp_min",
    "temp_max",
    "coolfluid_temp",
    "coolfluid_pump",
    "soh",
)
GPS_MANDATORY = ("lat", "lng", "acc")
MAX_INDEX = 255  # motor and battery indexes: 0..255
SERVER_ERROR_BODY = (
    "<html><head><title>500 Internal Server Error</title></head>"
    "<body><h1>Internal Server Error</h1></body></html>"
)
UNAVAILABLE_BODY = (
    "<html><head><title>503 Service Unavailable</title></head>"
    "<body><h1>Service Unavailable</h1></body></html>"
)
MALFORMED_BODY = '{"SUCCESS": "OK", "tok'
_ID_CHARS = string.ascii_lowercase + string.digits
_PHP_KEY = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")


class EvMonitorBodyMode(StrEnum):
    """Which request bodies the simulated service reads (`body_mode`)."""

    ANY = "any"
    JSON_ONLY = "json_only"
    FORM_ONLY = "form_only"


class EvMonitorFault(StrEnum):
    """A failure mode of the simulated service (`fault`, for every /api/ request)."""

    NONE = "none"
    # 500 with an HTML page.
    SERVER_ERROR = "server_error"
    # 503 with an HTML page (maintenance, overload).
    UNAVAILABLE = "unavailable"
    # 200 with a body that is not JSON.
    MALFORMED = "malformed"
    # The answer comes after `slow_seconds` (real time).
    SLOW = "slow"


@dataclass
class SimUser:
    """An EV-Monitor account: the e-mail is the login name."""

    id: str
    email: str
    password: str


@dataclass
class SimVehicle:
    """A vehicle of a user's profile (make and model are opaque ids)."""

    id: str
    user_id: str
    make: str
    model: str
    nickname: str
    plan: str = "0"

    def json(self) -> dict[str, str]:
        """The get_vehicles object: every value a string."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "make": self.make,
            "model": self.model,
            "nickname": self.nickname,
            "plan": self.plan,
        }


@dataclass
class SimDataset:
    """One accepted dataset (`data[i]`) of a push."""

    user_id: str
    vehicle_id: str
    batch_id: str | None
    user_agent: str | None
    encoding: str  # "form" or "json"
    general: dict[str, Any]  # parsed: ints/floats, motor/batt keyed by int index
    received: float  # simulated time


@dataclass
class _Token:
    user_id: str
    issued: float


class _Error(Exception):
    """An in-band `{"SUCCESS": "ERROR", "error": message}`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class EvMonitorSimulator(SimServer):
    """EV-Monitor's API on one port.

    Control attributes: `fault` (EvMonitorFault), `slow_seconds`, `down` (True:
    every connection is closed without an answer), `hold` (True: push answers
    are held back, see the module docstring), `in_band_error` (a message:
    push answers `{"SUCCESS": "ERROR", "error": in_band_error}` and stores nothing),
    `token_lifetime`, `mandatory` (general fields a dataset needs), `strict`
    (unknown fields are errors), `body_mode` (EvMonitorBodyMode: which bodies it
    reads). Methods: `add_user`, `add_vehicle`, `advance`, `expire_tokens`,
    `datasets_of`.
    Logs: `requests` ((method, path) of every /api/ request), `bodies` ((endpoint,
    "form" | "json" as sent, whether the service could read it) of every POST
    body read), `datasets`
    (SimDataset of every stored dataset), `pushes` ((batch id, number of datasets,
    "stored" | "duplicate" | "error") of every push after authentication),
    `tokens_issued`; `held`: pushes whose answer waits now.
    """

    label = "EV-Monitor simulator"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        start_time: float | None = None,
        control: bool = False,
        body_mode: EvMonitorBodyMode = EvMonitorBodyMode.ANY,
    ) -> None:
        """Prepare the simulator; nothing listens until `start()`.

        `control=True` serves the control endpoint under /_sim/ (see the module
        docstring), for another process. `body_mode`: which bodies it reads.
        """
        super().__init__(host)
        self.control = control
        self.body_mode = body_mode
        self.fault = EvMonitorFault.NONE
        self.slow_seconds = 30.0
        self.down = False
        self.hold = False
        self.held = 0
        self.in_band_error: str | None = None
        self.token_lifetime = TOKEN_LIFETIME
        self.mandatory: tuple[str, ...] = MANDATORY_GENERAL
        self.strict = True
        self.requests: list[tuple[str, str]] = []
        self.bodies: list[tuple[str, str, bool]] = []
        self.datasets: list[SimDataset] = []
        self.pushes: list[tuple[str | None, int, str]] = []
        self.tokens_issued = 0
        self.users: dict[str, SimUser] = {}  # by e-mail
        self.vehicles: dict[str, SimVehicle] = {}
        self.makes: dict[str, str] = {}  # id -> name
        self.models: dict[str, str] = {}  # id -> name
        self._tokens: dict[str, _Token] = {}
        self._batches: set[tuple[str, str]] = set()  # (user id, batch id)
        self._ids = itertools.count(1)
        self._start_time = float(
            math.floor(time.time()) if start_time is None else start_time
        )
        self._elapsed = 0.0

    # --- state -----------------------------------------------------------------------

    @property
    def now(self) -> float:
        """Simulated Unix time."""
        return self._start_time + self._elapsed

    def advance(self, seconds: float) -> None:
        """Move the simulated clock (tokens age)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._elapsed += seconds

    def _new_id(self, kind: str) -> str:
        """A 15-character id like the service's (deterministic per simulator)."""
        digest = hashlib.sha256(f"{kind}-{next(self._ids)}".encode()).digest()
        return "".join(_ID_CHARS[byte % len(_ID_CHARS)] for byte in digest[:15])

    def add_user(self, email: str, password: str) -> SimUser:
        """Register an account (the e-mail is the login name)."""
        user = SimUser(self._new_id("user"), email, issued(password))
        self.users[email] = user
        return user

    def _name_id(self, names: dict[str, str], name: str, kind: str) -> str:
        for known_id, known in names.items():
            if known == name:
                return known_id
        new_id = self._new_id(kind)
        names[new_id] = name
        return new_id

    def add_vehicle(
        self,
        user: SimUser | str,
        nickname: str,
        *,
        make: str = "Energica",
        model: str = "SS9",
        plan: str = "0",
    ) -> SimVehicle:
        """Add a vehicle to a user's profile; make and model get (shared) ids."""
        owner = user if isinstance(user, SimUser) else self.users[user]
        vehicle = SimVehicle(
            id=self._new_id("vehicle"),
            user_id=owner.id,
            make=self._name_id(self.makes, make, "make"),
            model=self._name_id(self.models, model, "model"),
            nickname=nickname,
            plan=plan,
        )
        self.vehicles[vehicle.id] = vehicle
        return vehicle

    def expire_tokens(self) -> None:
        """Make every token issued so far expired (as if 10 minutes passed)."""
        for token in self._tokens.values():
            token.issued = min(token.issued, self.now - self.token_lifetime)

    def datasets_of(self, vehicle_id: str) -> list[SimDataset]:
        """The stored datasets of one vehicle, in arrival order."""
        return [d for d in self.datasets if d.vehicle_id == vehicle_id]

    # --- server ----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The API root, e.g. `http://127.0.0.1:40123/api`."""
        return f"{self.url}/api"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if self.control and path.startswith(CONTROL_PREFIX):
            return await self._control(request)
        if self.down:
            return close_connection(request)
        if not path.startswith(API_PREFIX):
            return web.Response(status=404, text="Not Found")
        self.requests.append((request.method, path))
        match self.fault:
            case EvMonitorFault.SLOW:
                if not await self._sleep(self.slow_seconds):
                    return close_connection(request)
            case EvMonitorFault.SERVER_ERROR:
                return _html(500, SERVER_ERROR_BODY)
            case EvMonitorFault.UNAVAILABLE:
                return _html(503, UNAVAILABLE_BODY)
            case EvMonitorFault.MALFORMED:
                return web.Response(
                    status=200, text=MALFORMED_BODY, content_type="application/json"
                )
        endpoint = path.removeprefix(API_PREFIX).rstrip("/")
        if endpoint not in ENDPOINTS:
            return _json({"SUCCESS": "ERROR", "error": "Unknown endpoint"}, 404)
        if request.method != "POST":
            return _json({"SUCCESS": "ERROR", "error": "POST only"}, 405)
        try:
            body, encoding = await self._read_body(request, endpoint)
            answer = self._api(endpoint, body, encoding)
        except _Error as error:
            answer = {"SUCCESS": "ERROR", "error": error.message}
        if endpoint == PUSH_ENDPOINT and not await self._answer_held():
            return close_connection(request)
        return _json(answer)

    async def _answer_held(self) -> bool:
        """Wait while `hold` is on; False: send no answer (down, or stopping).

        The push is done by now (stored or refused). A client that gives up
        meanwhile closes the connection, which cancels this handler.
        """
        if not self.hold:
            return True
        self.held += 1
        try:
            while self.hold and not self.down:
                if not await self._sleep(HOLD_POLL):
                    return False  # the server stops
        finally:
            self.held -= 1
        return not self.down

    async def _control(self, request: web.Request) -> web.Response:
        """The control endpoint: switches and what was stored, for another process."""
        name = request.path.removeprefix(CONTROL_PREFIX).rstrip("/")
        if name == "datasets" and request.method == "GET":
            return _json(self.control_state())
        if name not in CONTROL_SWITCHES or request.method != "POST":
            return web.Response(status=404, text="not found\n")
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get(name), bool):
            return web.Response(
                status=400, text=f'body must be {{"{name}": true|false}}\n'
            )
        setattr(self, name, body[name])
        _LOGGER.debug("%s: %s", name, body[name])
        return _json({name: body[name]})

    def control_state(self) -> dict[str, Any]:
        """What GET /_sim/datasets answers: the stored datasets, pushes, held."""
        return {
            "datasets": [
                {
                    "vehicle_id": dataset.vehicle_id,
                    "batch_id": dataset.batch_id,
                    "general": dataset.general,
                    "received": dataset.received,
                }
                for dataset in self.datasets
            ],
            "pushes": [
                {"batch_id": batch_id, "datasets": count, "result": result}
                for batch_id, count, result in self.pushes
            ],
            "held": self.held,
        }

    def _api(self, endpoint: str, body: dict[str, Any], encoding: str) -> Any:
        if endpoint == "login":
            return self._login(body)
        user = self._authenticate(body)
        match endpoint:
            case "get_vehicles":
                return {
                    "SUCCESS": "OK",
                    "vehicles": [
                        v.json() for v in self.vehicles.values() if v.user_id == user.id
                    ],
                }
            case "get_make":
                return {"SUCCESS": "OK", "name": _lookup(self.makes, body, "make")}
            case "get_model":
                return {"SUCCESS": "OK", "name": _lookup(self.models, body, "model")}
        return self._push(user, body, encoding)

    def _login(self, body: dict[str, Any]) -> dict[str, str]:
        username, password = body.get("username"), body.get("password")
        user = self.users.get(username) if isinstance(username, str) else None
        if user is None or not isinstance(password, str):
            raise _Error(LOGIN_FAILED)
        if not secrets.compare_digest(user.password.encode(), password.encode()):
            raise _Error(LOGIN_FAILED)
        token = issued("".join(secrets.choice(_ID_CHARS) for _ in range(15)))
        self._tokens[token] = _Token(user.id, self.now)
        self.tokens_issued += 1
        return {"SUCCESS": "OK", "token": token}

    def _authenticate(self, body: dict[str, Any]) -> SimUser:
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise _Error(TOKEN_MISSING)
        entry = self._tokens.get(token)
        if entry is None:
            raise _Error(TOKEN_INVALID)
        if self.now - entry.issued >= self.token_lifetime:
            raise _Error(TOKEN_EXPIRED)
        return next(u for u in self.users.values() if u.id == entry.user_id)

    def _push(
        self, user: SimUser, body: dict[str, Any], encoding: str
    ) -> dict[str, str]:
        batch_id = body.get("batch_id")
        if batch_id is not None:
            if not isinstance(batch_id, (str, int)) or str(batch_id) == "":
                raise _Error("Invalid field batch_id")
            batch_id = str(batch_id)
        user_agent = body.get("user-agent")
        if self.in_band_error is not None:
            self.pushes.append((batch_id, 0, "error"))
            raise _Error(self.in_band_error)
        if batch_id is not None and (user.id, batch_id) in self._batches:
            self.pushes.append((batch_id, 0, "duplicate"))
            return {"SUCCESS": "OK"}
        try:
            generals = self._validate(user, body.get("data"))
        except _Error:
            self.pushes.append((batch_id, 0, "error"))
            raise
        for general in generals:
            self.datasets.append(
                SimDataset(
                    user_id=user.id,
                    vehicle_id=str(general["vehicle_id"]),
                    batch_id=batch_id,
                    user_agent=user_agent if isinstance(user_agent, str) else None,
                    encoding=encoding,
                    general=general,
                    received=self.now,
                )
            )
        if batch_id is not None:
            self._batches.add((user.id, batch_id))
        self.pushes.append((batch_id, len(generals), "stored"))
        return {"SUCCESS": "OK"}

    def _validate(self, user: SimUser, data: Any) -> list[dict[str, Any]]:
        """Every dataset's parsed `general` object, or _Error naming the field."""
        datasets = _indexed(data, "data", limit=None)
        if not datasets:
            raise _Error("Missing field data")
        generals = []
        for index, dataset in datasets.items():
            where = f"data[{index}]"
            if not isinstance(dataset, dict):
                raise _Error(f"Invalid field {where}")
            if self.strict and set(dataset) - {"general"}:
                unknown = sorted(set(dataset) - {"general"})[0]
                raise _Error(f"Unknown field {where}[{unknown}]")
            general = dataset.get("general")
            if not isinstance(general, dict):
                raise _Error(f"Missing field {where}[general]")
            parsed = self._general(general, f"{where}[general]")
            vehicle = self.vehicles.get(str(parsed.get("vehicle_id")))
            if "vehicle_id" in parsed and (
                vehicle is None or vehicle.user_id != user.id
            ):
                raise _Error(VEHICLE_UNKNOWN)
            generals.append(parsed)
        return generals

    def _general(self, general: dict[str, Any], where: str) -> dict[str, Any]:
        for name in self.mandatory:
            if _absent(general.get(name)):
                raise _Error(f"Missing field {where}[{name}]")
        parsed: dict[str, Any] = {}
        for name, value in general.items():
            if name == "vehicle_id":
                if not isinstance(value, str) or not value:
                    raise _Error(f"Invalid field {where}[vehicle_id]")
                parsed[name] = value
            elif name in GENERAL_INTS:
                parsed[name] = _int(value, f"{where}[{name}]")
                if name == "state" and parsed[name] not in STATES:
                    raise _Error(f"Invalid field {where}[state]")
            elif name in ("motor", "batt"):
                fields = MOTOR_INTS if name == "motor" else BATT_INTS
                parsed[name] = {
                    index: self._object(item, fields, f"{where}[{name}][{index}]")
                    for index, item in _indexed(
                        value, f"{where}[{name}]", limit=MAX_INDEX
                    ).items()
                }
            elif name == "gps":
                parsed[name] = self._gps(value, f"{where}[gps]")
            elif self.strict:
                raise _Error(f"Unknown field {where}[{name}]")
            else:
                parsed[name] = value
        return parsed

    def _object(self, item: Any, fields: tuple[str, ...], where: str) -> dict[str, int]:
        if not isinstance(item, dict):
            raise _Error(f"Invalid field {where}")
        parsed: dict[str, Any] = {}
        for name, value in item.items():
            if name in fields:
                parsed[name] = _int(value, f"{where}[{name}]")
            elif self.strict:
                raise _Error(f"Unknown field {where}[{name}]")
        return parsed

    def _gps(self, gps: Any, where: str) -> dict[str, float]:
        if not isinstance(gps, dict):
            raise _Error(f"Invalid field {where}")
        for name in GPS_MANDATORY:
            if _absent(gps.get(name)):
                raise _Error(f"Missing field {where}[{name}]")
        parsed: dict[str, Any] = {}
        for name, value in gps.items():
            if name == "acc":
                parsed[name] = _int(value, f"{where}[acc]")
            elif name in ("lat", "lng", "alt"):
                parsed[name] = _float(value, f"{where}[{name}]")
            elif self.strict:
                raise _Error(f"Unknown field {where}[{name}]")
        if not -90 <= parsed["lat"] <= 90:
            raise _Error(f"Invalid field {where}[lat]")
        if not -180 <= parsed["lng"] <= 180:
            raise _Error(f"Invalid field {where}[lng]")
        return parsed

    async def _read_body(
        self, request: web.Request, endpoint: str
    ) -> tuple[dict[str, Any], str]:
        """The body as nested dicts, and "json" or "form" (as sent).

        A body of an encoding the `body_mode` does not read is no fields at all.
        """
        sent = "json" if request.content_type == "application/json" else "form"
        match self.body_mode:
            case EvMonitorBodyMode.JSON_ONLY:
                body = _raw_json(await request.read())
            case EvMonitorBodyMode.FORM_ONLY:
                body = await _form(request) if sent == "form" else None
            case _:
                body = await (_json_body if sent == "json" else _form)(request)
        self.bodies.append((endpoint, sent, body is not None))
        return body or {}, sent


# --- body parsing ------------------------------------------------------------------


async def _json_body(request: web.Request) -> dict[str, Any]:
    """A JSON object body (the ANY mode); anything else is an in-band error."""
    try:
        body = json.loads(await request.read())
    except ValueError as error:
        raise _Error("Invalid JSON") from error
    if not isinstance(body, dict):
        raise _Error("Invalid JSON")
    return body


def _raw_json(raw: bytes) -> dict[str, Any] | None:
    """The body decoded as JSON whatever its type says; None when it is no object."""
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _form(request: web.Request) -> dict[str, Any]:
    """Form fields (urlencoded or multipart) nested by their PHP-style keys."""
    form = await request.post()
    return parse_php_form(
        [(key, value) for key, value in form.items() if isinstance(value, str)]
    )


def parse_php_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """PHP's nesting of form keys: `data[0][gps][lat]=1` -> data/"0"/gps/lat.

    Keys stay strings (as in PHP, "0" and 0 are the same index); `a[]` appends.
    """
    result: dict[str, Any] = {}
    for key, value in pairs:
        match = _PHP_KEY.fullmatch(key)
        if match is None:
            result[key] = value
            continue
        parts = [match.group(1), *re.findall(r"\[([^\[\]]*)\]", match.group(2))]
        node = result
        for depth, part in enumerate(parts):
            name = part or str(sum(1 for known in node if known.isdigit()))
            if depth == len(parts) - 1:
                node[name] = value
            else:
                child = node.get(name)
                if not isinstance(child, dict):
                    child = node[name] = {}
                node = child
    return result


def _indexed(value: Any, where: str, *, limit: int | None) -> dict[int, Any]:
    """A list, or an object keyed by integer indexes, as {index: item}."""
    if value is None:
        return {}
    if isinstance(value, list):
        items = dict(enumerate(value))
    elif isinstance(value, dict):
        items = {}
        for key, item in value.items():
            try:
                index = int(key)
            except ValueError:
                raise _Error(f"Invalid field {where}[{key}]") from None
            items[index] = item
    else:
        raise _Error(f"Invalid field {where}")
    for index in items:
        if index < 0 or (limit is not None and index > limit):
            raise _Error(f"Invalid field {where}[{index}]")
    return dict(sorted(items.items()))


def _absent(value: Any) -> bool:
    return value is None or value == ""


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool):
        raise _Error(f"Invalid field {where}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    raise _Error(f"Invalid field {where}")


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise _Error(f"Invalid field {where}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _Error(f"Invalid field {where}") from None
    else:
        raise _Error(f"Invalid field {where}")
    if not math.isfinite(number):
        raise _Error(f"Invalid field {where}")
    return number


def _lookup(names: dict[str, str], body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if _absent(value):
        raise _Error(f"Missing field {key}")
    name = names.get(str(value))
    if name is None:
        raise _Error(f"Unknown {key}")
    return name


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(data).encode(), content_type="application/json"
    )


def _html(status: int, body: str) -> web.Response:
    return web.Response(status=status, text=body, content_type="text/html")


# --- demo (python -m tests.simulators evmonitor) -------------------------------------

DEMO_EMAIL = "evmonitor-demo@example.com"
DEMO_PASSWORD = "evmonitor-demo-password"  # a simulator demo account


def demo_simulator(host: str = "127.0.0.1") -> tuple[EvMonitorSimulator, SimUser]:
    """The demo's set-up: one user with one vehicle, "The Rocket"; control on."""
    simulator = EvMonitorSimulator(host=host, control=True)
    user = simulator.add_user(DEMO_EMAIL, DEMO_PASSWORD)
    simulator.add_vehicle(user, "The Rocket", make="Energica", model="SS9")
    return simulator, user


async def run_demo(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """One user with "The Rocket"; prints an event line for each accepted dataset.

    The clock follows the wall clock, so tokens expire after 10 real minutes.
    Switches made through the control endpoint are printed as events too.
    """
    simulator, user = demo_simulator(args.host)
    (vehicle,) = simulator.vehicles.values()
    await simulator.start(args.port)
    try:
        emit(provider="evmonitor")
        emit(server_url=simulator.url)
        emit(api_url=simulator.api_url)
        emit(username=user.email)
        emit(password=user.password)
        emit(vehicles=vehicle.id)
        seen = 0
        switches = dict.fromkeys(CONTROL_SWITCHES, False)
        async for _ in every_second(stop):
            simulator.advance(1)
            while seen < len(simulator.datasets):
                dataset = simulator.datasets[seen]
                seen += 1
                emit(
                    event="dataset",
                    vehicle=dataset.vehicle_id,
                    batch=dataset.batch_id,
                    timestamp=dataset.general.get("timestamp"),
                )
            for name in CONTROL_SWITCHES:
                if getattr(simulator, name) != switches[name]:
                    switches[name] = getattr(simulator, name)
                    emit(event=name, on=switches[name])
    finally:
        await simulator.stop()


DEMO = SimulatorDemo(
    run=run_demo,
    label="EV-Monitor",
    needs=("server_url", "username", "password", "vehicles"),
    # The logbook's vehicle id: its device's identifier (one entry per logbook).
    identifier="vehicles",
    menu_path=("evmonitor",),
    forms=(
        (
            "evmonitor",
            lambda sim: {
                "username": sim["username"],
                "password": sim["password"],
                "advanced": {"server_url": sim["server_url"]},
            },
        ),
        (
            "evmonitor_vehicle",
            lambda sim: {"vehicle": sim["vehicles"], "source": "device"},
        ),
        # The OVMS demo's car DEMO, as the user picks it in the device selector.
        (
            "evmonitor_device",
            lambda sim: {"source_device": sim[device_key("ovms_DEMO")]},
        ),
    ),
    after=("ovms",),
)
