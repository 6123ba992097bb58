"""OVMS: the entities of a vehicle, typed on its state."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.components.number import NumberDeviceClass, NumberMode
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfLength,
    UnitOfPower,
    UnitOfPressure,
    UnitOfSpeed,
    UnitOfTemperature,
    UnitOfTime,
)

from ...api.ovms import CHARGE_MODES, CHARGE_STATES, WHEELS, OvmsStatus, RecordTime
from ...api.ovms_v2 import CHARGE_MODE_CODES
from ...descriptions import (
    DeviceEntities,
    EvCloudBinarySensorEntityDescription,
    EvCloudButtonEntityDescription,
    EvCloudLockEntityDescription,
    EvCloudNumberEntityDescription,
    EvCloudSelectEntityDescription,
    EvCloudSensorEntityDescription,
    EvCloudSwitchEntityDescription,
    EvCloudTrackerEntityDescription,
    battery_level,
    charge_finish_time,
    charge_power,
    charging,
    iec_61851_from_flags,
    iec_61851_status,
    last_update,
    online,
    plugged_in,
    session_energy,
    time_to_full,
)
from ...device import DeviceData
from .state import OvmsCarState

if TYPE_CHECKING:
    from .account import OvmsCar

type Sensor = EvCloudSensorEntityDescription[OvmsCarState]
type BinarySensor = EvCloudBinarySensorEntityDescription[OvmsCarState]


def _car[T](fn: Callable[[OvmsCarState], T]) -> Callable[[DeviceData[OvmsCarState]], T]:
    """Read a value from the vehicle's state."""
    return lambda data: fn(data.state)


def _distance_unit(state: OvmsCarState) -> str:
    return UnitOfLength.MILES if state.units == "M" else UnitOfLength.KILOMETERS


def _speed_unit(state: OvmsCarState) -> str:
    if state.units == "M":
        return UnitOfSpeed.MILES_PER_HOUR
    return UnitOfSpeed.KILOMETERS_PER_HOUR


def _record_time(key: str, record: Callable[[OvmsCarState], RecordTime]) -> Sensor:
    """When the server received a record type (its data age).

    Disabled by default: the car sends its records together, so "Last update"
    (the status record's, a shared entity) says it for most users.
    """
    return EvCloudSensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_car(lambda state: record(state).msg_time),
    )


def _temperature(
    key: str, value: Callable[[OvmsStatus], float | None], **kwargs: Any
) -> Sensor:
    return EvCloudSensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=_car(lambda state: value(state.status)),
        **kwargs,
    )


def _tyres() -> tuple[Sensor, ...]:
    """Pressure and temperature of each tyre the TPMS reports."""

    def has_wheel(name: str) -> Callable[[OvmsCarState], bool]:
        return lambda state: name in state.tpms.wheels

    def pressure(name: str) -> Callable[[DeviceData[OvmsCarState]], float | None]:
        return _car(
            lambda state: (
                wheel.pressure if (wheel := state.tpms.wheels.get(name)) else None
            )
        )

    def temperature(name: str) -> Callable[[DeviceData[OvmsCarState]], float | None]:
        return _car(
            lambda state: (
                wheel.temperature if (wheel := state.tpms.wheels.get(name)) else None
            )
        )

    descriptions: list[Sensor] = []
    for wheel in WHEELS:
        descriptions += [
            EvCloudSensorEntityDescription(
                key=f"tire_pressure_{wheel}",
                translation_key=f"tire_pressure_{wheel}",
                supported_fn=has_wheel(wheel),
                device_class=SensorDeviceClass.PRESSURE,
                native_unit_of_measurement=UnitOfPressure.KPA,
                state_class=SensorStateClass.MEASUREMENT,
                suggested_display_precision=0,
                value_fn=pressure(wheel),
            ),
            EvCloudSensorEntityDescription(
                key=f"tire_temperature_{wheel}",
                translation_key=f"tire_temperature_{wheel}",
                supported_fn=has_wheel(wheel),
                device_class=SensorDeviceClass.TEMPERATURE,
                native_unit_of_measurement=UnitOfTemperature.CELSIUS,
                state_class=SensorStateClass.MEASUREMENT,
                entity_registry_enabled_default=False,
                value_fn=temperature(wheel),
            ),
        ]
    return tuple(descriptions)


SENSORS: tuple[Sensor, ...] = (
    last_update(),
    battery_level(lambda state: state.soc),
    EvCloudSensorEntityDescription(
        key="ideal_range",
        translation_key="ideal_range",
        suggested_display_precision=0,
        device_class=SensorDeviceClass.DISTANCE,
        state_class=SensorStateClass.MEASUREMENT,
        unit_fn=_distance_unit,
        value_fn=_car(lambda state: state.status.ideal_range),
    ),
    EvCloudSensorEntityDescription(
        key="estimated_range",
        translation_key="estimated_range",
        suggested_display_precision=0,
        device_class=SensorDeviceClass.DISTANCE,
        state_class=SensorStateClass.MEASUREMENT,
        unit_fn=_distance_unit,
        value_fn=_car(lambda state: state.status.estimated_range),
    ),
    EvCloudSensorEntityDescription(
        key="charge_state",
        translation_key="charge_state",
        device_class=SensorDeviceClass.ENUM,
        options=list(CHARGE_STATES),
        value_fn=_car(
            lambda state: state.charge.charge_state or state.status.charge_state
        ),
    ),
    EvCloudSensorEntityDescription(
        key="charge_mode",
        translation_key="charge_mode",
        device_class=SensorDeviceClass.ENUM,
        options=list(CHARGE_MODES),
        value_fn=_car(
            lambda state: state.charge.charge_mode or state.status.charge_mode
        ),
    ),
    iec_61851_status(
        lambda state: iec_61851_from_flags(state.plugged_in, state.charging)
    ),
    charge_power(_car(lambda state: state.charge.charge_power), UnitOfPower.KILO_WATT),
    EvCloudSensorEntityDescription(
        key="charge_current",
        translation_key="charge_current",
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_car(lambda state: state.charge.charge_current),
    ),
    EvCloudSensorEntityDescription(
        key="line_voltage",
        translation_key="line_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_car(lambda state: state.charge.line_voltage),
    ),
    EvCloudSensorEntityDescription(
        key="battery_voltage",
        translation_key="battery_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_car(lambda state: state.charge.battery_voltage),
    ),
    session_energy(
        _car(lambda state: state.charge.charge_energy), UnitOfEnergy.KILO_WATT_HOUR, 1
    ),
    time_to_full(_car(lambda state: state.charge.time_to_full)),
    charge_finish_time(
        lambda state: state.charge.time_to_full, lambda state: state.charging
    ),
    EvCloudSensorEntityDescription(
        key="time_to_limit",
        translation_key="time_to_limit",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        value_fn=_car(lambda state: state.charge.time_to_limit),
    ),
    EvCloudSensorEntityDescription(
        key="charge_limit_soc",
        translation_key="charge_limit_soc",
        native_unit_of_measurement=PERCENTAGE,
        value_fn=_car(lambda state: state.charge.charge_limit_soc),
    ),
    EvCloudSensorEntityDescription(
        key="state_of_health",
        translation_key="state_of_health",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_car(lambda state: state.charge.soh or state.status.soh),
    ),
    _temperature("battery_temperature", lambda status: status.temperature_battery),
    _temperature("motor_temperature", lambda status: status.temperature_motor),
    _temperature("cabin_temperature", lambda status: status.temperature_cabin),
    _temperature("ambient_temperature", lambda status: status.temperature_ambient),
    _temperature(
        "charger_temperature",
        lambda status: status.temperature_charger,
        entity_registry_enabled_default=False,
    ),
    _temperature(
        "power_electronics_temperature",
        lambda status: status.temperature_pem,
        entity_registry_enabled_default=False,
    ),
    EvCloudSensorEntityDescription(
        key="battery_12v_voltage",
        translation_key="battery_12v_voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_car(lambda state: state.status.vehicle_12v),
    ),
    EvCloudSensorEntityDescription(
        key="odometer",
        translation_key="odometer",
        device_class=SensorDeviceClass.DISTANCE,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=0,
        unit_fn=_distance_unit,
        value_fn=_car(lambda state: state.status.odometer),
    ),
    EvCloudSensorEntityDescription(
        key="speed",
        translation_key="speed",
        suggested_display_precision=0,
        device_class=SensorDeviceClass.SPEED,
        state_class=SensorStateClass.MEASUREMENT,
        unit_fn=_speed_unit,
        value_fn=_car(lambda state: state.status.speed),
    ),
    *_tyres(),
    _record_time("environment_update", lambda state: state.status.d_time),
    _record_time("location_update", lambda state: state.location.l_time),
    _record_time("tpms_update", lambda state: state.tpms.time),
)


def _status_flag(
    key: str,
    value: Callable[[OvmsStatus], bool | None],
    device_class: BinarySensorDeviceClass | None = None,
) -> BinarySensor:
    """A yes/no field of the status (doors/environment) record."""
    return EvCloudBinarySensorEntityDescription(
        key=key,
        translation_key=key,
        device_class=device_class,
        value_fn=_car(lambda state: value(state.status)),
    )


BINARY_SENSORS: tuple[BinarySensor, ...] = (
    charging(lambda state: state.charging),
    plugged_in(lambda state: state.plugged_in),
    online(),
    EvCloudBinarySensorEntityDescription(
        key="locked",
        translation_key="locked",
        device_class=BinarySensorDeviceClass.LOCK,
        # The lock device class is on when unlocked.
        value_fn=_car(
            lambda state: (
                None if state.status.locked is None else not state.status.locked
            )
        ),
    ),
    _status_flag(
        "front_left_door",
        lambda status: status.front_left_door_open,
        BinarySensorDeviceClass.DOOR,
    ),
    _status_flag(
        "front_right_door",
        lambda status: status.front_right_door_open,
        BinarySensorDeviceClass.DOOR,
    ),
    _status_flag(
        "trunk", lambda status: status.trunk_open, BinarySensorDeviceClass.OPENING
    ),
    _status_flag(
        "bonnet", lambda status: status.bonnet_open, BinarySensorDeviceClass.OPENING
    ),
    _status_flag(
        "charge_port",
        lambda status: status.charge_port_open,
        BinarySensorDeviceClass.OPENING,
    ),
    _status_flag(
        "car_on", lambda status: status.car_on, BinarySensorDeviceClass.RUNNING
    ),
    _status_flag("valet_mode", lambda status: status.valet_mode),
    EvCloudBinarySensorEntityDescription(
        key="server_connection",
        translation_key="server_connection",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_car(lambda state: state.car_online),
    ),
)

SWITCHES: tuple[EvCloudSwitchEntityDescription[OvmsCar, OvmsCarState], ...] = (
    EvCloudSwitchEntityDescription(
        key="live_updates",
        translation_key="live_updates",
        entity_category=EntityCategory.CONFIG,
        value_fn=lambda state: state.live_updates,
        on_fn=lambda car, state: car.async_set_live_updates(state, True),
        off_fn=lambda car, state: car.async_set_live_updates(state, False),
    ),
)

TRACKERS: tuple[EvCloudTrackerEntityDescription[OvmsCarState], ...] = (
    EvCloudTrackerEntityDescription(
        key="location",
        translation_key="location",
        position_fn=lambda state: (state.location.latitude, state.location.longitude),
    ),
)


# Commands (v2 protocol): only for a car whose server password the user gave.
def _has_commands(state: OvmsCarState) -> bool:
    return state.commands


# The car's own maximum is not in its records; 32 A covers a wallbox, and a car
# that reports a higher limit raises the bound to it.
MAX_CHARGE_CURRENT: Final = 32

NUMBERS: tuple[EvCloudNumberEntityDescription[OvmsCar, OvmsCarState], ...] = (
    EvCloudNumberEntityDescription(
        key="charge_current_limit",
        translation_key="charge_current_limit",
        supported_fn=_has_commands,
        device_class=NumberDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        native_min_value=1,
        native_max_value=MAX_CHARGE_CURRENT,
        native_step=1,
        mode=NumberMode.BOX,
        value_fn=lambda state: state.charge.charge_current_limit,
        max_fn=lambda state: max(
            MAX_CHARGE_CURRENT, state.charge.charge_current_limit or 0
        ),
        set_fn=lambda car, value: car.command().async_set_charge_current(value),
    ),
)

SELECTS: tuple[EvCloudSelectEntityDescription[OvmsCar, OvmsCarState], ...] = (
    EvCloudSelectEntityDescription(
        # The charge_mode sensor keeps its key; this one sets the mode.
        key="charge_mode_select",
        translation_key="charge_mode",
        supported_fn=_has_commands,
        options=list(CHARGE_MODE_CODES),
        value_fn=lambda state: state.charge.charge_mode or state.status.charge_mode,
        select_fn=lambda car, mode: car.command().async_set_charge_mode(mode),
    ),
)

BUTTONS: tuple[EvCloudButtonEntityDescription[OvmsCar, OvmsCarState], ...] = (
    EvCloudButtonEntityDescription(
        key="wake_up",
        translation_key="wake_up",
        supported_fn=_has_commands,
        press_fn=lambda car, _state: car.command().async_wake_up(),
    ),
)

LOCKS: tuple[EvCloudLockEntityDescription[OvmsCar, OvmsCarState], ...] = (
    EvCloudLockEntityDescription(
        key="lock",
        translation_key="lock",
        # Locking needs the car's PIN as well.
        supported_fn=lambda state: state.lock_control,
        value_fn=lambda state: state.status.locked,
        lock_fn=lambda car, _state: car.command().async_lock(True),
        unlock_fn=lambda car, _state: car.command().async_lock(False),
    ),
)

ENTITIES: DeviceEntities[OvmsCar, OvmsCarState] = DeviceEntities(
    role="vehicle",
    sensor=SENSORS,
    binary_sensor=BINARY_SENSORS,
    device_tracker=TRACKERS,
    switch=SWITCHES,
    number=NUMBERS,
    select=SELECTS,
    button=BUTTONS,
    lock=LOCKS,
)
