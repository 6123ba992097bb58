"""The Energy dashboard: each provider's energy sensor counts what was charged.

For every energy sensor of every provider, with the recorder running: the sensor
is added to the dashboard's individual devices, the simulator charges across a
counter reset (a new charge, or a meter that starts again at 0) and a restart of
the entry while the car keeps charging, statistics are compiled for every
5-minute period, and the hourly `sum` must equal the energy the simulator
charged while Home Assistant watched, with no step down.

Nothing is faked but the clock (frozen, moved by the test) and the recorder's
database (in memory).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.recorder import Recorder
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import UnitOfEnergy, UnitOfPower
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
    statistics_during_period,
)
from pytest_homeassistant_custom_component.typing import (
    MockHAClientWebSocket,
    WebSocketGenerator,
)

from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.descriptions import EvCloudSensorEntityDescription
from custom_components.ev_cloud.providers import PROVIDERS
from tests.conftest import setup_entry
from tests.evenergy.fixtures import START as EVENERGY_START
from tests.goe.fixtures import SERIAL
from tests.simulators.evenergy import EvEnergySimulator
from tests.simulators.goe import GoeSimulator
from tests.simulators.ovms import OvmsSimulator

# Every fixture that freezes the clock starts here (ev.energy's and OVMS's alike).
START = EVENERGY_START
STEP = timedelta(minutes=5)


@dataclass(frozen=True)
class Meter:
    """One energy sensor and how its simulator charges, resets and reports it.

    `reading` is the simulator's own counter in kWh (the service reports it at
    `resolution`, rounded or cut off); `charge` and `pause` let energy flow or
    stop; `reset` starts the counter again at 0.
    """

    provider: str
    key: str  # the sensor's description key
    device: Callable[[Any], str]  # the device's id at the service
    # The service's resolution in kWh: a reading it sends is off by less.
    resolution: float
    reading: Callable[[Any], float]
    charge: Callable[[Any], None]
    pause: Callable[[Any], None]
    reset: Callable[[Any], None]


@pytest.fixture
def mock_recorder_before_hass(async_test_recorder: Any) -> None:
    """The recorder's database exists before Home Assistant starts."""


def _goe_charger(sim: GoeSimulator) -> Any:
    return sim.charger(SERIAL)


def _goe_zero_total(sim: GoeSimulator) -> None:
    """The total meter starts again at 0, as after a charger replacement."""
    _goe_charger(sim).state["eto"] = 0.0


def _goe_new_session(sim: GoeSimulator) -> None:
    _goe_charger(sim).unplug()
    _goe_charger(sim).plug_in()


def _ovms_charge(sim: OvmsSimulator) -> None:
    car = sim.vehicle("DEMO")
    car.plug_in()
    car.start_charging()


def _ovms_new_charge(sim: OvmsSimulator) -> None:
    sim.vehicle("DEMO").unplug()
    sim.vehicle("DEMO").plug_in()


def _zoe(sim: EvEnergySimulator) -> Any:
    return next(vehicle for vehicle in sim.vehicles if vehicle.description == "Zoe")


def _evenergy_charge(sim: EvEnergySimulator) -> None:
    sim.plug_in(_zoe(sim).id)


def _evenergy_pause(sim: EvEnergySimulator) -> None:
    sim.unplug(_zoe(sim).id)


def _evenergy_zero_meter(sim: EvEnergySimulator) -> None:
    sim.evses[0].meter_reading_wh = 0.0


def _nothing(_sim: Any) -> None:
    """The counter keeps its value when charging pauses or resumes."""


GOE_READING = 0.001  # `wh` and `eto` in Wh
METERS = (
    Meter(
        provider="goe",
        key="total_energy",
        device=lambda _sim: SERIAL,
        resolution=GOE_READING,
        reading=lambda sim: _goe_charger(sim).state["eto"] / 1000,
        charge=lambda sim: _goe_charger(sim).plug_in(),
        pause=lambda sim: _goe_charger(sim).unplug(),
        reset=_goe_zero_total,
    ),
    Meter(
        provider="goe",
        key="session_energy",
        device=lambda _sim: SERIAL,
        resolution=GOE_READING,
        reading=lambda sim: _goe_charger(sim).state["wh"] / 1000,
        charge=_nothing,
        pause=lambda sim: _goe_charger(sim).unplug(),
        reset=_goe_new_session,
    ),
    Meter(
        provider="ovms",
        key="session_energy",
        device=lambda _sim: "DEMO",
        resolution=0.1,  # `chargekwh` in 1/10 kWh
        reading=lambda sim: sim.vehicle("DEMO").charge_kwh,
        charge=_ovms_charge,
        pause=lambda sim: sim.vehicle("DEMO").stop_charging(),
        reset=_ovms_new_charge,
    ),
    Meter(
        provider="evenergy",
        key="session_energy",
        device=lambda sim: _zoe(sim).id,
        resolution=0.001,  # `charge_energy_added_watt_hours` in Wh
        reading=lambda sim: _zoe(sim).charge_energy_added_wh / 1000,
        charge=_evenergy_charge,
        pause=_evenergy_pause,
        reset=_nothing,  # plugging in again starts a new session at 0
    ),
    Meter(
        provider="evenergy",
        key="total_energy",
        device=lambda sim: sim.evses[0].id,
        resolution=0.001,  # `meter_reading_watt_hours` in Wh
        reading=lambda sim: sim.evses[0].meter_reading_wh / 1000,
        charge=_evenergy_charge,
        pause=_evenergy_pause,
        reset=_evenergy_zero_meter,
    ),
)


@dataclass(frozen=True)
class MeterUnderTest:
    """A meter, its provider's simulator and the entry that reads it."""

    meter: Meter
    sim: Any
    entry: MockConfigEntry


@pytest.fixture(params=METERS, ids=lambda meter: f"{meter.provider}-{meter.key}")
def meter_under_test(
    request: pytest.FixtureRequest, freezer: FrozenDateTimeFactory
) -> MeterUnderTest:
    """One energy sensor after another, with its simulator and entry.

    The clock is at START from here on (go-e's fixture leaves it alone).
    """
    meter: Meter = request.param
    sim = request.getfixturevalue(f"{meter.provider}_sim")
    freezer.move_to(START)
    return MeterUnderTest(
        meter, sim, request.getfixturevalue(f"{meter.provider}_entry")
    )


def _advance(sim: Any, seconds: float) -> None:
    """Move the simulator's clock: go-e moves per charger, the others as a service."""
    if isinstance(sim, GoeSimulator):
        for charger in sim.chargers:
            charger.advance(seconds)
    else:
        sim.advance(seconds)


async def _tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, sim: Any, steps: int = 1
) -> None:
    """Let 5-minute steps pass for the simulator and Home Assistant; polls run."""
    for _ in range(steps):
        _advance(sim, STEP.total_seconds())
        freezer.tick(STEP)
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)


def _kwh(hass: HomeAssistant, entity_id: str) -> float:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    assert state.attributes["unit_of_measurement"] == UnitOfEnergy.KILO_WATT_HOUR
    return float(state.state)


async def _save_device(client: MockHAClientWebSocket, entity_id: str) -> None:
    """Add the sensor to the dashboard's individual devices."""
    await client.send_json_auto_id(
        {
            "type": "energy/save_prefs",
            "device_consumption": [{"stat_consumption": entity_id}],
        }
    )
    saved = await client.receive_json()
    assert saved["success"], saved
    assert saved["result"]["device_consumption"] == [{"stat_consumption": entity_id}]


async def _validate(client: MockHAClientWebSocket) -> list[Any]:
    """The dashboard's issues with each individual device."""
    await client.send_json_auto_id({"type": "energy/validate"})
    validated = await client.receive_json()
    assert validated["success"], validated
    issues: list[Any] = validated["result"]["device_consumption"]
    return issues


async def test_energy_dashboard_counts_the_charge(
    recorder_mock: Recorder,
    hass: HomeAssistant,
    meter_under_test: MeterUnderTest,
    freezer: FrozenDateTimeFactory,
    hass_ws_client: WebSocketGenerator,
    hass_access_token: str,
    entity_registry: er.EntityRegistry,
) -> None:
    """Across a counter reset and a restart the hourly sum is the energy charged."""
    meter, sim, entry = (
        meter_under_test.meter,
        meter_under_test.sim,
        meter_under_test.entry,
    )
    meter.charge(sim)
    await setup_entry(hass, entry)
    unique_id = f"{meter.provider}_{meter.device(sim)}_{meter.key}"
    entity_id = entity_registry.async_get_entity_id("sensor", DOMAIN, unique_id)
    assert entity_id is not None, unique_id
    assert await async_setup_component(hass, "energy", {})
    client = await hass_ws_client(hass)
    await _save_device(client, entity_id)
    await client.close()
    # The clock moves hours: the dashboard is asked again with a new access token.
    refresh_token = hass.auth.async_validate_access_token(hass_access_token)
    assert refresh_token is not None

    # Home Assistant counts from its first reading, not what came before.
    first = meter.reading(sim)
    assert _kwh(hass, entity_id) == pytest.approx(first, abs=meter.resolution)
    await _tick(hass, freezer, sim, 6)
    meter.pause(sim)
    await _tick(hass, freezer, sim)
    before_reset = meter.reading(sim)
    assert before_reset > first
    assert _kwh(hass, entity_id) == pytest.approx(before_reset, abs=meter.resolution)

    # The counter starts again at 0: a new charge, or a meter that restarts.
    meter.reset(sim)
    meter.charge(sim)
    await _tick(hass, freezer, sim)
    # A drop to below 90 % is what the recorder takes for a new cycle.
    assert _kwh(hass, entity_id) < 0.9 * before_reset
    await _tick(hass, freezer, sim, 5)

    # A restart while the car keeps charging: the counter has what was missed.
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    await _tick(hass, freezer, sim, 2)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await _tick(hass, freezer, sim, 6)
    meter.pause(sim)
    await _tick(hass, freezer, sim)
    last = meter.reading(sim)
    assert _kwh(hass, entity_id) == pytest.approx(last, abs=meter.resolution)
    charged = before_reset - first + last

    # Compile every 5-minute period up to the next full hour, in order.
    end = _next_full_hour(datetime.now(UTC))
    freezer.move_to(end + STEP)
    period = START
    while period < end:
        do_adhoc_statistics(hass, start=period)
        period += STEP
    await async_wait_recording_done(hass)

    hours = await recorder_mock.async_add_executor_job(
        statistics_during_period,
        hass,
        START,
        end,
        {entity_id},
        "hour",
        None,
        {"sum", "state"},
    )
    sums = [row["sum"] for row in hours[entity_id]]
    assert len(sums) == (end - START) // timedelta(hours=1)
    assert _never_down(sums), sums
    # The sum takes three readings (the first, the last before the reset, the
    # last) and the reset's exact 0; each is off by less than the resolution.
    assert sums[-1] == pytest.approx(charged, abs=3 * meter.resolution)
    # No 5-minute step down either (a reset counted as negative energy).
    minutes = await recorder_mock.async_add_executor_job(
        statistics_during_period,
        hass,
        START,
        end,
        {entity_id},
        "5minute",
        None,
        {"sum"},
    )
    steps = [row["sum"] for row in minutes[entity_id]]
    assert steps[-1] == sums[-1]
    assert _never_down(steps), steps
    # The dashboard finds the statistic and nothing wrong with the sensor.
    client = await hass_ws_client(
        hass, hass.auth.async_create_access_token(refresh_token)
    )
    assert await _validate(client) == [[]]


def _never_down(sums: list[float]) -> bool:
    return all(later >= earlier for earlier, later in pairwise(sums))


def _next_full_hour(moment: datetime) -> datetime:
    """The next full hour after `moment` (or `moment` itself on the hour)."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return hour if hour == moment else hour + timedelta(hours=1)


# --- the audit: what every energy, power and capacity sensor declares ------------

ENERGY_UNITS = {UnitOfEnergy.WATT_HOUR, UnitOfEnergy.KILO_WATT_HOUR}
POWER_UNITS = {UnitOfPower.WATT, UnitOfPower.KILO_WATT}


def _sensor_descriptions() -> list[tuple[str, EvCloudSensorEntityDescription[Any]]]:
    return [
        (name, description)
        for name, provider in PROVIDERS.items()
        for kind in provider.entities
        for description in kind.sensor
    ]


def test_energy_power_and_capacity_sensors_declare_what_the_dashboard_needs() -> None:
    """Energy counters are TOTAL_INCREASING, power MEASUREMENT, capacity not counted."""
    checked = 0
    for name, description in _sensor_descriptions():
        where = f"{name} {description.key}"
        match description.device_class:
            case SensorDeviceClass.ENERGY:
                assert description.state_class is SensorStateClass.TOTAL_INCREASING
                assert description.native_unit_of_measurement in ENERGY_UNITS, where
            case SensorDeviceClass.POWER:
                assert description.state_class is SensorStateClass.MEASUREMENT, where
                assert description.native_unit_of_measurement in POWER_UNITS, where
            case SensorDeviceClass.ENERGY_STORAGE:
                # Stored energy goes up and down; it is never summed.
                assert description.state_class in (
                    None,
                    SensorStateClass.MEASUREMENT,
                ), where
                assert description.native_unit_of_measurement in ENERGY_UNITS, where
            case _:
                if "energy" in description.key or "capacity" in description.key:
                    pytest.fail(f"{where} has no energy device class")
                continue
        checked += 1
    assert checked


def test_every_energy_counter_has_its_dashboard_test() -> None:
    """A provider's new energy counter needs a meter above (EVLinkHA has none)."""
    counters = {
        (name, description.key)
        for name, description in _sensor_descriptions()
        if description.device_class is SensorDeviceClass.ENERGY
    }
    assert counters == {(meter.provider, meter.key) for meter in METERS}
