"""Request budgets: how many requests a service lets one client send, and when.

`RequestBudget` is a token bucket for services that limit requests per minute;
`QuotaBudget` is an allowance of calls in a rolling window (e.g. 30 days) that is
stored and restored across restarts; `BudgetRegistry` shares one budget per key
(e.g. a server host) between every config entry that uses it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
import contextlib
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date
import math
import time
from typing import NotRequired, Required, Self, TypedDict, Unpack

from .errors import PollPostponedError, RateLimitedError


@dataclass(slots=True)
class _Prepaid:
    budget: RequestBudget
    left: int


# Seconds after which a put-off poll that did not come back loses its place.
WAITER_TIMEOUT = 600.0
# The requests a task took ahead for its unit of work (`RequestBudget.prepaid`).
_PREPAID: ContextVar[_Prepaid | None] = ContextVar("prepaid", default=None)


class RequestBudget:
    """A token bucket shared by every client that talks to one service host.

    It starts with `burst` requests, regains `per_minute` a minute up to `maximum`,
    and can be paused (after a 429) so that no client of the host sends anything
    until the pause ends. A request that does not fit raises RateLimitedError with
    the seconds until it would, instead of being sent and refused.
    """

    def __init__(
        self,
        *,
        burst: int,
        per_minute: float,
        maximum: int,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """A bucket of `burst` requests refilled at `per_minute`, up to `maximum`."""
        self.per_minute = per_minute
        self.maximum = maximum
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._tokens = float(burst)
        self._updated: float | None = None
        self._paused_until = 0.0
        # Put-off polls by key: (when first put off, requests they need).
        self._waiting: dict[str, tuple[float, int]] = {}
        # How many devices poll through this budget; their polls share it.
        self.consumers = 0

    def _refill(self) -> float:
        now = self._clock()
        if self._updated is not None:
            gained = (now - self._updated) * self.per_minute / 60
            self._tokens = min(float(self.maximum), self._tokens + gained)
        self._updated = now
        return now

    @property
    def available(self) -> float:
        """Requests that may be sent right now."""
        now = self._refill()
        return 0.0 if now < self._paused_until else self._tokens

    def acquire(self, *, command: bool = False) -> None:
        """Take one request from the budget, or raise RateLimitedError.

        A `command` (something the user asked for, not a poll) is only held back
        by a pause: it takes no token, so a budget that polls used up never
        refuses it. Services whose limit counts commands too keep a share of it
        for them (see `follow`).
        """
        prepaid = _PREPAID.get()
        if (
            not command
            and prepaid is not None
            and prepaid.budget is self
            and prepaid.left > 0
            and self._refill() >= self._paused_until
        ):
            prepaid.left -= 1
            return
        self._take(0 if command else 1)

    def _forget_waiters(self, now: float) -> None:
        """Drop put-off polls that did not come back (their device went away)."""
        for key, (since, _) in list(self._waiting.items()):
            if now - since > WAITER_TIMEOUT:
                del self._waiting[key]

    def _take(self, count: int, keep: float = 0.0) -> None:
        """Take `count` requests, or raise RateLimitedError with the wait for them.

        None (0) only waits for a pause to end; `keep` requests stay for others.
        """
        now = self._refill()
        if now < self._paused_until:
            raise RateLimitedError(
                "The server asked to slow down", self._paused_until - now
            )
        if count and self._tokens - keep < count:
            wait = (count + keep - self._tokens) * 60 / self.per_minute
            raise RateLimitedError("The request budget is used up", wait)
        self._tokens -= count

    @contextlib.contextmanager
    def prepaid(self, count: int, key: str) -> Iterator[None]:
        """Take the `count` requests a unit of work (one poll) may send, at once.

        Polls that take their requests one by one, interleaved, can each get
        the first and be refused the next: every poll fails while the budget
        still refills. A poll that takes all it may need first either runs
        whole or is put off (PollPostponedError) before it sends anything.
        Requests it then sends in this task use what it took; what it did not
        use goes back.

        Put-off polls come first, in the order they were put off (`key` names
        the device): the others leave the one that waited longest its
        requests, so a poll that needs many is not put off again and again by
        polls that need few.
        """
        count = min(count, self.maximum)
        now = self._refill()
        self._forget_waiters(now)
        since = self._waiting.get(key, (now, 0))[0]
        first = min(
            (entry for other, entry in self._waiting.items() if other != key),
            default=None,
        )
        # Leave the longest-waiting poll its requests (if it waited longer).
        keep = first[1] if first is not None and first[0] < since else 0
        try:
            self._take(count, keep=keep)
        except RateLimitedError as err:
            self._waiting[key] = (since, count)
            raise PollPostponedError(str(err), err.retry_after) from None
        self._waiting.pop(key, None)
        prepaid = _Prepaid(self, count)
        reset = _PREPAID.set(prepaid)
        try:
            yield
        finally:
            _PREPAID.reset(reset)
            if self._refill() >= self._paused_until:  # a 429 keeps them spent
                self._tokens = min(float(self.maximum), self._tokens + prepaid.left)

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` (the server refused a request)."""
        now = self._refill()
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = min(self._tokens, 0.0)

    def set_rate(self, per_minute: float, maximum: int | None = None) -> None:
        """Refill at `per_minute` from now on (and hold at most `maximum`, if given).

        What was gained so far is counted at the old rate first.
        """
        if not math.isfinite(per_minute) or per_minute <= 0:
            raise ValueError("The rate must be a positive number of requests")
        self._refill()
        self.per_minute = per_minute
        if maximum is not None:
            self.maximum = maximum
            self._tokens = min(self._tokens, float(maximum))

    def limit_to(self, tokens: float) -> None:
        """The service says only `tokens` more requests fit: hold no more than that.

        A negative value is a debt: the bucket refills from below zero, so polls
        wait until it is paid back at `per_minute`.
        """
        self._refill()
        self._tokens = min(self._tokens, tokens)

    def follow(
        self,
        *,
        limit: int | None,
        remaining: int | None,
        window: float,
        reserve: float,
    ) -> None:
        """Follow a service that reports its `limit` per `window` and what remains.

        Polls may use the share `1 - reserve` of the limit, the rest is kept for
        commands (which `acquire(command=True)` never refuses): the refill rate
        becomes `(1 - reserve) * limit` per window, and the bucket holds no more
        than `remaining - reserve * limit`. Below the reserve that is negative,
        and polls stop until the debt is paid back at the poll rate; when the
        service counts a rolling window, that is about when requests of the same
        rate age out of it. Example, ev.energy (1000 requests per rolling hour,
        20 % reserve): polls refill at 800 an hour (13.3 a minute, one every
        4.5 s); with 150 remaining, polls wait 51 * 4.5 s, about 3.8 minutes.

        A value the service did not send (None) or that is not positive (a
        limit) leaves that part unchanged.
        """
        if not 0 <= reserve < 1:
            raise ValueError("The reserve must be a share from 0 to below 1")
        if limit is not None and limit > 0:
            self.set_rate((1 - reserve) * limit * 60 / window)
        if remaining is not None and limit is not None and limit > 0:
            self.limit_to(remaining - reserve * limit)

    def sustainable_interval(self, requests_per_poll: float) -> float:
        """Seconds between one device's polls so that all consumers fit the budget."""
        return requests_per_poll * max(self.consumers, 1) * 60 / self.per_minute


class BudgetRegistry[B]:
    """Budgets by key (e.g. a server host), each created once and then shared.

    Every config entry that talks to the same host asks the registry for the host's
    budget and gets the same object, so their requests count against one limit.
    """

    def __init__(self) -> None:
        """An empty registry."""
        self._budgets: dict[str, B] = {}

    def get(self, key: str, factory: Callable[[], B]) -> B:
        """The budget of `key`, made by `factory` the first time it is asked for."""
        if key not in self._budgets:
            self._budgets[key] = factory()
        return self._budgets[key]

    def __contains__(self, key: object) -> bool:
        """Whether `key` has a budget yet."""
        return key in self._budgets

    def __len__(self) -> int:
        """How many budgets have been created."""
        return len(self._budgets)


DAY = 86_400.0
# Never poll one device through a quota more often than once a minute: a quota of
# calls per month is not meant for that (EVLinkHA Pro, the largest tier, spreads
# 10,000 calls over 30 days, one every 259 s), and the data behind such services
# are a cache that the vendor cloud refreshes on a scale of minutes.
MIN_QUOTA_INTERVAL = 60.0

_DAYS = "days"
_SPENT = "spent"
_PAUSED_UNTIL = "paused_until"
# The stored form of a fixed window (before the window rolled): its start.
_WINDOW_START = "window_start"
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class QuotaOptions(TypedDict, total=False):
    """The settings of a QuotaBudget (what `from_dict` passes on)."""

    allowance: Required[int]
    window: NotRequired[float]
    reserve: NotRequired[float]
    clock: NotRequired[Callable[[], float]]
    on_change: NotRequired[Callable[[], None] | None]
    min_interval: NotRequired[float]


def _number(value: object) -> float | None:
    """A finite, non-negative number, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def _count(value: object) -> int | None:
    """A whole, non-negative number (5 or 5.0), or None."""
    number = _number(value)
    return int(number) if number is not None and number.is_integer() else None


def _day(epoch: float) -> int:
    """The UTC day `epoch` falls on, as days since 1970-01-01."""
    return math.floor(epoch / DAY)


def _day_key(day: int) -> str:
    """A day as it is stored: its ISO date ("2027-01-31")."""
    return date.fromordinal(_EPOCH_ORDINAL + day).isoformat()


def _stored_day(key: object) -> int | None:
    """A stored ISO date as days since 1970-01-01, or None."""
    if not isinstance(key, str):
        return None
    try:
        return date.fromisoformat(key).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


def upgrade_fixed_window(
    state: object, now: float, window: float = 30 * DAY
) -> dict[str, object]:
    """The stored count of a fixed window (`window_start`, `spent`) as calls per day.

    When each call was made is not known: the count is spread evenly over the
    days from the window's start to now (or to its end), the odd calls on the
    newest days, which stay in a rolling window longest. No call is lost. A state
    that cannot be read gives an empty one.
    """
    if not isinstance(state, Mapping):
        return {}
    start = _number(state.get(_WINDOW_START))
    spent = _count(state.get(_SPENT))
    if start is None or spent is None:
        return {}
    first = _day(min(start, now))
    last = max(_day(min(now, start + window - 1)), first)
    span = last - first + 1
    share, odd = divmod(spent, span)
    days: dict[str, int] = {}
    for index in range(span):
        count = share + (1 if index >= span - odd else 0)
        if count:
            days[_day_key(first + index)] = count
    paused = _number(state.get(_PAUSED_UNTIL))
    return {_DAYS: days, _SPENT: spent, _PAUSED_UNTIL: paused or 0.0}


class QuotaBudget:
    """An allowance of calls in any window (e.g. 300 in any 30 days), kept stored.

    The window rolls, as the service counts it: a call counts until `window`
    seconds after it was made. The budget keeps how many calls it made on each
    (UTC) day, and a day counts until `window` after the day's end; so it counts
    every call the service still counts, and some for up to a day longer. A share
    `reserve` of the allowance is kept for commands: polls may use only the rest.
    Times are wall-clock epoch seconds (`time.time` by default, not the event
    loop's clock) because they are stored and restored.

    The state worth keeping (calls per day, pause) round-trips through
    `as_dict`/`from_dict`; `on_change` is called after every change of it, so that
    the owner can schedule a save.
    """

    def __init__(
        self,
        *,
        allowance: int,
        window: float = 30 * DAY,
        reserve: float = 0.0,
        clock: Callable[[], float] = time.time,
        on_change: Callable[[], None] | None = None,
        min_interval: float = MIN_QUOTA_INTERVAL,
        state: object = None,
    ) -> None:
        """An allowance of `allowance` calls in any `window` seconds.

        `reserve` (0 to 1) is the share of the allowance only commands may use.
        `state` is what `as_dict` returned before a restart; without it, or where
        it cannot be read, no call is counted.
        """
        if not math.isfinite(window) or window <= 0:
            raise ValueError("The window must be a positive number of seconds")
        self.allowance = allowance
        self.reserve = reserve
        self.window = float(window)
        self.min_interval = min_interval
        self.on_change = on_change
        self._clock = clock
        # Calls counted, by UTC day (days since 1970-01-01).
        self._days: dict[int, int] = {}
        self._paused_until = 0.0
        now = clock()
        if isinstance(state, Mapping):
            self._restore(state, now)
        self._drop_gone(now)

    @classmethod
    def from_dict(cls, data: object, **options: Unpack[QuotaOptions]) -> Self:
        """A budget that continues the state `as_dict` returned (see `__init__`)."""
        return cls(state=data, **options)

    def _restore(self, state: Mapping[object, object], now: float) -> None:
        """Continue a stored state, leaving out what cannot be read.

        A day after today (the clock went back) still counts: too few calls are
        better than too many. A pause that cannot be read, or that ends more than
        a window and a day from now, is dropped.
        """
        days = state.get(_DAYS)
        if isinstance(days, Mapping):
            for key, value in days.items():
                day, count = _stored_day(key), _count(value)
                if day is not None and count:
                    self._days[day] = self._days.get(day, 0) + count
        paused = _number(state.get(_PAUSED_UNTIL))
        if paused is not None and paused <= now + self.window + DAY:
            self._paused_until = paused

    @property
    def allowance(self) -> int:
        """Calls per window; changing it keeps the calls counted."""
        return self._allowance

    @allowance.setter
    def allowance(self, allowance: int) -> None:
        if allowance < 0:
            raise ValueError("The allowance cannot be negative")
        self._allowance = allowance

    @property
    def reserve(self) -> float:
        """The share of the allowance that only commands may use."""
        return self._reserve

    @reserve.setter
    def reserve(self, reserve: float) -> None:
        if not 0 <= reserve <= 1:
            raise ValueError("The reserve must be a share between 0 and 1")
        self._reserve = reserve

    @property
    def reserved(self) -> int:
        """Calls of each window that only commands may use (rounded up)."""
        # round() first so that float noise (300 * 0.1 = 30.000000000000004) does
        # not reserve one call more.
        return math.ceil(round(self._allowance * self._reserve, 6))

    def _leaves(self, day: int) -> float:
        """When the calls of `day` no longer count (epoch seconds)."""
        return (day + 1) * DAY + self.window

    def _drop_gone(self, now: float) -> bool:
        """Forget the days that left the window; True when any did."""
        gone = [day for day in self._days if self._leaves(day) <= now]
        for day in gone:
            del self._days[day]
        return bool(gone)

    def _now(self) -> float:
        now = self._clock()
        if self._drop_gone(now):
            self._changed()
        return now

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _returns(self) -> list[tuple[float, int]]:
        """The counted calls as (when they leave the window, how many), oldest first."""
        return [(self._leaves(day), self._days[day]) for day in sorted(self._days)]

    def _wait_for(self, calls: float, available: float, now: float) -> float:
        """Seconds until `calls` fit, with `available` now and the days that leave."""
        wait = 0.0
        for leaves, count in self._returns():
            if available >= calls:
                break
            available += count
            wait = leaves - now
        return wait if available >= calls else self.window + DAY

    @property
    def spent(self) -> int:
        """Calls counted in the window."""
        self._now()
        return sum(self._days.values())

    @property
    def calls_left(self) -> int:
        """Calls left in the window now, the command reserve included."""
        return max(self._allowance - self.spent, 0)

    @property
    def window_ends(self) -> float:
        """When the oldest counted day leaves the window (epoch seconds).

        Its calls may then be made again. With no call counted: when a call made
        now would leave it.
        """
        now = self._now()
        return self._leaves(min(self._days, default=_day(now)))

    @property
    def paused_until(self) -> float:
        """Until when no call may be made (epoch seconds; in the past if none)."""
        return self._paused_until

    def acquire(self, *, command: bool = False) -> None:
        """Count one call, or raise RateLimitedError with the seconds to wait.

        Polls may not use the command reserve; commands may. Nothing is counted
        while the budget is paused.
        """
        now = self._now()
        if now < self._paused_until:
            raise RateLimitedError(
                "The server asked to pause its calls", self._paused_until - now
            )
        limit = self._allowance if command else self._allowance - self.reserved
        available = limit - sum(self._days.values())
        if available < 1:
            raise RateLimitedError(
                "The call allowance is used up until earlier calls leave its window",
                self._wait_for(1, available, now),
            )
        today = _day(now)
        self._days[today] = self._days.get(today, 0) + 1
        self._changed()

    def pause_until(self, epoch: float) -> None:
        """Make no call until `epoch`.

        A pause never ends more than a window and a day from now (when every call
        counted now has left it), never shortens one in progress, and one that is
        not a number is ignored.
        """
        now = self._now()
        until = min(epoch, now + self.window + DAY)
        if until > self._paused_until:
            self._paused_until = until
            self._changed()

    def pause(self, seconds: float) -> None:
        """Make no call for `seconds`."""
        self.pause_until(self._clock() + seconds)

    def pause_until_calls_leave(self) -> None:
        """The service says its allowance is used up: pause until our oldest day leaves.

        The service's window rolls too: by then that day's calls no longer count
        there either, and a call may fit again. With no call counted here (the
        service counts calls made elsewhere), try again in a day.
        """
        now = self._now()
        self.pause_until(self._leaves(min(self._days)) if self._days else now + DAY)

    def pace(self, consumers: int = 1, *, requests_per_poll: float = 1.0) -> float:
        """Seconds between one device's polls at the steady pace.

        At this pace the polls never use more than their share of the allowance in
        any window, counted by days (a window and a day).
        """
        polls = self._allowance - self.reserved
        span = self.window + DAY
        demand = requests_per_poll * max(consumers, 1)
        return min(span * demand / polls, span) if polls > 0 else span

    def _spread(self, now: float, demand: float) -> float:
        """The interval that keeps every coming window within the polls' share.

        Before each counted day leaves, polls may use only what is available until
        then: `n` calls allow at most `n` polls before that time. Without calls
        counted beyond the steady pace, that is the pace.
        """
        available = self._allowance - self.reserved - sum(self._days.values())
        interval = self.pace(requests_per_poll=demand)
        for leaves, count in self._returns():
            polls = max(math.floor(available / demand), 0)
            interval = max(interval, (leaves - now) / (polls + 1))
            available += count
        return min(interval, self.window + DAY)

    def slowdown(self, consumers: int = 1, *, requests_per_poll: float = 1.0) -> float:
        """How many times their steady pace the calls counted make polls wait."""
        now = self._now()
        demand = requests_per_poll * max(consumers, 1)
        return self._spread(now, demand) / self.pace(requests_per_poll=demand)

    def interval_for(self, consumers: int, *, requests_per_poll: float = 1.0) -> float:
        """Seconds between one device's polls so that no window holds too many calls.

        `consumers` devices, each spending `requests_per_poll` calls a poll, go at
        the steady pace (`pace`), or slower while calls counted before must first
        leave the window; never faster than `min_interval`, nor before a pause ends.
        """
        now = self._now()
        demand = requests_per_poll * max(consumers, 1)
        interval = self._spread(now, demand)
        return max(interval, self.min_interval, self._paused_until - now)

    def as_dict(self) -> dict[str, object]:
        """The state to store (JSON-safe) and give back to `from_dict`.

        `spent` is what the days add up to, for whoever reads the store.
        """
        self._drop_gone(self._clock())
        return {
            _DAYS: {_day_key(day): self._days[day] for day in sorted(self._days)},
            _SPENT: sum(self._days.values()),
            _PAUSED_UNTIL: self._paused_until,
        }
