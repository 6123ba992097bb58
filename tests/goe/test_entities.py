"""Entities: registry and state snapshots, and writes that reach the simulator."""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.number import (
    ATTR_VALUE,
    DOMAIN as NUMBER_DOMAIN,
    SERVICE_SET_VALUE,
)
from homeassistant.components.select import (
    ATTR_OPTION,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.components.switch import DOMAIN as SWITCH_DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)
from syrupy.assertion import SnapshotAssertion

from custom_components.ev_cloud.const import DOMAIN
from tests.conftest import setup_entry
from tests.entities import registry_and_states
from tests.simulators.goe import CORE, PRO, GoeFault, SimCharger

CURRENT = "number.go_e_charger_012345_charge_current_limit"
CHARGE = "switch.go_e_charger_012345_charge"
FORCE = "select.go_e_charger_012345_force_state"
PHASES = "select.go_e_charger_012345_phase_mode"
CABLE_LOCK = "select.go_e_charger_012345_cable_lock"
CAR_STATE = "sensor.go_e_charger_012345_car_state"
REFRESH_COOLDOWN = timedelta(seconds=11)
# The coordinator's debounce is 10 s.


@pytest.fixture(autouse=True)
def _no_request_spacing(no_request_spacing: None) -> None:
    """Every test here sends commands to the charger under a frozen clock."""


@pytest.fixture
def frozen_time(freezer: FrozenDateTimeFactory) -> FrozenDateTimeFactory:
    """A fixed clock, so timestamps in snapshots do not change."""
    freezer.move_to("2026-11-01T12:00:00+00:00")
    return freezer


def _device_id(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    """The device registry id of the entry's only device."""
    registry = dr.async_get(hass)
    [device] = dr.async_entries_for_config_entry(registry, entry.entry_id)
    return device.id


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "frozen_time")
async def test_entities(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """Every entity of every platform: registry entry and state."""
    await setup_entry(hass, goe_entry)
    assert registry_and_states(hass, entity_registry, goe_entry.entry_id) == snapshot


@pytest.mark.parametrize("goe_model", [CORE])
@pytest.mark.usefixtures("entity_registry_enabled_by_default", "frozen_time")
async def test_core_entities(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """A CORE has no cable lock and no phase mode: no entity stands for them."""
    await setup_entry(hass, goe_entry)
    entities = registry_and_states(hass, entity_registry, goe_entry.entry_id)
    keys = {
        entity["unique_id"].removeprefix("goe_012345_") for entity in entities.values()
    }
    assert not keys & {"cable_unlock_status", "cable_lock_mode", "phase_mode"}
    assert {"force_state", "charge_current_limit", "charge"} <= keys
    assert entities == snapshot


@pytest.mark.usefixtures("frozen_time")
async def test_device(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
    snapshot: SnapshotAssertion,
) -> None:
    """The charger's device entry: maker, model, serial and firmware."""
    await setup_entry(hass, goe_entry)
    [device] = dr.async_entries_for_config_entry(device_registry, goe_entry.entry_id)
    assert {
        "identifiers": device.identifiers,
        "manufacturer": device.manufacturer,
        "model": device.model,
        "name": device.name,
        "serial_number": device.serial_number,
        "sw_version": device.sw_version,
    } == snapshot


async def test_less_useful_entities_disabled_by_default(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """Per-phase power and voltage, diagnostics and the phases select start disabled."""
    await setup_entry(hass, goe_entry)
    disabled = sorted(
        entry.entity_id.removeprefix("sensor.go_e_charger_012345_")
        for entry in er.async_entries_for_config_entry(
            entity_registry, goe_entry.entry_id
        )
        if entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    )
    assert disabled == [
        "circuit_board_temperature",
        "firmware",
        "power_l1",
        "power_l2",
        "power_l3",
        "select.go_e_charger_012345_phases",
        "voltage_l1",
        "voltage_l2",
        "voltage_l3",
        "wi_fi_signal",
    ]


async def test_charger_without_phase_switching(
    hass: HomeAssistant, goe_entry: MockConfigEntry, goe_charger: SimCharger
) -> None:
    """A charger that does not report `psm` gets no phase mode select."""
    goe_charger.state.pop("psm")
    await setup_entry(hass, goe_entry)
    assert hass.states.get(PHASES) is None
    assert hass.states.get(FORCE) is not None


async def test_set_charge_current(
    hass: HomeAssistant, goe_entry: MockConfigEntry, goe_charger: SimCharger
) -> None:
    """The number writes `amp`; its bounds come from the charger (6..ama)."""
    await setup_entry(hass, goe_entry)
    state = hass.states.get(CURRENT)
    assert (state.attributes["min"], state.attributes["max"]) == (6, 16)
    await hass.services.async_call(
        NUMBER_DOMAIN,
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: CURRENT, ATTR_VALUE: 10},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert goe_charger.set_log == [{"amp": 10}]
    assert hass.states.get(CURRENT).state == "10"
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            NUMBER_DOMAIN,
            SERVICE_SET_VALUE,
            {ATTR_ENTITY_ID: CURRENT, ATTR_VALUE: 20},
            blocking=True,
        )
    assert goe_charger.set_log == [{"amp": 10}]


@pytest.mark.parametrize(
    ("entity_id", "option", "written"),
    [
        (FORCE, "off", {"frc": 1}),
        (FORCE, "on", {"frc": 2}),
        (PHASES, "force_1", {"psm": 1}),
        (CABLE_LOCK, "always_lock", {"ust": 2}),
    ],
)
async def test_selects(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    entity_id: str,
    option: str,
    written: dict[str, int],
) -> None:
    """Each select writes its key and shows the new option."""
    await setup_entry(hass, goe_entry)
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: entity_id, ATTR_OPTION: option},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert goe_charger.set_log == [written]
    assert hass.states.get(entity_id).state == option


@pytest.mark.parametrize("goe_model", [CORE, PRO])
async def test_commands_on_keys_a_core_has(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Current and force state are written to a CORE or PRO as to a HOME."""
    await setup_entry(hass, goe_entry)
    await _set_current(hass, 10)
    await _after_command(hass, freezer)
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: FORCE, ATTR_OPTION: "off"},
        blocking=True,
    )
    await _after_command(hass, freezer)
    assert goe_charger.set_log == [{"amp": 10}, {"frc": 1}]
    assert hass.states.get(CURRENT).state == "10"
    assert hass.states.get(FORCE).state == "off"


async def _after_command(hass: HomeAssistant, freezer: FrozenDateTimeFactory) -> None:
    """Let the refresh that a command requested run.

    The first command refreshes at once; refreshes requested within the next 10 s
    are collapsed into one at the end of that cool-down.
    """
    freezer.tick(REFRESH_COOLDOWN)
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def test_charge_switch(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Off forces charging off (frc=1); on forces it on (frc=2)."""
    await setup_entry(hass, goe_entry)
    assert hass.states.get(CHARGE).state == "on"  # frc=0 and the car charges
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: CHARGE}, blocking=True
    )
    await _after_command(hass, freezer)
    assert hass.states.get(CHARGE).state == "off"
    assert hass.states.get(CAR_STATE).state == "wait_car"
    await hass.services.async_call(
        SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: CHARGE}, blocking=True
    )
    await _after_command(hass, freezer)
    assert goe_charger.set_log == [{"frc": 1}, {"frc": 2}]
    assert hass.states.get(CHARGE).state == "on"
    assert hass.states.get(CAR_STATE).state == "charging"


async def _set_current(hass: HomeAssistant, value: float) -> None:
    await hass.services.async_call(
        NUMBER_DOMAIN,
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: CURRENT, ATTR_VALUE: value},
        blocking=True,
    )


@pytest.mark.parametrize(
    ("fault", "translation_key"),
    [
        (GoeFault.STALE, "device_offline"),
        (GoeFault.CLOUD_API_DISABLED, "cloud_api_disabled"),
        (GoeFault.SERVER_ERROR, "command_failed"),
    ],
)
async def test_write_faults_are_translated(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    fault: GoeFault,
    translation_key: str,
) -> None:
    """A failed write raises a translated error and changes nothing."""
    await setup_entry(hass, goe_entry)
    goe_charger.fault = fault
    with pytest.raises(HomeAssistantError) as caught:
        await _set_current(hass, 8)
    assert caught.value.translation_domain == DOMAIN
    assert caught.value.translation_key == translation_key
    assert goe_charger.set_log == []


async def test_write_rejected_by_charger(
    hass: HomeAssistant, goe_entry: MockConfigEntry, goe_charger: SimCharger
) -> None:
    """A value the charger refuses is reported with the rejected key."""
    goe_charger.state["mca"] = 8  # the charger's real minimum...
    goe_charger.overrides["mca"] = 6  # ...while it reports a lower one
    await setup_entry(hass, goe_entry)
    with pytest.raises(HomeAssistantError) as caught:
        await _set_current(hass, 6)
    assert caught.value.translation_key == "command_rejected"
    assert caught.value.translation_placeholders == {
        "error": "The charger rejected amp"
    }


async def test_write_with_revoked_token_starts_reauth(
    hass: HomeAssistant, goe_entry: MockConfigEntry, goe_charger: SimCharger
) -> None:
    """A write refused for the token raises and asks for a new token."""
    await setup_entry(hass, goe_entry)
    goe_charger.token = "regenerated"
    with pytest.raises(HomeAssistantError) as caught:
        await _set_current(hass, 8)
    assert caught.value.translation_key == "invalid_auth"
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]


async def _charge_action(hass: HomeAssistant, service: str, device_id: str) -> None:
    await hass.services.async_call(
        DOMAIN, service, {"device_id": device_id}, blocking=True
    )


async def test_start_stop_actions_are_idempotent(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
) -> None:
    """Start on a charging charger and stop on a stopped one succeed.

    Commands follow each other without waiting for a refresh: the state read
    before the previous command must not decide whether the next one is sent.
    """
    await setup_entry(hass, goe_entry)
    charger_id = _device_id(hass, goe_entry)
    await _charge_action(hass, "start_charging", charger_id)
    assert hass.states.get(CAR_STATE).state == "charging"
    for service in (
        "stop_charging",
        "stop_charging",
        "start_charging",
        "stop_charging",
    ):
        await _charge_action(hass, service, charger_id)
    assert goe_charger.set_log == [
        {"frc": 2},
        {"frc": 1},
        {"frc": 1},
        {"frc": 2},
        {"frc": 1},
    ]
    assert goe_charger.status()["car"] == 3  # the last command won: not charging


async def test_actions_reject_bad_targets(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    device_registry: dr.DeviceRegistry,
) -> None:
    """Unknown devices, other integrations' devices, unloaded entries: clear errors."""
    await setup_entry(hass, goe_entry)
    charger_id = _device_id(hass, goe_entry)

    async def expect(device: str, key: str) -> None:
        with pytest.raises(ServiceValidationError) as caught:
            await _charge_action(hass, "start_charging", device)
        assert caught.value.translation_key == key

    await expect("no-such-device", "device_not_found")

    other_entry = MockConfigEntry(domain="other")
    other_entry.add_to_hass(hass)
    other = device_registry.async_get_or_create(
        config_entry_id=other_entry.entry_id, identifiers={("other", "x")}
    )
    await expect(other.id, "device_not_found")

    # A device of the entry that the service no longer lists has no coordinator.
    orphan = device_registry.async_get_or_create(
        config_entry_id=goe_entry.entry_id, identifiers={(DOMAIN, "goe_999999")}
    )
    await expect(orphan.id, "device_not_readable")

    # One bad target stops the whole call before anything is sent.
    with pytest.raises(ServiceValidationError):
        await hass.services.async_call(
            DOMAIN,
            "stop_charging",
            {"device_id": [charger_id, "no-such-device"]},
            blocking=True,
        )
    assert goe_charger.set_log == []

    await hass.config_entries.async_unload(goe_entry.entry_id)
    assert goe_entry.state is ConfigEntryState.NOT_LOADED
    await expect(charger_id, "entry_not_loaded")
