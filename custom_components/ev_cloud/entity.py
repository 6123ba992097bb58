"""Base entity: device info, unique id and naming for every provider and platform."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import EvCloudCoordinator
from .descriptions import DeviceEntities, EvCloudEntityDescription
from .models import EvCloudConfigEntry, signal_device_added

# The provider's description types differ per device; the pairing of a device
# with its own descriptions happens in `async_add_device_entities`.
type AnyCoordinator = EvCloudCoordinator[Any]

# What an entity that cannot say what it shows "shows": it always writes.
_UNKNOWN = object()


class EvCloudEntity(CoordinatorEntity[AnyCoordinator]):
    """An entity of one device, described by an EvCloudEntityDescription."""

    _attr_has_entity_name = True

    def __init__(
        self,
        coordinator: AnyCoordinator,
        description: EvCloudEntityDescription[Any],
    ) -> None:
        """Bind `description` to the device of `coordinator`."""
        super().__init__(coordinator)
        self.entity_description = description
        device = coordinator.device
        self._attr_unique_id = f"{device.key}_{description.key}"
        self._attr_device_info = (
            device.device_info(coordinator.data.state)
            if coordinator.data is not None
            # Not read yet: the device was registered as listed.
            else DeviceInfo(identifiers={(DOMAIN, device.key)})
        )
        self._written: object = _UNKNOWN

    def shown(self) -> object:
        """What the entity shows of the latest reading (its platform says)."""
        return _UNKNOWN

    async def async_added_to_hass(self) -> None:
        """Remember what the first state (written when added) shows."""
        await super().async_added_to_hass()
        self._written = self._showing()

    @callback
    def _handle_coordinator_update(self) -> None:
        """Write the state only when what the entity shows changed.

        A poll rewrites few of a device's values: the others would cost the
        event loop a state write each, for nothing.
        """
        written = self._showing()
        if written[1] is not _UNKNOWN:
            if written == self._written:
                return
            self._written = written
        super()._handle_coordinator_update()

    def _showing(self) -> tuple[bool, object]:
        """Available, and what the entity shows (nothing while unavailable).

        An unavailable entity may have no reading at all to show.
        """
        available = self.available
        return (available, self.shown() if available else None)


@callback
def async_add_device_entities[DescriptionT: EvCloudEntityDescription[Any]](
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    descriptions: Callable[[DeviceEntities[Any, Any]], tuple[DescriptionT, ...]],
    factory: Callable[[AnyCoordinator, DescriptionT], Entity],
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add one platform's entities of every device, now and when the account gains one.

    `descriptions` picks the platform's descriptions from a device's entities.
    """

    @callback
    def add(coordinators: Iterable[AnyCoordinator]) -> None:
        entities = []
        for coordinator in coordinators:
            data = coordinator.data
            for description in descriptions(coordinator.device.entities):
                # A device not read yet gets what it has whatever it reports,
                # the rest once read.
                added = (factory, description.key)
                if added in coordinator.entities_added or not (
                    description.known_without_state()
                    if data is None
                    else description.supported_fn(data.state)
                ):
                    continue
                coordinator.entities_added.add(added)
                entities.append(factory(coordinator, description))
        async_add_entities(entities)

    @callback
    def add_one(coordinator: AnyCoordinator) -> None:
        add([coordinator])

    runtime = entry.runtime_data
    add([*runtime.coordinators.values(), *runtime.unread.values()])
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_device_added(entry), add_one)
    )
