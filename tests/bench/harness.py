"""Run Home Assistant with EV Cloud through a story, and measure what it costs.

Each step moves the clock to the next moment something is due (a timer of Home
Assistant, a change in the story, a car's report) and lets Home Assistant do
what became due. Between steps, when no request is in flight, the story changes
the simulators directly. Every HTTP request of Home Assistant is recorded
(`Recorder`), every read or pushed reading of a device too (`Updates`).

Two clocks, for two kinds of figures:
- The frozen clock (freezegun) stands still within a step: requests, quota,
  freshness and failures come out the same in every run, so budgets can be
  tested on them.
- The shifted clock (`ShiftedClock`) is the real one, moved on by the story:
  only runs on it give CPU and setup times. freezegun makes every date a
  Python-level object, which costs Home Assistant's and the integration's date
  computations several times their real price.

The CPU figures are meant to be what a user's Home Assistant spends:
- The simulators serve HTTP from a thread of their own (`SimThread`), so that the
  CPU time of Home Assistant's event-loop thread (`time.thread_time`) leaves out
  what the simulated services spend.
- asyncio's debug mode (which the test harness turns on) is off.
- The timers due within half a second run together, as `async_fire_time_changed`
  does, without its two patches per timer (`fire_due_timers`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, time as dt_time, timedelta
from functools import partial
import math
import random
import statistics
import threading
import time
import tracemalloc
from typing import TYPE_CHECKING, Any

import aiohttp
import freezegun.api
from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import event as event_helper
from homeassistant.helpers.update_coordinator import UpdateFailed
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util, uuid as uuid_util
from homeassistant.util.async_ import get_scheduled_timer_handles
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from yarl import URL

from custom_components.ev_cloud.api import PollPostponedError, RateLimitedError
from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.coordinator import EvCloudCoordinator
from custom_components.ev_cloud.device import DeviceData

from .story import AGE_SAMPLE_EVERY, SAMPLE_EVERY, START, Story

if TYPE_CHECKING:
    from .drivers import Driver


def wall_clock() -> float:
    """Real seconds (the frozen clock patches time.monotonic and perf_counter)."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


class SimThread:
    """An event loop in a thread of its own, where the simulators serve."""

    def __init__(self) -> None:
        """Start the loop's thread."""
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="bench-simulators", daemon=True
        )
        self._thread.start()

    async def run[T](self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` in the simulators' loop; await its result."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request of Home Assistant."""

    time: float  # frozen epoch seconds
    method: str
    path: str
    status: int | None  # None: no answer (connection failed, timed out)
    credential: str | None  # the Authorization header: tells go-e chargers apart
    server: str = ""  # host:port: tells the services of a run apart


class Recorder:
    """Records every request Home Assistant's aiohttp sessions send."""

    def __init__(self) -> None:
        """Nothing recorded yet."""
        self.requests: list[Request] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Wrap `aiohttp.ClientSession._request` for the rest of the test."""
        original = aiohttp.ClientSession._request
        requests = self.requests

        async def _request(
            session: aiohttp.ClientSession, method: str, url: Any, **kwargs: Any
        ) -> aiohttp.ClientResponse:
            headers = kwargs.get("headers") or {}
            credential = headers.get("Authorization")
            target = URL(url)
            server = f"{target.host}:{target.port}"
            sent = time.time()
            try:
                response = await original(session, method, url, **kwargs)
            except BaseException:
                requests.append(
                    Request(sent, method, target.path, None, credential, server)
                )
                raise
            requests.append(
                Request(
                    sent, method, response.url.path, response.status, credential, server
                )
            )
            return response

        monkeypatch.setattr(aiohttp.ClientSession, "_request", _request)


RANDOM_SEED = 2027
# Seconds the frozen clock moves at each early retry (see `Updates`).
EARLY_RETRY_SECONDS = 0.01


@dataclass(slots=True)
class Updates:
    """Reads (polls) and pushed readings of every device, as coordinators see them.

    An early retry is a read that starts before the time the device's last
    refusal (RateLimitedError) asked to wait: Home Assistant schedules a retry
    at `int(loop.time()) + a fraction + retry_after`, so a retry_after below a
    second can fall due at once, and again until that second is over. In real
    time such retries come back to back (a plain coordinator that keeps raising
    UpdateFailed(retry_after=0.45) ran about 4,000 times in 3 s); with a frozen
    clock they would spin for ever. Each early retry moves the clock on by
    EARLY_RETRY_SECONDS, which ends the spin and counts far fewer retries than
    real time would see.
    """

    on_early: Callable[[float], None]
    reads: int = 0
    failed: int = 0
    pushed: int = 0
    early_retries: int = 0
    postponed: int = 0  # reads our own budget put off (the values shown stay)
    new_data: int = 0  # reads whose data time moved on
    entity_cpu: float = 0.0  # seconds the entities took to write their states
    _data_times: dict[str, datetime] = field(default_factory=dict)
    _retry_at: dict[str, float] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Every update that brought data: read or pushed."""
        return self.reads + self.pushed

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Count through the coordinator class for the rest of the test."""
        read = EvCloudCoordinator._async_read
        update_data = EvCloudCoordinator._async_update_data
        push = EvCloudCoordinator.async_push
        update_listeners = EvCloudCoordinator.async_update_listeners
        updates = self

        def async_update_listeners(coordinator: EvCloudCoordinator[Any]) -> None:
            started = time.thread_time()
            update_listeners(coordinator)
            updates.entity_cpu += time.thread_time() - started

        async def _async_read(coordinator: EvCloudCoordinator[Any]) -> Any:
            key = coordinator.device.key
            retry_at = updates._retry_at.pop(key, None)
            if retry_at is not None and time.time() < retry_at:
                updates.early_retries += 1
                updates.on_early(EARLY_RETRY_SECONDS)
            try:
                data = await read(coordinator)
            except RateLimitedError as err:
                # A poll put off by our own budget fails only if the coordinator
                # lets it (see `_async_update_data` below, and setup).
                if isinstance(err, PollPostponedError):
                    updates.postponed += 1
                else:
                    updates.failed += 1
                if err.retry_after is not None:
                    updates._retry_at[key] = time.time() + err.retry_after
                raise
            except Exception:
                updates.failed += 1
                raise
            updates.read(key, data)
            return data

        async def _async_update_data(coordinator: EvCloudCoordinator[Any]) -> Any:
            try:
                return await update_data(coordinator)
            except UpdateFailed as err:
                if isinstance(err.__cause__, PollPostponedError):
                    updates.failed += 1
                raise

        def async_push(coordinator: EvCloudCoordinator[Any], data: Any) -> None:
            updates.pushed += 1
            push(coordinator, data)

        monkeypatch.setattr(EvCloudCoordinator, "_async_read", _async_read)
        monkeypatch.setattr(
            EvCloudCoordinator, "_async_update_data", _async_update_data
        )
        monkeypatch.setattr(EvCloudCoordinator, "async_push", async_push)
        monkeypatch.setattr(
            EvCloudCoordinator, "async_update_listeners", async_update_listeners
        )

    def read(self, key: str, data: DeviceData[Any]) -> None:
        """A successful read of the device `key`."""
        self.reads += 1
        if data.data_time is None:
            return
        previous = self._data_times.get(key)
        if previous is None or data.data_time > previous:
            self.new_data += 1
            self._data_times[key] = data.data_time


@dataclass(frozen=True)
class Quota:
    """How much of a service's limit a run used."""

    limit: str  # the service's limit, as documented
    used: float | None  # the figure that counts against it
    allowed: float | None  # what the limit allows of that figure
    text: str  # for the table
    within: bool | None = None  # None: the run cannot tell (see the driver)
    extra: dict[str, float] = field(default_factory=dict)


@dataclass
class Result:
    """The figures of one provider at one size (what the JSON holds)."""

    provider: str
    devices: int
    entries: int
    hours: float
    requests: int
    requests_by_path: dict[str, int]
    requests_per_hour_per_device: float
    http_429: int
    failed_requests: int  # no answer, or 5xx
    new_data_share: float | None  # of the reads: the data time moved on
    charging_age_median_s: float | None  # of the data shown while charging
    charging_age_max_s: float | None
    charging_shown_share: float | None  # of the samples: not unavailable
    shown_share: float | None  # the same over the whole story
    # Times: None on the frozen clock (see the module docstring).
    cpu_per_update_median_ms: float | None
    cpu_per_update_mean_ms: float | None  # all the run's steps' CPU / updates
    cpu_entity_states_per_update_ms: float | None  # part: writing entity states
    updates: int  # reads and pushed readings that brought data
    failed_updates: int
    postponed_updates: int
    early_retries: int
    devices_at_setup: int
    all_devices_after_s: float | None  # until every device was read (None: never)
    setup_wall_s: float | None
    setup_cpu_s: float | None
    peak_memory_kib: float | None
    integration_warnings: int
    quota: Quota
    steps: int
    wall_s: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return asdict(self)

    def with_times(self, timed: Result | None) -> Result:
        """These figures with the CPU and setup times of a run on the shifted clock."""
        if timed is None:
            return self
        return replace(
            self,
            cpu_per_update_median_ms=timed.cpu_per_update_median_ms,
            cpu_per_update_mean_ms=timed.cpu_per_update_mean_ms,
            cpu_entity_states_per_update_ms=timed.cpu_entity_states_per_update_ms,
            setup_wall_s=timed.setup_wall_s,
            setup_cpu_s=timed.setup_cpu_s,
        )


# Home Assistant spreads its timers (coordinators' polls) over the first half of
# a second; a step runs those that are due within it.
SPREAD = 0.5


def fire_due_timers(hass: HomeAssistant) -> None:
    """Run the timers due within SPREAD seconds of the frozen time.

    Like `async_fire_time_changed`, which also patches two functions for each
    timer it runs: that costs more CPU than many an update, and the frozen
    clock already says what time it is.
    """
    loop = hass.loop
    now = loop.time()
    for handle in list(get_scheduled_timer_handles(loop)):
        if not handle.cancelled() and handle.when() <= now + SPREAD:
            handle._run()
            handle.cancel()


def by_path(requests: list[Request]) -> dict[str, int]:
    """Requests by method and path, ids replaced by {id}."""
    counts: dict[str, int] = defaultdict(int)
    for request in requests:
        parts = [
            "{id}" if any(char.isdigit() for char in part) and len(part) > 3 else part
            for part in request.path.split("/")
        ]
        counts[f"{request.method} {'/'.join(parts)}"] += 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def busiest(times: list[float], window: float) -> int:
    """The most of `times` that fall into any `window` seconds."""
    ordered = sorted(times)
    most = first = 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= window:
            first += 1
        most = max(most, last - first + 1)
    return most


class MemoryProbe:
    """Memory that Home Assistant holds, sampled with tracemalloc (if enabled).

    tracemalloc traces every thread; what the simulators and the test harness
    hold (allocated in files under tests/, by aiohttp's server side, by pytest,
    which keeps the log records, or by the frozen clock) is left out of each
    sample. The peak is the largest sample above the one before setup.
    """

    EXCLUDE = (
        tracemalloc.Filter(False, "*/tests/*"),
        tracemalloc.Filter(False, "*/aiohttp/web_*"),
        tracemalloc.Filter(False, "*/_pytest/*"),
        tracemalloc.Filter(False, "*/logging/__init__.py"),
        tracemalloc.Filter(False, "*/freezegun/*"),
        tracemalloc.Filter(False, "*/pytest_homeassistant_custom_component/*"),
    )

    def __init__(self, enabled: bool) -> None:
        """Start tracing when enabled."""
        self.enabled = enabled
        self.samples: list[float] = []
        if enabled:
            tracemalloc.start()

    def sample(self) -> None:
        """What Home Assistant holds now."""
        if not self.enabled:
            return
        snapshot = tracemalloc.take_snapshot().filter_traces(self.EXCLUDE)
        self.samples.append(sum(stat.size for stat in snapshot.statistics("filename")))

    def stop(self) -> float | None:
        """The peak above the first sample (KiB); tracing ends."""
        if not self.enabled:
            return None
        tracemalloc.stop()
        return (max(self.samples) - self.samples[0]) / 1024


class ShiftedClock:
    """The clock a story moves, without freezegun's cost.

    freezegun turns every datetime into a Python-level `FakeDatetime`: each date
    computation costs several times what it costs a user's Home Assistant (a
    state write about 40 % more), which no count of clock reads can take out.
    This clock keeps the real, C-implemented time functions, shifted by what
    `move_to` and `tick` set: `time.time`, Home Assistant's `dt_util.utcnow`
    (which the integration reads), its event loop's clock (timers, request
    budgets) and the clock of its time trackers. The simulators read
    `time.time`.
    """

    def __init__(self, hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch) -> None:
        """Shift the clocks, from now until `monkeypatch` is undone."""
        self._wall = 0.0  # seconds added to the real time of day
        self._loop = 0.0  # seconds added to the event loop's clock
        real_time, loop_time = time.time, hass.loop.time
        wall = partial(datetime.now, UTC)

        def shifted_time() -> float:
            return real_time() + self._wall

        def utcnow() -> datetime:
            return wall() + timedelta(seconds=self._wall)

        def shifted_loop_time() -> float:
            return loop_time() + self._loop

        monkeypatch.setattr(time, "time", shifted_time)
        monkeypatch.setattr(dt_util, "utcnow", utcnow)
        monkeypatch.setattr(event_helper, "time_tracker_utcnow", utcnow)
        monkeypatch.setattr(hass.loop, "time", shifted_loop_time)

    def move_to(self, moment: datetime) -> None:
        """The time of day is `moment` (the event loop's clock does not jump)."""
        self._wall += moment.timestamp() - time.time()

    def tick(self, delta: timedelta) -> None:
        """Time passes."""
        seconds = delta.total_seconds()
        self._wall += seconds
        self._loop += seconds


class BenchRun:
    """One provider at one size through one story."""

    def __init__(
        self,
        hass: HomeAssistant,
        freezer: FrozenDateTimeFactory | None,
        driver: Driver,
        story: Story,
    ) -> None:
        """Prepare; `async_run` does the work (several runs may share `hass`).

        With `freezer` the run is on the frozen clock (and has no CPU or setup
        times), without it on the shifted clock (see the module docstring).
        """
        self.hass = hass
        self.freezer = freezer
        self._clock: FrozenDateTimeFactory | ShiftedClock | None = freezer
        self.driver = driver
        self.story = story
        self.recorder = Recorder()
        self.updates = Updates(self._slip)
        self.t = 0.0  # seconds since the start of the story (Home Assistant's)
        self.sim_t = 0.0  # the same for the simulated services
        self.all_devices_at: float | None = None  # story seconds
        # Each step: (CPU seconds, updates that brought data).
        self.steps: list[tuple[float, int]] = []
        self.samples = self.shown = 0  # (device, moment) samples; data shown
        self.ages: list[float | None] = []  # the data age shown while charging
        self.worst_age: float | None = None
        self.entries: list[MockConfigEntry] = []
        self._shown: list[float | None] = []  # data times shown since the last step
        self.origin = START  # when the story starts

    @property
    def clock(self) -> FrozenDateTimeFactory | ShiftedClock:
        """The clock of the run (set from its start)."""
        assert self._clock is not None
        return self._clock

    def _slip(self, seconds: float) -> None:
        """Time passes while Home Assistant is busy (see `Updates`)."""
        self.clock.tick(timedelta(seconds=seconds))
        self.t += seconds

    async def async_run(self, *, trace_memory: bool = False) -> Result:
        """Set up, live through the story, unload; the figures.

        With `trace_memory`, tracemalloc samples memory (and slows everything:
        the CPU figures of such a run mean little).
        """
        hass, driver, story = self.hass, self.driver, self.story
        patches = pytest.MonkeyPatch()
        if self.freezer is None:
            self._clock = ShiftedClock(hass, patches)
        # The story starts at START, or for a later run in the same Home
        # Assistant at the next midnight (its clock must not go back).
        now = dt_util.utcnow()
        origin = START
        if now > START:
            origin = datetime.combine(now.date() + timedelta(days=1), dt_time(), UTC)
        self.clock.move_to(origin)
        self.origin = driver.origin = origin
        sims = SimThread()
        started = wall_clock()
        # As in a user's Home Assistant: the test harness turns asyncio's debug
        # mode on, which costs the event loop several times the CPU.
        debug = hass.loop.get_debug()
        hass.loop.set_debug(False)
        # The frozen clock need not look at its caller's stack (does a module
        # there want the real time?) at each read: that is the harness's cost.
        inspection = freezegun.api.call_stack_inspection_limit
        freezegun.api.call_stack_inspection_limit = 0
        memory = None
        # Home Assistant spreads its timers at random within a second: the same
        # spread for every run of a case.
        randomness = random.getstate()
        random.seed(RANDOM_SEED)
        # Registry ids are not drawn from that seeded sequence: a later run in
        # the same Home Assistant would draw the ids of entities an earlier one
        # removed, which the registry keeps for their return.
        patches.setattr(uuid_util, "getrandbits", random.SystemRandom().getrandbits)
        try:
            self.recorder.install(patches)
            self.updates.install(patches)
            self.entries = await driver.async_start(hass, sims)
            for domain in sorted(platform.value for platform in driver.platforms):
                assert await async_setup_component(hass, domain, {})
            driver.begin(story.phases[0])
            driver.report(self.t)
            driver.hass_side(hass, self.t)
            memory = MemoryProbe(trace_memory)
            memory.sample()
            setup_wall, setup_cpu = await self._async_setup()
            devices_at_setup = self._devices()
            if devices_at_setup >= driver.devices:
                self.all_devices_at = 0.0
            memory.sample()
            self._shown = driver.shown_data_times(self.entries)
            while self.t < story.seconds:
                phase = story.phase_at(self.t)
                await self._async_step()
                if story.phase_at(self.t) is not phase:
                    memory.sample()
            memory.sample()
            await self._async_remove()
        finally:
            random.setstate(randomness)
            patches.undo()
            peak = memory.stop() if memory is not None else None
            hass.loop.set_debug(debug)
            freezegun.api.call_stack_inspection_limit = inspection
            await driver.async_stop(sims)
            sims.close()
        return self._result(
            setup_wall, setup_cpu, devices_at_setup, peak, wall_clock() - started
        )

    async def _async_setup(self) -> tuple[float, float]:
        """Set every entry up as Home Assistant's start does (all at once)."""
        hass = self.hass
        for entry in self.entries:
            entry.add_to_hass(hass)
        self.driver.prepare(hass)
        wall, cpu = wall_clock(), time.thread_time()
        if DOMAIN in hass.config.components:  # by an earlier run
            await asyncio.gather(
                *(hass.config_entries.async_setup(e.entry_id) for e in self.entries)
            )
        else:
            assert await async_setup_component(hass, DOMAIN, {})
        await hass.async_block_till_done(wait_background_tasks=True)
        return wall_clock() - wall, time.thread_time() - cpu

    def _devices(self) -> int:
        return sum(
            len(entry.runtime_data.coordinators)
            for entry in self.entries
            if hasattr(entry, "runtime_data")
        )

    def _next_moment(self) -> float:
        """When the next thing is due: a timer, a phase, a report or a stop."""
        loop = self.hass.loop
        due = [
            handle.when()
            for handle in get_scheduled_timer_handles(loop)
            if not handle.cancelled()
        ]
        candidates: list[float] = [
            self.story.seconds,
            (self.t // SAMPLE_EVERY + 1) * SAMPLE_EVERY,
        ]
        if due:
            # At the timer's own time (Home Assistant spreads timers over the
            # first half of a second; the step runs those of that half-second).
            candidates.append(self.t + max(min(due) - loop.time(), 0.001))
        candidates += [b for b in self.story.boundaries() if b > self.t]
        every = self.story.report_every(self.t)
        candidates.append((self.t // every + 1) * every)
        return min(candidates)

    def _age_samples(self, until: float) -> None:
        """The data shown from now until `until` (nothing changes meanwhile).

        Every AGE_SAMPLE_EVERY seconds: whether each device shows data (not
        unavailable) and, while charging, how old it is; the worst age exactly:
        the one just before the next step.
        """
        moments = [
            float(s)
            for s in range(
                math.ceil(self.t / AGE_SAMPLE_EVERY) * AGE_SAMPLE_EVERY,
                math.ceil(until),
                AGE_SAMPLE_EVERY,
            )
            if s < until
        ]
        self.samples += len(moments) * len(self._shown)
        self.shown += len(moments) * sum(1 for t in self._shown if t is not None)
        charging = self.story.charging()
        start, end = max(self.t, charging.start), min(until, charging.end)
        if start >= end:
            return
        moments = [s for s in moments if start <= s < end]
        origin = self.origin.timestamp()
        for shown in self._shown:
            if shown is None:
                self.ages += [None] * len(moments)
                continue
            self.ages += [origin + s - shown for s in moments]
            worst = origin + end - shown
            if self.worst_age is None or worst > self.worst_age:
                self.worst_age = worst

    async def _async_step(self) -> None:
        """Move the clocks to the next moment; let Home Assistant do what is due."""
        hass, driver = self.hass, self.driver
        moment = self._next_moment()
        self._age_samples(moment)
        seconds = moment - self.t
        driver.advance(moment - self.sim_t)
        self.t = self.sim_t = moment
        phase = self.story.phase_at(self.t)
        if self.t == phase.start and self.t < self.story.seconds:
            driver.begin(phase)
        if self.t % self.story.report_every(self.t) == 0:
            driver.report(self.t)
            driver.hass_side(hass, self.t)
        self.clock.tick(timedelta(seconds=seconds))
        updates = self.updates.count
        cpu = time.thread_time()
        fire_due_timers(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        cpu = time.thread_time() - cpu
        self.steps.append((cpu, self.updates.count - updates))
        driver.after_step(self.t)
        if self.all_devices_at is None and self._devices() >= driver.devices:
            self.all_devices_at = self.t
        self._shown = driver.shown_data_times(self.entries)

    async def _async_remove(self) -> None:
        """Remove the entries (a later run in the same Home Assistant adds its own)."""
        for entry in self.entries:
            await self.hass.config_entries.async_remove(entry.entry_id)
        await self.hass.async_block_till_done(wait_background_tasks=True)

    def _cpu(self) -> tuple[float | None, float | None]:
        """Per update (ms): the median over the steps that had updates, and the mean.

        None on the frozen clock (see the module docstring).
        """
        per_update = [cpu / updates for cpu, updates in self.steps if updates]
        if self.freezer is not None or not per_update:
            return None, None
        count = sum(updates for _, updates in self.steps)
        total = sum(cpu for cpu, _ in self.steps)
        return (
            round(statistics.median(per_update) * 1000, 3),
            round(total / count * 1000, 3),
        )

    def _result(
        self,
        setup_wall: float,
        setup_cpu: float,
        devices_at_setup: int,
        peak_kib: float | None,
        wall: float,
    ) -> Result:
        driver, story, updates = self.driver, self.story, self.updates
        requests = self.recorder.requests
        ages = [age for age in self.ages if age is not None]
        counted = driver.counted_requests(requests)
        median, mean = self._cpu()
        timed = self.freezer is None
        return Result(
            provider=driver.provider,
            devices=driver.devices,
            entries=len(self.entries),
            hours=story.hours,
            requests=len(requests),
            requests_by_path=by_path(requests),
            requests_per_hour_per_device=round(
                len(counted) / story.hours / driver.devices, 2
            ),
            http_429=sum(1 for r in requests if r.status == 429),
            failed_requests=sum(
                1 for r in requests if r.status is None or r.status >= 500
            ),
            new_data_share=(
                round(updates.new_data / updates.reads, 3)
                if driver.reports_data_age and updates.reads
                else None
            ),
            charging_age_median_s=round(statistics.median(ages), 1) if ages else None,
            charging_age_max_s=(
                None if self.worst_age is None else round(self.worst_age, 1)
            ),
            charging_shown_share=(
                round(len(ages) / len(self.ages), 3) if self.ages else None
            ),
            shown_share=round(self.shown / self.samples, 3) if self.samples else None,
            cpu_per_update_median_ms=median,
            cpu_per_update_mean_ms=mean,
            cpu_entity_states_per_update_ms=(
                round(updates.entity_cpu / updates.count * 1000, 3)
                if timed and updates.count
                else None
            ),
            updates=updates.count,
            failed_updates=updates.failed,
            postponed_updates=updates.postponed,
            early_retries=updates.early_retries,
            devices_at_setup=devices_at_setup,
            all_devices_after_s=self.all_devices_at,
            setup_wall_s=round(setup_wall, 3) if timed else None,
            setup_cpu_s=round(setup_cpu, 3) if timed else None,
            peak_memory_kib=None if peak_kib is None else round(peak_kib, 1),
            integration_warnings=0,
            quota=driver.quota(requests, story),
            steps=len(self.steps),
            wall_s=round(wall, 2),
        )
