"""Sensors: measurements and states of vehicles and chargers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from homeassistant.components.sensor import SensorEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .descriptions import EvCloudSensorEntityDescription
from .entity import EvCloudEntity, async_add_device_entities
from .models import EvCloudConfigEntry

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of every device of the entry."""
    async_add_device_entities(
        hass, entry, lambda kind: kind.sensor, EvCloudSensor, async_add_entities
    )


class EvCloudSensor(EvCloudEntity, SensorEntity):
    """A sensor of a vehicle or charger."""

    entity_description: EvCloudSensorEntityDescription[Any]

    @property
    def native_value(self) -> StateType | datetime:
        """The value from the latest reading."""
        return self.entity_description.value_fn(self.coordinator.data)

    def shown(self) -> object:
        """The value and its unit."""
        return (self.native_value, self.native_unit_of_measurement)

    @property
    def native_unit_of_measurement(self) -> str | None:
        """The device's own unit where it has one."""
        if self.entity_description.unit_fn is not None:
            return self.entity_description.unit_fn(self.coordinator.data.state)
        return super().native_unit_of_measurement
