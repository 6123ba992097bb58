"""Quota budgets that survive restarts: kept in Home Assistant's storage.

A service that allows so many calls a month must not hand out a fresh allowance
at every restart; the calls spent in the current window are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Unpack

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .api.budget import QuotaBudget, QuotaOptions
from .const import DOMAIN

STORAGE_VERSION = 1
# Spent calls are written at most this often (and when Home Assistant stops).
SAVE_DELAY = 60.0


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
    store: Store[dict[str, Any]] = Store(
        hass, STORAGE_VERSION, f"{DOMAIN}.quota.{key}", private=True
    )
    # Home Assistant's clock: the one its tests can move, as real as time.time.
    options.setdefault("clock", lambda: dt_util.utcnow().timestamp())
    budget = QuotaBudget.from_dict(await store.async_load(), **options)
    budget.on_change = lambda: store.async_delay_save(budget.as_dict, SAVE_DELAY)
    return StoredQuota(budget, store)
