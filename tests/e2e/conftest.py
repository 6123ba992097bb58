"""A real Home Assistant with EV Cloud and the provider simulators, for e2e tests.

Run through ``scripts/e2e`` (the Home Assistant virtualenv's Python, this folder's
pytest.ini). The session fixture ``ha`` starts the simulators and the pinned Home
Assistant on a free port of 127.0.0.1 with a temporary config dir, installs
custom_components/ev_cloud by copying it (as a user would), onboards a user and
adds one entry per simulated provider through the config flow. At the end it stops
Home Assistant with the ``homeassistant.stop`` action, then the simulators, and
leaves HA's log and the simulators' output in ``tests/e2e/artifacts/``.

The fixture's contract (the browser check relies on it): ``url``, ``username``,
``password``, ``token`` (long-lived), ``artifacts``, ``config_dir``, ``entries``
(provider name -> entry_id; kept up to date when a test re-adds an entry) and
``sims`` (provider name -> the simulator's printed ``key=value`` pairs). Each test
leaves Home Assistant running with every entry loaded.

``E2EHomeAssistant`` has the helpers: states and registries, options flows,
actions whose answer is not awaited, the simulators as a user's curl (and their
control endpoints: a failing OVMS car, EV-Monitor down or holding its answers),
a restart, and a crash (``kill``, SIGKILL, then ``start_again``).
"""

import base64
from collections.abc import Callable, Iterator
import contextlib
import json
import os
from pathlib import Path
import shutil
import sys
import tempfile
import threading
import time
from typing import Any
import urllib.parse
import urllib.request

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from harness.api import HomeAssistantApi  # noqa: E402
from harness.common import INTEGRATION_SOURCE, HarnessError, say  # noqa: E402
from harness.flows import (  # noqa: E402
    FRONTEND_BASE_HEADER,
    entry_entities,
    list_entries,
    run_config_flow,
    set_form_value,
    shown_values,
    wait_entry_loaded,
)
from harness.home_assistant import HomeAssistant  # noqa: E402
from harness.processes import free_port  # noqa: E402
from harness.simulators import Simulator, provider_names  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
USERNAME, PASSWORD = "e2e", "e2e-password"
START_TIMEOUT = float(os.environ.get("EV_CLOUD_E2E_TIMEOUT", "600"))
# The integration to install (default: this repository's custom_components/ev_cloud),
# e.g. an unpacked release, to check what users download.
INTEGRATION = Path(os.environ.get("EV_CLOUD_E2E_INTEGRATION", INTEGRATION_SOURCE))
# Keep the temporary config dir after the run (its path is printed).
KEEP_CONFIG = os.environ.get("EV_CLOUD_E2E_KEEP") == "1"
NO_VALUE = ("unavailable", "unknown")
# Entity ids of sensors that hold the last of an event (unknown until one).
LAST_EVENT = ("_last_charging_session", "_last_command")


class E2EHomeAssistant:
    """The running instance the tests talk to, with small helpers."""

    def __init__(
        self,
        hass: HomeAssistant,
        simulators: dict[str, Simulator],
        artifacts: Path,
    ) -> None:
        """Wrap a started, onboarded Home Assistant and its simulators."""
        self.hass = hass
        self.api: HomeAssistantApi = hass.api
        self.url = hass.url
        self.username = hass.username
        self.password = hass.password
        self.config_dir = hass.config_dir
        self.artifacts = artifacts
        self.simulators = simulators
        self.sims = {name: dict(sim.values) for name, sim in simulators.items()}
        self.entries: dict[str, str] = {}
        self.token = ""
        self.log_parts: list[Path] = []  # HA's log of earlier runs (before restarts)

    # --- states and registries ----------------------------------------------------

    def states(self) -> dict[str, dict[str, Any]]:
        """All entity states, by entity_id."""
        return {s["entity_id"]: s for s in self.api.get_ok("/api/states")}

    def state(self, entity_id: str) -> dict[str, Any]:
        """One entity's state (fails when HA does not know it)."""
        status, data = self.api.request("GET", f"/api/states/{entity_id}")
        assert status == 200, f"GET /api/states/{entity_id} answered {status}: {data}"
        return dict(data)

    def wait_until[T](
        self, what: str, check: Callable[[], T | None], timeout: float = 60
    ) -> T:
        """Poll ``check`` until it returns something truthy; fail after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.5)

    def wait_state(
        self, entity_id: str, wanted: str | Callable[[str], bool], timeout: float = 60
    ) -> dict[str, Any]:
        """Wait until ``entity_id``'s state equals (or satisfies) ``wanted``."""
        last: dict[str, Any] = {}

        def check() -> dict[str, Any] | None:
            status, data = self.api.request("GET", f"/api/states/{entity_id}")
            if status != 200:
                return None
            last.update(data)
            ok = wanted(data["state"]) if callable(wanted) else data["state"] == wanted
            return dict(data) if ok else None

        try:
            return self.wait_until(f"{entity_id} to be {wanted}", check, timeout)
        except pytest.fail.Exception:
            pytest.fail(f"{entity_id} never became {wanted!r}; last: {last}")

    def entry(self, provider: str) -> dict[str, Any]:
        """The current config entry of a provider."""
        entry_id = self.entries[provider]
        found = [e for e in list_entries(self.api) if e["entry_id"] == entry_id]
        assert found, f"entry {entry_id} of {provider} is gone"
        return found[0]

    def wait_entities(self, provider: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Wait until the provider's entry is loaded and its entities have values.

        Returns the enabled entities' states. "Has values": none is unavailable,
        one at least has a value, and at most a few are unknown (15 %, or 2 of a
        small set): some legitimately are, e.g. a current while nothing charges,
        the last push before anything was pushed, or a logbook's last upload and
        last error before its first upload. Sensors of a last event that may
        never have happened here (a charging session, a command) do not count.
        """
        entry_id = self.entries[provider]
        entry = wait_entry_loaded(self.api, entry_id, timeout)
        assert entry.get("state") == "loaded", f"{provider} entry: {entry}"

        without: list[str] = []  # the entities without a value at the last look

        def check() -> list[dict[str, Any]] | None:
            _, _, states = entry_entities(self.api, entry_id)
            without[:] = [
                f"{s['entity_id']}={s['state']}"
                for s in states
                if s["state"] in NO_VALUE
            ]
            if not states or any(s["state"] == "unavailable" for s in states):
                return None
            counted = [s for s in states if not s["entity_id"].endswith(LAST_EVENT)]
            unknown = [s for s in counted if s["state"] in NO_VALUE]
            few = max(2, 0.15 * len(counted))
            ok = len(unknown) <= few and len(unknown) < len(counted)
            return states if ok else None

        try:
            return self.wait_until(f"the {provider} entities", check, timeout)
        except pytest.fail.Exception as err:
            pytest.fail(f"{err.msg}; without a value: {without}")

    def device_id(self, entity_id: str) -> str:
        """The device an entity belongs to (as the UI's device picker gives it)."""
        (entities,) = self.api.websocket("config/entity_registry/list")
        for entity in entities:
            if entity["entity_id"] == entity_id:
                assert entity["device_id"], f"{entity_id} has no device"
                return str(entity["device_id"])
        pytest.fail(f"{entity_id} is not in the entity registry")

    def call_service_detached(
        self, domain: str, service: str, data: dict[str, Any] | None = None
    ) -> threading.Thread:
        """Call an action without waiting for its answer (one that may never come).

        The call runs in a daemon thread; its answer, or the error when Home
        Assistant goes away meanwhile, is dropped.
        """

        def call() -> None:
            with contextlib.suppress(HarnessError):
                self.api.call_service(domain, service, data)

        thread = threading.Thread(target=call, daemon=True, name=f"{service} call")
        thread.start()
        return thread

    # --- config entries ------------------------------------------------------------

    def set_options(self, provider: str, **changes: Any) -> dict[str, Any]:
        """Change an entry's options in its options flow, as a user does.

        The form is submitted with what it shows (each field's current value or
        default) and ``changes``, found at the top or inside a section. Returns
        what was submitted; the entry reloads.
        """
        path = "/api/config/config_entries/options/flow"
        headers = {FRONTEND_BASE_HEADER: self.url}
        step = self.api.post_ok(
            path, {"handler": self.entries[provider]}, headers=headers
        )
        assert step.get("type") == "form", step
        schema = step.get("data_schema") or []
        values = shown_values(schema)
        for key, value in changes.items():
            assert set_form_value(values, schema, key, value), (
                f"the {provider} options have no field {key!r}: {schema}"
            )
        done = self.api.post_ok(f"{path}/{step['flow_id']}", values, headers=headers)
        assert done.get("type") == "create_entry", done
        return values

    def options_shown(self, provider: str) -> dict[str, Any]:
        """What the options flow's form shows now (the flow is then abandoned)."""
        path = "/api/config/config_entries/options/flow"
        step = self.api.post_ok(path, {"handler": self.entries[provider]})
        self.api.request("DELETE", f"{path}/{step['flow_id']}")
        return shown_values(step.get("data_schema") or [])

    def add_entry(self, provider: str) -> str:
        """Add a provider's entry through the config flow; remember and return it."""
        sim = self.simulators[provider]
        entry = run_config_flow(self.api, sim.demo, sim.values)
        self.entries[provider] = entry["entry_id"]
        loaded = wait_entry_loaded(self.api, entry["entry_id"])
        assert loaded.get("state") == "loaded", f"new {provider} entry: {loaded}"
        return str(entry["entry_id"])

    def ensure_entries(self) -> None:
        """Re-add an entry a failed test left out (so later tests can run)."""
        existing = {e["entry_id"] for e in list_entries(self.api)}
        for provider, entry_id in self.entries.items():
            if entry_id not in existing:
                say(f"Re-adding the {provider} entry a test removed")
                self.add_entry(provider)

    # --- simulators ----------------------------------------------------------------

    def goe_status(self, *keys: str) -> dict[str, Any]:
        """What the go-e simulator's cloud API says (as a user's curl would)."""
        sim = self.sims["goe"]
        req = urllib.request.Request(  # noqa: S310 (http://127.0.0.1)
            f"{sim['cloud_url']}/api/status?filter={','.join(keys)}",
            headers={"Authorization": f"Bearer {sim['token']}"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return dict(json.loads(resp.read()))

    def ovms_status(self, vehicle: str) -> dict[str, Any]:
        """A vehicle's status record from the OVMS simulator's REST API."""
        sim = self.sims["ovms"]
        query = f"username={sim['username']}&password={sim['password']}"
        with urllib.request.urlopen(  # noqa: S310 (http://127.0.0.1)
            f"{sim['server_url']}/api/status/{vehicle}?{query}", timeout=10
        ) as resp:
            return dict(json.loads(resp.read()))

    def ovms_set_failing(self, vehicle: str, failing: bool) -> None:
        """Make the OVMS server answer 500 on a car's records (or stop it).

        Through the demo simulator's control endpoint, outside its /api/.
        """
        req = urllib.request.Request(  # noqa: S310 (http://127.0.0.1)
            f"{self.sims['ovms']['server_url']}/_sim/vehicles/{vehicle}/failing",
            data=json.dumps({"failing": failing}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            assert json.loads(resp.read())["failing"] is failing

    def ovms_vehicle(self, vehicle: str) -> dict[str, Any]:
        """A car's charging facts and the v2 commands it got (control endpoint)."""
        with urllib.request.urlopen(  # noqa: S310 (http://127.0.0.1)
            f"{self.sims['ovms']['server_url']}/_sim/vehicles/{vehicle}", timeout=10
        ) as resp:
            return dict(json.loads(resp.read()))

    def ovms_charge(
        self, vehicle: str, soc: float, at: tuple[float, float] | None = None
    ) -> dict[str, Any]:
        """Park the car, plug it in at ``soc`` and let it charge (a known start).

        It parks ``at`` (latitude, longitude) when given, else where it is.
        """
        body: dict[str, Any] = {"soc": soc}
        if at is not None:
            body["at"] = list(at)
        req = urllib.request.Request(  # noqa: S310 (http://127.0.0.1)
            f"{self.sims['ovms']['server_url']}/_sim/vehicles/{vehicle}/charge",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return dict(json.loads(resp.read()))

    def evenergy_api(self, path: str, **query: str) -> Any:
        """GET from the ev.energy simulator's API v2, as the demo's organisation.

        The demo's OAuth client may also act for its user with client credentials
        (a token of its own, not the entry's), so the tests read what the service
        holds without touching Home Assistant's sign-in.
        """
        sim = self.sims["evenergy"]
        auth = base64.b64encode(
            f"{sim['client_id']}:{sim['client_secret']}".encode()
        ).decode()
        req = urllib.request.Request(  # noqa: S310 (http://127.0.0.1)
            sim["token_url"],
            data=urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
            headers={"Authorization": f"Basic {auth}"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            token = json.loads(resp.read())["access_token"]
        url = f"{sim['base_url']}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        req = urllib.request.Request(  # noqa: S310 (http://127.0.0.1)
            url,
            headers={
                "Authorization": f"Bearer {token}",
                "EvEnergy-User": sim["user_id"],
            },
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return json.loads(resp.read())

    def evmonitor_switch(self, name: str, on: bool) -> None:
        """Switch the EV-Monitor simulator's ``down`` or ``hold`` (control endpoint)."""
        req = urllib.request.Request(  # noqa: S310 (http://127.0.0.1)
            f"{self.sims['evmonitor']['server_url']}/_sim/{name}",
            data=json.dumps({name: on}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            assert json.loads(resp.read()) == {name: on}

    def evmonitor_received(self) -> dict[str, Any]:
        """What the EV-Monitor simulator accepted: datasets, pushes, held answers."""
        with urllib.request.urlopen(  # noqa: S310 (http://127.0.0.1)
            f"{self.sims['evmonitor']['server_url']}/_sim/datasets", timeout=10
        ) as resp:
            return dict(json.loads(resp.read()))

    def evmonitor_queue(self) -> list[dict[str, Any]]:
        """The datasets the EV-Monitor entry keeps queued, as its Store file holds them.

        What survives a crash: the file as Home Assistant last wrote it (items
        ``{"id", "batch", "dataset"}``); [] before the first write.
        """
        store = (
            self.config_dir
            / ".storage"
            / f"ev_cloud.evmonitor.{self.entries['evmonitor']}"
        )
        try:
            raw = json.loads(store.read_text())
        except FileNotFoundError:
            return []
        return list(raw["data"]["queue"])

    # --- restart, crash and log ----------------------------------------------------

    def restart(self) -> None:
        """Restart Home Assistant (homeassistant.restart), keeping the log so far."""
        self.hass.restart(before_start=self._keep_log_part)

    def kill(self) -> None:
        """SIGKILL Home Assistant (a crash: it writes nothing on the way out)."""
        self.hass.kill()
        self._keep_log_part()

    def start_again(self) -> None:
        """Start Home Assistant after ``kill`` and wait until it runs."""
        self.hass.start()
        self.hass.wait_running()

    def _keep_log_part(self) -> None:
        """Copy the log of the run that just ended (HA rotates it at start)."""
        part = self.artifacts / f"home-assistant.run{len(self.log_parts) + 1}.log"
        with contextlib.suppress(OSError):
            shutil.copyfile(self.hass.log, part)
            self.log_parts.append(part)

    def logs(self) -> list[Path]:
        """HA's log files of this session, oldest first (the current one last)."""
        return [*self.log_parts, self.hass.log]


@pytest.fixture(scope="session")
def ha() -> Iterator[E2EHomeAssistant]:
    """A running, onboarded Home Assistant with one EV Cloud entry per provider."""
    ARTIFACTS.mkdir(exist_ok=True)
    for old in ARTIFACTS.glob("*.log"):
        old.unlink()
    config_dir = Path(tempfile.mkdtemp(prefix="ev-cloud-e2e-"))
    hass = HomeAssistant(
        config_dir,
        free_port(),
        console_log=ARTIFACTS / "home-assistant.console.log",
        username=USERNAME,
        password=PASSWORD,
        name="E2E Tester",
        start_timeout=START_TIMEOUT,
        writer="tests/e2e/conftest.py",
    )
    simulators = {
        name: Simulator(name, 0, ARTIFACTS / f"simulator-{name}.log")
        for name in provider_names()
    }
    instance: E2EHomeAssistant | None = None
    started = time.monotonic()
    try:
        for sim in simulators.values():
            sim.start()
            say(f"{sim.demo.label} simulator: {sim.describe()}")
        hass.prepare_config(install="copy", source=INTEGRATION)
        say(f"Home Assistant config: {config_dir}, URL {hass.url}")
        say(f"Installed a copy of {INTEGRATION}")
        hass.start()
        hass.authenticate()
        hass.wait_running()
        say(f"Home Assistant is running ({time.monotonic() - started:.0f} s)")
        hass.confirm_http_config()
        instance = E2EHomeAssistant(hass, simulators, ARTIFACTS)
        instance.token = hass.api.long_lived_token("EV Cloud e2e")
        for name in simulators:
            instance.add_entry(name)
            instance.wait_entities(name)
        say(f"Set up in {time.monotonic() - started:.0f} s: entries {instance.entries}")
        yield instance
    except HarnessError as err:
        pytest.fail(f"setting up Home Assistant failed: {err}")
    finally:
        hass.stop()
        for sim in simulators.values():
            sim.stop()
        with contextlib.suppress(OSError):
            shutil.copyfile(hass.log, ARTIFACTS / "home-assistant.log")
        if KEEP_CONFIG:
            say(f"Kept the config dir {config_dir} (EV_CLOUD_E2E_KEEP=1)")
        else:
            shutil.rmtree(config_dir, ignore_errors=True)


@pytest.fixture
def goe_prefix(ha: E2EHomeAssistant) -> str:
    """The object id prefix of the simulated charger's entities."""
    return f"go_e_charger_{ha.sims['goe']['serial']}"


@pytest.fixture(autouse=True)
def _both_entries(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test using ``ha``: every entry exists again (order-independent)."""
    yield
    if "ha" in request.fixturenames:
        instance: E2EHomeAssistant = request.getfixturevalue("ha")
        if instance.hass.alive():
            instance.ensure_entries()
