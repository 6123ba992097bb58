"""Buttons: one-off commands such as waking a vehicle up."""

from __future__ import annotations

from typing import Any

from homeassistant.components.button import ButtonEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .descriptions import EvCloudButtonEntityDescription
from .entity import EvCloudEntity, async_add_device_entities
from .models import EvCloudConfigEntry

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the buttons of every device of the entry."""
    async_add_device_entities(
        hass, entry, lambda kind: kind.button, EvCloudButton, async_add_entities
    )


class EvCloudButton(EvCloudEntity, ButtonEntity):
    """A command of a vehicle or charger."""

    entity_description: EvCloudButtonEntityDescription[Any, Any]

    async def async_press(self) -> None:
        """Send the command."""
        await self.coordinator.async_command(
            self.entity_description.press_fn(
                self.coordinator.device, self.coordinator.data.state
            )
        )
