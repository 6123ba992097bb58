"""Quota budgets that survive restarts: kept in Home Assistant's storage.

A service that allows so many calls in any 30 days must not hand out a fresh
allowance at every restart; the calls counted, day by day, are stored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Unpack

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .api.budget import DAY, QuotaBudget, QuotaOptions, upgrade_fixed_window
from .const import DOMAIN

STORAGE_VERSION = 1
# 2: the calls of each day (a rolling window); 1: the count of a fixed window.
STORAGE_MINOR_VERSION = 2
# Spent calls are written at most this often (and when Home Assistant stops).
SAVE_DELAY = 60.0


class QuotaStore(Store[dict[str, Any]]):
    """Where a quota budget is kept; a fixed window's count becomes calls per day."""

    def __init__(
        self, hass: HomeAssistant, key: str, clock: Callable[[], float], window: float
    ) -> None:
        """The store `key`, upgraded as of `clock` for a window of `window` s."""
        super().__init__(
            hass,
            STORAGE_VERSION,
            key,
            private=True,
            minor_version=STORAGE_MINOR_VERSION,
        )
        self._clock = clock
        self._window = window

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: Any
    ) -> dict[str, Any]:
        """Stored before the window rolled: spread its count over its days."""
        if old_minor_version < 2:
            return upgrade_fixed_window(old_data, self._clock(), self._window)
        return old_data if isinstance(old_data, dict) else {}


@dataclass(slots=True)
class StoredQuota:
    """A quota budget and where it is kept."""

    budget: QuotaBudget
    store: Store[dict[str, Any]]

    async def async_save(self) -> None:
        """Write now (an entry unloads: the next setup reads what was spent)."""
        await self.store.async_save(self.budget.as_dict())


async def async_load_quota(
    hass: HomeAssistant, key: str, **options: Unpack[QuotaOptions]
) -> StoredQuota:
    """The stored quota budget `key` (e.g. a provider and account), or a new one."""
    # Home Assistant's clock: the one its tests can move, as real as time.time.
    clock = options.setdefault("clock", lambda: dt_util.utcnow().timestamp())
    store = QuotaStore(
        hass, f"{DOMAIN}.quota.{key}", clock, options.get("window", 30 * DAY)
    )
    budget = QuotaBudget.from_dict(await store.async_load(), **options)
    budget.on_change = lambda: store.async_delay_save(budget.as_dict, SAVE_DELAY)
    return StoredQuota(budget, store)
