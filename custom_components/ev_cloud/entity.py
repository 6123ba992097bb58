"""Base entity: device info, unique id and naming for every provider and platform."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import EvCloudConfigEntry, EvCloudCoordinator


@dataclass(frozen=True, kw_only=True)
class EvCloudEntityDescription(EntityDescription):
    """Fields every EV Cloud description has.

    `provider` says which devices get the entity; `supported_fn` drops it for a
    device whose state lacks the concept (for example a charger without phase
    switching).
    """

    provider: str
    supported_fn: Callable[[Any], bool] = lambda _state: True


class EvCloudEntity(CoordinatorEntity[EvCloudCoordinator[Any]]):
    """An entity of one device, described by an EvCloudEntityDescription."""

    _attr_has_entity_name = True
    entity_description: EvCloudEntityDescription

    def __init__(
        self,
        coordinator: EvCloudCoordinator[Any],
        description: EvCloudEntityDescription,
    ) -> None:
        """Bind `description` to the device of `coordinator`."""
        super().__init__(coordinator)
        self.entity_description = description
        device = coordinator.device
        self._attr_unique_id = f"{device.key}_{description.key}"
        self._attr_device_info = device.device_info(coordinator.data.state)

    @property
    def state_data(self) -> Any:
        """The provider's typed state of the device."""
        return self.coordinator.data.state


def entities_for[DescriptionT: EvCloudEntityDescription, EntityT](
    entry: EvCloudConfigEntry,
    descriptions: tuple[DescriptionT, ...],
    factory: Callable[[EvCloudCoordinator[Any], DescriptionT], EntityT],
) -> list[EntityT]:
    """Entities of every device of `entry` that its provider and state support."""
    return [
        factory(coordinator, description)
        for coordinator in entry.runtime_data.coordinators.values()
        for description in descriptions
        if description.provider == coordinator.device.provider
        and description.supported_fn(coordinator.data.state)
    ]
