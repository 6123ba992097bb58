"""An installation of release 0.1.0 upgrades without a renamed or lost entity."""

from __future__ import annotations

from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.upgrade import check_upgrade, load_registry

OLD_REGISTRY = load_registry(Path(__file__).parent / "registry_0_1_0.json")
# For evcc (docs/evcc.md), and the charging sessions (sessions.py).
ADDED_SINCE = frozenset(
    {
        "sensor.go_e_charger_012345_iec_61851_status",
        "select.go_e_charger_012345_phases",
        "sensor.go_e_charger_012345_last_charging_session",
    }
)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_registry_of_0_1_0_is_kept(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, goe_entry: MockConfigEntry
) -> None:
    """A go-e charger's entities of 0.1.0 stay as they were."""
    await check_upgrade(hass, entity_registry, goe_entry, OLD_REGISTRY, ADDED_SINCE)
