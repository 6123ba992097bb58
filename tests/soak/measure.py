"""What the soak measures: tasks, listeners, timers, callbacks and memory.

Counts are taken from the running Home Assistant: asyncio tasks, event bus
listeners, timers the event loop has scheduled (and how many of them are the
integration's), dispatcher connections and the entries' unload callbacks.
Memory is what tracemalloc traces, without what the test's own machinery holds
(the simulators, pytest's log capture, tracemalloc itself, this package).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
import fnmatch
import functools
import gc
import os
import tracemalloc
from types import ModuleType
from typing import Any

from aiohttp.client_proto import ResponseHandler
from aiohttp.web_protocol import RequestHandler
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HassJob, HomeAssistant

from custom_components.ev_cloud.coordinator import EvCloudCoordinator
from custom_components.ev_cloud.device import EvCloudAccount, EvCloudDevice
from custom_components.ev_cloud.entity import EvCloudEntity

OURS = "custom_components.ev_cloud"
# Frames kept per allocation: the line that allocated and its caller, so that
# what a simulator makes through a library (freezegun makes every strftime
# string) is seen as the simulator's. Each frame costs time (tracing already
# makes the run several times slower); more show who allocated what grew, to
# find a leak: EV_CLOUD_SOAK_TRACE_DEPTH=12.
TRACE_DEPTH = int(os.environ.get("EV_CLOUD_SOAK_TRACE_DEPTH", "2"))
# Allocations made for the test's machinery, not for Home Assistant or EV Cloud:
# (pattern, True: when any frame of the allocation matches; False: only when the
# innermost does, since the test and the secret guard call into Home Assistant).
NOT_MEASURED = (
    # The simulated services. What they record of each request can be traced to
    # aiohttp's lines instead, which no pattern here can tell from Home
    # Assistant's: the soak drops those records (SoakProvider.forget).
    ("*/tests/simulators/*", True),
    ("*/logging/__init__.py", True),  # log records (pytest captures them)
    ("*/_pytest/logging.py", True),
    ("*/linecache.py", True),  # source lines read once for tracebacks
    ("*/tracemalloc.py", True),
    ("*/unittest/mock.py", True),  # the test harness's patches
    ("*/tests/soak/*", False),  # this test's samples
    ("*/tests/secret_guard.py", False),  # issued secrets, waiting exceptions
)


def _module(target: Any) -> str:
    """The module a callback belongs to, looking through partials and jobs."""
    for _ in range(5):
        if isinstance(target, functools.partial):
            target = target.func
        elif isinstance(target, HassJob):
            target = target.target
        else:
            break
    owner = getattr(target, "__self__", None)
    if owner is not None and not isinstance(owner, ModuleType):
        return type(owner).__module__
    return getattr(target, "__module__", None) or ""


def _timer_module(handle: asyncio.TimerHandle) -> str:
    """The module that asked for a timer: a job in its arguments, else its callback."""
    for argument in handle._args or ():
        if isinstance(argument, HassJob):
            return _module(argument)
    return _module(handle._callback)


def _task_module(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None)
    frame = getattr(coro, "cr_frame", None)
    if frame is not None:
        return str(frame.f_globals.get("__name__", ""))
    return getattr(code, "co_filename", "") or ""


@dataclass(frozen=True, slots=True)
class Counts:
    """One sample of what must not grow."""

    tasks: int
    tasks_ours: int
    listeners: int
    timers: int
    timers_ours: int
    dispatcher: int
    unload_callbacks: int

    def as_dict(self) -> dict[str, int]:
        """By name."""
        return {name: getattr(self, name) for name in self.__slots__}


def count(hass: HomeAssistant, entries: Iterable[ConfigEntry]) -> Counts:
    """What runs, listens and waits now."""
    tasks = [task for task in asyncio.all_tasks(hass.loop) if not task.done()]
    timers = [
        handle
        for handle in hass.loop._scheduled  # type: ignore[attr-defined]
        if not handle.cancelled()
    ]
    dispatcher: dict[Any, dict[Any, Any]] = hass.data.get("dispatcher", {})
    return Counts(
        tasks=len(tasks),
        tasks_ours=sum(_task_module(task).startswith(OURS) for task in tasks),
        listeners=sum(hass.bus.async_listeners().values()),
        timers=len(timers),
        timers_ours=sum(_timer_module(handle).startswith(OURS) for handle in timers),
        dispatcher=sum(
            len(targets)
            for signal, targets in dispatcher.items()
            if str(signal).startswith("ev_cloud")
        ),
        unload_callbacks=sum(len(entry._on_unload or ()) for entry in entries),
    )


def start_tracing() -> None:
    """Trace allocations from now on."""
    tracemalloc.start(TRACE_DEPTH)


def stop_tracing() -> None:
    """Stop tracing (and free what the traces hold)."""
    tracemalloc.stop()


@functools.cache
def _kind(filename: str) -> tuple[bool, bool]:
    """Whether a file is the machinery's: (in any frame, as the innermost frame)."""
    return (
        any(fnmatch.fnmatch(filename, p) for p, any_frame in NOT_MEASURED if any_frame),
        any(fnmatch.fnmatch(filename, p) for p, _ in NOT_MEASURED),
    )


def _excluded(traceback: tuple[tuple[str, int], ...]) -> bool:
    """True for an allocation made for the test's machinery (see NOT_MEASURED).

    tracemalloc keeps the innermost frame first.
    """
    return _kind(traceback[0][0])[1] or any(
        _kind(filename)[0] for filename, _ in traceback
    )


def measured(clean: Callable[[], None]) -> tuple[int, tracemalloc.Snapshot]:
    """Bytes traced for Home Assistant and EV Cloud now, after `clean` and a GC.

    tracemalloc's own filters match every frame of every trace with fnmatch,
    which takes seconds; here each distinct traceback is judged once.
    """
    clean()
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    judged: dict[tuple[tuple[str, int], ...], bool] = {}
    kept = []
    for trace in snapshot.traces._traces:  # type: ignore[attr-defined]
        traceback = trace[2]
        excluded = judged.get(traceback)
        if excluded is None:
            excluded = judged[traceback] = _excluded(traceback)
        if not excluded:
            kept.append(trace)
    filtered = tracemalloc.Snapshot(kept, snapshot.traceback_limit)
    return sum(trace[1] for trace in kept), filtered


def growth(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, top: int = 8
) -> list[str]:
    """Where memory grew most, for the report: by file, or by traceback."""
    if TRACE_DEPTH <= 2:
        return [
            f"{stat.size_diff / 1024:+.1f} KiB {stat.count_diff:+d} "
            f"{stat.traceback[0].filename}:{stat.traceback[0].lineno}"
            for stat in after.compare_to(before, "lineno")[:top]
        ]
    return [
        f"{stat.size_diff / 1024:+.1f} KiB\n" + "\n".join(stat.traceback.format())
        for stat in after.compare_to(before, "traceback")[:top]
    ]


# The integration's objects that exist once per entry, device or entity.
STRUCTURE: dict[str, type] = {
    "accounts": EvCloudAccount,
    "devices": EvCloudDevice,
    "coordinators": EvCloudCoordinator,
    "entities": EvCloudEntity,
}


# Plumbing whose objects a leak often keeps: asyncio tasks (done or not), and
# the connections on both sides (the simulators' and Home Assistant's).
PLUMBING: dict[str, type] = {
    "asyncio_tasks": asyncio.Task,
    "server_connections": RequestHandler,
    "client_connections": ResponseHandler,
}


def instances() -> tuple[dict[str, int], Counter[str]]:
    """Live objects of the integration: of each kind in STRUCTURE, all; by class.

    And of each kind in PLUMBING (for the report).
    """
    gc.collect()
    found = dict.fromkeys([*STRUCTURE, "objects", *PLUMBING], 0)
    by_class: Counter[str] = Counter()
    for obj in gc.get_objects():
        kind = type(obj)
        for name, plumbing in PLUMBING.items():
            if kind is plumbing:
                found[name] += 1
        if not kind.__module__.startswith(OURS):
            continue
        found["objects"] += 1
        by_class[kind.__qualname__] += 1
        # The class's MRO, not isinstance: an ABC's isinstance caches what it
        # saw, which would be memory this measurement grows.
        for name, structure in STRUCTURE.items():
            if structure in kind.__mro__:
                found[name] += 1
    return found, by_class
