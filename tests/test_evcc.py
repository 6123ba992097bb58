"""docs/evcc.md names entities that exist, of the kind evcc reads, per provider.

Each section's evcc configuration is checked against the entities the provider
creates for its simulator (a default install, with disabled entities enabled, as
the guide tells): the entity exists, and has the unit, device class or options
evcc's Home Assistant charger and vehicle templates expect. Scripts the
configuration names must be defined in the same section and call EV Cloud's
actions on a device the provider created.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
import re
from typing import Any

from homeassistant.components.select import (
    ATTR_OPTION,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.const import (
    ATTR_DEVICE_CLASS,
    ATTR_ENTITY_ID,
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNKNOWN,
)
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import yaml

from custom_components.ev_cloud.api.goe import parse_status
from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.descriptions import finish_time, iec_61851_from_flags
from custom_components.ev_cloud.device import DeviceData
from custom_components.ev_cloud.providers.goe.entities import (
    ENTITIES as GOE_ENTITIES,
)
from tests.conftest import setup_entry
from tests.simulators.goe import SimCharger

GUIDE = Path(__file__).parent.parent / "docs" / "evcc.md"

# Each provider section of the guide and the fixture of the entry it configures
# (OVMS with the car's server password, which its commands need).
SECTIONS = {
    "go-e Charger": "goe_entry",
    "OVMS": "ovms_command_entry",
    "ev.energy": "evenergy_entry",
    "EVLinkHA": "evlinkha_entry",
}
OTHER_SECTIONS = {"What evcc reads, and from which entity"}


def _has_unit(*units: str) -> Callable[[State], bool]:
    return lambda state: state.attributes.get(ATTR_UNIT_OF_MEASUREMENT) in units


def _has_options(*options: str) -> Callable[[State], bool]:
    return lambda state: set(options) <= set(state.attributes.get("options", []))


def _is_timestamp(state: State) -> bool:
    return state.attributes.get(ATTR_DEVICE_CLASS) == "timestamp"


def _any(_state: State) -> bool:
    return True


# What evcc reads from each parameter: the entity domains it accepts and what the
# state must be like (evcc scales W/kW and Wh/kWh; other values it reads as is).
CHARGER_PARAMS: dict[str, tuple[set[str], Callable[[State], bool]]] = {
    "status": ({"sensor"}, _has_options("a", "b", "c")),
    "enabled": ({"binary_sensor", "switch", "sensor"}, _any),
    "enable": ({"switch"}, _any),
    "setMaxCurrent": ({"number"}, _has_unit("A")),
    "power": ({"sensor"}, _has_unit("W", "kW")),
    "energy": ({"sensor"}, _has_unit("Wh", "kWh")),
    **{f"current{line}": ({"sensor"}, _has_unit("A")) for line in ("L1", "L2", "L3")},
    **{f"voltage{line}": ({"sensor"}, _has_unit("V")) for line in ("L1", "L2", "L3")},
    "phaseswitch": (
        {"select"},
        lambda state: state.attributes["options"] == ["1", "3"],
    ),
}
VEHICLE_PARAMS: dict[str, tuple[set[str], Callable[[State], bool]]] = {
    "soc": ({"sensor"}, _has_unit("%")),
    "range": ({"sensor"}, _has_unit("km")),
    "status": ({"sensor"}, _has_options("a", "b", "c")),
    "limitSoc": ({"sensor", "number"}, _has_unit("%")),
    "odometer": ({"sensor"}, _has_unit("km")),
    "finishTime": ({"sensor"}, _is_timestamp),
    "start_charging": ({"script", "switch"}, _any),
    "stop_charging": ({"script"}, _any),
    "wakeup": ({"script", "button"}, _any),
    "setMaxCurrent": ({"number"}, _has_unit("A")),
}
# Parameters that name no entity.
PLAIN_PARAMS = {"name", "type", "template", "title", "uri"}


def _sections() -> dict[str, list[Any]]:
    """The YAML blocks of each `## ` section of the guide, parsed."""
    sections: dict[str, list[Any]] = {}
    heading = ""
    for part in re.split(r"^(## .+)$", GUIDE.read_text(encoding="utf-8"), flags=re.M):
        if part.startswith("## "):
            heading = part.removeprefix("## ").strip()
            sections[heading] = []
            continue
        if heading:
            sections[heading] += [
                yaml.safe_load(block)
                for block in re.findall(r"^```yaml\n(.*?)^```", part, re.M | re.S)
            ]
    return sections


def _devices(blocks: list[Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Each charger and vehicle configured, with the parameters it may have."""
    found = []
    for block in blocks:
        for kind, params in (
            ("chargers", CHARGER_PARAMS),
            ("vehicles", VEHICLE_PARAMS),
        ):
            found += [(device, params) for device in block.get(kind, [])]
    return found


def _scripts(blocks: list[Any]) -> dict[str, Any]:
    """The scripts a section defines (blocks that configure no evcc device)."""
    scripts: dict[str, Any] = {}
    for block in blocks:
        if "chargers" not in block and "vehicles" not in block:
            scripts |= block
    return scripts


def test_the_guide_has_a_section_per_provider() -> None:
    """Renaming or adding a section must come with this test's table."""
    assert set(_sections()) == set(SECTIONS) | OTHER_SECTIONS


@pytest.fixture(params=list(SECTIONS))
def guide_section(request: pytest.FixtureRequest) -> tuple[str, MockConfigEntry]:
    """A provider section of the guide and the entry it configures."""
    entry: MockConfigEntry = request.getfixturevalue(SECTIONS[request.param])
    return request.param, entry


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_the_guide_names_existing_entities(
    hass: HomeAssistant,
    guide_section: tuple[str, MockConfigEntry],
    entity_registry: er.EntityRegistry,
) -> None:
    """Every entity evcc is given exists, in a domain and shape evcc reads."""
    section, entry = guide_section
    await setup_entry(hass, entry)
    ours = {
        registry_entry.entity_id: registry_entry
        for registry_entry in er.async_entries_for_config_entry(
            entity_registry, entry.entry_id
        )
    }
    blocks = _sections()[section]
    scripts = _scripts(blocks)
    devices = _devices(blocks)
    assert devices, f"{section} configures no evcc charger or vehicle"

    for device, params in devices:
        for param, entity_id in device.items():
            if param in PLAIN_PARAMS:
                continue
            assert param in params, f"{section}: evcc has no parameter {param}"
            domains, fits = params[param]
            domain = entity_id.split(".", 1)[0]
            assert domain in domains, f"{section}: {param} takes no {domain}"
            if domain == "script":
                _check_script(section, scripts, entity_id, ours)
                continue
            assert entity_id in ours, f"{section}: {entity_id} does not exist"
            state = hass.states.get(entity_id)
            assert state is not None, f"{section}: {entity_id} has no state"
            assert fits(state), f"{section}: {param} cannot read {state}"


def _check_script(
    section: str,
    scripts: dict[str, Any],
    entity_id: str,
    ours: dict[str, er.RegistryEntry],
) -> None:
    """The script is defined in the section and runs an EV Cloud action on ours."""
    script = scripts.get(entity_id.removeprefix("script."))
    assert script is not None, f"{section}: {entity_id} is not defined"
    for step in script["sequence"]:
        assert step["action"] in (f"{DOMAIN}.start_charging", f"{DOMAIN}.stop_charging")
        target = re.fullmatch(
            r"\{\{ device_id\('([a-z_]+\.[a-z0-9_]+)'\) \}\}", step["data"]["device_id"]
        )
        assert target, f"{section}: {entity_id} names its device another way"
        assert target[1] in ours, f"{section}: {target[1]} does not exist"


# --- the entities evcc reads, against the go-e simulator and as functions -------

GOE_STATUS = "sensor.go_e_charger_012345_iec_61851_status"
GOE_PHASES = "select.go_e_charger_012345_phases"


@pytest.mark.usefixtures("entity_registry_enabled_by_default", "no_request_spacing")
async def test_goe_phases_select_switches_as_evcc_does(
    hass: HomeAssistant, goe_entry: MockConfigEntry, goe_charger: SimCharger
) -> None:
    """Options 1 and 3 force the phases (`psm` 1 and 2); automatic mode shows none."""
    await setup_entry(hass, goe_entry)
    assert goe_charger.state["psm"] == 0
    assert hass.states.get(GOE_PHASES).state == STATE_UNKNOWN
    for option, psm in (("1", 1), ("3", 2)):
        await hass.services.async_call(
            SELECT_DOMAIN,
            SERVICE_SELECT_OPTION,
            {ATTR_ENTITY_ID: GOE_PHASES, ATTR_OPTION: option},
            blocking=True,
        )
        await _refresh(goe_entry)
        assert goe_charger.state["psm"] == psm
        assert hass.states.get(GOE_PHASES).state == option


@pytest.mark.usefixtures("no_request_spacing")
async def test_goe_status_follows_the_car(
    hass: HomeAssistant, goe_entry: MockConfigEntry, goe_charger: SimCharger
) -> None:
    """Charging is C, a car held off is B, no car is A (the simulator's `car`)."""
    await setup_entry(hass, goe_entry)
    assert hass.states.get(GOE_STATUS).state == "c"
    goe_charger.state["frc"] = 1  # forced off: the car waits (car 3)
    await _refresh(goe_entry)
    assert hass.states.get(GOE_STATUS).state == "b"
    goe_charger.unplug()
    await _refresh(goe_entry)
    assert hass.states.get(GOE_STATUS).state == "a"


async def _refresh(entry: MockConfigEntry) -> None:
    for coordinator in entry.runtime_data.coordinators.values():
        await coordinator.async_refresh()


@pytest.mark.parametrize(
    ("car", "expected"),
    [
        (0, None),  # unknown
        (1, "a"),  # idle: no car
        (2, "c"),  # charging
        (3, "b"),  # waiting for the car
        (4, "b"),  # complete, still connected
        (5, "f"),  # the charger's error
        (6, None),  # initializing
        (None, None),
    ],
)
def test_goe_car_state_as_iec_61851(car: int | None, expected: str | None) -> None:
    """Every go-e `car` value maps as docs/evcc.md says."""
    [description] = [
        sensor for sensor in GOE_ENTITIES.sensor if sensor.key == "iec_61851_status"
    ]
    state = parse_status({"sse": "012345", "car": car})
    assert description.value_fn(DeviceData(state, True, None)) == expected


@pytest.mark.parametrize(
    ("plugged", "charging", "expected"),
    [
        (False, False, "a"),
        (True, False, "b"),
        (True, True, "c"),
        (None, True, "c"),  # energy flows, so a cable is in
        (True, None, None),
        (None, False, None),
        (None, None, None),
    ],
)
def test_status_from_plugged_in_and_charging(
    plugged: bool | None, charging: bool | None, expected: str | None
) -> None:
    """Services that only report plugged in and charging give A, B or C."""
    assert iec_61851_from_flags(plugged, charging) == expected


READ_AT = datetime(2027, 1, 1, 12, 0, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("minutes", "charging", "expected"),
    [
        (90, True, datetime(2027, 1, 1, 13, 30, tzinfo=UTC)),
        (0.5, True, datetime(2027, 1, 1, 12, 1, tzinfo=UTC)),  # 12:00:40 rounds up
        (0, True, datetime(2027, 1, 1, 12, 0, tzinfo=UTC)),
        (90, False, None),
        (90, None, None),
        (None, True, None),
        (-1, True, None),  # some services say -1 for "no estimate"
    ],
)
def test_finish_time(
    minutes: float | None, charging: bool | None, expected: datetime | None
) -> None:
    """Reading time plus the minutes to full, to the minute; none unless charging."""
    assert finish_time(READ_AT, minutes, charging) == expected


def test_finish_time_stays_while_the_estimate_does() -> None:
    """Two polls of the same reading give the same time (no rewrite per poll)."""
    first = finish_time(READ_AT, 45, True)
    assert first == finish_time(READ_AT, 45, True)
    assert finish_time(None, 45, True) is None
