"""Numbers: charge current and other adjustable values."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import UnitOfElectricCurrent
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import PROVIDER_GOE
from .coordinator import EvCloudConfigEntry
from .entity import (
    EvCloudEntity,
    EvCloudEntityDescription,
    async_add_device_entities,
)

# One write at a time per platform: the devices apply commands one by one anyway.
PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class EvCloudNumberEntityDescription(EvCloudEntityDescription, NumberEntityDescription):
    """A number read from the device state and written with `set_fn`."""

    value_fn: Callable[[Any], float | None]
    set_fn: Callable[[Any, float], Awaitable[None]]
    # Bounds that depend on the device (e.g. the charger's maximum current).
    min_fn: Callable[[Any], float | None] = lambda _state: None
    max_fn: Callable[[Any], float | None] = lambda _state: None


NUMBERS: tuple[EvCloudNumberEntityDescription, ...] = (
    EvCloudNumberEntityDescription(
        key="charge_current_limit",
        translation_key="charge_current_limit",
        provider=PROVIDER_GOE,
        device_class=NumberDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        native_min_value=6,
        native_max_value=32,
        native_step=1,
        mode=NumberMode.SLIDER,
        value_fn=lambda state: state.requested_current,
        set_fn=lambda device, value: device.async_set({"amp": int(value)}),
        min_fn=lambda state: state.min_current,
        max_fn=lambda state: state.max_current,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the numbers of every device of the entry."""
    async_add_device_entities(hass, entry, NUMBERS, EvCloudNumber, async_add_entities)


class EvCloudNumber(EvCloudEntity, NumberEntity):
    """An adjustable value of a vehicle or charger."""

    entity_description: EvCloudNumberEntityDescription

    @property
    def native_value(self) -> float | None:
        """The value from the latest reading."""
        return self.entity_description.value_fn(self.state_data)

    @property
    def native_min_value(self) -> float:
        """The device's own minimum, else the description's."""
        value = self.entity_description.min_fn(self.state_data)
        return value if value is not None else super().native_min_value

    @property
    def native_max_value(self) -> float:
        """The device's own maximum, else the description's."""
        value = self.entity_description.max_fn(self.state_data)
        return value if value is not None else super().native_max_value

    async def async_set_native_value(self, value: float) -> None:
        """Write the value to the device."""
        await self.coordinator.async_command(
            self.entity_description.set_fn(self.coordinator.device, value)
        )
