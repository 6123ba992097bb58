"""EV-Monitor's source: entities read into datasets, and a vehicle's entities found."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.const import (
    ATTR_GPS_ACCURACY,
    ATTR_LATITUDE,
    ATTR_LONGITUDE,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util.unit_system import US_CUSTOMARY_SYSTEM
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.api.evmonitor import Dataset
from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.providers.evmonitor.source import (
    device_mapping,
    fingerprint,
    is_active,
    read_dataset,
    resolve_mapping,
)
from tests.conftest import setup_entry
from tests.evmonitor.fixtures import SOURCE, START

VEHICLE = "rocket-vehicle-id"
# The OVMS fixture's charging car (km), as its entities map.
DEMO_MAPPING = {
    "soc": "sensor.ovms_demo_battery",
    "range": "sensor.ovms_demo_estimated_range",
    "speed": "sensor.ovms_demo_speed",
    "odometer": "sensor.ovms_demo_odometer",
    "power": "sensor.ovms_demo_charge_power",
    "battery_temperature": "sensor.ovms_demo_battery_temperature",
    "charging": "binary_sensor.ovms_demo_charging",
    "location": "device_tracker.ovms_demo_location",
}


def _set(hass: HomeAssistant, field: str, state: str, unit: str | None = None) -> None:
    """The state of the fixture's entity for `field`, with a unit if given."""
    attributes = {} if unit is None else {ATTR_UNIT_OF_MEASUREMENT: unit}
    hass.states.async_set(SOURCE[field], state, attributes)


def _read(hass: HomeAssistant) -> Dataset:
    return read_dataset(hass, SOURCE, VEHICLE, START)


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, name: str) -> str:
    registry = dr.async_get(hass)
    return next(
        device.id
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if device.name == name
    )


# --- values and units ----------------------------------------------------------------


async def test_values_are_converted_to_evmonitor_units(hass: HomeAssistant) -> None:
    """Miles, mph, W and °F become km, km/h, kW and °C; the time and id are kept."""
    _set(hass, "soc", "81.5", "%")
    _set(hass, "range", "100", "mi")
    _set(hass, "odometer", "1000", "mi")
    _set(hass, "speed", "50", "mph")
    _set(hass, "power", "7200", "W")
    _set(hass, "battery_temperature", "86", "°F")
    dataset = _read(hass)
    assert dataset.vehicle_id == VEHICLE
    assert dataset.timestamp == START
    assert dataset.soc == 81.5
    assert dataset.range_km == pytest.approx(160.9344)
    assert dataset.odometer_km == pytest.approx(1609.344)
    assert dataset.speed_kmh == pytest.approx(80.4672)
    assert dataset.power_kw == pytest.approx(7.2)
    assert dataset.battery_temp_c == pytest.approx(30.0)


async def test_other_units_of_the_same_kind_are_converted(hass: HomeAssistant) -> None:
    """Any unit of the field's kind works: metres, m/s, MW, kelvin."""
    _set(hass, "range", "250000", "m")
    _set(hass, "speed", "10", "m/s")
    _set(hass, "power", "0.05", "MW")
    _set(hass, "battery_temperature", "300.15", "K")
    dataset = _read(hass)
    assert dataset.range_km == pytest.approx(250.0)
    assert dataset.speed_kmh == pytest.approx(36.0)
    assert dataset.power_kw == pytest.approx(50.0)
    assert dataset.battery_temp_c == pytest.approx(27.0)


async def test_values_without_a_unit_are_in_evmonitor_units(
    hass: HomeAssistant,
) -> None:
    """An entity that states no unit (an input_number, a template) is taken as is."""
    for field, value in (
        ("soc", "64"),
        ("range", "210"),
        ("odometer", "4321"),
        ("speed", "30"),
        ("power", "11"),
        ("battery_temperature", "19"),
    ):
        _set(hass, field, value)
    dataset = _read(hass)
    assert (
        dataset.soc,
        dataset.range_km,
        dataset.odometer_km,
        dataset.speed_kmh,
        dataset.battery_temp_c,
    ) == (64.0, 210.0, 4321.0, 30.0, 19.0)
    assert dataset.power_kw == 11.0


async def test_a_unit_that_cannot_mean_the_field_leaves_it_out(
    hass: HomeAssistant,
) -> None:
    """A range in %, a speed in km, a power in kWh, a temperature in W: left out."""
    _set(hass, "soc", "70", "%")
    _set(hass, "range", "70", "%")
    _set(hass, "odometer", "1200", "km/h")
    _set(hass, "speed", "12", "km")
    _set(hass, "power", "40", "kWh")
    _set(hass, "battery_temperature", "20", "W")
    dataset = _read(hass)
    assert dataset.soc == 70.0
    assert dataset.range_km is None
    assert dataset.odometer_km is None
    assert dataset.speed_kmh is None
    assert dataset.power_kw is None
    assert dataset.battery_temp_c is None


async def test_a_state_of_charge_in_another_unit_is_left_out(
    hass: HomeAssistant,
) -> None:
    """A battery's energy (kWh) picked for the state of charge is no percentage."""
    _set(hass, "soc", "91", "kWh")
    assert _read(hass).soc is None


@pytest.mark.parametrize(
    "state", [STATE_UNAVAILABLE, STATE_UNKNOWN, "", "n/a", "nan", "inf", "on"]
)
async def test_unknown_or_non_numeric_states_are_left_out(
    hass: HomeAssistant, state: str
) -> None:
    """No finite number, no value: nothing is guessed, the dataset stays empty."""
    for field in ("soc", "range", "odometer", "speed", "power", "battery_temperature"):
        _set(hass, field, state, "km" if field in ("range", "odometer") else None)
    dataset = _read(hass)
    assert dataset == Dataset(vehicle_id=VEHICLE, timestamp=START)
    assert fingerprint(dataset) is None


async def test_missing_entities_are_left_out(hass: HomeAssistant) -> None:
    """Entities that do not exist (yet) give an empty dataset, not an error."""
    assert _read(hass) == Dataset(vehicle_id=VEHICLE, timestamp=START)
    assert read_dataset(hass, {}, VEHICLE, START) == Dataset(
        vehicle_id=VEHICLE, timestamp=START
    )


# --- charging, driving and the power's sign -------------------------------------------


@pytest.mark.parametrize(
    ("charging", "expected"),
    [
        ("on", 10),
        ("charging", 10),
        ("Charging", 10),
        (" true ", 10),
        ("1", 10),
        ("yes", 10),
        ("off", 0),
        ("stopped", 0),
        ("done", 0),
        ("0", 0),
        (STATE_UNAVAILABLE, 0),
        (STATE_UNKNOWN, 0),
    ],
)
async def test_charging_states(
    hass: HomeAssistant, charging: str, expected: int
) -> None:
    """A binary sensor, switch or enum sensor; anything else known is not charging.

    Parked (speed 0): charging is state 10 (AC at 7 kW), anything else state 0; an
    unknown charging entity falls back on the speed too.
    """
    _set(hass, "charging", charging)
    _set(hass, "speed", "0", "km/h")
    _set(hass, "power", "7", "kW")
    dataset = _read(hass)
    assert dataset.state == expected
    # While charging the power flows into the battery: negative.
    assert dataset.power_kw == (-7.0 if expected == 10 else 7.0)
    assert is_active(dataset) is (expected == 10)


@pytest.mark.parametrize(
    ("power", "unit", "state", "power_kw"),
    [
        ("11", "kW", 10, -11.0),
        ("22", "kW", 10, -22.0),  # 22 kW is still AC
        ("22.1", "kW", 11, -22.1),
        ("50000", "W", 11, -50.0),
        ("-150", "kW", 11, -150.0),  # a battery power already negative
        (None, None, 10, None),  # no power: AC is assumed
    ],
)
async def test_dc_charging_above_22_kw(
    hass: HomeAssistant,
    power: str | None,
    unit: str | None,
    state: int,
    power_kw: float | None,
) -> None:
    """Charging above 22 kW is DC (11), up to it AC (10); the power is negative."""
    _set(hass, "charging", "on")
    if power is not None:
        _set(hass, "power", power, unit)
    dataset = _read(hass)
    assert dataset.state == state
    assert dataset.power_kw == pytest.approx(power_kw)
    assert is_active(dataset)


@pytest.mark.parametrize(
    ("speed", "charging", "state"),
    [
        ("0", "off", 0),
        ("0.0", None, 0),
        ("42", "off", 1),
        ("0.4", None, 1),
        ("42", "on", 10),  # charging wins (a car reporting stale speed)
        (None, "off", None),  # neither charging nor a speed: no state
        (None, None, None),
    ],
)
async def test_driving_state_follows_the_speed(
    hass: HomeAssistant, speed: str | None, charging: str | None, state: int | None
) -> None:
    """Not charging: on (1) above zero speed, off (0) at zero, unknown without one."""
    if speed is not None:
        _set(hass, "speed", speed, "km/h")
    if charging is not None:
        _set(hass, "charging", charging)
    _set(hass, "power", "15", "kW")
    dataset = _read(hass)
    assert dataset.state == state
    assert is_active(dataset) is (state in (1, 10))
    if state != 10:
        # Driving or parked: the power keeps its sign (flowing out).
        assert dataset.power_kw == 15.0


# --- position ------------------------------------------------------------------------


async def test_position_with_latitude_longitude_and_accuracy(
    hass: HomeAssistant,
) -> None:
    """A tracker's or a person's coordinates and accuracy; sent only all three."""
    hass.states.async_set(
        SOURCE["location"],
        "not_home",
        {ATTR_LATITUDE: 52.520008, ATTR_LONGITUDE: 13.404954, ATTR_GPS_ACCURACY: 12},
    )
    dataset = _read(hass)
    assert (dataset.latitude, dataset.longitude, dataset.accuracy_m) == (
        52.520008,
        13.404954,
        12.0,
    )
    values = fingerprint(dataset)
    assert values == {
        "data[0][general][gps][lat]": "52.520008",
        "data[0][general][gps][lng]": "13.404954",
        "data[0][general][gps][acc]": "12",
    }

    person = {"location": "person.driver"}
    hass.states.async_set(
        "person.driver",
        "home",
        {ATTR_LATITUDE: 48.137154, ATTR_LONGITUDE: 11.576124, ATTR_GPS_ACCURACY: 0},
    )
    dataset = read_dataset(hass, person, VEHICLE, START)
    assert (dataset.latitude, dataset.longitude, dataset.accuracy_m) == (
        48.137154,
        11.576124,
        0.0,
    )


@pytest.mark.parametrize(
    "attributes",
    [
        {ATTR_LATITUDE: 52.5, ATTR_LONGITUDE: 13.4},  # no accuracy
        {ATTR_LATITUDE: 52.5, ATTR_GPS_ACCURACY: 10},  # no longitude
        {ATTR_LONGITUDE: 13.4, ATTR_GPS_ACCURACY: 10},  # no latitude
        {ATTR_LATITUDE: "north", ATTR_LONGITUDE: 13.4, ATTR_GPS_ACCURACY: 10},
        {},  # a tracker without coordinates (a router's)
    ],
)
async def test_incomplete_position_is_not_sent(
    hass: HomeAssistant, attributes: dict[str, Any]
) -> None:
    """EV-Monitor wants latitude, longitude and accuracy together, or none."""
    hass.states.async_set(SOURCE["location"], "home", attributes)
    _set(hass, "soc", "50", "%")
    values = fingerprint(_read(hass))
    assert values == {"data[0][general][batt][0][soc]": "50"}


async def test_unavailable_tracker_gives_no_position(hass: HomeAssistant) -> None:
    """The last coordinates of a tracker that is unavailable are not sent."""
    hass.states.async_set(
        SOURCE["location"],
        STATE_UNAVAILABLE,
        {ATTR_LATITUDE: 52.5, ATTR_LONGITUDE: 13.4, ATTR_GPS_ACCURACY: 10},
    )
    dataset = _read(hass)
    assert (dataset.latitude, dataset.longitude, dataset.accuracy_m) == (
        None,
        None,
        None,
    )


# --- fingerprint ---------------------------------------------------------------------


async def test_fingerprint_without_values_is_none(hass: HomeAssistant) -> None:
    """A dataset of only the vehicle and the time is nothing worth sending."""
    assert fingerprint(_read(hass)) is None
    _set(hass, "soc", STATE_UNAVAILABLE)
    assert fingerprint(_read(hass)) is None


async def test_fingerprint_ignores_the_time_and_follows_the_values(
    hass: HomeAssistant,
) -> None:
    """Equal values at different times are equal; a changed value is not."""
    _set(hass, "soc", "80", "%")
    _set(hass, "speed", "0", "km/h")
    _set(hass, "charging", "on")
    _set(hass, "power", "7.2", "kW")
    first = _read(hass)
    later = read_dataset(hass, SOURCE, VEHICLE, START + timedelta(minutes=5))
    assert fingerprint(first) == fingerprint(later)
    assert fingerprint(first) == {
        "data[0][general][speed]": "0",
        "data[0][general][state]": "10",
        "data[0][general][batt][0][soc]": "80",
        "data[0][general][batt][0][w_charge]": "7200",
    }
    _set(hass, "soc", "81", "%")
    assert fingerprint(_read(hass)) != fingerprint(first)


# --- the entities of a vehicle of EV Cloud -------------------------------------------


async def test_device_mapping_names_the_vehicles_entities(
    hass: HomeAssistant, ovms_entry: MockConfigEntry
) -> None:
    """OVMS's charging car: every field from its entities; its state as read."""
    await setup_entry(hass, ovms_entry)
    demo = _device_id(hass, ovms_entry, "OVMS DEMO")
    mapping = device_mapping(hass, demo)
    assert mapping == DEMO_MAPPING
    assert resolve_mapping(hass, {"source_device": demo}) == DEMO_MAPPING
    dataset = read_dataset(hass, mapping, VEHICLE, START)
    assert dataset.soc == pytest.approx(80.3)
    assert dataset.range_km == pytest.approx(217.0)  # estimated before ideal
    assert dataset.speed_kmh == 0.0
    assert dataset.odometer_km == pytest.approx(12345.6)
    assert dataset.power_kw == pytest.approx(-7.2)
    assert dataset.battery_temp_c == pytest.approx(22.0)
    assert dataset.state == 10
    assert dataset.latitude == pytest.approx(51.477928)
    assert dataset.longitude == pytest.approx(-0.001545)
    assert dataset.accuracy_m == 0.0


async def test_device_mapping_in_us_units(
    hass: HomeAssistant, ovms_entry: MockConfigEntry
) -> None:
    """Home Assistant in US units shows miles, mph and °F: back to km and °C."""
    hass.config.units = US_CUSTOMARY_SYSTEM
    await setup_entry(hass, ovms_entry)
    demo = _device_id(hass, ovms_entry, "OVMS DEMO")
    mapping = device_mapping(hass, demo)
    assert mapping == DEMO_MAPPING
    units = {
        field: hass.states.get(mapping[field]).attributes[ATTR_UNIT_OF_MEASUREMENT]
        for field in ("range", "odometer", "speed", "battery_temperature")
    }
    assert units == {
        "range": "mi",
        "odometer": "mi",
        "speed": "mph",
        "battery_temperature": "°F",
    }
    dataset = read_dataset(hass, mapping, VEHICLE, START)
    assert dataset.range_km == pytest.approx(217.0, abs=0.5)
    assert dataset.odometer_km == pytest.approx(12345.6, abs=0.5)
    assert dataset.speed_kmh == 0.0
    assert dataset.battery_temp_c == pytest.approx(22.0, abs=0.5)


async def test_picked_entity_wins_over_the_devices(
    hass: HomeAssistant, ovms_entry: MockConfigEntry
) -> None:
    """An entity chosen for a field replaces the device's; empty choices do not."""
    await setup_entry(hass, ovms_entry)
    demo = _device_id(hass, ovms_entry, "OVMS DEMO")
    options = {
        "source_device": demo,
        "soc": SOURCE["soc"],
        "location": "person.driver",
        "range": "",
        "speed": None,
    }
    assert resolve_mapping(hass, options) == DEMO_MAPPING | {
        "soc": SOURCE["soc"],
        "location": "person.driver",
    }
    assert resolve_mapping(hass, {"soc": SOURCE["soc"]}) == {"soc": SOURCE["soc"]}
    assert resolve_mapping(hass, {}) == {}


async def test_disabled_entities_are_not_used(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """A disabled range falls back on the next one; a disabled battery on none."""
    await setup_entry(hass, ovms_entry)
    demo = _device_id(hass, ovms_entry, "OVMS DEMO")
    for entity_id in ("sensor.ovms_demo_estimated_range", "sensor.ovms_demo_battery"):
        entity_registry.async_update_entity(
            entity_id, disabled_by=er.RegistryEntryDisabler.USER
        )
    mapping = device_mapping(hass, demo)
    assert mapping["range"] == "sensor.ovms_demo_ideal_range"
    assert "soc" not in mapping
    assert {k: v for k, v in mapping.items() if k not in ("range", "soc")} == {
        k: v for k, v in DEMO_MAPPING.items() if k not in ("range", "soc")
    }


async def test_only_this_integrations_entities_of_the_device_count(
    hass: HomeAssistant,
    ovms_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """An entity of another integration on the vehicle's device is not mapped.

    Its unique id even looks like one of ours ("range" is the best range key).
    """
    await setup_entry(hass, ovms_entry)
    demo = _device_id(hass, ovms_entry, "OVMS DEMO")
    other = MockConfigEntry(domain="template")
    other.add_to_hass(hass)
    entity_registry.async_get_or_create(
        "sensor",
        "template",
        "ovms_DEMO_range",
        config_entry=other,
        device_id=demo,
    )
    assert device_mapping(hass, demo) == DEMO_MAPPING


async def test_devices_without_mappable_entities(
    hass: HomeAssistant,
    evmonitor_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A logbook device (diagnostics only), an unknown id, a bare device: nothing."""
    await setup_entry(hass, evmonitor_entry)
    logbook = _device_id(hass, evmonitor_entry, "EV-Monitor The Rocket")
    assert device_mapping(hass, logbook) == {}
    assert device_mapping(hass, "no-such-device") == {}
    bare = device_registry.async_get_or_create(
        config_entry_id=evmonitor_entry.entry_id, identifiers={(DOMAIN, "bare")}
    )
    assert device_mapping(hass, bare.id) == {}
    assert resolve_mapping(hass, {"source_device": bare.id}) == {}
