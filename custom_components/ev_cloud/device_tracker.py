"""Device trackers: where a vehicle is, from its GPS."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.device_tracker import (
    SourceType,
    TrackerEntity,
    TrackerEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import PROVIDER_OVMS
from .coordinator import EvCloudConfigEntry
from .entity import (
    EvCloudEntity,
    EvCloudEntityDescription,
    async_add_device_entities,
)

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class EvCloudTrackerEntityDescription(
    EvCloudEntityDescription, TrackerEntityDescription
):
    """A tracker reading latitude and longitude from the device state."""

    position_fn: Callable[[Any], tuple[float | None, float | None]]


TRACKERS: tuple[EvCloudTrackerEntityDescription, ...] = (
    EvCloudTrackerEntityDescription(
        key="location",
        translation_key="location",
        provider=PROVIDER_OVMS,
        position_fn=lambda state: (state.location.latitude, state.location.longitude),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the trackers of every device of the entry."""
    async_add_device_entities(hass, entry, TRACKERS, EvCloudTracker, async_add_entities)


class EvCloudTracker(EvCloudEntity, TrackerEntity):
    """The GPS position of a vehicle."""

    entity_description: EvCloudTrackerEntityDescription
    _attr_source_type = SourceType.GPS

    @property
    def latitude(self) -> float | None:
        """Latitude from the latest reading."""
        return self.entity_description.position_fn(self.state_data)[0]

    @property
    def longitude(self) -> float | None:
        """Longitude from the latest reading."""
        return self.entity_description.position_fn(self.state_data)[1]
