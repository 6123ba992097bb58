"""Run the provider simulators and a real Home Assistant, and drive it through its API.

Shared by ``scripts/develop.py`` (a development instance in ``.dev/``) and the
end-to-end tests in ``tests/e2e/`` (a throw-away instance in a temporary folder).
Everything here is parametrised: config dir, Home Assistant port, simulator ports
and log paths. It needs the Home Assistant virtualenv's interpreter (aiohttp);
the rest is the standard library.

Pieces:

- ``PROVIDERS``: one ``Provider`` per simulated service (how its simulator is
  started, which keys it prints, how a user goes through the config flow);
- ``Simulator``: one ``python -m tests.simulators NAME`` process;
- ``HomeAssistantApi``: the REST, auth and websocket client (holds the tokens);
- ``HomeAssistant``: the ``python -m homeassistant`` process, its config dir,
  onboarding or login, waiting until RUNNING, restart and a clean stop;
- config-flow and registry helpers (``run_config_flow``, ``wait_entry_loaded``,
  ``entry_entities``, ``find_entry``) and the log check (``ev_cloud_problems``).

To add a provider: give ``tests.simulators`` a simulator for it and append a
``Provider`` to ``PROVIDERS``.
"""

import asyncio
from collections.abc import Callable, Iterable
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
PYTHON = sys.executable  # the .venv-ha interpreter
DOMAIN = "ev_cloud"
INTEGRATION_SOURCE = ROOT / "custom_components" / DOMAIN
RESTART_EXIT_CODE = 100  # what HA exits with when a restart is requested
STOP_TIMEOUT = 90.0

LOG_RECORD_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
# Expected once per start for every custom integration; not a problem of ours.
UNTESTED_WARNING = "has not been tested by Home Assistant"

CONFIGURATION_YAML = """\
# Written by {writer} on every start: local edits here are lost.
# Put extra YAML for your experiments in packages/<name>.yaml.
homeassistant:
  packages: !include_dir_named packages

default_config:

logger:
  default: info
  logs:
    custom_components.ev_cloud: debug
"""
# Since 2026.x HA imports http: from YAML once into .storage/http and then ignores
# it (with a repair warning while it stays), so it is written only until then.
HTTP_YAML = """
http:
  server_host: 127.0.0.1
  server_port: {port}
"""


class HarnessError(Exception):
    """A step failed; the message says what and what to do."""


def say(message: str) -> None:
    """Print a timestamped progress line."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rel(path: Path) -> str:
    """Path relative to the repository, for messages."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


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
class Provider:
    """A simulated provider: its simulator and the config entry made for it."""

    simulator: str  # NAME in ``python -m tests.simulators NAME --port PORT``
    label: str  # for messages
    needs: tuple[str, ...]  # keys the simulator prints that the entry is made from
    identifier: str  # key whose value finds an existing entry (e.g. the serial)
    menu_path: tuple[str, ...]  # next_step_id chosen in each menu after step "user"
    # The forms reached through the menus, in order: (step_id, what the user types).
    forms: tuple[tuple[str, Callable[[dict[str, str]], dict[str, Any]]], ...]


PROVIDERS: tuple[Provider, ...] = (
    Provider(
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
    Provider(
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
PROVIDERS_BY_NAME = {provider.simulator: provider for provider in PROVIDERS}


# ------------------------------------------------------------------- processes


def never() -> bool:
    """A ``force`` callback for callers without a second-signal notion."""
    return False


def port_is_free(port: int) -> bool:
    """Return True when nothing listens on 127.0.0.1:``port``."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def free_port() -> int:
    """Return a port on 127.0.0.1 that is free right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


class Simulator:
    """One provider simulator running as ``python -m tests.simulators NAME``."""

    def __init__(self, provider: Provider, port: int, log_path: Path) -> None:
        """Prepare (not start) the simulator; port 0 lets it pick a free one."""
        self.provider = provider
        self.port = port
        self.log_path = log_path
        self.info = SimulatorInfo()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port_hint: str = "") -> None:
        """Start it and wait until its start-up lines tell its URLs."""
        if self.port and not port_is_free(self.port):
            raise HarnessError(
                f"port {self.port} for the {self.provider.label} simulator is in use"
                + (f"; {port_hint}" if port_hint else "")
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
            start_new_session=True,  # Ctrl-C reaches the caller only; it stops us
        )
        threading.Thread(target=self._pump, daemon=True).start()
        deadline = time.monotonic() + 60
        while not all(key in self.info.values for key in self.provider.needs):
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the pump thread write the last lines
                raise HarnessError(
                    f"the {self.provider.label} simulator exited with code"
                    f" {self.proc.returncode}:\n  " + "\n  ".join(self.info.lines[-15:])
                )
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"the {self.provider.label} simulator did not print"
                    f" {', '.join(self.provider.needs)} in 60 s; see {self.log_path}"
                )
            time.sleep(0.1)

    def _pump(self) -> None:
        """Copy the simulator's output to its log file and keep the lines (thread)."""
        assert self.proc is not None
        assert self.proc.stdout is not None
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:  # one run's output
            for raw in self.proc.stdout:
                log.write(raw)
                log.flush()
                if len(self.info.lines) < 200:  # the start-up lines are all we parse
                    self.info.add(raw.decode(errors="replace").rstrip())

    @property
    def values(self) -> dict[str, str]:
        """The ``key=value`` pairs it printed at start."""
        return self.info.values

    def alive(self) -> bool:
        """Return True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def describe(self) -> str:
        """Return the values an entry is made from, for messages."""
        return " ".join(f"{key}={self.info.values[key]}" for key in self.provider.needs)

    def stop(self, force: Callable[[], bool] = never) -> None:
        """Stop it (SIGTERM, then SIGKILL after a few seconds)."""
        if self.proc is not None:
            stop_process(self.proc, f"the {self.provider.label} simulator", 10, force)


# ------------------------------------------------------------------- HTTP API


class HomeAssistantApi:
    """Minimal client for HA's REST, auth and websocket API, holding the tokens."""

    def __init__(self, url: str) -> None:
        """Start without tokens; onboarding or login provides them."""
        self.url = url
        # Onboarding and the login flow want an IndieAuth client id: HA's frontend.
        self.client_id = f"{url}/"
        self.redirect_uri = f"{url}/?auth_callback=1"
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
            self.url + path, data=data, headers=headers, method=method
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
            raise HarnessError("no access token yet")
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
            "POST", "/auth/token", form=form | {"client_id": self.client_id}, auth=False
        )
        if status != 200 or not isinstance(data, dict):
            raise HarnessError(f"/auth/token answered {status}: {data}")
        self.access_token = data["access_token"]
        self.refresh_token = data.get("refresh_token", self.refresh_token)
        self.expires_at = time.monotonic() + float(data.get("expires_in", 1800))

    def post_ok(self, path: str, body: dict[str, Any] | None = None) -> Any:
        """POST with the token; raise HarnessError unless HA answers 200."""
        status, data = self.request("POST", path, body if body is not None else {})
        if status != 200:
            raise HarnessError(f"POST {path} answered {status}: {data}")
        return data

    def get_ok(self, path: str) -> Any:
        """GET with the token; raise HarnessError unless HA answers 200."""
        status, data = self.request("GET", path)
        if status != 200:
            raise HarnessError(f"GET {path} answered {status}: {data}")
        return data

    def websocket(self, *commands: str | dict[str, Any]) -> list[Any]:
        """Run websocket commands; return their results, raise if one fails.

        A command is its type (``"config/entity_registry/list"``) or a whole
        message without ``id`` (``{"type": "call_service", ...}``).
        """
        replies = self.websocket_replies(*commands)
        for command, reply in zip(commands, replies, strict=True):
            if not reply.get("success"):
                name = command if isinstance(command, str) else command["type"]
                raise HarnessError(f"websocket {name} failed: {reply.get('error')}")
        return [reply["result"] for reply in replies]

    def websocket_replies(self, *commands: str | dict[str, Any]) -> list[Any]:
        """Run websocket commands; return HA's whole replies (success or error)."""
        messages = [
            {"type": command} if isinstance(command, str) else dict(command)
            for command in commands
        ]
        try:
            return asyncio.run(self._websocket(messages))
        except (aiohttp.ClientError, OSError, ValueError) as err:  # incl. timeouts
            names = ", ".join(message["type"] for message in messages)
            raise HarnessError(f"websocket {names}: {err!r}") from err

    async def _websocket(self, messages: list[dict[str, Any]]) -> list[Any]:
        """Authenticate on /api/websocket and send ``messages`` one by one."""
        url = self.url.replace("http", "ws", 1) + "/api/websocket"
        replies = []
        async with (
            asyncio.timeout(60),
            aiohttp.ClientSession() as session,
            session.ws_connect(url) as ws,
        ):
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token()})
            if (msg := await ws.receive_json()).get("type") != "auth_ok":
                raise HarnessError(f"websocket authentication failed: {msg}")
            for msg_id, message in enumerate(messages, start=1):
                await ws.send_json(message | {"id": msg_id})
                while (reply := await ws.receive_json()).get("id") != msg_id:
                    pass
                replies.append(reply)
        return replies

    def call_service(
        self,
        domain: str,
        service: str,
        data: dict[str, Any] | None = None,
        target: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call an action as the frontend does (websocket); return HA's reply."""
        message: dict[str, Any] = {
            "type": "call_service",
            "domain": domain,
            "service": service,
            "service_data": data or {},
        }
        if target is not None:
            message["target"] = target
        (reply,) = self.websocket_replies(message)
        return dict(reply)

    def long_lived_token(self, name: str, days: int = 1) -> str:
        """Create a long-lived access token (Profile > Security in the UI)."""
        (token,) = self.websocket(
            {
                "type": "auth/long_lived_access_token",
                "client_name": name,
                "lifespan": days,
            }
        )
        return str(token)


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


class HomeAssistant:
    """The Home Assistant process, its API and the steps that set it up."""

    def __init__(
        self,
        config_dir: Path,
        port: int,
        *,
        console_log: Path,
        username: str,
        password: str,
        name: str = "Developer",
        start_timeout: float = 900,
        force: Callable[[], bool] = never,
        port_hint: str = "",
        reset_hint: str = "",
        writer: str = "scripts/ha_harness.py",
    ) -> None:
        """Prepare (not start) Home Assistant; ``force`` says: stop without waiting.

        ``port_hint`` and ``reset_hint`` end the messages about a busy port and a
        failed login (e.g. which setting to change).
        """
        self.config_dir = config_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = config_dir / "home-assistant.log"
        self.console_log = console_log
        self.username, self.password, self.name = username, password, name
        self.start_timeout = start_timeout
        self.force = force
        self.port_hint, self.reset_hint = port_hint, reset_hint
        self.writer = writer
        self.api = HomeAssistantApi(self.url)
        self.proc: subprocess.Popen[bytes] | None = None

    # --- config dir ----------------------------------------------------------------

    @property
    def http_store(self) -> Path:
        """Where HA 2026.x keeps its HTTP settings."""
        return self.config_dir / ".storage" / "http"

    def prepare_config(
        self, *, install: str = "link", source: Path = INTEGRATION_SOURCE
    ) -> None:
        """Write configuration.yaml and put the integration into the config dir.

        ``install="link"`` links custom_components/ev_cloud (edits show after a
        restart); ``"copy"`` copies it (or ``source``) as a user installing it by
        hand would.
        """
        (self.config_dir / "packages").mkdir(parents=True, exist_ok=True)
        yaml = CONFIGURATION_YAML.format(writer=self.writer)
        if self.http_yaml_needed():
            yaml += HTTP_YAML.format(port=self.port)
        (self.config_dir / "configuration.yaml").write_text(yaml)
        folder = self.config_dir / "custom_components"
        folder.mkdir(exist_ok=True)
        target_dir = folder / DOMAIN
        if install == "copy":
            if target_dir.is_symlink():
                target_dir.unlink()
            elif target_dir.exists():
                shutil.rmtree(target_dir)
            shutil.copytree(
                source,
                target_dir,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
            return
        target = os.path.relpath(INTEGRATION_SOURCE, folder)
        if target_dir.is_symlink() and os.readlink(target_dir) == target:
            return
        if target_dir.is_dir() and not target_dir.is_symlink():
            raise HarnessError(
                f"{target_dir} is a real folder; remove it"
                + (f" ({self.reset_hint})" if self.reset_hint else "")
            )
        target_dir.unlink(missing_ok=True)
        target_dir.symlink_to(target, target_is_directory=True)

    def http_yaml_needed(self) -> bool:
        """Whether configuration.yaml must carry http:, fixing .storage/http if stale.

        HA 2026.x keeps its HTTP settings in .storage/http (imported once from YAML).
        If they do not match 127.0.0.1:port, the file is removed so that HA imports
        http: from YAML again on this start.
        """
        try:
            data = json.loads(self.http_store.read_text())["data"]
        except OSError, ValueError, KeyError, TypeError:
            return True  # not imported yet: YAML is the source
        if not isinstance(data, dict) or "stable" not in data:
            return True  # a layout this script does not know: let HA read YAML
        pending = data.get("pending")
        active = pending if pending and pending.get("error") is None else data["stable"]
        wanted = {"server_port": self.port, "server_host": ["127.0.0.1"]}
        if {key: active.get(key) for key in wanted} != wanted:
            say(
                f"HTTP settings in {rel(self.http_store)} are not 127.0.0.1:{self.port}"
                f" (port {active.get('server_port')},"
                f" hosts {active.get('server_host')});"
                " removing them so HA imports them from configuration.yaml again"
            )
            self.http_store.unlink()
            return True
        return not data.get("yaml_migration_done", False)

    def confirm_http_config(self) -> None:
        """Promote HTTP settings HA imported from YAML, as a user confirms them.

        An imported config is on trial: unless promoted within 5 minutes, HA reverts
        to its defaults (all interfaces) and restarts. Reaching HA proves it works.
        """
        try:
            (config,) = self.api.websocket("http/config")
        except HarnessError:
            return  # an HA without stored HTTP settings: configuration.yaml rules
        if config.get("active_config_type") == "pending":
            self.api.websocket("http/config/promote")
            say(
                f"Confirmed HA's HTTP settings (127.0.0.1:{self.port})"
                " so that it keeps them"
            )

    def onboarding_done_steps(self) -> set[str]:
        """Steps an earlier run completed, from HA's own onboarding store."""
        store = self.config_dir / ".storage" / "onboarding"
        try:
            return set(json.loads(store.read_text())["data"]["done"])
        except OSError, ValueError, KeyError, TypeError:
            return set()

    # --- process -------------------------------------------------------------------

    def start(self) -> None:
        """Start ``python -m homeassistant`` with the config dir."""
        if not port_is_free(self.port):
            raise HarnessError(
                f"something already listens on 127.0.0.1:{self.port}"
                + (f"; {self.port_hint}" if self.port_hint else "")
            )
        say(f"Starting Home Assistant (console output: {rel(self.console_log)})")
        self.console_log.parent.mkdir(parents=True, exist_ok=True)
        with self.console_log.open("ab") as console:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "homeassistant", "--config", str(self.config_dir)],
                # Not the repository: "python -m" puts the working directory first
                # on sys.path, and HA would import the repository's
                # custom_components instead of the config dir's.
                cwd=self.config_dir,
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # we stop it with the stop action, in order
            )

    def alive(self) -> bool:
        """Return True while the HA process runs."""
        return self.proc is not None and self.proc.poll() is None

    def wait_for(
        self, what: str, check: Callable[[], bool], timeout: float | None = None
    ) -> None:
        """Poll ``check`` until True, with progress; fail if HA exits or times out."""
        limit = self.start_timeout if timeout is None else timeout
        start = last_report = time.monotonic()
        while not check():
            if not self.alive():
                assert self.proc is not None
                raise HarnessError(
                    f"Home Assistant exited with code {self.proc.returncode} while"
                    f" waiting for {what}; see {rel(self.console_log)}"
                    f" and {rel(self.log)}"
                )
            elapsed = time.monotonic() - start
            if elapsed > limit:
                raise HarnessError(
                    f"no {what} after {limit:.0f} s; see {rel(self.log)}"
                )
            if time.monotonic() - last_report >= 20:
                last_report = time.monotonic()
                # The first start installs the frontend & co from PyPI: show it moves.
                last = last_log_record(self.log)
                say(f"  ... {elapsed:.0f} s, waiting for {what}; log: {last}")
            time.sleep(0.5)

    def authenticate(self) -> None:
        """Onboard a fresh HA, or log the user in on one onboarded earlier."""
        done = self.onboarding_done_steps()
        if "user" not in done:
            self.wait_for("the onboarding API", self._onboarding_api_up)
            say(f"Onboarding: creating user {self.username!r}")
            status, data = self.api.request(
                "POST",
                "/api/onboarding/users",
                {
                    "client_id": self.api.client_id,
                    "name": self.name,
                    "username": self.username,
                    "password": self.password,
                    "language": "en",
                },
                auth=False,
            )
            if status != 200:
                raise HarnessError(f"onboarding user step answered {status}: {data}")
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
                {
                    "client_id": self.api.client_id,
                    "redirect_uri": self.api.redirect_uri,
                },
            )
            say("Onboarding done")

    def login(self) -> None:
        """Log in through /auth/login_flow (HA was onboarded earlier)."""
        say(f"Already onboarded: logging in as {self.username!r}")
        flow: dict[str, Any] = {}

        def login_flow_up() -> bool:
            """True once /auth/login_flow starts a flow (auth is set up)."""
            status, data = self.api.request(
                "POST",
                "/auth/login_flow",
                {
                    "client_id": self.api.client_id,
                    "handler": ["homeassistant", None],
                    "redirect_uri": self.api.redirect_uri,
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
            {
                "client_id": self.api.client_id,
                "username": self.username,
                "password": self.password,
            },
            auth=False,
        )
        if not isinstance(data, dict) or data.get("type") != "create_entry":
            raise HarnessError(
                f"login as {self.username!r} failed ({status}: {data})"
                + (f"; {self.reset_hint}" if self.reset_hint else "")
            )
        self.api.exchange_code(data["result"])

    def wait_running(self) -> None:
        """Wait until GET /api/config reports state RUNNING (start-up finished)."""

        def running() -> bool:
            """True once HA reports that its start-up finished."""
            status, data = self.api.request("GET", "/api/config")
            return status == 200 and data.get("state") == "RUNNING"

        self.wait_for("Home Assistant to finish starting", running)

    def restart(self, before_start: Callable[[], None] | None = None) -> None:
        """Restart with the ``homeassistant.restart`` action, as Settings > System.

        HA exits with code 100 and expects its supervisor (us) to start it again.
        ``before_start`` runs between the two (e.g. to keep a copy of the log).
        """
        assert self.proc is not None
        say("Restarting Home Assistant (homeassistant.restart action)")
        status, data = self.api.request(
            "POST", "/api/services/homeassistant/restart", {}, timeout=30
        )
        if status not in (0, 200):
            raise HarnessError(f"homeassistant.restart answered {status}: {data}")
        deadline = time.monotonic() + STOP_TIMEOUT
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.alive():
            raise HarnessError(f"Home Assistant did not exit in {STOP_TIMEOUT:.0f} s")
        if self.proc.returncode != RESTART_EXIT_CODE:
            raise HarnessError(
                f"Home Assistant exited with code {self.proc.returncode}"
                f" instead of {RESTART_EXIT_CODE} on restart"
            )
        if before_start is not None:
            before_start()
        self.start()
        self.wait_running()

    def stop(self) -> None:
        """Stop HA with the homeassistant.stop action; SIGTERM/SIGKILL as fallbacks."""
        if self.proc is None or not self.alive():
            return
        asked = False
        if self.api.access_token is not None:
            say("Stopping Home Assistant (homeassistant.stop action) ...")
            with contextlib.suppress(HarnessError):
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


# ---------------------------------------------------------------- config entries


def list_entries(api: HomeAssistantApi) -> list[dict[str, Any]]:
    """Return the ev_cloud config entries."""
    return list(api.get_ok(f"/api/config/config_entries/entry?domain={DOMAIN}"))


def find_entry(api: HomeAssistantApi, identifier: str) -> dict[str, Any] | None:
    """Return the ev_cloud entry whose title or device carries ``identifier``."""
    entries = list_entries(api)
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
    api: HomeAssistantApi, provider: Provider, sim: dict[str, str]
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
    except HarnessError:
        # Leave no half-finished flow behind in HA's UI.
        api.request("DELETE", f"{base}/{flow_id}")
        raise
    return dict(step["result"])


def expect_step(
    step: Any, kind: str, *, step_id: str | None = None, choice_in: str | None = None
) -> None:
    """Raise HarnessError (with HA's answer) unless the flow is where we expect."""
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
        raise HarnessError(f"config flow: expected a {wanted}, HA answered: {step}")


def wait_entry_loaded(
    api: HomeAssistantApi, entry_id: str, timeout: float = 60
) -> dict[str, Any]:
    """Wait until the entry leaves setup (loaded, or failed with a reason)."""
    deadline = time.monotonic() + timeout
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        entry = next((e for e in list_entries(api) if e["entry_id"] == entry_id), {})
        if entry.get("state") not in (None, "not_loaded", "setup_in_progress"):
            break
        time.sleep(0.5)
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


# ----------------------------------------------------------------------- log


MENTIONS_DOMAIN_RE = re.compile(rf"\b{DOMAIN}\b")


def mentions_ev_cloud(header: str) -> bool:
    """True for a log record from our loggers or about ev_cloud.

    That covers custom_components.ev_cloud's own loggers, "... for ev_cloud"
    (entry setup), "custom integration 'ev_cloud' ..." (deprecations that HA's
    frame helper reports) and "Setup of ev_cloud is taking ...".
    """
    return MENTIONS_DOMAIN_RE.search(header) is not None


def log_records(lines: Iterable[str]) -> list[list[str]]:
    """Group log lines into records: a header line and its continuation lines."""
    records: list[list[str]] = []
    for line in lines:
        if LOG_RECORD_RE.match(line) or not records:
            records.append([line])
        else:
            records[-1].append(line)  # a traceback or multi-line message
    return records


def ev_cloud_problems(
    log: Path, *, include_tracebacks: bool = False
) -> list[list[str]]:
    """Warning/error records (with tracebacks) about ev_cloud from HA's log.

    With ``include_tracebacks``, also records of any logger whose traceback runs
    through custom_components/ev_cloud (an exception escaping into HA's core).
    """
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for record in log_records(lines):
        header = record[0]
        if not any(
            f" {level} " in header for level in ("WARNING", "ERROR", "CRITICAL")
        ):
            continue
        if UNTESTED_WARNING in header:
            continue
        ours = mentions_ev_cloud(header)
        if include_tracebacks and not ours:
            ours = any(f"custom_components/{DOMAIN}/" in line for line in record[1:])
        if ours:
            found.append(record)
    return found
