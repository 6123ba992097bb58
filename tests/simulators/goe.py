"""A simulated go-eCharger: the cloud HTTP API v2 and the charger's local HTTP API v2.

Both APIs expose `/api/status` and `/api/set` with the same keys; the cloud needs a
token and reports problems with status codes, the local API has no auth and answers
per key. Facts: providers.md section 4 and api-docs/go-e-cloud.txt.

The simulation is deterministic: simulated time only moves when `SimCharger.advance`
is called, so tests can snapshot the status. Faults (`GoeFault`) are only observable
through real HTTP, exactly as a client would meet them.

`DEMO` (at the end) is what `python -m tests.simulators goe` runs: one charger that
plugs in, charges and unplugs in a loop, and how a user adds it in Home Assistant.
"""

import argparse
import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from enum import StrEnum
import json
import logging
import socket
import time
from typing import Any, Self

from aiohttp import web

from .common import HttpFault, bind, close_connection, fault_middleware, issued
from .demo import SimulatorDemo, emit, every_second

_LOGGER = logging.getLogger(__name__)

DEFAULT_MAX_AGE = 30.0  # cloud default for `age` (seconds)
MIN_CURRENT = 6  # `mca`
MAX_CURRENT_BY_VARIANT = {11: 16, 22: 32}  # `var` -> highest `ama`
PHASE_VOLTAGES = (230, 231, 229)  # nrg[0..2]; N (nrg[3]) stays 0
CHARGING_POWER_FACTOR = 99  # % on a phase that carries current
AVERAGE_POWER_WINDOW = 30.0  # `tpa` is the 30 s average power
INITIAL_ETO_WH = 1_234_567
INITIAL_RBT_MS = 3_600_000  # booted an hour before the simulation starts
HOME = "HOME"
CORE = "CORE"
PRO = "PRO"
MODELS = (HOME, CORE, PRO)
# Keys of the HOME that CORE and PRO lack: the cable lock (`cus`, `lck`, `ust`) and
# `cbl` are missing from the firmware 60.3/60.4 key exports (the PRO/CORE firmware)
# and left out by marq24/ha-goecharger-api2 for CORE/PRO; `psm` is missing from
# every export. CORE and PRO answer `/api/status` with 400 when the filter names a
# key they lack, or has no filter, yet send the keys they have
# (goecharger/go-eCharger-API-v2 issue #312, marq24/ha-goecharger-api2 issue #66).
# The reports show the local API; the cloud passes the same answer on, as marq24's
# client expects (one request path, 200 and 400 accepted, for cloud and local).
HOME_ONLY_KEYS = frozenset({"cbl", "cus", "lck", "psm", "ust"})
MALFORMED_BODY = "<html>oops"
BAD_GATEWAY_BODY = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)
# Pending slow answers are woken on stop; keep shutdown short for test teardown.
SHUTDOWN_TIMEOUT = 2.0


class GoeFault(StrEnum):
    """A failure mode a simulated charger (or the cloud in front of it) shows."""

    NONE = "none"
    # Cloud: 403 on status and set; local: connection closed without a response.
    OFFLINE = "offline"
    # Cloud: 403 (the real service cannot tell this from offline); local unaffected.
    CLOUD_API_DISABLED = "cloud_api_disabled"
    # The charger stops pushing to the cloud: its data age grows with `advance()`;
    # cloud status 404 "Data is outdated" once older than `age`, cloud set 404.
    # Local unaffected.
    STALE = "stale"
    # 502 with an HTML body (cloud and local).
    SERVER_ERROR = "server_error"
    # 200 with a body that is not JSON (cloud and local); a set is not applied.
    MALFORMED = "malformed"
    # The answer comes after `slow_seconds` (cloud and local).
    SLOW = "slow"


@dataclass
class SimCharger:
    """One simulated go-eCharger.

    `state` holds the stored API keys (settings, counters, static facts); `status()`
    adds the keys derived from them (car state, currents, powers, ...). Tests may edit
    `state` directly, and `overrides` replaces any key of `status()` (e.g. `err`).

    `model` HOME has every key we read; CORE and PRO lack `HOME_ONLY_KEYS` and
    answer 400 (with the keys they have) to a filter that names one, on the cloud
    and the local API. `set_failure_status` 500 makes the local `/api/set` answer
    a refused key with 500 and the per-key body, as marq24's client expects of
    some chargers; 200 (the default) is what the local API docs show.
    """

    serial: str
    token: str
    model: str = HOME
    variant: int = 11
    fault: GoeFault = GoeFault.NONE
    set_failure_status: int = 200
    slow_seconds: float = 30.0
    car_connected: bool = False
    battery_wh_needed: float = 20000
    state: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)
    # Decoded values of every /api/set call that applied at least one key.
    set_log: list[dict[str, Any]] = field(default_factory=list)
    # Query parameters (token removed) of every /api/status request that reached it.
    status_requests: list[dict[str, str]] = field(default_factory=list)
    # HTTP status of every /api/status answer that carried a status (200 or 400).
    status_codes: list[int] = field(default_factory=list)
    # Seconds since the charger last pushed data to the cloud.
    data_age: float = field(default=0.0, init=False)
    # (seconds, watts) segments of the last AVERAGE_POWER_WINDOW seconds, for `tpa`.
    _power_history: list[tuple[float, float]] = field(
        default_factory=list, init=False, repr=False
    )

    def __post_init__(self) -> None:
        """Validate the identity and fill in the default state."""
        if len(self.serial) != 6 or not self.serial.isdigit():
            raise ValueError("serial must have 6 digits")
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}")
        if self.set_failure_status not in (200, 500):
            raise ValueError("set_failure_status must be 200 or 500")
        if self.variant not in MAX_CURRENT_BY_VARIANT:
            raise ValueError("variant must be 11 or 22")
        issued(self.token)
        max_current = MAX_CURRENT_BY_VARIANT[self.variant]
        defaults: dict[str, Any] = {
            "amp": 16,
            "ama": max_current,
            "mca": MIN_CURRENT,
            "frc": 0,
            "lmo": 3,
            "fna": "go-eCharger",
            "wh": 0.0,
            "eto": float(INITIAL_ETO_WH),
            "err": 0,
            "tma": [24.5, 27.0],
            "fwv": "60.4",
            "sse": self.serial,
            "typ": "go-eCharger",
            "oem": "go-e",
            "var": self.variant,
            "rssi": -62,
            "rbt": INITIAL_RBT_MS,
        }
        if self.model == HOME:
            defaults |= {"psm": 0, "cbl": 32, "ust": 0}
        # Values given by the caller win over the defaults.
        self.state = defaults | self.state

    def __setattr__(self, name: str, value: Any) -> None:
        """Reset the data age when STALE starts or ends.

        Entering STALE, the last push was just now; leaving it, the charger pushes
        fresh data at once, so tests need not call `advance()` to recover.
        """
        if name == "fault" and hasattr(self, "data_age"):
            old = getattr(self, "fault", None)
            if old != value and GoeFault.STALE in (old, value):
                object.__setattr__(self, "data_age", 0.0)
        object.__setattr__(self, name, value)

    # --- derived state -------------------------------------------------------------

    @property
    def max_current(self) -> int:
        """The highest `ama` this hardware variant accepts."""
        return MAX_CURRENT_BY_VARIANT[self.variant]

    @property
    def complete(self) -> bool:
        """True once the connected car has taken all the energy it needs."""
        return self.car_connected and self.state["wh"] >= self.battery_wh_needed

    @property
    def car_state(self) -> int:
        """`car`: 1 Idle, 2 Charging, 3 WaitCar, 4 Complete."""
        if not self.car_connected:
            return 1
        if self.state["frc"] == 1:
            return 3
        if self.complete:
            return 4
        return 2

    @property
    def charging(self) -> bool:
        """True while energy flows to the car."""
        return self.car_state == 2

    @property
    def phases(self) -> int:
        """Phases in use: `psm` 1 forces single phase."""
        return 1 if self.state.get("psm") == 1 else 3

    def _currents(self) -> list[int]:
        amp = int(self.state["amp"]) if self.charging else 0
        return [amp if index < self.phases else 0 for index in range(3)]

    def _powers(self) -> list[int]:
        return [
            round(volts * amps)
            for volts, amps in zip(PHASE_VOLTAGES, self._currents(), strict=True)
        ]

    @property
    def power_w(self) -> int:
        """Total charging power (nrg[11]) in W."""
        return sum(self._powers())

    def _model_status(self) -> int:
        if not self.car_connected:
            return 0  # NotChargingBecauseNoChargeCtrlData
        if self.state["frc"] == 2:
            return 3  # ChargingBecauseForceStateOn
        if self.state["frc"] == 1:
            return 4  # NotChargingBecauseForceStateOff
        return 15  # ChargingBecauseFallbackDefault

    def _average_power(self) -> float:
        covered = sum(seconds for seconds, _ in self._power_history)
        if covered <= 0:
            return 0.0
        energy = sum(seconds * watts for seconds, watts in self._power_history)
        return round(energy / covered, 1)

    def status(self) -> dict[str, Any]:
        """The full status object, as the charger would send it."""
        currents = self._currents()
        powers = self._powers()
        factors = [CHARGING_POWER_FACTOR if amps else 0 for amps in currents]
        charging = self.charging
        state = self.state
        result: dict[str, Any] = {
            "car": self.car_state,
            "alw": self.car_connected and state["frc"] != 1,
            "acu": int(state["amp"]) if charging else None,
            "amp": state["amp"],
            "ama": state["ama"],
            "mca": state["mca"],
            "frc": state["frc"],
        }
        if "psm" in state:
            result["psm"] = state["psm"]
        result |= {
            "pnp": self.phases,
            "fsp": self.phases == 1,
            "nrg": [
                *PHASE_VOLTAGES,
                0,
                *currents,
                *powers,
                0,
                sum(powers),
                *factors,
                0,
            ],
            "wh": round(state["wh"], 3),
            "eto": int(state["eto"]),
            "err": state["err"],
            "modelStatus": self._model_status(),
            "tma": list(state["tma"]),
        }
        if "cbl" in state:
            result["cbl"] = state["cbl"]
        if "ust" in state:  # the cable lock
            result |= {
                "cus": 3 if self.car_connected else 1,  # Locked / Unlocked
                "ust": state["ust"],
                "lck": state["ust"],
            }
        result |= {
            "lmo": state["lmo"],
            "trx": 0 if self.car_connected else None,
            # 0-2: L1-L3 after the contactor (live while charging), 3-5: before it.
            "pha": [charging and index < self.phases for index in range(3)]
            + [True, True, True],
            "fwv": state["fwv"],
            "sse": state["sse"],
            "fna": state["fna"],
            "typ": state["typ"],
            "oem": state["oem"],
            "var": state["var"],
            "rssi": state["rssi"],
            "tpa": self._average_power(),
            "rbt": int(state["rbt"]),
        }
        # Stored keys this method does not know about still belong to the status.
        result |= {key: value for key, value in state.items() if key not in result}
        return result | self.overrides

    # --- simulation ----------------------------------------------------------------

    def plug_in(self) -> None:
        """Connect a car; a new session starts (`wh` resets)."""
        if not self.car_connected:
            self.car_connected = True
            self.state["wh"] = 0.0

    def unplug(self) -> None:
        """Disconnect the car; `wh` keeps the last session's energy."""
        self.car_connected = False

    def advance(self, seconds: float) -> None:
        """Move simulated time: energy, uptime and (while STALE) data age grow."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        power = self.power_w
        charging_seconds = 0.0
        if power:
            remaining = max(self.battery_wh_needed - self.state["wh"], 0.0)
            added = min(power * seconds / 3600, remaining)
            self.state["wh"] += added
            self.state["eto"] += added
            charging_seconds = added * 3600 / power
        # Charging may stop part-way (battery full); the average must see that.
        self._record_power(charging_seconds, power)
        self._record_power(seconds - charging_seconds, 0)
        self.state["rbt"] = int(self.state["rbt"]) + round(seconds * 1000)
        if self.fault == GoeFault.STALE:
            self.data_age += seconds
        else:
            self.data_age = 0.0

    def _record_power(self, seconds: float, watts: float) -> None:
        if seconds <= 0:
            return
        self._power_history.append((seconds, watts))
        # Drop what lies entirely outside the window, trim the oldest partial segment.
        kept: list[tuple[float, float]] = []
        budget = AVERAGE_POWER_WINDOW
        for length, value in reversed(self._power_history):
            if budget <= 0:
                break
            kept.append((min(length, budget), value))
            budget -= length
        self._power_history = kept[::-1]

    # --- /api/set ------------------------------------------------------------------

    def validate(self, key: str, value: Any) -> str | None:
        """Return why `key` cannot be set to `value`, or None when it can."""
        match key:
            case "amp":
                return _int_in_range(value, self.state["mca"], self.state["ama"])
            case "ama":
                return _int_in_range(value, MIN_CURRENT, self.max_current)
            case "frc":
                return _int_in_range(value, 0, 2)
            case "psm" | "ust" if key in self.state:
                return _int_in_range(value, 0, 2)
            case "lmo":
                return _int_in_range(value, 3, 5)
            case "fna":
                return None if isinstance(value, str) else "invalid type"
            case _ if key in self.status():
                return "read-only key"
            case _:
                return "unknown key"

    def apply_set(
        self, params: Iterable[tuple[str, str]]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Apply JSON-encoded `/api/set` parameters.

        Returns (applied key -> decoded value, rejected key -> reason); applied
        values are logged in `set_log`.
        """
        applied: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for key, raw in params:
            try:
                value = json.loads(raw, parse_constant=_reject_constant)
            except ValueError:
                reason: str | None = "invalid JSON"
            else:
                reason = self.validate(key, value)
            # A repeated key reports its last occurrence only.
            if reason is not None:
                failed[key] = reason
                applied.pop(key, None)
                continue
            failed.pop(key, None)
            self.state[key] = value
            if key == "ama" and self.state["amp"] > value:
                # The requested current never exceeds the absolute limit.
                self.state["amp"] = value
            applied[key] = value
        if applied:
            self.set_log.append(dict(applied))
        return applied, failed

    # --- /api/status ---------------------------------------------------------------

    def answer_status(self, keys: list[str]) -> tuple[int, dict[str, Any]]:
        """HTTP status and body of a `/api/status` answer to the filter `keys`.

        No keys: the whole status. CORE and PRO refuse (400) a filter that names
        a key they lack, and the whole status, yet send what they have.
        """
        status = self.status()
        body = {key: status[key] for key in keys if key in status} if keys else status
        refused = self.model != HOME and (not keys or len(body) < len(set(keys)))
        code = 400 if refused else 200
        self.status_codes.append(code)
        return code, body


def _int_in_range(value: Any, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return "invalid type"
    if not low <= value <= high:
        return "value out of range"
    return None


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON, although Python's parser accepts them.
    raise ValueError(name)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda obj: json.dumps(obj, separators=(",", ":"))
    )


def _query_without_token(request: web.Request) -> dict[str, str]:
    return {key: value for key, value in request.query.items() if key != "token"}


class GoeSimulator:
    """The go-e cloud API on one port plus one local API per charger on its own port.

    Faults of one charger are its `fault`; `http_fault` (an `HttpFault`) fails
    requests to every API in front of the chargers, as a proxy would.
    """

    def __init__(
        self, chargers: list[SimCharger] | None = None, *, host: str = "127.0.0.1"
    ) -> None:
        """Prepare the simulator; nothing listens until `start()`."""
        self._host = host
        self._chargers: dict[str, SimCharger] = {}
        self._cloud_runner: web.AppRunner | None = None
        self._local_runner: web.AppRunner | None = None
        self._cloud_port: int | None = None
        self._local_ports: dict[str, int] = {}  # serial -> port
        self._port_serials: dict[int, str] = {}  # port -> serial
        self._site_tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        # Fails the requests it matches on the cloud and every local API.
        self.http_fault: HttpFault | None = None
        for charger in chargers or []:
            self.add_charger(charger)

    async def __aenter__(self) -> Self:
        """Start on free ports."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop all sites."""
        await self.stop()

    # --- public interface ----------------------------------------------------------

    @property
    def chargers(self) -> list[SimCharger]:
        """All simulated chargers."""
        return list(self._chargers.values())

    def add_charger(self, charger: SimCharger) -> SimCharger:
        """Add a charger; when running, its local API starts listening at once."""
        if charger.serial in self._chargers:
            raise ValueError(f"duplicate serial {charger.serial}")
        if any(other.token == charger.token for other in self._chargers.values()):
            raise ValueError(f"duplicate token for charger {charger.serial}")
        self._chargers[charger.serial] = charger
        if self._local_runner is not None:
            sock = self._bind_local(charger.serial, 0)
            site = web.SockSite(self._local_runner, sock)
            task = asyncio.get_running_loop().create_task(site.start())
            self._site_tasks.add(task)
            task.add_done_callback(self._site_tasks.discard)
        return charger

    def charger(self, serial: str) -> SimCharger:
        """The charger with this serial (KeyError if unknown)."""
        return self._chargers[serial]

    async def start(
        self, port: int = 0, *, local_ports: Mapping[str, int] | None = None
    ) -> None:
        """Serve the cloud API on `port` (0: a free port) and each local API.

        `local_ports` optionally pins the local API port of some chargers (by serial);
        the others get free ports.
        """
        if self._cloud_runner is not None:
            raise RuntimeError("simulator already running")
        self._stopping = asyncio.Event()
        middlewares = [fault_middleware(lambda: self.http_fault)]
        cloud_app = web.Application(middlewares=middlewares)
        cloud_app.router.add_get("/api/status", self._cloud_status)
        cloud_app.router.add_get("/api/set", self._cloud_set)
        local_app = web.Application(middlewares=middlewares)
        local_app.router.add_get("/api/status", self._local_status)
        local_app.router.add_get("/api/set", self._local_set)
        # No access log: cloud request lines carry tokens. Handlers are cancelled
        # when the client gives up, so a timed-out slow set is never applied.
        options: dict[str, Any] = {
            "access_log": None,
            "handler_cancellation": True,
            "shutdown_timeout": SHUTDOWN_TIMEOUT,
        }
        self._cloud_runner = web.AppRunner(cloud_app, **options)
        self._local_runner = web.AppRunner(local_app, **options)
        try:
            await self._cloud_runner.setup()
            await self._local_runner.setup()
            cloud_sock = bind(self._host, port)
            self._cloud_port = cloud_sock.getsockname()[1]
            await web.SockSite(self._cloud_runner, cloud_sock).start()
            pinned = local_ports or {}
            for serial in self._chargers:
                sock = self._bind_local(serial, pinned.get(serial, 0))
                await web.SockSite(self._local_runner, sock).start()
        except BaseException:
            await self.stop()
            raise
        _LOGGER.debug("go-e simulator listening on %s", self.cloud_url)

    async def stop(self) -> None:
        """Stop serving; pending slow answers end without a response."""
        self._stopping.set()
        if self._site_tasks:
            await asyncio.gather(*self._site_tasks, return_exceptions=True)
        for runner in (self._cloud_runner, self._local_runner):
            if runner is not None:
                await runner.cleanup()
        self._cloud_runner = None
        self._local_runner = None
        self._cloud_port = None
        self._local_ports.clear()
        self._port_serials.clear()

    @property
    def cloud_url(self) -> str:
        """The cloud API root, e.g. `http://127.0.0.1:40123`."""
        if self._cloud_port is None:
            raise RuntimeError("simulator not running")
        return f"http://{self._address(self._cloud_port)}"

    def local_host(self, serial: str) -> str:
        """The local API address as a user enters it, e.g. `127.0.0.1:40124`."""
        if serial not in self._local_ports:
            raise KeyError(f"no local API running for charger {serial}")
        return self._address(self._local_ports[serial])

    def local_url(self, serial: str) -> str:
        """The charger's local API root, e.g. `http://127.0.0.1:40124`."""
        return f"http://{self.local_host(serial)}"

    # --- plumbing ------------------------------------------------------------------

    def _address(self, port: int) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{port}"

    def _bind_local(self, serial: str, port: int) -> socket.socket:
        sock = bind(self._host, port)
        bound = sock.getsockname()[1]
        self._local_ports[serial] = bound
        self._port_serials[bound] = serial
        return sock

    def _cloud_charger(self, request: web.Request) -> SimCharger | None:
        """The charger whose token the request carries (header or query)."""
        token = request.query.get("token")
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            token = credentials.strip()
        if not token:
            return None
        for charger in self._chargers.values():
            if charger.token == token:
                return charger
        return None

    def _local_charger(self, request: web.Request) -> SimCharger | None:
        """The charger whose local port received the request."""
        sockname = request.get_extra_info("sockname")
        if not sockname:
            return None
        serial = self._port_serials.get(sockname[1])
        return None if serial is None else self._chargers.get(serial)

    async def _wait_if_slow(self, charger: SimCharger) -> bool:
        """Delay a SLOW charger's answer; False when the simulator stops meanwhile."""
        if charger.fault != GoeFault.SLOW:
            return True
        try:
            async with asyncio.timeout(charger.slow_seconds):
                await self._stopping.wait()
        except TimeoutError:
            return True
        return False

    async def _common_fault(
        self, request: web.Request, charger: SimCharger, *, cloud: bool
    ) -> web.StreamResponse | None:
        """Answer for faults that look the same on both endpoints, else None."""
        if not await self._wait_if_slow(charger):
            return close_connection(request)
        match charger.fault:
            case GoeFault.OFFLINE | GoeFault.CLOUD_API_DISABLED if cloud:
                # The real cloud answers both the same way.
                return _json({"success": False, "reason": "forbidden"}, status=403)
            case GoeFault.OFFLINE:
                return close_connection(request)
            case GoeFault.SERVER_ERROR:
                return web.Response(
                    status=502, text=BAD_GATEWAY_BODY, content_type="text/html"
                )
            case GoeFault.MALFORMED:
                # Declared as JSON so that a client's JSON decoding is what fails.
                return web.Response(
                    status=200, text=MALFORMED_BODY, content_type="application/json"
                )
        return None

    # --- cloud handlers ------------------------------------------------------------

    async def _cloud_status(self, request: web.Request) -> web.StreamResponse:
        charger = self._cloud_charger(request)
        if charger is None:
            return _json({"success": False, "reason": "invalid token"}, status=401)
        charger.status_requests.append(_query_without_token(request))
        answer = await self._common_fault(request, charger, cloud=True)
        if answer is not None:
            return answer
        try:
            max_age = float(request.query.get("age", DEFAULT_MAX_AGE))
        except ValueError:
            return _json({"success": False, "reason": "invalid age"}, status=400)
        if charger.data_age > max_age:
            return _json(
                {
                    "success": False,
                    "reason": "Data is outdated",
                    "age": float(charger.data_age),
                },
                status=404,
            )
        code, body = charger.answer_status(_filter_keys(request))
        response = _json(body, status=code)
        response.headers["Last-Modified"] = formatdate(
            time.time() - charger.data_age, usegmt=True
        )
        return response

    async def _cloud_set(self, request: web.Request) -> web.StreamResponse:
        charger = self._cloud_charger(request)
        if charger is None:
            return _json({"success": False, "reason": "invalid token"}, status=401)
        answer = await self._common_fault(request, charger, cloud=True)
        if answer is not None:
            return answer
        if charger.fault == GoeFault.STALE:
            return _json({"success": False, "reason": "Charger not online"}, status=404)
        params = [
            (key, value) for key, value in request.query.items() if key != "token"
        ]
        applied, failed = charger.apply_set(params)
        _LOGGER.debug("cloud set on %s: %s", charger.serial, applied)
        body = {
            "succeeded": [{key: value} for key, value in applied.items()],
            "failed": [{key: reason} for key, reason in failed.items()],
        }
        return _json(body, status=202 if applied else 422)

    # --- local handlers ------------------------------------------------------------

    async def _local_status(self, request: web.Request) -> web.StreamResponse:
        charger = self._local_charger(request)
        if charger is None:
            return close_connection(request)  # arrived while stopping
        charger.status_requests.append(_query_without_token(request))
        answer = await self._common_fault(request, charger, cloud=False)
        if answer is not None:
            return answer
        code, body = charger.answer_status(_filter_keys(request))
        return _json(body, status=code)

    async def _local_set(self, request: web.Request) -> web.StreamResponse:
        charger = self._local_charger(request)
        if charger is None:
            return close_connection(request)
        answer = await self._common_fault(request, charger, cloud=False)
        if answer is not None:
            return answer
        applied, failed = charger.apply_set(request.query.items())
        _LOGGER.debug("local set on %s: %s", charger.serial, applied)
        body: dict[str, bool | str] = {}
        for key in dict.fromkeys(request.query):
            body[key] = True if key in applied else failed[key]
        return _json(body, status=charger.set_failure_status if failed else 200)


def _filter_keys(request: web.Request) -> list[str]:
    raw = request.query.get("filter", "")
    return [key.strip() for key in raw.split(",") if key.strip()]


# --- demo (python -m tests.simulators goe) -----------------------------------------

DEMO_SERIAL = "012345"
DEMO_TOKEN = "sim-token-012345"
# Small, so that a whole charging session fits into about a minute at 11 kW.
DEMO_BATTERY_WH = 150.0
# Seconds after start, and after each unplug: longer than EV Cloud's 30 s poll of
# a charger with a car, so that Home Assistant sees the car leave and each
# charging session end.
DEMO_PLUG_IN_AFTER = 35
DEMO_UNPLUG_AFTER = 20  # seconds after the battery is full


async def run_demo(args: argparse.Namespace, stop: asyncio.Event) -> None:
    """One go-e HOME charger: plugs in, charges to full, unplugs, and again."""
    charger = SimCharger(
        serial=DEMO_SERIAL, token=DEMO_TOKEN, battery_wh_needed=DEMO_BATTERY_WH
    )
    simulator = GoeSimulator([charger], host=args.host)
    local_ports = {DEMO_SERIAL: args.local_port} if args.local_port else None
    await simulator.start(args.port, local_ports=local_ports)
    try:
        # One setting per line, so that scripts can pick them with grep/cut.
        emit(provider="goe")
        emit(cloud_url=simulator.cloud_url)
        emit(local_host=simulator.local_host(DEMO_SERIAL))
        emit(serial=DEMO_SERIAL)
        emit(token=DEMO_TOKEN)
        # Seconds since the last story event (start, unplug or battery full).
        since_event = 0
        async for _ in every_second(stop):
            was_complete = charger.complete
            charger.advance(1)
            since_event += 1
            if not charger.car_connected and since_event >= DEMO_PLUG_IN_AFTER:
                charger.plug_in()
                emit(event="plug_in")
            elif charger.complete and not was_complete:
                since_event = 0
                emit(event="complete", wh=charger.status()["wh"])
            elif charger.complete and since_event >= DEMO_UNPLUG_AFTER:
                charger.unplug()
                since_event = 0
                emit(event="unplug")
    finally:
        await simulator.stop()


DEMO = SimulatorDemo(
    run=run_demo,
    label="go-e Charger",
    needs=("cloud_url", "serial", "token"),
    identifier="serial",
    menu_path=("goe", "goe_cloud"),
    forms=(
        (
            "goe_cloud",
            lambda sim: {
                "serial": sim["serial"],
                "token": sim["token"],
                # a collapsed form section
                "advanced": {"server_url": sim["cloud_url"]},
            },
        ),
    ),
)
