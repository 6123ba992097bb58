"""Behaviour every provider shares, tested once for each registered provider.

Each provider's fixtures (tests/<name>/fixtures.py) provide `<name>_entry`: a
config entry that points at its simulator, not yet added to Home Assistant.
"""

from __future__ import annotations

from collections.abc import Callable
import json
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.json import JSONEncoder
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud import async_remove_config_entry_device
from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.diagnostics import async_get_config_entry_diagnostics
from custom_components.ev_cloud.providers import PROVIDERS
from tests.conftest import setup_entry
from tests.secret_guard import provider_secrets


@pytest.fixture(params=list(PROVIDERS))
def provider_entry(request: pytest.FixtureRequest) -> MockConfigEntry:
    """The entry of one provider after another."""
    entry: MockConfigEntry = request.getfixturevalue(f"{request.param}_entry")
    return entry


def _entities(hass: HomeAssistant, entry: MockConfigEntry) -> list[er.RegistryEntry]:
    return er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)


async def test_setup_forwards_only_the_providers_platforms(
    hass: HomeAssistant, provider_entry: MockConfigEntry
) -> None:
    """Every listed device is read; entities exist on the provider's platforms only."""
    await setup_entry(hass, provider_entry)
    assert provider_entry.state is ConfigEntryState.LOADED
    runtime = provider_entry.runtime_data
    assert runtime.coordinators
    assert set(runtime.coordinators) == runtime.listed
    platforms = {entity.domain for entity in _entities(hass, provider_entry)}
    # A platform may stay empty when its entities need a setting the fixture
    # leaves out (OVMS commands need a car's server password).
    assert platforms
    assert platforms <= {str(platform) for platform in runtime.provider.platforms}


async def test_entities_are_named_by_translation(
    hass: HomeAssistant, provider_entry: MockConfigEntry
) -> None:
    """Unique ids start with the device key; names come from translation keys."""
    await setup_entry(hass, provider_entry)
    keys = tuple(provider_entry.runtime_data.coordinators)
    for entity in _entities(hass, provider_entry):
        assert entity.unique_id.startswith(keys), entity.unique_id
        assert entity.translation_key, entity.entity_id
        assert entity.has_entity_name, entity.entity_id


async def test_unload_and_reload_keep_the_registry(
    hass: HomeAssistant, provider_entry: MockConfigEntry
) -> None:
    """Unloading makes entities unavailable; reloading brings the same ones back."""
    await setup_entry(hass, provider_entry)
    before = {(e.entity_id, e.unique_id) for e in _entities(hass, provider_entry)}
    assert await hass.config_entries.async_unload(provider_entry.entry_id)
    assert provider_entry.state is ConfigEntryState.NOT_LOADED
    for entity_id, _ in before:
        state = hass.states.get(entity_id)
        assert state is None or state.state == STATE_UNAVAILABLE
    assert await hass.config_entries.async_setup(provider_entry.entry_id)
    await hass.async_block_till_done()
    after = {(e.entity_id, e.unique_id) for e in _entities(hass, provider_entry)}
    assert after == before


async def test_only_unlisted_devices_can_be_removed(
    hass: HomeAssistant,
    provider_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A device the service lists stays; one it no longer lists goes at setup."""
    provider_entry.add_to_hass(hass)
    gone = device_registry.async_get_or_create(
        config_entry_id=provider_entry.entry_id,
        identifiers={(DOMAIN, f"{provider_entry.data['provider']}_GONE")},
    )
    await hass.config_entries.async_setup(provider_entry.entry_id)
    await hass.async_block_till_done()
    assert device_registry.async_get(gone.id) is None
    devices = dr.async_entries_for_config_entry(
        device_registry, provider_entry.entry_id
    )
    assert devices
    for device in devices:
        assert not await async_remove_config_entry_device(hass, provider_entry, device)
    assert await async_remove_config_entry_device(hass, provider_entry, gone)


async def test_diagnostics_hide_credentials_and_identities(
    hass: HomeAssistant, provider_entry: MockConfigEntry
) -> None:
    """No secret, device id, URL or title of the entry in a bug report."""
    await setup_entry(hass, provider_entry)
    result = await async_get_config_entry_diagnostics(hass, provider_entry)
    dumped = json.dumps(result, cls=JSONEncoder)
    hidden = [*provider_secrets(), "127.0.0.1", provider_entry.title]
    hidden += [
        coordinator.device.device_id
        for coordinator in provider_entry.runtime_data.coordinators.values()
    ]
    for value in hidden:
        assert value not in dumped, value
    assert len(result["devices"]) == len(provider_entry.runtime_data.coordinators)


# How many requests each polled provider's simulator received (EV-Monitor is a
# sink: nothing of it is read).
SERVICE_REQUESTS: dict[str, Callable[[Any], int]] = {
    "goe": lambda sim: sum(len(c.status_requests) for c in sim.chargers),
    "ovms": lambda sim: len(sim.requests),
    "evenergy": lambda sim: len(sim.requests),
    "evlinkha": lambda sim: len(sim.requests),
}


def test_every_polled_provider_counts_its_requests() -> None:
    """A provider added later joins the refresh test below (or is a sink)."""
    assert set(SERVICE_REQUESTS) | {"evmonitor"} == set(PROVIDERS)


@pytest.fixture(params=list(SERVICE_REQUESTS))
def polled(request: pytest.FixtureRequest) -> tuple[str, MockConfigEntry, Any]:
    """A polled provider's name, entry and simulator."""
    name: str = request.param
    entry: MockConfigEntry = request.getfixturevalue(f"{name}_entry")
    return name, entry, request.getfixturevalue(f"{name}_sim")


async def test_refresh_asked_for_reads_the_service(
    hass: HomeAssistant, polled: tuple[str, MockConfigEntry, Any]
) -> None:
    """`homeassistant.update_entity` reads the service, right after a poll too.

    Scheduled polls may share one read of the account per cycle; a refresh the
    user asks for must not be answered from it.
    """
    name, entry, sim = polled
    assert await async_setup_component(hass, "homeassistant", {})
    await setup_entry(hass, entry)
    for key, coordinator in entry.runtime_data.coordinators.items():
        entity_id = next(
            e.entity_id
            for e in _entities(hass, entry)
            if e.unique_id in (f"{key}_online", f"{key}_last_update")
        )
        before = SERVICE_REQUESTS[name](sim)
        await hass.services.async_call(
            "homeassistant", "update_entity", {"entity_id": entity_id}, blocking=True
        )
        await hass.async_block_till_done()
        assert SERVICE_REQUESTS[name](sim) > before, key
        assert coordinator.last_update_success


async def test_a_listed_device_is_named_as_when_read(
    hass: HomeAssistant, provider_entry: MockConfigEntry
) -> None:
    """A device that cannot be read at first gets the name (and entity ids) it has.

    Only accounts that list several devices have one that cannot be read while
    the others load; a single device that cannot be read fails setup instead.
    """
    await setup_entry(hass, provider_entry)
    runtime = provider_entry.runtime_data
    if runtime.account.device_list_interval is None:
        pytest.skip("the entry's devices never change: setup fails instead")
    for coordinator in runtime.coordinators.values():
        device = coordinator.device
        assert device.listed_name == device.device_info(coordinator.data.state)["name"]
