"""Run the provider simulators and a real, onboarded Home Assistant for development.

Started by ``scripts/develop`` with the Home Assistant virtualenv's interpreter
(``.venv-ha/bin/python``), so aiohttp is available besides the standard library.

What it does, in order:

1. writes ``.dev/config`` (configuration.yaml, a link to custom_components/ev_cloud);
2. starts one simulator per entry of ``PROVIDERS`` and reads its URLs from its output;
3. starts Home Assistant, onboards it through its HTTP API (or logs in, when an earlier
   run did that already) and waits until it is RUNNING;
4. adds one config entry per provider through the config-flow REST API, as a user
   clicking through the UI would, unless one exists already;
5. follows the log until Ctrl-C or SIGTERM, then stops Home Assistant with the
   ``homeassistant.stop`` action (so it writes ``.storage``) and the simulators.

To add a provider: give ``tests.simulators`` a simulator for it and append a
``DevProvider`` to ``PROVIDERS`` below.
"""

import asyncio
from collections.abc import Callable
import contextlib
from dataclasses import dataclass, field
import http.client
import json
import os
from pathlib import Path
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
DEV_DIR = ROOT / ".dev"
CONFIG_DIR = DEV_DIR / "config"
HA_LOG = CONFIG_DIR / "home-assistant.log"
HA_CONSOLE_LOG = DEV_DIR / "home-assistant.console.log"
PIDS_FILE = DEV_DIR / "develop.pids"
PYTHON = sys.executable  # the .venv-ha interpreter that runs this script
DOMAIN = "ev_cloud"

HA_PORT = int(os.environ.get("EV_CLOUD_DEV_PORT", "8123"))
HA_URL = f"http://127.0.0.1:{HA_PORT}"
# Onboarding and the login flow want an IndieAuth client id: HA's own frontend URL.
CLIENT_ID = f"{HA_URL}/"
REDIRECT_URI = f"{HA_URL}/?auth_callback=1"
DEV_NAME, DEV_USER, DEV_PASSWORD = "Developer", "dev", "dev-password"

SIM_BASE_PORT = int(os.environ.get("EV_CLOUD_DEV_SIM_PORT", "8700"))
START_TIMEOUT = float(os.environ.get("EV_CLOUD_DEV_TIMEOUT", "900"))
STOP_TIMEOUT = 90.0
LOG_MODE = os.environ.get("EV_CLOUD_DEV_LOG", "ev_cloud")  # ev_cloud | all | none
STATUS_EVERY = float(os.environ.get("EV_CLOUD_DEV_STATUS_EVERY", "300"))
EXIT_AFTER_SETUP = os.environ.get("EV_CLOUD_DEV_EXIT_AFTER_SETUP") == "1"
RESTART_EXIT_CODE = 100  # what HA exits with when a restart is requested in the UI

CONFIGURATION_YAML = """\
# Written by scripts/develop on every start: local edits here are lost.
# Put extra YAML for your experiments in .dev/config/packages/<name>.yaml.
homeassistant:
  packages: !include_dir_named packages

default_config:

logger:
  default: info
  logs:
    custom_components.ev_cloud: debug
"""
# Since 2026.x HA imports http: from YAML once into .storage/http and then ignores
# it (with a repair warning while it stays), so develop writes it only until then.
HTTP_YAML = f"""
http:
  server_host: 127.0.0.1
  server_port: {HA_PORT}
"""
HTTP_STORE = CONFIG_DIR / ".storage" / "http"

LOG_RECORD_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


class SafeOutput:
    """Wraps stdout so that a closed terminal or pipe cannot break the shutdown."""

    def __init__(self, stream: Any) -> None:
        """Wrap ``stream``."""
        self.stream = stream
        self.broken = False

    def write(self, text: str) -> int:
        """Write, or drop the text once the stream is gone."""
        if not self.broken:
            try:
                return self.stream.write(text)
            except OSError:
                self.broken = True
        return len(text)

    def flush(self) -> None:
        """Flush, unless the stream is gone."""
        if not self.broken:
            try:
                self.stream.flush()
            except OSError:
                self.broken = True


class DevError(Exception):
    """A set-up step failed; the message says what and what to do."""


class Shutdown(BaseException):
    """Ctrl-C or SIGTERM arrived: unwind and stop everything."""


def say(message: str) -> None:
    """Print a timestamped progress line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# --------------------------------------------------------------------- providers


@dataclass
class SimulatorInfo:
    """What a simulator printed: its output lines and their ``key=value`` pairs."""

    lines: list[str] = field(default_factory=list)
    values: dict[str, str] = field(default_factory=dict)

    def add(self, line: str) -> None:
        """Keep a line; the first ``key=value`` for each key wins (later: events)."""
        self.lines.append(line)
        key, sep, value = line.partition("=")
        if sep and key.isidentifier():
            self.values.setdefault(key, value.strip())


@dataclass(frozen=True)
class DevProvider:
    """A simulated provider: its simulator and the config entry develop adds for it."""

    simulator: str  # NAME in ``python -m tests.simulators NAME --port PORT``
    label: str  # for messages
    needs: tuple[str, ...]  # keys the simulator prints that the entry is made from
    identifier: str  # key whose value finds an existing entry (e.g. the serial)
    menu_path: tuple[str, ...]  # next_step_id chosen in each menu after step "user"
    # The forms reached through the menus, in order: (step_id, what the user types).
    forms: tuple[tuple[str, Callable[[dict[str, str]], dict[str, Any]]], ...]


PROVIDERS: tuple[DevProvider, ...] = (
    DevProvider(
        simulator="goe",
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
    ),
    DevProvider(
        simulator="ovms",
        label="OVMS",
        needs=("server_url", "username", "password", "vehicles"),
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
        ),
    ),
)


# ------------------------------------------------------------------- processes


def port_is_free(port: int) -> bool:
    """Return True when nothing listens on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def stop_process(
    proc: subprocess.Popen[bytes], name: str, timeout: float, force: Callable[[], bool]
) -> None:
    """SIGTERM a child's process group, wait, then SIGKILL it (no orphans left)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline and not force():
            time.sleep(0.2)
        if proc.poll() is None:
            say(f"{name} did not stop in time; killing it")
    # The group may hold helpers the child started (pip installs, ...): end them too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def cmdline(pid: int) -> bytes:
    """Return a process's command line (empty if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def kill_leftovers() -> None:
    """End processes an earlier, killed run left behind (listed in PIDS_FILE)."""
    if not PIDS_FILE.exists():
        return
    try:
        supervisor, *children = (int(pid) for pid in PIDS_FILE.read_text().split())
    except ValueError:  # empty or garbled: nothing to go by
        PIDS_FILE.unlink()
        return
    if supervisor != os.getpid() and b"develop.py" in cmdline(supervisor):
        raise DevError(
            f"another scripts/develop is running (pid {supervisor}); stop it first"
        )
    leftovers = []
    for pid in children:
        with contextlib.suppress(OSError):
            # Only ours: a pid may have been reused by an unrelated process.
            command = cmdline(pid)
            if b"tests.simulators" in command or str(CONFIG_DIR).encode() in command:
                say(f"Stopping process {pid}, left over from an earlier run")
                os.killpg(pid, signal.SIGTERM)  # HA saves its state on SIGTERM too
                leftovers.append(pid)
    deadline = time.monotonic() + 60
    while leftovers and time.monotonic() < deadline:
        leftovers = [pid for pid in leftovers if Path(f"/proc/{pid}").exists()]
        time.sleep(0.5)
    for pid in leftovers:
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    PIDS_FILE.unlink(missing_ok=True)


class Simulator:
    """One provider simulator running as ``python -m tests.simulators NAME``."""

    def __init__(self, provider: DevProvider, port: int) -> None:
        """Prepare (not start) the simulator for ``provider`` on ``port``."""
        self.provider = provider
        self.port = port
        self.info = SimulatorInfo()
        self.log_path = DEV_DIR / f"simulator-{provider.simulator}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until its start-up lines tell its URLs."""
        if not port_is_free(self.port):
            raise DevError(
                f"port {self.port} for the {self.provider.label} simulator is in use;"
                " set EV_CLOUD_DEV_SIM_PORT to another first port"
            )
        cmd = [PYTHON, "-m", "tests.simulators", self.provider.simulator]
        cmd += ["--port", str(self.port)]
        # Unbuffered, so that its start-up lines reach us at once through the pipe.
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
        )
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + 60
        while not all(key in self.info.values for key in self.provider.needs):
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the pump thread write the last lines
                raise DevError(
                    f"the {self.provider.label} simulator exited with code"
                    f" {self.proc.returncode}:\n  " + "\n  ".join(self.info.lines[-15:])
                )
            if time.monotonic() > deadline:
                raise DevError(
                    f"the {self.provider.label} simulator did not print"
                    f" {', '.join(self.provider.needs)} in 60 s; see {self.log_path}"
                )
            time.sleep(0.1)

    def _pump(self) -> None:
        """Copy the simulator's output to its log file and keep the lines (thread)."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        with self.log_path.open("wb") as log:  # one run's output
            for raw in self.proc.stdout:
                log.write(raw)
                log.flush()
                if len(self.info.lines) < 200:  # the start-up lines are all we parse
                    self.info.add(raw.decode(errors="replace").rstrip())

    def alive(self) -> bool:
        """Return True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def describe(self) -> str:
        """Return the values develop uses, for messages."""
        return " ".join(f"{key}={self.info.values[key]}" for key in self.provider.needs)

    def stop(self, force: Callable[[], bool]) -> None:
        """Stop it (SIGTERM, then SIGKILL after a few seconds)."""
        if self.proc is not None:
            stop_process(self.proc, f"the {self.provider.label} simulator", 10, force)


# ------------------------------------------------------------------- HTTP API


class HomeAssistantApi:
    """Minimal client for HA's REST and auth API (urllib), holding the tokens."""

    def __init__(self) -> None:
        """Start without tokens; onboarding or login provides them."""
        self.access_token: str | None = None
        self.refresh_token: str | None = None
        self.expires_at = 0.0

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        form: dict[str, str] | None = None,
        auth: bool = True,
        timeout: float = 30,
    ) -> tuple[int, Any]:
        """Send a request; return (status, JSON or text); status 0: no answer."""
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        # The URL is always http://127.0.0.1:<port> (no file: or other schemes).
        req = urllib.request.Request(  # noqa: S310
            HA_URL + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        except OSError, http.client.HTTPException:  # HA drops connections as it stops
            return 0, None
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def token(self) -> str:
        """Return a valid access token, refreshing it shortly before it expires."""
        if self.access_token is None:
            raise DevError("no access token yet")
        if self.refresh_token and time.monotonic() > self.expires_at - 60:
            self._grant(
                {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
            )
        return self.access_token

    def exchange_code(self, code: str) -> None:
        """Turn an authorization code (from onboarding or login) into tokens."""
        self._grant({"grant_type": "authorization_code", "code": code})

    def _grant(self, form: dict[str, str]) -> None:
        """POST /auth/token and keep the tokens it returns."""
        status, data = self.request(
            "POST", "/auth/token", form=form | {"client_id": CLIENT_ID}, auth=False
        )
        if status != 200 or not isinstance(data, dict):
            raise DevError(f"/auth/token answered {status}: {data}")
        self.access_token = data["access_token"]
        self.refresh_token = data.get("refresh_token", self.refresh_token)
        self.expires_at = time.monotonic() + float(data.get("expires_in", 1800))

    def post_ok(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST with the token; raise DevError unless HA answers 200."""
        status, data = self.request("POST", path, body if body is not None else {})
        if status != 200:
            raise DevError(f"POST {path} answered {status}: {data}")
        return data

    def get_ok(self, path: str) -> Any:
        """GET with the token; raise DevError unless HA answers 200."""
        status, data = self.request("GET", path)
        if status != 200:
            raise DevError(f"GET {path} answered {status}: {data}")
        return data

    def websocket(self, *commands: str) -> list[Any]:
        """Run websocket commands (without arguments); return their results."""
        try:
            return asyncio.run(self._websocket(commands))
        except (aiohttp.ClientError, OSError, ValueError) as err:  # incl. timeouts
            raise DevError(f"websocket {', '.join(commands)}: {err!r}") from err

    async def _websocket(self, commands: tuple[str, ...]) -> list[Any]:
        """Authenticate on /api/websocket and send ``commands`` one by one."""
        url = HA_URL.replace("http", "ws", 1) + "/api/websocket"
        results = []
        async with (
            asyncio.timeout(60),
            aiohttp.ClientSession() as session,
            session.ws_connect(url) as ws,
        ):
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token()})
            if (msg := await ws.receive_json()).get("type") != "auth_ok":
                raise DevError(f"websocket authentication failed: {msg}")
            for msg_id, command in enumerate(commands, start=1):
                await ws.send_json({"id": msg_id, "type": command})
                while (reply := await ws.receive_json()).get("id") != msg_id:
                    pass
                if not reply.get("success"):
                    raise DevError(f"websocket {command} failed: {reply.get('error')}")
                results.append(reply["result"])
        return results


# ------------------------------------------------------------- Home Assistant


def last_log_record(path: Path) -> str:
    """Return the last record line of a log file (for progress messages)."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 16384))
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    records = [line for line in lines if LOG_RECORD_RE.match(line)]
    return (records or lines or [""])[-1][:160]


def onboarding_done_steps() -> set[str]:
    """Steps an earlier run completed, from HA's own onboarding store."""
    store = CONFIG_DIR / ".storage" / "onboarding"
    try:
        return set(json.loads(store.read_text())["data"]["done"])
    except OSError, ValueError, KeyError, TypeError:
        return set()


def http_yaml_needed() -> bool:
    """Whether configuration.yaml must carry http:, fixing .storage/http if stale.

    HA 2026.x keeps its HTTP settings in .storage/http (imported once from YAML).
    If they do not match 127.0.0.1:EV_CLOUD_DEV_PORT, the file is removed so that
    HA imports http: from YAML again on this start.
    """
    try:
        data = json.loads(HTTP_STORE.read_text())["data"]
    except OSError, ValueError, KeyError, TypeError:
        return True  # not imported yet: YAML is the source
    if not isinstance(data, dict) or "stable" not in data:
        return True  # a layout this script does not know: let HA read YAML
    pending = data.get("pending")
    active = pending if pending and pending.get("error") is None else data["stable"]
    wanted = {"server_port": HA_PORT, "server_host": ["127.0.0.1"]}
    if {key: active.get(key) for key in wanted} != wanted:
        say(
            f"HTTP settings in {rel(HTTP_STORE)} are not 127.0.0.1:{HA_PORT}"
            f" (port {active.get('server_port')}, hosts {active.get('server_host')});"
            " removing them so HA imports them from configuration.yaml again"
        )
        HTTP_STORE.unlink()
        return True
    return not data.get("yaml_migration_done", False)


def confirm_http_config(api: HomeAssistantApi) -> None:
    """Promote HTTP settings HA imported from YAML, as a user confirms them in the UI.

    An imported config is on trial: unless promoted within 5 minutes, HA reverts
    to its defaults (all interfaces) and restarts. Reaching HA proves it works.
    """
    try:
        (config,) = api.websocket("http/config")
    except DevError:
        return  # an HA without stored HTTP settings: configuration.yaml rules
    if config.get("active_config_type") == "pending":
        api.websocket("http/config/promote")
        say(f"Confirmed HA's HTTP settings (127.0.0.1:{HA_PORT}) so that it keeps them")


class HomeAssistant:
    """The Home Assistant process, its API and the steps that set it up."""

    def __init__(self, force: Callable[[], bool]) -> None:
        """Prepare (not start) Home Assistant; ``force`` says: stop without waiting."""
        self.api = HomeAssistantApi()
        self.proc: subprocess.Popen[bytes] | None = None
        self.force = force

    def prepare_config(self) -> None:
        """Write configuration.yaml and link the integration into the config dir."""
        (CONFIG_DIR / "packages").mkdir(parents=True, exist_ok=True)
        yaml = CONFIGURATION_YAML + (HTTP_YAML if http_yaml_needed() else "")
        (CONFIG_DIR / "configuration.yaml").write_text(yaml)
        links = CONFIG_DIR / "custom_components"
        links.mkdir(exist_ok=True)
        link = links / DOMAIN
        target = os.path.relpath(ROOT / "custom_components" / DOMAIN, links)
        if link.is_symlink() and os.readlink(link) == target:
            return
        if link.is_dir() and not link.is_symlink():
            raise DevError(f"{link} is a real folder; remove it (or use --reset)")
        link.unlink(missing_ok=True)
        link.symlink_to(target, target_is_directory=True)

    def start(self) -> None:
        """Start ``python -m homeassistant`` with the dev config dir."""
        if not port_is_free(HA_PORT):
            raise DevError(
                f"something already listens on 127.0.0.1:{HA_PORT} (another"
                " scripts/develop?); stop it or set EV_CLOUD_DEV_PORT"
            )
        say(f"Starting Home Assistant (console output: {rel(HA_CONSOLE_LOG)})")
        with HA_CONSOLE_LOG.open("ab") as console:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "homeassistant", "--config", str(CONFIG_DIR)],
                cwd=ROOT,
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # we stop it with the stop action, in order
            )

    def alive(self) -> bool:
        """Return True while the HA process runs."""
        return self.proc is not None and self.proc.poll() is None

    def wait_for(self, what: str, check: Callable[[], bool]) -> None:
        """Poll ``check`` until True, with progress; fail if HA exits or times out."""
        start = last_report = time.monotonic()
        while not check():
            if not self.alive():
                assert self.proc is not None
                raise DevError(
                    f"Home Assistant exited with code {self.proc.returncode} while"
                    f" waiting for {what}; see {rel(HA_CONSOLE_LOG)} and {rel(HA_LOG)}"
                )
            elapsed = time.monotonic() - start
            if elapsed > START_TIMEOUT:
                raise DevError(
                    f"no {what} after {START_TIMEOUT:.0f} s; see {rel(HA_LOG)}"
                    " (raise EV_CLOUD_DEV_TIMEOUT on a slow machine)"
                )
            if time.monotonic() - last_report >= 20:
                last_report = time.monotonic()
                # The first start installs the frontend & co from PyPI: show it moves.
                last = last_log_record(HA_LOG)
                say(f"  ... {elapsed:.0f} s, waiting for {what}; log: {last}")
            time.sleep(1)

    def authenticate(self) -> None:
        """Onboard a fresh HA, or log the dev user in on one onboarded earlier."""
        done = onboarding_done_steps()
        if "user" not in done:
            self.wait_for("the onboarding API", self._onboarding_api_up)
            say(f"Onboarding: creating user {DEV_USER!r}")
            status, data = self.api.request(
                "POST",
                "/api/onboarding/users",
                {
                    "client_id": CLIENT_ID,
                    "name": DEV_NAME,
                    "username": DEV_USER,
                    "password": DEV_PASSWORD,
                    "language": "en",
                },
                auth=False,
            )
            if status != 200:
                raise DevError(f"onboarding user step answered {status}: {data}")
            self.api.exchange_code(data["auth_code"])
        else:
            self.login()
        self._finish_onboarding(done)

    def _onboarding_api_up(self) -> bool:
        """True once GET /api/onboarding answers 200 (HTTP and onboarding are up)."""
        return self.api.request("GET", "/api/onboarding", auth=False)[0] == 200

    def _finish_onboarding(self, done: set[str]) -> None:
        """Complete the remaining onboarding steps with the user's token."""
        if "core_config" not in done:
            say("Onboarding: core config")
            self.api.post_ok("/api/onboarding/core_config")
        if "analytics" not in done:
            say("Onboarding: analytics")
            self.api.post_ok("/api/onboarding/analytics")
        if "integration" not in done:
            say("Onboarding: integration step")
            self.api.post_ok(
                "/api/onboarding/integration",
                {"client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI},
            )
            say("Onboarding done")

    def login(self) -> None:
        """Log in as the dev user through /auth/login_flow (HA onboarded earlier)."""
        say(f"Already onboarded: logging in as {DEV_USER!r}")
        flow: dict[str, Any] = {}

        def login_flow_up() -> bool:
            """True once /auth/login_flow starts a flow (auth is set up)."""
            status, data = self.api.request(
                "POST",
                "/auth/login_flow",
                {
                    "client_id": CLIENT_ID,
                    "handler": ["homeassistant", None],
                    "redirect_uri": REDIRECT_URI,
                },
                auth=False,
            )
            if status == 200 and isinstance(data, dict):
                flow.update(data)
                return True
            return False

        self.wait_for("the login API", login_flow_up)
        status, data = self.api.request(
            "POST",
            f"/auth/login_flow/{flow['flow_id']}",
            {"client_id": CLIENT_ID, "username": DEV_USER, "password": DEV_PASSWORD},
            auth=False,
        )
        if not isinstance(data, dict) or data.get("type") != "create_entry":
            raise DevError(
                f"login as {DEV_USER!r} failed ({status}: {data}); if the user or"
                " password was changed, start afresh with: scripts/develop --reset"
            )
        self.api.exchange_code(data["result"])

    def wait_running(self) -> None:
        """Wait until GET /api/config reports state RUNNING (start-up finished)."""

        def running() -> bool:
            """True once HA reports that its start-up finished."""
            status, data = self.api.request("GET", "/api/config")
            return status == 200 and data.get("state") == "RUNNING"

        self.wait_for("Home Assistant to finish starting", running)

    def stop(self) -> None:
        """Stop HA with the homeassistant.stop action; SIGTERM/SIGKILL as fallbacks."""
        if self.proc is None or not self.alive():
            return
        asked = False
        if self.api.access_token is not None:
            say("Stopping Home Assistant (homeassistant.stop action) ...")
            with contextlib.suppress(DevError):
                status, _ = self.api.request(
                    "POST", "/api/services/homeassistant/stop", {}, timeout=10
                )
                asked = status in (0, 200)  # 0: it dropped the connection, stopping
        if asked:
            # It writes .storage (config entries, registries) before exiting.
            deadline = time.monotonic() + STOP_TIMEOUT
            while self.alive() and time.monotonic() < deadline and not self.force():
                time.sleep(0.2)
        else:
            say("Stopping Home Assistant (SIGTERM) ...")
        stop_process(
            self.proc, "Home Assistant", 15 if asked else STOP_TIMEOUT, self.force
        )
        say(f"Home Assistant exited (code {self.proc.returncode})")


def rel(path: Path) -> str:
    """Path relative to the repository, for messages."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


# ---------------------------------------------------------------- config entries


def find_entry(api: HomeAssistantApi, identifier: str) -> dict[str, Any] | None:
    """Return the ev_cloud entry whose title or device carries ``identifier``."""
    entries = api.get_ok(f"/api/config/config_entries/entry?domain={DOMAIN}")
    for entry in entries:
        if identifier in entry["title"]:
            return entry
    by_id = {entry["entry_id"]: entry for entry in entries}
    if not by_id:
        return None
    # The title may not name the device: look at the devices' serials and identifiers.
    (devices,) = api.websocket("config/device_registry/list")
    for device in devices:
        names = [str(value) for _, value in device["identifiers"]]
        names.append(str(device.get("serial_number")))
        if any(identifier in name for name in names):
            for entry_id in device["config_entries"]:
                if entry_id in by_id:
                    return by_id[entry_id]
    return None


def run_config_flow(
    api: HomeAssistantApi, provider: DevProvider, sim: dict[str, str]
) -> dict[str, Any]:
    """Click through the config flow as a user would; return the created entry."""
    base = "/api/config/config_entries/flow"
    step = api.post_ok(base, {"handler": DOMAIN, "show_advanced_options": True})
    flow_id = step.get("flow_id")
    try:
        for choice in provider.menu_path:
            expect_step(step, "menu", choice_in=choice)
            step = api.post_ok(f"{base}/{flow_id}", {"next_step_id": choice})
        for step_id, user_input in provider.forms:
            expect_step(step, "form", step_id=step_id)
            step = api.post_ok(f"{base}/{flow_id}", user_input(sim))
        expect_step(step, "create_entry")
    except DevError:
        # Leave no half-finished flow behind in HA's UI.
        api.request("DELETE", f"{base}/{flow_id}")
        raise
    return step["result"]


def expect_step(
    step: Any, kind: str, *, step_id: str | None = None, choice_in: str | None = None
) -> None:
    """Raise DevError (with HA's whole answer) unless the flow is where we expect."""
    ok = isinstance(step, dict) and step.get("type") == kind
    if ok and step_id is not None:
        ok = step.get("step_id") == step_id
    if ok and choice_in is not None:
        options = step.get("menu_options") or []
        ok = choice_in in (options if isinstance(options, list) else list(options))
    if not ok:
        wanted = " ".join(
            filter(None, [kind, step_id, choice_in and f"with option {choice_in!r}"])
        )
        raise DevError(f"config flow: expected a {wanted}, HA answered: {step}")


def wait_entry_loaded(
    api: HomeAssistantApi, entry_id: str, timeout: float = 60
) -> dict[str, Any]:
    """Wait until the entry leaves setup (loaded, or failed with a reason)."""
    deadline = time.monotonic() + timeout
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        entries = api.get_ok(f"/api/config/config_entries/entry?domain={DOMAIN}")
        entry = next((e for e in entries if e["entry_id"] == entry_id), {})
        if entry.get("state") not in (None, "not_loaded", "setup_in_progress"):
            break
        time.sleep(1)
    return entry


def entry_entities(api: HomeAssistantApi, entry_id: str) -> tuple[int, int, list]:
    """Return (devices, registered entities, live states) of one config entry."""
    devices, entities = api.websocket(
        "config/device_registry/list", "config/entity_registry/list"
    )
    devices = [d for d in devices if entry_id in d["config_entries"]]
    entity_ids = {e["entity_id"] for e in entities if e["config_entry_id"] == entry_id}
    # Entities disabled by default (diagnostics) are registered but have no state.
    states = [s for s in api.get_ok("/api/states") if s["entity_id"] in entity_ids]
    return len(devices), len(entity_ids), sorted(states, key=lambda s: s["entity_id"])


def describe_entry(api: HomeAssistantApi, entry: dict[str, Any]) -> str:
    """Print an entry's entity states; return a one-line summary with the counts."""
    # Entities appear shortly after setup, once the first refresh has data.
    deadline = time.monotonic() + (30 if entry.get("state") == "loaded" else 0)
    while True:
        devices, registered, states = entry_entities(api, entry["entry_id"])
        if states or time.monotonic() > deadline:
            break
        time.sleep(2)
    live = [s for s in states if s["state"] not in ("unavailable", "unknown")]
    for state in states:
        unit = state["attributes"].get("unit_of_measurement") or ""
        print(f"      {state['entity_id']} = {state['state']} {unit}".rstrip())
    return (
        f"{entry['title']!r} ({entry.get('state')}): {devices} device(s),"
        f" {registered} entities ({len(states)} enabled, {len(live)} with a value)"
    )


def add_entries(api: HomeAssistantApi, simulators: list[Simulator]) -> list[str]:
    """Add each simulated provider's entry unless it exists; return problems."""
    problems = []
    for sim in simulators:
        provider, values = sim.provider, sim.info.values
        identifier = values[provider.identifier]
        try:
            entry = find_entry(api, identifier)
            if entry is not None:
                say(f"{provider.label}: entry {entry['title']!r} exists already")
            else:
                say(f"{provider.label}: adding {identifier} through the config flow")
                entry = run_config_flow(api, provider, values)
                say(f"{provider.label}: created entry {entry['title']!r}")
                entry = wait_entry_loaded(api, entry["entry_id"]) or entry
            if entry.get("state") != "loaded":
                problems.append(
                    f"{provider.label}: entry {entry['title']!r} is"
                    f" {entry.get('state')} ({entry.get('reason')})"
                )
            say(f"{provider.label}: {describe_entry(api, entry)}")
        except DevError as err:
            problems.append(f"{provider.label}: {err}")
    for problem in problems:
        say(f"PROBLEM {problem}")
    if problems and (records := ev_cloud_problems()):
        print(f"  Warnings and errors about {DOMAIN} in {rel(HA_LOG)}:")
        for record in records[-5:]:
            print("    " + "\n    ".join(record[:40]))
    return problems


def mentions_ev_cloud(header: str) -> bool:
    """True for a log record from our loggers or about our entries."""
    return "custom_components.ev_cloud" in header or f"for {DOMAIN}" in header


def ev_cloud_problems() -> list[list[str]]:
    """Warning/error records (with tracebacks) about ev_cloud from HA's log."""
    try:
        lines = HA_LOG.read_text(errors="replace").splitlines()
    except OSError:
        return []
    records: list[list[str]] = []
    for line in lines:
        if LOG_RECORD_RE.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)  # a traceback or multi-line message
    return [
        record
        for record in records
        if mentions_ev_cloud(record[0])
        and any(f" {level} " in record[0] for level in ("WARNING", "ERROR", "CRITICAL"))
        and "has not been tested by Home Assistant" not in record[0]
    ]


# ---------------------------------------------------------------- foreground


class LogFollower:
    """Print new lines of home-assistant.log, filtered by EV_CLOUD_DEV_LOG."""

    def __init__(self) -> None:
        """Start at the end of the current log (what came before is in the file)."""
        self.inode = 0
        self.offset = 0
        self.show_record = False  # whether the current record (and traceback) shows
        with contextlib.suppress(OSError):
            stat = HA_LOG.stat()
            self.inode, self.offset = stat.st_ino, stat.st_size

    def poll(self) -> None:
        """Print what was appended since the last call."""
        try:
            stat = HA_LOG.stat()
        except OSError:
            return
        if stat.st_ino != self.inode or stat.st_size < self.offset:
            # HA rotates the log at every start: follow the new file from its start.
            self.inode, self.offset = stat.st_ino, 0
        if stat.st_size == self.offset:
            return
        with HA_LOG.open("rb") as log:
            log.seek(self.offset)
            chunk = log.read()
        # Keep a partial last line for the next call.
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        for line in chunk[:end].decode(errors="replace").splitlines():
            if LOG_RECORD_RE.match(line):
                self.show_record = LOG_MODE == "all" or (
                    LOG_MODE == "ev_cloud" and mentions_ev_cloud(line)
                )
            if self.show_record:
                print(line, flush=True)


def status_line(ha: HomeAssistant, simulators: list[Simulator]) -> str:
    """Return a one-line status: HA state, simulators, ev_cloud entities."""
    parts = []
    status, config = ha.api.request("GET", "/api/config", timeout=5)
    parts.append(f"HA {config.get('state') if status == 200 else 'not answering'}")
    parts += [
        f"{s.provider.simulator} {'up' if s.alive() else 'DOWN'}" for s in simulators
    ]
    status, states = ha.api.request("GET", "/api/states", timeout=10)
    if status == 200:
        entities, unavailable = 0, 0
        with contextlib.suppress(DevError):
            (registry,) = ha.api.websocket("config/entity_registry/list")
            ours = {e["entity_id"] for e in registry if e.get("platform") == DOMAIN}
            mine = [s for s in states if s["entity_id"] in ours]
            entities = len(mine)
            unavailable = sum(s["state"] == "unavailable" for s in mine)
        parts.append(f"{DOMAIN}: {entities} entities, {unavailable} unavailable")
    return " | ".join(parts)


def follow(ha: HomeAssistant, simulators: list[Simulator]) -> int:
    """Stay in the foreground: stream the log, restart HA when the UI asks for it."""
    follower = LogFollower()
    next_status = time.monotonic() + STATUS_EVERY
    reported_down: set[str] = set()
    while True:
        follower.poll()
        assert ha.proc is not None
        if not ha.alive():
            if ha.proc.returncode != RESTART_EXIT_CODE:
                say(f"Home Assistant exited (code {ha.proc.returncode}); stopping")
                return 1
            # Settings > System > Restart: HA exits with 100 and expects a restart.
            say("Home Assistant asked for a restart: starting it again")
            ha.start()
            record_pids(ha, simulators)
            ha.wait_running()
            say(f"Home Assistant is running again: {HA_URL}")
            confirm_http_config(ha.api)
        for sim in simulators:
            if not sim.alive() and sim.provider.simulator not in reported_down:
                reported_down.add(sim.provider.simulator)
                label, log = sim.provider.label, rel(sim.log_path)
                say(f"WARNING the {label} simulator exited; see {log}")
        if time.monotonic() >= next_status:
            next_status = time.monotonic() + STATUS_EVERY
            try:
                say(status_line(ha, simulators))
            except DevError as err:  # e.g. the token could not be refreshed
                say(f"Status unavailable: {err}")
        time.sleep(0.5)


def print_banner(
    simulators: list[Simulator], seconds: float, problems: list[str]
) -> None:
    """Print where everything is and how to log in."""
    rule = "=" * 72
    print(rule)
    print(f"  Home Assistant is ready ({seconds:.0f} s): {HA_URL}")
    if problems:
        print(f"  ({len(problems)} problem(s) with the {DOMAIN} entries: see above)")
    print(f"    user: {DEV_USER}    password: {DEV_PASSWORD}")
    print(f"    config: {rel(CONFIG_DIR)}    log: {rel(HA_LOG)}")
    for sim in simulators:
        print(f"    {sim.provider.label} simulator: {sim.describe()}")
        print(f"      (log: {rel(sim.log_path)})")
    print("  Edit custom_components/ev_cloud, then restart Home Assistant")
    print("  (Settings > System > Restart); this script starts it again.")
    log_what = {"all": "Home Assistant's log", "none": "a status line"}.get(
        LOG_MODE, "log lines of custom_components.ev_cloud"
    )
    print(f"  Showing {log_what} (EV_CLOUD_DEV_LOG=ev_cloud|all|none).")
    print("  Ctrl-C stops Home Assistant and the simulators.")
    print(rule, flush=True)


# ---------------------------------------------------------------------- main


class Stopper:
    """Turns the first SIGINT/SIGTERM/SIGHUP into Shutdown; a second one: hurry."""

    def __init__(self) -> None:
        """Install the handlers."""
        self.stopping = False
        self.forced = False
        # SIGHUP: the terminal was closed; stop in order rather than die at once.
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, _frame: object) -> None:
        """Signal handler."""
        if not self.stopping:
            self.stopping = True
            raise Shutdown(signal.Signals(signum).name)
        if not self.forced:
            self.forced = True
            say("Second signal: killing instead of waiting")

    def force(self) -> bool:
        """True once a second signal asked to stop without waiting."""
        return self.forced


def main() -> int:
    """Run everything; always stop what was started."""
    sys.stdout = SafeOutput(sys.stdout)
    stopper = Stopper()
    started = time.monotonic()
    ha = HomeAssistant(stopper.force)
    simulators: list[Simulator] = []
    code = 0
    try:
        DEV_DIR.mkdir(exist_ok=True)
        kill_leftovers()
        if "--reset" in sys.argv[1:]:
            say(f"Removing {rel(DEV_DIR)} (--reset)")
            shutil.rmtree(DEV_DIR)
            DEV_DIR.mkdir()
        ha.prepare_config()
        HA_CONSOLE_LOG.unlink(missing_ok=True)  # one run's output (restarts append)
        for index, provider in enumerate(PROVIDERS):
            sim = Simulator(provider, SIM_BASE_PORT + index)
            simulators.append(sim)
            say(f"Starting the {provider.label} simulator on port {sim.port}")
            sim.start()
            say(f"  {provider.label} simulator: {sim.describe()}")
        ha.start()
        record_pids(ha, simulators)
        ha.authenticate()
        ha.wait_running()
        say(f"Home Assistant is running ({time.monotonic() - started:.0f} s)")
        confirm_http_config(ha.api)
        problems = add_entries(ha.api, simulators)
        print_banner(simulators, time.monotonic() - started, problems)
        if EXIT_AFTER_SETUP:
            return 1 if problems else 0
        code = follow(ha, simulators)
    except Shutdown as sig:
        print()
        say(f"{sig}: stopping")
    except DevError as err:
        say(f"ERROR {err}")
        code = 1
    finally:
        stopper.stopping = True  # from here on a signal only hurries the stop
        ha.stop()
        for sim in simulators:
            sim.stop(stopper.force)
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(PIDS_FILE.read_text().split()[0]) == os.getpid():
                PIDS_FILE.unlink()  # only our own: another run may be going on
        say("Stopped")
    return code


def record_pids(ha: HomeAssistant, simulators: list[Simulator]) -> None:
    """Note the children's pids, so a later run can end them if this one is killed."""
    pids = [p.pid for p in [ha.proc, *(s.proc for s in simulators)] if p is not None]
    # This process first: a second develop can tell it is still running.
    PIDS_FILE.write_text("".join(f"{pid}\n" for pid in [os.getpid(), *pids]))


if __name__ == "__main__":
    sys.exit(main())
