"""Locks: the doors of a vehicle."""

from __future__ import annotations

from typing import Any

from homeassistant.components.lock import LockEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .descriptions import EvCloudLockEntityDescription
from .entity import EvCloudEntity, async_add_device_entities
from .models import EvCloudConfigEntry

PARALLEL_UPDATES = 1


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the locks of every device of the entry."""
    async_add_device_entities(
        hass, entry, lambda kind: kind.lock, EvCloudLock, async_add_entities
    )


class EvCloudLock(EvCloudEntity, LockEntity):
    """A lock of a vehicle or charger."""

    entity_description: EvCloudLockEntityDescription[Any, Any]

    def shown(self) -> object:
        """Locked or not."""
        return self.is_locked

    @property
    def is_locked(self) -> bool | None:
        """The value from the latest reading."""
        return self.entity_description.value_fn(self.coordinator.data.state)

    async def async_lock(self, **kwargs: Any) -> None:
        """Lock."""
        await self.coordinator.async_command(
            self.entity_description.lock_fn(
                self.coordinator.device, self.coordinator.data.state
            )
        )

    async def async_unlock(self, **kwargs: Any) -> None:
        """Unlock."""
        await self.coordinator.async_command(
            self.entity_description.unlock_fn(
                self.coordinator.device, self.coordinator.data.state
            )
        )
