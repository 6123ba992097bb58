"""Request spacing: never send requests to one device faster than it can answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class RequestSpacer:
    """Let at most one request start per `min_interval` seconds.

    Callers queue on a lock, so concurrent requests are spaced rather than dropped.
    """

    def __init__(
        self,
        min_interval: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        """Space requests `min_interval` seconds apart, measured with `clock`.

        The default clock is the event loop's, the one `asyncio.sleep` waits on.
        """
        self.min_interval = min_interval
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._lock = asyncio.Lock()
        self._next_start = 0.0

    async def wait(self) -> None:
        """Return when the next request may start."""
        async with self._lock:
            delay = self._next_start - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next_start = self._clock() + self.min_interval
