"""The durable dataset queue: order, batches and their ids, bounds, damaged files."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import logging
from typing import Any

from homeassistant.core import HomeAssistant
import pytest

from custom_components.ev_cloud.api.evmonitor import Dataset
from custom_components.ev_cloud.providers.evmonitor.queue import (
    DatasetQueue,
    dataset_from_json,
    dataset_to_json,
)

KEY = "evmonitor.test"
STORE_KEY = f"ev_cloud.{KEY}"
T0 = datetime(2027, 1, 1, 12, tzinfo=UTC)


def snapshot(minute: int, **values: Any) -> Dataset:
    """A dataset `minute` minutes after T0."""
    return Dataset("car", T0 + timedelta(minutes=minute), **values)


async def filled(hass: HomeAssistant, count: int, limit: int = 100) -> DatasetQueue:
    """A queue with `count` datasets, written."""
    queue = DatasetQueue(hass, KEY, limit=limit)
    await queue.async_load()
    for minute in range(count):
        queue.add(snapshot(minute, soc=float(minute)))
    await queue.async_save()
    return queue


def test_json_round_trip() -> None:
    """A dataset comes back from its stored form as it was."""
    dataset = snapshot(
        3, soc=55.0, speed_kmh=0.0, state=10, latitude=48.1, longitude=11.5
    )
    assert dataset_from_json(dataset_to_json(dataset)) == dataset
    assert "range_km" not in dataset_to_json(dataset)  # no empty fields


@pytest.mark.parametrize(
    "raw",
    [
        None,
        [],
        {"timestamp": 1.0},
        {"vehicle_id": "car"},
        {"vehicle_id": "car", "timestamp": "soon"},
        {"vehicle_id": "car", "timestamp": float("nan")},
    ],
)
def test_unreadable_datasets(raw: Any) -> None:
    """A stored dataset without vehicle or time cannot be read."""
    assert dataset_from_json(raw) is None


def test_bad_values_are_left_out() -> None:
    """Values of the wrong type are dropped, the rest kept."""
    dataset = dataset_from_json(
        {
            "vehicle_id": "car",
            "timestamp": 0,
            "soc": "55",
            "state": True,
            "speed_kmh": 3,
        }
    )
    assert dataset == Dataset("car", datetime(1970, 1, 1, tzinfo=UTC), speed_kmh=3.0)


async def test_batches_go_oldest_first_and_keep_their_id(hass: HomeAssistant) -> None:
    """A batch's id is stored before sending; a batch sent again keeps it."""
    queue = await filled(hass, 5)
    batch = await queue.async_next_batch(size=3)
    assert batch is not None
    assert [d.soc for d in batch.datasets] == [0.0, 1.0, 2.0]
    # Read back from disk, as after a crash: the same batch, the same id.
    again = DatasetQueue(hass, KEY)
    await again.async_load()
    resent = await again.async_next_batch(size=3)
    assert resent is not None
    assert resent.batch_id == batch.batch_id
    assert resent.datasets == batch.datasets
    await again.async_done(resent)
    rest = await again.async_next_batch(size=3)
    assert rest is not None
    assert rest.batch_id != batch.batch_id
    assert [d.soc for d in rest.datasets] == [3.0, 4.0]
    await again.async_done(rest)
    assert len(again) == 0
    assert await again.async_next_batch() is None


async def test_refused_batch_goes_one_by_one(hass: HomeAssistant) -> None:
    """A refused batch is split; a refused single dataset is dropped."""
    queue = await filled(hass, 3)
    batch = await queue.async_next_batch()
    assert batch is not None
    assert await queue.async_refused(batch) == []
    assert len(queue) == 3
    singles = []
    while (single := await queue.async_next_batch()) is not None:
        assert len(single.items) == 1
        singles.append(single)
        if single.datasets[0].soc == 1.0:
            assert await queue.async_refused(single) == single.datasets
        else:
            await queue.async_done(single)
    assert [s.datasets[0].soc for s in singles] == [0.0, 1.0, 2.0]
    assert len(queue) == 0


async def test_full_queue_drops_the_oldest_whole_batches(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """Beyond the limit the oldest go, a batch as a whole, with one warning."""
    queue = await filled(hass, 4, limit=4)
    batch = await queue.async_next_batch(size=2)
    assert batch is not None
    queue.add(snapshot(10, soc=10.0))
    # One over the limit: the oldest dataset is in a batch of two, so both go.
    assert [d.soc for d in queue.datasets] == [2.0, 3.0, 10.0]
    assert queue.dropped == 2
    queue.add(snapshot(11, soc=11.0))
    queue.add(snapshot(12, soc=12.0))
    assert [d.soc for d in queue.datasets] == [3.0, 10.0, 11.0, 12.0]
    assert queue.dropped == 3
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "queue is full" in warnings[0].getMessage()
    # Once an upload succeeds, a full queue is worth a warning again.
    sent = await queue.async_next_batch(size=1)
    assert sent is not None
    await queue.async_done(sent)
    queue.add(snapshot(13, soc=13.0))
    queue.add(snapshot(14, soc=14.0))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2


async def test_damaged_store_items_are_skipped(
    hass: HomeAssistant, hass_storage: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A damaged item is skipped (and said); the others are kept."""
    good = dataset_to_json(snapshot(1, soc=1.0))
    hass_storage[STORE_KEY] = {
        "version": 1,
        "key": STORE_KEY,
        "data": {
            "queue": [
                {"id": 1, "batch": None, "dataset": good},
                {"id": "two", "dataset": good},
                {"id": 3, "dataset": {"soc": 3}},
                "junk",
                {"id": 4, "batch": 7, "dataset": good},
            ],
            "next_id": "x",
            "dropped": None,
            "extra": [],
        },
    }
    queue = DatasetQueue(hass, KEY)
    await queue.async_load()
    assert len(queue) == 2
    assert queue.dropped == 0
    assert queue.extra == {}
    assert "Skipped 3 unreadable" in caplog.text
    queue.add(snapshot(2))
    assert len(_items(hass_storage)) == 5  # not written yet: as it was
    await queue.async_save()
    assert [item["id"] for item in _items(hass_storage)] == [1, 4, 5]


async def test_store_that_is_no_object(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A store holding something else starts an empty queue."""
    hass_storage[STORE_KEY] = {"version": 1, "key": STORE_KEY, "data": ["x"]}
    queue = DatasetQueue(hass, KEY)
    await queue.async_load()
    assert len(queue) == 0


def _items(hass_storage: dict[str, Any]) -> list[dict[str, Any]]:
    return list(hass_storage[STORE_KEY]["data"]["queue"])
