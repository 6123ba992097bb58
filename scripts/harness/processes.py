"""Ports and child processes: free ports, stopping a process group, command lines."""

from collections.abc import Callable
import contextlib
import os
from pathlib import Path
import signal
import socket
import subprocess
import time

from .common import say


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
