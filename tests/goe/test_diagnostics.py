"""Diagnostics: useful for bug reports, free of secrets and serial numbers."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from tests.conftest import setup_entry
from tests.goe.fixtures import SERIAL, TOKEN
from tests.simulators.goe import CORE, HOME_ONLY_KEYS


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    goe_entry: MockConfigEntry,
    snapshot: SnapshotAssertion,
) -> None:
    """The entry and the latest reading, with token, serial and URL redacted."""
    assert await async_setup_component(hass, "diagnostics", {})
    await setup_entry(hass, goe_entry)
    result = await get_diagnostics_for_config_entry(hass, hass_client, goe_entry)
    dumped = json.dumps(result)
    for secret in (TOKEN, SERIAL, "127.0.0.1"):
        assert secret not in dumped
    assert result == snapshot(
        exclude=props("created_at", "modified_at", "data_time", "entry_id")
    )


@pytest.mark.parametrize("goe_model", [CORE])
async def test_diagnostics_name_the_keys_a_core_lacks(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    goe_entry: MockConfigEntry,
) -> None:
    """A bug report says which keys the charger lacks (and so has no entity for)."""
    assert await async_setup_component(hass, "diagnostics", {})
    await setup_entry(hass, goe_entry)
    result = await get_diagnostics_for_config_entry(hass, hass_client, goe_entry)
    [device] = result["devices"]
    assert device["state"]["missing_keys"] == sorted(HOME_ONLY_KEYS)
    assert device["state"]["cable_lock_mode"] is None
