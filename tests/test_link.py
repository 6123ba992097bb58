"""A vehicle linked to the charger that charges it: the OVMS DEMO car and a go-e.

Both simulators serve real HTTP; the clock is frozen and moved by the tests.
The car's own charge model is switched off (`charge_power_kw = 0`): the test
moves its state of charge with the energy the go-e charger delivers, times a
true efficiency that differs from the link's option, so that the simulated car
and charger charge the same battery. The car "reports" every 30 minutes: it is
silent in between, so the server keeps its last records (with their time).
"""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)

from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.devices import async_sync_devices
from custom_components.ev_cloud.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.ev_cloud.link import (
    CONF_CAPACITY,
    CONF_CHARGER,
    CONF_CHARGER_LINKS,
    CONF_EFFICIENCY,
    CONF_PRICE_ENTITY,
    LINK_ENTITIES,
    LOOK_DELAY,
    registered_device,
)
from tests.conftest import setup_entry
from tests.goe.fixtures import SERIAL, link_to_goe
from tests.simulators.goe import SimCharger
from tests.simulators.ovms import OvmsSimulator, SimVehicle

CAPACITY_KWH = 40.0  # the simulated car's battery (SimVehicle.battery_kwh)
TRUE_EFFICIENCY = 0.92  # what reaches the simulated battery
STEP_S = 30  # the charger is read every 30 s (go-e's active interval)
REPORT_S = 1800  # the car reports every 30 minutes
ESTIMATE = "sensor.ovms_demo_estimated_battery_level"
BATTERY = "sensor.ovms_demo_battery"
VEHICLE_KEY = "ovms_DEMO"


@pytest.fixture(autouse=True)
def _no_request_spacing(no_request_spacing: None) -> None:
    """Commands reach the charger under the frozen clock."""


@pytest.fixture
def demo(hass: HomeAssistant, ovms_sim: OvmsSimulator) -> SimVehicle:
    """The OVMS DEMO car, plugged in at home, its state of charge moved by the test."""
    car = ovms_sim.vehicle("DEMO")
    car.latitude, car.longitude = hass.config.latitude, hass.config.longitude
    car.charge_power_kw = 0.0  # the test charges it from the go-e's energy
    car.soc = 30.0
    return car


async def link_entries(
    hass: HomeAssistant, goe_entry: MockConfigEntry, ovms_entry: MockConfigEntry
) -> str:
    """Set up the charger, then DEMO linked to it; the charger's device id.

    The link has the simulated battery's capacity and the default efficiency.
    """
    return await link_to_goe(
        hass, goe_entry, ovms_entry, {VEHICLE_KEY: {CONF_CAPACITY: CAPACITY_KWH}}
    )


class Clock:
    """Moves the simulators and Home Assistant's clock together."""

    def __init__(
        self,
        hass: HomeAssistant,
        freezer: FrozenDateTimeFactory,
        charger: SimCharger,
        ovms: OvmsSimulator,
        car: SimVehicle,
    ) -> None:
        """Drive `charger` and `car` (in `ovms`) with the frozen clock."""
        self.hass, self.freezer = hass, freezer
        self.charger, self.ovms, self.car = charger, ovms, car
        self.elapsed = 0

    def report(self) -> None:
        """The car sends its records once (then is silent again)."""
        self.car.set_silent(False)
        self.ovms.advance(0)
        self.car.set_silent(True)

    async def step(self) -> None:
        """30 s: the charger delivers, the car's battery takes its share."""
        before = self.charger.state["eto"]
        self.charger.advance(STEP_S)
        kwh = (self.charger.state["eto"] - before) / 1000
        self.car.soc = min(
            100.0, self.car.soc + kwh * TRUE_EFFICIENCY / CAPACITY_KWH * 100
        )
        self.ovms.advance(STEP_S)
        self.elapsed += STEP_S
        if self.elapsed % REPORT_S == 0:
            self.report()
        self.freezer.tick(timedelta(seconds=STEP_S))
        async_fire_time_changed(self.hass)
        await self.hass.async_block_till_done(wait_background_tasks=True)


@pytest.fixture
def clock(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    goe_charger: SimCharger,
    ovms_sim: OvmsSimulator,
    demo: SimVehicle,
) -> Clock:
    """The clock that moves the go-e, the DEMO car and Home Assistant together."""
    return Clock(hass, freezer, goe_charger, ovms_sim, demo)


def estimate(hass: HomeAssistant) -> float | None:
    """The estimate sensor's value (None while unknown)."""
    state = hass.states.get(ESTIMATE)
    assert state is not None
    return None if state.state in ("unknown", "unavailable") else float(state.state)


async def test_estimate_follows_the_true_state_of_charge(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    clock: Clock,
) -> None:
    """Charged 3 h, the car reporting every 30 min: within 3 points throughout."""
    clock.report()
    await link_entries(hass, goe_entry, ovms_entry)
    reported = float(hass.states.get(BATTERY).state)
    assert reported == pytest.approx(30.0, abs=0.1)
    worst = 0.0
    rose_between_reports = False
    for _ in range(3 * 3600 // STEP_S):
        await clock.step()
        value = estimate(hass)
        assert value is not None
        worst = max(worst, abs(value - clock.car.soc))
        car = float(hass.states.get(BATTERY).state)
        rose_between_reports |= value > car + 1
        assert value <= 100
    assert clock.car.soc > 60  # the charge really moved the battery
    assert worst <= 3, worst
    assert rose_between_reports
    attributes = hass.states.get(ESTIMATE).attributes
    assert attributes["charger"].startswith("go-e")
    assert attributes["base_battery_level"] == pytest.approx(clock.car.soc, abs=3)


def demo_reads(ovms: OvmsSimulator) -> int:
    """Requests the OVMS server received for DEMO's records so far."""
    return sum(1 for _method, path in ovms.requests if "/DEMO" in path)


async def test_charger_events_ask_the_car_and_rest_it_while_charged(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    clock: Clock,
) -> None:
    """Charged at the link: idle interval; unplugged: a read within a minute after."""
    await link_entries(hass, goe_entry, ovms_entry)
    coordinator = ovms_entry.runtime_data.coordinators[VEHICLE_KEY]
    await clock.step()
    assert coordinator.covered
    assert coordinator.update_interval == timedelta(seconds=300)  # idle, not 60 s
    # Unplug just after the car's poll: its next poll is 300 s away.
    reads = demo_reads(clock.ovms)
    while demo_reads(clock.ovms) == reads:
        await clock.step()
        assert clock.elapsed <= 600, "the car was not polled at its idle interval"
    reads = demo_reads(clock.ovms)
    clock.charger.unplug()
    clock.car.unplug()
    seconds = 0
    while demo_reads(clock.ovms) == reads:
        await clock.step()
        seconds += STEP_S
        assert seconds <= 150, "the car was not read after the charger's event"
    assert seconds >= LOOK_DELAY.total_seconds()
    assert not coordinator.covered
    assert coordinator.update_interval == timedelta(seconds=300)  # idle: unplugged
    state = hass.states.get("binary_sensor.ovms_demo_plugged_in")
    assert state is not None
    assert state.state == "off"


async def test_a_car_away_from_home_gets_no_energy(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    clock: Clock,
) -> None:
    """The charger charges some car while the linked one says it is elsewhere."""
    clock.car.latitude += 1  # 111 km north of home
    clock.report()
    await link_entries(hass, goe_entry, ovms_entry)
    for _ in range(20):
        await clock.step()
    assert estimate(hass) == pytest.approx(30.0)
    coordinator = ovms_entry.runtime_data.coordinators[VEHICLE_KEY]
    assert not coordinator.covered
    assert hass.states.get(ESTIMATE).attributes["energy_added_kwh"] == 0


async def test_two_linked_cars_that_both_say_plugged_in_share_nothing(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    clock: Clock,
) -> None:
    """Never guessed: with two candidates, neither is at the charger."""
    roadster = clock.ovms.vehicle("ROADSTER")
    roadster.latitude, roadster.longitude = clock.car.latitude, clock.car.longitude
    roadster.plug_in()
    clock.report()
    link = {CONF_CAPACITY: CAPACITY_KWH}
    await link_to_goe(
        hass, goe_entry, ovms_entry, {VEHICLE_KEY: link, "ovms_ROADSTER": link}
    )
    for _ in range(10):
        await clock.step()
    links = ovms_entry.runtime_data.links
    assert not links[VEHICLE_KEY].at_charger()
    assert not links["ovms_ROADSTER"].at_charger()
    assert estimate(hass) == pytest.approx(30.0)
    # The ROADSTER leaves: DEMO is the one plugged in at home.
    roadster.unplug()
    roadster.drive(50)
    clock.ovms.advance(0)
    await hass.config_entries.async_reload(ovms_entry.entry_id)
    await hass.async_block_till_done()
    await clock.step()
    assert ovms_entry.runtime_data.links[VEHICLE_KEY].at_charger()


async def test_start_and_stop_go_through_the_charger(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    clock: Clock,
) -> None:
    """An OVMS car without a server password charges through its charger."""
    await link_entries(hass, goe_entry, ovms_entry)
    car = registered_device(hass, VEHICLE_KEY)
    assert car is not None
    await hass.services.async_call(
        DOMAIN, "stop_charging", {"device_id": car.id}, blocking=True
    )
    assert clock.charger.state["frc"] == 1
    await hass.services.async_call(
        DOMAIN, "start_charging", {"device_id": car.id}, blocking=True
    )
    assert clock.charger.state["frc"] == 2
    clock.charger.unplug()
    await clock.step()
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, "stop_charging", {"device_id": car.id}, blocking=True
        )
    assert raised.value.translation_key == "charge_via_charger_not_plugged"
    assert raised.value.translation_placeholders == {
        "name": "OVMS DEMO",
        "charger": "go-e Charger 012345",
    }
    # Without the charger loaded, the error says so.
    clock.charger.plug_in()
    await hass.config_entries.async_unload(goe_entry.entry_id)
    with pytest.raises(ServiceValidationError) as raised:
        await hass.services.async_call(
            DOMAIN, "start_charging", {"device_id": car.id}, blocking=True
        )
    assert raised.value.translation_key == "charge_via_charger_unavailable"


async def test_removing_the_charger_removes_the_link_with_a_repair(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The charger's entry is deleted: the link goes, a repair says why, no errors."""
    await link_entries(hass, goe_entry, ovms_entry)
    await hass.config_entries.async_remove(goe_entry.entry_id)
    await hass.async_block_till_done()
    assert ovms_entry.options[CONF_CHARGER_LINKS] == {}
    assert ovms_entry.runtime_data.links == {}
    issue_id = f"{ovms_entry.entry_id}_{VEHICLE_KEY}_charger_link_removed"
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "charger_link_removed"
    coordinator = ovms_entry.runtime_data.coordinators[VEHICLE_KEY]
    assert not coordinator.covered
    for _ in range(12):
        await clock.step()
    await hass.config_entries.async_reload(ovms_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(ESTIMATE) is None  # removed with the link
    assert "Traceback" not in caplog.text
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


async def test_diagnostics_show_the_link_without_ids(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    clock: Clock,
) -> None:
    """The link's state is in the vehicle entry's diagnostics; its keys are not."""
    clock.report()
    await link_entries(hass, goe_entry, ovms_entry)
    await clock.step()
    found = await async_get_config_entry_diagnostics(hass, ovms_entry)
    (link,) = found["charger_links"]
    assert link["charger_loaded"]
    assert link["at_charger"]
    assert link["covered"]
    assert link["capacity_kwh"] == CAPACITY_KWH
    assert link["estimate"]["base_soc"] == pytest.approx(30.0)
    assert link["charger_reading"]["plugged"] is True
    assert found["entry"]["options"][CONF_CHARGER_LINKS] == "**REDACTED**"
    assert "DEMO" not in str(found)


async def test_the_options_flow_links_and_unlinks_a_vehicle(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    demo: SimVehicle,
) -> None:
    """Pick the vehicle, then its charger; the capacity is asked where unknown."""
    await setup_entry(hass, goe_entry)
    await setup_entry(hass, ovms_entry)
    charger = registered_device(hass, f"goe_{SERIAL}")
    assert charger is not None
    flow = await hass.config_entries.options.async_init(ovms_entry.entry_id)
    fields = {str(key) for key in flow["data_schema"].schema}
    assert "link_vehicle" in fields
    assert "price_entity" not in fields  # a vehicle entry names no price
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"link_vehicle": VEHICLE_KEY}
    )
    assert flow["step_id"] == "charger_link"
    assert flow["description_placeholders"] == {"vehicle": "OVMS DEMO"}
    # OVMS reports no battery capacity: without it there is no estimate.
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {CONF_CHARGER: charger.id, CONF_EFFICIENCY: 88}
    )
    assert flow["errors"] == {CONF_CAPACITY: "capacity_needed"}
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"],
        {CONF_CHARGER: charger.id, CONF_EFFICIENCY: 88, CONF_CAPACITY: 40},
    )
    assert flow["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert ovms_entry.options[CONF_CHARGER_LINKS] == {
        VEHICLE_KEY: {CONF_CHARGER: charger.id, CONF_EFFICIENCY: 88, CONF_CAPACITY: 40}
    }
    link = ovms_entry.runtime_data.links[VEHICLE_KEY]  # the reload started it
    assert link.efficiency == pytest.approx(0.88)
    assert hass.states.get(ESTIMATE) is not None
    # No charger: the link goes.
    flow = await hass.config_entries.options.async_init(ovms_entry.entry_id)
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {"link_vehicle": VEHICLE_KEY}
    )
    suggested = {
        str(key): key.description["suggested_value"]
        for key in flow["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }
    assert suggested == {
        CONF_CHARGER: charger.id,
        CONF_EFFICIENCY: 88,
        CONF_CAPACITY: 40,
    }
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {CONF_EFFICIENCY: 90}
    )
    assert flow["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert ovms_entry.options[CONF_CHARGER_LINKS] == {}
    assert ovms_entry.runtime_data.links == {}
    # Its entities go with it (not left behind, unavailable).
    assert hass.states.get(ESTIMATE) is None
    assert not [
        entity.unique_id
        for entity in er.async_entries_for_config_entry(
            er.async_get(hass), ovms_entry.entry_id
        )
        if entity.unique_id.startswith(VEHICLE_KEY)
        and entity.unique_id.endswith(LINK_ENTITIES)
    ]


async def test_a_chargers_options_name_the_price(
    hass: HomeAssistant, goe_entry: MockConfigEntry
) -> None:
    """The price entity is kept, and cleared when the field is left empty."""
    await setup_entry(hass, goe_entry)
    flow = await hass.config_entries.options.async_init(goe_entry.entry_id)
    assert "link_vehicle" not in {str(key) for key in flow["data_schema"].schema}
    flow = await hass.config_entries.options.async_configure(
        flow["flow_id"], {CONF_PRICE_ENTITY: "sensor.electricity_price"}
    )
    assert flow["type"] is FlowResultType.CREATE_ENTRY
    assert goe_entry.options[CONF_PRICE_ENTITY] == "sensor.electricity_price"
    await hass.async_block_till_done()
    flow = await hass.config_entries.options.async_init(goe_entry.entry_id)
    flow = await hass.config_entries.options.async_configure(flow["flow_id"], {})
    assert flow["type"] is FlowResultType.CREATE_ENTRY
    assert CONF_PRICE_ENTITY not in goe_entry.options


async def test_a_linked_car_that_leaves_the_account_loses_its_link(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    ovms_sim: OvmsSimulator,
    demo: SimVehicle,
) -> None:
    """The account no longer lists the car: its device goes, and so does the link."""
    await link_to_goe(
        hass, goe_entry, ovms_entry, {"ovms_ROADSTER": {CONF_CAPACITY: CAPACITY_KWH}}
    )
    assert "ovms_ROADSTER" in ovms_entry.runtime_data.links
    ovms_sim.remove_vehicle("ROADSTER")
    await async_sync_devices(hass, ovms_entry)
    await hass.async_block_till_done()
    assert registered_device(hass, "ovms_ROADSTER") is None
    assert ovms_entry.runtime_data.links == {}
    assert ovms_entry.options[CONF_CHARGER_LINKS] == {}
    issue_id = f"{ovms_entry.entry_id}_ovms_ROADSTER_charger_link_removed"
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None


async def test_a_session_knows_the_state_of_charge_it_started_from(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
    clock: Clock,
) -> None:
    """The car reports only after it connected; the session's start still counts."""
    clock.charger.unplug()
    clock.car.unplug()
    clock.report()
    await link_entries(hass, goe_entry, ovms_entry)
    await clock.step()
    clock.car.soc = 25.0  # the drive home, which the silent car does not report
    events = async_capture_events(hass, "ev_cloud_charging_session")
    clock.charger.plug_in()
    clock.car.plug_in()
    clock.car.start_charging()
    for _ in range(3600 // STEP_S):
        await clock.step()
    clock.charger.unplug()
    clock.car.unplug()
    for _ in range(4):
        await clock.step()
    (event,) = events
    # Not the 30 % it last reported before the drive.
    assert event.data["start_soc"] == pytest.approx(25.0, abs=1)
    assert event.data["end_soc"] == pytest.approx(clock.car.soc, abs=3)
