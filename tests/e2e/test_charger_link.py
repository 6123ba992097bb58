"""The OVMS demo car charged at home by the go-e demo charger, in a real Home Assistant.

The link is made as ``scripts/develop`` makes it: Home Assistant's home where the
car parks (``DEMO.home``) and the OVMS entry's options flow (``DEMO.options``:
pick the vehicle, then the charger and the battery's capacity). Then a charge of
the go-e demo's own loop (plug in, charge, unplug) is followed with what a user
sees: the vehicle's estimated battery level rising between two reads of the
car, the ``ev_cloud_charging_session`` event at the unplug (over the websocket,
as an automation would get it), the Last charging session sensors of car and
charger, and the car's energy-charged-at-home statistic in the recorder.

Where the test steers the demos (and why): the go-e demo charges its 150 Wh
at 11 kW in under a minute, less than the minute the link waits before it reads
the car after the plug-in, so the test sets the charger to one phase at 10 A
through its Home Assistant entities (about 4 minutes a charge); EV Cloud reads
a charger without a car every 2 minutes, so around the unplug and the next
plug-in the test asks Home Assistant to read the charger
(``homeassistant.update_entity``, a user's refresh); the
OVMS demo car would reach its own charge limit and drive off, so its control
endpoint parks it at home and plugs it in at a low state of charge when the
charger's car connects (at home: the demo's own story may have it on a drive).
The car itself is only read when EV Cloud decides to (about 10 minutes for
the module).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import contextlib
from datetime import datetime
import threading
import time
from typing import Any

import aiohttp
from browser import TIMEOUT_MS, goto, launch
from conftest import NO_VALUE, ROOT, E2EHomeAssistant
from harness.flows import run_options_flow, set_home, wait_entry_loaded
from playwright import sync_api as playwright_api
import pytest
from test_browser import UI, Console, logged_in

VEHICLE = "ovms_DEMO"
STATISTIC = "ev_cloud:ovms_demo_energy_charged_at_home"
CHARGER_AMPS = 10  # one phase: 2.3 kW, the demo's 150 Wh in about 4 minutes
CAR_SOC_AT_PLUG_IN = 30  # the car's own charge then lasts 8 minutes, to its 80 %
SCREENSHOT = ROOT / "docs" / "images" / "vehicle-charging.png"
# Tall enough for the whole list of sensors (the panel scrolls inside the page).
SHOT_SIZE = {"width": 1280, "height": 2800}
READ_EVERY_S = 5


class EventListener:
    """Events of one type, received over a websocket subscription (a thread)."""

    def __init__(self, ha: E2EHomeAssistant, event_type: str) -> None:
        """Subscribe at once; ``events`` grows as they arrive."""
        self.url = ha.url.replace("http", "ws", 1) + "/api/websocket"
        self.token = ha.token
        self.event_type = event_type
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self._subscribed = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._subscribed.wait(30), f"no subscription: {self.error!r}"

    def _run(self) -> None:
        try:
            asyncio.run(self._listen())
        except Exception as err:  # reported by the constructor's wait
            self.error = err
            self._subscribed.set()

    async def _listen(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(self.url, heartbeat=30) as ws,
        ):
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token})
            assert (await ws.receive_json())["type"] == "auth_ok"
            await ws.send_json(
                {"id": 1, "type": "subscribe_events", "event_type": self.event_type}
            )
            reply = await ws.receive_json()
            assert reply.get("success"), reply
            self._subscribed.set()
            stopping = asyncio.create_task(self._stop.wait())
            while not self._stop.is_set():
                receiving = asyncio.create_task(ws.receive_json())
                await asyncio.wait(
                    {receiving, stopping}, return_when=asyncio.FIRST_COMPLETED
                )
                if not receiving.done():
                    receiving.cancel()
                    break
                message = receiving.result()
                if message.get("type") == "event":
                    self.events.append(message["event"])

    def close(self) -> None:
        """End the subscription."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def find_entity(ha: E2EHomeAssistant, unique_id: str) -> str | None:
    """The entity id of one of EV Cloud's entities, by its unique id."""
    (entities,) = ha.api.websocket("config/entity_registry/list")
    for entity in entities:
        if entity.get("platform") == "ev_cloud" and entity["unique_id"] == unique_id:
            return str(entity["entity_id"])
    return None


def entity_by_unique_id(ha: E2EHomeAssistant, unique_id: str) -> str:
    """The entity id of one of EV Cloud's entities (fails when there is none)."""
    entity_id = find_entity(ha, unique_id)
    assert entity_id, f"no EV Cloud entity with unique id {unique_id!r}"
    return entity_id


def device_of(ha: E2EHomeAssistant, key: str) -> str:
    """The registry id of EV Cloud's device ``key``."""
    (devices,) = ha.api.websocket("config/device_registry/list")
    for device in devices:
        if ["ev_cloud", key] in device["identifiers"]:
            return str(device["id"])
    pytest.fail(f"no EV Cloud device {key!r}")


def number(state: dict[str, Any]) -> float | None:
    """A state as a number (None: unknown or unavailable)."""
    return None if state["state"] in NO_VALUE else float(state["state"])


class Link:
    """What the tests of this module share: the linked car and its charger."""

    def __init__(self, ha: E2EHomeAssistant) -> None:
        """Look up the devices and entities once the link exists."""
        self.ha = ha
        self.charger_key = f"goe_{ha.sims['goe']['serial']}"
        self.vehicle_device = device_of(ha, VEHICLE)
        self.charger_device = device_of(ha, self.charger_key)
        self.estimate = entity_by_unique_id(ha, f"{VEHICLE}_estimated_battery_level")
        self.battery = entity_by_unique_id(ha, f"{VEHICLE}_battery_level")
        self.vehicle_session = entity_by_unique_id(
            ha, f"{VEHICLE}_last_charging_session"
        )
        self.charger_session = entity_by_unique_id(
            ha, f"{self.charger_key}_last_charging_session"
        )
        self.current = entity_by_unique_id(
            ha, f"{self.charger_key}_charge_current_limit"
        )
        self.phase_mode = entity_by_unique_id(ha, f"{self.charger_key}_phase_mode")
        self.plugged = entity_by_unique_id(ha, f"{self.charger_key}_plugged_in")
        self.last_read = 0.0

    def read_charger(self) -> None:
        """Ask Home Assistant to read the charger, at most every READ_EVERY_S.

        (EV Cloud reads a charger without a car every 2 minutes; the demo's car
        is away 35 s between two charges.)
        """
        if time.monotonic() - self.last_read >= READ_EVERY_S:
            self.last_read = time.monotonic()
            self.ha.api.call_service(
                "homeassistant", "update_entity", target={"entity_id": self.plugged}
            )

    def wait_plug_in(self) -> datetime:
        """Wait until Home Assistant sees the demo's car leave and connect again.

        Returns when it saw the car connect.
        """

        def plugged(wanted: str) -> bool:
            self.read_charger()
            return self.ha.state(self.plugged)["state"] == wanted

        self.ha.wait_until("the go-e demo's car to leave", lambda: plugged("off"), 400)
        self.ha.wait_until("the go-e demo's car to connect", lambda: plugged("on"), 60)
        return datetime.now().astimezone()

    def park_and_charge(self) -> None:
        """DEMO parks at home, plugged in at a low level (see the module's notes).

        At home, not where it is: the demo's own story may have it driving now.
        """
        home = self.ha.simulators["ovms"].demo.home
        assert home is not None
        self.ha.ovms_charge("DEMO", CAR_SOC_AT_PLUG_IN, at=home)

    def estimate_since(self, plugged_at: datetime) -> dict[str, Any] | None:
        """The estimate, once it adds energy to a car reading newer than the plug-in.

        (An estimate from an earlier reading may still show until Home Assistant
        reads the charger and sees the car connect.)
        """
        state = self.ha.state(self.estimate)
        attributes = state["attributes"]
        if number(state) is None or not attributes.get("energy_added_kwh"):
            return None
        fresh = datetime.fromisoformat(attributes["base_time"]) > plugged_at
        return state if fresh else None


@pytest.fixture(scope="module")
def link(ha: E2EHomeAssistant) -> Iterator[Link]:
    """DEMO linked to the go-e demo charger, which charges slowly; undone after."""
    ovms = ha.simulators["ovms"]
    assert ovms.demo.home is not None
    set_home(ha.api, *ovms.demo.home)
    run_options_flow(ha.api, ovms.demo, ha.entries["ovms"], ovms.values)
    # The entry reloads with the link, which adds the estimate to the car.
    ha.wait_until(
        "DEMO's estimated battery level",
        lambda: find_entity(ha, f"{VEHICLE}_estimated_battery_level"),
    )
    wait_entry_loaded(ha.api, ha.entries["ovms"])
    ha.wait_entities("ovms")
    linked = Link(ha)
    before = {
        entity: ha.state(entity)["state"]
        for entity in (linked.current, linked.phase_mode)
    }
    ha.api.call_service(
        "select",
        "select_option",
        {"entity_id": linked.phase_mode, "option": "force_1"},
    )
    ha.api.call_service(
        "number", "set_value", {"entity_id": linked.current, "value": CHARGER_AMPS}
    )
    ha.wait_until(
        "the go-e simulator to charge on one phase at 10 A",
        lambda: ha.goe_status("amp", "psm") == {"amp": CHARGER_AMPS, "psm": 1},
    )
    yield linked
    ha.api.call_service(
        "number",
        "set_value",
        {"entity_id": linked.current, "value": float(before[linked.current])},
    )
    ha.api.call_service(
        "select",
        "select_option",
        {"entity_id": linked.phase_mode, "option": before[linked.phase_mode]},
    )
    unlink(ha)


def unlink(ha: E2EHomeAssistant) -> None:
    """Take the charger out of DEMO's link in the options flow, as a user does."""
    path = "/api/config/config_entries/options/flow"
    step = ha.api.post_ok(path, {"handler": ha.entries["ovms"]})
    step = ha.api.post_ok(f"{path}/{step['flow_id']}", {"link_vehicle": VEHICLE})
    assert step.get("step_id") == "charger_link", step
    done = ha.api.post_ok(f"{path}/{step['flow_id']}", {"efficiency": 90})
    assert done.get("type") == "create_entry", done
    wait_entry_loaded(ha.api, ha.entries["ovms"])


def test_charge_at_home(ha: E2EHomeAssistant, link: Link) -> None:
    """Estimate between car reads, then the session's event, sensors and statistic."""
    sessions = EventListener(ha, "ev_cloud_charging_session")
    try:
        # A whole session at the slow setting: from the next plug-in to its unplug.
        plugged_at = link.wait_plug_in()
        # The session that ended at the unplug before is not this one.
        earlier_sessions = len(sessions.events)
        link.park_and_charge()

        # The link reads the car a minute after the charger saw the car connect;
        # from that reading on, the charger's energy is added to it.
        ha.wait_until(
            "an estimate from a car reading newer than the plug-in",
            lambda: link.estimate_since(plugged_at),
            180,
        )
        # Each estimate seen with the car's own level beside it, by the car
        # reading the estimate starts from.
        seen: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}

        def risen() -> tuple[dict[str, Any], dict[str, Any]] | None:
            car = ha.state(link.battery)
            state = link.estimate_since(plugged_at)
            if state is None or ha.state(link.battery) != car:
                return None  # (or the car was read meanwhile: look again)
            earlier = seen.setdefault(state["attributes"]["base_time"], [])
            earlier.append((state, car))
            rose = number(state) > number(earlier[0][0])  # type: ignore[operator]
            return (state, car) if rose else None

        try:
            second, car = ha.wait_until(
                "the estimate to rise between two reads of the car", risen, 180
            )
        except pytest.fail.Exception:
            history = {
                base: [
                    (s["state"], s["attributes"], c["state"])
                    for s, c in states[:: max(1, len(states) // 8)]
                ]
                for base, states in seen.items()
            }
            pytest.fail(f"the estimate did not rise between two reads: {history}")
        first, _ = seen[second["attributes"]["base_time"]][0]
        base = second["attributes"]["base_battery_level"]
        assert number(car) == pytest.approx(base), (car, second)
        assert number(second) > number(car), (car, second)  # type: ignore[operator]
        assert (
            second["attributes"]["energy_added_kwh"]
            > first["attributes"]["energy_added_kwh"]
        ), (first, second)

        # The unplug ends the session (the demo unplugs 20 s after the charge).
        def ended() -> bool:
            link.read_charger()
            return len(sessions.events) > earlier_sessions

        ha.wait_until("the charging session event", ended, 400)
        event = sessions.events[earlier_sessions]["data"]
    finally:
        sessions.close()
    assert event["vehicle_device_id"] == link.vehicle_device, event
    assert event["charger_device_id"] == link.charger_device, event
    # The demo takes 150 Wh a session; counted from the link's first reading.
    assert 0.1 <= event["energy_kwh"] <= 0.16, event
    # (Not compared: the test set the car's own level back at the plug-in.)
    assert event["start_soc"] is not None, event
    assert event["end_soc"] is not None, event
    assert event["peak_power_kw"] == pytest.approx(2.3, abs=0.1), event

    for entity in (link.vehicle_session, link.charger_session):
        state = ha.wait_state(entity, lambda value: value not in NO_VALUE, 30)
        assert float(state["state"]) == pytest.approx(event["energy_kwh"]), state
        assert state["attributes"]["start"] == event["start"], state
        assert state["attributes"]["end"] == event["end"], state

    def statistic_ids() -> list[dict[str, Any]] | None:
        (found,) = ha.api.websocket(
            {"type": "recorder/list_statistic_ids", "statistic_type": "sum"}
        )
        ours = [s for s in found if s["statistic_id"] == STATISTIC]
        return ours or None

    (meta,) = ha.wait_until("the statistic in the recorder", statistic_ids, 60)
    assert meta["source"] == "ev_cloud", meta
    assert meta["statistics_unit_of_measurement"] == "kWh", meta
    # Hourly rows start on the hour, before the session did.
    hour = datetime.fromisoformat(event["start"]).replace(
        minute=0, second=0, microsecond=0
    )
    (rows,) = ha.api.websocket(
        {
            "type": "recorder/statistics_during_period",
            "start_time": hour.isoformat(),
            "statistic_ids": [STATISTIC],
            "period": "hour",
            "types": ["sum"],
        }
    )
    # Sessions that ended after the link was made, before this one, count too.
    assert rows[STATISTIC][-1]["sum"] >= event["energy_kwh"] - 0.001, rows


def test_vehicle_page_while_charging(ha: E2EHomeAssistant, link: Link) -> None:
    """A screenshot of the car's device page: the estimate and the last session.

    Saved for the README (``docs/images/vehicle-charging.png``) while the next
    charge runs, after the one the test above followed.
    """
    ha.wait_state(link.vehicle_session, lambda value: value not in NO_VALUE, 30)
    plugged_at = link.wait_plug_in()
    link.park_and_charge()

    ha.wait_until(
        "an estimate while charging", lambda: link.estimate_since(plugged_at), 180
    )
    # The page shows whole percent: a picture is clearer once the estimate is a
    # point above the car's reading (not checked: the test above checks the rise,
    # and a charge of the demo adds at most 1.35 points).
    with contextlib.suppress(pytest.fail.Exception):
        ha.wait_until(
            "the estimate a point above the car's reading",
            lambda: (
                (state := link.estimate_since(plugged_at))
                and round(number(state) or 0)
                > round(state["attributes"]["base_battery_level"])
            ),
            150,
        )
    with playwright_api.sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(viewport=SHOT_SIZE, locale="en-US")
            context.set_default_timeout(TIMEOUT_MS)
            ui = UI(context.new_page(), Console(), ha.artifacts)
            logged_in(ui, ha)
            goto(ui.page, f"{ha.url}/config/devices/device/{link.vehicle_device}")
            expect = playwright_api.expect
            rows = [
                ui.page.get_by_text(name, exact=True).first
                for name in ("Estimated battery level", "Last charging session")
            ]
            for row in rows:
                expect(row).to_be_visible(timeout=30_000)
            ui.check("the OVMS DEMO device page")
            # From the top of the page down to the last session's row.
            boxes = [row.bounding_box() for row in rows]
            assert all(boxes), boxes
            bottom = max(box["y"] + box["height"] for box in boxes if box) + 24
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            ui.page.screenshot(
                path=SCREENSHOT,
                clip={"x": 0, "y": 0, "width": SHOT_SIZE["width"], "height": bottom},
            )
            ui.verify()
        finally:
            browser.close()
    assert SCREENSHOT.stat().st_size > 10_000
