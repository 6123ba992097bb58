"""Entity descriptions: what an entity of a device shows, typed on its state.

A provider declares one `DeviceEntities` per kind of device it has, with
descriptions whose functions take that device and its state type. Concepts that
several providers share (charging, plugged in, battery level, online, ...) are
built by the factories at the end, so that they share one key, translation and
device class whichever service a device comes from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Literal

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntityDescription,
)
from homeassistant.components.button import ButtonEntityDescription
from homeassistant.components.device_tracker import TrackerEntityDescription
from homeassistant.components.lock import LockEntityDescription
from homeassistant.components.number import NumberEntityDescription
from homeassistant.components.select import SelectEntityDescription
from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.components.switch import SwitchEntityDescription
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    Platform,
    UnitOfEnergy,
    UnitOfPower,
    UnitOfTime,
)
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.typing import StateType

from .device import DeviceData


def always_supported(_state: object) -> bool:
    """The default `supported_fn`: every device of the kind has the entity."""
    return True


def no_bound(_state: object) -> float | None:
    """The default `min_fn` / `max_fn`: the description's own bound holds."""
    return None


@dataclass(frozen=True, kw_only=True)
class EvCloudEntityDescription[StateT](EntityDescription):
    """Fields every EV Cloud description has.

    `supported_fn` drops the entity for a device whose state lacks the concept
    (for example a charger without phase switching).
    """

    supported_fn: Callable[[StateT], bool] = always_supported

    def known_without_state(self) -> bool:
        """True when the entity and what it declares need no reading of the device.

        A device that could not be read yet gets these entities (unavailable),
        the others once it is read.
        """
        return self.supported_fn is always_supported


@dataclass(frozen=True, kw_only=True)
class EvCloudSensorEntityDescription[StateT](
    EvCloudEntityDescription[StateT], SensorEntityDescription
):
    """A sensor whose value is read from a device reading."""

    value_fn: Callable[[DeviceData[StateT]], StateType | datetime]
    # The unit when it depends on the device (km or miles), else None.
    unit_fn: Callable[[StateT], str] | None = None

    def known_without_state(self) -> bool:
        """A unit that depends on the device is known only from a reading."""
        return self.unit_fn is None and super().known_without_state()


@dataclass(frozen=True, kw_only=True)
class EvCloudBinarySensorEntityDescription[StateT](
    EvCloudEntityDescription[StateT], BinarySensorEntityDescription
):
    """A binary sensor whose value is read from a device reading."""

    value_fn: Callable[[DeviceData[StateT]], bool | None]


@dataclass(frozen=True, kw_only=True)
class EvCloudTrackerEntityDescription[StateT](
    EvCloudEntityDescription[StateT], TrackerEntityDescription
):
    """A tracker reading latitude and longitude from the device state."""

    position_fn: Callable[[StateT], tuple[float | None, float | None]]


@dataclass(frozen=True, kw_only=True)
class EvCloudNumberEntityDescription[DeviceT, StateT](
    EvCloudEntityDescription[StateT], NumberEntityDescription
):
    """A number read from the device state and written with `set_fn`."""

    value_fn: Callable[[StateT], float | None]
    set_fn: Callable[[DeviceT, float], Awaitable[None]]
    # Bounds that depend on the device (e.g. the charger's maximum current).
    min_fn: Callable[[StateT], float | None] = no_bound
    max_fn: Callable[[StateT], float | None] = no_bound

    def known_without_state(self) -> bool:
        """Bounds that depend on the device are known only from a reading."""
        return (
            self.min_fn is no_bound
            and self.max_fn is no_bound
            and super().known_without_state()
        )


@dataclass(frozen=True, kw_only=True)
class EvCloudSelectEntityDescription[DeviceT, StateT](
    EvCloudEntityDescription[StateT], SelectEntityDescription
):
    """A select read from the device state and written with `select_fn`."""

    value_fn: Callable[[StateT], str | None]
    select_fn: Callable[[DeviceT, str], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class EvCloudSwitchEntityDescription[DeviceT, StateT](
    EvCloudEntityDescription[StateT], SwitchEntityDescription
):
    """A switch read from the device state and turned with `on_fn` / `off_fn`."""

    value_fn: Callable[[StateT], bool | None]
    on_fn: Callable[[DeviceT, StateT], Awaitable[None]]
    off_fn: Callable[[DeviceT, StateT], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class EvCloudButtonEntityDescription[DeviceT, StateT](
    EvCloudEntityDescription[StateT], ButtonEntityDescription
):
    """A button that sends a command with `press_fn`."""

    press_fn: Callable[[DeviceT, StateT], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class EvCloudLockEntityDescription[DeviceT, StateT](
    EvCloudEntityDescription[StateT], LockEntityDescription
):
    """A lock read from the device state and turned with `lock_fn` / `unlock_fn`."""

    value_fn: Callable[[StateT], bool | None]  # True: locked
    lock_fn: Callable[[DeviceT, StateT], Awaitable[None]]
    unlock_fn: Callable[[DeviceT, StateT], Awaitable[None]]


# What a kind of device is to the shared code: a vehicle or a charger joins a
# charger link (`link.py`) through its shared-key entities; None: neither.
type DeviceRole = Literal["vehicle", "charger"] | None


@dataclass(frozen=True, kw_only=True)
class DeviceEntities[DeviceT, StateT]:
    """The entities of one kind of device, per platform, and what the kind is."""

    role: DeviceRole = None
    sensor: tuple[EvCloudSensorEntityDescription[StateT], ...] = ()
    binary_sensor: tuple[EvCloudBinarySensorEntityDescription[StateT], ...] = ()
    device_tracker: tuple[EvCloudTrackerEntityDescription[StateT], ...] = ()
    number: tuple[EvCloudNumberEntityDescription[DeviceT, StateT], ...] = ()
    select: tuple[EvCloudSelectEntityDescription[DeviceT, StateT], ...] = ()
    switch: tuple[EvCloudSwitchEntityDescription[DeviceT, StateT], ...] = ()
    button: tuple[EvCloudButtonEntityDescription[DeviceT, StateT], ...] = ()
    lock: tuple[EvCloudLockEntityDescription[DeviceT, StateT], ...] = ()

    @property
    def platforms(self) -> set[Platform]:
        """The platforms that have at least one description."""
        return {
            Platform(name) for name in self._platform_fields() if getattr(self, name)
        }

    def all(self) -> tuple[EvCloudEntityDescription[StateT], ...]:
        """Every description, whatever its platform."""
        return tuple(
            description
            for name in self._platform_fields()
            for description in getattr(self, name)
        )

    def find[DescriptionT: EvCloudEntityDescription[StateT]](
        self, platform: tuple[DescriptionT, ...], key: str
    ) -> DescriptionT | None:
        """The description of `platform` (one of this kind's tuples) with `key`."""
        return next((d for d in platform if d.key == key), None)

    def _platform_fields(self) -> list[str]:
        return [field.name for field in fields(self) if field.name != "role"]


# --- concepts shared across providers: one key, one translation -------------------


def online[StateT]() -> EvCloudBinarySensorEntityDescription[StateT]:
    """Off while the device does not report; its other entities keep their values."""
    return EvCloudBinarySensorEntityDescription(
        key="online",
        translation_key="online",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.online,
    )


def last_update[StateT]() -> EvCloudSensorEntityDescription[StateT]:
    """When the device produced the data shown: the age of every value."""
    return EvCloudSensorEntityDescription(
        key="last_update",
        translation_key="last_update",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.data_time,
    )


def charging[StateT](
    value: Callable[[StateT], bool | None],
) -> EvCloudBinarySensorEntityDescription[StateT]:
    """True while the vehicle (or the charger's car) charges."""
    return EvCloudBinarySensorEntityDescription(
        key="charging",
        translation_key="charging",
        device_class=BinarySensorDeviceClass.BATTERY_CHARGING,
        value_fn=lambda data: value(data.state),
    )


def plugged_in[StateT](
    value: Callable[[StateT], bool | None],
) -> EvCloudBinarySensorEntityDescription[StateT]:
    """True while a charge cable connects vehicle and charger."""
    return EvCloudBinarySensorEntityDescription(
        key="plugged_in",
        translation_key="plugged_in",
        device_class=BinarySensorDeviceClass.PLUG,
        value_fn=lambda data: value(data.state),
    )


def battery_level[StateT](
    value: Callable[[StateT], float | None],
) -> EvCloudSensorEntityDescription[StateT]:
    """The vehicle's state of charge in %."""
    return EvCloudSensorEntityDescription(
        key="battery_level",
        translation_key="battery_level",
        device_class=SensorDeviceClass.BATTERY,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda data: value(data.state),
    )


def charge_power[StateT](
    value: Callable[[DeviceData[StateT]], float | None],
    unit: UnitOfPower = UnitOfPower.WATT,
) -> EvCloudSensorEntityDescription[StateT]:
    """The power flowing into the vehicle, shown in kW."""
    return EvCloudSensorEntityDescription(
        key="charge_power",
        translation_key="charge_power",
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=unit,
        suggested_unit_of_measurement=UnitOfPower.KILO_WATT,
        suggested_display_precision=2,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=value,
    )


def session_energy[StateT](
    value: Callable[[DeviceData[StateT]], float | None],
    unit: UnitOfEnergy = UnitOfEnergy.WATT_HOUR,
    precision: int = 2,
) -> EvCloudSensorEntityDescription[StateT]:
    """Energy added in the current charge, shown in kWh.

    It restarts with each charge; TOTAL_INCREASING treats that as a new cycle.
    """
    return EvCloudSensorEntityDescription(
        key="session_energy",
        translation_key="session_energy",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=unit,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=precision,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=value,
    )


def total_energy[StateT](
    value: Callable[[DeviceData[StateT]], float | None],
) -> EvCloudSensorEntityDescription[StateT]:
    """The charger's meter: energy it delivered over its life, shown in kWh."""
    return EvCloudSensorEntityDescription(
        key="total_energy",
        translation_key="total_energy",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=1,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=value,
    )


def time_to_full[StateT](
    value: Callable[[DeviceData[StateT]], float | None],
) -> EvCloudSensorEntityDescription[StateT]:
    """Minutes until the battery is full."""
    return EvCloudSensorEntityDescription(
        key="time_to_full",
        translation_key="time_to_full",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MINUTES,
        value_fn=value,
    )


def charge_complete[StateT](
    value: Callable[[DeviceData[StateT]], bool | None],
) -> EvCloudBinarySensorEntityDescription[StateT]:
    """True once the charge reached its target."""
    return EvCloudBinarySensorEntityDescription(
        key="charge_complete", translation_key="charge_complete", value_fn=value
    )


# IEC 61851 control pilot states, the charge status evcc and other chargers speak:
# A no vehicle, B vehicle connected (not charging), C charging, D charging with
# ventilation, E error (no power, pilot short), F charger fault.
IEC_61851_STATES: tuple[str, ...] = ("a", "b", "c", "d", "e", "f")


def iec_61851_from_flags(plugged: bool | None, charging: bool | None) -> str | None:
    """The A/B/C status from plugged in and charging; None while either is unknown.

    Services that only say whether a cable is in and energy flows cannot tell
    D, E or F.
    """
    if charging is True:
        return "c"
    if plugged is False:
        return "a"
    if plugged is True and charging is False:
        return "b"
    return None


def iec_61851_status[StateT](
    value: Callable[[StateT], str | None],
) -> EvCloudSensorEntityDescription[StateT]:
    """The charge status as an IEC 61851 state, one of `IEC_61851_STATES`."""
    return EvCloudSensorEntityDescription(
        key="iec_61851_status",
        translation_key="iec_61851_status",
        device_class=SensorDeviceClass.ENUM,
        options=list(IEC_61851_STATES),
        value_fn=lambda data: value(data.state),
    )


def finish_time(
    data_time: datetime | None, minutes: float | None, charging: bool | None
) -> datetime | None:
    """When the charge ends: the reading's time plus the minutes the service expects.

    Counted from the time the service made the estimate, not from the poll, and
    rounded to the minute, so that the same estimate gives the same time on
    every poll. None while not charging or without an estimate.
    """
    if charging is not True or minutes is None or minutes < 0 or data_time is None:
        return None
    end = data_time + timedelta(minutes=minutes, seconds=30)
    return end.replace(second=0, microsecond=0)


def charge_finish_time[StateT](
    minutes: Callable[[StateT], float | None],
    charging: Callable[[StateT], bool | None],
) -> EvCloudSensorEntityDescription[StateT]:
    """When the running charge is expected to end (from the time to full)."""
    return EvCloudSensorEntityDescription(
        key="charge_finish_time",
        translation_key="charge_finish_time",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda data: finish_time(
            data.data_time, minutes(data.state), charging(data.state)
        ),
    )
