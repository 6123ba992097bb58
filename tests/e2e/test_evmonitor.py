"""EV-Monitor in a real Home Assistant: a logbook fed by the OVMS demo's car.

The ``ha`` fixture added the entry as a user does: the account, the logbook The
Rocket, and the OVMS car DEMO (a device of the OVMS entry) as its source. Here:
snapshots of the car reach the simulated service, and a Home Assistant killed
with SIGKILL while a batch was on its way delivers every queued snapshot after
the restart, none twice.
"""

from datetime import datetime
import math
import time
from typing import Any

from conftest import NO_VALUE, E2EHomeAssistant
from harness.common import DOMAIN
from harness.flows import wait_entry_loaded
import pytest

# The logbook device "EV-Monitor The Rocket": its sensors' entity ids.
QUEUE = "sensor.ev_monitor_the_rocket_upload_queue"
LAST_UPLOAD = "sensor.ev_monitor_the_rocket_last_upload"
LAST_ERROR = "sensor.ev_monitor_the_rocket_last_upload_error"
SOURCE = "sensor.ovms_demo_battery"  # an entity of the source device, the car DEMO
# Snapshots every 10 s while the car charges or drives (every 60 s parked),
# uploads every 10 s.
FAST = {"active_interval": 10, "idle_interval": 60, "upload_interval": 10}


def vehicle_id(ha: E2EHomeAssistant) -> str:
    """The Rocket's id at EV-Monitor."""
    return ha.sims["evmonitor"]["vehicles"]


def received(ha: E2EHomeAssistant) -> list[dict[str, Any]]:
    """The datasets of The Rocket the simulated EV-Monitor stored, in order."""
    datasets = ha.evmonitor_received()["datasets"]
    return [d for d in datasets if d["vehicle_id"] == vehicle_id(ha)]


def snapshot_key(dataset: dict[str, Any]) -> tuple[str, int]:
    """A queued dataset (Store file) as the service gets it: vehicle, Unix seconds."""
    return dataset["vehicle_id"], math.floor(dataset["timestamp"])


def fast_snapshots(ha: E2EHomeAssistant) -> None:
    """Set the short intervals in the options flow (once), as a user does."""
    shown = ha.options_shown("evmonitor")
    if all(shown.get(key) == value for key, value in FAST.items()):
        return
    submitted = ha.set_options("evmonitor", **FAST)
    # The source stays what the config flow chose: the OVMS car's device.
    assert submitted.get("source_device") == ha.device_id(SOURCE), submitted
    # The entry reloads (it began before the flow answered); unloading uploads
    # what waits, briefly.
    ha.wait_until(
        "the EV-Monitor entry to load again",
        lambda: ha.entry("evmonitor")["state"] == "loaded",
        60,
    )
    shown = ha.options_shown("evmonitor")
    assert {key: shown.get(key) for key in FAST} == FAST, shown


def wait_queued(
    ha: E2EHomeAssistant, count: int, timeout: float
) -> list[dict[str, Any]]:
    """Wait until the entry's Store file holds ``count`` queued snapshots.

    Every 10 s HA is asked to read the car now, as a user's refresh does, so
    that its values (and with them the snapshots) move sooner.
    """
    next_read = 0.0

    def queued() -> list[dict[str, Any]] | None:
        nonlocal next_read
        items = ha.evmonitor_queue()
        if len(items) >= count:
            return items
        if time.monotonic() >= next_read:
            next_read = time.monotonic() + 10
            ha.api.call_service(
                "homeassistant", "update_entity", target={"entity_id": SOURCE}
            )
        return None

    return ha.wait_until(
        f"{count} snapshot(s) queued in the Store file", queued, timeout
    )


def test_evmonitor_uploads_the_ovms_car(ha: E2EHomeAssistant) -> None:
    """Snapshots of the OVMS car reach EV-Monitor in batches; the queue empties."""
    fast_snapshots(ha)
    logbook = ha.device_id(QUEUE)
    # A snapshot taken with the new options waits (uploads come every 10 s).
    items = wait_queued(ha, 1, 180)
    reply = ha.api.call_service(DOMAIN, "upload_now", {"device_id": logbook})
    assert reply["success"], reply
    # The action returns once it has sent what was queued (or the timer had).
    arrived = {snapshot_key(d["general"]) for d in received(ha)}
    missing = [item for item in items if snapshot_key(item["dataset"]) not in arrived]
    assert not missing, missing

    def delivered() -> list[dict[str, Any]] | None:
        datasets = [d for d in received(ha) if d["batch_id"]]
        if not datasets or ha.state(QUEUE)["state"] != "0":
            return None
        return datasets if ha.state(LAST_UPLOAD)["state"] not in NO_VALUE else None

    datasets = ha.wait_until("datasets of The Rocket at EV-Monitor", delivered, 120)
    assert ha.state(LAST_ERROR)["state"] in NO_VALUE
    last_upload = datetime.fromisoformat(ha.state(LAST_UPLOAD)["state"])
    assert abs(time.time() - last_upload.timestamp()) < 600, last_upload

    # What arrived is the car: its time, charge level and range (loosely: the car
    # charges or drives meanwhile).
    keys = [(d["vehicle_id"], d["general"]["timestamp"]) for d in received(ha)]
    assert len(keys) == len(set(keys)), "a snapshot arrived twice"
    latest = datasets[-1]["general"]
    assert abs(time.time() - latest["timestamp"]) < 3600, latest
    car = ha.ovms_status("DEMO")
    soc = latest["batt"]["0"]["soc"]
    assert abs(soc - float(car["soc"])) <= 25, (latest, car)
    assert latest["range"] > 0, latest
    assert latest.get("state") in (0, 1, 10, 11), latest


def test_evmonitor_hard_kill_loses_and_doubles_nothing(ha: E2EHomeAssistant) -> None:
    """kill -9 with datasets queued: after the restart all arrive, none twice.

    EV-Monitor is unreachable while snapshots queue up (the Store file holds
    them). Then it stores the next push but holds its answer, and Home Assistant
    is killed (SIGKILL: no stop, nothing written on the way out) before it hears
    back. After the restart the entry sends that batch again under the id it
    stored before sending (EV-Monitor acknowledges it as a duplicate, without
    storing it again) and then the rest.
    """
    fast_snapshots(ha)
    logbook = ha.device_id(QUEUE)
    before = {snapshot_key(d["general"]) for d in received(ha)}
    killed = False
    try:
        ha.evmonitor_switch("down", True)
        wait_queued(ha, 3, 600)
        ha.evmonitor_switch("hold", True)  # first: no push slips through unheld
        ha.evmonitor_switch("down", False)
        pushes_before = len(ha.evmonitor_received()["pushes"])
        ha.call_service_detached(DOMAIN, "upload_now", {"device_id": logbook})

        def held() -> dict[str, Any] | None:
            state = ha.evmonitor_received()
            stored = [
                push
                for push in state["pushes"][pushes_before:]
                if push["result"] == "stored"
            ]
            return stored[0] if stored and state["held"] else None

        push = ha.wait_until("a batch stored, its answer held", held, 60)
        batch_id = push["batch_id"]
        # What survives the crash: the Store file as HA last wrote it. The batch
        # on its way is in it, under its id (written before it was sent).
        items = ha.evmonitor_queue()
        assert batch_id, push
        assert [i for i in items if i["batch"] == batch_id], (batch_id, items)
        ha.kill()
        killed = True
    finally:
        ha.evmonitor_switch("hold", False)
        ha.evmonitor_switch("down", False)
        if killed or not ha.hass.alive():
            ha.start_again()

    entry = wait_entry_loaded(ha.api, ha.entries["evmonitor"])
    assert entry.get("state") == "loaded", entry
    ha.wait_state(QUEUE, "0", timeout=120)

    queued_keys = [snapshot_key(item["dataset"]) for item in items]
    assert len(queued_keys) >= 3, items
    assert not set(queued_keys) & before, "queued snapshots were delivered before"
    arrived = [snapshot_key(d["general"]) for d in received(ha)]
    counts = {key: arrived.count(key) for key in queued_keys}
    assert all(count == 1 for count in counts.values()), (
        "every snapshot queued at the kill arrives exactly once",
        counts,
    )
    assert len(arrived) == len(set(arrived)), "a snapshot arrived twice"
    # The held batch went again under its id: acknowledged, not stored again.
    results = [
        p["result"]
        for p in ha.evmonitor_received()["pushes"]
        if p["batch_id"] == batch_id
    ]
    assert results[0] == "stored", results
    assert "duplicate" in results[1:], results
    assert results.count("stored") == 1, results
    assert ha.state(LAST_ERROR)["state"] in NO_VALUE


@pytest.fixture(autouse=True)
def _evmonitor_reachable(ha: E2EHomeAssistant) -> None:
    """Each test starts with EV-Monitor answering (a failed test may leave it off)."""
    ha.evmonitor_switch("hold", False)
    ha.evmonitor_switch("down", False)
