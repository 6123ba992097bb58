"""Binary sensors: charging, plugged in, online and other yes/no states."""

from __future__ import annotations

from typing import Any

from homeassistant.components.binary_sensor import BinarySensorEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .descriptions import EvCloudBinarySensorEntityDescription
from .entity import EvCloudEntity, async_add_device_entities
from .models import EvCloudConfigEntry

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors of every device of the entry."""
    async_add_device_entities(
        hass,
        entry,
        lambda kind: kind.binary_sensor,
        EvCloudBinarySensor,
        async_add_entities,
    )


class EvCloudBinarySensor(EvCloudEntity, BinarySensorEntity):
    """A yes/no state of a vehicle or charger."""

    entity_description: EvCloudBinarySensorEntityDescription[Any]

    def shown(self) -> object:
        """On or off."""
        return self.is_on

    @property
    def is_on(self) -> bool | None:
        """The value from the latest reading."""
        return self.entity_description.value_fn(self.coordinator.data)
