"""A device the service lists but that cannot be read is shown, never silently left out.

The provider here exists only in this test (registered by patching PROVIDERS, as
in test_dummy_provider.py): an account of two cars, listed every ten minutes,
whose second car's reads fail until the test lets them succeed. Its failures
are raised by the test's own device, not by a service.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import logging
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.ev_cloud.api import CommunicationError
from custom_components.ev_cloud.const import CONF_PROVIDER, DOMAIN
from custom_components.ev_cloud.descriptions import (
    DeviceEntities,
    EvCloudSensorEntityDescription,
    battery_level,
    online,
)
from custom_components.ev_cloud.device import (
    DeviceData,
    EvCloudAccount,
    EvCloudDevice,
    PollPolicy,
)
from custom_components.ev_cloud.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.ev_cloud.models import Provider
from custom_components.ev_cloud.providers import PROVIDERS

NAME = "flaky"
TIME = datetime(2026, 11, 1, 12, tzinfo=UTC)
LISTING = timedelta(minutes=10)


@dataclass(frozen=True)
class CarState:
    """What the cars report."""

    soc: float
    odometer: float | None


class Car(EvCloudDevice[CarState]):
    """A car whose reads fail while `failing` is set."""

    provider = NAME
    entities: DeviceEntities[Car, CarState]
    poll_policy = PollPolicy(active=60, idle=300, min_active=30, min_idle=60)

    def __init__(self, device_id: str) -> None:
        """Readable until told otherwise."""
        super().__init__(device_id)
        self.failing = False
        self.reads = 0

    async def async_fetch(self) -> DeviceData[CarState]:
        """The car's reading, or the failure the test asks for."""
        self.reads += 1
        if self.failing:
            raise CommunicationError("The test's service refuses this car")
        return DeviceData(CarState(soc=60, odometer=1234), True, TIME)

    def device_info(self, state: CarState) -> DeviceInfo:
        """The car's own name, known once it is read."""
        return DeviceInfo(
            identifiers={(DOMAIN, self.key)},
            name=f"Car {self.device_id}",
            manufacturer="Test",
        )


Car.entities = DeviceEntities(
    sensor=(
        battery_level(lambda state: state.soc),
        # Only cars that report an odometer have one: known from a reading.
        EvCloudSensorEntityDescription(
            key="odometer",
            translation_key="odometer",
            value_fn=lambda data: data.state.odometer,
            supported_fn=lambda state: state.odometer is not None,
        ),
    ),
    binary_sensor=(online(),),
)


class Account(EvCloudAccount):
    """Two cars, listed again every ten minutes."""

    device_list_interval = LISTING

    def __init__(self) -> None:
        """Both cars are listed."""
        self.cars = {car_id: Car(car_id) for car_id in ("one", "two")}
        self.listed = ["one", "two"]

    async def async_list_devices(self) -> list[EvCloudDevice[Any]]:
        """The cars listed now."""
        return [self.cars[car_id] for car_id in self.listed]


ACCOUNTS: list[Account] = []
# The cars that fail from the start.
FAILING: set[str] = set()


def _create(*_args: Any) -> Account:
    account = Account()
    for car_id in FAILING:
        account.cars[car_id].failing = True
    ACCOUNTS.append(account)
    return account


FLAKY = Provider(
    name=NAME,
    create_account=_create,
    entities=(Car.entities,),
    poll_policy=lambda data: Car.poll_policy,
)


@pytest.fixture
def flaky() -> Iterator[None]:
    """Register the provider the way a provider registers itself."""
    ACCOUNTS.clear()
    FAILING.clear()
    FAILING.add("two")
    with patch.dict(PROVIDERS, {NAME: FLAKY}):
        yield


async def _setup(hass: HomeAssistant) -> tuple[MockConfigEntry, Account]:
    entry = MockConfigEntry(domain=DOMAIN, title="Flaky", data={CONF_PROVIDER: NAME})
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry, ACCOUNTS[-1]


async def _next_listing(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    freezer.tick(LISTING)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


def _car_device(
    device_registry: dr.DeviceRegistry, entry: MockConfigEntry, car_id: str
) -> dr.DeviceEntry | None:
    return next(
        (
            device
            for device in dr.async_entries_for_config_entry(
                device_registry, entry.entry_id
            )
            if (DOMAIN, f"{NAME}_{car_id}") in device.identifiers
        ),
        None,
    )


@pytest.mark.usefixtures("flaky")
async def test_unreadable_device_is_shown_with_its_reason(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
    device_registry: dr.DeviceRegistry,
    entity_registry: er.EntityRegistry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """Device and entities at once; the reason logged once, a repair when it lasts.

    Before, the car had no device and no entity, and the reason went to the log
    at info level only.
    """
    entry, account = await _setup(hass)
    assert entry.state is ConfigEntryState.LOADED

    device = _car_device(device_registry, entry, "two")
    assert device is not None
    assert device.name == "two"  # as listed, until it is read
    battery = entity_registry.async_get_entity_id(
        "sensor", DOMAIN, "flaky_two_battery_level"
    )
    connected = entity_registry.async_get_entity_id(
        "binary_sensor", DOMAIN, "flaky_two_online"
    )
    assert battery is not None
    assert connected is not None
    assert hass.states.get(battery).state == STATE_UNAVAILABLE
    assert hass.states.get(connected).state == STATE_UNAVAILABLE
    # Whether it has an odometer only a reading can tell.
    assert (
        entity_registry.async_get_entity_id("sensor", DOMAIN, "flaky_two_odometer")
        is None
    )
    # The readable car is complete.
    assert entity_registry.async_get_entity_id("sensor", DOMAIN, "flaky_one_odometer")

    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and "flaky_two" in r.getMessage()
    ]
    assert warnings == [
        "Flaky: flaky_two cannot be read yet; its entities are unavailable until "
        "it can: The test's service refuses this car"
    ]
    issue_id = f"{entry.entry_id}_flaky_two_device_unreadable"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None

    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["devices_unread"] == [
        {"provider": NAME, "error": "The test's service refuses this car"}
    ]

    # Still unreadable at the next listing: a repair, and no second warning.
    caplog.clear()
    reads = account.cars["two"].reads
    await _next_listing(hass, freezer)
    assert account.cars["two"].reads == reads + 1  # once per listing, no polling
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "device_unreadable"
    assert issue.translation_placeholders == {
        "name": "Flaky",
        "device_id": "two",
        "error": "The test's service refuses this car",
    }
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name != "asyncio"  # slow-step notes
    ]

    # The user renames it meanwhile; then the service serves it again.
    device_registry.async_update_device(device.id, name_by_user="Blue car")
    account.cars["two"].failing = False
    await _next_listing(hass, freezer)
    assert hass.states.get(battery).state == "60"
    assert hass.states.get(connected).state == "on"
    odometer = entity_registry.async_get_entity_id(
        "sensor", DOMAIN, "flaky_two_odometer"
    )
    assert odometer is not None
    assert hass.states.get(odometer).state == "1234"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    device = _car_device(device_registry, entry, "two")
    assert device is not None
    assert (device.name, device.name_by_user, device.manufacturer) == (
        "Car two",
        "Blue car",
        "Test",
    )
    assert "flaky_two" in entry.runtime_data.coordinators
    assert not entry.runtime_data.unread
    assert (await async_get_config_entry_diagnostics(hass, entry))[
        "devices_unread"
    ] == []

    # Now read, it is polled at its own interval.
    reads = account.cars["two"].reads
    freezer.tick(timedelta(seconds=301))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert account.cars["two"].reads == reads + 1


@pytest.mark.usefixtures("flaky")
async def test_refresh_asked_by_the_user_reads_an_unread_device(
    hass: HomeAssistant, entity_registry: er.EntityRegistry
) -> None:
    """`homeassistant.update_entity` tries it at once, not at the next listing."""
    assert await async_setup_component(hass, "homeassistant", {})
    _, account = await _setup(hass)
    battery = entity_registry.async_get_entity_id(
        "sensor", DOMAIN, "flaky_two_battery_level"
    )
    assert battery is not None
    account.cars["two"].failing = False
    await hass.services.async_call(
        "homeassistant", "update_entity", {"entity_id": battery}, blocking=True
    )
    await hass.async_block_till_done()
    assert hass.states.get(battery).state == "60"
    assert entity_registry.async_get_entity_id("sensor", DOMAIN, "flaky_two_odometer")


@pytest.mark.usefixtures("flaky")
async def test_unread_device_that_is_no_longer_listed_goes(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Only what the service lists stays."""
    entry, account = await _setup(hass)
    assert _car_device(device_registry, entry, "two") is not None
    account.listed = ["one"]
    await _next_listing(hass, freezer)
    assert not entry.runtime_data.unread
    assert _car_device(device_registry, entry, "two") is None


@pytest.mark.usefixtures("flaky")
async def test_setup_retries_when_no_device_can_be_read(hass: HomeAssistant) -> None:
    """With nothing readable the entry is not ready, the reason on its card."""
    FAILING.add("one")
    entry, _ = await _setup(hass)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason == "Updating failed: The test's service refuses this car"
    assert not entry.runtime_data.unread
