"""Many devices polling through one request budget: the shared behaviour.

`fleet` exists only in this test (registered by patching PROVIDERS, as a real
provider is by its line there). Faked on purpose: its vehicles' polls take two
requests each from one small RequestBudget and send nothing, so that the shared
layer's answers to a full budget show at small numbers. The real providers meet
their services' limits against the simulators in tests/bench.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
import logging
from typing import Any
from unittest.mock import patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.ev_cloud.api.budget import RequestBudget
from custom_components.ev_cloud.const import CONF_PROVIDER, DOMAIN
from custom_components.ev_cloud.descriptions import DeviceEntities, battery_level
from custom_components.ev_cloud.device import (
    DeviceData,
    EvCloudAccount,
    EvCloudDevice,
    PollPolicy,
)
from custom_components.ev_cloud.models import EvCloudConfigEntry, Provider
from custom_components.ev_cloud.providers import PROVIDERS

NAME = "fleet"
REQUESTS_PER_POLL = 2
POLICY = PollPolicy(active=60, idle=60, min_active=60, min_idle=60)


@dataclass(frozen=True)
class FleetState:
    """What a poll reads."""

    soc: float


class FleetVehicle(EvCloudDevice[FleetState]):
    """A vehicle whose poll takes two requests from the account's budget."""

    provider = NAME
    entities: DeviceEntities[FleetVehicle, FleetState] = DeviceEntities(
        sensor=(battery_level(lambda state: state.soc),)
    )
    poll_policy = POLICY

    def __init__(self, device_id: str, budget: RequestBudget) -> None:
        """Poll through `budget`."""
        super().__init__(device_id)
        self.budget = budget
        self.soc = 50.0
        self.polls = 0

    async def async_fetch(self) -> DeviceData[FleetState]:
        """Take the poll's requests at once, then "send" them."""
        with self.budget.prepaid(REQUESTS_PER_POLL, self.key):
            for _ in range(REQUESTS_PER_POLL):
                self.budget.acquire()
        self.polls += 1
        return DeviceData(FleetState(self.soc), online=True, data_time=dt_util.utcnow())

    def device_info(self, state: FleetState) -> DeviceInfo:
        """One vehicle."""
        return DeviceInfo(identifiers={(DOMAIN, self.key)}, name=f"Fleet {self.key}")


class FleetAccount(EvCloudAccount):
    """`vehicles` vehicles sharing a budget of `burst` requests, 60 a minute."""

    def __init__(self, entry: EvCloudConfigEntry) -> None:
        """The budget and the vehicles the entry's data asks for."""
        self.budget = RequestBudget(
            burst=entry.data["burst"],
            per_minute=entry.data["per_minute"],
            maximum=entry.data["burst"],
        )
        self.vehicles = [
            FleetVehicle(f"car{number}", self.budget)
            for number in range(entry.data["vehicles"])
        ]

    async def async_list_devices(self) -> list[EvCloudDevice[Any]]:
        """Every vehicle."""
        return list(self.vehicles)


FLEET = Provider(
    name=NAME,
    create_account=lambda hass, entry: FleetAccount(entry),
    entities=(FleetVehicle.entities,),
    poll_policy=lambda data: POLICY,
)


@pytest.fixture(autouse=True)
def fleet_registered() -> Iterator[None]:
    """Register the fleet provider."""
    with patch.dict(PROVIDERS, {NAME: FLEET}):
        yield


async def _setup(
    hass: HomeAssistant, vehicles: int, burst: int, per_minute: float = 60
) -> tuple[EvCloudConfigEntry, FleetAccount]:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Fleet",
        data={
            CONF_PROVIDER: NAME,
            "vehicles": vehicles,
            "burst": burst,
            "per_minute": per_minute,
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    account = entry.runtime_data.account
    assert isinstance(account, FleetAccount)
    return entry, account


async def _pass(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float
) -> None:
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def test_devices_the_budget_puts_off_at_setup_follow_soon(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Setup reads what fits; the others are read as the budget refills, quietly."""
    caplog.set_level(logging.INFO)
    entry, _ = await _setup(hass, vehicles=5, burst=4)
    assert len(entry.runtime_data.coordinators) == 2
    assert hass.states.get("sensor.fleet_fleet_car4_battery") is None
    for _ in range(4):
        await _pass(hass, freezer, 3)
    assert len(entry.runtime_data.coordinators) == 5
    assert hass.states.get("sensor.fleet_fleet_car4_battery").state == "50.0"
    assert "cannot be read yet" not in caplog.text
    assert "new device" not in caplog.text


async def test_pending_first_reads_end_with_the_entry(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """An entry unloaded before its put-off devices were read reads none later."""
    entry, account = await _setup(hass, vehicles=3, burst=2)
    runtime = entry.runtime_data
    assert runtime.cancel_read_later is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert runtime.cancel_read_later is None
    await _pass(hass, freezer, 60)
    assert [vehicle.polls for vehicle in account.vehicles] == [1, 0, 0]


async def test_a_put_off_poll_keeps_showing_its_values(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """The budget is empty when a poll is due: the values stay, the poll follows."""
    entry, account = await _setup(hass, vehicles=1, burst=4)
    [vehicle] = account.vehicles
    coordinator = entry.runtime_data.coordinators[vehicle.key]
    account.budget.acquire()
    account.budget.acquire()  # another user of the service's limit took it all
    vehicle.soc = 60.0
    await _pass(hass, freezer, 1)  # one request back: the poll needs two
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    assert hass.states.get("sensor.fleet_fleet_car0_battery").state == "50.0"
    assert coordinator.update_interval == timedelta(seconds=2)  # 1 s, one spare
    await _pass(hass, freezer, 2)
    assert vehicle.polls == 2
    assert hass.states.get("sensor.fleet_fleet_car0_battery").state == "60.0"


async def test_a_poll_put_off_for_long_fails(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """Put off for more than a minute, the device shows it cannot be read."""
    entry, account = await _setup(hass, vehicles=1, burst=2, per_minute=1)
    [vehicle] = account.vehicles
    coordinator = entry.runtime_data.coordinators[vehicle.key]
    await coordinator.async_refresh()  # both requests are 60 s away
    assert not coordinator.last_update_success
    assert hass.states.get("sensor.fleet_fleet_car0_battery").state == (
        STATE_UNAVAILABLE
    )


async def test_unchanged_values_write_no_state(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory
) -> None:
    """A new reading with the same value writes nothing; a new value is written."""
    entry, account = await _setup(hass, vehicles=1, burst=10)
    [vehicle] = account.vehicles
    coordinator = entry.runtime_data.coordinators[vehicle.key]
    entity_id = "sensor.fleet_fleet_car0_battery"
    # A state written unchanged is the same object, with a new `last_reported`.
    reported = hass.states.get(entity_id).last_reported
    listeners = 0

    def count() -> None:
        nonlocal listeners
        listeners += 1

    coordinator.async_add_listener(count)
    freezer.tick(1)  # a later data time: the reading is new, its value is not
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert (vehicle.polls, listeners) == (2, 1)
    assert hass.states.get(entity_id).last_reported == reported
    vehicle.soc = 51.0
    await coordinator.async_refresh()
    assert hass.states.get(entity_id).state == "51.0"
