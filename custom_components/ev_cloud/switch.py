"""Switches: charging on/off and other on/off settings."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .descriptions import EvCloudSwitchEntityDescription
from .entity import EvCloudEntity, async_add_device_entities
from .models import EvCloudConfigEntry

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the switches of every device of the entry."""
    async_add_device_entities(
        hass, entry, lambda kind: kind.switch, EvCloudSwitch, async_add_entities
    )


class EvCloudSwitch(EvCloudEntity, SwitchEntity):
    """A switch of a vehicle or charger."""

    entity_description: EvCloudSwitchEntityDescription[Any, Any]

    def shown(self) -> object:
        """On or off."""
        return self.is_on

    @property
    def is_on(self) -> bool | None:
        """The value from the latest reading."""
        return self.entity_description.value_fn(self.coordinator.data.state)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Turn on."""
        await self.coordinator.async_command(
            self.entity_description.on_fn(
                self.coordinator.device, self.coordinator.data.state
            )
        )

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Turn off."""
        await self.coordinator.async_command(
            self.entity_description.off_fn(
                self.coordinator.device, self.coordinator.data.state
            )
        )
