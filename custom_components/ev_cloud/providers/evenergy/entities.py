"""ev.energy: the entities of a vehicle and of a charger, typed on their state."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.components.number import NumberMode
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfEnergy,
    UnitOfLength,
)

from ...api.evenergy import (
    COMMANDS,
    CURRENT_TYPES,
    EVSE_MODES,
    INTEGRATION_STATES,
    VEHICLE_STATES,
    EvseStatus,
    VehicleStatus,
)
from ...descriptions import (
    DeviceEntities,
    EvCloudBinarySensorEntityDescription,
    EvCloudNumberEntityDescription,
    EvCloudSensorEntityDescription,
    EvCloudSwitchEntityDescription,
    battery_level,
    charge_complete,
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
    total_energy,
)
from ...device import DeviceData
from .state import ChargerState, VehicleState

if TYPE_CHECKING:
    from .account import EvEnergyCharger, EvEnergyVehicle

type VehicleSensor = EvCloudSensorEntityDescription[VehicleState]


def _status[T](
    fn: Callable[[VehicleStatus], T | None],
) -> Callable[[DeviceData[VehicleState]], T | None]:
    """Read a value from the vehicle's newest status log."""
    return lambda data: fn(status) if (status := data.state.vehicle.status) else None


def _flag[T](
    fn: Callable[[VehicleStatus], T | None],
) -> Callable[[VehicleState], T | None]:
    return lambda state: fn(status) if (status := state.vehicle.status) else None


def _choice(value: str | None, options: tuple[str, ...]) -> str | None:
    return value if value in options else None


def _command(state: VehicleState) -> str | None:
    command = state.last_command.command if state.last_command else None
    return _choice(command.lower() if command else None, COMMANDS)


VEHICLE_SENSORS: tuple[VehicleSensor, ...] = (
    last_update(),
    battery_level(
        lambda state: (
            state.vehicle.status.state_of_charge if state.vehicle.status else None
        )
    ),
    charge_power(_status(lambda status: status.charge_rate_watts)),
    session_energy(_status(lambda status: status.charge_energy_added_wh)),
    EvCloudSensorEntityDescription(
        key="charge_level",
        translation_key="charge_level",
        device_class=SensorDeviceClass.ENERGY_STORAGE,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_status(lambda status: status.charge_level_wh),
    ),
    EvCloudSensorEntityDescription(
        key="target_level",
        translation_key="target_level",
        native_unit_of_measurement=PERCENTAGE,
        value_fn=_status(lambda status: status.target_charge_level_percentage),
    ),
    time_to_full(_status(lambda status: status.minutes_to_full)),
    charge_finish_time(
        _flag(lambda status: status.minutes_to_full),
        _flag(lambda status: status.is_charging),
    ),
    iec_61851_status(
        _flag(
            lambda status: iec_61851_from_flags(
                status.is_plugged_in, status.is_charging
            )
        )
    ),
    EvCloudSensorEntityDescription(
        key="odometer",
        translation_key="odometer",
        device_class=SensorDeviceClass.DISTANCE,
        native_unit_of_measurement=UnitOfLength.METERS,
        suggested_unit_of_measurement=UnitOfLength.KILOMETERS,
        suggested_display_precision=0,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=_status(lambda status: status.odometer_meters),
    ),
    EvCloudSensorEntityDescription(
        key="vehicle_state",
        translation_key="vehicle_state",
        device_class=SensorDeviceClass.ENUM,
        options=list(VEHICLE_STATES),
        value_fn=_status(lambda status: _choice(status.state, VEHICLE_STATES)),
    ),
    EvCloudSensorEntityDescription(
        key="current_type",
        translation_key="current_type",
        device_class=SensorDeviceClass.ENUM,
        options=list(CURRENT_TYPES),
        value_fn=_status(lambda status: _choice(status.current_type, CURRENT_TYPES)),
    ),
    EvCloudSensorEntityDescription(
        key="integration_state",
        translation_key="integration_state",
        device_class=SensorDeviceClass.ENUM,
        options=list(INTEGRATION_STATES),
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: _choice(
            data.state.vehicle.integrated, INTEGRATION_STATES
        ),
    ),
    EvCloudSensorEntityDescription(
        key="last_command",
        translation_key="last_command",
        device_class=SensorDeviceClass.ENUM,
        options=list(COMMANDS),
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: _command(data.state),
    ),
    EvCloudSensorEntityDescription(
        key="requests_left",
        translation_key="requests_left",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: data.state.requests_left,
    ),
)

VEHICLE_BINARY_SENSORS: tuple[
    EvCloudBinarySensorEntityDescription[VehicleState], ...
] = (
    charging(_flag(lambda status: status.is_charging)),
    plugged_in(_flag(lambda status: status.is_plugged_in)),
    online(),
    charge_complete(_status(lambda status: status.is_complete)),
    EvCloudBinarySensorEntityDescription(
        key="at_home",
        translation_key="at_home",
        device_class=BinarySensorDeviceClass.PRESENCE,
        value_fn=lambda data: (
            data.state.location.at_home if data.state.location else None
        ),
    ),
)

VEHICLE_SWITCHES: tuple[
    EvCloudSwitchEntityDescription[EvEnergyVehicle, VehicleState], ...
] = (
    EvCloudSwitchEntityDescription(
        key="smart_charging",
        translation_key="smart_charging",
        value_fn=lambda state: state.vehicle.smart_charging_enabled,
        on_fn=lambda vehicle, _state: vehicle.async_set_smart_charging(True),
        off_fn=lambda vehicle, _state: vehicle.async_set_smart_charging(False),
    ),
)

VEHICLE_NUMBERS: tuple[
    EvCloudNumberEntityDescription[EvEnergyVehicle, VehicleState], ...
] = (
    EvCloudNumberEntityDescription(
        key="charge_limit",
        translation_key="charge_limit",
        native_unit_of_measurement=PERCENTAGE,
        native_min_value=50,
        native_max_value=100,
        native_step=1,
        mode=NumberMode.SLIDER,
        value_fn=lambda state: state.vehicle.maximum_charge_limit_percentage,
        set_fn=lambda vehicle, value: vehicle.async_set_charge_limit(value),
    ),
)

VEHICLE_ENTITIES: DeviceEntities[EvEnergyVehicle, VehicleState] = DeviceEntities(
    role="vehicle",
    sensor=VEHICLE_SENSORS,
    binary_sensor=VEHICLE_BINARY_SENSORS,
    switch=VEHICLE_SWITCHES,
    number=VEHICLE_NUMBERS,
)


def _evse[T](
    fn: Callable[[EvseStatus], T | None],
) -> Callable[[DeviceData[ChargerState]], T | None]:
    """Read a value from the charger's newest status log."""
    return lambda data: fn(status) if (status := data.state.evse.status) else None


def _evse_flag[T](
    fn: Callable[[EvseStatus], T | None],
) -> Callable[[ChargerState], T | None]:
    return lambda state: fn(status) if (status := state.evse.status) else None


CHARGER_SENSORS: tuple[EvCloudSensorEntityDescription[ChargerState], ...] = (
    last_update(),
    charge_power(_evse(lambda status: status.charge_rate_watts)),
    total_energy(_evse(lambda status: status.meter_reading_wh)),
    EvCloudSensorEntityDescription(
        key="charger_mode",
        translation_key="charger_mode",
        device_class=SensorDeviceClass.ENUM,
        options=list(EVSE_MODES),
        value_fn=_evse(lambda status: _choice(status.mode, EVSE_MODES)),
    ),
    iec_61851_status(
        _evse_flag(
            lambda status: iec_61851_from_flags(
                status.is_plugged_in, status.is_charging
            )
        )
    ),
)

CHARGER_BINARY_SENSORS: tuple[
    EvCloudBinarySensorEntityDescription[ChargerState], ...
] = (
    charging(_evse_flag(lambda status: status.is_charging)),
    plugged_in(_evse_flag(lambda status: status.is_plugged_in)),
    online(),
)

CHARGER_ENTITIES: DeviceEntities[EvEnergyCharger, ChargerState] = DeviceEntities(
    role="charger", sensor=CHARGER_SENSORS, binary_sensor=CHARGER_BINARY_SENSORS
)
