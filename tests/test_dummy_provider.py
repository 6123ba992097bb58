"""The provider contract, exercised by a provider that exists only in this test.

`dummy` is not shipped: it is registered by patching PROVIDERS and the flow
handler, the way a real provider is registered by its line in PROVIDERS and its
mixin in the flow class. Its device is fed by pushed data only (no polling), can
start and stop charging only while its state says so, asks for a repair issue and
reports a firmware version that changes: the shared pieces a push-based or
tiered provider relies on.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from unittest.mock import patch

from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.device_registry import DeviceInfo
import pytest
import voluptuous as vol

from custom_components.ev_cloud.api import EvCloudError, StaleDataError
from custom_components.ev_cloud.config_flow import EvCloudConfigFlow
from custom_components.ev_cloud.const import CONF_PROVIDER, DOMAIN
from custom_components.ev_cloud.descriptions import (
    DeviceEntities,
    battery_level,
    last_update,
    online,
)
from custom_components.ev_cloud.device import (
    ChargeControl,
    DeviceData,
    EvCloudAccount,
    EvCloudDevice,
    RepairIssue,
)
from custom_components.ev_cloud.models import EvCloudConfigEntry, Provider
from custom_components.ev_cloud.providers import PROVIDERS

NAME = "dummy"
TIME = datetime(2026, 11, 1, 12, tzinfo=UTC)


@dataclass(frozen=True)
class DummyState:
    """A vehicle's state as a service would push it."""

    soc: float
    firmware: str
    tier: str  # "free" cannot start or stop charging
    charging: bool = False


class DummyVehicle(EvCloudDevice[DummyState]):
    """A vehicle whose service pushes its data."""

    provider = NAME
    entities: DeviceEntities[DummyVehicle, DummyState]
    poll_policy = None  # never polled

    def __init__(self, device_id: str, first: DummyState) -> None:
        """The first reading is what the service sent at login."""
        super().__init__(device_id)
        self.first = first
        self.commands: list[str] = []
        self.state = first

    async def async_fetch(self) -> DeviceData[DummyState]:
        """Only the first reading comes from a request."""
        if self.first.tier == "gone":
            raise StaleDataError("no data")
        return DeviceData(self.first, online=True, data_time=TIME)

    def device_info(self, state: DummyState) -> DeviceInfo:
        """Firmware changes reach the device registry."""
        return DeviceInfo(
            identifiers={(DOMAIN, self.key)},
            name="Dummy car",
            sw_version=state.firmware,
        )

    def repair_issue(self, error: EvCloudError | None) -> RepairIssue | None:
        """Asks the user to act while the last read failed."""
        return RepairIssue("cloud_api_disabled") if error else None

    @property
    def charge_control(self) -> ChargeControl[DummyState] | None:
        """Only paying customers may start and stop charging."""
        return self if self.state.tier != "free" else None

    async def async_start_charging(self, state: DummyState) -> None:
        """Remember the command."""
        self.commands.append("start")

    async def async_stop_charging(self, state: DummyState) -> None:
        """Remember the command."""
        self.commands.append("stop")


DummyVehicle.entities = DeviceEntities(
    sensor=(last_update(), battery_level(lambda state: state.soc)),
    binary_sensor=(online(),),
)


class DummyAccount(EvCloudAccount):
    """One vehicle; pushed payloads are routed to it by vehicle id."""

    def __init__(self, entry: EvCloudConfigEntry) -> None:
        """The entry's one vehicle."""
        self.vehicle = DummyVehicle(
            "car1", DummyState(soc=50, firmware="1.0", tier=entry.data["tier"])
        )

    async def async_list_devices(self) -> list[EvCloudDevice[Any]]:
        """The one vehicle."""
        return [self.vehicle]

    def receive(self, vehicle_id: str, state: DummyState) -> bool:
        """A webhook payload: only a known vehicle takes it."""
        if vehicle_id != self.vehicle.device_id:
            return False
        self.vehicle.state = state
        return self.vehicle.push(DeviceData(state, online=True, data_time=TIME))


class DummyFlow(EvCloudConfigFlow):
    """The dummy's steps; a real provider's mixin sits in the flow class."""

    async def async_step_dummy(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """No credentials: the tier is all the form asks."""
        if user_input is None:
            return self.async_show_form(step_id=NAME)
        return self.async_create_entry(
            title="Dummy", data={CONF_PROVIDER: NAME, "tier": user_input["tier"]}
        )


DUMMY = Provider(
    name=NAME,
    create_account=lambda hass, entry: DummyAccount(entry),
    entities=(DummyVehicle.entities,),
    poll_policy=lambda data: None,
    redact=frozenset({"tier"}),
    # An option of the provider's own: how many commands a day the tier allows.
    extra_options=lambda data: {vol.Required("commands_per_day", default=10): int},
)


@pytest.fixture
def dummy_registered() -> Iterator[None]:
    """Register the dummy the way a provider registers itself."""
    with (
        patch.dict(PROVIDERS, {NAME: DUMMY}),
        patch.dict(config_entries.HANDLERS, {DOMAIN: DummyFlow}),
    ):
        yield


async def _add_dummy(hass: HomeAssistant, tier: str) -> EvCloudConfigEntry:
    """Through the menu and the dummy's form, as a user would."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert NAME in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": NAME}
    )
    assert result["type"] is FlowResultType.FORM
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"tier": tier}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    entry: EvCloudConfigEntry = result["result"]
    return entry


@pytest.mark.usefixtures("dummy_registered")
async def test_dummy_gets_entities_and_pushed_data(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Menu, entities with shared keys, pushed readings, device info kept current."""
    entry = await _add_dummy(hass, "pro")
    assert entry.state is ConfigEntryState.LOADED
    entity_ids = {
        e.entity_id
        for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
    }
    assert entity_ids == {
        "sensor.dummy_car_battery",
        "sensor.dummy_car_last_update",
        "binary_sensor.dummy_car_online",
    }
    assert hass.states.get("sensor.dummy_car_battery").state == "50"
    coordinator = entry.runtime_data.coordinators["dummy_car1"]
    assert coordinator.update_interval is None  # pushed, never polled

    account = entry.runtime_data.account
    assert isinstance(account, DummyAccount)
    pushed = DummyState(soc=61, firmware="1.1", tier="pro")
    assert account.receive("car1", pushed)
    await hass.async_block_till_done()
    assert hass.states.get("sensor.dummy_car_battery").state == "61"
    [device] = dr.async_entries_for_config_entry(device_registry, entry.entry_id)
    assert device.sw_version == "1.1"

    # A payload for a vehicle the account does not have changes nothing.
    assert not account.receive("car9", replace(pushed, soc=5))
    await hass.async_block_till_done()
    assert hass.states.get("sensor.dummy_car_battery").state == "61"

    # After unloading, pushes have nowhere to go.
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert not account.vehicle.push(DeviceData(pushed, online=True, data_time=TIME))


@pytest.mark.usefixtures("dummy_registered")
async def test_charge_control_follows_the_device_instance(hass: HomeAssistant) -> None:
    """A capability that depends on the tier: free cannot, pro can."""
    free = await _add_dummy(hass, "free")
    [device] = dr.async_entries_for_config_entry(dr.async_get(hass), free.entry_id)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "start_charging", {"device_id": device.id}, blocking=True
        )
    assert caught.value.translation_key == "charge_control_not_supported"

    account = free.runtime_data.account
    assert isinstance(account, DummyAccount)
    account.receive("car1", DummyState(soc=50, firmware="1.0", tier="pro"))
    await hass.async_block_till_done()
    await hass.services.async_call(
        DOMAIN, "start_charging", {"device_id": device.id}, blocking=True
    )
    assert account.vehicle.commands == ["start"]


@pytest.mark.usefixtures("dummy_registered")
async def test_repair_issue_follows_the_last_read(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    """The device's repair issue appears with a failed read and goes with a good one."""
    entry = await _add_dummy(hass, "pro")
    coordinator = entry.runtime_data.coordinators["dummy_car1"]
    account = entry.runtime_data.account
    assert isinstance(account, DummyAccount)
    issue_id = f"{entry.entry_id}_dummy_car1_cloud_api_disabled"

    account.vehicle.first = replace(account.vehicle.first, tier="gone")
    # Stale with nothing kept by the service: the read fails.
    coordinator.data = None  # type: ignore[assignment]
    await coordinator.async_refresh()
    assert not coordinator.last_update_success
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None

    account.vehicle.first = replace(account.vehicle.first, tier="pro")
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


@pytest.mark.usefixtures("dummy_registered")
async def test_options_are_the_providers_own(hass: HomeAssistant) -> None:
    """No intervals for a push-only device; the provider's own option is kept."""
    entry = await _add_dummy(hass, "pro")
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert [str(key) for key in result["data_schema"].schema] == ["commands_per_day"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"commands_per_day": 25}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert dict(entry.options) == {"commands_per_day": 25}
