"""The automation blueprints in a real Home Assistant, on the go-e simulator.

Each blueprint is imported through the websocket API (``blueprint/save``, what an
import from a URL ends in); an automation made from the solar surplus blueprint
drives the simulated charger, with an input_number the test creates standing for
the grid power sensor. The simulator has no command log to read from outside, so
the order of the commands is read from its state as it changes.
"""

import json
from pathlib import Path
import time
from typing import Any

from conftest import ROOT, E2EHomeAssistant

BLUEPRINTS = ROOT / "blueprints" / "automation" / "ev_cloud"
RAW = "https://raw.githubusercontent.com/ev-cloud/ev_cloud/main/blueprints/automation/ev_cloud"
MIN_ON_S = 30


def package_file(ha: E2EHomeAssistant) -> Path:
    """The package file that holds the test's automation."""
    folder = ha.config_dir / "packages"
    folder.mkdir(exist_ok=True)
    return folder / "e2e_blueprints.yaml"


def import_blueprints(ha: E2EHomeAssistant) -> None:
    """Save every blueprint file as an import would; HA lists them without error."""
    for path in sorted(BLUEPRINTS.glob("*.yaml")):
        ha.api.websocket(
            {
                "type": "blueprint/save",
                "domain": "automation",
                "path": f"ev_cloud/{path.name}",
                "yaml": path.read_text(),
                "source_url": f"{RAW}/{path.name}",
                "allow_override": True,
            }
        )
    (listed,) = ha.api.websocket({"type": "blueprint/list", "domain": "automation"})
    ours = {p: v for p, v in listed.items() if p.startswith("ev_cloud/")}
    assert len(ours) == 5, listed
    assert {p: v["error"] for p, v in ours.items() if "error" in v} == {}


def set_grid(ha: E2EHomeAssistant, entity_id: str, watts: float) -> None:
    """Move the input_number that stands for the grid power sensor."""
    ha.api.call_service(
        "input_number", "set_value", {"entity_id": entity_id, "value": watts}
    )


def test_solar_surplus_drives_the_charger(
    ha: E2EHomeAssistant, goe_prefix: str
) -> None:
    """Start with phases and current from the surplus, step down, stop after 30 s."""
    import_blueprints(ha)
    ha.api.websocket(
        {
            "type": "input_number/create",
            "name": "E2E grid power",
            "min": -20000,
            "max": 20000,
            "step": 1,
            "mode": "box",
        }
    )
    grid = "input_number.e2e_grid_power"
    ha.wait_state(grid, lambda state: state not in ("unknown", "unavailable"))
    charging = f"binary_sensor.{goe_prefix}_charging"
    charger = ha.device_id(charging)
    ha.api.call_service("ev_cloud", "stop_charging", {"device_id": charger})
    ha.wait_state(charging, "off")
    assert ha.goe_status("frc")["frc"] == 1

    # As YAML in a package (the harness's configuration.yaml includes packages/,
    # not the UI's automations.yaml), then a reload, as a user editing YAML does.
    automation = {
        "automation e2e_blueprints": [
            {
                "id": "e2e_solar_surplus",
                "alias": "E2E solar surplus",
                "use_blueprint": {
                    "path": "ev_cloud/solar_surplus.yaml",
                    "input": {
                        "grid_power": grid,
                        "charger": charger,
                        "charging_sensor": charging,
                        "plugged_in_sensor": f"binary_sensor.{goe_prefix}_plugged_in",
                        "current_number": f"number.{goe_prefix}_charge_current_limit",
                        "phase_select": f"select.{goe_prefix}_phase_mode",
                        "start_threshold": 2500,
                        "min_on_minutes": MIN_ON_S / 60,
                        "min_off_minutes": 0.25,
                        "settle_seconds": 5,
                    },
                },
            }
        ]
    }
    package_file(ha).write_text(json.dumps(automation))  # JSON is YAML
    ha.api.call_service("automation", "reload")
    ha.wait_state("automation.e2e_solar_surplus", "on")
    try:
        # 5 kW export: three phases (6 A fit), 5000 W / 690 V = 7 A, then start.
        set_grid(ha, grid, -5000)
        started: dict[str, Any] = ha.wait_until(
            "the charger to be started",
            lambda: (s := ha.goe_status("frc", "amp", "psm"))["frc"] == 2 and s,
            timeout=120,
        )
        start_time = time.monotonic()
        assert (started["amp"], started["psm"]) == (7, 2)
        set_grid(ha, grid, -170)  # the car's draw shows; less than 1 A left
        ha.wait_state(charging, "on", timeout=60)

        # 3 kW import: down to the minimum (6 A) while charging, then the stop,
        # not before the minimum on time.
        set_grid(ha, grid, 3000)
        ha.wait_until(
            "the current to reach 6 A",
            lambda: ha.goe_status("amp", "frc") == {"amp": 6, "frc": 2},
            timeout=60,
        )
        ha.wait_until(
            "the charger to be stopped",
            lambda: ha.goe_status("frc")["frc"] == 1,
            timeout=120,
        )
        assert time.monotonic() - start_time >= MIN_ON_S
        ha.wait_state(charging, "off")
    finally:
        package_file(ha).unlink(missing_ok=True)
        ha.api.call_service("automation", "reload")
        ha.api.call_service("ev_cloud", "start_charging", {"device_id": charger})
