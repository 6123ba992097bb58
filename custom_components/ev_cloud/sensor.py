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
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfPower,
    UnitOfTemperature,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .api.goe import ERROR_NAMES, CableUnlockStatus, CarState, GoeStatus
from .const import PROVIDER_GOE
from .coordinator import EvCloudConfigEntry
from .device import DeviceData
from .entity import (
    EvCloudEntity,
    EvCloudEntityDescription,
    async_add_device_entities,
)

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class EvCloudSensorEntityDescription(EvCloudEntityDescription, SensorEntityDescription):
    """A sensor whose value is read from a device reading."""

    value_fn: Callable[[DeviceData[Any]], StateType | datetime]


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
        provider=PROVIDER_GOE,
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
        key="charger_temperature",
        translation_key="charger_temperature",
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
