"""Numbers: charge current and other adjustable values."""

from __future__ import annotations

from typing import Any

from homeassistant.components.number import NumberEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .descriptions import EvCloudNumberEntityDescription
from .entity import EvCloudEntity, async_add_device_entities
from .models import EvCloudConfigEntry

# One write at a time per platform: the devices apply commands one by one anyway.
PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the numbers of every device of the entry."""
    async_add_device_entities(
        hass, entry, lambda kind: kind.number, EvCloudNumber, async_add_entities
    )


class EvCloudNumber(EvCloudEntity, NumberEntity):
    """An adjustable value of a vehicle or charger."""

    entity_description: EvCloudNumberEntityDescription[Any, Any]

    def shown(self) -> object:
        """The value and its range."""
        return (self.native_value, self.native_min_value, self.native_max_value)

    @property
    def native_value(self) -> float | None:
        """The value from the latest reading."""
        return self.entity_description.value_fn(self.coordinator.data.state)

    @property
    def native_min_value(self) -> float:
        """The device's own minimum, else the description's."""
        value = self.entity_description.min_fn(self.coordinator.data.state)
        return value if value is not None else super().native_min_value

    @property
    def native_max_value(self) -> float:
        """The device's own maximum, else the description's."""
        value = self.entity_description.max_fn(self.coordinator.data.state)
        return value if value is not None else super().native_max_value

    async def async_set_native_value(self, value: float) -> None:
        """Write the value to the device."""
        await self.coordinator.async_command(
            self.entity_description.set_fn(self.coordinator.device, value)
        )
