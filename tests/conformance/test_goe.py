"""go-e: what independent sources show about real chargers, against the simulator.

Each case names its source; the simulator variant reproduces the fact
(`SimCharger(model=CORE or PRO)`, `SimCharger(set_failure_status=500)`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.api import CommandRejectedError
from custom_components.ev_cloud.api.goe import STATUS_KEYS, GoeClient
from tests.conftest import setup_entry
from tests.goe.fixtures import SERIAL as FIXTURE_SERIAL
from tests.simulators.goe import CORE, HOME_ONLY_KEYS, PRO, GoeSimulator, SimCharger

SERIAL = "000314"
TOKEN = "conformance-token-000314"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


def _client(
    session: aiohttp.ClientSession, sim: GoeSimulator, connection: str
) -> GoeClient:
    if connection == "cloud":
        return GoeClient.cloud(session, SERIAL, TOKEN, sim.cloud_url, min_interval=0)
    return GoeClient.local(session, sim.local_host(SERIAL), min_interval=0)


@pytest.mark.parametrize("model", [CORE, PRO])
async def test_cloud_answer_400_with_the_filtered_status_is_a_status(
    session: aiohttp.ClientSession, socket_enabled: None, model: str
) -> None:
    """A filter naming keys the model lacks is answered 400 with the keys it has.

    Sources: https://github.com/goecharger/go-eCharger-API-v2/issues/312 (PRO,
    firmware 60.3: "returns the filtered JSON, but with HTTP 400 Bad Request";
    `cbl` named as a key CORE and PRO lack);
    https://github.com/marq24/ha-goecharger-api2/issues/66 (CORE/PRO setup failed
    on the 400), fixed in marq24/ha-goecharger-api2 commit 5a29e65 by accepting
    200 and 400 in the one request path it uses for the cloud and the local API
    (`pygoecharger_ha/__init__.py`, still so at b48a90c). The local API was
    accepted before; this case is the cloud.
    """
    charger = SimCharger(serial=SERIAL, token=TOKEN, model=model)
    async with GoeSimulator([charger]) as sim:
        reading = await _client(session, sim, "cloud").async_get_status()
    assert charger.status_codes == [400]
    assert reading.status.serial == SERIAL
    assert reading.status.requested_current == 16
    assert reading.status.cable_lock_mode is None


@pytest.mark.parametrize("connection", ["cloud", "local"])
async def test_keys_core_and_pro_lack_are_learnt_and_left_out(
    session: aiohttp.ClientSession, socket_enabled: None, connection: str
) -> None:
    """`cbl`, `cus`, `lck`, `ust` and `psm` are not asked for again (then 200).

    Source: goecharger/go-eCharger-API-v2 @ b4d7f85, the key exports
    `API_KEYS_FIRMWARE/apikeys_Firmware_60.3_sortet.md` and
    `apikeys_Firmware_60.4_sorted.md` (the PRO/CORE firmware, see
    `Changelogs_PRO/`): no `cbl`, `cus`, `lck`, `ust` (60.2 and 59.4 have them);
    no `psm` in any export.
    """
    charger = SimCharger(serial=SERIAL, token=TOKEN, model=CORE)
    async with GoeSimulator([charger]) as sim:
        client = _client(session, sim, connection)
        await client.async_get_status()
        second = await client.async_get_status()
    filters = [set(request["filter"].split(",")) for request in charger.status_requests]
    assert filters == [set(STATUS_KEYS), set(STATUS_KEYS) - HOME_ONLY_KEYS]
    assert charger.status_codes == [400, 200]
    assert second.status.missing_keys == ("cbl", "cus", "lck", "psm", "ust")


@pytest.mark.parametrize("goe_model", [CORE, PRO])
async def test_core_and_pro_get_no_cable_lock_or_phase_mode_entities(
    hass: HomeAssistant,
    goe_local_entry: MockConfigEntry,
    entity_registry: er.EntityRegistry,
) -> None:
    """No entity for the cable lock (`cus`, `ust`) nor the phase mode (`psm`).

    Sources: marq24/ha-goecharger-api2 @ b48a90c, `custom_components/
    goecharger_api2/__init__.py` `is_valid_charger_entity` (CORE/PRO: no `cus`,
    `lck`, `cbl`, `ust` entities); the firmware 60.3/60.4 key exports (above).
    """
    await setup_entry(hass, goe_local_entry)
    keys = {
        entry.unique_id.removeprefix(f"goe_{FIXTURE_SERIAL}_")
        for entry in er.async_entries_for_config_entry(
            entity_registry, goe_local_entry.entry_id
        )
    }
    assert "force_state" in keys
    assert not keys & {"cable_unlock_status", "cable_lock_mode", "phase_mode"}


async def test_local_set_refusal_with_500_names_the_key(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    """A local `/api/set` may answer 500 with an error JSON naming the key.

    Source: marq24/ha-goecharger-api2 @ b48a90c,
    `custom_components/goecharger_api2/pygoecharger_ha/__init__.py`
    (`_write_values_int`: a 500 with a body is read as the charger's error JSON).
    The body's shape, `{"key": "error text"}`, is the one the local API docs
    show for a refused key (goecharger/go-eCharger-API-v2 `http-en.md`).
    """
    charger = SimCharger(serial=SERIAL, token=TOKEN, set_failure_status=500)
    async with GoeSimulator([charger]) as sim:
        client = _client(session, sim, "local")
        with pytest.raises(CommandRejectedError, match="frc"):
            await client.async_set({"frc": 9})
        await client.async_set({"frc": 2})
    assert charger.set_log == [{"frc": 2}]
