"""Request budgets: how many requests a service lets one client send, and when."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .errors import RateLimitedError


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

    def acquire(self) -> None:
        """Take one request from the budget, or raise RateLimitedError."""
        now = self._refill()
        if now < self._paused_until:
            raise RateLimitedError(
                "The server asked to slow down", self._paused_until - now
            )
        if self._tokens < 1:
            wait = (1 - self._tokens) * 60 / self.per_minute
            raise RateLimitedError("The request budget is used up", wait)
        self._tokens -= 1

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` (the server refused a request)."""
        now = self._refill()
        self._paused_until = max(self._paused_until, now + seconds)
        self._tokens = 0.0

    def sustainable_interval(self, requests_per_poll: float) -> float:
        """Seconds between one device's polls so that all consumers fit the budget."""
        return requests_per_poll * max(self.consumers, 1) * 60 / self.per_minute
