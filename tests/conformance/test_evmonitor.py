"""EV-Monitor: what its documentation leaves open, against the simulator variant.

No open-source client of the ev-monitor.com API could be found, so the only
source is its developer page, https://ev-monitor.com/web/devs (the crawled
excerpt is `reference/api-docs/ev-monitor.txt`; independent-sources.md, row
"EV-Monitor"). It says "The API accepts and returns JSON only", then writes
every variable in PHP form notation (`data[0][general][speed]=...`). A service
that reads only JSON bodies is the simulator's `EvMonitorBodyMode.JSON_ONLY`:
to a form it answers as to an empty body (the login "Email / Password
combination wrong!", other calls "Missing field token"). Neither reading is
confirmed against the live service.
"""

from __future__ import annotations

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant import config_entries
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.api.evmonitor import Dataset, EvMonitorClient
from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.diagnostics import async_get_config_entry_diagnostics
from tests.conftest import setup_entry
from tests.evmonitor.fixtures import EMAIL, PASSWORD, START, park, rocket, tick
from tests.simulators.evmonitor import EvMonitorBodyMode, EvMonitorSimulator


@pytest.fixture
def evmonitor_body_mode() -> EvMonitorBodyMode:
    """The service of every case here reads only JSON bodies."""
    return EvMonitorBodyMode.JSON_ONLY


async def test_json_only_service_login_vehicles_names_and_push(
    session: aiohttp.ClientSession, evmonitor_sim: EvMonitorSimulator
) -> None:
    """A service that reads only JSON: every call works, the push nested as in PHP.

    Source: https://ev-monitor.com/web/devs ("The API accepts and returns JSON
    only"; the variables in PHP form notation, `data[0][general][batt][0][soc]`),
    excerpt in reference/api-docs/ev-monitor.txt.
    """
    api = EvMonitorClient(session, evmonitor_sim.url, EMAIL, PASSWORD)
    [vehicle] = await api.async_get_vehicles()
    assert vehicle.vehicle_id == rocket(evmonitor_sim).id
    assert vehicle.make_id is not None
    assert vehicle.model_id is not None
    assert await api.async_get_name("make", vehicle.make_id) == "Energica"
    assert await api.async_get_name("model", vehicle.model_id) == "SS9"
    await api.async_push(
        [
            Dataset(
                vehicle.vehicle_id,
                START,
                soc=64,
                latitude=48.1,
                longitude=11.5,
                accuracy_m=5,
            )
        ],
        batch_id="conformance-1",
    )
    [stored] = evmonitor_sim.datasets
    assert stored.encoding == "json"
    assert stored.batch_id == "conformance-1"
    assert stored.general["batt"] == {0: {"soc": 64}}
    assert stored.general["gps"] == {"lat": 48.1, "lng": 11.5, "acc": 5}
    # One login refused to a form, then JSON throughout.
    assert [(endpoint, sent) for endpoint, sent, _ in evmonitor_sim.bodies] == [
        ("login", "form"),
        ("login", "json"),
        ("get_vehicles", "json"),
        ("get_make", "json"),
        ("get_model", "json"),
        ("push", "json"),
    ]
    assert api.login_count == 1


async def test_json_only_service_setup_flow(
    hass: HomeAssistant, evmonitor_sim: EvMonitorSimulator
) -> None:
    """Setup against a service that reads only JSON signs in and lists the vehicle.

    Source: https://ev-monitor.com/web/devs ("The API accepts and returns JSON
    only"), excerpt in reference/api-docs/ev-monitor.txt. Before, the form said
    the password was wrong (invalid_auth), though it was right.
    """
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "evmonitor"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            "username": EMAIL,
            "password": PASSWORD,
            "advanced": {"server_url": evmonitor_sim.url},
        },
    )
    assert result.get("errors") in (None, {})
    assert result["step_id"] == "evmonitor_vehicle"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"vehicle": rocket(evmonitor_sim).id, "source": "entities"}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"soc": "sensor.car_battery"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "EV-Monitor The Rocket"
    await hass.async_block_till_done()
    assert result["result"].state is ConfigEntryState.LOADED


async def test_json_only_service_is_remembered_and_shown(
    hass: HomeAssistant,
    freezer: FrozenDateTimeFactory,
    evmonitor_entry: MockConfigEntry,
    evmonitor_sim: EvMonitorSimulator,
) -> None:
    """Uploads reach a JSON-only service; JSON is kept for the address and shown.

    Diagnostics say "json"; a password changed at EV-Monitor then costs one
    refused (JSON) login before the reauth, not a form first.

    Source: https://ev-monitor.com/web/devs ("The API accepts and returns JSON
    only"), excerpt in reference/api-docs/ev-monitor.txt.
    """
    park(hass)
    await setup_entry(hass, evmonitor_entry)
    await tick(hass, freezer, evmonitor_sim, 300)
    [stored] = evmonitor_sim.datasets
    assert stored.encoding == "json"
    diagnostics = await async_get_config_entry_diagnostics(hass, evmonitor_entry)
    assert diagnostics["account"]["body_encoding"] == "json"
    evmonitor_sim.users[EMAIL].password = "changed-at-ev-monitor"
    evmonitor_sim.expire_tokens()
    park(hass, soc=40)
    await tick(hass, freezer, evmonitor_sim, 900)
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == [SOURCE_REAUTH]
    logins = [sent for endpoint, sent, _ in evmonitor_sim.bodies if endpoint == "login"]
    assert logins == ["form", "json", "json"]
