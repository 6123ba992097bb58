"""EV-Monitor in Home Assistant: snapshots, the durable queue, uploads, errors."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import json
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.storage import Store
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.ev_cloud.api.evmonitor import EvMonitorClient
from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.device import DeviceData
from custom_components.ev_cloud.diagnostics import async_get_config_entry_diagnostics
from custom_components.ev_cloud.providers.evmonitor.entities import ENTITIES
from custom_components.ev_cloud.providers.evmonitor.state import LogbookStatus
from tests.conftest import setup_entry
from tests.entities import registry_and_states
from tests.evmonitor.fixtures import (
    BODY_MODES,
    EMAIL,
    PASSWORD,
    START,
    park,
    rocket,
    tick,
)
from tests.simulators.evmonitor import (
    EvMonitorBodyMode,
    EvMonitorFault,
    EvMonitorSimulator,
)

QUEUE = "sensor.ev_monitor_the_rocket_upload_queue"
LAST_UPLOAD = "sensor.ev_monitor_the_rocket_last_upload"
LAST_ERROR = "sensor.ev_monitor_the_rocket_last_upload_error"


@pytest.fixture(params=BODY_MODES, ids=str)
def evmonitor_body_mode(request: pytest.FixtureRequest) -> EvMonitorBodyMode:
    """Each test here: a service reading form fields and JSON, one reading JSON only."""
    return EvMonitorBodyMode(request.param)


def queued(hass: HomeAssistant) -> int:
    """The queue-length entity's value."""
    return int(hass.states.get(QUEUE).state)


async def stored_queue(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    """What the queue's Store holds on disk (the test's storage)."""
    store: Store[dict[str, Any]] = Store(
        hass, 1, f"{DOMAIN}.evmonitor.{entry.entry_id}"
    )
    data = await store.async_load()
    assert data is not None
    return data


def logbook_device(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    """The device id of the logbook connection."""
    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return device.id


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
# The entities do not depend on what the service reads (nothing is sent yet).
@pytest.mark.parametrize("evmonitor_body_mode", [EvMonitorBodyMode.ANY], ids=str)
async def test_entities(
    hass: HomeAssistant,
    evmonitor_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The logbook's diagnostic entities; the first snapshot is queued at setup."""
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    assert registry_and_states(hass, entity_registry, evmonitor_entry.entry_id) == (
        snapshot
    )
    assert queued(hass) == 1
    device = dr.async_get(hass).async_get(logbook_device(hass, evmonitor_entry))
    assert device is not None
    assert device.name == "EV-Monitor The Rocket"
    assert device.entry_type is dr.DeviceEntryType.SERVICE


async def test_setup_does_not_need_the_service(
    hass: HomeAssistant,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """EV-Monitor down at start: the entry loads and snapshots are kept."""
    evmonitor_sim.down = True
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    assert evmonitor_entry.state is ConfigEntryState.LOADED
    assert queued(hass) == 1
    assert evmonitor_sim.requests == []


async def test_cadence_and_batched_upload(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """Parked: rare snapshots, none without a change; charging: one a minute.

    The queued snapshots go in one request at the upload interval, in
    EV-Monitor's units, charging as state 10 with the power into the battery.
    """
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    assert queued(hass) == 1
    # Parked, a change within the idle interval waits for it.
    park(hass, soc=54)
    await tick(hass, freezer, evmonitor_sim, 100)
    assert queued(hass) == 1
    # The upload interval (300 s) passes: the one snapshot is uploaded.
    await tick(hass, freezer, evmonitor_sim, 200)
    assert queued(hass) == 0
    assert len(evmonitor_sim.datasets) == 1
    # The idle interval (900 s) since the first snapshot: the waiting change.
    await tick(hass, freezer, evmonitor_sim, 600)
    assert queued(hass) == 1
    # Nothing changes for an hour: no snapshot.
    await tick(hass, freezer, evmonitor_sim, 3600)
    assert queued(hass) == 0
    assert len(evmonitor_sim.datasets) == 2
    # Charging starts: a snapshot at once, then one per active interval (60 s).
    pushes = len(evmonitor_sim.pushes)
    park(hass, charging="on", power=7.4)
    await hass.async_block_till_done()
    for soc in range(56, 60):
        await tick(hass, freezer, evmonitor_sim, 60)
        park(hass, charging="on", power=7.4, soc=soc)
        await hass.async_block_till_done()
    assert queued(hass) == 5
    await tick(hass, freezer, evmonitor_sim, 60)
    assert queued(hass) == 0
    # One request carried the batch.
    assert len(evmonitor_sim.pushes) == pushes + 1
    batch_id, count, outcome = evmonitor_sim.pushes[-1]
    assert (count, outcome) == (5, "stored")
    assert batch_id
    general = evmonitor_sim.datasets[-1].general
    assert general["state"] == 10
    assert general["batt"][0]["w_charge"] == 7400
    assert general["batt"][0]["soc"] == 59
    assert general["odometer"] == 12346
    assert general["gps"] == {"lat": 48.1371, "lng": 11.5754, "acc": 5}
    assert general["vehicle_id"] == rocket(evmonitor_sim).id
    assert hass.states.get(LAST_UPLOAD).state == (
        (START + timedelta(seconds=100 + 200 + 600 + 3600 + 300)).isoformat()
    )


async def test_end_of_a_drive_uploads_at_once(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """Driving snapshots wait for the upload interval; parking sends them now."""
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    park(hass, speed=50)
    await hass.async_block_till_done()
    await tick(hass, freezer, evmonitor_sim, 60)
    park(hass, speed=80, odometer=12347)
    await hass.async_block_till_done()
    assert queued(hass) == 3
    await tick(hass, freezer, evmonitor_sim, 30)
    park(hass, speed=0, odometer=12348)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert queued(hass) == 0
    states = [dataset.general["state"] for dataset in evmonitor_sim.datasets]
    assert states == [0, 1, 1, 0]
    speeds = [dataset.general["speed"] for dataset in evmonitor_sim.datasets]
    assert speeds == [0, 50, 80, 0]


async def test_outage_keeps_the_queue_and_retries(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An outage: shown, said once, retried less and less often; nothing lost."""
    caplog.set_level(logging.INFO, "custom_components.ev_cloud")
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    evmonitor_sim.down = True
    park(hass, soc=50)  # snapshot at the idle interval, 900 s
    await tick(hass, freezer, evmonitor_sim, 300)
    assert queued(hass) == 1
    assert "Cannot reach EV-Monitor" in hass.states.get(LAST_ERROR).state
    # Retries after 300 s, then 600 s: at 600 and 1200 s.
    await tick(hass, freezer, evmonitor_sim, 900)
    assert queued(hass) == 2
    # One line, and no other (the logbook has no "stopped reporting" of its own).
    lines = [
        r
        for r in caplog.records
        if r.levelno >= logging.INFO and r.name.startswith("custom_components")
    ]
    assert len(lines) == 1, lines
    assert lines[0].levelno == logging.WARNING
    assert "retrying in 300 s" in lines[0].getMessage()
    evmonitor_sim.down = False
    # The next retry, 1200 s after the third failure (at 1200 s).
    await tick(hass, freezer, evmonitor_sim, 1100)
    assert queued(hass) == 2
    await tick(hass, freezer, evmonitor_sim, 100)
    assert queued(hass) == 0
    assert hass.states.get(LAST_ERROR).state == "unknown"
    assert [d.general["batt"][0]["soc"] for d in evmonitor_sim.datasets] == [55, 50]
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.INFO and r.name.startswith("custom_components")
    ]
    assert lines[1:] == ["EV-Monitor The Rocket: uploads to EV-Monitor work again"]


async def test_queue_survives_a_restart(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """Queued snapshots are on disk at once, and go after the next start."""
    evmonitor_sim.down = True
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    park(hass, speed=30)
    await hass.async_block_till_done(wait_background_tasks=True)
    on_disk = await stored_queue(hass, evmonitor_entry)
    assert [item["dataset"]["speed_kmh"] for item in on_disk["queue"]] == [0.0, 30.0]
    await hass.config_entries.async_unload(evmonitor_entry.entry_id)
    assert evmonitor_sim.datasets == []
    evmonitor_sim.down = False
    # Setup again: the same snapshots (no new one: nothing changed).
    await hass.config_entries.async_setup(evmonitor_entry.entry_id)
    await hass.async_block_till_done()
    assert queued(hass) == 2
    await tick(hass, freezer, evmonitor_sim, 10)
    assert queued(hass) == 0
    assert [d.general["speed"] for d in evmonitor_sim.datasets] == [0, 30]


async def test_a_batch_sent_again_is_not_stored_twice(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """The service took a batch but its answer was lost (Home Assistant died).

    The batch id is stored with the datasets before they are sent, so the
    resend after the restart carries it and the service does not store the
    batch twice. The lost answer is faked: the test forms the batch through the
    queue and delivers it with a client of its own, as Home Assistant would have.
    """
    evmonitor_sim.down = True
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    park(hass, speed=30)
    await hass.async_block_till_done(wait_background_tasks=True)
    batch = await evmonitor_entry.runtime_data.account.queue.async_next_batch()
    assert batch is not None
    assert len(batch.items) == 2
    evmonitor_sim.down = False
    client = EvMonitorClient(
        async_get_clientsession(hass), evmonitor_sim.url, EMAIL, PASSWORD
    )
    await client.async_push(batch.datasets, batch_id=batch.batch_id)
    assert len(evmonitor_sim.datasets) == 2
    evmonitor_sim.down = True  # the unload's last upload fails too
    await hass.config_entries.async_unload(evmonitor_entry.entry_id)
    on_disk = await stored_queue(hass, evmonitor_entry)
    assert [item["batch"] for item in on_disk["queue"]] == [batch.batch_id] * 2

    evmonitor_sim.down = False
    await hass.config_entries.async_setup(evmonitor_entry.entry_id)
    await hass.async_block_till_done()
    await tick(hass, freezer, evmonitor_sim, 10)
    assert queued(hass) == 0
    assert len(evmonitor_sim.datasets) == 2
    assert evmonitor_sim.pushes[-1] == (batch.batch_id, 0, "duplicate")


async def test_a_batch_whose_answer_was_lost_is_not_stored_twice(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """The service stored an upload, then the connection broke before its answer.

    The retry goes in the encoding the service was found to read (JSON for a
    service that reads only JSON, after one refused form login) and carries the
    same batch id: the snapshot is stored once.
    """
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    evmonitor_sim.hold = True
    upload = hass.async_create_task(
        hass.services.async_call(
            DOMAIN,
            "upload_now",
            {"device_id": logbook_device(hass, evmonitor_entry)},
            blocking=True,
        )
    )
    # The push reaches the simulator (the loop's clock is frozen: no sleeping).
    for _ in range(10_000):
        if evmonitor_sim.held:
            break
        await asyncio.sleep(0)
    assert evmonitor_sim.held == 1
    evmonitor_sim.down = True  # the held answer is never sent
    evmonitor_sim.hold = False
    await tick(hass, freezer, evmonitor_sim, 1)  # the simulator looks again
    with pytest.raises(HomeAssistantError):
        await upload
    evmonitor_sim.down = False
    assert queued(hass) == 1
    await tick(hass, freezer, evmonitor_sim, 300)  # the retry
    assert queued(hass) == 0
    [dataset] = evmonitor_sim.datasets
    assert evmonitor_sim.pushes == [
        (dataset.batch_id, 1, "stored"),
        (dataset.batch_id, 0, "duplicate"),
    ]
    json_only = evmonitor_sim.body_mode is EvMonitorBodyMode.JSON_ONLY
    pushes = [sent for endpoint, sent, _ in evmonitor_sim.bodies if endpoint == "push"]
    assert pushes == ["json" if json_only else "form"] * 2


async def test_refused_dataset_is_dropped_alone(
    hass: HomeAssistant,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A refused batch goes again one by one; only the refused one is dropped.

    The simulator is told to require a speed; one snapshot has none (the speed
    entity is unavailable), and EV-Monitor refuses it in band.
    """
    evmonitor_sim.mandatory = ("vehicle_id", "timestamp", "speed")
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    park(hass, charging="on", power=11, speed="unavailable")
    await hass.async_block_till_done()
    # Charging ends: snapshot and upload at once.
    park(hass)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert queued(hass) == 0
    assert [d.general["state"] for d in evmonitor_sim.datasets] == [0, 0]
    outcomes = [outcome for _, _, outcome in evmonitor_sim.pushes]
    # Form fields that the service refuses as missing are repeated once as JSON
    # (it may not read forms); the JSON-only service was sent JSON from the start.
    repeat = ["error"] if evmonitor_sim.body_mode is EvMonitorBodyMode.ANY else []
    assert outcomes == ["error", *repeat, "stored", "error", *repeat, "stored"]
    assert "refused the snapshot" in caplog.text
    assert "Missing field data[0][general][speed]" in caplog.text
    assert hass.states.get(LAST_ERROR).state == "unknown"


async def test_upload_now_action(
    hass: HomeAssistant,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """`ev_cloud.upload_now` sends the queue; a failure is a translated error."""
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    device_id = logbook_device(hass, evmonitor_entry)
    evmonitor_sim.down = True
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call(
            DOMAIN, "upload_now", {"device_id": device_id}, blocking=True
        )
    assert failed.value.translation_key == "command_failed"
    assert queued(hass) == 1
    evmonitor_sim.down = False
    await hass.services.async_call(
        DOMAIN, "upload_now", {"device_id": device_id}, blocking=True
    )
    assert queued(hass) == 0
    assert len(evmonitor_sim.datasets) == 1
    # The make and model are read once, after the first upload.
    device = dr.async_get(hass).async_get(device_id)
    assert device is not None
    assert device.model == "Energica SS9"


async def test_upload_now_needs_a_device_that_uploads(
    hass: HomeAssistant,
    evmonitor_entry: MockConfigEntry,
    evlinkha_entry: MockConfigEntry,
) -> None:
    """A vehicle of another provider has nothing to upload: a clear error."""
    await setup_entry(hass, evlinkha_entry)
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    (device, *_) = dr.async_entries_for_config_entry(
        dr.async_get(hass), evlinkha_entry.entry_id
    )
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, "upload_now", {"device_id": device.id}, blocking=True
        )
    assert refused.value.translation_key == "upload_not_supported"


async def test_wrong_password_asks_to_sign_in_again(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """EV-Monitor refuses the password: reauth starts, the queue stays."""
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    evmonitor_sim.users[EMAIL].password = "changed-elsewhere"
    await tick(hass, freezer, evmonitor_sim, 300)
    assert queued(hass) == 1
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    assert flows[0]["step_id"] == "evmonitor_reauth"
    # Nothing was read yet: the refusal counts after a form and JSON.
    assert [(endpoint, sent) for endpoint, sent, _ in evmonitor_sim.bodies] == [
        ("login", "form"),
        ("login", "json"),
    ]
    # Until the user signs in again, nothing is sent, not even when unloading.
    sent = len(evmonitor_sim.requests)
    assert await hass.config_entries.async_unload(evmonitor_entry.entry_id)
    assert len(evmonitor_sim.requests) == sent
    assert len((await stored_queue(hass, evmonitor_entry))["queue"]) == 1


async def test_the_encoding_found_is_kept_and_shown(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """Once an upload worked, logins go straight in the encoding it used.

    Diagnostics say which one; a password changed at EV-Monitor then costs one
    refused login before the reauth.
    """
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    diagnostics = await async_get_config_entry_diagnostics(hass, evmonitor_entry)
    assert diagnostics["account"]["body_encoding"] == "unknown"
    await tick(hass, freezer, evmonitor_sim, 300)
    assert queued(hass) == 0
    expected = (
        "json" if evmonitor_sim.body_mode is EvMonitorBodyMode.JSON_ONLY else "form"
    )
    diagnostics = await async_get_config_entry_diagnostics(hass, evmonitor_entry)
    assert diagnostics["account"]["body_encoding"] == expected
    evmonitor_sim.users[EMAIL].password = "changed-elsewhere"
    evmonitor_sim.expire_tokens()
    park(hass, soc=50)
    await tick(hass, freezer, evmonitor_sim, 900)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    logins = [sent for endpoint, sent, _ in evmonitor_sim.bodies if endpoint == "login"]
    first = ["form", "json"] if expected == "json" else ["form"]
    assert logins == [*first, expected]


async def test_vehicle_gone_keeps_the_queue(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """Refusals because the logbook's vehicle was deleted drop nothing."""
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    del evmonitor_sim.vehicles[rocket(evmonitor_sim).id]
    await tick(hass, freezer, evmonitor_sim, 300)
    assert queued(hass) == 1
    assert "no longer in the EV-Monitor account" in hass.states.get(LAST_ERROR).state


async def test_home_assistant_stop_uploads_the_queue(
    hass: HomeAssistant,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """When Home Assistant stops, what waits is uploaded and the queue written."""
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    assert queued(hass) == 1
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert len(evmonitor_sim.datasets) == 1
    assert (await stored_queue(hass, evmonitor_entry))["queue"] == []
    # No snapshot is taken any more.
    park(hass, soc=10, speed=20)
    await hass.async_block_till_done()
    assert queued(hass) == 0
    await hass.config_entries.async_unload(evmonitor_entry.entry_id)


async def test_a_renamed_source_entity_is_followed(
    hass: HomeAssistant,
    evmonitor_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """The user renames a picked entity: the options follow it."""
    entry = entity_registry.async_get_or_create(
        "sensor", "test", "battery", suggested_object_id="car_battery"
    )
    assert entry.entity_id == "sensor.car_battery"
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    entity_registry.async_update_entity(
        "sensor.car_battery", new_entity_id="sensor.rocket_battery"
    )
    await hass.async_block_till_done()
    assert evmonitor_entry.options["soc"] == "sensor.rocket_battery"
    assert evmonitor_entry.state is ConfigEntryState.LOADED
    mapping = evmonitor_entry.runtime_data.account.mapping
    assert mapping["soc"] == "sensor.rocket_battery"


async def test_no_source_is_a_repair_issue(
    hass: HomeAssistant, evmonitor_entry: MockConfigEntry
) -> None:
    """A source device that is gone: a repair issue says what to do."""
    evmonitor_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        evmonitor_entry, options={"source_device": "gone"}
    )
    await hass.config_entries.async_setup(evmonitor_entry.entry_id)
    await hass.async_block_till_done()
    issues = [
        issue_id for domain, issue_id in ir.async_get(hass).issues if domain == DOMAIN
    ]
    assert issues == [
        f"{evmonitor_entry.entry_id}_evmonitor_{evmonitor_entry.unique_id}"
        "_evmonitor_no_source"
    ]
    assert queued(hass) == 0


async def test_unknown_make_names_the_model_alone(
    hass: HomeAssistant,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """A make EV-Monitor cannot name is left out of the device's model."""
    evmonitor_sim.makes.clear()
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    device_id = logbook_device(hass, evmonitor_entry)
    await hass.services.async_call(
        DOMAIN, "upload_now", {"device_id": device_id}, blocking=True
    )
    device = dr.async_get(hass).async_get(device_id)
    assert device is not None
    assert device.model == "SS9"


async def test_diagnostics_show_the_queue_not_the_position(
    hass: HomeAssistant,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """Diagnostics: mapping, queue and uploads; no credentials, no snapshot values."""
    evmonitor_sim.down = True
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    result = await async_get_config_entry_diagnostics(hass, evmonitor_entry)
    text = json.dumps(result, default=str)
    assert PASSWORD not in text
    assert EMAIL not in text
    assert rocket(evmonitor_sim).id not in text
    assert "48.1371" not in text
    account = result["account"]
    assert account["queued"] == 1
    assert account["mapping"]["soc"] == "sensor.car_battery"
    assert set(account["last_snapshot"]) == {"time", "active"}


def test_long_errors_fit_a_state() -> None:
    """An error text longer than a state may be is cut, marked with an ellipsis."""
    status = LogbookStatus(
        queued=0,
        last_upload=None,
        last_error="x" * 400,
        uploaded=0,
        dropped=0,
        model=None,
    )
    data = DeviceData(status, online=False, data_time=None)
    (last_error,) = [d for d in ENTITIES.sensor if d.key == "last_error"]
    value = last_error.value_fn(data)
    assert isinstance(value, str)
    assert len(value) == 255
    assert value.endswith("…")


async def test_new_snapshots_do_not_hurry_a_retry(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """While uploads fail, driving snapshots keep coming but retries back off."""
    evmonitor_sim.fault = EvMonitorFault.SERVER_ERROR
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    for second in range(60, 1200, 60):
        await tick(hass, freezer, evmonitor_sim, 60)
        park(hass, speed=50, odometer=12345.6 + second / 60)
        await hass.async_block_till_done()
    # Attempts at 300 s and 600 s (each a refused login); the next at 1200 s.
    assert len(evmonitor_sim.requests) == 2
    assert queued(hass) == 20
    evmonitor_sim.fault = EvMonitorFault.NONE
    await tick(hass, freezer, evmonitor_sim, 60)
    assert queued(hass) == 0
    assert len(evmonitor_sim.datasets) == 20
