"""OVMS live updates over the v2 protocol, against the simulated server (real TCP)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    STATE_OFF,
    STATE_ON,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)

from custom_components.ev_cloud.api.ovms import (
    OvmsClient,
    parse_charge,
    parse_location,
    parse_status,
    parse_tpms,
    rest_answers,
)
from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.providers.ovms import live
from custom_components.ev_cloud.providers.ovms.account import (
    LIVE_LINK_INTERVAL,
    OvmsCar,
)
from custom_components.ev_cloud.providers.ovms.commands import issue_id
from tests.conftest import setup_entry
from tests.ovms.fixtures import OVMS_PASSWORD, OVMS_USER
from tests.simulators.ovms import OvmsSimulator, SimVehicle
from tests.simulators.ovms_v2 import OvmsV2Server

DEMO_BATTERY = "sensor.ovms_demo_battery"
DEMO_LOCK = "lock.ovms_demo_lock"
DEMO_LIVE = "switch.ovms_demo_live_updates"


# --- v2 records -> REST answers ---------------------------------------------------


def _received(vehicle: SimVehicle) -> tuple[dict[str, str], dict[str, datetime]]:
    stored = vehicle.stored_records()
    records = {code: message for code, (message, _, _) in stored.items()}
    times = {
        code: datetime.fromtimestamp(received, UTC)
        for code, (_, received, _) in stored.items()
    }
    return records, times


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda car: None, id="as_is"),
        pytest.param(lambda car: car.unplug(), id="unplugged"),
        pytest.param(lambda car: setattr(car, "locked", False), id="unlocked"),
        pytest.param(lambda car: setattr(car, "car_on", True), id="car_on"),
    ],
)
async def test_records_read_like_the_rest_answers(
    ovms_sim: OvmsSimulator, change: Callable[[SimVehicle], None]
) -> None:
    """The records a connection delivers read as the server's REST answers do."""
    ovms_sim.advance(42)  # records of different ages than "now"
    async with aiohttp.ClientSession() as session:
        client = OvmsClient(session, ovms_sim.url, OVMS_USER, OVMS_PASSWORD)
        await client.async_login()
        for vehicle_id in ("DEMO", "ROADSTER"):  # km and "Y" tyres, miles and "W"
            vehicle = ovms_sim.vehicle(vehicle_id)
            change(vehicle)
            records, times = _received(vehicle)
            now = datetime.fromtimestamp(ovms_sim.now, UTC)
            answers = rest_answers(records, times, now)
            assert parse_status(answers["status"]) == await client.async_get_status(
                vehicle_id
            )
            assert parse_charge(answers["charge"]) == await client.async_get_charge(
                vehicle_id
            )
            assert parse_location(
                answers["location"]
            ) == await client.async_get_location(vehicle_id)
            assert parse_tpms(answers["tpms"]) == await client.async_get_tpms(
                vehicle_id
            )
        await client.async_logout()


def test_missing_and_garbled_records() -> None:
    """No record: an empty answer, as on the server; a broken Y record is skipped."""
    now = datetime(2027, 1, 1, tzinfo=UTC)
    assert rest_answers({}, {}, now) == {
        "status": {},
        "charge": {},
        "location": {},
        "tpms": {},
    }
    answers = rest_answers({"Y": "9,x"}, {"Y": now}, now)
    assert answers["tpms"] == {}
    short = rest_answers({"S": "55.5,K"}, {"S": now - timedelta(seconds=7)}, now)
    status = parse_status(short["status"])
    assert status.soc == 55.5
    assert status.s_time.msg_age == 7
    assert status.ideal_range is None


# --- the open connection ------------------------------------------------------------


@pytest.fixture
def live_entry(ovms_command_entry: MockConfigEntry) -> MockConfigEntry:
    """DEMO has commands and Live updates on."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=ovms_command_entry.title,
        unique_id=ovms_command_entry.unique_id,
        entry_id=ovms_command_entry.entry_id,
        data=ovms_command_entry.data,
        options={"excluded_vehicles": [], "live_vehicles": ["DEMO"]},
    )


async def _until(freezer: FrozenDateTimeFactory, condition: Callable[[], bool]) -> None:
    """Let the loop run, the frozen clock creeping on, until `condition` holds.

    The simulator answers across a socket; the clock moves 10 ms per round so
    that the link's pauses end (the OVMS fixtures freeze it).
    """
    for _ in range(2000):
        if condition():
            return
        freezer.tick(timedelta(milliseconds=10))
        for _ in range(20):
            await asyncio.sleep(0)
    raise AssertionError("the condition never held")


def _car(entry: MockConfigEntry) -> OvmsCar:
    car = entry.runtime_data.coordinators["ovms_DEMO"].device
    assert isinstance(car, OvmsCar)
    return car


def _rest_reads(sim: OvmsSimulator) -> int:
    return sum(1 for _, path in sim.requests if path.startswith("/api/status"))


async def test_pushed_records_update_the_car(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The server's pushes show at once, without a REST poll; polling slows down."""
    await setup_entry(hass, live_entry)
    await _until(freezer, lambda: len(ovms_v2.apps) == 1)
    car = _car(live_entry)
    await _until(freezer, lambda: car.live_client is not None)
    coordinator = live_entry.runtime_data.coordinators["ovms_DEMO"]
    await hass.async_block_till_done()
    assert coordinator.update_interval == timedelta(seconds=LIVE_LINK_INTERVAL)
    reads = _rest_reads(ovms_sim)

    vehicle = ovms_sim.vehicle("DEMO")
    vehicle.soc = 91.5
    vehicle.locked = False
    ovms_v2.push("DEMO")
    await _until(freezer, lambda: hass.states.get(DEMO_BATTERY).state == "91.5")
    await hass.async_block_till_done()
    assert hass.states.get(DEMO_LOCK).state == "unlocked"
    assert _rest_reads(ovms_sim) == reads

    # Commands go over the open connection.
    await hass.services.async_call(
        "lock", "lock", {ATTR_ENTITY_ID: DEMO_LOCK}, blocking=True
    )
    assert len(ovms_v2.apps) == 1
    assert ovms_v2.apps[0].received.count("C") == 1
    await _until(freezer, lambda: hass.states.get(DEMO_LOCK).state == "locked")

    # Unloading closes the connection.
    await hass.config_entries.async_unload(live_entry.entry_id)
    await _until(freezer, lambda: not ovms_v2.apps)


async def test_a_dropped_connection_falls_back_to_polling(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
    monkeypatch: pytest.MonkeyPatch,
    freezer: FrozenDateTimeFactory,
) -> None:
    """After a drop the usual interval returns; the link reconnects by itself."""
    monkeypatch.setattr(live, "RETRY_FIRST", 0.05)
    await setup_entry(hass, live_entry)
    car = _car(live_entry)
    await _until(freezer, lambda: car.live_client is not None)
    coordinator = live_entry.runtime_data.coordinators["ovms_DEMO"]
    ovms_v2.drop_all()
    await _until(freezer, lambda: car.live_client is None)
    await hass.async_block_till_done()
    assert coordinator.update_interval is not None
    assert coordinator.update_interval < timedelta(seconds=LIVE_LINK_INTERVAL)
    await _until(
        freezer, lambda: car.live_client is not None and len(ovms_v2.apps) == 1
    )
    await hass.config_entries.async_unload(live_entry.entry_id)
    await _until(freezer, lambda: not ovms_v2.apps)


async def test_live_updates_off_closes_the_connection(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Switching Live updates off closes the connection, on opens it again."""
    await setup_entry(hass, live_entry)
    await _until(freezer, lambda: len(ovms_v2.apps) == 1)
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: DEMO_LIVE}, blocking=True
    )
    assert hass.states.get(DEMO_LIVE).state == STATE_OFF
    await _until(freezer, lambda: not ovms_v2.apps)
    assert _car(live_entry).live_client is None
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: DEMO_LIVE}, blocking=True
    )
    await _until(freezer, lambda: _car(live_entry).live_client is not None)
    assert len(ovms_v2.apps) == 1
    await hass.config_entries.async_unload(live_entry.entry_id)
    await _until(freezer, lambda: not ovms_v2.apps)


async def test_refused_password_stops_the_link_with_a_repair(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    ovms_v2: OvmsV2Server,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """No retrying with a refused password; REST polling goes on."""
    ovms_v2.cars["DEMO"].password = "changed-on-the-module"
    await setup_entry(hass, live_entry)
    issue = issue_id(live_entry.entry_id, "DEMO")
    # The server counts the refusal before the link has read the closed socket.
    await _until(
        freezer, lambda: issue_registry.async_get_issue(DOMAIN, issue) is not None
    )
    assert ovms_v2.logins_refused == 1
    assert live_entry.state is ConfigEntryState.LOADED
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    freezer.tick(timedelta(seconds=live.RETRY_MAX))
    for _ in range(100):
        await asyncio.sleep(0)
    assert ovms_v2.logins_refused == 1


@pytest.mark.parametrize("ovms_server", ["v2"])
async def test_live_updates_on_a_v2_server_use_the_v2_connection(
    hass: HomeAssistant,
    live_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    ovms_v2: OvmsV2Server,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The v2 server cannot connect a car over REST; the v2 connection can.

    Connect is tried once (404 "Not yet implemented"); the car's records arrive
    over its v2 connection, and the switch turns off and on again without
    asking the REST API (openvehicles/Open-Vehicle-Server @ eae8472,
    v2/server/ovms_server.pl `http_request_api_vehicle_get`).
    """
    await setup_entry(hass, live_entry)
    car = _car(live_entry)
    await _until(freezer, lambda: car.live_client is not None)
    await hass.async_block_till_done()
    assert hass.states.get(DEMO_LIVE).state == STATE_ON
    ovms_sim.vehicle("DEMO").soc = 91.5
    ovms_v2.push("DEMO")
    await _until(freezer, lambda: hass.states.get(DEMO_BATTERY).state == "91.5")

    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: DEMO_LIVE}, blocking=True
    )
    await _until(freezer, lambda: not ovms_v2.apps)
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: DEMO_LIVE}, blocking=True
    )
    await _until(freezer, lambda: car.live_client is not None)
    await hass.async_block_till_done()
    assert hass.states.get(DEMO_LIVE).state == STATE_ON
    vehicle_calls = [path for _, path in ovms_sim.requests if "/api/vehicle/" in path]
    assert vehicle_calls == ["/api/vehicle/DEMO"]
