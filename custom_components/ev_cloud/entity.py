"""Base entity: device info, unique id and naming for every provider and platform."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .coordinator import EvCloudConfigEntry, EvCloudCoordinator, signal_device_added


@dataclass(frozen=True, kw_only=True)
class EvCloudEntityDescription(EntityDescription):
    """Fields every EV Cloud description has.

    `provider` says which devices get the entity (None: every provider);
    `supported_fn` drops it for a device whose state lacks the concept (for
    example a charger without phase switching).
    """

    provider: str | None
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


@callback
def async_add_device_entities[DescriptionT: EvCloudEntityDescription](
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    descriptions: tuple[DescriptionT, ...],
    factory: Callable[[EvCloudCoordinator[Any], DescriptionT], Entity],
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the entities of every device, now and when the account gains one."""

    @callback
    def add(coordinators: Iterable[EvCloudCoordinator[Any]]) -> None:
        async_add_entities(
            factory(coordinator, description)
            for coordinator in coordinators
            for description in descriptions
            if description.provider in (None, coordinator.device.provider)
            and description.supported_fn(coordinator.data.state)
        )

    @callback
    def add_one(coordinator: EvCloudCoordinator[Any]) -> None:
        add([coordinator])

    add(entry.runtime_data.coordinators.values())
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_device_added(entry), add_one)
    )
