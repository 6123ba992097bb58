"""EV-Monitor's config flow, reauth, reconfigure and options, against the simulator."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData, section
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.flow import SECRET_PLACEHOLDER
from custom_components.ev_cloud.providers.evmonitor.account import EvMonitorAccount
from tests.conftest import setup_entry
from tests.evmonitor.fixtures import BODY_MODES, EMAIL, PASSWORD, SOURCE, rocket
from tests.simulators.evmonitor import EvMonitorBodyMode, EvMonitorSimulator

NEW_PASSWORD = "evm-sim-new-password-0002"
FIELDS = (
    "soc",
    "range",
    "speed",
    "odometer",
    "power",
    "battery_temperature",
    "charging",
    "location",
)
# The entities of the OVMS fixture's charging car, as the logbook maps them.
DEMO_MAPPING = {
    "soc": "sensor.ovms_demo_battery",
    "range": "sensor.ovms_demo_estimated_range",
    "speed": "sensor.ovms_demo_speed",
    "odometer": "sensor.ovms_demo_odometer",
    "power": "sensor.ovms_demo_charge_power",
    "battery_temperature": "sensor.ovms_demo_battery_temperature",
    "charging": "binary_sensor.ovms_demo_charging",
    "location": "device_tracker.ovms_demo_location",
}


@pytest.fixture(params=BODY_MODES, ids=str)
def evmonitor_body_mode(request: pytest.FixtureRequest) -> EvMonitorBodyMode:
    """Each test here: a service reading form fields and JSON, one reading JSON only."""
    return EvMonitorBodyMode(request.param)


# --- helpers -------------------------------------------------------------------------


def _account_input(sim: EvMonitorSimulator, **overrides: Any) -> dict[str, Any]:
    """The account form's answers for the fixture's account on the simulator."""
    return {
        "username": EMAIL,
        "password": PASSWORD,
        "advanced": {"server_url": sim.url},
        **overrides,
    }


def _entry_data(sim: EvMonitorSimulator, **overrides: Any) -> dict[str, Any]:
    return {
        "provider": "evmonitor",
        "server_url": sim.url,
        "username": EMAIL,
        "password": PASSWORD,
        "vehicle": rocket(sim).id,
        **overrides,
    }


def _fields(result: ConfigFlowResult) -> set[str]:
    return {str(key) for key in result["data_schema"].schema}


def _suggested(result: ConfigFlowResult) -> dict[str, Any]:
    """The suggested values of a form, sections as nested dicts."""
    values: dict[str, Any] = {}
    for key, value in result["data_schema"].schema.items():
        if isinstance(value, section):
            values[str(key)] = {
                str(inner): inner.description["suggested_value"]
                for inner in value.schema.schema
                if inner.description and "suggested_value" in inner.description
            }
        elif key.description and "suggested_value" in key.description:
            values[str(key)] = key.description["suggested_value"]
    return values


async def _open_account_form(hass: HomeAssistant) -> ConfigFlowResult:
    """The first menu, then EV-Monitor's account form."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] is FlowResultType.MENU
    assert "evmonitor" in result["menu_options"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evmonitor"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "evmonitor"
    return result


async def _to_source_step(
    hass: HomeAssistant, sim: EvMonitorSimulator, source: str
) -> ConfigFlowResult:
    """Sign in and pick The Rocket, fed by a device or by entities."""
    result = await _open_account_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _account_input(sim)
    )
    assert result["step_id"] == "evmonitor_vehicle"
    return await hass.config_entries.flow.async_configure(
        result["flow_id"], {"vehicle": rocket(sim).id, "source": source}
    )


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, name: str) -> str:
    registry = dr.async_get(hass)
    return next(
        device.id
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if device.name == name
    )


def _account(entry: MockConfigEntry) -> EvMonitorAccount:
    account = entry.runtime_data.account
    assert isinstance(account, EvMonitorAccount)
    return account


async def _tick(
    hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float
) -> None:
    """Let `seconds` pass for Home Assistant."""
    freezer.tick(timedelta(seconds=seconds))
    async_fire_time_changed(hass)
    await hass.async_block_till_done(wait_background_tasks=True)


async def _unload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Unload while the simulator answers: the last upload goes through."""
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


# --- config flow ---------------------------------------------------------------------


async def test_flow_with_a_vehicle_of_ev_cloud_as_the_source(
    hass: HomeAssistant,
    evmonitor_sim: EvMonitorSimulator,
    evmonitor_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
) -> None:
    """Account, vehicle, then a device: one without mappable entities is refused.

    The logbook device of another EV-Monitor entry (only diagnostic sensors) and
    an id no device has are refused; OVMS's charging car is taken, and the new
    entry reads its entities.
    """
    await setup_entry(hass, ovms_entry)
    # Another logbook of the account, whose device has nothing to map.
    other = evmonitor_sim.add_vehicle(EMAIL, "The Comet")
    other_entry = MockConfigEntry(
        domain=DOMAIN,
        title="EV-Monitor The Comet",
        unique_id=other.id,
        data=_entry_data(evmonitor_sim, vehicle=other.id),
        options=dict(evmonitor_entry.options),
    )
    await setup_entry(hass, other_entry)
    logbook_device = _device_id(hass, other_entry, "EV-Monitor The Comet")

    result = await _open_account_form(hass)
    assert result["description_placeholders"] == {
        "default_url": "https://ev-monitor.com"
    }
    assert _suggested(result) == {"advanced": {"server_url": "https://ev-monitor.com"}}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _account_input(evmonitor_sim)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "evmonitor_vehicle"
    schema = {str(key): value for key, value in result["data_schema"].schema.items()}
    assert schema["vehicle"].config["options"] == [
        {"value": rocket(evmonitor_sim).id, "label": "The Rocket"},
        {"value": other.id, "label": "The Comet"},
    ]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"vehicle": rocket(evmonitor_sim).id, "source": "device"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "evmonitor_device"
    assert _fields(result) == {"source_device"}

    for device_id in (logbook_device, "no-such-device"):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"source_device": device_id}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"source_device": "no_mappable_entities"}

    demo = _device_id(hass, ovms_entry, "OVMS DEMO")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"source_device": demo}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "EV-Monitor The Rocket"
    assert result["data"] == _entry_data(evmonitor_sim)
    assert result["options"] == {"source_device": demo}
    entry = result["result"]
    assert entry.unique_id == rocket(evmonitor_sim).id
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert _account(entry).mapping == DEMO_MAPPING
    # The car's state was taken at once: one snapshot waits for the next upload,
    # which unloading sends.
    assert len(_account(entry).queue) == 1
    await _unload(hass, entry)
    [dataset] = evmonitor_sim.datasets_of(rocket(evmonitor_sim).id)
    assert dataset.general["state"] == 10  # the car charges (AC)
    assert dataset.general["batt"][0]["soc"] == 80


async def test_flow_with_chosen_entities_as_the_source(
    hass: HomeAssistant, evmonitor_sim: EvMonitorSimulator
) -> None:
    """Entities per field: one picker per field; none picked is refused."""
    result = await _to_source_step(hass, evmonitor_sim, "entities")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "evmonitor_entities"
    assert _fields(result) == set(FIELDS)

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "no_source"}

    chosen = {"soc": SOURCE["soc"], "location": SOURCE["location"]}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], chosen)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "EV-Monitor The Rocket"
    assert result["data"] == _entry_data(evmonitor_sim)
    assert result["options"] == chosen
    assert result["result"].unique_id == rocket(evmonitor_sim).id
    await hass.async_block_till_done()
    assert _account(result["result"]).mapping == chosen


async def test_flow_entity_pickers_keep_to_their_domains(
    hass: HomeAssistant, evmonitor_sim: EvMonitorSimulator
) -> None:
    """A location must be a tracker or a person; a sensor there is invalid."""
    result = await _to_source_step(hass, evmonitor_sim, "entities")
    with pytest.raises(InvalidData) as caught:
        await hass.config_entries.flow.async_configure(
            result["flow_id"], {"location": SOURCE["soc"]}
        )
    assert "location" in caught.value.schema_errors


@pytest.mark.parametrize(
    ("user_input", "errors"),
    [
        ({"password": "wrong"}, {"base": "invalid_auth"}),
        ({"username": "stranger@example.com"}, {"base": "invalid_auth"}),
        ({"advanced": {"server_url": "ev-monitor.com"}}, {"advanced": "invalid_url"}),
        ({"advanced": {"server_url": "ftp://127.0.0.1"}}, {"advanced": "invalid_url"}),
    ],
)
async def test_flow_account_errors_recover(
    hass: HomeAssistant,
    evmonitor_sim: EvMonitorSimulator,
    user_input: dict[str, Any],
    errors: dict[str, str],
) -> None:
    """A refused sign-in or an unusable address: the form again, then it works."""
    result = await _open_account_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _account_input(evmonitor_sim, **user_input)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "evmonitor"
    assert result["errors"] == errors
    # What was typed is kept in the form.
    assert (
        _suggested(result)["advanced"]
        == _account_input(evmonitor_sim, **user_input)["advanced"]
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _account_input(evmonitor_sim)
    )
    assert result["step_id"] == "evmonitor_vehicle"


async def test_flow_service_down_cannot_connect(
    hass: HomeAssistant, evmonitor_sim: EvMonitorSimulator
) -> None:
    """Connections closed without an answer: cannot_connect, then it works."""
    result = await _open_account_form(hass)
    evmonitor_sim.down = True
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _account_input(evmonitor_sim)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    evmonitor_sim.down = False
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _account_input(evmonitor_sim)
    )
    assert result["step_id"] == "evmonitor_vehicle"


async def test_flow_account_without_vehicles(
    hass: HomeAssistant, evmonitor_sim: EvMonitorSimulator
) -> None:
    """An account with no vehicle has no logbook to write to."""
    evmonitor_sim.add_user("empty@example.com", "empty-password")
    result = await _open_account_form(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _account_input(
            evmonitor_sim, username="empty@example.com", password="empty-password"
        ),
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "no_vehicles"}
    assert not hass.config_entries.async_entries(DOMAIN)


async def test_flow_vehicle_already_configured(
    hass: HomeAssistant,
    evmonitor_sim: EvMonitorSimulator,
    evmonitor_entry: MockConfigEntry,
) -> None:
    """A logbook that already has an entry is not added twice."""
    evmonitor_entry.add_to_hass(hass)
    result = await _to_source_step(hass, evmonitor_sim, "entities")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


# --- reauth and reconfigure ----------------------------------------------------------


async def test_reauth_with_the_new_password(
    hass: HomeAssistant,
    evmonitor_sim: EvMonitorSimulator,
    evmonitor_entry: MockConfigEntry,
) -> None:
    """A wrong password is refused; the right one is stored and the entry reloaded."""
    await setup_entry(hass, evmonitor_entry)
    evmonitor_sim.users[EMAIL].password = NEW_PASSWORD
    result = await evmonitor_entry.start_reauth_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "evmonitor_reauth"
    assert result["description_placeholders"] == {"name": "EV-Monitor The Rocket"}
    assert _fields(result) == {"password"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"password": PASSWORD}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}
    assert evmonitor_entry.data["password"] == PASSWORD

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"password": NEW_PASSWORD}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert evmonitor_entry.data == _entry_data(evmonitor_sim, password=NEW_PASSWORD)
    await hass.async_block_till_done()
    assert evmonitor_entry.state is ConfigEntryState.LOADED


async def test_reauth_for_a_vehicle_no_longer_in_the_account(
    hass: HomeAssistant,
    evmonitor_sim: EvMonitorSimulator,
    evmonitor_entry: MockConfigEntry,
) -> None:
    """The sign-in works but the logbook is gone: wrong_device, nothing changed."""
    evmonitor_entry.add_to_hass(hass)
    del evmonitor_sim.vehicles[rocket(evmonitor_sim).id]
    result = await evmonitor_entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"password": PASSWORD}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_device"
    assert evmonitor_entry.data["password"] == PASSWORD


async def test_reconfigure_server_and_credentials(
    hass: HomeAssistant,
    evmonitor_sim: EvMonitorSimulator,
    evmonitor_entry: MockConfigEntry,
) -> None:
    """The account form filled in; a new address and password are stored."""
    await setup_entry(hass, evmonitor_entry)
    result = await evmonitor_entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "evmonitor"
    suggested = _suggested(result)
    assert suggested["username"] == EMAIL
    assert suggested["password"] == SECRET_PLACEHOLDER
    assert suggested["advanced"] == {"server_url": evmonitor_sim.url}

    evmonitor_sim.users[EMAIL].password = NEW_PASSWORD
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _account_input(evmonitor_sim)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _account_input(
            evmonitor_sim,
            username=f" {EMAIL} ",
            password=NEW_PASSWORD,
            advanced={"server_url": f" {evmonitor_sim.url}/ "},
        ),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    # Stripped; the logbook and the options stay.
    assert evmonitor_entry.data == _entry_data(evmonitor_sim, password=NEW_PASSWORD)
    assert evmonitor_entry.options["soc"] == SOURCE["soc"]
    await hass.async_block_till_done()
    assert evmonitor_entry.state is ConfigEntryState.LOADED


async def test_reconfigure_keeps_the_stored_password(
    hass: HomeAssistant,
    evmonitor_sim: EvMonitorSimulator,
    evmonitor_entry: MockConfigEntry,
) -> None:
    """The placeholder sent back keeps the password; cleared, it is a form error."""
    await setup_entry(hass, evmonitor_entry)
    result = await evmonitor_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _account_input(evmonitor_sim, password="")
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"password": "secret_required"}

    result = await evmonitor_entry.start_reconfigure_flow(hass)
    # A bad address first: the form comes back with the placeholder again.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        _account_input(
            evmonitor_sim,
            password=SECRET_PLACEHOLDER,
            advanced={"server_url": "not a url"},
        ),
    )
    assert result["errors"] == {"advanced": "invalid_url"}
    assert _suggested(result)["password"] == SECRET_PLACEHOLDER
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], _account_input(evmonitor_sim, password=SECRET_PLACEHOLDER)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert evmonitor_entry.data == _entry_data(evmonitor_sim)
    await hass.async_block_till_done()
    assert evmonitor_entry.state is ConfigEntryState.LOADED


@pytest.mark.parametrize("change", ["other_account", "vehicle_removed"])
async def test_reconfigure_without_the_vehicle_aborts(
    hass: HomeAssistant,
    evmonitor_sim: EvMonitorSimulator,
    evmonitor_entry: MockConfigEntry,
    change: str,
) -> None:
    """An account without the entry's logbook: wrong_device, the entry unchanged."""
    evmonitor_entry.add_to_hass(hass)
    data = _entry_data(evmonitor_sim)
    user_input = _account_input(evmonitor_sim)
    if change == "other_account":
        user = evmonitor_sim.add_user("other@example.com", "other-password")
        evmonitor_sim.add_vehicle(user, "Not The Rocket")
        user_input |= {"username": user.email, "password": user.password}
    else:
        del evmonitor_sim.vehicles[rocket(evmonitor_sim).id]
    result = await evmonitor_entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], user_input
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_device"
    assert evmonitor_entry.data == data


# --- options -------------------------------------------------------------------------


async def test_options_show_uploads_and_the_source(
    hass: HomeAssistant, evmonitor_entry: MockConfigEntry
) -> None:
    """Intervals, the upload interval, a source device and the field pickers."""
    await setup_entry(hass, evmonitor_entry)
    result = await hass.config_entries.options.async_init(evmonitor_entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert _fields(result) == {
        "active_interval",
        "idle_interval",
        "upload_interval",
        "source_device",
        *FIELDS,
    }
    schema = {str(key): key for key in result["data_schema"].schema}
    assert schema["upload_interval"].default() == 300
    assert schema["active_interval"].default() == 60
    assert schema["idle_interval"].default() == 900
    assert _suggested(result) == dict(evmonitor_entry.options)


async def test_options_cleared_field_is_removed_and_entry_reloads(
    hass: HomeAssistant, evmonitor_entry: MockConfigEntry
) -> None:
    """A field left empty leaves the options; saving reloads with the new source."""
    await setup_entry(hass, evmonitor_entry)
    before = _account(evmonitor_entry)
    assert before.mapping == SOURCE
    result = await hass.config_entries.options.async_init(evmonitor_entry.entry_id)
    answers = {
        "active_interval": 120,
        "idle_interval": 1800,
        "upload_interval": 600,
        **{field: SOURCE[field] for field in FIELDS if field != "power"},
        "soc": "sensor.other_battery",
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], answers
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert "power" not in evmonitor_entry.options
    assert evmonitor_entry.options == answers
    await hass.async_block_till_done()
    assert evmonitor_entry.state is ConfigEntryState.LOADED
    after = _account(evmonitor_entry)
    assert after is not before  # reloaded
    expected = {field: SOURCE[field] for field in FIELDS if field != "power"}
    assert after.mapping == expected | {"soc": "sensor.other_battery"}


async def test_options_source_device_set_and_cleared(
    hass: HomeAssistant,
    evmonitor_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
) -> None:
    """A source device with one entity kept (it wins); the device cleared again."""
    await setup_entry(hass, ovms_entry)
    await setup_entry(hass, evmonitor_entry)
    demo = _device_id(hass, ovms_entry, "OVMS DEMO")
    result = await hass.config_entries.options.async_init(evmonitor_entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "active_interval": 60,
            "idle_interval": 900,
            "upload_interval": 300,
            "source_device": demo,
            "soc": SOURCE["soc"],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert set(evmonitor_entry.options) == {
        "active_interval",
        "idle_interval",
        "upload_interval",
        "source_device",
        "soc",
    }
    await hass.async_block_till_done()
    assert _account(evmonitor_entry).mapping == DEMO_MAPPING | {"soc": SOURCE["soc"]}

    # The device cleared again: only the picked entity is left.
    result = await hass.config_entries.options.async_init(evmonitor_entry.entry_id)
    assert _suggested(result)["source_device"] == demo
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "active_interval": 60,
            "idle_interval": 900,
            "upload_interval": 300,
            "soc": SOURCE["soc"],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert "source_device" not in evmonitor_entry.options
    await hass.async_block_till_done()
    assert _account(evmonitor_entry).mapping == {"soc": SOURCE["soc"]}


async def test_options_naming_no_source_are_refused(
    hass: HomeAssistant,
    evmonitor_entry: MockConfigEntry,
    ovms_entry: MockConfigEntry,
) -> None:
    """No device and no entity (or a device with nothing to map): no_source."""
    await setup_entry(hass, ovms_entry)
    await setup_entry(hass, evmonitor_entry)
    own_device = _device_id(hass, evmonitor_entry, "EV-Monitor The Rocket")
    intervals = {"active_interval": 60, "idle_interval": 900, "upload_interval": 300}
    result = await hass.config_entries.options.async_init(evmonitor_entry.entry_id)
    for answers in (intervals, {**intervals, "source_device": own_device}):
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], answers
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {"base": "no_source"}
        # The form keeps what was answered.
        assert _suggested(result) == answers
    assert evmonitor_entry.options["soc"] == SOURCE["soc"]
    assert _account(evmonitor_entry).mapping == SOURCE


async def test_options_saved_while_evmonitor_is_down_leave_one_uploader(
    hass: HomeAssistant,
    evmonitor_sim: EvMonitorSimulator,
    evmonitor_entry: MockConfigEntry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The reload's last upload fails: the old setup must not retry it later.

    The new setup loads the queue and uploads it once EV-Monitor answers again;
    the old one, unloaded, sends nothing more (no second push of the batch).
    """
    hass.states.async_set(SOURCE["soc"], "55", {"unit_of_measurement": "%"})
    await setup_entry(hass, evmonitor_entry)
    before = _account(evmonitor_entry)
    assert len(before.queue) == 1
    evmonitor_sim.down = True
    result = await hass.config_entries.options.async_init(evmonitor_entry.entry_id)
    await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "active_interval": 60,
            "idle_interval": 900,
            "upload_interval": 120,
            "soc": SOURCE["soc"],
        },
    )
    await hass.async_block_till_done()
    after = _account(evmonitor_entry)
    assert after is not before
    assert len(after.queue) == 1  # kept for the new setup
    evmonitor_sim.down = False
    for _ in range(12):
        await _tick(hass, freezer, 60)
    assert len(after.queue) == 0
    assert [outcome for _, _, outcome in evmonitor_sim.pushes] == ["stored"]
