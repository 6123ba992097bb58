"""Diagnostics: useful for bug reports, free of secrets and serial numbers."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from tests.conftest import setup_entry
from tests.goe.fixtures import SERIAL, TOKEN


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
