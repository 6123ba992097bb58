"""The durable queue of datasets waiting for EV-Monitor, kept in HA's storage.

Every dataset is written to disk when it is queued, so a restart, a crash or an
outage loses none. Uploads go oldest first, in batches; a batch's id is stored
with its datasets *before* it is sent, so that a batch sent again after a crash or
a lost answer carries the same id and the service does not store it twice. The
queue is bounded: beyond `limit` the oldest datasets are dropped (whole batches).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
import math
from typing import Any, TypeGuard
import uuid

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from ...api.evmonitor import Dataset
from ...const import DOMAIN, LOGGER

STORAGE_VERSION = 1
# About 7 days of driving at one snapshot a minute.
DEFAULT_LIMIT = 10_000
# Datasets per request.
BATCH_SIZE = 50
# The dataset's measurements (all but the vehicle, the time and the state).
_FLOAT_FIELDS = tuple(
    field.name
    for field in fields(Dataset)
    if field.name not in ("vehicle_id", "timestamp", "state")
)


def dataset_to_json(dataset: Dataset) -> dict[str, Any]:
    """A dataset as stored: the time as Unix seconds, no empty fields."""
    raw = asdict(dataset)
    raw["timestamp"] = dataset.timestamp.timestamp()
    return {key: value for key, value in raw.items() if value is not None}


def dataset_from_json(raw: Any) -> Dataset | None:
    """A stored dataset; None for one that cannot be read (a damaged file)."""
    if not isinstance(raw, dict):
        return None
    vehicle_id, timestamp = raw.get("vehicle_id"), raw.get("timestamp")
    if not isinstance(vehicle_id, str) or not _number(timestamp):
        return None
    values: dict[str, Any] = {
        name: float(raw[name]) for name in _FLOAT_FIELDS if _number(raw.get(name))
    }
    state = raw.get("state")
    return Dataset(
        vehicle_id=vehicle_id,
        timestamp=datetime.fromtimestamp(float(timestamp), UTC),
        state=state if isinstance(state, int) and not isinstance(state, bool) else None,
        **values,
    )


def _number(value: Any) -> TypeGuard[float]:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


@dataclass(slots=True)
class QueuedDataset:
    """A queued dataset, its sequence number and the batch it was sent in."""

    id: int
    dataset: Dataset
    batch: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """Datasets to send in one request, under one id."""

    batch_id: str
    items: tuple[QueuedDataset, ...]

    @property
    def datasets(self) -> list[Dataset]:
        """What the request carries."""
        return [item.dataset for item in self.items]


class DatasetQueue:
    """Datasets in the order they were taken; written through to a Store.

    `extra` holds the rest of what the entry keeps across restarts (the last
    snapshot, the vehicle's names, counters); it is written with the queue.
    """

    def __init__(
        self, hass: HomeAssistant, key: str, *, limit: int = DEFAULT_LIMIT
    ) -> None:
        """The queue stored as `ev_cloud.<key>`, holding at most `limit` datasets."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{key}", private=True, atomic_writes=True
        )
        self._limit = limit
        self._items: list[QueuedDataset] = []
        self._next_id = 1
        self._warned_full = False
        # Datasets that must go one per request (their batch was refused).
        self._single: set[int] = set()
        self.dropped = 0
        self.extra: dict[str, Any] = {}

    def __len__(self) -> int:
        """Datasets waiting."""
        return len(self._items)

    @property
    def datasets(self) -> list[Dataset]:
        """What is waiting, oldest first."""
        return [item.dataset for item in self._items]

    async def async_load(self) -> None:
        """Read what was stored; damaged items are skipped (and said so)."""
        raw = await self._store.async_load()
        if not isinstance(raw, dict):
            return
        skipped = 0
        for item in raw.get("queue") or []:
            dataset = (
                dataset_from_json(item.get("dataset"))
                if isinstance(item, dict)
                else None
            )
            item_id = item.get("id") if isinstance(item, dict) else None
            if dataset is None or not isinstance(item_id, int):
                skipped += 1
                continue
            batch = item.get("batch")
            self._items.append(
                QueuedDataset(
                    item_id, dataset, batch if isinstance(batch, str) else None
                )
            )
        if skipped:
            LOGGER.warning("Skipped %s unreadable queued EV-Monitor datasets", skipped)
        next_id = raw.get("next_id")
        self._next_id = max(
            [next_id if isinstance(next_id, int) else 1]
            + [item.id + 1 for item in self._items]
        )
        dropped = raw.get("dropped")
        self.dropped = dropped if isinstance(dropped, int) else 0
        extra = raw.get("extra")
        self.extra = dict(extra) if isinstance(extra, dict) else {}

    async def async_save(self) -> None:
        """Write the queue now."""
        await self._store.async_save(
            {
                "queue": [
                    {
                        "id": item.id,
                        "batch": item.batch,
                        "dataset": dataset_to_json(item.dataset),
                    }
                    for item in self._items
                ],
                "next_id": self._next_id,
                "dropped": self.dropped,
                "extra": self.extra,
            }
        )

    def add(self, dataset: Dataset) -> None:
        """Queue a dataset (`async_save` writes it); drop the oldest over the limit."""
        self._items.append(QueuedDataset(self._next_id, dataset))
        self._next_id += 1
        self._drop_overflow()

    def _drop_overflow(self) -> None:
        excess = len(self._items) - self._limit
        if excess <= 0:
            return
        # A batch goes whole: what is left of a batch must not be sent under its id.
        cut = excess
        batch = self._items[cut - 1].batch
        while (
            batch is not None
            and cut < len(self._items)
            and self._items[cut].batch == batch
        ):
            cut += 1
        del self._items[:cut]
        self.dropped += cut
        if not self._warned_full:
            self._warned_full = True
            LOGGER.warning(
                "The EV-Monitor queue is full (%s datasets): dropping the oldest "
                "until uploads succeed again",
                self._limit,
            )

    async def async_next_batch(self, size: int = BATCH_SIZE) -> Batch | None:
        """The oldest datasets to send next, under an id that is stored first.

        A batch that was sent before (and may have arrived) is sent again as it
        was, with its id; otherwise up to `size` datasets get a new id.
        """
        if not self._items:
            return None
        head = self._items[0]
        if head.batch is not None:
            items = [item for item in self._items if item.batch == head.batch]
            return Batch(head.batch, tuple(items))
        if head.id in self._single:
            size = 1
        chosen: list[QueuedDataset] = []
        for item in self._items:
            if len(chosen) >= size or item.batch is not None:
                break
            if chosen and item.id in self._single:
                break
            chosen.append(item)
        batch_id = uuid.uuid4().hex
        for item in chosen:
            item.batch = batch_id
        await self.async_save()
        return Batch(batch_id, tuple(chosen))

    async def async_done(self, batch: Batch) -> None:
        """The service took the batch: forget it."""
        self._remove(batch)
        self._warned_full = False  # uploads work: a full queue is news again
        await self.async_save()

    async def async_refused(self, batch: Batch) -> list[Dataset]:
        """The service refused the batch (it stores none of it).

        A batch of several goes again one dataset per request, to find the one
        the service refuses; a single refused dataset is dropped and returned.
        """
        if len(batch.items) == 1:
            self._remove(batch)
            await self.async_save()
            return batch.datasets
        for item in batch.items:
            item.batch = None
            self._single.add(item.id)
        await self.async_save()
        return []

    def _remove(self, batch: Batch) -> None:
        ids = {item.id for item in batch.items}
        self._items = [item for item in self._items if item.id not in ids]
        self._single -= ids
