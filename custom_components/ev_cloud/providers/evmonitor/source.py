"""Where a logbook's data comes from: Home Assistant entities, read into datasets.

The source is a device of this integration, whose entities are found by their
description keys (shared concepts share keys across providers), and/or entities
the user picked per field; a picked entity wins over the device's. Values are
read from the entities' states and converted from their units to EV-Monitor's
(km, km/h, kW, °C).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
import math
from typing import Any, Final

from homeassistant.const import (
    ATTR_GPS_ACCURACY,
    ATTR_LATITUDE,
    ATTR_LONGITUDE,
    ATTR_UNIT_OF_MEASUREMENT,
    PERCENTAGE,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    UnitOfLength,
    UnitOfPower,
    UnitOfSpeed,
    UnitOfTemperature,
)
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util.unit_conversion import (
    BaseUnitConverter,
    DistanceConverter,
    PowerConverter,
    SpeedConverter,
    TemperatureConverter,
)

from ...api.evmonitor import GENERAL_KEYS, Dataset, encode_datasets
from ...const import DOMAIN
from .const import (
    CONF_SOURCE_DEVICE,
    FIELD_BATTERY_TEMPERATURE,
    FIELD_CHARGING,
    FIELD_LOCATION,
    FIELD_ODOMETER,
    FIELD_POWER,
    FIELD_RANGE,
    FIELD_SOC,
    FIELD_SPEED,
    FIELDS,
)

# The entity of a device of this integration that fills each field: description
# keys, best first.
DEVICE_KEYS: Final[Mapping[str, tuple[str, ...]]] = {
    FIELD_SOC: ("battery_level",),
    FIELD_RANGE: ("range", "estimated_range", "ideal_range"),
    FIELD_SPEED: ("speed",),
    FIELD_ODOMETER: ("odometer",),
    FIELD_POWER: ("charge_power",),
    FIELD_BATTERY_TEMPERATURE: ("battery_temperature",),
    FIELD_CHARGING: ("charging",),
    FIELD_LOCATION: ("location",),
}
# Entity domains a user may pick per field.
FIELD_DOMAINS: Final[Mapping[str, tuple[str, ...]]] = {
    FIELD_SOC: ("sensor", "number", "input_number"),
    FIELD_RANGE: ("sensor", "number", "input_number"),
    FIELD_SPEED: ("sensor", "number", "input_number"),
    FIELD_ODOMETER: ("sensor", "number", "input_number"),
    FIELD_POWER: ("sensor", "number", "input_number"),
    FIELD_BATTERY_TEMPERATURE: ("sensor", "number", "input_number"),
    FIELD_CHARGING: ("binary_sensor", "sensor", "switch", "input_boolean"),
    FIELD_LOCATION: ("device_tracker", "person"),
}
# States of a charging entity (binary sensor, switch, enum sensor) that mean
# "charging"; any other known state means "not charging".
CHARGING_STATES: Final = frozenset({"on", "charging", "true", "1", "yes"})
# Above this charge power the charging is taken as DC (EV-Monitor state 11):
# AC charging tops out at 22 kW on all but a few cars.
DC_ABOVE_KW: Final = 22.0
# Units of a value whose entity states none.
_DEFAULT_UNITS: Final[Mapping[str, str]] = {
    FIELD_SOC: PERCENTAGE,
    FIELD_RANGE: UnitOfLength.KILOMETERS,
    FIELD_ODOMETER: UnitOfLength.KILOMETERS,
    FIELD_SPEED: UnitOfSpeed.KILOMETERS_PER_HOUR,
    FIELD_POWER: UnitOfPower.KILO_WATT,
    FIELD_BATTERY_TEMPERATURE: UnitOfTemperature.CELSIUS,
}
_CONVERTERS: Final[Mapping[str, type[BaseUnitConverter]]] = {
    FIELD_RANGE: DistanceConverter,
    FIELD_ODOMETER: DistanceConverter,
    FIELD_SPEED: SpeedConverter,
    FIELD_POWER: PowerConverter,
    FIELD_BATTERY_TEMPERATURE: TemperatureConverter,
}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def device_mapping(hass: HomeAssistant, device_id: str) -> dict[str, str]:
    """Field -> entity id, from the enabled entities of a device of this integration."""
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        return {}
    prefixes = [f"{key}_" for domain, key in device.identifiers if domain == DOMAIN]
    by_key: dict[str, str] = {}
    for entry in er.async_entries_for_device(er.async_get(hass), device_id):
        if entry.platform != DOMAIN:
            continue
        for prefix in prefixes:
            if entry.unique_id.startswith(prefix):
                by_key[entry.unique_id.removeprefix(prefix)] = entry.entity_id
    mapping: dict[str, str] = {}
    for field, keys in DEVICE_KEYS.items():
        if found := next((by_key[key] for key in keys if key in by_key), None):
            mapping[field] = found
    return mapping


def resolve_mapping(hass: HomeAssistant, options: Mapping[str, Any]) -> dict[str, str]:
    """Field -> entity id: the source device's entities, then the picked ones."""
    mapping: dict[str, str] = {}
    if device_id := options.get(CONF_SOURCE_DEVICE):
        mapping |= device_mapping(hass, device_id)
    for field in FIELDS:
        if entity_id := options.get(field):
            mapping[field] = entity_id
    return mapping


def _known(state: State | None) -> State | None:
    if state is None or state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
        return None
    return state


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except TypeError, ValueError:
        return None
    return number if math.isfinite(number) else None


def _measurement(field: str, state: State | None) -> float | None:
    """The state as a number in EV-Monitor's unit; None without one."""
    if (state := _known(state)) is None or (value := _float(state.state)) is None:
        return None
    unit = state.attributes.get(ATTR_UNIT_OF_MEASUREMENT) or _DEFAULT_UNITS[field]
    converter = _CONVERTERS.get(field)
    if converter is None:  # state of charge: a percentage, nothing else
        return value if unit == PERCENTAGE else None
    if unit not in converter.VALID_UNITS:
        return None  # a unit that cannot mean this field
    return converter.convert(value, unit, _DEFAULT_UNITS[field])


def _charging(state: State | None) -> bool | None:
    if (state := _known(state)) is None:
        return None
    return state.state.strip().lower() in CHARGING_STATES


def _position(
    state: State | None,
) -> tuple[float | None, float | None, float | None]:
    if (state := _known(state)) is None:
        return None, None, None
    attributes = state.attributes
    return (
        _float(attributes.get(ATTR_LATITUDE)),
        _float(attributes.get(ATTR_LONGITUDE)),
        _float(attributes.get(ATTR_GPS_ACCURACY)),
    )


def read_dataset(
    hass: HomeAssistant,
    mapping: Mapping[str, str],
    vehicle_id: str,
    now: datetime,
) -> Dataset:
    """A snapshot of the mapped entities now, as EV-Monitor wants it.

    The state: charging (AC, or DC above `DC_ABOVE_KW`), else on while the speed
    is above zero, else off when the speed is known. The power is negative while
    charging (it flows into the battery).
    """

    def state(field: str) -> State | None:
        entity_id = mapping.get(field)
        return hass.states.get(entity_id) if entity_id else None

    speed = _measurement(FIELD_SPEED, state(FIELD_SPEED))
    power = _measurement(FIELD_POWER, state(FIELD_POWER))
    charging = _charging(state(FIELD_CHARGING))
    ev_state: int | None = None
    if charging:
        ev_state = 11 if power is not None and abs(power) > DC_ABOVE_KW else 10
        power = None if power is None else -abs(power)
    elif speed is not None:
        ev_state = 1 if speed > 0 else 0
    latitude, longitude, accuracy = _position(state(FIELD_LOCATION))
    return Dataset(
        vehicle_id=vehicle_id,
        timestamp=now,
        soc=_measurement(FIELD_SOC, state(FIELD_SOC)),
        range_km=_measurement(FIELD_RANGE, state(FIELD_RANGE)),
        speed_kmh=speed,
        odometer_km=_measurement(FIELD_ODOMETER, state(FIELD_ODOMETER)),
        power_kw=power,
        battery_temp_c=_measurement(
            FIELD_BATTERY_TEMPERATURE, state(FIELD_BATTERY_TEMPERATURE)
        ),
        state=ev_state,
        latitude=latitude,
        longitude=longitude,
        accuracy_m=accuracy,
    )


def is_active(dataset: Dataset) -> bool:
    """Driving or charging: snapshots come at the active interval."""
    return dataset.state in (1, 10, 11)


def fingerprint(dataset: Dataset) -> dict[str, str] | None:
    """What would be sent, without the time: equal means nothing changed.

    None when the dataset has no value at all (nothing worth sending).
    """
    fields = encode_datasets([replace(dataset, timestamp=_EPOCH)])
    names = {f"data[0][general][{key}]" for key in GENERAL_KEYS.values()}
    values = {key: value for key, value in fields.items() if key not in names}
    return values or None
