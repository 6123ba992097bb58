"""The automation blueprints in a real Home Assistant, on the simulators.

Each blueprint is imported through the websocket API (``blueprint/save``, what an
import from a URL ends in), then automations made from them run on the simulated
go-e charger and ev.energy cars. Input sensors that no simulator has are made by
the test: input_numbers (grid power, a car's state of charge) and a price sensor
whose state and forecast attributes the test writes through the REST API
(``POST /api/states``, as a bridge like Node-RED does; the harness's Home
Assistant has no template integration loaded to make one from YAML). The go-e
simulator has no command log to read from outside, so the order of the commands
is read from its state as it changes; notifications are read back with
``persistent_notification/get``.
"""

from collections.abc import Callable, Iterator
import contextlib
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import time
from typing import Any

from conftest import NO_VALUE, ROOT, E2EHomeAssistant
import pytest

BLUEPRINTS = ROOT / "blueprints" / "automation" / "ev_cloud"
RAW = "https://raw.githubusercontent.com/ev-cloud/ev_cloud/main/blueprints/automation/ev_cloud"
MIN_ON_S = 30
PRICE = "sensor.e2e_price"
# EV Cloud reads the go-e cloud every 30 s while a car is plugged in; waits that
# follow the demo car's story ask for a read this often instead.
READ_EVERY_S = 5


def package_file(ha: E2EHomeAssistant) -> Path:
    """The package file that holds the test's automations."""
    folder = ha.config_dir / "packages"
    folder.mkdir(exist_ok=True)
    return folder / "e2e_blueprints.yaml"


def from_blueprint(blueprint: str, name: str = "", **inputs: Any) -> dict[str, Any]:
    """An automation made from one of our blueprints (id and entity ``e2e_<name>``)."""
    item_id = f"e2e_{name or blueprint}"
    return {
        "id": item_id,
        "alias": item_id.replace("_", " "),
        "use_blueprint": {"path": f"ev_cloud/{blueprint}.yaml", "input": inputs},
    }


@contextlib.contextmanager
def automations(ha: E2EHomeAssistant, *configs: dict[str, Any]) -> Iterator[None]:
    """The automations run for the block's time, then are gone again.

    As YAML in a package (the harness's configuration.yaml includes packages/,
    not the UI's automations.yaml), then a reload, as a user editing YAML does.
    """
    path = package_file(ha)
    path.write_text(json.dumps({"automation e2e_blueprints": list(configs)}))
    try:
        ha.api.call_service("automation", "reload")
        for config in configs:
            ha.wait_state(f"automation.{config['id']}", "on")
        yield
    finally:
        path.unlink(missing_ok=True)
        ha.api.call_service("automation", "reload")


@contextlib.contextmanager
def input_number(
    ha: E2EHomeAssistant, name: str, value: float, low: float = 0, high: float = 100
) -> Iterator[str]:
    """An input_number helper (as made in Settings > Helpers) for the block's time."""
    (item,) = ha.api.websocket(
        {
            "type": "input_number/create",
            "name": name,
            "min": low,
            "max": high,
            "initial": value,
            "step": 1,
            "mode": "box",
        }
    )
    entity_id = f"input_number.{item['id']}"
    try:
        ha.wait_state(entity_id, lambda state: state not in NO_VALUE)
        set_number(ha, entity_id, value)
        yield entity_id
    finally:
        ha.api.websocket({"type": "input_number/delete", "input_number_id": item["id"]})


def set_number(ha: E2EHomeAssistant, entity_id: str, value: float) -> None:
    """Move an input_number that stands for a sensor."""
    reply = ha.api.call_service(
        "input_number", "set_value", {"entity_id": entity_id, "value": value}
    )
    assert reply["success"], reply


def charger_command(ha: E2EHomeAssistant, device_id: str, service: str) -> None:
    """Start or stop charging, as a user's action call does."""
    reply = ha.api.call_service("ev_cloud", service, {"device_id": device_id})
    assert reply["success"], reply


def read_often(ha: E2EHomeAssistant, entity_id: str) -> Callable[[], None]:
    """A call that asks Home Assistant to read the charger, at most every few seconds.

    The demo car plugs in, charges its small battery full, unplugs 20 s later and
    plugs in again; EV Cloud's own poll (30 s, 120 s without a car) could miss a
    step of that story, so the waits that follow it ask for a read
    (``homeassistant.update_entity``), as a user's refresh does.
    """
    last = 0.0

    def read() -> None:
        nonlocal last
        if time.monotonic() - last >= READ_EVERY_S:
            last = time.monotonic()
            ha.api.call_service(
                "homeassistant", "update_entity", target={"entity_id": entity_id}
            )

    return read


def wait_charging(
    ha: E2EHomeAssistant, charging: str, wanted: str, timeout: float = 150
) -> None:
    """Wait until Home Assistant shows the charger charging (or not)."""
    read = read_often(ha, charging)

    def check() -> bool:
        if ha.state(charging)["state"] == wanted:
            return True
        read()
        return False

    ha.wait_until(f"{charging} to be {wanted}", check, timeout)


def restore_charger(ha: E2EHomeAssistant, goe_prefix: str) -> None:
    """Back to the charger's own logic (force state neutral) and 16 A."""
    reply = ha.api.call_service(
        "select",
        "select_option",
        {"option": "neutral"},
        {"entity_id": f"select.{goe_prefix}_force_state"},
    )
    assert reply["success"], reply
    reply = ha.api.call_service(
        "number",
        "set_value",
        {"value": 16},
        {"entity_id": f"number.{goe_prefix}_charge_current_limit"},
    )
    assert reply["success"], reply
    ha.wait_until(
        "the charger to be neutral at 16 A",
        lambda: ha.goe_status("frc", "amp") == {"frc": 0, "amp": 16},
        timeout=20,
    )


def traces(ha: E2EHomeAssistant, item_id: str) -> list[dict[str, Any]]:
    """The automation's runs (trace summaries), oldest first."""
    (found,) = ha.api.websocket(
        {"type": "trace/list", "domain": "automation", "item_id": item_id}
    )
    return sorted(found, key=lambda trace: trace["timestamp"]["start"])


def wait_run(ha: E2EHomeAssistant, item_id: str, timeout: float = 60) -> dict[str, Any]:
    """The automation's last run, once it has ended."""

    def check() -> dict[str, Any] | None:
        runs = traces(ha, item_id)
        return runs[-1] if runs and runs[-1]["state"] == "stopped" else None

    return ha.wait_until(f"a run of {item_id} to end", check, timeout)


def notifications(ha: E2EHomeAssistant) -> dict[str, dict[str, Any]]:
    """The persistent notifications shown, by notification_id."""
    (found,) = ha.api.websocket({"type": "persistent_notification/get"})
    return {n["notification_id"]: n for n in found}


def dismiss(ha: E2EHomeAssistant, notification_id: str) -> None:
    """Dismiss a notification (nothing happens when it is not shown)."""
    ha.api.call_service(
        "persistent_notification", "dismiss", {"notification_id": notification_id}
    )


def ha_time(ha: E2EHomeAssistant, seconds_from_now: int) -> str:
    """Home Assistant's local time of day in so many seconds, as HH:MM:SS."""
    status, text = ha.api.request(
        "POST",
        "/api/template",
        {
            "template": "{{ (now() + timedelta(seconds=s)).strftime('%H:%M:%S') }}",
            "variables": {"s": seconds_from_now},
        },
    )
    assert status == 200, text
    return str(text)


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


def test_solar_surplus_drives_the_charger(
    ha: E2EHomeAssistant, goe_prefix: str
) -> None:
    """Start with phases and current from the surplus, step down, stop after 30 s."""
    import_blueprints(ha)
    charging = f"binary_sensor.{goe_prefix}_charging"
    charger = ha.device_id(charging)
    charger_command(ha, charger, "stop_charging")
    ha.wait_state(charging, "off")
    assert ha.goe_status("frc")["frc"] == 1

    try:
        with (
            input_number(ha, "E2E grid power", 0, -20000, 20000) as grid,
            automations(
                ha,
                from_blueprint(
                    "solar_surplus",
                    grid_power=grid,
                    charger=charger,
                    charging_sensor=charging,
                    plugged_in_sensor=f"binary_sensor.{goe_prefix}_plugged_in",
                    current_number=f"number.{goe_prefix}_charge_current_limit",
                    phase_select=f"select.{goe_prefix}_phase_mode",
                    start_threshold=2500,
                    min_on_minutes=MIN_ON_S / 60,
                    min_off_minutes=0.25,
                    settle_seconds=5,
                ),
            ),
        ):
            # 5 kW export: three phases (6 A fit), 5000 W / 690 V = 7 A, then start.
            set_number(ha, grid, -5000)
            # The demo's car is away 35 s between charges: see it come back soon.
            read_plug = read_often(ha, f"binary_sensor.{goe_prefix}_plugged_in")

            def started_check() -> dict[str, Any] | None:
                read_plug()
                status = ha.goe_status("frc", "amp", "psm")
                return status if status["frc"] == 2 else None

            started = ha.wait_until("the charger to be started", started_check, 120)
            start_time = time.monotonic()
            assert (started["amp"], started["psm"]) == (7, 2)
            set_number(ha, grid, -170)  # the car's draw shows; less than 1 A left
            ha.wait_state(charging, "on", timeout=60)

            # 3 kW import: down to the minimum (6 A) while charging, then the
            # stop, not before the minimum on time.
            set_number(ha, grid, 3000)
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
        restore_charger(ha, goe_prefix)


def test_stop_at_target_soc_stops_the_charger(
    ha: E2EHomeAssistant, goe_prefix: str
) -> None:
    """The go-e charger stops when the car's state of charge reaches 80 %, not before.

    An input_number stands for the car's state of charge. A charge that starts
    with the car above the target is stopped at once.
    """
    import_blueprints(ha)
    charging = f"binary_sensor.{goe_prefix}_charging"
    charger = ha.device_id(charging)
    restore_charger(ha, goe_prefix)
    try:
        with input_number(ha, "E2E car SoC", 50) as soc:
            automation = from_blueprint(
                "stop_at_target_soc",
                soc_sensor=soc,
                charger=charger,
                charging_sensor=charging,
                target_soc=80,
            )
            with automations(ha, automation):
                charger_command(ha, charger, "start_charging")
                wait_charging(ha, charging, "on")
                set_number(ha, soc, 79)
                time.sleep(3)
                assert ha.goe_status("frc")["frc"] == 2, "stopped below the target"
                assert traces(ha, automation["id"]) == []

                set_number(ha, soc, 80)
                ha.wait_until(
                    "the charger to be stopped at the target",
                    lambda: ha.goe_status("frc")["frc"] == 1,
                    timeout=30,
                )
                assert wait_run(ha, automation["id"])["script_execution"] == "finished"
                ha.wait_state(charging, "off")

                # Above the target, a charge someone starts is stopped again
                # once Home Assistant sees it charging.
                set_number(ha, soc, 85)
                charger_command(ha, charger, "start_charging")
                read = read_often(ha, charging)

                def stopped_again() -> bool:
                    read()
                    runs = traces(ha, automation["id"])
                    return len(runs) == 2 and ha.goe_status("frc")["frc"] == 1

                ha.wait_until("the new charge to be stopped", stopped_again, 150)
                assert wait_run(ha, automation["id"])["script_execution"] == "finished"
    finally:
        restore_charger(ha, goe_prefix)


def nord_pool_prices(now_price: float, next_price: float) -> dict[str, Any]:
    """A Nord Pool sensor's state and raw_today: the hour around now, then two more."""
    now = datetime.now(UTC)
    slots = [
        (now - timedelta(minutes=30), now_price),
        (now + timedelta(minutes=30), next_price),
        (now + timedelta(minutes=90), 0.40),
    ]
    return {
        "state": str(now_price),
        "attributes": {
            "unit_of_measurement": "EUR/kWh",
            "raw_today": [
                {
                    "start": start.isoformat(),
                    "end": (start + timedelta(hours=1)).isoformat(),
                    "value": price,
                }
                for start, price in slots
            ],
            "raw_tomorrow": [],
        },
    }


def set_price(ha: E2EHomeAssistant, now_price: float, next_price: float) -> None:
    """Write the price sensor's state and forecast (REST API, see the docstring)."""
    status, data = ha.api.request(
        "POST", f"/api/states/{PRICE}", nord_pool_prices(now_price, next_price)
    )
    assert status in (200, 201), data


def test_cheapest_hours_start_and_stop(ha: E2EHomeAssistant, goe_prefix: str) -> None:
    """One hour needed before a departure in 2 h: charge while this hour is cheapest.

    Nord Pool's forecast shape. Nothing while the hour around now is expensive;
    the charger is started when it becomes the cheapest, and stopped when the
    next one becomes cheaper: frc 2, then 1.
    """
    import_blueprints(ha)
    charging = f"binary_sensor.{goe_prefix}_charging"
    charger = ha.device_id(charging)
    restore_charger(ha, goe_prefix)
    charger_command(ha, charger, "stop_charging")
    ha.wait_state(charging, "off")
    automation = from_blueprint(
        "cheapest_hours",
        price_sensor=PRICE,
        charger=charger,
        charging_sensor=charging,
        departure=ha_time(ha, 2 * 3600),
        hours_needed=1,
    )
    try:
        with automations(ha, automation):
            set_price(ha, 0.50, 0.10)
            run = wait_run(ha, automation["id"])
            assert run["script_execution"] == "failed_conditions", run
            assert ha.goe_status("frc")["frc"] == 1

            set_price(ha, 0.05, 0.30)
            ha.wait_until(
                "the charger to be started",
                lambda: ha.goe_status("frc")["frc"] == 2,
                timeout=30,
            )
            wait_charging(ha, charging, "on")

            set_price(ha, 0.50, 0.05)
            ha.wait_until(
                "the charger to be stopped",
                lambda: ha.goe_status("frc")["frc"] == 1,
                timeout=30,
            )
            ha.wait_state(charging, "off")
    finally:
        ha.api.request("DELETE", f"/api/states/{PRICE}")
        restore_charger(ha, goe_prefix)


def test_plug_in_reminder_for_the_parked_car(ha: E2EHomeAssistant) -> None:
    """ev.energy's parked car is at home and not plugged in, at 72 %.

    At the reminder's time: nothing with "remind below 50 %" (the run stops at
    its conditions), a notification with the state of charge with 80 %.
    """
    import_blueprints(ha)
    at_home = "binary_sensor.parked_ev_at_home"
    plugged_in = "binary_sensor.parked_ev_plugged_in"
    battery = "sensor.parked_ev_battery"
    ha.wait_state(at_home, "on")
    ha.wait_state(plugged_in, "off")
    soc = ha.wait_state(battery, lambda state: state not in NO_VALUE)["state"]
    notification_id = "ev_cloud_plug_in_reminder"
    dismiss(ha, notification_id)
    try:
        for below in (50, 80):
            automation = from_blueprint(
                "plug_in_reminder",
                f"plug_in_reminder_{below}",
                reminder_time=ha_time(ha, 15),
                at_home_entity=at_home,
                plugged_in_sensor=plugged_in,
                soc_sensor=battery,
                soc_below=below,
            )
            with automations(ha, automation):
                run = wait_run(ha, automation["id"])
            assert run["trigger"].startswith("time"), run
            if below == 50:
                assert run["script_execution"] == "failed_conditions", run
                assert notification_id not in notifications(ha)
        assert run["script_execution"] == "finished", run
        shown = notifications(ha)[notification_id]
        assert shown["title"] == "Plug the car in"
        assert shown["message"] == (
            f"The car is at home and not plugged in. State of charge: {soc} %."
        )
    finally:
        dismiss(ha, notification_id)


def test_charging_finished_or_interrupted(
    ha: E2EHomeAssistant, goe_prefix: str
) -> None:
    """A notification with the session energy when the go-e charger stops charging.

    Stopped at 40 % with 80 % counting as full: interrupted. Then the demo car
    charges its small battery full, at 80 %: finished. An input_number stands for
    the car's state of charge (the go-e charger does not know it).
    """
    import_blueprints(ha)
    charging = f"binary_sensor.{goe_prefix}_charging"
    energy = f"sensor.{goe_prefix}_energy_this_charge"
    charger = ha.device_id(charging)
    notification_id = "ev_cloud_charging_finished"
    dismiss(ha, notification_id)
    restore_charger(ha, goe_prefix)

    def wait_notification() -> dict[str, Any]:
        return ha.wait_until(
            "the notification",
            lambda: notifications(ha).get(notification_id),
            timeout=30,
        )

    try:
        with (
            input_number(ha, "E2E car SoC", 40) as soc,
            automations(
                ha,
                from_blueprint(
                    "charging_finished",
                    charging_sensor=charging,
                    session_energy_sensor=energy,
                    plugged_in_sensor=f"binary_sensor.{goe_prefix}_plugged_in",
                    soc_sensor=soc,
                    full_soc=80,
                ),
            ),
        ):
            charger_command(ha, charger, "start_charging")
            wait_charging(ha, charging, "on")
            charger_command(ha, charger, "stop_charging")
            shown = wait_notification()
            charged = ha.state(energy)
            assert float(charged["state"]) > 0, charged
            unit = charged["attributes"]["unit_of_measurement"]
            assert shown["title"] == "Charging interrupted"
            assert shown["message"] == (
                f"State of charge: {ha.state(soc)['state']} %."
                f" Charged: {charged['state']} {unit}."
            )
            dismiss(ha, notification_id)

            # Full: the charger stops on its own, the car still plugged in.
            set_number(ha, soc, 80)
            charger_command(ha, charger, "start_charging")
            wait_charging(ha, charging, "on")
            wait_charging(ha, charging, "off")
            shown = wait_notification()
            wh = ha.goe_status("wh")["wh"]
            charged = ha.state(energy)
            assert shown["title"] == "Charging finished"
            assert shown["message"] == (
                f"State of charge: {ha.state(soc)['state']} %."
                f" Charged: {charged['state']} {unit}."
            )
            assert unit == "kWh"
            assert float(charged["state"]) * 1000 == pytest.approx(wh)
    finally:
        dismiss(ha, notification_id)
        restore_charger(ha, goe_prefix)
