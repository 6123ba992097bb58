"""Device trackers: where a vehicle is, from its GPS."""

from __future__ import annotations

from typing import Any

from homeassistant.components.device_tracker import SourceType, TrackerEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .descriptions import EvCloudTrackerEntityDescription
from .entity import EvCloudEntity, async_add_device_entities
from .models import EvCloudConfigEntry

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the trackers of every device of the entry."""
    async_add_device_entities(
        hass,
        entry,
        lambda kind: kind.device_tracker,
        EvCloudTracker,
        async_add_entities,
    )


class EvCloudTracker(EvCloudEntity, TrackerEntity):
    """The GPS position of a vehicle."""

    entity_description: EvCloudTrackerEntityDescription[Any]
    _attr_source_type = SourceType.GPS

    def shown(self) -> object:
        """The position."""
        return self.entity_description.position_fn(self.coordinator.data.state)

    @property
    def latitude(self) -> float | None:
        """Latitude from the latest reading."""
        return self.entity_description.position_fn(self.coordinator.data.state)[0]

    @property
    def longitude(self) -> float | None:
        """Longitude from the latest reading."""
        return self.entity_description.position_fn(self.coordinator.data.state)[1]
