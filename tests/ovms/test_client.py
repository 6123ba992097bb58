"""The OVMS client: parsing of recorded answers, and over real HTTP to the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
import socket
from typing import Any

import aiohttp
from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
import pytest

from custom_components.ev_cloud.api import (
    AuthenticationError,
    CommunicationError,
    EvCloudError,
    InvalidResponseError,
    NotSupportedError,
    RateLimitedError,
    VehicleNotAvailableError,
)
from custom_components.ev_cloud.api.budget import RequestBudget
from custom_components.ev_cloud.api.ovms import (
    PSI_TO_KPA,
    OvmsClient,
    OvmsWheel,
    RecordTime,
    parse_charge,
    parse_location,
    parse_peer,
    parse_records,
    parse_status,
    parse_tpms,
    parse_vehicles,
    vehicle_path,
)
from tests.simulators.ovms import OvmsFault, OvmsSimulator, SimVehicle

# Characters that must survive the query string; the password is in no error text.
PASSWORD = "pa&ss=wo+rd %sec"

# Answers in the shape the server (ApiHttpCore.pm) builds them: record fields are
# strings, flags are bit values, ages are integers, keys sorted.
STATUS_KM: dict[str, Any] = {
    "alarmsounding": 4,
    "bt_open": 64,
    "cac100": "120.5",
    "carawake": 2,
    "caron": 0,
    "carlocked": 8,
    "charging": 16,
    "charging_12v": 0,
    "chargestate": "charging",
    "cooldown_active": "0",
    "cp_dooropen": 4,
    "estimatedrange": "231",
    "fl_dooropen": 0,
    "fr_dooropen": 2,
    "idealrange": "250",
    "idealrange_max": "380",
    "m_msgage_d": 12,
    "m_msgage_s": 7,
    "m_msgtime_d": "2025-01-02 03:04:00",
    "m_msgtime_s": "2025-01-02 03:04:05",
    "mode": "standard",
    "odometer": "123456",
    "parkingtimer": "3600",
    "pilotpresent": 8,
    "soc": "85.3",
    "soh": "98",
    "speed": "0",
    "staleambient": "1",
    "staletemps": "1",
    "temperature_ambient": "-3.5",
    "temperature_battery": "21",
    "temperature_cabin": "19.5",
    "temperature_charger": "35",
    "temperature_motor": "25",
    "temperature_pem": "30",
    "tr_open": 0,
    "tripmeter": "123",
    "units": "K",
    "valetmode": 0,
    "vehicle12v": "12.6",
    "vehicle12v_current": "-0.8",
    "vehicle12v_ref": "12.5",
}

CHARGE_MILES: dict[str, Any] = {
    "battvoltage": "396.2",
    "cac100": "120.5",
    "caron": 0,
    "charge_estimate": "0",
    "charge_etr_full": "95",
    "charge_etr_limit": "40",
    "charge_etr_range": "0",
    "charge_etr_soc": "40",
    "charge_limit_range": "0",
    "charge_limit_soc": "80",
    "chargeb4": "0",
    "chargecurrent": "16",
    "chargeduration": "1800",
    "chargekwh": "55",
    "chargelimit": "32",
    "chargepower": "11.04",
    "chargestate": "topoff",
    "chargesubstate": "onrequest",
    "chargetimermode": "0",
    "chargetype": "0",
    "charging": 16,
    "cp_dooropen": 4,
    "estimatedrange": "144",
    "idealrange": "155",
    "linevoltage": "230",
    "m_msgage_s": 3,
    "m_msgtime_s": "2025-06-30 23:59:59",
    "mode": "range",
    "pilotpresent": 8,
    "soc": "62.5",
    "soh": "97.5",
    "units": "M",
}

LOCATION: dict[str, Any] = {
    "altitude": "512",
    "direction": "270",
    "drivemode": "0x0",
    "energyrecd": "0.000",
    "energyused": "0.000",
    "gpslock": "1",
    "latitude": "48.137154",
    "longitude": "11.576124",
    "m_msgage_l": 30,
    "m_msgtime_l": "2025-01-02 03:03:40",
    "power": "0",
    "speed": "0",
    "stalegps": "1",
    "tripmeter": "0",
}

TPMS_Y: dict[str, Any] = {
    "fl_alert": "0",
    "fl_health": "100",
    "fl_pressure": 36.259434,
    "fl_pressure_kpa": "250",
    "fl_temperature": "21",
    "fr_pressure": 36.26,
    "fr_pressure_kpa": "251.5",
    "fr_temperature": "22",
    "rl_pressure_kpa": "",
    "rl_temperature": "20",
    "m_msgage_w": 60,
    "m_msgage_y": 60,
    "m_msgtime_w": "2025-01-02 03:03:10",
    "m_msgtime_y": "2025-01-02 03:03:10",
    "stale_alert": "1",
    "stale_health": "1",
    "stale_pressure": "1",
    "stale_temperature": "1",
    "staletpms": "1",
}

TPMS_W: dict[str, Any] = {
    "fl_pressure": "36.3",
    "fl_temperature": "18",
    "fr_pressure": "36.1",
    "fr_temperature": "19",
    "m_msgage_w": 600,
    "m_msgtime_w": "2025-01-02 02:54:10",
    "rl_pressure": "35.0",
    "rl_temperature": None,
    "rr_pressure": "x",
    "rr_temperature": None,
    "staletpms": "0",
}


def test_parse_status_km() -> None:
    """Strings become floats, bit values booleans, tenths whole units."""
    status = parse_status(STATUS_KM)
    assert status.received is True
    assert status.s_time == RecordTime(datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC), 7.0)
    assert status.d_time == RecordTime(datetime(2025, 1, 2, 3, 4, tzinfo=UTC), 12.0)
    assert status.units == "K"
    assert status.soc == 85.3
    assert status.soh == 98.0
    assert status.ideal_range == 250.0
    assert status.ideal_range_max == 380.0
    assert status.estimated_range == 231.0
    assert status.charge_state == "charging"
    assert status.charge_mode == "standard"
    assert status.front_left_door_open is False
    assert status.front_right_door_open is True
    assert status.charge_port_open is True
    assert status.trunk_open is False
    assert status.bonnet_open is True
    assert status.plugged_in is True
    assert status.charging is True
    assert status.car_on is False
    assert status.locked is True
    assert status.valet_mode is False
    assert status.charging_12v is False
    assert status.temperature_pem == 30.0
    assert status.temperature_motor == 25.0
    assert status.temperature_battery == 21.0
    assert status.temperature_charger == 35.0
    assert status.temperature_cabin == 19.5
    assert status.temperature_ambient == -3.5
    assert status.odometer == pytest.approx(12345.6)
    assert status.tripmeter == pytest.approx(12.3)
    assert status.speed == 0.0
    assert status.parking_time == 3600.0
    assert status.vehicle_12v == 12.6
    assert status.vehicle_12v_current == -0.8


def test_parse_status_tolerates_mistyped_fields() -> None:
    """Missing, empty or mistyped values become None; unknown enums too."""
    status = parse_status(
        {
            "soc": "",
            "soh": "n/a",
            "idealrange": None,
            "estimatedrange": True,
            "units": "X",
            "chargestate": "exploding",
            "mode": 3,
            "fl_dooropen": "1",
            "fr_dooropen": "0",
            "cp_dooropen": [],
            "carlocked": True,
            "odometer": "nan",
            "tripmeter": "inf",
            "speed": 12,
            "m_msgtime_s": "yesterday",
            "m_msgage_s": "7",
            "m_msgtime_d": 20250102,
        }
    )
    assert status.received is True
    assert status.soc is None
    assert status.soh is None
    assert status.ideal_range is None
    assert status.estimated_range is None
    assert status.units is None
    assert status.charge_state is None
    assert status.charge_mode is None
    assert status.front_left_door_open is True
    assert status.front_right_door_open is False
    assert status.charge_port_open is None
    assert status.locked is True
    assert status.odometer is None
    assert status.tripmeter is None
    assert status.speed == 12.0
    assert status.s_time == RecordTime(None, 7.0)
    assert status.d_time == RecordTime()
    assert status.trunk_open is None


def test_parse_timestamps_with_offset_become_utc() -> None:
    """A time with an offset (not what the server sends) is converted to UTC."""
    status = parse_status({"m_msgtime_s": "2025-01-02T04:04:05+01:00"})
    assert status.s_time.msg_time == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_parse_empty_records() -> None:
    """`{}` means the server never received that record."""
    assert parse_status({}).received is False
    assert parse_status({}).soc is None
    assert parse_charge({}).received is False
    assert parse_location({}).received is False
    tpms = parse_tpms({})
    assert tpms.received is False
    assert tpms.wheels == {}


def test_parse_charge_miles() -> None:
    """The charge record of a car that reports in miles."""
    charge = parse_charge(CHARGE_MILES)
    assert charge.received is True
    assert charge.s_time == RecordTime(
        datetime(2025, 6, 30, 23, 59, 59, tzinfo=UTC), 3.0
    )
    assert charge.units == "M"
    assert charge.soc == 62.5
    assert charge.soh == 97.5
    assert charge.charge_state == "topoff"
    assert charge.charge_substate == "onrequest"
    assert charge.charge_mode == "range"
    assert charge.line_voltage == 230.0
    assert charge.battery_voltage == 396.2
    assert charge.charge_current == 16.0
    assert charge.charge_current_limit == 32.0
    assert charge.charge_power == 11.04
    assert charge.charge_energy == 5.5
    assert charge.time_to_full == 95.0
    assert charge.time_to_limit == 40.0
    assert charge.charge_limit_soc == 80.0
    assert charge.charge_limit_range == 0.0
    assert charge.ideal_range == 155.0
    assert charge.estimated_range == 144.0
    assert charge.plugged_in is True
    assert charge.charging is True


def test_parse_charge_without_substate() -> None:
    """An empty or mistyped substate is None; a D-only answer is still received."""
    charge = parse_charge({"chargesubstate": "", "pilotpresent": 0, "charging": 0})
    assert charge.received is True
    assert charge.charge_substate is None
    assert charge.plugged_in is False
    assert charge.charging is False
    assert parse_charge({"chargesubstate": 3}).charge_substate is None


def test_parse_location() -> None:
    """The L record."""
    location = parse_location(LOCATION)
    assert location.received is True
    assert location.l_time == RecordTime(datetime(2025, 1, 2, 3, 3, 40, tzinfo=UTC), 30)
    assert location.latitude == 48.137154
    assert location.longitude == 11.576124
    assert location.direction == 270.0
    assert location.altitude == 512.0
    assert location.gps_lock is True
    assert location.speed == 0.0
    assert parse_location({"gpslock": "0"}).gps_lock is False


def test_parse_tpms_v3() -> None:
    """The Y keys win: kPa strings; wheels without values are left out."""
    tpms = parse_tpms(TPMS_Y)
    assert tpms.received is True
    assert tpms.time == RecordTime(datetime(2025, 1, 2, 3, 3, 10, tzinfo=UTC), 60.0)
    assert tpms.wheels == {
        "fl": OvmsWheel(pressure=250.0, temperature=21.0),
        "fr": OvmsWheel(pressure=251.5, temperature=22.0),
        "rl": OvmsWheel(pressure=None, temperature=20.0),
    }


def test_parse_tpms_v2_fallback() -> None:
    """Without Y keys the W record's PSI strings are converted to kPa."""
    tpms = parse_tpms(TPMS_W)
    assert tpms.received is True
    assert tpms.time == RecordTime(datetime(2025, 1, 2, 2, 54, 10, tzinfo=UTC), 600.0)
    assert set(tpms.wheels) == {"fl", "fr", "rl"}
    assert tpms.wheels["fl"].pressure == pytest.approx(36.3 * PSI_TO_KPA)
    assert tpms.wheels["fl"].pressure == pytest.approx(250.28, abs=0.01)
    assert tpms.wheels["fl"].temperature == 18.0
    assert tpms.wheels["rl"] == OvmsWheel(
        pressure=pytest.approx(35.0 * PSI_TO_KPA), temperature=None
    )


def test_parse_tpms_v3_recognised_by_time_only() -> None:
    """A Y record without pressures is still read as Y (time from `_y`)."""
    tpms = parse_tpms({"m_msgtime_y": "2025-01-02 03:03:10", "m_msgage_y": 5})
    assert tpms.time.msg_age == 5.0
    assert tpms.wheels == {}


def test_parse_vehicles() -> None:
    """Counts are numbers; entries without an id are skipped."""
    vehicles = parse_vehicles(
        [
            {
                "id": "DEMO",
                "v_apps_connected": 2,
                "v_btcs_connected": 0,
                "v_net_connected": 1,
            },
            {"id": "OFF", "v_apps_connected": "x", "v_net_connected": 0},
            {"id": ""},
            {"v_net_connected": 1},
            "junk",
        ]
    )
    assert [(v.vehicle_id, v.car_online, v.apps_connected) for v in vehicles] == [
        ("DEMO", True, 2),
        ("OFF", False, 0),
    ]
    with pytest.raises(InvalidResponseError):
        parse_vehicles({"id": "DEMO"})


def test_parse_peer() -> None:
    """The connect answer; the status time is missing before the first S record."""
    peer = parse_peer(
        {
            "m_msgage_s": 4,
            "m_msgtime_s": "2025-01-02 03:04:05",
            "v_apps_connected": 1,
            "v_btcs_connected": 0,
            "v_first_peer": 1,
            "v_net_connected": 1,
        }
    )
    assert peer.car_online is True
    assert peer.apps_connected == 1
    assert peer.first_peer is True
    assert peer.status_time.msg_age == 4.0
    empty = parse_peer({"v_first_peer": 0, "v_net_connected": 0})
    assert empty.car_online is False
    assert empty.first_peer is False
    assert empty.status_time == RecordTime()


def test_vehicle_path_quotes_the_id() -> None:
    """A vehicle id is one path segment, whatever it contains."""
    assert vehicle_path("status", "DEMO") == "/api/status/DEMO"
    assert vehicle_path("status", "a/b c?") == "/api/status/a%2Fb%20c%3F"


# --- over HTTP: a scripted server for answers the simulator does not give ----------


def secret_free(error: BaseException, secret: str) -> None:
    """Assert that `secret` is in no text, repr or chained exception of `error`."""
    seen: BaseException | None = error
    while seen is not None:
        assert secret not in str(seen)
        assert secret not in repr(seen)
        assert all(secret not in repr(arg) for arg in seen.args)
        seen = seen.__cause__ or seen.__context__


class Scripted:
    """A local HTTP server that answers each request with the next scripted answer."""

    def __init__(self) -> None:
        """No answers yet; `answers` is filled by the test."""
        self.answers: list[web.Response] = []
        self.seen: list[tuple[str, str, str | None]] = []  # method, path, cookie
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.Response:
        self.seen.append(
            (request.method, request.path, request.cookies.get("ovmsapisession"))
        )
        return self.answers.pop(0)

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"

    async def stop(self) -> None:
        """Close the server."""
        if self._runner is not None:
            await self._runner.cleanup()


def login_ok(session_id: str = "sess-1") -> web.Response:
    """The server's login answer."""
    response = web.Response(text="Login ok\n")
    response.set_cookie("ovmsapisession", session_id)
    return response


def text(status: int, body: str, **headers: str) -> web.Response:
    """A text/plain answer as the server sends its errors."""
    return web.Response(status=status, text=body, headers=headers)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session (Home Assistant injects its own in the integration)."""
    async with aiohttp.ClientSession() as client_session:
        yield client_session


@pytest.fixture
async def scripted(socket_enabled: None) -> AsyncIterator[Scripted]:
    """The scripted server, running."""
    server = Scripted()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (text(403, "Insufficient rights\n"), AuthenticationError, "rights"),
        (text(403, "Forbidden\n"), VehicleNotAvailableError, "not registered"),
        (
            text(502, "Paranoid vehicles not supported by api\n"),
            VehicleNotAvailableError,
            "paranoid",
        ),
        (text(502, "<html>Bad Gateway</html>"), CommunicationError, "HTTP 502"),
        (text(503, "busy"), CommunicationError, "HTTP 503"),
        (text(501, "Not yet implemented\n"), NotSupportedError, "not implement"),
        (text(404, "Unrecognised API call\n"), CommunicationError, "unsupported"),
        # The v2 server answers 404 where v3 answers 403, 502 and 501.
        (text(404, "Forbidden\n"), VehicleNotAvailableError, "not registered"),
        (
            text(404, "Paranoid vehicles not supported by api\n"),
            VehicleNotAvailableError,
            "paranoid",
        ),
        (text(404, "Not yet implemented\n"), NotSupportedError, "not implement"),
        (text(400, "?"), CommunicationError, "Unexpected answer .*HTTP 400"),
        (web.Response(text="Disconnect OK\n"), InvalidResponseError, "not JSON"),
        (web.json_response([]), InvalidResponseError, "not an object"),
    ],
)
async def test_status_mapping(
    session: aiohttp.ClientSession,
    scripted: Scripted,
    answer: web.Response,
    error: type[Exception],
    match: str,
) -> None:
    """Each answer becomes its error, with a text of our own."""
    scripted.answers = [login_ok(), answer]
    client = OvmsClient(session, scripted.url, "alice", PASSWORD)
    with pytest.raises(error, match=match) as caught:
        await client.async_get_status("DEMO")
    secret_free(caught.value, PASSWORD)
    if isinstance(caught.value, VehicleNotAvailableError):
        assert caught.value.reason in ("not_owned", "paranoid")


@pytest.mark.parametrize(
    ("header", "expected"),
    [({"Retry-After": "30"}, 30.0), ({"Retry-After": "soon"}, 60.0), ({}, 60.0)],
)
async def test_rate_limited_pauses_the_budget(
    session: aiohttp.ClientSession,
    scripted: Scripted,
    header: dict[str, str],
    expected: float,
) -> None:
    """429 keeps Retry-After (60 s without one) and pauses the shared budget."""
    scripted.answers = [login_ok(), text(429, "Too many requests\n", **header)]
    budget = RequestBudget(burst=10, per_minute=60, maximum=10)
    client = OvmsClient(session, scripted.url, "alice", PASSWORD, budget=budget)
    with pytest.raises(RateLimitedError) as caught:
        await client.async_get_vehicles()
    assert caught.value.retry_after == expected
    assert budget.available == 0
    with pytest.raises(RateLimitedError):
        await client.async_get_vehicles()
    assert len(scripted.seen) == 2


async def test_rate_limited_without_budget(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Without a budget the 429 is only reported."""
    scripted.answers = [text(429, "Too many requests\n", **{"Retry-After": "-5"})]
    client = OvmsClient(session, scripted.url, "alice", PASSWORD)
    with pytest.raises(RateLimitedError) as caught:
        await client.async_login()
    assert caught.value.retry_after == 0.0


async def test_login_without_cookie_is_invalid(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A 200 login without a session cookie cannot be used."""
    scripted.answers = [text(200, "Login ok\n")]
    client = OvmsClient(session, scripted.url, "alice", PASSWORD)
    with pytest.raises(InvalidResponseError, match="session"):
        await client.async_login()
    assert not client.logged_in
    assert client.login_count == 0


async def test_second_401_is_an_authentication_error(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """When the request fails with 401 again after a fresh login, the session ends."""
    scripted.answers = [
        login_ok("a"),
        text(401, "Authentication failed\n"),
        login_ok("b"),
        text(401, "Authentication failed\n"),
    ]
    client = OvmsClient(session, scripted.url, "alice", PASSWORD)
    with pytest.raises(AuthenticationError, match="ended the session"):
        await client.async_get_vehicles()
    assert not client.logged_in
    assert [cookie for _, _, cookie in scripted.seen] == ["-", "a", "a", "b"]


@pytest.mark.parametrize(
    ("refusal", "generation"),
    [
        (lambda: text(401, "Authentication failed\n"), "v3"),
        (lambda: text(404, "Authentication failed\n"), "v2"),
    ],
)
async def test_refused_session_tells_the_server_software(
    session: aiohttp.ClientSession,
    scripted: Scripted,
    refusal: Any,
    generation: str,
) -> None:
    """v3 refuses an ended session with 401, the v2 server with 404; both log in.

    A refusal right after the new login ends the session for good.
    """
    scripted.answers = [
        login_ok("a"),
        refusal(),
        login_ok("b"),
        web.json_response([]),
        refusal(),
        login_ok("c"),
        refusal(),
    ]
    client = OvmsClient(session, scripted.url, "alice", PASSWORD)
    assert client.server_generation is None
    await client.async_login()
    assert await client.async_get_vehicles() == []
    assert client.server_generation == generation
    assert client.can_connect_vehicles is (generation == "v3")
    with pytest.raises(AuthenticationError, match="ended the session"):
        await client.async_get_vehicles()
    assert [cookie for _, _, cookie in scripted.seen] == [
        "-",
        "a",
        "a",
        "b",
        "b",
        "b",
        "c",
    ]


@pytest.mark.parametrize(
    ("answer", "generation"),
    [
        (text(501, "Not yet implemented\n"), "v3"),
        (text(403, "Insufficient rights\n"), "v3"),
        (text(404, "Not yet implemented\n"), "v2"),
        (text(404, "Unrecognised API call\n"), None),
    ],
)
async def test_answers_tell_the_server_software(
    session: aiohttp.ClientSession,
    scripted: Scripted,
    answer: web.Response,
    generation: str | None,
) -> None:
    """How a server refuses a call says which software it runs (or nothing)."""
    scripted.answers = [login_ok(), answer]
    client = OvmsClient(session, scripted.url, "alice", PASSWORD)
    with pytest.raises(EvCloudError):
        await client.async_get_status("DEMO")
    assert client.server_generation == generation


async def test_login_sends_no_foreign_cookie(scripted: Scripted) -> None:
    """A cookie in the shared jar is never sent in place of our own."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as shared:
        jar.update_cookies({"ovmsapisession": "someone-else"})
        scripted.answers = [login_ok("mine"), web.json_response([]), login_ok("new")]
        client = OvmsClient(shared, scripted.url, "alice", PASSWORD)
        assert await client.async_get_vehicles() == []
        await client.async_login()  # again: the server may drop our old session
    assert [cookie for _, _, cookie in scripted.seen] == ["-", "mine", "mine"]


async def test_a_session_without_cookie_jar_sends_the_cookie_as_a_header(
    scripted: Scripted,
) -> None:
    """With a jar that keeps nothing, our session cookie goes with each request."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as own:
        scripted.answers = [login_ok("mine"), web.json_response([]), login_ok("new")]
        client = OvmsClient(own, scripted.url, "alice", PASSWORD)
        assert await client.async_get_vehicles() == []
        await client.async_login()  # again: the old session is named for deletion
    assert [cookie for _, _, cookie in scripted.seen] == ["-", "mine", "mine"]


@pytest.mark.parametrize("cookie", ['"a;b"', "a b"])
async def test_a_session_cookie_that_cannot_be_sent_is_invalid(
    scripted: Scripted, cookie: str
) -> None:
    """A session id a header cannot carry as it is ends the login with a clear error."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as own:
        scripted.answers = [login_ok(cookie)]
        client = OvmsClient(own, scripted.url, "alice", PASSWORD)
        with pytest.raises(InvalidResponseError, match="session"):
            await client.async_login()
    assert not client.logged_in


async def test_unexpected_status_on_login(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A server error on login is a communication error."""
    scripted.answers = [text(500, "oops")]
    client = OvmsClient(session, scripted.url, "alice", PASSWORD)
    with pytest.raises(CommunicationError, match="HTTP 500"):
        await client.async_login()


async def test_logout_ignores_errors(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Logout forgets the session even when the server fails."""
    scripted.answers = [login_ok(), text(500, "oops")]
    client = OvmsClient(session, scripted.url, "alice", PASSWORD)
    await client.async_login()
    await client.async_logout()
    assert not client.logged_in
    await client.async_logout()  # nothing to end: no request
    assert [method for method, _, _ in scripted.seen] == ["GET", "DELETE"]


async def test_unreachable_server(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    """A refused connection names only the error type."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = OvmsClient(session, f"http://127.0.0.1:{port}", "alice", PASSWORD)
    with pytest.raises(CommunicationError, match=r"\(Client\w*Error\)") as caught:
        await client.async_login()
    secret_free(caught.value, PASSWORD)
    assert PASSWORD not in repr(client)


# --- over HTTP: the simulator -----------------------------------------------------

USER = "alice"
API_TOKEN = "4f9c2d7e1b3a5c8d0e2f4a6b8c0d2e4f6a8b0c2d4e6f8a0b2c4d6e8f0a2b4c6d"


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[OvmsSimulator]:
    """A server with alice's cars (km, miles, bare, paranoid) and one of bob's."""
    simulator = OvmsSimulator()
    simulator.add_user(USER, PASSWORD, tokens=(API_TOKEN,))
    simulator.add_user("bob", "bob-password")
    simulator.add_vehicle(SimVehicle("KMCAR", USER))
    simulator.add_vehicle(SimVehicle("MILECAR", USER, units="M", tpms_format="W"))
    simulator.add_vehicle(
        SimVehicle("BARE", USER, tpms_format="none", location_received=False)
    )
    simulator.add_vehicle(SimVehicle("SECRET", USER, paranoid=True))
    simulator.add_vehicle(SimVehicle("BOBCAR", "bob"))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


def ovms(
    session: aiohttp.ClientSession, sim: OvmsSimulator, **kwargs: Any
) -> OvmsClient:
    """A client for alice on the simulator."""
    return OvmsClient(session, sim.url + "/", USER, PASSWORD, **kwargs)


def logins(sim: OvmsSimulator) -> int:
    """How many logins the simulator saw."""
    return sim.requests.count(("GET", "/api/cookie"))


async def test_one_login_for_many_requests(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """The first request logs in; the cookie serves every later one."""
    client = ovms(session, sim)
    assert not client.logged_in
    vehicles = await client.async_get_vehicles()
    await client.async_get_status("KMCAR")
    await client.async_get_charge("KMCAR")
    await client.async_get_location("KMCAR")
    await client.async_get_tpms("KMCAR")
    assert [v.vehicle_id for v in vehicles] == ["BARE", "KMCAR", "MILECAR", "SECRET"]
    assert all(v.car_online and v.apps_connected == 0 for v in vehicles)
    assert logins(sim) == 1
    assert len(sim.requests) == 6
    assert len(sim.sessions) == 1
    assert client.logged_in
    assert client.uses_session
    assert client.login_count == 1


async def test_concurrent_first_requests_share_one_login(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """Requests started together wait for one login."""
    client = ovms(session, sim)
    await asyncio.gather(
        client.async_get_status("KMCAR"),
        client.async_get_charge("KMCAR"),
        client.async_get_location("KMCAR"),
        client.async_get_tpms("KMCAR"),
    )
    assert logins(sim) == 1


@pytest.mark.parametrize("expire", ["idle", "now"])
async def test_expired_session_logs_in_once_more(
    session: aiohttp.ClientSession, sim: OvmsSimulator, expire: str
) -> None:
    """A 401 with the cookie means the session ended: log in again, retry once."""
    client = ovms(session, sim)
    await client.async_get_vehicles()
    if expire == "idle":
        sim.advance(121)
    else:
        sim.expire_sessions()
    assert not sim.sessions
    status = await client.async_get_status("KMCAR")
    assert status.received
    assert sim.requests[-3:] == [
        ("GET", "/api/status/KMCAR"),
        ("GET", "/api/cookie"),
        ("GET", "/api/status/KMCAR"),
    ]
    assert client.login_count == 2
    assert len(sim.sessions) == 1


async def test_session_renewed_before_it_ends(
    session: aiohttp.ClientSession, sim: OvmsSimulator, freezer: FrozenDateTimeFactory
) -> None:
    """Once a session ended, the next is renewed at that age: no refused request."""
    client = ovms(session, sim)
    await client.async_get_vehicles()
    freezer.tick(130)
    sim.advance(130)
    await client.async_get_status("KMCAR")  # refused, login, sent again
    assert logins(sim) == 2
    assert not client.login_due
    freezer.tick(129)
    sim.advance(129)
    assert not client.login_due
    freezer.tick(1)
    sim.advance(1)
    assert client.login_due
    sent = len(sim.requests)
    await client.async_get_status("KMCAR")
    assert sim.requests[sent:] == [
        ("GET", "/api/cookie"),
        ("GET", "/api/status/KMCAR"),
    ]


async def test_early_session_end_teaches_nothing(
    session: aiohttp.ClientSession, sim: OvmsSimulator, freezer: FrozenDateTimeFactory
) -> None:
    """A session that ends soon after its login (a server restart) sets no lifetime."""
    client = ovms(session, sim)
    await client.async_get_vehicles()
    freezer.tick(30)
    sim.expire_sessions()
    await client.async_get_status("KMCAR")  # refused, login, sent again
    assert logins(sim) == 2
    freezer.tick(3600)
    assert not client.login_due


async def test_explicit_login_replaces_the_old_session(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """Logging in again ends the previous session on the server."""
    client = ovms(session, sim)
    await client.async_login()
    first = set(sim.sessions)
    await client.async_login()
    assert len(sim.sessions) == 1
    assert set(sim.sessions) != first


async def test_shared_cookie_jar_keeps_accounts_apart(sim: OvmsSimulator) -> None:
    """Two accounts on one session (one cookie jar) each see their own cars."""
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as shared:
        alice = ovms(shared, sim)
        bob = OvmsClient(shared, sim.url, "bob", "bob-password")
        await alice.async_login()
        await bob.async_login()  # the jar now holds bob's cookie
        assert [v.vehicle_id for v in await alice.async_get_vehicles()][1] == "KMCAR"
        assert [v.vehicle_id for v in await bob.async_get_vehicles()] == ["BOBCAR"]
        await alice.async_login()
        assert [v.vehicle_id for v in await bob.async_get_vehicles()] == ["BOBCAR"]
    assert len(sim.sessions) == 2


@pytest.mark.parametrize(
    ("username", "password"), [(USER, "wrong-password"), ("mallory", PASSWORD)]
)
async def test_wrong_credentials(
    session: aiohttp.ClientSession,
    sim: OvmsSimulator,
    caplog: pytest.LogCaptureFixture,
    username: str,
    password: str,
) -> None:
    """401 on login; the password is in no error, chain or log."""
    client = OvmsClient(session, sim.url, username, password)
    with pytest.raises(AuthenticationError, match="username or password") as caught:
        await client.async_get_vehicles()
    secret_free(caught.value, password)
    assert password not in repr(client)
    assert all(password not in record.getMessage() for record in caplog.records)
    assert logins(sim) == 1
    assert not client.logged_in


async def test_password_with_special_characters(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    """`&`, `=`, `+`, `%` and spaces survive the query string."""
    async with OvmsSimulator() as simulator:
        for index, password in enumerate(("a&b=c", "p+q", "50% off", "ä ö/ü?#")):
            simulator.add_user(f"user{index}", password)
            await OvmsClient(
                session, simulator.url, f"user{index}", password
            ).async_login()
        assert len(simulator.sessions) == 4


async def test_token_with_session_right_logs_in(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """An API token works in place of the password."""
    sim.add_token(USER, "full-token", permit="*")
    client = OvmsClient(session, sim.url, USER, "full-token")
    assert len(await client.async_get_vehicles()) == 4
    assert client.uses_session
    assert len(sim.sessions) == 1


async def test_token_without_session_right_sends_credentials(
    session: aiohttp.ClientSession, sim: OvmsSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A default token (permit `auth`) may not log in: each request carries it."""
    client = OvmsClient(session, sim.url, USER, API_TOKEN)
    await client.async_login()  # valid credentials: no error
    assert not client.uses_session
    assert not client.logged_in
    vehicles = await client.async_get_vehicles()
    status = await client.async_get_status("KMCAR")
    assert len(vehicles) == 4
    assert status.soc == 80.0
    assert logins(sim) == 1  # no second login attempt
    assert not sim.sessions
    peer = await client.async_connect_vehicle("KMCAR")
    assert peer.apps_connected == 1
    await client.async_disconnect_vehicle("KMCAR")
    assert sim.app_count("KMCAR") == 0
    await client.async_logout()  # no session: nothing to send
    assert sim.requests[-1] == ("DELETE", "/api/vehicle/KMCAR")
    # The token is revoked: now a plain authentication error.
    sim.users[USER].tokens.clear()
    with pytest.raises(AuthenticationError, match="username or password") as caught:
        await client.async_get_status("KMCAR")
    secret_free(caught.value, API_TOKEN)
    assert all(API_TOKEN not in record.getMessage() for record in caplog.records)


async def test_km_vehicle_records(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """All four records of a km car, charging."""
    car = sim.vehicle("KMCAR")
    car.plug_in()
    car.start_charging()
    sim.advance(600)
    client = ovms(session, sim)
    status = await client.async_get_status("KMCAR")
    charge = await client.async_get_charge("KMCAR")
    location = await client.async_get_location("KMCAR")
    tpms = await client.async_get_tpms("KMCAR")

    assert status.received
    assert status.units == "K"
    assert status.soc == pytest.approx(car.soc, abs=0.05)
    assert status.soh == 100.0
    assert status.charge_state == "charging"
    assert status.charge_mode == "standard"
    assert status.plugged_in is True
    assert status.charging is True
    assert status.charge_port_open is True
    assert status.locked is True
    assert status.car_on is False
    assert status.valet_mode is False
    assert status.front_left_door_open is False
    assert status.trunk_open is False
    assert status.bonnet_open is False
    assert status.charging_12v is True
    assert status.odometer == pytest.approx(12345.6)
    assert status.tripmeter == 0.0
    assert status.ideal_range == round(car.ideal_range_km)
    assert status.ideal_range_max == 300.0
    assert status.temperature_cabin == 21.5
    assert status.temperature_battery == 22.0
    assert status.vehicle_12v == 12.6
    assert status.vehicle_12v_current == 1.5
    assert status.parking_time == 3600.0 + 600
    assert status.s_time.msg_age == 0.0
    assert status.d_time.msg_age == 0.0
    assert status.s_time.msg_time == datetime.fromtimestamp(int(sim.now), UTC)

    assert charge.received
    assert charge.units == "K"
    assert charge.charge_state == "charging"
    assert charge.charge_substate == "3"  # onrequest, as the numeric key
    assert charge.line_voltage == 230.0
    assert charge.charge_current == 32.0
    assert charge.charge_current_limit == 32.0
    assert charge.charge_power == 7.2
    assert charge.charge_energy == pytest.approx(1.2)  # ten minutes at 7.2 kW
    assert charge.time_to_full is not None
    assert charge.time_to_full > 0
    assert charge.charge_limit_soc == 100.0
    assert charge.battery_voltage == pytest.approx(350 + car.soc * 0.5, abs=0.05)
    assert charge.plugged_in is True
    assert charge.charging is True

    assert location.received
    assert location.latitude == 51.477928
    assert location.longitude == -0.001545
    assert location.direction == 90.0
    assert location.altitude == 40.0
    assert location.gps_lock is True
    assert location.speed == 0.0
    assert location.l_time.msg_age == 0.0

    assert tpms.received
    assert tpms.time.msg_age == 0.0
    assert tpms.wheels == {
        "fl": OvmsWheel(250.0, 20.0),
        "fr": OvmsWheel(250.0, 20.0),
        "rl": OvmsWheel(240.0, 20.0),
        "rr": OvmsWheel(240.0, 20.0),
    }


async def test_miles_vehicle_records(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """A miles car: distances in miles; TPMS from the V2 W record in PSI."""
    car = sim.vehicle("MILECAR")
    car.drive(16.09344)  # ten miles
    car.set_silent(True)
    sim.advance(90)
    client = ovms(session, sim)
    status = await client.async_get_status("MILECAR")
    charge = await client.async_get_charge("MILECAR")
    tpms = await client.async_get_tpms("MILECAR")

    assert status.units == "M"
    assert status.odometer == pytest.approx((12345.6 + 16.09344) / 1.609344, abs=0.1)
    assert status.tripmeter == pytest.approx(10.0)
    assert status.s_time.msg_age == 90.0
    assert status.charge_state == "stopped"
    assert status.plugged_in is False
    assert charge.units == "M"
    assert charge.ideal_range == pytest.approx(car.ideal_range_km / 1.609344, abs=0.5)
    assert charge.charge_energy == 0.0
    assert charge.charge_substate == "0"
    assert tpms.time.msg_age == 90.0
    assert tpms.wheels["fl"].pressure == pytest.approx(250.0, abs=0.5)
    assert tpms.wheels["rr"].pressure == pytest.approx(240.0, abs=0.5)
    assert tpms.wheels["rr"].temperature == 20.0


async def test_records_never_received(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """`{}` from the server: no location, no TPMS."""
    client = ovms(session, sim)
    location = await client.async_get_location("BARE")
    tpms = await client.async_get_tpms("BARE")
    assert location.received is False
    assert location.latitude is None
    assert tpms.received is False
    assert tpms.wheels == {}


async def test_vehicle_ids_are_quoted(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """An id with reserved characters stays one path segment."""
    sim.add_vehicle(SimVehicle("MY CAR", USER))
    status = await ovms(session, sim).async_get_status("MY CAR")
    assert status.received
    assert sim.requests[-1] == ("GET", "/api/status/MY CAR")


@pytest.mark.parametrize(
    "call",
    [
        OvmsClient.async_get_status,
        OvmsClient.async_get_charge,
        OvmsClient.async_get_location,
        OvmsClient.async_get_tpms,
        OvmsClient.async_connect_vehicle,
        OvmsClient.async_disconnect_vehicle,
    ],
)
async def test_other_users_vehicle_is_forbidden(
    session: aiohttp.ClientSession, sim: OvmsSimulator, call: Any
) -> None:
    """403 Forbidden: the car is not the account's (or does not exist)."""
    client = ovms(session, sim)
    for vehicle_id in ("BOBCAR", "NOSUCHCAR"):
        with pytest.raises(VehicleNotAvailableError, match="not registered") as caught:
            await call(client, vehicle_id)
        assert caught.value.reason == "not_owned"


@pytest.mark.parametrize(
    "call",
    [
        OvmsClient.async_get_status,
        OvmsClient.async_get_charge,
        OvmsClient.async_get_location,
        OvmsClient.async_get_tpms,
    ],
)
async def test_paranoid_vehicle(
    session: aiohttp.ClientSession, sim: OvmsSimulator, call: Any
) -> None:
    """502 "Paranoid vehicles not supported by api"."""
    with pytest.raises(VehicleNotAvailableError, match="paranoid") as caught:
        await call(ovms(session, sim), "SECRET")
    assert caught.value.reason == "paranoid"


async def test_unimplemented_and_unknown_calls(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """501 on the server's command endpoints; 404 on unknown calls."""
    client = ovms(session, sim)
    with pytest.raises(NotSupportedError):
        await client._request("PUT", vehicle_path("charge", "KMCAR"))
    with pytest.raises(NotSupportedError):
        await client._request("DELETE", vehicle_path("lock", "KMCAR"))
    with pytest.raises(CommunicationError, match="unsupported"):
        await client._request("GET", "/api/command/KMCAR")


async def test_server_rate_limit(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    """The server's 429 (no Retry-After) pauses the budget for 60 s."""
    async with OvmsSimulator(burst=3, hold_seconds=0) as simulator:
        simulator.add_user(USER, PASSWORD)
        simulator.add_vehicle(SimVehicle("KMCAR", USER))
        budget = RequestBudget(burst=100, per_minute=60, maximum=100)
        client = ovms(session, simulator, budget=budget)
        await client.async_get_status("KMCAR")  # free first request + 1
        await client.async_get_status("KMCAR")
        with pytest.raises(RateLimitedError) as caught:
            await client.async_get_status("KMCAR")
        assert caught.value.retry_after == 60.0
        assert budget.available == 0
        sent = len(simulator.requests)
        with pytest.raises(RateLimitedError):
            await client.async_get_status("KMCAR")
        assert len(simulator.requests) == sent


async def test_budget_exhausted_sends_nothing(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """Each request takes one from the budget; none is sent when it is used up."""
    budget = RequestBudget(burst=3, per_minute=1, maximum=3)
    client = ovms(session, sim, budget=budget)
    await client.async_get_status("KMCAR")  # login + status
    await client.async_get_charge("KMCAR")
    with pytest.raises(RateLimitedError, match="budget") as caught:
        await client.async_get_location("KMCAR")
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 0
    assert len(sim.requests) == 3


@pytest.mark.parametrize(
    ("fault", "error", "match"),
    [
        (OvmsFault.SERVER_ERROR, CommunicationError, "HTTP 500"),
        (OvmsFault.MALFORMED, InvalidResponseError, "not JSON"),
    ],
)
async def test_faults(
    session: aiohttp.ClientSession,
    sim: OvmsSimulator,
    fault: OvmsFault,
    error: type[Exception],
    match: str,
) -> None:
    """A broken server and a garbled body."""
    client = ovms(session, sim)
    await client.async_login()
    sim.fault = fault
    with pytest.raises(error, match=match) as caught:
        await client.async_get_vehicles()
    secret_free(caught.value, PASSWORD)


async def test_server_error_on_login(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """A server error while logging in is a communication error."""
    sim.fault = OvmsFault.SERVER_ERROR
    with pytest.raises(CommunicationError, match="HTTP 500") as caught:
        await ovms(session, sim).async_get_vehicles()
    secret_free(caught.value, PASSWORD)


async def test_slow_server_times_out(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """No answer within the timeout: a communication error without the URL."""
    sim.fault = OvmsFault.SLOW
    sim.slow_seconds = 5
    client = ovms(session, sim, timeout=0.2)
    with pytest.raises(CommunicationError, match="in time") as caught:
        await client.async_login()  # the login URL holds the password
    secret_free(caught.value, PASSWORD)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


async def test_connect_and_disconnect(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """Connecting registers the session as an app peer; disconnect removes it."""
    car = sim.vehicle("KMCAR")
    car.other_apps = 1
    client = ovms(session, sim)
    peer = await client.async_connect_vehicle("KMCAR")
    (session_id,) = sim.sessions
    assert sim.connected_peers["KMCAR"] == {session_id}
    assert peer.car_online is True
    assert peer.apps_connected == 2
    assert peer.first_peer is False
    assert peer.status_time.msg_age == 0.0
    assert car.fast_updates
    await client.async_disconnect_vehicle("KMCAR")  # the text body is not parsed
    assert sim.connected_peers["KMCAR"] == set()
    assert car.peer_counts_sent[-1] == 1


async def test_connect_offline_car(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """An offline car: first peer, not connected, its last status ages."""
    car = sim.vehicle("MILECAR")
    car.car_online = False
    sim.advance(300)
    client = ovms(session, sim)
    peer = await client.async_connect_vehicle("MILECAR")
    assert peer.car_online is False
    assert peer.first_peer is True
    assert peer.status_time.msg_age == 300.0
    vehicles = {v.vehicle_id: v for v in await client.async_get_vehicles()}
    assert vehicles["MILECAR"].car_online is False
    assert vehicles["MILECAR"].apps_connected == 1


async def test_logout(session: aiohttp.ClientSession, sim: OvmsSimulator) -> None:
    """Logout ends the session (the server disconnects its cars)."""
    client = ovms(session, sim)
    await client.async_connect_vehicle("KMCAR")
    await client.async_logout()
    assert sim.requests[-1] == ("DELETE", "/api/cookie")
    assert not sim.sessions
    assert sim.connected_peers["KMCAR"] == set()
    assert not client.logged_in
    await client.async_logout()
    assert sim.requests[-1] == ("DELETE", "/api/cookie")
    assert logins(sim) == 1
    await client.async_get_vehicles()  # a new session on demand
    assert logins(sim) == 2


async def test_logout_after_expiry_is_quiet(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """The server answers 401 for a session it forgot; logout does not mind."""
    client = ovms(session, sim)
    await client.async_login()
    sim.expire_sessions()
    await client.async_logout()
    assert not client.logged_in


async def test_logout_without_budget_left(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """With the budget used up, logout only forgets the session."""
    budget = RequestBudget(burst=1, per_minute=1, maximum=1)
    client = ovms(session, sim, budget=budget)
    await client.async_login()
    await client.async_logout()
    assert not client.logged_in
    assert sim.requests == [("GET", "/api/cookie")]


async def test_session_expires_after_login_not_after_use(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    """The server source never refreshes a session: busy clients log in again too."""
    async with OvmsSimulator(refresh_sessions=False) as simulator:
        simulator.add_user(USER, PASSWORD)
        simulator.add_vehicle(SimVehicle("KMCAR", USER))
        client = ovms(session, simulator)
        for _ in range(5):
            assert (await client.async_get_status("KMCAR")).received
            simulator.advance(50)
        assert client.login_count == 2
        assert logins(simulator) == 2


# --- all records in one request ------------------------------------------------------


@pytest.mark.parametrize("vehicle_id", ["KMCAR", "MILECAR", "BARE"])
async def test_records_read_like_the_per_record_answers(
    session: aiohttp.ClientSession, sim: OvmsSimulator, vehicle_id: str
) -> None:
    """`/api/protocol` read as the server's status, charge, location, tpms answers.

    Ages count on the server's clock (its Date header), not on ours.
    """
    sim.vehicle(vehicle_id).silent = True  # its records age from now on
    sim.advance(42)
    client = ovms(session, sim)
    records = await client.async_get_records(vehicle_id)
    assert records.server_time == datetime.fromtimestamp(sim.now, UTC)
    assert not records.paranoid
    far_off = datetime(2000, 1, 1, tzinfo=UTC)  # ignored: the server said its time
    answers = records.answers(far_off)
    assert parse_status(answers["status"]) == await client.async_get_status(vehicle_id)
    assert parse_charge(answers["charge"]) == await client.async_get_charge(vehicle_id)
    assert parse_location(answers["location"]) == await client.async_get_location(
        vehicle_id
    )
    assert parse_tpms(answers["tpms"]) == await client.async_get_tpms(vehicle_id)
    assert parse_status(answers["status"]).s_time.msg_age == 42


async def test_paranoid_records_are_left_out(
    session: aiohttp.ClientSession, sim: OvmsSimulator
) -> None:
    """A car's end-to-end encrypted records are named, never read."""
    records = await ovms(session, sim).async_get_records("SECRET")
    assert "S" in records.paranoid
    assert not records.records.keys() & records.paranoid


@pytest.mark.parametrize(
    ("date", "expected"),
    [
        ("Fri, 01 Jan 2027 12:00:00 GMT", datetime(2027, 1, 1, 12, tzinfo=UTC)),
        ("Fri, 01 Jan 2027 12:00:00 -0000", datetime(2027, 1, 1, 12, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_records_rows_that_cannot_be_read(
    date: str | None, expected: datetime | None
) -> None:
    """Rows without a code, text or time count as records never received."""
    rows: list[Any] = [
        "no row",
        {"m_code": "S", "m_msg": "80.0,K", "m_msgtime": "2027-01-01 11:59:00"},
        {"m_code": "D", "m_msg": {"v": 1}, "m_msgtime": "2027-01-01 11:59:00"},
        {"m_code": "L", "m_msg": "1,2", "m_msgtime": "later"},
        {"m_code": 7, "m_msg": "x", "m_msgtime": "2027-01-01 11:59:00"},
    ]
    records = parse_records(rows, date)
    assert records.records == {"S": "80.0,K"}
    assert records.server_time == expected
    with pytest.raises(InvalidResponseError, match="no list"):
        parse_records({"m_code": "S"})
