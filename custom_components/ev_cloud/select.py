"""Selects: force state, phase mode, cable lock mode."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api.goe import CableLockMode, ForceState, PhaseMode
from .const import PROVIDER_GOE
from .coordinator import EvCloudConfigEntry
from .entity import (
    EvCloudEntity,
    EvCloudEntityDescription,
    async_add_device_entities,
)

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class EvCloudSelectEntityDescription(EvCloudEntityDescription, SelectEntityDescription):
    """A select read from the device state and written with `select_fn`."""

    value_fn: Callable[[Any], str | None]
    select_fn: Callable[[Any, str], Awaitable[None]]


def _goe_enum_select(
    key: str, api_key: str, enum: type[IntEnum], attribute: str, **kwargs: Any
) -> EvCloudSelectEntityDescription:
    """A select over a go-e enum key; options are the enum names in lower case."""

    def value(state: Any) -> str | None:
        member = getattr(state, attribute)
        return member.name.lower() if member is not None else None

    return EvCloudSelectEntityDescription(
        key=key,
        translation_key=key,
        provider=PROVIDER_GOE,
        options=[member.name.lower() for member in enum],
        value_fn=value,
        select_fn=lambda device, option: device.async_set(
            {api_key: int(enum[option.upper()])}
        ),
        **kwargs,
    )


SELECTS: tuple[EvCloudSelectEntityDescription, ...] = (
    _goe_enum_select("force_state", "frc", ForceState, "force_state"),
    _goe_enum_select(
        "phase_mode",
        "psm",
        PhaseMode,
        "phase_mode",
        entity_category=EntityCategory.CONFIG,
        # Not every model or firmware has phase switching: offer it only when reported.
        supported_fn=lambda state: state.phase_mode is not None,
    ),
    _goe_enum_select(
        "cable_lock_mode",
        "ust",
        CableLockMode,
        "cable_lock_mode",
        entity_category=EntityCategory.CONFIG,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the selects of every device of the entry."""
    async_add_device_entities(hass, entry, SELECTS, EvCloudSelect, async_add_entities)


class EvCloudSelect(EvCloudEntity, SelectEntity):
    """A choice setting of a vehicle or charger."""

    entity_description: EvCloudSelectEntityDescription

    @property
    def current_option(self) -> str | None:
        """The option from the latest reading."""
        return self.entity_description.value_fn(self.state_data)

    async def async_select_option(self, option: str) -> None:
        """Write the option to the device."""
        await self.coordinator.async_command(
            self.entity_description.select_fn(self.coordinator.device, option)
        )
