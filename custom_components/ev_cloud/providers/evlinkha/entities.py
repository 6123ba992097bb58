"""EVLinkHA: the entities of a vehicle, typed on its state."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from homeassistant.components.binary_sensor import BinarySensorDeviceClass
from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfEnergy,
    UnitOfLength,
    UnitOfPower,
)

from ...api.evlinkha import POWER_DELIVERY_STATES, ChargeState
from ...descriptions import (
    DeviceEntities,
    EvCloudBinarySensorEntityDescription,
    EvCloudSensorEntityDescription,
    EvCloudSwitchEntityDescription,
    EvCloudTrackerEntityDescription,
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
    time_to_full,
)
from ...device import DeviceData
from .state import VehicleState

if TYPE_CHECKING:
    from .account import EvLinkDevice


def _charge[T](
    fn: Callable[[ChargeState], T],
) -> Callable[[DeviceData[VehicleState]], T]:
    """Read a value from the vehicle's charge state."""
    return lambda data: fn(data.state.vehicle.charge)


def _state_charge[T](fn: Callable[[ChargeState], T]) -> Callable[[VehicleState], T]:
    return lambda state: fn(state.vehicle.charge)


def _delivery(charge: ChargeState) -> str | None:
    state = charge.power_delivery_state
    return state if state in POWER_DELIVERY_STATES else None


SENSORS: tuple[EvCloudSensorEntityDescription[VehicleState], ...] = (
    last_update(),
    battery_level(_state_charge(lambda charge: charge.battery_level)),
    EvCloudSensorEntityDescription(
        key="range",
        translation_key="range",
        device_class=SensorDeviceClass.DISTANCE,
        native_unit_of_measurement=UnitOfLength.KILOMETERS,
        suggested_display_precision=0,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=_charge(lambda charge: charge.range_km),
    ),
    charge_power(_charge(lambda charge: charge.charge_rate_kw), UnitOfPower.KILO_WATT),
    EvCloudSensorEntityDescription(
        key="charge_limit_soc",
        translation_key="charge_limit_soc",
        native_unit_of_measurement=PERCENTAGE,
        value_fn=_charge(lambda charge: charge.charge_limit),
    ),
    time_to_full(_charge(lambda charge: charge.time_remaining_min)),
    charge_finish_time(
        _state_charge(lambda charge: charge.time_remaining_min),
        _state_charge(lambda charge: charge.is_charging),
    ),
    iec_61851_status(
        _state_charge(
            lambda charge: iec_61851_from_flags(
                charge.is_plugged_in, charge.is_charging
            )
        )
    ),
    EvCloudSensorEntityDescription(
        key="battery_capacity",
        translation_key="battery_capacity",
        device_class=SensorDeviceClass.ENERGY_STORAGE,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=1,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_charge(lambda charge: charge.battery_capacity_kwh),
    ),
    EvCloudSensorEntityDescription(
        key="power_delivery_state",
        translation_key="power_delivery_state",
        device_class=SensorDeviceClass.ENUM,
        options=list(POWER_DELIVERY_STATES),
        value_fn=_charge(_delivery),
    ),
    EvCloudSensorEntityDescription(
        key="odometer",
        translation_key="odometer",
        device_class=SensorDeviceClass.DISTANCE,
        native_unit_of_measurement=UnitOfLength.KILOMETERS,
        suggested_display_precision=0,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda data: data.state.vehicle.odometer_km,
    ),
    EvCloudSensorEntityDescription(
        key="calls_left",
        translation_key="calls_left",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: data.state.calls_left,
    ),
    EvCloudSensorEntityDescription(
        key="last_push",
        translation_key="last_push",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.state.last_push,
    ),
    # The two values the EVLinkHA profile's push fields take, to copy from (as
    # the official integration shows its webhook id); only on the tier it pushes.
    EvCloudSensorEntityDescription(
        key="webhook_url",
        translation_key="webhook_url",
        entity_category=EntityCategory.DIAGNOSTIC,
        supported_fn=lambda state: state.pushes,
        value_fn=lambda data: data.state.webhook_url,
    ),
    EvCloudSensorEntityDescription(
        key="webhook_id",
        translation_key="webhook_id",
        entity_category=EntityCategory.DIAGNOSTIC,
        supported_fn=lambda state: state.pushes,
        value_fn=lambda data: data.state.webhook_id,
    ),
)

BINARY_SENSORS: tuple[EvCloudBinarySensorEntityDescription[VehicleState], ...] = (
    charging(_state_charge(lambda charge: charge.is_charging)),
    plugged_in(_state_charge(lambda charge: charge.is_plugged_in)),
    online(),
    charge_complete(_charge(lambda charge: charge.is_fully_charged)),
    EvCloudBinarySensorEntityDescription(
        key="reachable",
        translation_key="reachable",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.state.vehicle.is_reachable,
    ),
    EvCloudBinarySensorEntityDescription(
        key="smart_charging",
        translation_key="smart_charging",
        value_fn=lambda data: data.state.vehicle.smart_charging,
    ),
)

SWITCHES: tuple[EvCloudSwitchEntityDescription[EvLinkDevice, VehicleState], ...] = (
    EvCloudSwitchEntityDescription(
        key="charge",
        translation_key="charge",
        # Only where the tier and the vehicle allow START and STOP.
        supported_fn=lambda state: state.can_charge,
        value_fn=_state_charge(lambda charge: charge.is_charging),
        on_fn=lambda vehicle, state: vehicle.async_start_charging(state),
        off_fn=lambda vehicle, state: vehicle.async_stop_charging(state),
    ),
)

TRACKERS: tuple[EvCloudTrackerEntityDescription[VehicleState], ...] = (
    EvCloudTrackerEntityDescription(
        key="location",
        translation_key="location",
        supported_fn=lambda state: state.capable("location"),
        position_fn=lambda state: (state.vehicle.latitude, state.vehicle.longitude),
    ),
)

ENTITIES: DeviceEntities[EvLinkDevice, VehicleState] = DeviceEntities(
    role="vehicle",
    sensor=SENSORS,
    binary_sensor=BINARY_SENSORS,
    switch=SWITCHES,
    device_tracker=TRACKERS,
)
