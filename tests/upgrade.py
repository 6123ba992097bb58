"""Upgrades keep users' registry entries: the check each provider runs."""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.const import DOMAIN


def load_registry(path: Path) -> dict[str, str]:
    """Entity id -> unique id of a release, as its entity snapshots recorded them."""
    entities = json.loads(path.read_text())["entities"]
    return {item["entity_id"]: item["unique_id"] for item in entities}


async def check_upgrade(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    entry: MockConfigEntry,
    old: dict[str, str],
    added: frozenset[str] = frozenset(),
) -> None:
    """The `old` entities keep their ids, the user's names and disabled flags.

    No entity is renamed or lost, and none is added but the entity ids in `added`
    (entities of later releases).
    """
    entry.add_to_hass(hass)
    for entity_id, unique_id in old.items():
        platform, object_id = entity_id.split(".")
        created = entity_registry.async_get_or_create(
            platform,
            DOMAIN,
            unique_id,
            suggested_object_id=object_id,
            config_entry=entry,
        )
        assert created.entity_id == entity_id
    renamed, disabled = sorted(old)[0], sorted(old)[1]
    entity_registry.async_update_entity(renamed, name="My name")
    entity_registry.async_update_entity(
        disabled, disabled_by=er.RegistryEntryDisabler.USER
    )

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    now = {
        item.entity_id: item.unique_id
        for item in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    }
    assert {entity_id: now[entity_id] for entity_id in now.keys() - added} == old
    assert now.keys() >= added
    assert entity_registry.async_get(renamed).name == "My name"
    assert entity_registry.async_get(disabled).disabled_by is (
        er.RegistryEntryDisabler.USER
    )
    assert hass.states.get(renamed).name.endswith("My name")
