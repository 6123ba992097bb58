"""Config entries: the config flow as a user clicks it, setup, devices, entities."""

import time
from typing import Any

from tests.simulators.demo import SimulatorDemo

from .api import HomeAssistantApi
from .common import DOMAIN, HarnessError


def list_entries(api: HomeAssistantApi) -> list[dict[str, Any]]:
    """Return the ev_cloud config entries."""
    return list(api.get_ok(f"/api/config/config_entries/entry?domain={DOMAIN}"))


def find_entry(api: HomeAssistantApi, identifier: str) -> dict[str, Any] | None:
    """Return the ev_cloud entry whose title or device carries ``identifier``."""
    entries = list_entries(api)
    for entry in entries:
        if identifier in entry["title"]:
            return entry
    by_id = {entry["entry_id"]: entry for entry in entries}
    if not by_id:
        return None
    # The title may not name the device: look at the devices' serials and identifiers.
    (devices,) = api.websocket("config/device_registry/list")
    for device in devices:
        names = [str(value) for _, value in device["identifiers"]]
        names.append(str(device.get("serial_number")))
        if any(identifier in name for name in names):
            for entry_id in device["config_entries"]:
                if entry_id in by_id:
                    return by_id[entry_id]
    return None


def run_config_flow(
    api: HomeAssistantApi, demo: SimulatorDemo, sim: dict[str, str]
) -> dict[str, Any]:
    """Click through the config flow as a user would; return the created entry."""
    base = "/api/config/config_entries/flow"
    step = api.post_ok(base, {"handler": DOMAIN, "show_advanced_options": True})
    flow_id = step.get("flow_id")
    try:
        for choice in demo.menu_path:
            expect_step(step, "menu", choice_in=choice)
            step = api.post_ok(f"{base}/{flow_id}", {"next_step_id": choice})
        for step_id, user_input in demo.forms:
            expect_step(step, "form", step_id=step_id)
            step = api.post_ok(f"{base}/{flow_id}", user_input(sim))
        expect_step(step, "create_entry")
    except HarnessError:
        # Leave no half-finished flow behind in HA's UI.
        api.request("DELETE", f"{base}/{flow_id}")
        raise
    return dict(step["result"])


def expect_step(
    step: Any, kind: str, *, step_id: str | None = None, choice_in: str | None = None
) -> None:
    """Raise HarnessError (with HA's answer) unless the flow is where we expect."""
    ok = isinstance(step, dict) and step.get("type") == kind
    if ok and step_id is not None:
        ok = step.get("step_id") == step_id
    if ok and choice_in is not None:
        options = step.get("menu_options") or []
        ok = choice_in in (options if isinstance(options, list) else list(options))
    if not ok:
        wanted = " ".join(
            filter(None, [kind, step_id, choice_in and f"with option {choice_in!r}"])
        )
        raise HarnessError(f"config flow: expected a {wanted}, HA answered: {step}")


def wait_entry_loaded(
    api: HomeAssistantApi, entry_id: str, timeout: float = 60
) -> dict[str, Any]:
    """Wait until the entry leaves setup (loaded, or failed with a reason)."""
    deadline = time.monotonic() + timeout
    entry: dict[str, Any] = {}
    while time.monotonic() < deadline:
        entry = next((e for e in list_entries(api) if e["entry_id"] == entry_id), {})
        if entry.get("state") not in (None, "not_loaded", "setup_in_progress"):
            break
        time.sleep(0.5)
    return entry


def entry_entities(api: HomeAssistantApi, entry_id: str) -> tuple[int, int, list]:
    """Return (devices, registered entities, live states) of one config entry."""
    devices, entities = api.websocket(
        "config/device_registry/list", "config/entity_registry/list"
    )
    devices = [d for d in devices if entry_id in d["config_entries"]]
    entity_ids = {e["entity_id"] for e in entities if e["config_entry_id"] == entry_id}
    # Entities disabled by default (diagnostics) are registered but have no state.
    states = [s for s in api.get_ok("/api/states") if s["entity_id"] in entity_ids]
    return len(devices), len(entity_ids), sorted(states, key=lambda s: s["entity_id"])
