"""Charging sessions at the home charger: the go-e simulator and OVMS cars.

The go-e charger and the OVMS server are simulators served over real HTTP; the
clock is frozen and moved by the tests, 30 s a step, and the go-e entry is read
every 30 s (its options). The price of a kWh comes from a sensor the test sets
with `hass.states.async_set` (faked: no price integration is loaded). The OVMS
cars stand at Home Assistant's home and report once, then stay silent (their
state of charge is estimated from the charger's energy).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import logging
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.components.recorder.models import StatisticMeanType
from homeassistant.components.recorder.statistics import list_statistic_ids
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_FINAL_WRITE
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.dispatcher import async_dispatcher_send
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    statistics_during_period,
)

from custom_components.ev_cloud.const import (
    CONF_ACTIVE_INTERVAL,
    CONF_IDLE_INTERVAL,
    DOMAIN,
)
from custom_components.ev_cloud.link import (
    CONF_CAPACITY,
    CONF_CHARGER,
    CONF_CHARGER_LINKS,
    CONF_PRICE_ENTITY,
    registered_device,
    signal_charger_reading,
)
from custom_components.ev_cloud.readings import ChargerReading
from custom_components.ev_cloud.sessions import (
    EVENT_CHARGING_SESSION,
    SESSION_ATTRIBUTES,
    energy_between,
    home_energy_statistic_id,
)
from tests.conftest import setup_entry
from tests.evenergy.fixtures import USER_ID
from tests.goe.fixtures import SERIAL
from tests.simulators.evenergy import EvEnergySimulator, SimEvse
from tests.simulators.goe import SimCharger
from tests.simulators.ovms import OvmsSimulator, SimVehicle

STEP = timedelta(seconds=30)
CHARGER_KEY = f"goe_{SERIAL}"
DEMO_KEY = "ovms_DEMO"
ROADSTER_KEY = "ovms_ROADSTER"
PRICE = "sensor.electricity_price"
CAPACITY_KWH = 40.0  # the link's option (the DEMO car's battery)
EFFICIENCY = 0.9  # the link's default
START_SOC = 30.0
# The go-e reports its meter (`eto`) in whole Wh: each reading is off by less.
RESOLUTION = 0.001
STORE_KEY = "ev_cloud.sessions.01JGOECLOUDENTRY000000000"


@pytest.fixture
def mock_recorder_before_hass(async_test_recorder: Any) -> None:
    """The recorder's database exists before Home Assistant starts (statistics)."""


class Rig:
    """The charger, the cars, the entries, and a clock that moves them together."""

    def __init__(
        self,
        hass: HomeAssistant,
        freezer: FrozenDateTimeFactory,
        charger: SimCharger,
        ovms: OvmsSimulator,
        goe_entry: MockConfigEntry,
        ovms_entry: MockConfigEntry,
    ) -> None:
        """Drive `charger` and the cars of `ovms` with the frozen clock."""
        self.hass, self.freezer = hass, freezer
        self.charger, self.ovms = charger, ovms
        self.goe_entry, self.ovms_entry = goe_entry, ovms_entry
        self.events = async_capture_events(hass, EVENT_CHARGING_SESSION)
        # The highest power the charger reported while the test watched (kW).
        self.peak_kw = 0.0

    def car(self, vehicle_id: str) -> SimVehicle:
        """A simulated OVMS car."""
        return self.ovms.vehicle(vehicle_id)

    def park_at_home(self, vehicle_id: str, *, plugged: bool = True) -> None:
        """The car stands at Home Assistant's home, sends its records once, then not."""
        car = self.car(vehicle_id)
        car.latitude = self.hass.config.latitude
        car.longitude = self.hass.config.longitude
        car.charge_power_kw = 0.0  # its charge comes from the go-e
        car.soc = START_SOC
        if plugged:
            car.plug_in()
        else:
            car.unplug()
        car.set_silent(False)
        self.ovms.advance(0)
        car.set_silent(True)

    async def set_up_charger(self, **options: Any) -> str:
        """Set up the go-e entry (read every 30 s); its registry device id."""
        self.goe_entry.add_to_hass(self.hass)
        self.hass.config_entries.async_update_entry(
            self.goe_entry,
            options={CONF_ACTIVE_INTERVAL: 30, CONF_IDLE_INTERVAL: 30, **options},
        )
        assert await self.hass.config_entries.async_setup(self.goe_entry.entry_id)
        await self.hass.async_block_till_done()
        device = registered_device(self.hass, CHARGER_KEY)
        assert device is not None
        return device.id

    async def link(self, charger_id: str, *vehicle_keys: str) -> None:
        """Set up the OVMS entry with `vehicle_keys` linked to the charger."""
        link = {CONF_CHARGER: charger_id, CONF_CAPACITY: CAPACITY_KWH}
        self.ovms_entry.add_to_hass(self.hass)
        self.hass.config_entries.async_update_entry(
            self.ovms_entry,
            options={
                **self.ovms_entry.options,
                CONF_CHARGER_LINKS: dict.fromkeys(vehicle_keys, link),
            },
        )
        assert await self.hass.config_entries.async_setup(self.ovms_entry.entry_id)
        await self.hass.async_block_till_done()

    def meter(self) -> float:
        """The charger's meter in kWh, as it reports it (whole Wh)."""
        return int(self.charger.state["eto"]) / 1000

    async def step(self, steps: int = 1) -> None:
        """30 s pass: the charger delivers and is read, the cars' server moves on."""
        for _ in range(steps):
            self.charger.advance(STEP.total_seconds())
            self.ovms.advance(STEP.total_seconds())
            self.freezer.tick(STEP)
            async_fire_time_changed(self.hass)
            await self.hass.async_block_till_done(wait_background_tasks=True)
            if self.goe_entry.state is ConfigEntryState.LOADED:
                self._check_read()

    def _check_read(self) -> None:
        """The charger was read this step (its session energy is the simulator's)."""
        if self.charger.charging:
            self.peak_kw = max(self.peak_kw, self.charger.power_w / 1000)
        state = self.hass.states.get("sensor.go_e_charger_012345_energy_this_charge")
        assert state is not None
        assert float(state.state) == pytest.approx(
            self.charger.state["wh"] / 1000, abs=RESOLUTION
        )

    async def session(self, steps: int) -> float:
        """Plug in, charge for `steps` steps, unplug; the kWh the charger delivered."""
        before = self.meter()
        self.charger.plug_in()
        await self.step(steps)
        self.charger.unplug()
        await self.step()
        return self.meter() - before


@pytest.fixture
async def rig(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    goe_charger: SimCharger,
    ovms_sim: OvmsSimulator,
    goe_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
) -> Rig:
    """The rig, with the go-e's car unplugged (the fixture had it charging)."""
    goe_charger.unplug()
    return Rig(hass, freezer, goe_charger, ovms_sim, goe_entry, ovms_entry)


def _entity_id(hass: HomeAssistant, device_key: str) -> str:
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{device_key}_last_charging_session"
    )
    assert entity_id is not None, device_key
    return entity_id


def _device_id(hass: HomeAssistant, device_key: str) -> str:
    device = registered_device(hass, device_key)
    assert device is not None
    return device.id


def _only(events: list[Event[dict[str, Any]]]) -> dict[str, Any]:
    assert len(events) == 1, [event.data for event in events]
    return events[0].data


async def test_session_event_and_sensors(hass: HomeAssistant, rig: Rig) -> None:
    """Plug in, charge at two currents and two prices, unplug: one session."""
    hass.states.async_set(PRICE, "0.30", {"unit_of_measurement": "EUR/kWh"})
    rig.park_at_home("DEMO")
    charger_id = await rig.set_up_charger(**{CONF_PRICE_ENTITY: PRICE})
    await rig.link(charger_id, DEMO_KEY)
    await rig.step()
    assert rig.events == []

    start = datetime.now(UTC)
    first = rig.meter()
    rig.charger.plug_in()
    await rig.step(10)
    at_change = rig.meter()
    # A lower current and a higher price for the rest of the session.
    rig.charger.state["amp"] = 10
    hass.states.async_set(PRICE, "0.40", {"unit_of_measurement": "EUR/kWh"})
    await rig.step(10)
    lowered_kw = rig.charger.power_w / 1000
    rig.charger.unplug()
    await rig.step()
    end = datetime.now(UTC)
    energy = rig.meter() - first
    assert energy > 1  # 5 min at 11 kW, 5 min at 6.9 kW

    session = _only(rig.events)
    # The connection was seen one step after plugging in, the end likewise.
    assert datetime.fromisoformat(session["start"]) == start + STEP
    assert datetime.fromisoformat(session["end"]) == end
    assert session["charger_device_id"] == charger_id
    assert session["vehicle_device_id"] == _device_id(hass, DEMO_KEY)
    assert session["at_home"] is True
    assert session["energy_kwh"] == pytest.approx(energy, abs=2 * RESOLUTION)
    assert session["peak_power_kw"] == pytest.approx(rig.peak_kw, abs=0.01)
    assert rig.peak_kw > lowered_kw > 0  # the current was lowered
    expected_cost = (at_change - first) * 0.30 + (rig.meter() - at_change) * 0.40
    assert session["cost"] == pytest.approx(expected_cost, abs=0.01)
    assert session["currency"] == "EUR"
    # The car reported once, before the session: its level is estimated from
    # the charger's energy (the link's efficiency, the capacity option).
    assert session["start_soc"] == pytest.approx(START_SOC, abs=0.5)
    assert session["end_soc"] == pytest.approx(
        START_SOC + energy * EFFICIENCY / CAPACITY_KWH * 100, abs=0.5
    )

    for device_key in (CHARGER_KEY, DEMO_KEY):
        state = hass.states.get(_entity_id(hass, device_key))
        assert state is not None
        assert float(state.state) == session["energy_kwh"]
        assert state.attributes["unit_of_measurement"] == "kWh"
        assert state.attributes["device_class"] == "energy"
        assert "state_class" not in state.attributes
        assert {key: state.attributes[key] for key in SESSION_ATTRIBUTES} == {
            key: session[key] for key in SESSION_ATTRIBUTES
        }

    # Nothing more happens while the charger stays unplugged.
    await rig.step(3)
    assert len(rig.events) == 1


async def test_a_session_between_two_reads_is_not_counted_in_the_next(
    hass: HomeAssistant, rig: Rig
) -> None:
    """A car that comes and goes between two reads leaves its energy out.

    The meter grew by both sessions since the last read; the charger's session
    counter (go-e `wh`, reset when a car connects) holds only the one it sees.
    """
    rig.park_at_home("DEMO")
    await rig.link(await rig.set_up_charger(), DEMO_KEY)
    await rig.step()

    # Between two reads: a short charge the integration never sees...
    before_missed = rig.meter()
    rig.charger.plug_in()
    rig.charger.advance(20)
    rig.charger.unplug()
    missed = rig.meter() - before_missed
    assert missed > 0.05  # 20 s at 11 kW
    # ... then the next car connects, and that session is followed.
    first = rig.meter()
    rig.charger.plug_in()
    await rig.step(4)
    rig.charger.unplug()
    await rig.step()

    session = _only(rig.events)
    assert session["energy_kwh"] == pytest.approx(
        rig.meter() - first, abs=2 * RESOLUTION
    )


@pytest.mark.parametrize(
    ("unit", "prices", "expected"),
    [
        ("EUR/MWh", ("300", "300"), ("EUR", 0.30)),
        (None, ("0.25", "0.25"), ("EUR", 0.25)),  # Home Assistant's currency
        ("SEK", ("2", "2"), ("SEK", 2.0)),  # a currency alone: per kWh
        ("EUR/kWh", ("0.30", "unknown"), None),
        ("EUR/kWh", ("0.30", "nan"), None),
        ("EUR/m³", ("0.30", "0.30"), None),  # not a price of energy
        ("EUR/kWh", ("0.30", None), None),  # the entity is gone
    ],
)
async def test_cost_from_the_price_unit(
    hass: HomeAssistant,
    rig: Rig,
    unit: str | None,
    prices: tuple[str, str | None],
    expected: tuple[str, float] | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A price per MWh or per kWh in its currency; not a number: unknown cost."""
    attributes = {} if unit is None else {"unit_of_measurement": unit}
    hass.states.async_set(PRICE, prices[0], attributes)
    await rig.set_up_charger(**{CONF_PRICE_ENTITY: PRICE})
    rig.charger.plug_in()
    await rig.step(4)
    if prices[1] is None:
        hass.states.async_remove(PRICE)
    else:
        hass.states.async_set(PRICE, prices[1], attributes)
    await rig.step(4)
    rig.charger.unplug()
    await rig.step()

    session = _only(rig.events)
    assert session["energy_kwh"] > 0.5
    assert session["vehicle_device_id"] is None  # no vehicle is linked
    if expected is None:
        assert session["cost"] is None
        assert session["currency"] is None
        assert "the cost of the charging session since" in caplog.text
        return
    currency, per_kwh = expected
    assert session["currency"] == currency
    assert session["cost"] == pytest.approx(session["energy_kwh"] * per_kwh, abs=0.01)


async def test_nothing_charged_costs_nothing(hass: HomeAssistant, rig: Rig) -> None:
    """A car plugged in that takes nothing (charging forced off): 0 kWh, 0 EUR."""
    hass.states.async_set(PRICE, "0.30", {"unit_of_measurement": "EUR/kWh"})
    await rig.set_up_charger(**{CONF_PRICE_ENTITY: PRICE})
    rig.charger.state["frc"] = 1  # forced off
    assert await rig.session(3) == 0
    session = _only(rig.events)
    assert session["energy_kwh"] == 0
    assert (session["cost"], session["currency"]) == (0, "EUR")
    assert session["peak_power_kw"] == 0


async def test_no_price_entity_no_cost(hass: HomeAssistant, rig: Rig) -> None:
    """Without a price entity the session has no cost (not 0) and no currency."""
    await rig.set_up_charger()
    energy = await rig.session(4)
    session = _only(rig.events)
    assert session["energy_kwh"] == pytest.approx(energy, abs=2 * RESOLUTION)
    assert session["cost"] is None
    assert session["currency"] is None
    assert session["start_soc"] is None
    assert session["end_soc"] is None


async def test_session_across_a_reload_is_one(
    hass: HomeAssistant, rig: Rig, hass_storage: dict[str, Any]
) -> None:
    """Stored while it runs and at unload; the energy charged meanwhile counts."""
    charger_id = await rig.set_up_charger()
    first = rig.meter()
    rig.charger.plug_in()
    meters = []
    for _ in range(6):
        await rig.step()
        meters.append(rig.meter() - first)
    # Written within a minute while it runs (a restart finds it there): what
    # it had two or three steps ago.
    stored = hass_storage[STORE_KEY]["data"][CHARGER_KEY]
    assert stored["session"]["energy_kwh"] == pytest.approx(
        meters[-3], abs=2 * RESOLUTION
    ) or stored["session"]["energy_kwh"] == pytest.approx(
        meters[-2], abs=2 * RESOLUTION
    )

    assert await hass.config_entries.async_unload(rig.goe_entry.entry_id)
    await hass.async_block_till_done()
    stored = hass_storage[STORE_KEY]["data"][CHARGER_KEY]
    assert stored["session"] is not None
    await rig.step(6)  # charging on while the entry is not loaded
    assert await hass.config_entries.async_setup(rig.goe_entry.entry_id)
    await hass.async_block_till_done()
    await rig.step(4)
    rig.charger.unplug()
    await rig.step()

    session = _only(rig.events)
    assert session["charger_device_id"] == charger_id
    assert session["energy_kwh"] == pytest.approx(
        rig.meter() - first, abs=2 * RESOLUTION
    )
    assert hass_storage[STORE_KEY]["data"][CHARGER_KEY]["session"] is None
    # The sensor shows it after the next reload too (restored).
    assert await hass.config_entries.async_reload(rig.goe_entry.entry_id)
    await hass.async_block_till_done()
    state = hass.states.get(_entity_id(hass, CHARGER_KEY))
    assert state is not None
    assert float(state.state) == session["energy_kwh"]
    assert state.attributes["start"] == session["start"]


async def test_session_across_a_restart_is_one(
    hass: HomeAssistant, rig: Rig, hass_storage: dict[str, Any]
) -> None:
    """Home Assistant stops mid-session (its final write); the next start resumes.

    The restart is a new setup from what the store holds; the entry is set up
    again in the same Home Assistant, its store's content the one written at
    the final write (the unload's own write is undone to show that).
    """
    await rig.set_up_charger()
    first = rig.meter()
    rig.charger.plug_in()
    await rig.step()
    hass.bus.async_fire(EVENT_HOMEASSISTANT_FINAL_WRITE)
    await hass.async_block_till_done()
    at_stop = dict(hass_storage[STORE_KEY])
    assert at_stop["data"][CHARGER_KEY]["session"] is not None
    assert await hass.config_entries.async_unload(rig.goe_entry.entry_id)
    await hass.async_block_till_done()
    hass_storage[STORE_KEY] = at_stop
    await rig.step(5)
    assert await hass.config_entries.async_setup(rig.goe_entry.entry_id)
    await hass.async_block_till_done()
    rig.charger.unplug()
    await rig.step()

    session = _only(rig.events)
    assert session["energy_kwh"] == pytest.approx(
        rig.meter() - first, abs=2 * RESOLUTION
    )


async def test_removed_entry_leaves_no_store(
    hass: HomeAssistant, rig: Rig, hass_storage: dict[str, Any]
) -> None:
    """Removing the charger's entry removes its stored sessions."""
    await rig.set_up_charger()
    rig.charger.plug_in()
    await rig.step()
    assert hass_storage[STORE_KEY]["data"][CHARGER_KEY]["session"] is not None
    assert await hass.config_entries.async_remove(rig.goe_entry.entry_id)
    await hass.async_block_till_done()
    assert STORE_KEY not in hass_storage


async def test_unreadable_store_is_dropped(
    hass: HomeAssistant,
    rig: Rig,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A malformed stored session is logged and dropped; sessions go on."""
    hass_storage[STORE_KEY] = {
        "version": 1,
        "minor_version": 1,
        "key": STORE_KEY,
        "data": {
            CHARGER_KEY: {
                "session": {"start": "yesterday"},
                "last": None,
                "plugged": False,
                "charging": False,
            }
        },
    }
    await rig.set_up_charger()
    assert "stored charging session of goe_012345 is unreadable" in caplog.text
    energy = await rig.session(3)
    assert _only(rig.events)["energy_kwh"] == pytest.approx(energy, abs=2 * RESOLUTION)


async def test_unassigned_when_two_linked_cars_are_plugged_in(
    hass: HomeAssistant, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Both linked cars say plugged in at home: the session has no vehicle."""
    rig.park_at_home("DEMO")
    rig.park_at_home("ROADSTER")
    charger_id = await rig.set_up_charger()
    await rig.link(charger_id, DEMO_KEY, ROADSTER_KEY)
    caplog.set_level(logging.INFO)
    energy = await rig.session(4)

    session = _only(rig.events)
    assert session["vehicle_device_id"] is None
    assert session["start_soc"] is None
    assert session["end_soc"] is None
    assert session["energy_kwh"] == pytest.approx(energy, abs=2 * RESOLUTION)
    assert (
        "is not assigned to a vehicle: ovms_DEMO, ovms_ROADSTER all say they are "
        "plugged in at home" in caplog.text
    )
    # The charger's sensor shows it; neither car's does.
    assert float(hass.states.get(_entity_id(hass, CHARGER_KEY)).state) == pytest.approx(
        energy, abs=2 * RESOLUTION
    )
    for vehicle_key in (DEMO_KEY, ROADSTER_KEY):
        assert hass.states.get(_entity_id(hass, vehicle_key)).state == "unknown"


async def test_the_one_plugged_in_of_two_linked_cars(
    hass: HomeAssistant, rig: Rig
) -> None:
    """Of two linked cars, the one that says plugged in at home gets the session."""
    rig.park_at_home("DEMO", plugged=False)
    rig.park_at_home("ROADSTER")
    charger_id = await rig.set_up_charger()
    await rig.link(charger_id, DEMO_KEY, ROADSTER_KEY)
    await rig.session(4)
    session = _only(rig.events)
    assert session["vehicle_device_id"] == _device_id(hass, ROADSTER_KEY)
    assert hass.states.get(_entity_id(hass, DEMO_KEY)).state == "unknown"
    assert (
        float(hass.states.get(_entity_id(hass, ROADSTER_KEY)).state)
        == (session["energy_kwh"])
    )


async def test_unassigned_when_the_cars_change_their_minds(
    hass: HomeAssistant, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """One linked car says plugged in, later only the other: no vehicle."""
    rig.park_at_home("DEMO")
    rig.park_at_home("ROADSTER", plugged=False)
    charger_id = await rig.set_up_charger()
    await rig.link(charger_id, DEMO_KEY, ROADSTER_KEY)
    caplog.set_level(logging.INFO)
    rig.charger.plug_in()
    await rig.step(2)
    rig.park_at_home("DEMO", plugged=False)
    rig.park_at_home("ROADSTER")
    # The cars' new records are read at their next poll.
    for entry_id, coordinator in rig.ovms_entry.runtime_data.coordinators.items():
        await coordinator.async_refresh()
        assert coordinator.last_update_success, entry_id
    await rig.step(2)
    rig.charger.unplug()
    await rig.step()
    assert _only(rig.events)["vehicle_device_id"] is None
    assert "ovms_DEMO and then ovms_ROADSTER were at it" in caplog.text


async def test_unassigned_when_none_says_so(
    hass: HomeAssistant, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """Two linked cars, neither plugged in by its own data: logged, no vehicle."""
    rig.park_at_home("DEMO", plugged=False)
    rig.park_at_home("ROADSTER", plugged=False)
    charger_id = await rig.set_up_charger()
    await rig.link(charger_id, DEMO_KEY, ROADSTER_KEY)
    caplog.set_level(logging.INFO)
    await rig.session(3)
    assert _only(rig.events)["vehicle_device_id"] is None
    assert "no linked vehicle said it was plugged in at home" in caplog.text


async def test_home_energy_statistic(
    recorder_mock: Recorder, hass: HomeAssistant, rig: Rig
) -> None:
    """Each session adds its energy to the car's statistic, hour by hour."""
    rig.park_at_home("DEMO")
    charger_id = await rig.set_up_charger()
    await rig.link(charger_id, DEMO_KEY)
    begin = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    # 12:00-12:03, then 12:50-13:10 (two hours): the second continues the sum.
    first = await rig.session(6)
    await async_wait_recording_done(hass)
    statistic_id = home_energy_statistic_id(DEMO_KEY)
    assert statistic_id == "ev_cloud:ovms_demo_energy_charged_at_home"
    rows = await _hours(hass, recorder_mock, statistic_id, begin)
    assert [row["sum"] for row in rows] == [pytest.approx(first, abs=2 * RESOLUTION)]

    rig.freezer.move_to(begin + timedelta(minutes=50))
    await rig.step()
    second = await rig.session(40)
    await async_wait_recording_done(hass)
    rows = await _hours(hass, recorder_mock, statistic_id, begin)
    assert [datetime.fromtimestamp(row["start"], UTC) for row in rows] == [
        begin,
        begin + timedelta(hours=1),
    ]
    sums = [row["sum"] for row in rows]
    assert first < sums[0] < sums[1]
    assert sums[1] == pytest.approx(first + second, abs=4 * RESOLUTION)
    assert [event.data["energy_kwh"] for event in rig.events] == [
        pytest.approx(first, abs=2 * RESOLUTION),
        pytest.approx(second, abs=2 * RESOLUTION),
    ]

    [listed] = await recorder_mock.async_add_executor_job(
        list_statistic_ids, hass, {statistic_id}
    )
    car = registered_device(hass, DEMO_KEY)
    assert car is not None
    assert {key: listed[key] for key in _LISTED} == {
        "statistic_id": statistic_id,
        "display_unit_of_measurement": "kWh",
        "has_sum": True,
        "mean_type": StatisticMeanType.NONE,
        "name": f"{car.name} energy charged at home",
        "source": DOMAIN,
        "statistics_unit_of_measurement": "kWh",
        "unit_class": "energy",
    }


_LISTED = (
    "statistic_id",
    "display_unit_of_measurement",
    "has_sum",
    "mean_type",
    "name",
    "source",
    "statistics_unit_of_measurement",
    "unit_class",
)


async def _hours(
    hass: HomeAssistant, recorder: Recorder, statistic_id: str, begin: datetime
) -> list[Any]:
    found = await recorder.async_add_executor_job(
        statistics_during_period,
        hass,
        begin,
        None,
        {statistic_id},
        "hour",
        None,
        {"sum"},
    )
    rows: list[Any] = found.get(statistic_id, [])
    return rows


async def test_session_by_charging_without_a_plug_state(
    hass: HomeAssistant, rig: Rig
) -> None:
    """A charger that never says plugged in: charging started to stopped.

    Faked: the readings are sent on the charger's signal as such a charger's
    coordinator would (the go-e always says whether a car is plugged in).
    """
    await rig.set_up_charger()
    signal = signal_charger_reading(CHARGER_KEY)
    start = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)

    def reading(
        minutes: int, charging: bool | None, kwh: float | None, *, online: bool = True
    ) -> ChargerReading:
        return ChargerReading(
            time=start + timedelta(minutes=minutes),
            online=online,
            plugged=None,
            charging=charging,
            power_kw=7.0 if charging else 0.0,
            energy_kwh=kwh,
            meter=False,
        )

    for minutes, charging, kwh, online in (
        (0, False, 5.0, True),  # the last session's counter
        (1, True, 0.5, True),  # a new session: the counter restarted
        (2, True, None, False),  # offline: says nothing
        (3, True, 1.0, True),
        (4, False, 1.2, True),  # stopped: what flowed before it counts
    ):
        async_dispatcher_send(
            hass, signal, reading(minutes, charging, kwh, online=online)
        )
    await hass.async_block_till_done()
    session = _only(rig.events)
    assert session["start"] == (start + timedelta(minutes=1)).isoformat()
    assert session["end"] == (start + timedelta(minutes=4)).isoformat()
    assert session["energy_kwh"] == pytest.approx(1.2)
    assert session["peak_power_kw"] == 7.0


def test_energy_between_readings() -> None:
    """A meter counts all it grew; a counter that restarted counts from 0."""
    now = datetime(2027, 1, 1, tzinfo=UTC)

    def reading(kwh: float | None, *, meter: bool, charging: bool) -> ChargerReading:
        return ChargerReading(now, True, True, charging, None, kwh, meter)

    meter_idle = reading(10.0, meter=True, charging=False)
    assert energy_between(meter_idle, reading(12.0, meter=True, charging=False)) == 2.0
    assert energy_between(meter_idle, reading(3.0, meter=True, charging=True)) == 0.0
    counter = reading(4.0, meter=False, charging=True)
    assert energy_between(counter, reading(1.0, meter=False, charging=True)) == 1.0
    assert energy_between(counter, reading(5.0, meter=False, charging=False)) == 1.0
    # Different counters (the meter was missing from one reading), none at all.
    assert energy_between(counter, reading(12.0, meter=True, charging=True)) == 0.0
    assert energy_between(None, counter) == 0.0
    assert energy_between(counter, reading(None, meter=False, charging=True)) == 0.0


async def _evenergy_steps(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evenergy_sim: EvEnergySimulator,
    steps: int,
) -> None:
    """5 minutes a step: the ev.energy simulator moves on and is read."""
    for _ in range(steps):
        evenergy_sim.advance(300)
        freezer.tick(timedelta(minutes=5))
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)


async def test_evenergy_charger_and_its_vehicle_in_one_entry(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evenergy_sim: EvEnergySimulator,
    evenergy_entry: MockConfigEntry,
) -> None:
    """An ev.energy EVSE and the Zoe it charges, linked within their entry.

    Only the EVSE gets sessions (the vehicles are no chargers); the Zoe, at
    home and plugged in by its own data, is the vehicle of the session.
    """
    zoe = next(car for car in evenergy_sim.vehicles if car.description == "Zoe")
    evse = evenergy_sim.evses[0]
    evenergy_sim.unplug(zoe.id)
    await setup_entry(hass, evenergy_entry)
    runtime = evenergy_entry.runtime_data
    [charger_key] = runtime.sessions
    assert runtime.coordinators[charger_key].device.entities.role == "charger"
    zoe_key = f"evenergy_{zoe.id}"
    charger = registered_device(hass, charger_key)
    assert charger is not None
    hass.config_entries.async_update_entry(
        evenergy_entry,
        options={
            **evenergy_entry.options,
            CONF_CHARGER_LINKS: {zoe_key: {CONF_CHARGER: charger.id}},
        },
    )
    assert await hass.config_entries.async_reload(evenergy_entry.entry_id)
    await hass.async_block_till_done()
    events = async_capture_events(hass, EVENT_CHARGING_SESSION)

    await _evenergy_steps(hass, freezer, evenergy_sim, 1)
    before = evse.meter_reading_wh
    evenergy_sim.plug_in(zoe.id)
    await _evenergy_steps(hass, freezer, evenergy_sim, 6)
    evenergy_sim.unplug(zoe.id)
    await _evenergy_steps(hass, freezer, evenergy_sim, 2)
    energy = (evse.meter_reading_wh - before) / 1000
    assert energy > 1

    session = _only(events)
    assert session["charger_device_id"] == charger.id
    assert session["vehicle_device_id"] == _device_id(hass, zoe_key)
    assert session["energy_kwh"] == pytest.approx(energy, abs=2 * RESOLUTION)
    for device_key in (charger_key, zoe_key):
        state = hass.states.get(_entity_id(hass, device_key))
        assert state is not None
        assert float(state.state) == session["energy_kwh"]
    # The Van is no charger and not linked: no sensor.
    sensors = {
        entry.unique_id
        for entry in er.async_entries_for_config_entry(
            er.async_get(hass), evenergy_entry.entry_id
        )
        if entry.unique_id.endswith("_last_charging_session")
    }
    assert sensors == {
        f"{charger_key}_last_charging_session",
        f"{zoe_key}_last_charging_session",
    }


async def test_evenergy_charger_added_later(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evenergy_sim: EvEnergySimulator,
    evenergy_entry: MockConfigEntry,
) -> None:
    """A charger the account lists later gets its sessions and sensor then.

    The Zoe moves to the new charger (the first one serves no car any more).
    """
    zoe = next(car for car in evenergy_sim.vehicles if car.description == "Zoe")
    evenergy_sim.unplug(zoe.id)
    await setup_entry(hass, evenergy_entry)
    runtime = evenergy_entry.runtime_data
    assert len(runtime.sessions) == 1
    evenergy_sim.evses[0].vehicle_id = None
    evse = evenergy_sim.add_evse(
        SimEvse(USER_ID, cpid="SIM-EVSE-0002", vehicle_id=zoe.id)
    )
    events = async_capture_events(hass, EVENT_CHARGING_SESSION)

    await _evenergy_steps(
        hass, freezer, evenergy_sim, 7
    )  # the account lists its devices every 30 minutes
    assert len(runtime.sessions) == 2
    [added_key] = set(runtime.sessions) - {
        key for key in runtime.sessions if key.endswith(evenergy_sim.evses[0].id)
    }
    assert added_key.endswith(evse.id)
    before = evse.meter_reading_wh
    evenergy_sim.plug_in(zoe.id)
    await _evenergy_steps(hass, freezer, evenergy_sim, 4)
    evenergy_sim.unplug(zoe.id)
    await _evenergy_steps(hass, freezer, evenergy_sim, 2)
    energy = (evse.meter_reading_wh - before) / 1000
    assert energy > 0.5

    session = _only(events)
    assert session["charger_device_id"] == _device_id(hass, added_key)
    assert session["vehicle_device_id"] is None  # the Zoe is linked to nothing
    assert session["energy_kwh"] == pytest.approx(energy, abs=2 * RESOLUTION)
    state = hass.states.get(_entity_id(hass, added_key))
    assert state is not None
    assert float(state.state) == session["energy_kwh"]
