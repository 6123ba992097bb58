"""Blueprint fixtures: the blueprints installed in hass's config dir, helpers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
import shutil
from typing import Any

from freezegun.api import FrozenDateTimeFactory
from homeassistant.components.automation import DOMAIN as AUTOMATION_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from tests.conftest import setup_entry
from tests.simulators.goe import SimCharger

BLUEPRINTS = (
    Path(__file__).resolve().parents[2] / "blueprints" / "automation" / "ev_cloud"
)
PREFIX = "go_e_charger_012345"
CHARGING = f"binary_sensor.{PREFIX}_charging"
PLUGGED_IN = f"binary_sensor.{PREFIX}_plugged_in"
CURRENT = f"number.{PREFIX}_charge_current_limit"
PHASES = f"select.{PREFIX}_phase_mode"
SESSION_ENERGY = f"sensor.{PREFIX}_energy_this_charge"


@pytest.fixture(autouse=True)
def _no_request_spacing(no_request_spacing: None) -> None:
    """Every test here sends commands to the charger under a frozen clock."""


@pytest.fixture(autouse=True)
async def automations_off(hass: HomeAssistant) -> AsyncIterator[None]:
    """Turn the test's automations off at its end.

    Home Assistant's stop leaves their triggers attached; a time pattern's timer
    would outlive the test.
    """
    yield
    if hass.services.has_service(AUTOMATION_DOMAIN, "turn_off"):
        await hass.services.async_call(
            AUTOMATION_DOMAIN, "turn_off", {"entity_id": "all"}, blocking=True
        )


@pytest.fixture(autouse=True)
def blueprint_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A config dir of the test's own with this repository's blueprints in it.

    The plugin's default config dir lies inside the installed package; the
    blueprints are copied to a temporary one, where a user's import puts them.
    """
    hass.config.config_dir = str(tmp_path)
    target = Path(hass.config.path("blueprints", "automation", "ev_cloud"))
    shutil.copytree(BLUEPRINTS, target)
    return target


@dataclass
class Goe:
    """The go-e simulator's charger as an entry of hass, under the frozen clock."""

    hass: HomeAssistant
    entry: MockConfigEntry
    sim: SimCharger
    freezer: FrozenDateTimeFactory

    async def set_up(self, at: str | None = None) -> None:
        """Set the entry up; at a time given, first move the clock there (in UTC)."""
        if at is not None:
            await self.hass.config.async_set_time_zone("UTC")
            self.freezer.move_to(at)
        await setup_entry(self.hass, self.entry)

    @property
    def device_id(self) -> str:
        """The device registry id of the charger."""
        [device] = dr.async_entries_for_config_entry(
            dr.async_get(self.hass), self.entry.entry_id
        )
        return device.id

    async def tick(
        self, delta: timedelta, step: timedelta = timedelta(seconds=10)
    ) -> None:
        """Move the clock in steps, firing timers at each (see tick)."""
        await tick(self.hass, self.freezer, delta, step)

    async def stop_charging(self) -> None:
        """Stop the charge through the action and give its state 20 s to follow."""
        await self.hass.services.async_call(
            "ev_cloud", "stop_charging", {"device_id": self.device_id}, blocking=True
        )
        await self.tick(timedelta(seconds=20))


@pytest.fixture
def goe(
    hass: HomeAssistant,
    goe_entry: MockConfigEntry,
    goe_charger: SimCharger,
    freezer: FrozenDateTimeFactory,
) -> Goe:
    """The go-e charger the blueprints drive (its entry not yet set up)."""
    return Goe(hass, goe_entry, goe_charger, freezer)


async def setup_automation(
    hass: HomeAssistant, blueprint: str, inputs: dict[str, Any]
) -> None:
    """Create the automation ``automation.test`` from a blueprint, as YAML would."""
    assert await async_setup_component(
        hass,
        AUTOMATION_DOMAIN,
        {
            AUTOMATION_DOMAIN: {
                "id": "test",
                "alias": "test",
                "use_blueprint": {"path": f"ev_cloud/{blueprint}", "input": inputs},
            }
        },
    )
    await hass.async_block_till_done()
    state = hass.states.get("automation.test")
    assert state is not None, f"{blueprint} made no automation"
    assert state.state == "on", f"{blueprint}: {state}"


async def setup_input_number(
    hass: HomeAssistant, name: str, initial: float, minimum: float = -20000
) -> str:
    """An input_number the test moves (stands for a sensor); returns its id."""
    assert await async_setup_component(
        hass,
        "input_number",
        {
            "input_number": {
                name: {
                    "min": minimum,
                    "max": 20000,
                    "step": 0.1,
                    "initial": initial,
                    "mode": "box",
                }
            }
        },
    )
    return f"input_number.{name}"


async def set_number(hass: HomeAssistant, entity_id: str, value: float) -> None:
    """Move an input_number and let what it triggers run."""
    await hass.services.async_call(
        "input_number",
        "set_value",
        {"entity_id": entity_id, "value": value},
        blocking=True,
    )
    await hass.async_block_till_done(wait_background_tasks=True)


async def tick(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    delta: timedelta,
    step: timedelta = timedelta(seconds=10),
) -> None:
    """Move the clock in steps (10 s unless told), firing timers at each step.

    Small steps let the automation's delays, the time pattern and the
    coordinator's debounced refreshes run in the order they would.
    """
    left = delta
    while left > timedelta(0):
        moved = min(left, step)
        freezer.tick(moved)
        async_fire_time_changed(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        left -= moved
