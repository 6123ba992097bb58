"""What a charger or a vehicle says, read from its shared-key entities.

A charger link (`link.py`) and the charging sessions (`sessions.py`) work with
any provider: they read a device through the descriptions it shares with the
others (`plugged_in`, `charging`, `charge_power`, `total_energy`, ...), in the
units those declare, so that no provider writes code for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.zone import in_zone
from homeassistant.const import UnitOfEnergy, UnitOfPower
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
from homeassistant.util.unit_conversion import EnergyConverter, PowerConverter

from .descriptions import DeviceEntities, EvCloudSensorEntityDescription
from .device import DeviceData, EvCloudDevice

HOME_ZONE = "zone.home"


@dataclass(frozen=True, slots=True)
class ChargerReading:
    """One reading of a charger: the car at it and the energy it delivered.

    `energy_kwh` is the charger's meter when it has one, else the energy of its
    current session (which restarts with each session); `session_kwh` is that
    session's energy when the charger counts one.
    """

    time: datetime
    online: bool
    plugged: bool | None
    charging: bool | None
    power_kw: float | None
    energy_kwh: float | None
    meter: bool
    session_kwh: float | None = None


@dataclass(frozen=True, slots=True)
class VehicleReading:
    """What a vehicle's own data says, and when the vehicle said it."""

    data_time: datetime | None
    soc: float | None
    plugged: bool | None
    charging: bool | None
    at_home: bool | None
    capacity_kwh: float | None


def charger_reading(
    device: EvCloudDevice[Any], data: DeviceData[Any]
) -> ChargerReading:
    """Read a charger (role "charger") from one of its readings."""
    kind: DeviceEntities[Any, Any] = device.entities
    meter = _kwh(kind, data, "total_energy")
    session = _kwh(kind, data, "session_energy")
    return ChargerReading(
        time=dt_util.utcnow(),
        online=data.online,
        plugged=_flag(kind, data, "plugged_in"),
        charging=_flag(kind, data, "charging"),
        power_kw=_converted(
            kind, data, "charge_power", PowerConverter, UnitOfPower.KILO_WATT
        ),
        energy_kwh=meter if meter is not None else session,
        meter=meter is not None,
        session_kwh=session,
    )


def vehicle_reading(
    hass: HomeAssistant, device: EvCloudDevice[Any], data: DeviceData[Any]
) -> VehicleReading:
    """Read a vehicle (role "vehicle") from one of its readings."""
    kind: DeviceEntities[Any, Any] = device.entities
    soc = _number(kind.find(kind.sensor, "battery_level"), data)
    return VehicleReading(
        data_time=data.data_time,
        soc=soc,
        plugged=_flag(kind, data, "plugged_in"),
        charging=_flag(kind, data, "charging"),
        at_home=_at_home(hass, kind, data),
        capacity_kwh=_kwh(kind, data, "battery_capacity"),
    )


def _flag(
    kind: DeviceEntities[Any, Any], data: DeviceData[Any], key: str
) -> bool | None:
    description = kind.find(kind.binary_sensor, key)
    return None if description is None else description.value_fn(data)


def _number(
    description: EvCloudSensorEntityDescription[Any] | None, data: DeviceData[Any]
) -> float | None:
    if description is None:
        return None
    value = description.value_fn(data)
    return float(value) if isinstance(value, int | float) else None


def _kwh(
    kind: DeviceEntities[Any, Any], data: DeviceData[Any], key: str
) -> float | None:
    return _converted(kind, data, key, EnergyConverter, UnitOfEnergy.KILO_WATT_HOUR)


def _converted(
    kind: DeviceEntities[Any, Any],
    data: DeviceData[Any],
    key: str,
    converter: type[EnergyConverter] | type[PowerConverter],
    unit: str,
) -> float | None:
    """The sensor's value in `unit`, from the unit its description declares."""
    description = kind.find(kind.sensor, key)
    value = _number(description, data)
    if value is None or description is None:
        return None
    native = description.native_unit_of_measurement
    if native is None:
        return None
    return converter.convert(value, native, unit)


def _at_home(
    hass: HomeAssistant, kind: DeviceEntities[Any, Any], data: DeviceData[Any]
) -> bool | None:
    """The service's own "at home", else the vehicle's position in the home zone."""
    if (at_home := kind.find(kind.binary_sensor, "at_home")) is not None:
        return at_home.value_fn(data)
    tracker = kind.find(kind.device_tracker, "location")
    home = hass.states.get(HOME_ZONE)
    if tracker is None or home is None:
        return None
    latitude, longitude = tracker.position_fn(data.state)
    if latitude is None or longitude is None:
        return None
    return in_zone(home, latitude, longitude)
