"""go-e: the entities of a charger, typed on its status."""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from homeassistant.components.number import NumberDeviceClass, NumberMode
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfPower,
    UnitOfTemperature,
)
from homeassistant.helpers.typing import StateType

from ...api.goe import (
    ERROR_NAMES,
    CableLockMode,
    CableUnlockStatus,
    CarState,
    ForceState,
    GoeStatus,
    PhaseMode,
)
from ...descriptions import (
    DeviceEntities,
    EvCloudBinarySensorEntityDescription,
    EvCloudNumberEntityDescription,
    EvCloudSelectEntityDescription,
    EvCloudSensorEntityDescription,
    EvCloudSwitchEntityDescription,
    charge_power,
    charging,
    iec_61851_status,
    last_update,
    online,
    plugged_in,
    session_energy,
    total_energy,
)
from ...device import DeviceData

if TYPE_CHECKING:
    from .account import GoeCharger

type Sensor = EvCloudSensorEntityDescription[GoeStatus]


def _status[T](fn: Callable[[GoeStatus], T]) -> Callable[[DeviceData[GoeStatus]], T]:
    """Read a value from the charger's status."""
    return lambda data: fn(data.state)


def _has(key: str) -> Callable[[GoeStatus], bool]:
    """Offer an entity only on chargers that have this API key.

    CORE and PRO lack the cable lock (`cus`, `ust`); not every charger has `psm`.
    """
    return lambda state: key not in state.missing_keys


def _enum_name(value: IntEnum | None) -> str | None:
    return value.name.lower() if value is not None else None


# go-e `car` as IEC 61851 (evcc reads it the same way): a finished charge keeps the
# car connected (B); `Error` is the charger's own fault (`err`), state F.
# Unknown and initializing say nothing about the car.
_IEC_61851_BY_CAR_STATE: dict[CarState, str] = {
    CarState.IDLE: "a",
    CarState.WAIT_CAR: "b",
    CarState.COMPLETE: "b",
    CarState.CHARGING: "c",
    CarState.ERROR: "f",
}


def _iec_61851(state: GoeStatus) -> str | None:
    if state.car_state is None:
        return None
    return _IEC_61851_BY_CAR_STATE.get(state.car_state)


def _at(values: tuple[float, ...], index: int) -> float | None:
    return values[index] if index < len(values) else None


def _phase_sensors(
    key: str,
    values: Callable[[GoeStatus], tuple[float | None, ...]],
    **kwargs: Any,
) -> tuple[Sensor, ...]:
    """One sensor per phase L1..L3 of an `nrg` triple."""

    def phase_value(index: int) -> Callable[[DeviceData[GoeStatus]], StateType]:
        return _status(lambda state: values(state)[index])

    return tuple(
        EvCloudSensorEntityDescription[GoeStatus](
            key=f"{key}_l{phase + 1}",
            translation_key=f"{key}_phase",
            translation_placeholders={"phase": f"L{phase + 1}"},
            state_class=SensorStateClass.MEASUREMENT,
            value_fn=phase_value(phase),
            **kwargs,
        )
        for phase in range(3)
    )


SENSORS: tuple[Sensor, ...] = (
    last_update(),
    EvCloudSensorEntityDescription(
        key="car_state",
        translation_key="car_state",
        device_class=SensorDeviceClass.ENUM,
        options=[state.name.lower() for state in CarState],
        value_fn=_status(lambda state: _enum_name(state.car_state)),
    ),
    iec_61851_status(_iec_61851),
    charge_power(_status(lambda state: state.power_total)),
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
    session_energy(_status(lambda state: state.session_energy)),
    total_energy(_status(lambda state: state.total_energy)),
    EvCloudSensorEntityDescription(
        key="charger_error",
        translation_key="charger_error",
        device_class=SensorDeviceClass.ENUM,
        options=sorted(ERROR_NAMES),
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_status(lambda state: state.error),
    ),
    EvCloudSensorEntityDescription(
        key="cable_unlock_status",
        translation_key="cable_unlock_status",
        supported_fn=_has("cus"),
        device_class=SensorDeviceClass.ENUM,
        options=[status.name.lower() for status in CableUnlockStatus],
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_status(lambda state: _enum_name(state.cable_unlock_status)),
    ),
    EvCloudSensorEntityDescription(
        key="temperature",
        translation_key="temperature",
        supported_fn=lambda state: len(state.temperatures) >= 1,
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_status(lambda state: _at(state.temperatures, 0)),
    ),
    EvCloudSensorEntityDescription(
        key="board_temperature",
        translation_key="board_temperature",
        supported_fn=lambda state: len(state.temperatures) >= 2,
        device_class=SensorDeviceClass.TEMPERATURE,
        native_unit_of_measurement=UnitOfTemperature.CELSIUS,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_status(lambda state: _at(state.temperatures, 1)),
    ),
    EvCloudSensorEntityDescription(
        key="signal_strength",
        translation_key="signal_strength",
        supported_fn=lambda state: state.signal_strength is not None,
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_status(lambda state: state.signal_strength),
    ),
    EvCloudSensorEntityDescription(
        key="firmware",
        translation_key="firmware",
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_status(lambda state: state.firmware),
    ),
)

BINARY_SENSORS: tuple[EvCloudBinarySensorEntityDescription[GoeStatus], ...] = (
    charging(lambda state: state.charging),
    plugged_in(lambda state: state.plugged_in),
    EvCloudBinarySensorEntityDescription(
        key="charging_allowed",
        translation_key="charging_allowed",
        value_fn=_status(lambda state: state.charging_allowed),
    ),
    online(),
)

NUMBERS: tuple[EvCloudNumberEntityDescription[GoeCharger, GoeStatus], ...] = (
    EvCloudNumberEntityDescription(
        key="charge_current_limit",
        translation_key="charge_current_limit",
        device_class=NumberDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        native_min_value=6,
        native_max_value=32,
        native_step=1,
        mode=NumberMode.SLIDER,
        value_fn=lambda state: state.requested_current,
        set_fn=lambda charger, value: charger.async_set({"amp": int(value)}),
        min_fn=lambda state: state.min_current,
        max_fn=lambda state: state.max_current,
    ),
)


def _enum_select[E: IntEnum](
    key: str,
    api_key: str,
    enum: type[E],
    value: Callable[[GoeStatus], E | None],
    **kwargs: Any,
) -> EvCloudSelectEntityDescription[GoeCharger, GoeStatus]:
    """A select over an enum key; options are the enum names in lower case.

    Offered only on chargers that have the key it writes and report its value.
    """
    has = _has(api_key)
    return EvCloudSelectEntityDescription(
        key=key,
        translation_key=key,
        # A charger may also leave a key out of a full answer (`psm`).
        supported_fn=lambda state: has(state) and value(state) is not None,
        options=[member.name.lower() for member in enum],
        value_fn=lambda state: _enum_name(value(state)),
        select_fn=lambda charger, option: charger.async_set(
            {api_key: int(enum[option.upper()])}
        ),
        **kwargs,
    )


# The phases as numbers ("1", "3"), the select evcc switches phases with. It shows
# a phase count only while one is forced: in automatic mode the charger decides.
_PHASES_BY_MODE: dict[PhaseMode, str] = {PhaseMode.FORCE_1: "1", PhaseMode.FORCE_3: "3"}
_MODE_BY_PHASES: dict[str, PhaseMode] = {
    phases: mode for mode, phases in _PHASES_BY_MODE.items()
}


def _phases(state: GoeStatus) -> str | None:
    if state.phase_mode is None:
        return None
    return _PHASES_BY_MODE.get(state.phase_mode)


SELECTS: tuple[EvCloudSelectEntityDescription[GoeCharger, GoeStatus], ...] = (
    _enum_select("force_state", "frc", ForceState, lambda state: state.force_state),
    _enum_select(
        "phase_mode",
        "psm",
        PhaseMode,
        lambda state: state.phase_mode,
        entity_category=EntityCategory.CONFIG,
    ),
    EvCloudSelectEntityDescription(
        key="phases",
        translation_key="phases",
        supported_fn=lambda state: _has("psm")(state) and state.phase_mode is not None,
        options=list(_MODE_BY_PHASES),
        entity_category=EntityCategory.CONFIG,
        # Beside the phase mode select; enabled for evcc (docs/evcc.md).
        entity_registry_enabled_default=False,
        value_fn=_phases,
        select_fn=lambda charger, option: charger.async_set(
            {"psm": int(_MODE_BY_PHASES[option])}
        ),
    ),
    _enum_select(
        "cable_lock_mode",
        "ust",
        CableLockMode,
        lambda state: state.cable_lock_mode,
        entity_category=EntityCategory.CONFIG,
    ),
)


def _charge_on(state: GoeStatus) -> bool | None:
    """On when charging is forced on, or left to the charger and it charges."""
    if state.force_state is None:
        return None
    if state.force_state == ForceState.NEUTRAL:
        return state.charging
    return state.force_state == ForceState.ON


SWITCHES: tuple[EvCloudSwitchEntityDescription[GoeCharger, GoeStatus], ...] = (
    EvCloudSwitchEntityDescription(
        key="charge",
        translation_key="charge",
        value_fn=_charge_on,
        on_fn=lambda charger, state: charger.async_start_charging(state),
        off_fn=lambda charger, state: charger.async_stop_charging(state),
    ),
)

ENTITIES: DeviceEntities[GoeCharger, GoeStatus] = DeviceEntities(
    role="charger",
    sensor=SENSORS,
    binary_sensor=BINARY_SENSORS,
    number=NUMBERS,
    select=SELECTS,
    switch=SWITCHES,
)
