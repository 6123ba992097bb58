"""Self-test of the OVMS server simulator, over real HTTP on 127.0.0.1."""

import argparse
import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
import json
import logging
import socket
import time
from typing import Any

import aiohttp
import pytest

from custom_components.ev_cloud.api.ovms_v2 import OvmsV2Client
from tests.simulators import ovms
from tests.simulators.ovms import (
    CHARGE_D_KEYS,
    CHARGE_S_KEYS,
    EXTRA_CHARGE_KEYS,
    LOCATION_KEYS,
    STATUS_D_KEYS,
    STATUS_S_KEYS,
    OvmsFault,
    OvmsSimulator,
    SimVehicle,
)

USER = "alice"
PASSWORD = "alice-password"
TOKEN = "alice-token-0123456789"
OTHER = "bob"
OTHER_PASSWORD = "bob-password"
CREDENTIALS = {"username": USER, "password": PASSWORD}
FLAG_BITS = {
    "fl_dooropen": 1,
    "fr_dooropen": 2,
    "cp_dooropen": 4,
    "pilotpresent": 8,
    "charging": 16,
    "caron": 128,
    "carlocked": 8,
    "valetmode": 16,
    "bt_open": 64,
    "tr_open": 128,
    "charging_12v": 16,
    "carawake": 2,
    "alarmsounding": 4,
}


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[OvmsSimulator]:
    """A running server: alice owns DEMO (km) and ROADSTER (miles), bob owns BOBCAR."""
    simulator = OvmsSimulator(hold_seconds=0)
    simulator.add_user(USER, PASSWORD, [TOKEN])
    simulator.add_user(OTHER, OTHER_PASSWORD)
    simulator.add_vehicle(SimVehicle("DEMO", USER))
    simulator.add_vehicle(SimVehicle("ROADSTER", USER, units="M", tpms_format="W"))
    simulator.add_vehicle(SimVehicle("BOBCAR", OTHER))
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session whose jar keeps cookies of IP hosts."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as c:
        yield c


async def _call(
    session: aiohttp.ClientSession,
    sim: OvmsSimulator,
    path: str,
    method: str = "GET",
    params: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    async with session.request(method, f"{sim.url}{path}", params=params) as response:
        return response.status, dict(response.headers), await response.text()


async def _json(session: aiohttp.ClientSession, sim: OvmsSimulator, path: str) -> Any:
    status, headers, text = await _call(session, sim, path, params=CREDENTIALS)
    assert status == 200, text
    assert headers["Content-Type"] == "application/json"
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert text.endswith("\n")
    data = json.loads(text)
    # Canonical: sorted keys, no spaces.
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n"
    return data


async def test_auth_and_vehicle_list(
    sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """Password or token in the query authenticate; failures are a plain 401."""
    for params in (None, {"username": USER, "password": "wrong"}, {"username": USER}):
        status, headers, text = await _call(
            session, sim, "/api/vehicles", params=params
        )
        assert (status, text) == (401, "Authentication failed\n")
        assert headers["Content-Type"] == "text/plain"
        assert headers["Access-Control-Allow-Origin"] == "*"
    expected = [
        {
            "id": "DEMO",
            "v_apps_connected": 0,
            "v_btcs_connected": 0,
            "v_net_connected": 1,
        },
        {
            "id": "ROADSTER",
            "v_apps_connected": 0,
            "v_btcs_connected": 0,
            "v_net_connected": 1,
        },
    ]
    assert await _json(session, sim, "/api/vehicles") == expected
    status, _, text = await _call(
        session, sim, "/api/vehicles", params={"username": USER, "password": TOKEN}
    )
    assert status == 200
    assert json.loads(text) == expected
    # The request log never holds the query string (it carries credentials).
    assert ("GET", "/api/vehicles") in sim.requests
    assert all("?" not in path for _, path in sim.requests)


async def test_cookie_session_lifecycle(
    sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """Login sets a bare cookie; re-login replaces; logout and idle expiry end it."""
    status, headers, text = await _call(session, sim, "/api/cookie", params=CREDENTIALS)
    assert (status, text) == (200, "Login ok\n")
    assert headers["Content-Type"] == "text/plain"
    name, _, first_id = headers["Set-Cookie"].partition("=")
    assert name == "ovmsapisession"
    assert ";" not in first_id  # no Path, Expires or Max-Age attributes
    assert list(sim.sessions) == [first_id]
    # The jar now sends the cookie; no credentials needed.
    status, _, _ = await _call(session, sim, "/api/vehicles")
    assert status == 200

    # Logging in again with the cookie (no credentials) replaces the session.
    status, headers, _ = await _call(session, sim, "/api/cookie")
    assert status == 200
    second_id = headers["Set-Cookie"].partition("=")[2]
    assert list(sim.sessions) == [second_id] != [first_id]

    # Idle expiry on the simulated clock; each request refreshes the session.
    sim.advance(100)
    assert (await _call(session, sim, "/api/vehicles"))[0] == 200
    sim.advance(100)
    assert (await _call(session, sim, "/api/vehicles"))[0] == 200
    sim.advance(121)
    assert sim.sessions == {}
    status, _, text = await _call(session, sim, "/api/vehicles")
    assert (status, text) == (401, "Authentication failed\n")
    # A dead cookie plus credentials still works.
    assert (await _call(session, sim, "/api/vehicles", params=CREDENTIALS))[0] == 200

    # Logout disconnects the session's vehicles.
    await _call(session, sim, "/api/cookie", params=CREDENTIALS)
    (session_id,) = sim.sessions
    await _call(session, sim, "/api/vehicle/DEMO")
    assert sim.connected_peers["DEMO"] == {session_id}
    status, _, text = await _call(session, sim, "/api/cookie", "DELETE")
    assert (status, text) == (200, "Logout ok\n")
    assert sim.sessions == {}
    assert sim.connected_peers["DEMO"] == set()
    assert sim.vehicle("DEMO").peer_counts_sent == [1, 0]


async def test_expire_sessions_and_no_refresh(socket_enabled: None) -> None:
    """expire_sessions() drops all; refresh_sessions=False counts from login."""
    sim = OvmsSimulator(session_timeout=60, refresh_sessions=False)
    sim.add_user(USER, PASSWORD)
    async with (
        sim,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as c,
    ):
        await _call(c, sim, "/api/cookie", params=CREDENTIALS)
        sim.advance(40)
        assert (await _call(c, sim, "/api/vehicles"))[0] == 200
        sim.advance(21)  # 61 s after login, though used 21 s ago
        assert (await _call(c, sim, "/api/vehicles"))[0] == 401
        await _call(c, sim, "/api/cookie", params=CREDENTIALS)
        sim.expire_sessions()
        assert sim.sessions == {}
        assert (await _call(c, sim, "/api/vehicles"))[0] == 401


async def test_token_rights(sim: OvmsSimulator, session: aiohttp.ClientSession) -> None:
    """An `auth` token reads vehicles but cannot open a session or manage tokens."""
    token_params = {"username": USER, "password": TOKEN}
    status, _, text = await _call(session, sim, "/api/cookie", params=token_params)
    assert (status, text) == (403, "Insufficient rights\n")
    assert (await _call(session, sim, "/api/token", params=token_params))[0] == 403
    assert (await _call(session, sim, "/api/status/DEMO", params=token_params))[
        0
    ] == 200

    status, _, text = await _call(
        session,
        sim,
        "/api/token",
        "POST",
        params=CREDENTIALS | {"application": "ha", "permit": "auth,session"},
    )
    assert status == 201
    created = json.loads(text)
    assert created["owner"] == USER
    assert created["application"] == "ha"
    assert created["purpose"] == "notspecified"
    assert len(created["token"]) == 64
    new_params = {"username": USER, "password": created["token"]}
    assert (await _call(session, sim, "/api/cookie", params=new_params))[0] == 200
    # The session has the token's rights only.
    assert (await _call(session, sim, "/api/token"))[0] == 403
    session.cookie_jar.clear()
    tokens = await _json(session, sim, "/api/token")
    assert {row["token"] for row in tokens} == {TOKEN, created["token"]}
    assert set(tokens[0]) == {
        "owner",
        "token",
        "application",
        "purpose",
        "permit",
        "created",
        "refreshed",
        "lastused",
    }
    path = f"/api/token/{created['token']}"
    status, _, text = await _call(session, sim, path, "DELETE", params=CREDENTIALS)
    assert status == 200
    assert json.loads(text) == {"owner": USER, "token": created["token"]}
    session.cookie_jar.clear()
    assert (await _call(session, sim, "/api/vehicles", params=new_params))[0] == 401


async def test_connect_and_disconnect(
    sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """Connecting registers an app peer per session; the car is told the count."""
    await _call(session, sim, "/api/cookie", params=CREDENTIALS)
    (first,) = sim.sessions
    sim.advance(5)
    data = await _json(session, sim, "/api/vehicle/DEMO")
    assert data == {
        "m_msgage_s": 0,
        "m_msgtime_s": datetime.fromtimestamp(sim.now, UTC).strftime(
            "%Y-%m-%d %H:%M:%S"
        ),
        "v_apps_connected": 1,
        "v_btcs_connected": 0,
        "v_first_peer": 1,
        "v_net_connected": 1,
    }
    assert sim.connected_peers["DEMO"] == {first}
    assert sim.vehicle("DEMO").fast_updates
    # A second client (credentials only, no cookie) is peer "-".
    async with aiohttp.ClientSession() as other:
        data = await _json(other, sim, "/api/vehicle/DEMO")
    assert (data["v_apps_connected"], data["v_first_peer"]) == (2, 0)
    assert sim.connected_peers["DEMO"] == {first, "-"}
    vehicles = await _json(session, sim, "/api/vehicles")
    assert vehicles[0]["v_apps_connected"] == 2

    status, headers, text = await _call(session, sim, "/api/vehicle/DEMO", "DELETE")
    assert (status, text) == (200, "Disconnect OK\n")
    assert headers["Content-Type"] == "application/json"  # though not JSON
    assert sim.connected_peers["DEMO"] == {"-"}
    assert sim.vehicle("DEMO").peer_counts_sent == [1, 2, 1]


async def test_status_charge_location_key_sets(
    sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """Exactly the documented keys; record fields are strings, flags bit values."""
    ages_s = {"m_msgtime_s", "m_msgage_s"}
    ages_d = {"m_msgtime_d", "m_msgage_d"}
    status = await _json(session, sim, "/api/status/DEMO")
    assert set(status) == {*STATUS_S_KEYS, *STATUS_D_KEYS} | ages_s | ages_d
    charge = await _json(session, sim, "/api/charge/DEMO")
    assert set(charge) == {*CHARGE_S_KEYS, *CHARGE_D_KEYS} | ages_s | ages_d
    location = await _json(session, sim, "/api/location/DEMO")
    assert set(location) == {*LOCATION_KEYS, "m_msgtime_l", "m_msgage_l"}
    for data in (status, charge, location):
        for key, value in data.items():
            if key in FLAG_BITS or key.startswith("m_msgage_"):
                assert type(value) is int, key
            else:
                assert type(value) is str, key
    assert status["soc"] == "80.0"
    assert status["units"] == "K"
    assert status["odometer"] == "123456"  # 12345.6 km in 1/10 km
    assert status["carlocked"] == 8
    assert status["pilotpresent"] == 0
    assert location["latitude"] == "51.477928"

    sim.server_extras = True
    charge = await _json(session, sim, "/api/charge/DEMO")
    assert set(EXTRA_CHARGE_KEYS) <= set(charge)
    assert "handbrake" in await _json(session, sim, "/api/status/DEMO")
    assert "invpower" in await _json(session, sim, "/api/location/DEMO")


async def test_flags_are_bit_values(
    sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """Every flag that is set reads as its bit value; the unreliable two differ."""
    car = sim.vehicle("DEMO")
    car.plug_in()
    car.start_charging()
    car.fl_door_open = car.fr_door_open = car.car_on = True
    car.valet = car.bonnet_open = car.trunk_open = True
    car.awake = True  # firmware bit 0: the server never reports it
    car.alarm_sounding = True  # firmware bit 1: the server reads bit 2
    status = await _json(session, sim, "/api/status/DEMO")
    expected = FLAG_BITS | {"carawake": 0, "alarmsounding": 0}
    assert {key: status[key] for key in FLAG_BITS} == expected
    car.cooling_pump = True
    assert (await _json(session, sim, "/api/status/DEMO"))["carawake"] == 2


async def test_miles(sim: OvmsSimulator, session: aiohttp.ClientSession) -> None:
    """Units "M" converts distances and speeds to miles."""
    car = sim.vehicle("ROADSTER")
    car.odometer_km = 16093.44  # 10000 miles
    car.speed = 96.56064  # 60 mph
    status = await _json(session, sim, "/api/status/ROADSTER")
    assert status["units"] == "M"
    assert status["odometer"] == "100000"
    assert status["speed"] == "60"
    assert status["idealrange"] == str(round(300 * 0.8 / 1.609344))


async def test_charging_story(
    sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """Plugging in and charging shows up; soc grows with advance() up to the limit."""
    car = sim.vehicle("DEMO")
    with pytest.raises(ValueError, match="not plugged in"):
        car.start_charging()
    car.plug_in()
    car.start_charging()
    sim.advance(600)  # 7.2 kW for 10 min = 1.2 kWh = 3 % of 40 kWh
    charge = await _json(session, sim, "/api/charge/DEMO")
    assert charge["soc"] == "83.0"
    assert charge["chargestate"] == "charging"
    assert charge["chargekwh"] == "12"
    assert charge["chargeduration"] == "600"
    assert charge["chargepower"] == "7.200"
    assert (charge["pilotpresent"], charge["charging"], charge["cp_dooropen"]) == (
        8,
        16,
        4,
    )
    assert int(charge["charge_etr_full"]) > 0
    car.charge_limit_soc = 90
    sim.advance(3600)
    charge = await _json(session, sim, "/api/charge/DEMO")
    assert (charge["soc"], charge["chargestate"], charge["charging"]) == (
        "90.0",
        "done",
        0,
    )
    car.unplug()
    car.drive(10)
    status = await _json(session, sim, "/api/status/DEMO")
    assert status["pilotpresent"] == 0
    assert status["odometer"] == "123556"
    assert float(status["soc"]) == pytest.approx(86.0)
    car.plug_in()
    with pytest.raises(ValueError, match="unplug"):
        car.drive(1)


async def test_silent_car_ages(
    sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """A silent car's records freeze and age; when it resumes they are fresh."""
    car = sim.vehicle("DEMO")
    car.plug_in()
    car.start_charging()
    car.set_silent(True)
    sim.advance(300)
    status = await _json(session, sim, "/api/status/DEMO")
    assert (status["m_msgage_s"], status["m_msgage_d"]) == (300, 300)
    assert status["soc"] == "80.0"  # what the car sent last
    location = await _json(session, sim, "/api/location/DEMO")
    assert location["m_msgage_l"] == 300
    tpms = await _json(session, sim, "/api/tpms/DEMO")
    assert tpms["m_msgage_y"] == tpms["m_msgage_w"] == 300
    connect = await _json(session, sim, "/api/vehicle/DEMO")
    assert connect["m_msgage_s"] == 300
    assert connect["v_net_connected"] == 1

    car.set_silent(False)
    status = await _json(session, sim, "/api/status/DEMO")
    assert status["m_msgage_s"] == 0
    assert float(status["soc"]) > 80

    # Offline works the same and also shows in v_net_connected.
    car.car_online = False
    sim.advance(30)
    assert (await _json(session, sim, "/api/status/DEMO"))["m_msgage_s"] == 30
    assert (await _json(session, sim, "/api/vehicles"))[0]["v_net_connected"] == 0


async def test_tpms_and_missing_records(
    sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """Y record with _w copies, W record fallback, never received -> {}."""
    tpms = await _json(session, sim, "/api/tpms/DEMO")
    for wheel in ("fl", "fr", "rl", "rr"):
        assert type(tpms[f"{wheel}_pressure_kpa"]) is str
        assert type(tpms[f"{wheel}_pressure"]) is float
        for suffix in ("temperature", "health", "alert"):
            assert type(tpms[f"{wheel}_{suffix}"]) is str
    assert tpms["fl_pressure_kpa"] == "250.0"
    assert tpms["fl_pressure"] == pytest.approx(36.2594, abs=1e-4)
    assert tpms["staletpms"] == 1
    assert {
        "stale_pressure",
        "stale_temperature",
        "stale_health",
        "stale_alert",
    } <= set(tpms)
    old = await _json(session, sim, "/api/tpms/ROADSTER")
    assert set(old) == {
        "fr_pressure",
        "fr_temperature",
        "rr_pressure",
        "rr_temperature",
        "fl_pressure",
        "fl_temperature",
        "rl_pressure",
        "rl_temperature",
        "staletpms",
        "m_msgtime_w",
        "m_msgage_w",
    }
    assert old["fl_pressure"] == "36.3"
    sim.vehicle("DEMO").tpms_format = "none"
    sim.vehicle("DEMO").location_received = False
    assert await _json(session, sim, "/api/tpms/DEMO") == {}
    assert await _json(session, sim, "/api/location/DEMO") == {}


async def test_errors(sim: OvmsSimulator, session: aiohttp.ClientSession) -> None:
    """403 for foreign or unknown cars, 502 paranoid, 404 unknown calls, 501 stubs."""
    for path in ("/api/status/BOBCAR", "/api/vehicle/NOPE", "/api/charge/"):
        status, headers, text = await _call(session, sim, path, params=CREDENTIALS)
        assert (status, text) == (403, "Forbidden\n"), path
        assert headers["Access-Control-Allow-Origin"] == "*"
    sim.vehicle("DEMO").paranoid = True
    for path in ("status", "charge", "location", "tpms"):
        status, _, text = await _call(
            session, sim, f"/api/{path}/DEMO", params=CREDENTIALS
        )
        assert (status, text) == (502, "Paranoid vehicles not supported by api\n")
    # Unknown calls are 404 even without credentials (routing comes first).
    for method, path in (("GET", "/api/command/DEMO"), ("POST", "/api/status/DEMO")):
        status, _, text = await _call(session, sim, path, method)
        assert (status, text) == (404, "Unrecognised API call\n")
    status, _, text = await _call(session, sim, "/index.html")
    assert (status, text) == (404, "not found\n")
    stubs = [
        ("PUT", "charge"),
        ("DELETE", "charge"),
        *((method, name) for method in ("GET", "PUT", "DELETE") for name in ("lock",)),
        *((method, "valet") for method in ("GET", "PUT", "DELETE")),
        ("GET", "features"),
        ("GET", "parameters"),
        ("PUT", "reset"),
        ("PUT", "homelink"),
    ]
    for method, name in stubs:
        status, _, text = await _call(
            session, sim, f"/api/{name}/DEMO", method, params=CREDENTIALS
        )
        assert (status, text) == (501, "Not yet implemented\n"), (method, name)
    assert (await _call(session, sim, "/api/lock/DEMO", "PUT"))[0] == 401


async def test_rate_limit(socket_enabled: None) -> None:
    """Quota per client: burst, -1 per request, +per_minute a minute, 429 if empty."""
    sim = OvmsSimulator(burst=3, per_minute=2, max_quota=4, hold_seconds=0)
    sim.add_user(USER, PASSWORD)
    async with sim, aiohttp.ClientSession() as client:

        async def statuses(count: int) -> list[int]:
            return [
                (await _call(client, sim, "/api/vehicles", params=CREDENTIALS))[0]
                for _ in range(count)
            ]

        # The first request creates the entry at 3, then 2, 1, 0 -> refused.
        assert await statuses(4) == [200, 200, 200, 429]
        status, _, text = await _call(client, sim, "/api/vehicles")
        assert (status, text) == (429, "Too many requests\n")
        sim.advance(60)  # +2
        assert await statuses(3) == [200, 429, 429]
        sim.advance(180)  # +2 three times, capped at 4
        assert await statuses(5) == [200, 200, 200, 429, 429]
        sim.advance(360)  # idle for more than 300 s: the entry is gone
        assert await statuses(4) == [200, 200, 200, 429]


async def test_rate_limit_hold(socket_enabled: None) -> None:
    """A refused request is held `hold_seconds` before its 429."""
    sim = OvmsSimulator(burst=1, hold_seconds=0.3)
    async with sim, aiohttp.ClientSession() as client:
        assert (await _call(client, sim, "/api/vehicles"))[0] == 401  # quota 1
        start = time.monotonic()
        assert (await _call(client, sim, "/api/vehicles"))[0] == 429
        assert time.monotonic() - start >= 0.3


async def test_faults(sim: OvmsSimulator, session: aiohttp.ClientSession) -> None:
    """SERVER_ERROR, MALFORMED and SLOW as a client sees them."""
    sim.fault = OvmsFault.SERVER_ERROR
    status, headers, text = await _call(session, sim, "/api/vehicles")
    assert status == 500
    assert headers["Content-Type"] == "text/html"
    assert "<html>" in text

    sim.fault = OvmsFault.MALFORMED
    status, headers, text = await _call(
        session, sim, "/api/vehicle/DEMO", params=CREDENTIALS
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    with pytest.raises(json.JSONDecodeError, match="Expecting value"):
        json.loads(text)
    assert sim.connected_peers["DEMO"] == {"-"}  # the side effect still happened
    # Text answers stay as they are.
    status, _, text = await _call(session, sim, "/api/cookie", params=CREDENTIALS)
    assert (status, text) == (200, "Login ok\n")

    sim.fault = OvmsFault.SLOW
    sim.slow_seconds = 0.2
    start = time.monotonic()
    status, _, _ = await _call(session, sim, "/api/vehicles")
    assert status == 200
    assert time.monotonic() - start >= 0.2
    sim.slow_seconds = 30
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await _call(session, sim, "/api/vehicles")


async def test_failing_vehicle(
    sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """A failing car's record calls answer 500 (HTML); it stays listed, others work."""
    sim.vehicle("ROADSTER").failing = True
    rows = await _json(session, sim, "/api/vehicles")
    assert [row["id"] for row in rows] == ["DEMO", "ROADSTER"]
    for call in ("status", "charge", "location", "tpms", "protocol", "historical"):
        status, headers, text = await _call(
            session, sim, f"/api/{call}/ROADSTER", params=CREDENTIALS
        )
        assert status == 500, call
        assert headers["Content-Type"] == "text/html"
        assert "Internal Server Error" in text
    # Authentication and ownership come first, as in the real server.
    status, _, _ = await _call(session, sim, "/api/status/ROADSTER")
    assert status == 401
    status, _, _ = await _call(
        session,
        sim,
        "/api/status/ROADSTER",
        params={"username": OTHER, "password": OTHER_PASSWORD},
    )
    assert status == 403
    assert (await _json(session, sim, "/api/status/DEMO"))["soc"]

    sim.vehicle("ROADSTER").failing = False
    record = await _json(session, sim, "/api/status/ROADSTER")
    assert record["units"] == "M"


async def test_control_endpoint(
    socket_enabled: None, session: aiohttp.ClientSession
) -> None:
    """POST /_sim/vehicles/<id>/failing switches a car; never under /api/."""
    sim = OvmsSimulator(control=True)
    sim.add_user(USER, PASSWORD)
    roadster = sim.add_vehicle(SimVehicle("ROADSTER", USER, units="M"))
    await sim.start()
    try:
        url = f"{sim.url}/_sim/vehicles/ROADSTER/failing"
        async with session.post(url, json={"failing": True}) as response:
            assert response.status == 200
            assert await response.json() == {"vehicle": "ROADSTER", "failing": True}
        assert roadster.failing
        status, _, _ = await _call(
            session, sim, "/api/status/ROADSTER", params=CREDENTIALS
        )
        assert status == 500
        # Faults of the server do not hide the control endpoint.
        sim.fault = OvmsFault.SERVER_ERROR
        async with session.post(url, json={"failing": False}) as response:
            assert response.status == 200
        assert not roadster.failing
        sim.fault = OvmsFault.NONE

        for body in ({"failing": "yes"}, {}, [True]):
            async with session.post(url, json=body) as response:
                assert response.status == 400
        async with session.post(url, data=b"{not json") as response:
            assert response.status == 400
        async with session.post(
            f"{sim.url}/_sim/vehicles/NOPE/failing", json={"failing": True}
        ) as response:
            assert response.status == 404
        async with session.get(url) as response:
            assert response.status == 404
        # The API never routes to it.
        status, _, text = await _call(
            session, sim, "/api/_sim/vehicles/ROADSTER/failing", "POST"
        )
        assert (status, text) == (404, "Unrecognised API call\n")
        assert not roadster.failing
        assert ("POST", "/api/_sim/vehicles/ROADSTER/failing") in sim.requests
        assert all(not path.startswith("/_sim") for _, path in sim.requests)
    finally:
        await sim.stop()


async def test_no_control_endpoint_by_default(
    sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """Without `control=True` the path is an unknown page, and nothing changes."""
    async with session.post(
        f"{sim.url}/_sim/vehicles/ROADSTER/failing", json={"failing": True}
    ) as response:
        assert response.status == 404
    assert not sim.vehicle("ROADSTER").failing


async def test_stop_ends_slow_answers(socket_enabled: None) -> None:
    """stop() drops a pending slow answer instead of waiting for it."""
    sim = OvmsSimulator()
    sim.fault = OvmsFault.SLOW
    await sim.start()
    async with aiohttp.ClientSession() as client:
        pending = asyncio.create_task(_call(client, sim, "/api/vehicles"))
        await asyncio.sleep(0.1)
        start = time.monotonic()
        await sim.stop()
        assert time.monotonic() - start < 5
        with pytest.raises(aiohttp.ClientError):
            await pending


async def test_protocol_and_historical(
    sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """Raw records carry the comma-separated text the API answers are split from."""
    rows = await _json(session, sim, "/api/protocol/DEMO")
    assert [row["m_code"] for row in rows] == ["D", "L", "S", "Y"]
    s_record = next(row for row in rows if row["m_code"] == "S")
    assert s_record["m_msg"].startswith("80.0,K,")
    assert s_record["m_paranoid"] == "0"
    assert await _json(session, sim, "/api/historical/DEMO") == []


def test_vehicle_validation() -> None:
    """Bad settings are refused; time never runs backwards."""
    with pytest.raises(ValueError, match="units"):
        SimVehicle("X", USER, units="F")
    with pytest.raises(ValueError, match="tpms_format"):
        SimVehicle("X", USER, tpms_format="Z")
    sim = OvmsSimulator()
    sim.add_vehicle(SimVehicle("X", USER))
    with pytest.raises(ValueError, match="duplicate"):
        sim.add_vehicle(SimVehicle("X", USER))
    with pytest.raises(ValueError, match="forward"):
        sim.advance(-1)
    sim.remove_vehicle("X")
    with pytest.raises(KeyError):
        sim.vehicle("X")


async def test_no_credentials_logged(
    sim: OvmsSimulator,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither the password nor a token reaches any log record."""
    caplog.set_level(logging.DEBUG)
    await _call(session, sim, "/api/vehicles", params=CREDENTIALS)
    await _call(
        session, sim, "/api/vehicles", params={"username": USER, "password": TOKEN}
    )
    for record in caplog.records:
        assert PASSWORD not in record.getMessage()
        assert TOKEN not in record.getMessage()


async def test_runner(socket_enabled: None, capsys: pytest.CaptureFixture[str]) -> None:
    """`python -m tests.simulators ovms` prints its settings and stops on request."""
    stop = asyncio.Event()
    args = argparse.Namespace(host="127.0.0.1", port=0, local_port=0)
    task = asyncio.create_task(ovms.DEMO.run(args, stop))
    output = ""
    for _ in range(100):
        await asyncio.sleep(0.05)
        output += capsys.readouterr().out
        if "v2_pin=" in output:
            break
    settings = dict(
        line.split("=", 1) for line in output.splitlines() if " " not in line
    )
    assert settings["provider"] == "ovms"
    assert settings["username"] == "demo"
    assert settings["vehicles"] == "DEMO,ROADSTER"
    url = settings["server_url"]
    async with (
        aiohttp.ClientSession() as client,
        client.get(
            f"{url}/api/status/DEMO",
            params={"username": "demo", "password": settings["password"]},
        ) as response,
    ):
        assert response.status == 200
        assert (await response.json())["units"] == "K"
    # The demo serves the control endpoint for another process (the e2e tests).
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            f"{url}/_sim/vehicles/ROADSTER/failing", json={"failing": True}
        ) as response,
    ):
        assert response.status == 200
        async with client.get(
            f"{url}/api/status/ROADSTER",
            params={"username": "demo", "password": settings["password"]},
        ) as record:
            assert record.status == 500
        # DEMO takes commands on the printed v2 port; the control endpoint
        # shows them and the charging state.
        assert settings["v2_pin"] == ovms.DEMO_V2_PIN
        async with OvmsV2Client(
            "127.0.0.1",
            "DEMO",
            settings["v2_password"],
            port=int(settings["v2_port"]),
            tls=False,
            keepalive=None,
        ) as v2:
            await v2.stop_charging()
            async with client.get(f"{url}/_sim/vehicles/DEMO") as shown:
                facts = await shown.json()
            assert (facts["charging"], facts["commands"]) == (False, [12])
            await v2.start_charging()
            async with client.get(f"{url}/_sim/vehicles/DEMO") as shown:
                facts = await shown.json()
            assert (facts["charging"], facts["commands"]) == (True, [12, 11])
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_runner_v2_port_follows_the_api_port(
    socket_enabled: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a fixed API port, the v2 port is fixed too (entries keep working)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stop = asyncio.Event()
    args = argparse.Namespace(host="127.0.0.1", port=port, local_port=0)
    task = asyncio.create_task(ovms.DEMO.run(args, stop))
    output = ""
    for _ in range(100):
        await asyncio.sleep(0.05)
        output += capsys.readouterr().out
        if "v2_pin=" in output:
            break
    stop.set()
    await asyncio.wait_for(task, 5)
    assert f"v2_port={port + ovms.DEMO_V2_PORT_OFFSET}\n" in output


async def test_control_vehicle_facts_and_charge(
    socket_enabled: None, session: aiohttp.ClientSession
) -> None:
    """GET /_sim/vehicles/<id> tells the charging facts; POST .../charge plugs in."""
    sim = OvmsSimulator(control=True)
    sim.add_user(USER, PASSWORD)
    car = sim.add_vehicle(SimVehicle("DEMO", USER))
    car.speed = 30.0
    sim.v2_commands.append(("DEMO", 12, ()))
    sim.v2_commands.append(("OTHER", 11, ()))
    await sim.start()
    try:
        url = f"{sim.url}/_sim/vehicles/DEMO"
        async with session.get(url) as response:
            assert response.status == 200
            facts = await response.json()
        assert facts["vehicle"] == "DEMO"
        assert (facts["plugged_in"], facts["charging"]) == (False, False)
        assert facts["commands"] == [12]
        async with session.post(f"{url}/charge", json={"soc": 42}) as response:
            assert response.status == 200
            facts = await response.json()
        assert (facts["plugged_in"], facts["charging"], facts["speed"]) == (
            True,
            True,
            0.0,
        )
        assert facts["soc"] == 42.0
        assert car.chargestate == "charging"
        assert (car.latitude, car.longitude) == (51.477928, -0.001545)  # unmoved
        async with session.post(
            f"{url}/charge", json={"soc": 30, "at": [51.5, -0.1]}
        ) as response:
            assert response.status == 200
        assert (car.latitude, car.longitude, car.soc) == (51.5, -0.1, 30.0)
        bad_bodies = (
            {"soc": "50"},
            {"soc": True},
            {"soc": 100},
            {},
            [1],
            {"soc": 5, "at": [1]},
            {"soc": 5, "at": ["51", "0"]},
            {"soc": 5, "at": [91, 0]},
        )
        for body in bad_bodies:
            async with session.post(f"{url}/charge", json=body) as response:
                assert response.status == 400, body
        async with session.post(f"{url}/charge", data=b"{oops") as response:
            assert response.status == 400
        for method, path in (("GET", "NOPE"), ("POST", "NOPE/charge")):
            async with session.request(
                method, f"{sim.url}/_sim/vehicles/{path}", json={"soc": 1}
            ) as response:
                assert response.status == 404
        async with session.post(url) as response:
            assert response.status == 404
    finally:
        await sim.stop()


# --- the v2 server (openvehicles/Open-Vehicle-Server @ eae8472, ovms_server.pl) ------


@pytest.fixture
async def v2_sim(socket_enabled: None) -> AsyncIterator[OvmsSimulator]:
    """The older server software: alice owns DEMO and ROADSTER, bob BOBCAR."""
    simulator = OvmsSimulator(server="v2", burst=1)
    simulator.add_user(USER, PASSWORD, [TOKEN])
    simulator.add_user(OTHER, OTHER_PASSWORD)
    simulator.add_vehicle(SimVehicle("DEMO", USER))
    simulator.add_vehicle(SimVehicle("ROADSTER", USER, units="M", tpms_format="W"))
    simulator.add_vehicle(SimVehicle("SECRET", USER, paranoid=True))
    simulator.add_vehicle(SimVehicle("BOBCAR", OTHER))
    async with simulator:
        yield simulator


async def _v2(
    session: aiohttp.ClientSession,
    sim: OvmsSimulator,
    path: str,
    method: str = "GET",
    params: dict[str, str] | None = None,
) -> tuple[int, str, str, str]:
    """Status, reason, content type and body of one call."""
    async with session.request(method, f"{sim.url}{path}", params=params) as response:
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        return (
            response.status,
            response.reason or "",
            response.content_type,
            await response.text(),
        )


AUTH_FAILED = (404, "Authentication failed", "text/plain", "Authentication failed\n")


async def test_v2_login_and_refusals(
    v2_sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """Only the password logs in; everything without a session is 404."""
    for params in (
        None,
        {"username": USER},
        {"username": USER, "password": "wrong"},
        {"username": USER, "password": TOKEN},  # no API tokens
        {"username": "nobody", "password": PASSWORD},
    ):
        assert await _v2(session, v2_sim, "/api/cookie", params=params) == AUTH_FAILED
    # Credentials in the query open nothing but a login; no call is known
    # without a session, not even an unknown one.
    for path in ("/api/vehicles", "/api/protocol/DEMO", "/api/nonsense"):
        answer = await _v2(session, v2_sim, path, params=CREDENTIALS)
        assert answer == AUTH_FAILED
    assert not v2_sim.sessions
    assert await _v2(session, v2_sim, "/api/cookie", params=CREDENTIALS) == (
        200,
        "Authentication ok",
        "text/plain",
        "Login ok\n",
    )
    assert len(v2_sim.sessions) == 1
    # A second login leaves the first session alone (it ends when idle).
    await _v2(session, v2_sim, "/api/cookie", params=CREDENTIALS)
    assert len(v2_sim.sessions) == 2
    # No rate limit: the v3 server would have refused at once (burst=1).
    for _ in range(5):
        assert (await _v2(session, v2_sim, "/api/vehicles"))[0] == 200
    assert await _v2(session, v2_sim, "/api/nonsense") == (
        404,
        "Unrecongised API call",
        "text/plain",
        "Unrecognised API call\n",
    )
    assert await _v2(session, v2_sim, "/api/cookie", "DELETE") == (
        200,
        "Logout ok",
        "text/plain",
        "Logout ok\n",
    )
    assert len(v2_sim.sessions) == 1
    assert await _v2(session, v2_sim, "/api/vehicles") == AUTH_FAILED


async def test_v2_sessions_end_when_idle(
    v2_sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """Each call extends the session by `session_timeout` (120 s); idle, it ends."""
    await _v2(session, v2_sim, "/api/cookie", params=CREDENTIALS)
    for _ in range(10):
        v2_sim.advance(110)
        assert (await _v2(session, v2_sim, "/api/nonsense"))[1] != AUTH_FAILED[1]
    v2_sim.advance(121)
    assert await _v2(session, v2_sim, "/api/vehicles") == AUTH_FAILED


async def test_v2_session_lists_the_vehicles_of_its_login(
    v2_sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """A car added after the login is neither listed nor readable in that session."""
    await _v2(session, v2_sim, "/api/cookie", params=CREDENTIALS)
    v2_sim.add_vehicle(SimVehicle("NEW", USER))
    status, reason, content_type, text = await _v2(session, v2_sim, "/api/vehicles")
    assert (status, reason, content_type) == (200, "Logout ok", "application/json")
    assert [row["id"] for row in json.loads(text)] == ["DEMO", "ROADSTER", "SECRET"]
    assert json.loads(text)[0] == {
        "id": "DEMO",
        "v_apps_connected": 0,
        "v_btcs_connected": 0,
        "v_net_connected": 1,
    }
    assert (await _v2(session, v2_sim, "/api/status/NEW"))[:2] == (404, "Forbidden")
    await _v2(session, v2_sim, "/api/cookie", params=CREDENTIALS)
    assert (await _v2(session, v2_sim, "/api/status/NEW"))[0] == 200


async def test_v2_answers(
    v2_sim: OvmsSimulator, session: aiohttp.ClientSession
) -> None:
    """The per-record answers carry no record times; the command calls are 404."""
    await _v2(session, v2_sim, "/api/cookie", params=CREDENTIALS)
    status = json.loads((await _v2(session, v2_sim, "/api/status/DEMO"))[3])
    assert set(status) == set(STATUS_S_KEYS) | set(ovms.V2_STATUS_D_KEYS)
    assert "handbrake" in status
    assert "temperature_cabin" not in status
    assert status["soc"] == "80.0"
    charge = json.loads((await _v2(session, v2_sim, "/api/charge/DEMO"))[3])
    assert set(charge) == set(CHARGE_S_KEYS) | set(ovms.V2_CHARGE_D_KEYS)
    location = json.loads((await _v2(session, v2_sim, "/api/location/DEMO"))[3])
    assert set(location) == set(LOCATION_KEYS)
    # Only the "W" record: DEMO sends "Y", ROADSTER "W".
    assert (await _v2(session, v2_sim, "/api/tpms/DEMO"))[3] == "{}\n"
    tpms = json.loads((await _v2(session, v2_sim, "/api/tpms/ROADSTER"))[3])
    assert set(tpms) == set(ovms.W_FIELDS)
    protocol = json.loads((await _v2(session, v2_sim, "/api/protocol/DEMO"))[3])
    assert [row["m_code"] for row in protocol] == ["S", "D", "L", "Y"]
    assert (await _v2(session, v2_sim, "/api/historical/DEMO"))[3] == "[]\n"

    assert await _v2(session, v2_sim, "/api/status/BOBCAR") == (
        404,
        "Forbidden",
        "text/plain",
        "Forbidden\n",
    )
    assert await _v2(session, v2_sim, "/api/status/SECRET") == (
        404,
        "Vehicle is paranoid",
        "text/plain",
        "Paranoid vehicles not supported by api\n",
    )
    not_implemented = (
        404,
        "Not yet implemented",
        "text/plain",
        "Not yet implemented\n",
    )
    for method, path in (
        ("GET", "/api/vehicle/DEMO"),
        ("DELETE", "/api/vehicle/DEMO"),
        ("PUT", "/api/charge/DEMO"),
        ("PUT", "/api/lock/DEMO"),
    ):
        assert await _v2(session, v2_sim, path, method) == not_implemented
    assert (await _v2(session, v2_sim, "/api/token"))[1] == "Unrecongised API call"


@pytest.mark.parametrize("server", ["v3", "v2"])
async def test_protocol_refused(
    socket_enabled: None, session: aiohttp.ClientSession, server: str
) -> None:
    """`protocol_refused`: /api/protocol is an unknown call on either server."""
    async with OvmsSimulator(server=server, protocol_refused=True) as simulator:
        simulator.add_user(USER, PASSWORD)
        simulator.add_vehicle(SimVehicle("DEMO", USER))
        await _v2(session, simulator, "/api/cookie", params=CREDENTIALS)
        assert await _v2(session, simulator, "/api/protocol/DEMO") == (
            404,
            "Unrecongised API call",
            "text/plain",
            "Unrecognised API call\n",
        )
        assert (await _v2(session, simulator, "/api/status/DEMO"))[0] == 200


def test_unknown_server_software() -> None:
    """Only the two generations exist."""
    with pytest.raises(ValueError, match="server"):
        OvmsSimulator(server="v4")
