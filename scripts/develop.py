"""Run the provider simulators and a real, onboarded Home Assistant for development.

Started by ``scripts/develop`` with the Home Assistant virtualenv's interpreter
(``.venv-ha/bin/python``), so aiohttp and homeassistant are available besides the
standard library. The pieces it shares with the end-to-end tests (processes,
simulators, API client, config-flow driver, log parsing) live in the ``harness``
package next to it.

What it does, in order:

1. writes ``.dev/config`` (configuration.yaml, a link to custom_components/ev_cloud);
2. starts one simulator per provider of the integration's ``PROVIDERS`` registry
   and reads its URLs from its output;
3. starts Home Assistant, onboards it through its HTTP API (or logs in, when an earlier
   run did that already) and waits until it is RUNNING;
4. adds one config entry per provider through the config-flow REST API, as a user
   clicking through the UI would, unless one exists already; in registry order,
   so that a provider whose form picks another one's device (``DEMO.after``)
   finds it; then puts Home Assistant's home where a demo says (``DEMO.home``)
   and plays the demos' options flows (``DEMO.options``: the OVMS car DEMO is
   charged at home by the go-e demo's charger);
5. follows the log until Ctrl-C or SIGTERM, then stops Home Assistant with the
   ``homeassistant.stop`` action (so it writes ``.storage``) and the simulators.

To add a provider: give ``tests/simulators/`` a module for it with a ``DEMO``
(``tests/simulators/demo.py``) and add it to the registry; nothing changes here.
"""

from collections.abc import Callable
import contextlib
import os
from pathlib import Path
import shutil
import signal
import sys
import time
from typing import Any

from harness.api import HomeAssistantApi
from harness.common import DOMAIN, ROOT, HarnessError, rel, say
from harness.flows import (
    entry_entities,
    find_entry,
    run_config_flow,
    run_options_flow,
    set_home,
    sign_in_again,
    wait_entry_loaded,
)
from harness.home_assistant import RESTART_EXIT_CODE, HomeAssistant
from harness.logs import LOG_RECORD_RE, ev_cloud_problems, mentions_ev_cloud
from harness.processes import cmdline
from harness.simulators import Simulator, provider_names

DEV_DIR = ROOT / ".dev"
CONFIG_DIR = DEV_DIR / "config"
HA_LOG = CONFIG_DIR / "home-assistant.log"
HA_CONSOLE_LOG = DEV_DIR / "home-assistant.console.log"
PIDS_FILE = DEV_DIR / "develop.pids"

HA_PORT = int(os.environ.get("EV_CLOUD_DEV_PORT", "8123"))
HA_URL = f"http://127.0.0.1:{HA_PORT}"
DEV_NAME, DEV_USER, DEV_PASSWORD = "Developer", "dev", "dev-password"

SIM_BASE_PORT = int(os.environ.get("EV_CLOUD_DEV_SIM_PORT", "8700"))
START_TIMEOUT = float(os.environ.get("EV_CLOUD_DEV_TIMEOUT", "900"))
LOG_MODE = os.environ.get("EV_CLOUD_DEV_LOG", "ev_cloud")  # ev_cloud | all | none
STATUS_EVERY = float(os.environ.get("EV_CLOUD_DEV_STATUS_EVERY", "300"))
EXIT_AFTER_SETUP = os.environ.get("EV_CLOUD_DEV_EXIT_AFTER_SETUP") == "1"


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


class Shutdown(BaseException):
    """Ctrl-C or SIGTERM arrived: unwind and stop everything."""


def dev_home_assistant(force: Callable[[], bool]) -> HomeAssistant:
    """The development Home Assistant in .dev/config."""
    return HomeAssistant(
        CONFIG_DIR,
        HA_PORT,
        console_log=HA_CONSOLE_LOG,
        username=DEV_USER,
        password=DEV_PASSWORD,
        name=DEV_NAME,
        start_timeout=START_TIMEOUT,
        force=force,
        port_hint="another scripts/develop? Stop it or set EV_CLOUD_DEV_PORT",
        reset_hint="to start afresh: scripts/develop --reset",
        writer="scripts/develop",
    )


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
        raise HarnessError(
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


# ---------------------------------------------------------------- config entries


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
    entries: dict[str, str] = {}  # provider -> entry_id
    for sim in simulators:
        demo, values = sim.demo, sim.info.values
        identifier = values[demo.identifier]
        try:
            entry = find_entry(api, identifier)
            if entry is not None:
                say(f"{demo.label}: entry {entry['title']!r} exists already")
                entry = wait_entry_loaded(api, entry["entry_id"]) or entry
                if entry.get("state") == "setup_error" and (
                    again := sign_in_again(api, demo, values, entry["entry_id"])
                ):
                    # A new simulator process does not know the earlier sign-in.
                    say(f"{demo.label}: signed in again (the simulator restarted)")
                    entry = again
            else:
                say(f"{demo.label}: adding {identifier} through the config flow")
                entry = run_config_flow(api, demo, values)
                say(f"{demo.label}: created entry {entry['title']!r}")
                entry = wait_entry_loaded(api, entry["entry_id"]) or entry
            entries[sim.name] = entry["entry_id"]
            if entry.get("state") != "loaded":
                problems.append(
                    f"{demo.label}: entry {entry['title']!r} is"
                    f" {entry.get('state')} ({entry.get('reason')})"
                )
            say(f"{demo.label}: {describe_entry(api, entry)}")
        except HarnessError as err:
            problems.append(f"{demo.label}: {err}")
    problems += apply_demo_settings(api, simulators, entries)
    for problem in problems:
        say(f"PROBLEM {problem}")
    if problems and (records := ev_cloud_problems(HA_LOG)):
        print(f"  Warnings and errors about {DOMAIN} in {rel(HA_LOG)}:")
        for record in records[-5:]:
            print("    " + "\n    ".join(record[:40]))
    return problems


def apply_demo_settings(
    api: HomeAssistantApi, simulators: list[Simulator], entries: dict[str, str]
) -> list[str]:
    """Set the home a demo names and play the demos' options; return problems.

    The options are played at every start (the same answers again), so that an
    entry made by an earlier run gets them too.
    """
    problems = []
    for sim in simulators:
        demo = sim.demo
        try:
            if demo.home is not None:
                set_home(api, *demo.home)
                say(f"{demo.label}: Home Assistant's home is at {demo.home}")
            if demo.options and sim.name in entries:
                run_options_flow(api, demo, entries[sim.name], sim.info.values)
                wait_entry_loaded(api, entries[sim.name])
                steps = ", ".join(step for step, _ in demo.options)
                say(f"{demo.label}: options set ({steps})")
        except HarnessError as err:
            problems.append(f"{demo.label} options: {err}")
    return problems


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
    parts += [f"{s.name} {'up' if s.alive() else 'DOWN'}" for s in simulators]
    status, states = ha.api.request("GET", "/api/states", timeout=10)
    if status == 200:
        entities, unavailable = 0, 0
        with contextlib.suppress(HarnessError):
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
            ha.confirm_http_config()
        for sim in simulators:
            if not sim.alive() and sim.name not in reported_down:
                reported_down.add(sim.name)
                label, log = sim.demo.label, rel(sim.log_path)
                say(f"WARNING the {label} simulator exited; see {log}")
        if time.monotonic() >= next_status:
            next_status = time.monotonic() + STATUS_EVERY
            try:
                say(status_line(ha, simulators))
            except HarnessError as err:  # e.g. the token could not be refreshed
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
        print(f"    {sim.demo.label} simulator: {sim.describe()}")
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
    ha = dev_home_assistant(stopper.force)
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
        for index, name in enumerate(provider_names()):
            sim = Simulator(
                name, SIM_BASE_PORT + index, DEV_DIR / f"simulator-{name}.log"
            )
            simulators.append(sim)
            say(f"Starting the {sim.demo.label} simulator on port {sim.port}")
            sim.start("set EV_CLOUD_DEV_SIM_PORT to another first port")
            say(f"  {sim.demo.label} simulator: {sim.describe()}")
        ha.start()
        record_pids(ha, simulators)
        ha.authenticate()
        ha.wait_running()
        say(f"Home Assistant is running ({time.monotonic() - started:.0f} s)")
        ha.confirm_http_config()
        problems = add_entries(ha.api, simulators)
        print_banner(simulators, time.monotonic() - started, problems)
        if EXIT_AFTER_SETUP:
            return 1 if problems else 0
        code = follow(ha, simulators)
    except Shutdown as sig:
        print()
        say(f"{sig}: stopping")
    except HarnessError as err:
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
