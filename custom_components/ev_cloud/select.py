"""Selects: modes and other choices of a vehicle or charger."""

from __future__ import annotations

from typing import Any

from homeassistant.components.select import SelectEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .descriptions import EvCloudSelectEntityDescription
from .entity import EvCloudEntity, async_add_device_entities
from .models import EvCloudConfigEntry

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the selects of every device of the entry."""
    async_add_device_entities(
        hass, entry, lambda kind: kind.select, EvCloudSelect, async_add_entities
    )


class EvCloudSelect(EvCloudEntity, SelectEntity):
    """A choice setting of a vehicle or charger."""

    entity_description: EvCloudSelectEntityDescription[Any, Any]

    def shown(self) -> object:
        """The option chosen."""
        return self.current_option

    @property
    def current_option(self) -> str | None:
        """The option from the latest reading."""
        return self.entity_description.value_fn(self.coordinator.data.state)

    async def async_select_option(self, option: str) -> None:
        """Write the option to the device."""
        await self.coordinator.async_command(
            self.entity_description.select_fn(self.coordinator.device, option)
        )
