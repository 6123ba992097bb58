"""Binary sensors: charging, plugged in, online and other yes/no states."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import PROVIDER_GOE, PROVIDER_OVMS
from .coordinator import EvCloudConfigEntry
from .device import DeviceData
from .entity import (
    EvCloudEntity,
    EvCloudEntityDescription,
    async_add_device_entities,
)

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class EvCloudBinarySensorEntityDescription(
    EvCloudEntityDescription, BinarySensorEntityDescription
):
    """A binary sensor whose value is read from a device reading."""

    value_fn: Callable[[DeviceData[Any]], bool | None]


BINARY_SENSORS: tuple[EvCloudBinarySensorEntityDescription, ...] = (
    EvCloudBinarySensorEntityDescription(
        key="charging",
        translation_key="charging",
        provider=None,
        device_class=BinarySensorDeviceClass.BATTERY_CHARGING,
        value_fn=lambda data: data.state.charging,
    ),
    EvCloudBinarySensorEntityDescription(
        key="plugged_in",
        translation_key="plugged_in",
        provider=None,
        device_class=BinarySensorDeviceClass.PLUG,
        value_fn=lambda data: data.state.plugged_in,
    ),
    EvCloudBinarySensorEntityDescription(
        key="charging_allowed",
        translation_key="charging_allowed",
        provider=PROVIDER_GOE,
        value_fn=lambda data: data.state.charging_allowed,
    ),
    EvCloudBinarySensorEntityDescription(
        key="online",
        translation_key="online",
        provider=None,
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.online,
    ),
)


def _status_flag(
    key: str, attribute: str, device_class: BinarySensorDeviceClass | None = None
) -> EvCloudBinarySensorEntityDescription:
    """A yes/no field of the OVMS status (doors/environment) record."""
    return EvCloudBinarySensorEntityDescription(
        key=key,
        translation_key=key,
        provider=PROVIDER_OVMS,
        device_class=device_class,
        value_fn=lambda data: getattr(data.state.status, attribute),
    )


BINARY_SENSORS += (
    EvCloudBinarySensorEntityDescription(
        key="locked",
        translation_key="locked",
        provider=PROVIDER_OVMS,
        device_class=BinarySensorDeviceClass.LOCK,
        # The lock device class is on when unlocked.
        value_fn=lambda data: (
            None if data.state.status.locked is None else not data.state.status.locked
        ),
    ),
    _status_flag(
        "front_left_door", "front_left_door_open", BinarySensorDeviceClass.DOOR
    ),
    _status_flag(
        "front_right_door", "front_right_door_open", BinarySensorDeviceClass.DOOR
    ),
    _status_flag("trunk", "trunk_open", BinarySensorDeviceClass.OPENING),
    _status_flag("bonnet", "bonnet_open", BinarySensorDeviceClass.OPENING),
    _status_flag("charge_port", "charge_port_open", BinarySensorDeviceClass.OPENING),
    _status_flag("car_on", "car_on", BinarySensorDeviceClass.RUNNING),
    _status_flag("valet_mode", "valet_mode"),
    EvCloudBinarySensorEntityDescription(
        key="server_connection",
        translation_key="server_connection",
        provider=PROVIDER_OVMS,
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.state.car_online,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors of every device of the entry."""
    async_add_device_entities(
        hass, entry, BINARY_SENSORS, EvCloudBinarySensor, async_add_entities
    )


class EvCloudBinarySensor(EvCloudEntity, BinarySensorEntity):
    """A yes/no state of a vehicle or charger."""

    entity_description: EvCloudBinarySensorEntityDescription

    @property
    def is_on(self) -> bool | None:
        """The value from the latest reading."""
        return self.entity_description.value_fn(self.coordinator.data)
