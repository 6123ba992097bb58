"""Entity snapshots every provider's tests take the same way."""

from __future__ import annotations

from enum import Enum
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

# Tracker attributes added after the oldest Home Assistant release we support.
VERSION_DEPENDENT_ATTRIBUTES = frozenset({"in_zones", "tracking_type"})


def _plain(value: Any) -> Any:
    """Enums as their values: newer releases key attributes by StrEnum members."""
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    return value


def registry_and_states(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, entry_id: str
) -> dict[str, dict[str, Any]]:
    """What the integration decides about each entity, registry entry and state.

    A projection rather than the whole registry entry, whose other fields (and
    their serialisation) change between the Home Assistant releases we support.
    """
    entries = er.async_entries_for_config_entry(entity_registry, entry_id)
    result = {}
    for entry in sorted(entries, key=lambda entry: entry.entity_id):
        state = hass.states.get(entry.entity_id)
        assert state is not None, entry.entity_id
        result[entry.entity_id] = {
            "unique_id": entry.unique_id,
            "translation_key": entry.translation_key,
            "device_class": entry.original_device_class,
            "entity_category": entry.entity_category,
            "unit": entry.unit_of_measurement,
            # Trackers gained capabilities after the oldest release we support.
            "capabilities": None
            if entry.domain == "device_tracker"
            else _plain(entry.capabilities),
            "state": state.state,
            "attributes": _plain(
                {
                    key: value
                    for key, value in state.attributes.items()
                    if key not in VERSION_DEPENDENT_ATTRIBUTES
                }
            ),
        }
    return result
