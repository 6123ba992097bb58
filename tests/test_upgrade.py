"""An installation of release 0.1.0 upgrades without a renamed or lost entity."""

from __future__ import annotations

import json
from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.const import DOMAIN

OLD_REGISTRY = json.loads(
    (Path(__file__).parent / "fixtures" / "registry_0_1_0.json").read_text()
)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_go_e_registry_is_kept(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, goe_entry: MockConfigEntry
) -> None:
    """A go-e charger's entities of 0.1.0 stay as they were."""
    await _check_upgrade(hass, entity_registry, goe_entry, "goe")


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_ovms_registry_is_kept(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, ovms_entry: MockConfigEntry
) -> None:
    """Both OVMS vehicles' entities of 0.1.0 stay as they were."""
    await _check_upgrade(hass, entity_registry, ovms_entry, "ovms")


async def _check_upgrade(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    entry: MockConfigEntry,
    provider: str,
) -> None:
    """The old entities keep their ids, the user's names and disabled flags.

    No entity is added or renamed: the set of (entity id, unique id) is the old one.
    """
    entry.add_to_hass(hass)
    old = {item["entity_id"]: item["unique_id"] for item in OLD_REGISTRY[provider]}
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
    assert now == old
    assert entity_registry.async_get(renamed).name == "My name"
    assert entity_registry.async_get(disabled).disabled_by is (
        er.RegistryEntryDisabler.USER
    )
    assert hass.states.get(renamed).name.endswith("My name")
