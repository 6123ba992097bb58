"""The provider simulators as child processes, one per provider of the registry.

Which providers exist is the integration's business (``PROVIDERS`` in
``custom_components/ev_cloud/providers``; only its keys are used). What a
provider's simulator prints and how its entry is added is its ``DEMO`` in
``tests/simulators/NAME.py``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
import os
from pathlib import Path
import subprocess
import threading
import time

from tests.simulators.demo import (
    check_order,
    load_demo,
    provider_names as registry_names,
)

from .common import PYTHON, ROOT, HarnessError
from .processes import never, port_is_free, stop_process

__all__ = ["Simulator", "SimulatorInfo", "provider_names"]


def provider_names() -> list[str]:
    """The providers in the order their entries are added: the registry's.

    A demo whose forms need another provider's devices (``SimulatorDemo.after``)
    must come after it; HarnessError otherwise.
    """
    names = registry_names()
    try:
        check_order(names)
    except ValueError as err:
        raise HarnessError(f"{err}: reorder PROVIDERS") from err
    return names


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


class Simulator:
    """One provider simulator running as ``python -m tests.simulators NAME``."""

    def __init__(self, name: str, port: int, log_path: Path) -> None:
        """Prepare (not start) the simulator; port 0 lets it pick a free one."""
        self.name = name  # a key of the integration's PROVIDERS registry
        self.demo = load_demo(name)
        self.port = port
        self.log_path = log_path
        self.info = SimulatorInfo()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, port_hint: str = "") -> None:
        """Start it and wait until its start-up lines tell its URLs."""
        if self.port and not port_is_free(self.port):
            raise HarnessError(
                f"port {self.port} for the {self.demo.label} simulator is in use"
                + (f"; {port_hint}" if port_hint else "")
            )
        cmd = [PYTHON, "-m", "tests.simulators", self.name]
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
        while not all(key in self.info.values for key in self.demo.needs):
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the pump thread write the last lines
                raise HarnessError(
                    f"the {self.demo.label} simulator exited with code"
                    f" {self.proc.returncode}:\n  " + "\n  ".join(self.info.lines[-15:])
                )
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"the {self.demo.label} simulator did not print"
                    f" {', '.join(self.demo.needs)} in 60 s; see {self.log_path}"
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
        return " ".join(f"{key}={self.info.values[key]}" for key in self.demo.needs)

    def stop(self, force: Callable[[], bool] = never) -> None:
        """Stop it (SIGTERM, then SIGKILL after a few seconds)."""
        if self.proc is not None:
            stop_process(self.proc, f"the {self.demo.label} simulator", 10, force)
