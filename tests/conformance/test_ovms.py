"""OVMS server (REST): facts from the servers' published source and working clients.

The older server software, the "v2 server", is openvehicles/Open-Vehicle-Server
@ eae8472, `v2/server/ovms_server.pl` (servers such as ovms.dexters-web.de still
run it). The simulator reproduces it with `OvmsSimulator(server="v2")`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.api import (
    AuthenticationError,
    NotSupportedError,
    VehicleNotAvailableError,
)
from custom_components.ev_cloud.api.ovms import OvmsClient, parse_status
from custom_components.ev_cloud.const import DOMAIN
from tests.conftest import setup_entry
from tests.ovms.fixtures import ovms_data
from tests.simulators.ovms import OvmsSimulator, SimVehicle

USER = "alice"
PASSWORD = "alice-password-secret"
TOKEN = "alice-api-token-secret"
SOURCE = "openvehicles/Open-Vehicle-Server @ eae8472, v2/server/ovms_server.pl"


@pytest.fixture
async def v2_sim(socket_enabled: None) -> AsyncIterator[OvmsSimulator]:
    """A v2 server with alice's car and one of bob's."""
    simulator = OvmsSimulator(server="v2")
    simulator.add_user(USER, PASSWORD, tokens=[TOKEN])
    simulator.add_user("bob", "bob-password-secret")
    simulator.add_vehicle(SimVehicle("KMCAR", USER))
    simulator.add_vehicle(SimVehicle("SECRET", USER, paranoid=True))
    simulator.add_vehicle(SimVehicle("BOBCAR", "bob"))
    async with simulator:
        yield simulator


def _client(
    session: aiohttp.ClientSession, sim: OvmsSimulator, password: str = PASSWORD
) -> OvmsClient:
    return OvmsClient(session, sim.url, USER, password)


def _logins(sim: OvmsSimulator) -> int:
    return sim.requests.count(("GET", "/api/cookie"))


async def test_v2_server_refuses_wrong_credentials_with_404(
    session: aiohttp.ClientSession, v2_sim: OvmsSimulator
) -> None:
    """Wrong credentials are `404 Authentication failed`: rejected credentials.

    Source: openvehicles/Open-Vehicle-Server @ eae8472, v2/server/ovms_server.pl,
    `http_request_api_cookie_login` (404, reason and body "Authentication failed").
    """
    client = _client(session, v2_sim, "wrong-password")
    with pytest.raises(AuthenticationError, match="username or password"):
        await client.async_login()
    assert client.server_generation == "v2"


async def test_v2_server_has_no_api_tokens(
    session: aiohttp.ClientSession, v2_sim: OvmsSimulator
) -> None:
    """An API token is no password there: the login is refused like a wrong one.

    Source: openvehicles/Open-Vehicle-Server @ eae8472, v2/server/ovms_server.pl:
    `http_request_api_cookie_login` checks only the owner's password hash, and
    `http_request_in_api` reads no `username`/`password` on other calls (no
    tokens); openvehicles/Open-Vehicle-Monitoring-System-3 issue #650 (the
    operator of ovms.dexters-web.de: server version 2, no token authentication).
    """
    with pytest.raises(AuthenticationError):
        await _client(session, v2_sim, TOKEN).async_login()


async def test_v2_server_session_end_logs_in_again(
    session: aiohttp.ClientSession, v2_sim: OvmsSimulator
) -> None:
    """An expired session is `404 Authentication failed`: log in once more, resend.

    Source: openvehicles/Open-Vehicle-Server @ eae8472, v2/server/ovms_server.pl,
    `http_request_in_api` (no live session: 404 "Authentication failed"); clients
    that work against it log in again on 404: bassmaster187/OVMSLogger
    `WebHelper.cs`, majorfrog/ovms-hass `api.py` @ 7e165d8.
    """
    client = _client(session, v2_sim)
    await client.async_get_vehicles()
    v2_sim.expire_sessions()
    sent = len(v2_sim.requests)
    status = await client.async_get_status("KMCAR")
    assert status.received
    assert v2_sim.requests[sent:] == [
        ("GET", "/api/status/KMCAR"),
        ("GET", "/api/cookie"),
        ("GET", "/api/status/KMCAR"),
    ]
    assert client.login_count == 2


async def test_v2_server_sessions_last_while_they_are_used(
    session: aiohttp.ClientSession,
    v2_sim: OvmsSimulator,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Every request extends a session (120 s idle): busy clients keep theirs.

    A client that reads every 100 s keeps one session for an hour. One that
    reads every 300 s meets an ended session once, then logs in before each
    read instead of having it refused.
    Source: openvehicles/Open-Vehicle-Server @ eae8472, v2/server/ovms_server.pl:
    `http_request_in_api` sets `sessionused` on every call with a live session,
    `api_tim` ends sessions unused for `timeout_api` (default 60*2 s).
    """
    client = _client(session, v2_sim)

    async def read_after(seconds: int) -> None:
        freezer.tick(seconds)
        v2_sim.advance(seconds)
        assert (await client.async_get_status("KMCAR")).received

    await read_after(0)
    for _ in range(36):
        await read_after(100)
    assert _logins(v2_sim) == 1
    for _ in range(6):
        await read_after(300)
    reads = [path for _, path in v2_sim.requests if path == "/api/status/KMCAR"]
    assert len(reads) == 1 + 36 + 6 + 1  # the first read after 300 s is refused
    assert _logins(v2_sim) == 1 + 6


async def test_v2_server_cannot_connect_a_car(
    session: aiohttp.ClientSession, v2_sim: OvmsSimulator
) -> None:
    """Connect (`GET /api/vehicle/<id>`) is `404 Not yet implemented`.

    Source: openvehicles/Open-Vehicle-Server @ eae8472, v2/server/ovms_server.pl,
    `http_request_api_vehicle_get`.
    """
    client = _client(session, v2_sim)
    assert client.can_connect_vehicles
    with pytest.raises(NotSupportedError):
        await client.async_connect_vehicle("KMCAR")
    assert client.server_generation == "v2"
    assert not client.can_connect_vehicles


@pytest.mark.parametrize(
    ("vehicle_id", "reason"), [("BOBCAR", "not_owned"), ("SECRET", "paranoid")]
)
async def test_v2_server_forbidden_and_paranoid_are_404(
    session: aiohttp.ClientSession,
    v2_sim: OvmsSimulator,
    vehicle_id: str,
    reason: str,
) -> None:
    """Another account's car (404 Forbidden) and a paranoid one cannot be read.

    Source: openvehicles/Open-Vehicle-Server @ eae8472, v2/server/ovms_server.pl,
    `http_request_api_status` (404 "Forbidden"; 404 "Vehicle is paranoid").
    """
    with pytest.raises(VehicleNotAvailableError) as caught:
        await _client(session, v2_sim).async_get_status(vehicle_id)
    assert caught.value.reason == reason


async def test_v2_server_answers_carry_no_record_times(
    session: aiohttp.ClientSession, v2_sim: OvmsSimulator
) -> None:
    """Status has no `m_msgtime_s`/`m_msgage_s`; its values are still read.

    Source: openvehicles/Open-Vehicle-Server @ eae8472, v2/server/ovms_server.pl,
    `http_request_api_status` (no record time or age in the answer).
    """
    status = await _client(session, v2_sim).async_get_status("KMCAR")
    assert status.received
    assert status.soc == v2_sim.vehicle("KMCAR").soc
    assert status.s_time.msg_time is None
    assert status.s_time.msg_age is None


async def test_v2_server_records_in_one_request(
    session: aiohttp.ClientSession, v2_sim: OvmsSimulator
) -> None:
    """`/api/protocol` exists there too: a car's records are one request.

    Source: openvehicles/Open-Vehicle-Server @ eae8472, v2/server/ovms_server.pl,
    `http_request_api_protocol`.
    """
    client = _client(session, v2_sim)
    answers = await client.async_get_answers("KMCAR", datetime.now(UTC))
    assert parse_status(answers["status"]).soc == v2_sim.vehicle("KMCAR").soc
    assert not client.reads_each_record
    assert ("GET", "/api/protocol/KMCAR") in v2_sim.requests


@pytest.mark.parametrize("server", ["v3", "v2"])
async def test_protocol_refused_reads_each_record(
    session: aiohttp.ClientSession, socket_enabled: None, server: str
) -> None:
    """A server that answers `/api/protocol` with 404 is read record by record.

    Source: issue 18, point 8 (tried as a new user would: a server that refused
    `/api/protocol` gave an entry without devices and without a log line); a
    call a server does not know is 404 "Unrecognised API call"
    (Open-Vehicle-Server @ 1822ce2, v3/server/plugins/system/OVMS/Server/
    ApiHttpCore.pm `http_request_in_api`; @ eae8472 v2/server/ovms_server.pl).
    """
    async with OvmsSimulator(server=server, protocol_refused=True) as sim:
        sim.add_user(USER, PASSWORD)
        car = sim.add_vehicle(SimVehicle("KMCAR", USER))
        client = _client(session, sim)
        for _ in range(2):
            answers = await client.async_get_answers("KMCAR", datetime.now(UTC))
            assert parse_status(answers["status"]).soc == car.soc
        assert client.reads_each_record
        assert sim.requests.count(("GET", "/api/protocol/KMCAR")) == 1
        assert sim.requests.count(("GET", "/api/tpms/KMCAR")) == 2


async def test_v2_server_wrong_password_starts_reauth(
    hass: HomeAssistant, v2_sim: OvmsSimulator
) -> None:
    """A changed password on a v2 server asks the user for the new one.

    Source: openvehicles/Open-Vehicle-Server @ eae8472, v2/server/ovms_server.pl,
    `http_request_api_cookie_login` (wrong credentials: 404 "Authentication
    failed", not 401).
    """
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=f"{v2_sim.url.removeprefix('http://')}/{USER}",
        data=ovms_data(v2_sim, username=USER, password="old-password"),
        options={"excluded_vehicles": []},
    )
    await setup_entry(hass, entry)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]
