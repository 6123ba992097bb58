"""The Home Assistant process: config dir, onboarding or login, restart, stop."""

from collections.abc import Callable
import contextlib
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import time
from typing import Any

from .api import HomeAssistantApi
from .common import DOMAIN, INTEGRATION_SOURCE, PYTHON, HarnessError, rel, say
from .logs import last_log_record
from .processes import never, port_is_free, stop_process

RESTART_EXIT_CODE = 100  # what HA exits with when a restart is requested
STOP_TIMEOUT = 90.0

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
        writer: str = "scripts/harness",
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
        # Its own address stands for the one on the internet, so that services
        # that push (EVLinkHA's webhook) are shown where to send.
        self.api.websocket({"type": "config/core/update", "external_url": self.url})

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

    def kill(self) -> None:
        """SIGKILL Home Assistant, as a crash or a power cut ends it.

        Nothing is written on the way out (no stop event, no ``.storage`` flush);
        what HA wrote before stays. ``start()`` and ``wait_running()`` bring it
        back on the same config dir (the tokens stay valid).
        """
        assert self.proc is not None
        say(f"Killing Home Assistant (SIGKILL to pid {self.proc.pid})")
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        # Helpers it started (pip installs, ...) die with it, as in a crash.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        say(f"Home Assistant was killed (code {self.proc.returncode})")

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
