"""Fixtures every test uses; each provider's own are in tests/<provider>/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
import logging
from unittest.mock import PropertyMock, patch

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

# Import our package before Home Assistant's loader looks for custom integrations,
# so it finds the repository's custom_components instead of the harness's own.
from custom_components.ev_cloud.providers import PROVIDERS
from tests.secret_guard import SecretGuard, guarding

# Each provider's fixtures (tests/<name>/fixtures.py) serve every test, so that
# shared behaviour is tested once for all providers (see test_shared.py).
pytest_plugins = [
    "tests.scripted",
    *(f"tests.{name}.fixtures" for name in PROVIDERS),
]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Every test may load custom integrations."""


@pytest.fixture(autouse=True)
def secret_guard(caplog: pytest.LogCaptureFixture) -> Iterator[SecretGuard]:
    """No test may show a credential anywhere (see tests/secret_guard.py).

    Logs at DEBUG with tracebacks, errors, diagnostics, repair issues, events.
    """
    caplog.set_level(logging.DEBUG)
    with guarding() as guard:
        yield guard


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create every entity enabled, including those disabled by default."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


async def setup_entry(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Add the entry to hass and set it up."""
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
