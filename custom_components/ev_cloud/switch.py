"""Switches: charging on/off."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .api.goe import ForceState, GoeStatus
from .const import PROVIDER_GOE, PROVIDER_OVMS
from .coordinator import EvCloudConfigEntry
from .entity import (
    EvCloudEntity,
    EvCloudEntityDescription,
    async_add_device_entities,
)

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class EvCloudSwitchEntityDescription(EvCloudEntityDescription, SwitchEntityDescription):
    """A switch read from the device state and turned with `on_fn` / `off_fn`."""

    value_fn: Callable[[Any], bool | None]
    on_fn: Callable[[Any, Any], Awaitable[None]]
    off_fn: Callable[[Any, Any], Awaitable[None]]


def _goe_charge_on(state: GoeStatus) -> bool | None:
    """On when charging is forced on, or left to the charger and it charges."""
    if state.force_state is None:
        return None
    if state.force_state == ForceState.NEUTRAL:
        return state.charging
    return state.force_state == ForceState.ON


SWITCHES: tuple[EvCloudSwitchEntityDescription, ...] = (
    EvCloudSwitchEntityDescription(
        key="live_updates",
        translation_key="live_updates",
        provider=PROVIDER_OVMS,
        entity_category=EntityCategory.CONFIG,
        value_fn=lambda state: state.live_updates,
        on_fn=lambda device, state: device.async_set_live_updates(state, True),
        off_fn=lambda device, state: device.async_set_live_updates(state, False),
    ),
    EvCloudSwitchEntityDescription(
        key="charge",
        translation_key="charge",
        provider=PROVIDER_GOE,
        value_fn=_goe_charge_on,
        on_fn=lambda device, state: device.async_start_charging(state),
        off_fn=lambda device, state: device.async_stop_charging(state),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the switches of every device of the entry."""
    async_add_device_entities(hass, entry, SWITCHES, EvCloudSwitch, async_add_entities)


class EvCloudSwitch(EvCloudEntity, SwitchEntity):
    """A switch of a vehicle or charger."""

    entity_description: EvCloudSwitchEntityDescription

    @property
    def is_on(self) -> bool | None:
        """The value from the latest reading."""
        return self.entity_description.value_fn(self.state_data)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Turn on."""
        await self.coordinator.async_command(
            self.entity_description.on_fn(self.coordinator.device, self.state_data)
        )

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Turn off."""
        await self.coordinator.async_command(
            self.entity_description.off_fn(self.coordinator.device, self.state_data)
        )
