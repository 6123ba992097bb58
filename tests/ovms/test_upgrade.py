"""An installation of release 0.1.0 upgrades without a renamed or lost entity."""

from __future__ import annotations

from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from tests.upgrade import check_upgrade, load_registry

OLD_REGISTRY = load_registry(Path(__file__).parent / "registry_0_1_0.json")
# For evcc (docs/evcc.md).
ADDED_SINCE = frozenset(
    f"sensor.ovms_{car}_{key}"
    for car in ("demo", "roadster")
    for key in ("charge_finish_time", "iec_61851_status")
)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_registry_of_0_1_0_is_kept(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, ovms_entry: MockConfigEntry
) -> None:
    """Both OVMS vehicles' entities of 0.1.0 stay as they were."""
    await check_upgrade(hass, entity_registry, ovms_entry, OLD_REGISTRY, ADDED_SINCE)
