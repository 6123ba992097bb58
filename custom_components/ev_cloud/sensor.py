"""Sensors: measurements and states of vehicles and chargers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
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
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .api.goe import ERROR_NAMES, CableUnlockStatus, CarState, GoeStatus
from .api.ovms import CHARGE_MODES, CHARGE_STATES, WHEELS, RecordTime
from .const import PROVIDER_GOE, PROVIDER_OVMS
from .coordinator import EvCloudConfigEntry
from .device import DeviceData
from .entity import (
    EvCloudEntity,
    EvCloudEntityDescription,
    async_add_device_entities,
)
from .providers.ovms import OvmsCarState

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class EvCloudSensorEntityDescription(EvCloudEntityDescription, SensorEntityDescription):
    """A sensor whose value is read from a device reading."""

    value_fn: Callable[[DeviceData[Any]], StateType | datetime]
    # The unit when it depends on the device (km or miles), else None.
    unit_fn: Callable[[Any], str] | None = None


def _goe(fn: Callable[[GoeStatus], StateType]) -> Callable[[DeviceData[Any]], Any]:
    """Read a value from a go-e status."""
    return lambda data: fn(data.state)


def _enum_name(value: CarState | CableUnlockStatus | None) -> str | None:
    return value.name.lower() if value is not None else None


def _phase_value(
    values: Callable[[GoeStatus], tuple[float | None, ...]], index: int
) -> Callable[[DeviceData[Any]], Any]:
    return _goe(lambda state: values(state)[index])


def _phase_sensors(
    key: str,
    values: Callable[[GoeStatus], tuple[float | None, ...]],
    **kwargs: Any,
) -> tuple[EvCloudSensorEntityDescription, ...]:
    """One sensor per phase L1..L3 of a go-e `nrg` triple."""
    return tuple(
        EvCloudSensorEntityDescription(
            key=f"{key}_l{phase + 1}",
            translation_key=f"{key}_phase",
            translation_placeholders={"phase": f"L{phase + 1}"},
            provider=PROVIDER_GOE,
            state_class=SensorStateClass.MEASUREMENT,
            value_fn=_phase_value(values, phase),
            **kwargs,
        )
        for phase in range(3)
    )


SENSORS: tuple[EvCloudSensorEntityDescription, ...] = (
    EvCloudSensorEntityDescription(
        key="last_update",
        translation_key="last_update",
        provider=None,
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.data_time,
    ),
    EvCloudSensorEntityDescription(
        key="car_state",
        translation_key="car_state",
        provider=PROVIDER_GOE,
        device_class=SensorDeviceClass.ENUM,
        options=[state.name.lower() for state in CarState],
        value_fn=_goe(lambda state: _enum_name(state.car_state)),
    ),
    EvCloudSensorEntityDescription(
        key="charge_power",
        translation_key="charge_power",
        provider=PROVIDER_GOE,
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_unit_of_measurement=UnitOfPower.KILO_WATT,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_goe(lambda state: state.power_total),
    ),
    *_phase_sensors(
        "power",
        lambda state: state.powers,
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        suggested_display_precision=0,
        entity_registry_enabled_default=False,
    ),
    *_phase_sensors(
        "current",
        lambda state: state.currents,
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        suggested_display_precision=1,
    ),
    *_phase_sensors(
        "voltage",
        lambda state: state.voltages,
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        suggested_display_precision=0,
        entity_registry_enabled_default=False,
    ),
    EvCloudSensorEntityDescription(
        key="session_energy",
        translation_key="session_energy",
        provider=PROVIDER_GOE,
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
        # Resets when a car is plugged in; TOTAL_INCREASING treats that as a new cycle.
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=_goe(lambda state: state.session_energy),
    ),
    EvCloudSensorEntityDescription(
        key="total_energy",
        translation_key="total_energy",
        provider=PROVIDER_GOE,
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=1,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=_goe(lambda state: state.total_energy),
    ),
    EvCloudSensorEntityDescription(
        key="charger_error",
        translation_key="charger_error",
        provider=PROVIDER_GOE,
        device_class=SensorDeviceClass.ENUM,
        options=sorted(ERROR_NAMES),
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_goe(lambda state: state.error),
    ),
    EvCloudSensorEntityDescription(
        key="cable_unlock_status",
        translation_key="cable_unlock_status",
        provider=PROVIDER_GOE,
        device_class=SensorDeviceClass.ENUM,
        options=[status.name.lower() for status in CableUnlockStatus],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_goe(lambda state: _enum_name(state.cable_unlock_status)),
    ),
    EvCloudSensorEntityDescription(
        key="temperature",
        translation_key="temperature",
        provider=PROVIDER_GOE,
        supported_fn=lambda state: len(state.temperatures) >= 1,
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_goe(lambda state: _at(state.temperatures, 0)),
    ),
    EvCloudSensorEntityDescription(
        key="board_temperature",
        translation_key="board_temperature",
        provider=PROVIDER_GOE,
        supported_fn=lambda state: len(state.temperatures) >= 2,
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_goe(lambda state: _at(state.temperatures, 1)),
    ),
    EvCloudSensorEntityDescription(
        key="signal_strength",
        translation_key="signal_strength",
        provider=PROVIDER_GOE,
        supported_fn=lambda state: state.signal_strength is not None,
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_goe(lambda state: state.signal_strength),
    ),
    EvCloudSensorEntityDescription(
        key="firmware",
        translation_key="firmware",
        provider=PROVIDER_GOE,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_goe(lambda state: state.firmware),
    ),
)


def _ovms(fn: Callable[[OvmsCarState], StateType]) -> Callable[[DeviceData[Any]], Any]:
    """Read a value from an OVMS vehicle state."""
    return lambda data: fn(data.state)


def _distance_unit(state: OvmsCarState) -> str:
    return UnitOfLength.MILES if state.units == "M" else UnitOfLength.KILOMETERS


def _speed_unit(state: OvmsCarState) -> str:
    if state.units == "M":
        return UnitOfSpeed.MILES_PER_HOUR
    return UnitOfSpeed.KILOMETERS_PER_HOUR


def _record_time(
    key: str, record: Callable[[OvmsCarState], RecordTime]
) -> EvCloudSensorEntityDescription:
    """When the server received a record type (its data age)."""
    return EvCloudSensorEntityDescription(
        key=key,
        translation_key=key,
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_ovms(lambda state: record(state).msg_time),  # type: ignore[arg-type,return-value]
    )


def _temperature(
    key: str, attribute: str, **kwargs: Any
) -> EvCloudSensorEntityDescription:
    return EvCloudSensorEntityDescription(
        key=key,
        translation_key=key,
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        value_fn=_ovms(lambda state: getattr(state.status, attribute)),
        **kwargs,
    )


def _has_wheel(name: str) -> Callable[[OvmsCarState], bool]:
    return lambda state: name in state.tpms.wheels


def _tyres() -> tuple[EvCloudSensorEntityDescription, ...]:
    """Pressure and temperature of each tyre the TPMS reports."""
    descriptions = []
    for wheel in WHEELS:

        def wheel_value(name: str, attribute: str) -> Callable[[DeviceData[Any]], Any]:
            return _ovms(
                lambda state: (
                    getattr(state.tpms.wheels[name], attribute)
                    if name in state.tpms.wheels
                    else None
                )
            )

        descriptions += [
            EvCloudSensorEntityDescription(
                key=f"tire_pressure_{wheel}",
                translation_key=f"tire_pressure_{wheel}",
                provider=PROVIDER_OVMS,
                supported_fn=_has_wheel(wheel),
                device_class=SensorDeviceClass.PRESSURE,
                native_unit_of_measurement=UnitOfPressure.KPA,
                state_class=SensorStateClass.MEASUREMENT,
                suggested_display_precision=0,
                value_fn=wheel_value(wheel, "pressure"),
            ),
            EvCloudSensorEntityDescription(
                key=f"tire_temperature_{wheel}",
                translation_key=f"tire_temperature_{wheel}",
                provider=PROVIDER_OVMS,
                supported_fn=_has_wheel(wheel),
                device_class=SensorDeviceClass.TEMPERATURE,
                native_unit_of_measurement=UnitOfTemperature.CELSIUS,
                state_class=SensorStateClass.MEASUREMENT,
                entity_registry_enabled_default=False,
                value_fn=wheel_value(wheel, "temperature"),
            ),
        ]
    return tuple(descriptions)


SENSORS += (
    EvCloudSensorEntityDescription(
        key="battery_level",
        translation_key="battery_level",
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.BATTERY,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=_ovms(lambda state: state.soc),
    ),
    EvCloudSensorEntityDescription(
        key="ideal_range",
        translation_key="ideal_range",
        provider=PROVIDER_OVMS,
        suggested_display_precision=0,
        device_class=SensorDeviceClass.DISTANCE,
        state_class=SensorStateClass.MEASUREMENT,
        unit_fn=_distance_unit,
        value_fn=_ovms(lambda state: state.status.ideal_range),
    ),
    EvCloudSensorEntityDescription(
        key="estimated_range",
        translation_key="estimated_range",
        provider=PROVIDER_OVMS,
        suggested_display_precision=0,
        device_class=SensorDeviceClass.DISTANCE,
        state_class=SensorStateClass.MEASUREMENT,
        unit_fn=_distance_unit,
        value_fn=_ovms(lambda state: state.status.estimated_range),
    ),
    EvCloudSensorEntityDescription(
        key="charge_state",
        translation_key="charge_state",
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.ENUM,
        options=list(CHARGE_STATES),
        value_fn=_ovms(
            lambda state: state.charge.charge_state or state.status.charge_state
        ),
    ),
    EvCloudSensorEntityDescription(
        key="charge_mode",
        translation_key="charge_mode",
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.ENUM,
        options=list(CHARGE_MODES),
        value_fn=_ovms(
            lambda state: state.charge.charge_mode or state.status.charge_mode
        ),
    ),
    EvCloudSensorEntityDescription(
        key="charge_power",
        translation_key="charge_power",
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.KILO_WATT,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_ovms(lambda state: state.charge.charge_power),
    ),
    EvCloudSensorEntityDescription(
        key="charge_current",
        translation_key="charge_current",
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_ovms(lambda state: state.charge.charge_current),
    ),
    EvCloudSensorEntityDescription(
        key="line_voltage",
        translation_key="line_voltage",
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_ovms(lambda state: state.charge.line_voltage),
    ),
    EvCloudSensorEntityDescription(
        key="battery_voltage",
        translation_key="battery_voltage",
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_ovms(lambda state: state.charge.battery_voltage),
    ),
    EvCloudSensorEntityDescription(
        key="session_energy",
        translation_key="session_energy",
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=1,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=_ovms(lambda state: state.charge.charge_energy),
    ),
    EvCloudSensorEntityDescription(
        key="time_to_full",
        translation_key="time_to_full",
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        value_fn=_ovms(lambda state: state.charge.time_to_full),
    ),
    EvCloudSensorEntityDescription(
        key="time_to_limit",
        translation_key="time_to_limit",
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        value_fn=_ovms(lambda state: state.charge.time_to_limit),
    ),
    EvCloudSensorEntityDescription(
        key="charge_limit_soc",
        translation_key="charge_limit_soc",
        provider=PROVIDER_OVMS,
        native_unit_of_measurement=PERCENTAGE,
        value_fn=_ovms(lambda state: state.charge.charge_limit_soc),
    ),
    EvCloudSensorEntityDescription(
        key="state_of_health",
        translation_key="state_of_health",
        provider=PROVIDER_OVMS,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_ovms(lambda state: state.charge.soh or state.status.soh),
    ),
    _temperature("battery_temperature", "temperature_battery"),
    _temperature("motor_temperature", "temperature_motor"),
    _temperature("cabin_temperature", "temperature_cabin"),
    _temperature("ambient_temperature", "temperature_ambient"),
    _temperature(
        "charger_temperature",
        "temperature_charger",
        entity_registry_enabled_default=False,
    ),
    _temperature(
        "power_electronics_temperature",
        "temperature_pem",
        entity_registry_enabled_default=False,
    ),
    EvCloudSensorEntityDescription(
        key="battery_12v_voltage",
        translation_key="battery_12v_voltage",
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_ovms(lambda state: state.status.vehicle_12v),
    ),
    EvCloudSensorEntityDescription(
        key="odometer",
        translation_key="odometer",
        provider=PROVIDER_OVMS,
        device_class=SensorDeviceClass.DISTANCE,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=0,
        unit_fn=_distance_unit,
        value_fn=_ovms(lambda state: state.status.odometer),
    ),
    EvCloudSensorEntityDescription(
        key="speed",
        translation_key="speed",
        provider=PROVIDER_OVMS,
        suggested_display_precision=0,
        device_class=SensorDeviceClass.SPEED,
        state_class=SensorStateClass.MEASUREMENT,
        unit_fn=_speed_unit,
        value_fn=_ovms(lambda state: state.status.speed),
    ),
    *_tyres(),
    _record_time("environment_update", lambda state: state.status.d_time),
    _record_time("location_update", lambda state: state.location.l_time),
    _record_time("tpms_update", lambda state: state.tpms.time),
)


def _at(values: tuple[float, ...], index: int) -> float | None:
    return values[index] if index < len(values) else None


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of every device of the entry."""
    async_add_device_entities(hass, entry, SENSORS, EvCloudSensor, async_add_entities)


class EvCloudSensor(EvCloudEntity, SensorEntity):
    """A sensor of a vehicle or charger."""

    entity_description: EvCloudSensorEntityDescription

    @property
    def native_value(self) -> StateType | datetime:
        """The value from the latest reading."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def native_unit_of_measurement(self) -> str | None:
        """The device's own unit where it has one."""
        if self.entity_description.unit_fn is not None:
            return self.entity_description.unit_fn(self.state_data)
        return super().native_unit_of_measurement
