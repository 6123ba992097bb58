"""Request budgets: the token bucket, the stored call quota and the registry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import json
import math
import time

import pytest

from custom_components.ev_cloud.api.budget import (
    DAY,
    MIN_QUOTA_INTERVAL,
    WAITER_TIMEOUT,
    BudgetRegistry,
    QuotaBudget,
    RequestBudget,
    upgrade_fixed_window,
)
from custom_components.ev_cloud.api.errors import PollPostponedError, RateLimitedError

START = 1_750_000_000.0  # epoch seconds, June 2025
MONTH = 30 * DAY


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, now: float = START) -> None:
        """Start at `now`."""
        self.now = now

    def __call__(self) -> float:
        """The current time."""
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the time on (or back, when negative)."""
        self.now += seconds


class Changes:
    """Counts on_change calls."""

    def __init__(self) -> None:
        """No change yet."""
        self.count = 0

    def __call__(self) -> None:
        """One more change."""
        self.count += 1


def quota(
    clock: FakeClock,
    allowance: int = 300,
    *,
    reserve: float = 0.0,
    window: float = MONTH,
) -> tuple[QuotaBudget, Changes]:
    """A budget on `clock` and the counter of its on_change calls."""
    changes = Changes()
    budget = QuotaBudget(
        allowance=allowance,
        reserve=reserve,
        window=window,
        clock=clock,
        on_change=changes,
    )
    return budget, changes


def restart(
    budget: QuotaBudget,
    clock: FakeClock,
    *,
    on_change: Callable[[], None] | None = None,
    min_interval: float = MIN_QUOTA_INTERVAL,
) -> QuotaBudget:
    """What Home Assistant restores after a restart: the state through JSON."""
    stored = json.loads(json.dumps(budget.as_dict()))
    return QuotaBudget.from_dict(
        stored,
        allowance=budget.allowance,
        reserve=budget.reserve,
        window=budget.window,
        clock=clock,
        on_change=on_change,
        min_interval=min_interval,
    )


# RequestBudget


def test_request_budget_burst_refill_and_cap() -> None:
    """The bucket starts with the burst and refills per minute up to the maximum."""
    clock = FakeClock()
    budget = RequestBudget(burst=2, per_minute=60, maximum=3, clock=clock)
    budget.acquire()
    budget.acquire()
    with pytest.raises(RateLimitedError, match="used up") as caught:
        budget.acquire()
    assert caught.value.retry_after == pytest.approx(1.0)
    clock.advance(0.5)
    assert budget.available == pytest.approx(0.5)
    clock.advance(60)
    assert budget.available == 3
    budget.acquire()
    assert budget.available == 2


def test_request_budget_pause() -> None:
    """A pause empties the bucket and refuses every request until it ends."""
    clock = FakeClock()
    budget = RequestBudget(burst=5, per_minute=60, maximum=5, clock=clock)
    budget.pause(10)
    budget.pause(2)  # a shorter pause does not shorten the first
    assert budget.available == 0
    with pytest.raises(RateLimitedError, match="slow down") as caught:
        budget.acquire()
    assert caught.value.retry_after == 10
    clock.advance(10)
    assert budget.available == 5
    budget.acquire()


def test_request_budget_sustainable_interval() -> None:
    """The consumers share the refill rate; no consumer counts as one."""
    budget = RequestBudget(burst=1, per_minute=60, maximum=1, clock=FakeClock())
    assert budget.sustainable_interval(2) == 2
    budget.consumers = 3
    assert budget.sustainable_interval(2) == 6


async def test_request_budget_uses_the_event_loop_clock() -> None:
    """Without a clock the bucket uses the running loop's."""
    budget = RequestBudget(burst=1, per_minute=60, maximum=1)
    budget.acquire()
    assert budget.available < 1


def test_request_budget_commands_only_wait_for_a_pause() -> None:
    """A command takes no token and passes an empty bucket; a pause holds it."""
    clock = FakeClock()
    budget = RequestBudget(burst=1, per_minute=1, maximum=1, clock=clock)
    budget.acquire()
    with pytest.raises(RateLimitedError, match="used up"):
        budget.acquire()
    budget.acquire(command=True)
    budget.acquire(command=True)
    assert budget.available == 0
    budget.pause(30)
    with pytest.raises(RateLimitedError, match="slow down") as caught:
        budget.acquire(command=True)
    assert caught.value.retry_after == 30
    clock.advance(30)
    budget.acquire(command=True)


def test_request_budget_prepaid_takes_a_poll_whole() -> None:
    """A poll takes all it may send at once; its requests use them; the rest return."""
    clock = FakeClock()
    budget = RequestBudget(burst=5, per_minute=60, maximum=5, clock=clock)
    with budget.prepaid(3, "car"):
        assert budget.available == 2
        budget.acquire()
        budget.acquire()
        assert budget.available == 2  # the poll's own requests were taken already
    assert budget.available == 3  # the one it did not send came back
    with budget.prepaid(1, "car"):
        budget.acquire()
        budget.acquire()  # one more than it took: from the bucket
    assert budget.available == 1


def test_request_budget_prepaid_refuses_the_whole_poll() -> None:
    """A poll whose requests do not all fit waits for all of them, sending nothing."""
    clock = FakeClock()
    budget = RequestBudget(burst=2, per_minute=60, maximum=10, clock=clock)
    with (
        pytest.raises(PollPostponedError, match="used up") as caught,
        budget.prepaid(4, "car"),
    ):
        pytest.fail("the poll ran")  # pragma: no cover - must not run
    assert caught.value.retry_after == pytest.approx(2.0)  # 2 more at 1 a second
    assert budget.available == 2
    # A poll never asks for more than the bucket can ever hold.
    clock.advance(60)
    with budget.prepaid(50, "car"):
        assert budget.available == 0


def test_request_budget_put_off_polls_come_first() -> None:
    """A poll that needs many is not put off again and again by polls that need few."""
    clock = FakeClock()
    budget = RequestBudget(burst=2, per_minute=60, maximum=10, clock=clock)
    with pytest.raises(PollPostponedError), budget.prepaid(5, "big"):
        pytest.fail("the poll ran")  # pragma: no cover - must not run
    clock.advance(1)  # 3 requests: enough for a small poll, kept for the big one
    with pytest.raises(PollPostponedError) as caught, budget.prepaid(1, "small"):
        pytest.fail("the poll ran")  # pragma: no cover - must not run
    assert caught.value.retry_after == pytest.approx(3.0)  # 5 + 1 - 3 at 1 a second
    clock.advance(2)
    with budget.prepaid(5, "big"):  # first in line: the small poll waits
        pass
    clock.advance(1)
    with budget.prepaid(1, "small"):
        pass


def test_request_budget_forgets_a_poll_that_never_came_back() -> None:
    """A put-off device that went away holds the others back for ten minutes at most."""
    clock = FakeClock()
    budget = RequestBudget(burst=0, per_minute=60, maximum=10, clock=clock)
    with pytest.raises(PollPostponedError), budget.prepaid(10, "gone"):
        pytest.fail("the poll ran")  # pragma: no cover - must not run
    clock.advance(WAITER_TIMEOUT + 1)
    with budget.prepaid(1, "car"):
        pass


async def test_request_budget_prepaid_belongs_to_its_task() -> None:
    """Requests of another task (another device's poll) do not use a poll's tokens."""
    clock = FakeClock()
    budget = RequestBudget(burst=3, per_minute=60, maximum=3, clock=clock)
    entered, release = asyncio.Event(), asyncio.Event()

    async def poll() -> None:
        with budget.prepaid(2, "car"):
            entered.set()
            await release.wait()

    task = asyncio.create_task(poll())
    await entered.wait()
    budget.acquire()  # the last token, from the bucket
    with pytest.raises(RateLimitedError):
        budget.acquire()
    release.set()
    await task
    assert budget.available == 2


def test_request_budget_prepaid_after_a_refusal() -> None:
    """A 429 during a poll pauses its remaining requests and keeps them spent."""
    clock = FakeClock()
    budget = RequestBudget(burst=5, per_minute=60, maximum=5, clock=clock)
    with budget.prepaid(3, "car"):
        budget.acquire()
        budget.pause(30)
        with pytest.raises(RateLimitedError, match="slow down"):
            budget.acquire()
    assert budget.available == 0
    clock.advance(30)
    assert budget.available == 5


def test_request_budget_set_rate() -> None:
    """The time so far counts at the old rate; a lower maximum caps the bucket."""
    clock = FakeClock()
    budget = RequestBudget(burst=0, per_minute=60, maximum=100, clock=clock)
    budget.acquire(command=True)  # starts the clock
    clock.advance(10)
    budget.set_rate(6)
    assert budget.available == pytest.approx(10)
    clock.advance(10)
    assert budget.available == pytest.approx(11)
    budget.set_rate(6, maximum=5)
    assert budget.maximum == 5
    assert budget.available == 5
    with pytest.raises(ValueError, match="positive"):
        budget.set_rate(0)
    with pytest.raises(ValueError, match="positive"):
        budget.set_rate(math.inf)


def test_request_budget_limit_to_and_debt() -> None:
    """The bucket never holds more than the service says is left; below 0 is a debt."""
    clock = FakeClock()
    budget = RequestBudget(burst=50, per_minute=60, maximum=50, clock=clock)
    budget.limit_to(80)  # more than held: no change
    assert budget.available == 50
    budget.limit_to(3)
    assert budget.available == 3
    budget.limit_to(-9)
    with pytest.raises(RateLimitedError, match="used up") as caught:
        budget.acquire()
    assert caught.value.retry_after == pytest.approx(10)  # 10 tokens at 1 a second
    clock.advance(10)
    budget.acquire()


def test_request_budget_pause_keeps_a_debt() -> None:
    """A pause empties a bucket but does not forgive a debt."""
    clock = FakeClock()
    budget = RequestBudget(burst=5, per_minute=60, maximum=5, clock=clock)
    budget.limit_to(-4)
    budget.pause(2)
    clock.advance(2)
    with pytest.raises(RateLimitedError, match="used up") as caught:
        budget.acquire()
    assert caught.value.retry_after == pytest.approx(3)


def test_request_budget_follow_an_hourly_limit() -> None:
    """1000 an hour with a 20 % reserve: polls get 800 an hour and stop below 200."""
    clock = FakeClock()
    budget = RequestBudget(burst=100, per_minute=1, maximum=100, clock=clock)
    budget.follow(limit=1000, remaining=1000, window=3600, reserve=0.2)
    assert budget.per_minute == pytest.approx(800 / 60)
    assert budget.available == 100
    assert budget.sustainable_interval(1) == pytest.approx(4.5)
    budget.follow(limit=1000, remaining=250, window=3600, reserve=0.2)
    assert budget.available == pytest.approx(50)
    budget.follow(limit=1000, remaining=150, window=3600, reserve=0.2)
    assert budget.available == pytest.approx(-50)
    with pytest.raises(RateLimitedError) as caught:
        budget.acquire()
    assert caught.value.retry_after == pytest.approx(51 * 4.5)
    budget.acquire(command=True)  # commands use the reserve


def test_request_budget_follow_partial_headers() -> None:
    """A missing or useless limit changes nothing; a new limit changes the rate."""
    clock = FakeClock()
    budget = RequestBudget(burst=10, per_minute=2, maximum=10, clock=clock)
    budget.follow(limit=None, remaining=0, window=3600, reserve=0.2)
    budget.follow(limit=0, remaining=0, window=3600, reserve=0.2)
    assert budget.per_minute == 2
    assert budget.available == 10
    budget.follow(limit=6000, remaining=None, window=3600, reserve=0.5)
    assert budget.per_minute == pytest.approx(50)
    assert budget.available == 10
    with pytest.raises(ValueError, match="reserve"):
        budget.follow(limit=1, remaining=1, window=3600, reserve=1)


# BudgetRegistry


def test_registry_creates_each_budget_once() -> None:
    """The same key gives the same budget; the factory runs only the first time."""
    registry: BudgetRegistry[RequestBudget] = BudgetRegistry()
    made: list[RequestBudget] = []

    def factory() -> RequestBudget:
        made.append(RequestBudget(burst=1, per_minute=1, maximum=1))
        return made[-1]

    assert len(registry) == 0
    assert "server.example" not in registry
    first = registry.get("server.example", factory)
    assert registry.get("server.example", factory) is first
    other = registry.get("other.example", factory)
    assert other is not first
    assert made == [first, other]
    assert len(registry) == 2
    assert "server.example" in registry


# QuotaBudget: spending

# When the calls made at START (on its UTC day) leave a 30-day window.
START_DAY_LEAVES = (START // DAY + 1) * DAY + MONTH


def test_quota_fresh_budget() -> None:
    """A new budget counts nothing; its window is 30 days by default."""
    clock = FakeClock()
    budget, changes = quota(clock)
    assert budget.window == MONTH
    assert budget.spent == 0
    assert budget.calls_left == 300
    # Nothing counted: when a call made now would leave the window.
    assert budget.window_ends == START_DAY_LEAVES
    assert budget.paused_until == 0
    assert budget.reserved == 0
    assert changes.count == 0


def test_quota_default_clock_is_wall_clock() -> None:
    """Without a clock the budget uses epoch seconds, which survive restarts."""
    before = time.time()
    budget = QuotaBudget(allowance=1)
    assert before + MONTH <= budget.window_ends <= time.time() + MONTH + DAY


def test_quota_used_up() -> None:
    """Each call is counted; one too many waits until the oldest day leaves."""
    clock = FakeClock()
    budget, changes = quota(clock, allowance=3)
    for _ in range(3):
        budget.acquire()
    assert changes.count == 3
    assert budget.spent == 3
    assert budget.calls_left == 0
    clock.advance(DAY)
    with pytest.raises(RateLimitedError, match="used up") as caught:
        budget.acquire()
    assert caught.value.retry_after == START_DAY_LEAVES - clock.now
    assert budget.spent == 3
    assert changes.count == 3  # a refused call changes nothing


def test_quota_reserve_for_commands() -> None:
    """Polls leave the reserve to commands; commands may use all of it."""
    clock = FakeClock()
    budget, _ = quota(clock, allowance=300, reserve=0.1)
    assert budget.reserved == 30  # 300 * 0.1 is 30.000000000000004 in floats
    for _ in range(270):
        budget.acquire()
    with pytest.raises(RateLimitedError):
        budget.acquire()
    for _ in range(30):
        budget.acquire(command=True)
    with pytest.raises(RateLimitedError):
        budget.acquire(command=True)
    assert budget.spent == 300
    assert budget.calls_left == 0


@pytest.mark.parametrize(
    ("allowance", "reserve", "reserved"),
    [(5, 0.1, 1), (2000, 0.1, 200), (10, 0.0, 0), (10, 1.0, 10), (0, 0.5, 0)],
)
def test_quota_reserve_rounds_up(allowance: int, reserve: float, reserved: int) -> None:
    """Any reserve keeps at least one call for commands."""
    budget, _ = quota(FakeClock(), allowance=allowance, reserve=reserve)
    assert budget.reserved == reserved


def test_quota_window_rolls_day_by_day() -> None:
    """Each day's calls leave the window 30 days after the day ends."""
    clock = FakeClock()
    budget, changes = quota(clock, allowance=5)
    budget.acquire()
    budget.acquire()
    clock.advance(DAY)
    for _ in range(3):
        budget.acquire()
    with pytest.raises(RateLimitedError) as caught:
        budget.acquire()
    assert caught.value.retry_after == START_DAY_LEAVES - clock.now
    clock.now = START_DAY_LEAVES - 1
    assert budget.spent == 5
    assert changes.count == 5
    clock.advance(1)
    assert budget.spent == 3
    assert budget.calls_left == 2
    assert budget.window_ends == START_DAY_LEAVES + DAY
    assert changes.count == 6  # the day that left changed the stored state
    budget.acquire()
    clock.advance(DAY)
    assert budget.spent == 1  # the call of today stays
    clock.advance(MONTH)
    assert budget.spent == 0


def test_quota_counts_every_call_the_service_counts() -> None:
    """A service that counts the calls of the last 30 days never counts more.

    It counts a call from its time to 30 days later; the budget counts it at
    most a day longer than that.
    """
    clock = FakeClock()
    budget, _ = quota(clock, allowance=1_000_000)
    made: list[float] = []
    for step in range(400):  # a call every 5 hours, 83 days
        made.append(START + step * 5 * 3600)
        clock.now = made[-1]
        budget.acquire()
        for now in (made[-1], made[-1] + 3600, made[-1] + 4 * 3600):
            clock.now = now
            service = sum(1 for at in made if now - MONTH <= at <= now)
            longer = sum(1 for at in made if now - MONTH - DAY <= at <= now)
            assert service <= budget.spent <= longer, step


def test_quota_clock_going_back_keeps_the_count() -> None:
    """If the clock goes back, no call is given back."""
    clock = FakeClock()
    budget, changes = quota(clock, allowance=5)
    budget.acquire()
    clock.advance(-2 * DAY)
    assert budget.spent == 1
    assert budget.window_ends == START_DAY_LEAVES
    assert changes.count == 1


def test_quota_allowance_change_keeps_spent() -> None:
    """A new tier applies at once, to the calls already counted."""
    clock = FakeClock()
    budget, changes = quota(clock, allowance=300)
    for _ in range(10):
        budget.acquire()
    budget.allowance = 2000
    assert budget.spent == 10
    assert budget.calls_left == 1990
    budget.allowance = 5
    assert budget.calls_left == 0
    with pytest.raises(RateLimitedError):
        budget.acquire()
    budget.reserve = 0.5
    assert budget.reserved == 3
    assert changes.count == 10  # settings are not stored state


@pytest.mark.parametrize(
    ("allowance", "window", "reserve"),
    [
        (-1, MONTH, 0.0),
        (1, 0.0, 0.0),
        (1, -5.0, 0.0),
        (1, math.inf, 0.0),
        (1, math.nan, 0.0),
        (1, MONTH, -0.1),
        (1, MONTH, 1.5),
    ],
)
def test_quota_invalid_settings(allowance: int, window: float, reserve: float) -> None:
    """Settings come from our code and must make sense."""
    with pytest.raises(ValueError, match=r"must|cannot"):
        QuotaBudget(
            allowance=allowance, window=window, reserve=reserve, clock=FakeClock()
        )


# QuotaBudget: pauses


def test_quota_pause() -> None:
    """While paused, no call is counted, not even a command."""
    clock = FakeClock()
    budget, changes = quota(clock, allowance=10, reserve=0.5)
    budget.pause(3600)
    assert budget.paused_until == START + 3600
    assert changes.count == 1
    clock.advance(600)
    for command in (False, True):
        with pytest.raises(RateLimitedError, match="pause") as caught:
            budget.acquire(command=command)
        assert caught.value.retry_after == 3000
    assert budget.spent == 0
    clock.advance(3000)
    budget.acquire()
    assert budget.spent == 1


def test_quota_pause_until_never_shortens_nor_outlasts_a_window() -> None:
    """Pauses only grow, end at most a window and a day from now; NaN is ignored."""
    clock = FakeClock()
    budget, changes = quota(clock)
    budget.pause_until(START + 7200)
    budget.pause_until(START + 60)
    budget.pause(math.nan)
    budget.pause_until(math.nan)
    assert budget.paused_until == START + 7200
    assert changes.count == 1
    budget.pause_until(math.inf)
    assert budget.paused_until == START + MONTH + DAY
    assert changes.count == 2


def test_quota_pause_outlives_days_leaving() -> None:
    """A pause is the server's word: calls leaving the window do not end it."""
    clock = FakeClock()
    budget, _ = quota(clock, allowance=1)
    budget.acquire()
    clock.now = START_DAY_LEAVES - 60
    budget.pause(3600)
    clock.advance(60)
    assert budget.spent == 0
    with pytest.raises(RateLimitedError) as caught:
        budget.acquire()
    assert caught.value.retry_after == 3540


def test_quota_pause_until_calls_leave() -> None:
    """The service says the allowance is used up: wait for our oldest day to leave.

    With nothing counted (calls made elsewhere), try again in a day.
    """
    clock = FakeClock()
    budget, _ = quota(clock)
    budget.pause_until_calls_leave()
    assert budget.paused_until == START + DAY
    clock.advance(DAY)
    budget.acquire()
    clock.advance(DAY)
    budget.acquire()
    budget.pause_until_calls_leave()
    assert budget.paused_until == START_DAY_LEAVES + DAY
    assert budget.interval_for(1) == START_DAY_LEAVES + DAY - clock.now


# QuotaBudget: restarts


def test_quota_restarts_continue_the_window() -> None:
    """Ten restarts do not give ten allowances: the days counted carry on."""
    clock = FakeClock()
    budget, _ = quota(clock, allowance=300, reserve=0.1)
    for _ in range(10):
        for _ in range(10):
            budget.acquire()
        clock.advance(3 * 3600)
        budget = restart(budget, clock)
    assert budget.spent == 100
    assert budget.calls_left == 200
    assert budget.window_ends == START_DAY_LEAVES
    assert budget.reserved == 30


def test_quota_restart_keeps_pause_and_hook() -> None:
    """The pause survives; the restored budget reports its changes."""
    clock = FakeClock()
    budget, _ = quota(clock)
    budget.pause(7200)
    changes = Changes()
    budget = restart(budget, clock, on_change=changes, min_interval=30.0)
    assert budget.paused_until == START + 7200
    assert budget.min_interval == 30
    clock.advance(7200)
    budget.acquire()
    assert changes.count == 1


def test_quota_restart_after_the_days_left() -> None:
    """Stored days that have left the window count no more."""
    clock = FakeClock()
    budget, _ = quota(clock)
    for _ in range(50):
        budget.acquire()
    stored = budget.as_dict()
    clock.now = START_DAY_LEAVES
    changes = Changes()
    budget = QuotaBudget.from_dict(
        stored, allowance=300, clock=clock, on_change=changes
    )
    assert budget.spent == 0
    assert changes.count == 0  # restoring is not a change to save


def test_quota_as_dict_is_the_current_window() -> None:
    """What is stored is the calls per (UTC) day still in the window."""
    clock = FakeClock()
    budget, changes = quota(clock)
    budget.acquire()
    clock.advance(DAY)
    budget.acquire()
    budget.acquire()
    assert budget.as_dict() == {
        "days": {"2025-06-15": 1, "2025-06-16": 2},
        "spent": 3,
        "paused_until": 0.0,
    }
    clock.now = START_DAY_LEAVES
    assert budget.as_dict() == {
        "days": {"2025-06-16": 2},
        "spent": 2,
        "paused_until": 0.0,
    }
    assert changes.count == 3  # as_dict itself does not ask for another save


def test_quota_restores_integral_float_counts() -> None:
    """A count stored as 5.0 is still five calls."""
    stored = {"days": {"2025-06-15": 5.0}}
    budget = QuotaBudget.from_dict(stored, allowance=300, clock=FakeClock())
    assert budget.spent == 5
    assert budget.paused_until == 0


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "garbage",
        [1, 2, 3],
        {},
        {"days": None},
        {"days": "2025-06-15"},
        {"days": [["2025-06-15", 5]]},
        # The form of a fixed window is upgraded by the store, not read here.
        {"window_start": START, "spent": 5},
        {1: START, 2: 5},
    ],
)
def test_quota_garbage_gives_fresh_budget(stored: object) -> None:
    """Unreadable stored state gives a new, working budget instead of an error."""
    clock = FakeClock()
    clock.advance(3600)
    budget = QuotaBudget.from_dict(stored, allowance=300, clock=clock)
    assert budget.spent == 0
    assert budget.window_ends == START_DAY_LEAVES
    assert budget.paused_until == 0
    budget.acquire()


def test_quota_garbage_days_are_left_out() -> None:
    """Days or counts that cannot be read are left out, the others kept."""
    stored = {
        "days": {
            "2025-06-15": 5,
            "yesterday": 3,
            "2025-06-14": -1,
            "2025-06-13": 2.5,
            "2025-06-12": "4",
            "2025-06-11": True,
            "2025-06-10": math.nan,
            7: 1,
        }
    }
    budget = QuotaBudget.from_dict(stored, allowance=300, clock=FakeClock())
    assert budget.spent == 5


@pytest.mark.parametrize(
    "paused_until",
    ["soon", -1, math.nan, None, False, START + MONTH + DAY + 1],
)
def test_quota_garbage_pause_is_dropped(paused_until: object) -> None:
    """An unreadable or far too long pause is dropped; the count is kept."""
    stored = {"days": {"2025-06-15": 5}, "paused_until": paused_until}
    budget = QuotaBudget.from_dict(stored, allowance=300, clock=FakeClock())
    assert budget.spent == 5
    assert budget.paused_until == 0
    budget.acquire()


# QuotaBudget: the stored form of a fixed window


def test_quota_upgrade_spreads_a_fixed_window_over_its_days() -> None:
    """The count of a window started 9 days ago, over its 10 days; none lost.

    The odd calls go to the newest days, which stay in the window longest.
    """
    old = {"window_start": START - 9 * DAY, "spent": 32, "paused_until": START + 60}
    upgraded = upgrade_fixed_window(old, START)
    assert upgraded["days"] == {
        **{f"2025-06-{day:02}": 3 for day in range(6, 14)},
        "2025-06-14": 4,
        "2025-06-15": 4,
    }
    assert upgraded["paused_until"] == START + 60
    budget = QuotaBudget.from_dict(upgraded, allowance=300, clock=FakeClock())
    assert budget.spent == 32
    assert budget.paused_until == START + 60


def test_quota_upgrade_of_a_window_that_ended() -> None:
    """A fixed window that ended: its calls over its own days, older ones leave."""
    old = {"window_start": START - 50 * DAY, "spent": 62}
    upgraded = upgrade_fixed_window(old, START)
    days = upgraded["days"]
    assert isinstance(days, dict)
    assert set(days.values()) == {2}  # 62 calls over 31 days
    assert min(days) == "2025-04-26"  # START - 50 days
    assert max(days) == "2025-05-26"  # the window's last second
    budget = QuotaBudget.from_dict(upgraded, allowance=300, clock=FakeClock())
    # Counted still: the days from 2025-05-16 on (30 days before today's end).
    assert budget.spent == sum(
        count for day, count in days.items() if day >= "2025-05-16"
    )


def test_quota_upgrade_of_a_window_in_the_future() -> None:
    """A start after now (the clock went back): every call on today."""
    upgraded = upgrade_fixed_window({"window_start": START + DAY, "spent": 7}, START)
    assert upgraded["days"] == {"2025-06-15": 7}


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "garbage",
        {},
        {"spent": 5},
        {"window_start": START},
        {"window_start": "yesterday", "spent": 5},
        {"window_start": math.nan, "spent": 5},
        {"window_start": True, "spent": 5},
        {"window_start": START, "spent": -5},
        {"window_start": START, "spent": 2.5},
        {"window_start": START, "spent": "5"},
    ],
)
def test_quota_upgrade_of_garbage_is_empty(stored: object) -> None:
    """What cannot be read gives an empty state (a fresh budget)."""
    assert upgrade_fixed_window(stored, START) == {}


# QuotaBudget: poll intervals


def test_quota_interval_keeps_a_steady_pace() -> None:
    """Nothing counted: the polls' share over a window and a day, evenly."""
    clock = FakeClock()
    budget, _ = quota(clock, allowance=300)
    pace = (MONTH + DAY) / 300  # 8928 s, the free tier
    assert budget.interval_for(1) == budget.pace() == pace
    assert budget.interval_for(2) == 2 * pace
    assert budget.interval_for(1, requests_per_poll=2) == 2 * pace
    assert budget.interval_for(0) == pace  # no consumer yet counts as one
    budget.reserve = 0.1
    assert budget.interval_for(1) == pytest.approx((MONTH + DAY) / 270)
    assert budget.slowdown() == 1


def test_quota_polls_at_the_interval_always_fit() -> None:
    """Polls at the interval, restarts between: never refused, the window used.

    Each restart costs one poll more (Home Assistant reads at setup).
    """
    clock = FakeClock()
    budget, _ = quota(clock, allowance=300)
    made: list[float] = []
    for step in range(1000):
        budget.acquire()  # RateLimitedError would fail the test
        made.append(clock.now)
        if step % 25 == 24:
            budget = restart(budget, clock)
            clock.advance(60)
            continue
        clock.advance(budget.interval_for(1))
    end = made[-1]
    assert end > START + 90 * DAY
    for at in made:
        in_window = sum(1 for other in made if at - MONTH <= other <= at)
        assert in_window <= 300
    last_month = sum(1 for at in made if at > end - MONTH)
    assert last_month >= 280


def test_quota_interval_slows_after_a_burst() -> None:
    """Calls spent at once (commands): polls slow until they leave the window."""
    clock = FakeClock()
    budget, _ = quota(clock, allowance=300)
    for _ in range(100):
        budget.acquire(command=True)
    # 200 polls may fall before today's 100 calls leave.
    assert budget.interval_for(1) == pytest.approx((START_DAY_LEAVES - START) / 201)
    assert 1 < budget.slowdown() < 2
    for _ in range(100):
        budget.acquire(command=True)
    assert budget.slowdown() > 2


def test_quota_interval_floor() -> None:
    """A large allowance never polls faster than once a minute."""
    clock = FakeClock()
    budget, _ = quota(clock, allowance=10_000, window=DAY)
    assert budget.interval_for(1) == MIN_QUOTA_INTERVAL
    budget.min_interval = 1.0
    assert budget.interval_for(1) == pytest.approx(2 * DAY / 10_000)


def test_quota_interval_when_used_up() -> None:
    """With no polls left, wait for the oldest day to leave; then the pace."""
    clock = FakeClock()
    budget, _ = quota(clock, allowance=10, reserve=0.5)
    for _ in range(5):
        budget.acquire()
    clock.advance(DAY)
    assert budget.interval_for(1) == START_DAY_LEAVES - clock.now
    clock.now = START_DAY_LEAVES - 10
    assert budget.interval_for(1) == budget.pace() == (MONTH + DAY) / 5


def test_quota_interval_few_polls_many_consumers() -> None:
    """Too few polls for every consumer: none waits past a window and a day."""
    clock = FakeClock()
    budget, _ = quota(clock, allowance=3)
    assert budget.interval_for(5) == MONTH + DAY


def test_quota_interval_waits_out_a_pause() -> None:
    """While paused, the next poll comes no earlier than the pause's end."""
    clock = FakeClock()
    budget, _ = quota(clock, allowance=10_000)
    budget.pause(DAY)
    assert budget.interval_for(1) == DAY
    assert budget.slowdown() == 1  # a pause is not the allowance's doing
    clock.advance(DAY)
    assert budget.interval_for(1) == pytest.approx((MONTH + DAY) / 10_000)
