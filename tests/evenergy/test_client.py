"""The ev.energy client: parsing, and over real HTTP to a scripted server."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
import json
import socket
from typing import Any
from urllib.parse import unquote_plus

import aiohttp
from aiohttp import web
import pytest

from custom_components.ev_cloud.api import (
    AccessDeniedError,
    AuthenticationError,
    CommandRejectedError,
    CommunicationError,
    DeviceOfflineError,
    InvalidResponseError,
    RateLimitedError,
    VehicleNotAvailableError,
)
from custom_components.ev_cloud.api.budget import RequestBudget
from custom_components.ev_cloud.api.evenergy import (
    COMMAND_RESERVE,
    DEFAULT_BASE_URL,
    ChargingSession,
    ClientCredentials,
    CommandLog,
    EvEnergyClient,
    Evse,
    EvseStatus,
    Location,
    RateLimit,
    Vehicle,
    VehicleStatus,
    api_url,
    authorize_url,
    current_type_key,
    enum_key,
    new_budget,
    parse_command_logs,
    parse_evses,
    parse_link_next,
    parse_location,
    parse_retry_after,
    parse_session,
    parse_sessions,
    parse_vehicle,
    parse_vehicle_status,
    parse_vehicles,
    problem_text,
    token_url,
    user_reference_id,
)
from tests.scripted import Scripted, secret_free
from tests.simulators.evenergy import (
    EvEnergyFault,
    EvEnergySimulator,
    SimEvse,
    SimVehicle,
)

TOKEN = "tok-9f8e7d6c5b4a3210fedcba9876543210"
CLIENT_ID = "org-client-4711"
CLIENT_SECRET = "s3cr3t/+=client&secret"
USER_ID = "user01HN2NJ9NMRZBXT1H6FT9N7735"
VEHICLE_ID = "vhcl01HRFF3SEVSCRAV9B3CHVDFN0H"
EVSE_ID = "evse01HSH04KDEWF6Z4DB2J77J74K5"
SESSION_ID = "csen01HSH04KDEWF6Z4DB2J77J74K5"

STATUS_LOG: dict[str, Any] = {
    "url": f"https://api.ev.energy/v2/vehicles/{VEHICLE_ID}/status_logs/x/",
    "logged_at": "2024-01-01T11:11:12Z",
    "sampled_at": "2024-01-01T11:11:11.1111Z",
    "vehicle": f"https://api.ev.energy/v2/vehicles/{VEHICLE_ID}",
    "state_of_charge_percentage": 70,
    "is_charging": True,
    "is_plugged_in": True,
    "is_complete": False,
    "charge_rate_watts": 7200,
    "estimated_charge_rate_watts": 7000,
    "charge_level_watt_hours": 52500,
    "target_charge_level_watt_hours": 60000,
    "target_charge_level_percentage": 80,
    "charge_energy_added_watt_hours": 12000,
    "minutes_to_full_charge": 65,
    "current_type": "AC - Typically home chargers",
    "odometer_meters": 12345678,
    "data_source": "ENODE",
    "state": "PLUGGED_IN_CHARGING",
}

VEHICLE: dict[str, Any] = {
    "id": VEHICLE_ID,
    "url": f"https://api.ev.energy/v2/vehicles/{VEHICLE_ID}",
    "integrated": "ACTIVE",
    "battery_size_watt_hours": 75000,
    "effective_battery_size_watt_hours": 72000,
    "maximum_charge_limit_percentage": 80,
    "description": "Family car",
    "disabled": False,
    "smart_charging_enabled": True,
    "vehicle_class": "PASSENGER",
    "latest_status_log": STATUS_LOG,
}

EVSE_STATUS: dict[str, Any] = {
    "sampled_at": "2024-04-17T09:39:45.984584Z",
    "logged_at": "2024-04-17T09:39:46Z",
    "is_plugged_in": True,
    "is_charging": False,
    "charge_rate_watts": 0,
    "meter_reading_watt_hours": 1234567,
    "control_pilot_status": "B",
    "mode": "Load match",
}

EVSE: dict[str, Any] = {
    "id": EVSE_ID,
    "url": f"https://api.ev.energy/v2/evses/{EVSE_ID}",
    "cpid": "SHIR100001",
    "lock_mode": "SMART",
    "latest_status_log": EVSE_STATUS,
}


def session_json(
    session_id: str = SESSION_ID,
    *,
    vehicle: Any = None,
    end: str | None = None,
    sub_sessions: Any = None,
) -> dict[str, Any]:
    """A ChargingSession in the API's shape."""
    return {
        "id": session_id,
        "url": f"https://api.ev.energy/v2/charging_sessions/{session_id}",
        "start": "2026-08-01T18:00:00Z",
        "end": end,
        "vehicle": vehicle
        if vehicle is not None
        else f"https://api.ev.energy/v2/vehicles/{VEHICLE_ID}",
        "evse": f"https://api.ev.energy/v2/evses/{EVSE_ID}",
        "sub_sessions": sub_sessions if sub_sessions is not None else [],
    }


def sub(mode: str, start: str, end: str | None = None) -> dict[str, Any]:
    """A ChargingSubSession."""
    return {"id": f"csub-{mode}-{start}", "mode": mode, "start": start, "end": end}


# --- parsing ---------------------------------------------------------------------


def test_urls() -> None:
    """The API, authorize and token URLs of a host root (with or without slash)."""
    assert api_url(DEFAULT_BASE_URL) == "https://api.ev.energy/v2"
    assert authorize_url("https://api.ev.energy/") == (
        "https://api.ev.energy/o/authorize/"
    )
    assert token_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/o/token/"


def test_parse_vehicle_with_status() -> None:
    """Every field, long enum strings as short lower-case keys."""
    vehicle = parse_vehicle(VEHICLE)
    assert vehicle == Vehicle(
        vehicle_id=VEHICLE_ID,
        description="Family car",
        integrated="active",
        battery_size_wh=75000,
        maximum_charge_limit_percentage=80,
        smart_charging_enabled=True,
        disabled=False,
        status=VehicleStatus(
            sampled_at=datetime(2024, 1, 1, 11, 11, 11, 111100, tzinfo=UTC),
            logged_at=datetime(2024, 1, 1, 11, 11, 12, tzinfo=UTC),
            state_of_charge=70,
            is_charging=True,
            is_plugged_in=True,
            is_complete=False,
            charge_rate_watts=7200,
            charge_level_wh=52500,
            target_charge_level_wh=60000,
            target_charge_level_percentage=80,
            charge_energy_added_wh=12000,
            minutes_to_full=65,
            current_type="ac",
            odometer_meters=12345678,
            state="plugged_in_charging",
        ),
    )


def test_parse_vehicle_defensively() -> None:
    """Wrong types and missing fields are None; an unexpanded status log is None."""
    vehicle = parse_vehicle(
        {
            "id": VEHICLE_ID,
            "integrated": "SOMETHING_NEW",
            "battery_size_watt_hours": "75000",
            "maximum_charge_limit_percentage": 80.0,
            "smart_charging_enabled": 1,
            "disabled": "yes",
            "description": "",
            "latest_status_log": "https://api.ev.energy/v2/vehicles/x/status_logs/y/",
        }
    )
    assert vehicle == Vehicle(
        vehicle_id=VEHICLE_ID, maximum_charge_limit_percentage=80, disabled=False
    )
    status = parse_vehicle_status(
        {
            "sampled_at": "yesterday",
            "logged_at": "2024-01-01T11:11:11",  # naive: UTC
            "state_of_charge_percentage": True,
            "is_charging": "true",
            "charge_rate_watts": 1.5,
            "odometer_meters": float("nan"),
            "current_type": "DC - Typically OTG chargers",
            "state": None,
        }
    )
    assert status == VehicleStatus(
        logged_at=datetime(2024, 1, 1, 11, 11, 11, tzinfo=UTC), current_type="dc"
    )
    assert parse_vehicle_status(None) is None
    assert parse_vehicle_status(["x"]) is None
    for wrong in ({"description": "no id"}, {"id": 5}, [], "x", None):
        with pytest.raises(InvalidResponseError, match="without an id"):
            parse_vehicle(wrong)


def test_parse_vehicles_skips_entries_without_id() -> None:
    """A list keeps the readable vehicles; a body that is no array is refused."""
    vehicles = parse_vehicles([VEHICLE, {"id": None}, "x", {"id": "vhcl2"}])
    assert [v.vehicle_id for v in vehicles] == [VEHICLE_ID, "vhcl2"]
    with pytest.raises(InvalidResponseError, match="no JSON array"):
        parse_vehicles({"results": []})


@pytest.mark.parametrize(
    ("value", "choices", "expected"),
    [
        ("PLUGGED_IN_COMPLETE", ("plugged_in_complete",), "plugged_in_complete"),
        ("Load match", ("load_match",), "load_match"),
        ("Deep  sleep", ("deep_sleep",), "deep_sleep"),
        ("FFR", ("ffr",), "ffr"),
        ("FLYING", ("driving",), None),
        (3, ("3",), None),
        (None, ("none",), None),
    ],
)
def test_enum_key(value: Any, choices: tuple[str, ...], expected: str | None) -> None:
    """Enum values become lower-case keys; unknown values None."""
    assert enum_key(value, choices) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("AC - Typically home chargers", "ac"),
        ("DC - Typically OTG chargers", "dc"),
        ("AC", "ac"),
        ("dc", "dc"),
        ("Three-phase", None),
        (None, None),
        (1, None),
    ],
)
def test_current_type(value: Any, expected: str | None) -> None:
    """The long current type strings as "ac"/"dc"."""
    assert current_type_key(value) == expected


def test_parse_evses() -> None:
    """EVSE with its status log; the mode's space becomes an underscore."""
    evses = parse_evses(
        [
            EVSE,
            {"id": "evse2", "cpid": 7, "lock_mode": None, "latest_status_log": None},
            {"cpid": "no id"},
        ]
    )
    assert evses == [
        Evse(
            evse_id=EVSE_ID,
            cpid="SHIR100001",
            lock_mode="smart",
            status=EvseStatus(
                sampled_at=datetime(2024, 4, 17, 9, 39, 45, 984584, tzinfo=UTC),
                is_plugged_in=True,
                is_charging=False,
                charge_rate_watts=0,
                meter_reading_wh=1234567,
                mode="load_match",
            ),
        ),
        Evse(evse_id="evse2"),
    ]


def test_parse_location_and_command_logs() -> None:
    """Location logs carry only at_home; command logs lower-case their command."""
    assert parse_location(
        {"sampled_at": "2019-08-24T14:15:22Z", "at_home": True, "vehicle": "x"}
    ) == Location(datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC), True)
    assert parse_location({"at_home": "yes"}) == Location()
    assert parse_location("x") is None
    logs = parse_command_logs(
        [
            {
                "logged_at": "2019-08-24T14:15:22Z",
                "command": "START_CHARGE",
                "external_command_id": "ext-cmd-12345",
                "current_milliamps": 32000,
                "internal_command_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
            },
            {"command": "SELF_DESTRUCT", "current_milliamps": "1"},
            None,
        ]
    )
    assert logs == [
        CommandLog(
            logged_at=datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC),
            command="start_charge",
            current_milliamps=32000,
            command_id="a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        ),
        CommandLog(),
    ]


def test_parse_session_modes() -> None:
    """The mode is the newest unfinished sub-session's; a finished session has none."""
    session = parse_session(
        session_json(
            sub_sessions=[
                sub("SMART", "2026-08-01T18:00:00Z", "2026-08-01T19:00:00Z"),
                sub("BOOST", "2026-08-01T19:00:00Z"),
                sub("SMART", "2026-08-01T18:30:00Z"),  # odd, but older
            ]
        )
    )
    assert session == ChargingSession(
        session_id=SESSION_ID,
        vehicle_id=VEHICLE_ID,
        evse_id=EVSE_ID,
        start=datetime(2026, 8, 1, 18, tzinfo=UTC),
        end=None,
        mode="boost",
    )
    unexpanded = parse_session(
        session_json(
            vehicle={"id": "vhcl-inline"},
            sub_sessions=["https://api.ev.energy/v2/charging_sub_sessions/csub1"],
        )
    )
    assert unexpanded.vehicle_id == "vhcl-inline"
    assert unexpanded.mode is None
    finished = parse_session(
        session_json(
            end="2026-08-02T07:00:00Z",
            sub_sessions=[sub("SMART", "2026-08-01T18:00:00Z")],
        )
    )
    assert finished.mode is None
    assert finished.end == datetime(2026, 8, 2, 7, tzinfo=UTC)
    odd = parse_session({"id": "c1", "vehicle": 5, "evse": "", "sub_sessions": {}})
    assert odd == ChargingSession(session_id="c1")
    assert [s.session_id for s in parse_sessions([{"id": "c2"}, {}, 3])] == ["c2"]
    with pytest.raises(InvalidResponseError):
        parse_session({"id": ""})


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            '<about:blank>; rel="previous", '
            "<https://api.ev.energy/v2/vehicles?page_size=25&page_after=vhcl01>; "
            'rel="next"',
            "https://api.ev.energy/v2/vehicles?page_size=25&page_after=vhcl01",
        ),
        ('<https://x/v2/a?p=1>; rel="previous", <about:blank>; rel="next"', None),
        ('<https://x/v2/a?p=2>; rel=next; title="n"', "https://x/v2/a?p=2"),
        ('<https://x/v2/a?p=3>; rel="prev next"', "https://x/v2/a?p=3"),
        ('<https://x/v2/a?p=1>; rel="previous"', None),
        ("<https://x/v2/a>", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_link_next(header: str | None, expected: str | None) -> None:
    """The next link of an RFC 8288 header; about:blank is the end."""
    assert parse_link_next(header) == expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "42"}, 42.0),
        ({"Retry-After": "7"}, 7.0),
        ({"RetryAfter": "12"}, 12.0),
        ({"retryafter": "-3"}, 0.0),
        ({"Retry-After": "soon"}, 60.0),
        ({"Retry-After": "inf"}, 60.0),
        ({}, 60.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float) -> None:
    """Either header name in any case; 60 s without a usable one."""
    assert parse_retry_after(headers) == expected


def test_problem_text() -> None:
    """detail and field errors (nested too) joined into one readable sentence."""
    assert (
        problem_text(
            {
                "status": 400,
                "detail": "Invalid input.",
                "field_errors": {
                    "maximum_charge_limit_percentage": [
                        "Ensure this value is less than or equal to 100."
                    ],
                    "location": {"latitude": "Required."},
                    "ignored": 5,
                },
            }
        )
        == "Invalid input. maximum_charge_limit_percentage: Ensure this value is "
        "less than or equal to 100. location.latitude: Required."
    )
    assert problem_text({"title": "Conflict"}) == "Conflict"
    assert problem_text({"status": 409}) is None


def test_new_budget_numbers() -> None:
    """1000 an hour: polls at 800 an hour, 10 minutes of them at once."""
    budget = new_budget()
    assert budget.per_minute == pytest.approx(800 / 60)
    assert budget.maximum == 133
    assert budget.sustainable_interval(1) == pytest.approx(4.5)
    assert COMMAND_RESERVE == 0.2
    assert new_budget(10).maximum == 1


# --- over HTTP: a scripted server ------------------------------------------------


def ok(body: Any, **headers: str) -> web.Response:
    """A JSON answer with the rate-limit headers the API sends."""
    headers.setdefault("x-ratelimit-limit", "1000")
    headers.setdefault("x-ratelimit-remaining", "990")
    return web.Response(
        text=json.dumps(body), content_type="application/json", headers=headers
    )


def problem(status: int, detail: str | None = None, **extra: Any) -> web.Response:
    """An RFC 9457 problem answer."""
    body: dict[str, Any] = {"status": status, **extra}
    if detail is not None:
        body["detail"] = detail
    return web.Response(
        status=status,
        text=json.dumps(body),
        content_type="application/problem+json",
    )


def links(next_url: str | None) -> dict[str, str]:
    """The Link header of a page."""
    return {
        "Link": f'<about:blank>; rel="previous", <{next_url or "about:blank"}>; '
        'rel="next"'
    }


async def static_token() -> str:
    """The token getter of a user who granted access."""
    return TOKEN


def client(
    session: aiohttp.ClientSession, scripted: Scripted, **kwargs: Any
) -> EvEnergyClient:
    """A client of the scripted server with a fixed token."""
    return EvEnergyClient(session, static_token, base_url=scripted.url, **kwargs)


async def test_headers_and_pagination_to_the_end(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Every page is fetched by its Link; version, token and user travel each time."""
    base = f"{scripted.url}/v2/vehicles"
    scripted.answers = [
        ok([VEHICLE], **links(f"{base}?page_size=100&page_after=p2")),
        ok(
            [{**VEHICLE, "id": "vhcl2"}], **links(f"{base}?page_size=100&page_after=p3")
        ),
        ok([{**VEHICLE, "id": "vhcl3"}], **links(None)),
    ]
    api = client(session, scripted, user_id=USER_ID)
    vehicles = await api.async_get_vehicles()
    assert [v.vehicle_id for v in vehicles] == [VEHICLE_ID, "vhcl2", "vhcl3"]
    assert vehicles[0].status is not None
    assert [seen.query for seen in scripted.seen] == [
        {"page_size": "100", "expand": "latest_status_log"},
        {"page_size": "100", "page_after": "p2"},
        {"page_size": "100", "page_after": "p3"},
    ]
    for seen in scripted.seen:
        assert seen.method == "GET"
        assert seen.path == "/v2/vehicles"
        assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
        assert seen.headers["EvEnergy-Version"] == "2"
        assert seen.headers["EvEnergy-User"] == USER_ID
    assert api.rate_limit == RateLimit(1000, 990)
    assert TOKEN not in repr(api)


async def test_relative_link_and_no_user_header(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A relative next link is resolved; without user_id no EvEnergy-User."""
    scripted.answers = [
        ok([EVSE], Link='</v2/evses?page_after=e2>; rel="next"'),
        ok([{**EVSE, "id": "evse2"}]),  # no Link header at all: the end
    ]
    evses = await client(session, scripted).async_get_evses()
    assert [e.evse_id for e in evses] == [EVSE_ID, "evse2"]
    assert scripted.seen[0].query == {"page_size": "100", "expand": "latest_status_log"}
    assert scripted.seen[1].query == {"page_after": "e2"}
    assert "EvEnergy-User" not in scripted.seen[0].headers


async def test_link_to_another_host_is_not_followed(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The token would travel with it: a foreign next link is refused."""
    scripted.answers = [ok([VEHICLE], **links("https://evil.example/v2/vehicles?p=2"))]
    with pytest.raises(InvalidResponseError, match="another host") as caught:
        await client(session, scripted).async_get_vehicles()
    secret_free(caught.value, TOKEN)
    assert len(scripted.seen) == 1


async def test_link_loop_is_refused(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A next link to a page already fetched ends in an error, not a loop."""
    first = f"{scripted.url}/v2/evses?page_size=100&expand=latest_status_log"
    scripted.answers = [ok([EVSE], **links(first))]
    with pytest.raises(InvalidResponseError, match="before"):
        await client(session, scripted).async_get_evses()


async def test_single_resources(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """User id, one vehicle, latest location, command logs since a time."""
    scripted.answers = [
        ok([{"id": USER_ID}, {"id": "user2"}]),
        ok(VEHICLE),
        ok([{"sampled_at": "2026-08-01T10:00:00Z", "at_home": False}]),
        ok([]),
        ok([{"command": "STOP_CHARGE"}], **links(f"{scripted.url}/v2/next")),
        ok([{"command": "WAKE_UP"}]),
        ok([{"command": "SEND_SCHEDULE"}], **links(f"{scripted.url}/v2/next")),
    ]
    api = client(session, scripted)
    assert await api.async_get_user_id() == USER_ID
    assert (await api.async_get_vehicle(VEHICLE_ID)).status is not None
    location = await api.async_get_latest_location(VEHICLE_ID)
    assert location == Location(datetime(2026, 8, 1, 10, tzinfo=UTC), False)
    assert await api.async_get_latest_location(VEHICLE_ID) is None
    since = datetime(2026, 8, 1, 12, 0, tzinfo=UTC) + timedelta(microseconds=5)
    logs = await api.async_get_command_logs(VEHICLE_ID, since)
    assert [log.command for log in logs] == ["stop_charge", "wake_up"]
    newest = await api.async_get_command_logs(VEHICLE_ID)  # one page only
    assert [log.command for log in newest] == ["send_schedule"]
    assert [(s.path, s.query) for s in scripted.seen] == [
        ("/v2/users", {}),
        (f"/v2/vehicles/{VEHICLE_ID}", {"expand": "latest_status_log"}),
        (f"/v2/vehicles/{VEHICLE_ID}/location_logs", {"page_size": "1"}),
        (f"/v2/vehicles/{VEHICLE_ID}/location_logs", {"page_size": "1"}),
        (
            f"/v2/vehicles/{VEHICLE_ID}/command_logs",
            {"page_size": "100", "logged_at__gte": "2026-08-01T12:00:00.000005Z"},
        ),
        ("/v2/next", {}),
        (f"/v2/vehicles/{VEHICLE_ID}/command_logs", {"page_size": "100"}),
    ]


async def test_no_user_listed(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """/users without a readable user cannot name the token's user."""
    scripted.answers = [ok([{"name": "x"}])]
    with pytest.raises(InvalidResponseError, match="no user"):
        await client(session, scripted).async_get_user_id()


async def test_user_read_refused_without_a_user_header(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A 400 to /users without EvEnergy-User is not about the user to act for."""
    scripted.answers = [problem(400, "Unsupported version requested: 3.0")]
    with pytest.raises(CommandRejectedError, match="Unsupported version") as caught:
        await client(session, scripted).async_get_user()
    assert caught.value.reason is None
    assert "EvEnergy-User" not in scripted.seen[0].headers


async def test_ids_are_one_path_segment(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """An id with / or ? cannot reach another path."""
    scripted.answers = [ok(VEHICLE)]
    await client(session, scripted).async_get_vehicle("a/b?c")
    assert scripted.seen[0].path == "/v2/vehicles/a%2Fb%3Fc"  # as sent: one segment
    assert len(scripted.seen[0].query) == 1


async def test_active_session(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The vehicle's unfinished session with the mode of its current sub-session."""
    other = "https://api.ev.energy/v2/vehicles/vhclOTHER"
    scripted.answers = [
        ok(
            [
                session_json("c3", vehicle=other),
                session_json("c2", sub_sessions=[sub("SMART", "2026-08-01T18:00:00Z")]),
            ]
        )
    ]
    api = client(session, scripted)
    active = await api.async_get_active_session(VEHICLE_ID)
    assert active is not None
    assert active.session_id == "c2"
    assert active.mode == "smart"
    assert scripted.seen[0].path == "/v2/charging_sessions"
    assert scripted.seen[0].query == {
        "vehicle_id": VEHICLE_ID,
        "is_finished": "false",
        "page_size": "25",
        "expand": "sub_sessions",
    }


async def test_no_active_session(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The vehicle's newest session has ended: nothing older is looked at."""
    base = f"{scripted.url}/v2/charging_sessions"
    scripted.answers = [
        ok(
            [session_json("c9", vehicle="https://x/v2/vehicles/o")],
            **links(base + "?2"),
        ),
        ok([session_json("c8", end="2026-08-02T07:00:00Z")], **links(base + "?3")),
    ]
    assert await client(session, scripted).async_get_active_session(VEHICLE_ID) is None
    assert len(scripted.seen) == 2


async def test_active_session_search_is_bounded(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """After three pages of other vehicles' sessions the search gives up."""
    base = f"{scripted.url}/v2/charging_sessions"
    scripted.answers = [
        ok([session_json(f"c{n}", vehicle="https://x/o")], **links(f"{base}?{n}"))
        for n in range(5)
    ]
    assert await client(session, scripted).async_get_active_session(VEHICLE_ID) is None
    assert len(scripted.seen) == 3


async def test_boost_and_update(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Commands: POST boost_start/boost_end, PATCH with only the given fields."""
    scripted.answers = [
        ok(session_json(sub_sessions=[sub("BOOST", "2026-08-01T19:00:00Z")])),
        ok(session_json()),
        ok({**VEHICLE, "maximum_charge_limit_percentage": 90}),
        ok({**VEHICLE, "smart_charging_enabled": False}),
    ]
    api = client(session, scripted)
    boosted = await api.async_boost_start(SESSION_ID)
    assert boosted.mode == "boost"
    assert (await api.async_boost_end(SESSION_ID)).mode is None
    changed = await api.async_update_vehicle(
        VEHICLE_ID, maximum_charge_limit_percentage=90
    )
    assert changed.maximum_charge_limit_percentage == 90
    await api.async_update_vehicle(VEHICLE_ID, smart_charging_enabled=False)
    with pytest.raises(ValueError, match="Nothing"):
        await api.async_update_vehicle(VEHICLE_ID)
    assert [(s.method, s.path) for s in scripted.seen] == [
        ("POST", f"/v2/charging_sessions/{SESSION_ID}/boost_start"),
        ("POST", f"/v2/charging_sessions/{SESSION_ID}/boost_end"),
        ("PATCH", f"/v2/vehicles/{VEHICLE_ID}"),
        ("PATCH", f"/v2/vehicles/{VEHICLE_ID}"),
    ]
    assert json.loads(scripted.seen[2].body) == {"maximum_charge_limit_percentage": 90}
    assert json.loads(scripted.seen[3].body) == {"smart_charging_enabled": False}


ERROR_CASES: list[tuple[web.Response, type[Exception], str]] = [
    (
        problem(401, "Authentication credentials were not provided."),
        AuthenticationError,
        "access token",
    ),
    (problem(403, "You do not have permission."), AccessDeniedError, "permission"),
    (
        problem(404, "Resource does not exist."),
        VehicleNotAvailableError,
        "does not exist",
    ),
    (
        problem(409, "Smart charging is off."),
        CommandRejectedError,
        "^Smart charging is off.$",
    ),
    (
        problem(
            400,
            "Invalid input.",
            field_errors={
                "maximum_charge_limit_percentage": [
                    "Ensure this value is less than or equal to 100."
                ]
            },
        ),
        CommandRejectedError,
        "^Invalid input. maximum_charge_limit_percentage: Ensure this value is less "
        r"than or equal to 100\.$",
    ),
    (problem(400), CommandRejectedError, r"rejected the request \(HTTP 400\)"),
    (
        problem(503, "The command could not be delivered to the vehicle or charger."),
        DeviceOfflineError,
        "could not be delivered",
    ),
    (problem(503), DeviceOfflineError, "could not be delivered"),
    (
        web.Response(status=503, text="<html>down</html>"),
        CommunicationError,
        r"HTTP 503",
    ),
    (
        web.Response(status=502, text="<html>Bad Gateway</html>"),
        CommunicationError,
        "HTTP 502",
    ),
    (web.Response(status=500), CommunicationError, r"failed \(HTTP 500\)"),
    (web.Response(status=406), CommunicationError, r"Unexpected .*HTTP 406"),
    (
        web.Response(text="<html>login</html>", content_type="text/html"),
        InvalidResponseError,
        "not JSON",
    ),
    (ok({"id": VEHICLE_ID}), InvalidResponseError, "no JSON array"),
]


@pytest.mark.parametrize(("answer", "error", "match"), ERROR_CASES)
async def test_error_mapping(
    session: aiohttp.ClientSession,
    scripted: Scripted,
    answer: web.Response,
    error: type[Exception],
    match: str,
) -> None:
    """Each answer becomes its error, with no token in it."""
    scripted.answers = [answer]
    with pytest.raises(error, match=match) as caught:
        await client(session, scripted).async_get_vehicles()
    secret_free(caught.value, TOKEN)
    if isinstance(caught.value, VehicleNotAvailableError):
        assert caught.value.reason == "not_owned"


async def test_missing_scope_names_it(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Command logs need debug:read; the error says so."""
    scripted.answers = [problem(403, "You do not have permission.")]
    with pytest.raises(AccessDeniedError, match=r"\(debug:read\)"):
        await client(session, scripted).async_get_command_logs(VEHICLE_ID)


async def test_command_errors(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A session that is gone and one that cannot be boosted reject the command."""
    scripted.answers = [
        problem(404, "Resource does not exist or cannot be accessed."),
        problem(409, "The current sub-session is not smart charging."),
        ok({"id": ""}),
    ]
    api = client(session, scripted)
    with pytest.raises(CommandRejectedError, match="does not exist or has ended"):
        await api.async_boost_start(SESSION_ID)
    with pytest.raises(CommandRejectedError, match="not smart charging"):
        await api.async_boost_end(SESSION_ID)
    with pytest.raises(InvalidResponseError):
        await api.async_boost_end(SESSION_ID)


async def test_server_text_is_cleaned(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A detail that echoes the token or a URL with a query loses both."""
    scripted.answers = [
        problem(
            409,
            f"Token {TOKEN} may not call https://api.ev.energy/v2/x?token={TOKEN} "
            + "x" * 400,
        )
    ]
    with pytest.raises(CommandRejectedError) as caught:
        await client(session, scripted).async_boost_start(SESSION_ID)
    secret_free(caught.value, TOKEN, "?token")
    assert "https://api.ev.energy/v2/x" in str(caught.value)
    assert len(str(caught.value)) <= 300


@pytest.mark.parametrize(
    ("headers", "expected"),
    [({"retry-after": "42"}, 42.0), ({"RetryAfter": "5"}, 5.0), ({}, 60.0)],
)
async def test_rate_limited_pauses_the_budget(
    session: aiohttp.ClientSession,
    scripted: Scripted,
    headers: dict[str, str],
    expected: float,
) -> None:
    """429: the wait from either header (60 s without), and nothing sent meanwhile."""
    scripted.answers = [
        web.Response(
            status=429,
            text=json.dumps(
                {
                    "status": 429,
                    "title": "Too many requests",
                    "detail": "Request was rate limited. Try again in 42 seconds",
                }
            ),
            content_type="application/problem+json",
            headers=headers,
        )
    ]
    budget = new_budget()
    api = client(session, scripted, budget=budget)
    with pytest.raises(RateLimitedError) as caught:
        await api.async_get_vehicles()
    assert caught.value.retry_after == expected
    with pytest.raises(RateLimitedError):
        await api.async_get_vehicles()
    with pytest.raises(RateLimitedError):  # the pause holds commands too
        await api.async_boost_start(SESSION_ID)
    assert len(scripted.seen) == 1


async def test_rate_limit_headers_steer_the_budget(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The server's limit sets the poll rate; below the reserve polls stop."""
    budget = RequestBudget(burst=100, per_minute=1, maximum=100)
    api = client(session, scripted, budget=budget)
    scripted.answers = [ok(VEHICLE, **{"x-ratelimit-limit": "3000"})]
    await api.async_get_vehicle(VEHICLE_ID)
    assert budget.per_minute == pytest.approx(3000 * 0.8 / 60)
    assert api.rate_limit == RateLimit(3000, 990)
    scripted.answers = [
        ok(VEHICLE, **{"x-ratelimit-limit": "1000", "x-ratelimit-remaining": "190"})
    ]
    await api.async_get_vehicle(VEHICLE_ID)
    assert api.rate_limit == RateLimit(1000, 190)
    assert budget.available < 0
    with pytest.raises(RateLimitedError, match="budget") as caught:
        await api.async_get_vehicle(VEHICLE_ID)
    assert caught.value.retry_after == pytest.approx(11 * 4.5, rel=0.01)
    # Commands are not refused by the poll budget: the reserve is theirs.
    scripted.answers = [
        ok(session_json(), **{"x-ratelimit-remaining": "189"}),
        ok(VEHICLE, **{"x-ratelimit-remaining": "188"}),
    ]
    await api.async_boost_start(SESSION_ID)
    await api.async_update_vehicle(VEHICLE_ID, smart_charging_enabled=True)
    assert len(scripted.seen) == 4
    assert api.rate_limit == RateLimit(1000, 188)


async def test_answers_without_rate_limit_headers(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """No headers: rate_limit and budget stay as they were; a bare remaining counts."""
    budget = RequestBudget(burst=10, per_minute=1, maximum=10)
    api = client(session, scripted, budget=budget)
    scripted.answers = [
        web.json_response(VEHICLE),
        web.json_response(VEHICLE, headers={"x-ratelimit-remaining": "205"}),
        web.json_response(VEHICLE, headers={"x-ratelimit-limit": "lots"}),
    ]
    await api.async_get_vehicle(VEHICLE_ID)
    assert api.rate_limit == RateLimit()
    assert budget.per_minute == 1
    await api.async_get_vehicle(VEHICLE_ID)  # limit taken as the default 1000
    assert api.rate_limit == RateLimit(None, 205)
    assert budget.available == pytest.approx(5, abs=0.1)
    await api.async_get_vehicle(VEHICLE_ID)
    assert api.rate_limit == RateLimit(None, 205)


async def test_poll_budget_used_up_sends_nothing(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Polls stop when the budget is used up; a command still goes through."""
    budget = RequestBudget(burst=1, per_minute=1, maximum=1)
    api = client(session, scripted, budget=budget)
    scripted.answers = [web.json_response(VEHICLE), web.json_response(session_json())]
    await api.async_get_vehicle(VEHICLE_ID)
    with pytest.raises(RateLimitedError, match="used up"):
        await api.async_get_vehicle(VEHICLE_ID)
    await api.async_boost_start(SESSION_ID)
    assert [s.method for s in scripted.seen] == ["GET", "POST"]


async def test_token_getter_errors_pass_through(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The getter's own errors reach the caller unchanged; nothing is sent."""

    async def refused() -> str:
        raise AuthenticationError("The ev.energy authorisation has expired")

    api = EvEnergyClient(session, refused, base_url=scripted.url)
    with pytest.raises(AuthenticationError, match="expired"):
        await api.async_get_vehicles()
    assert scripted.seen == []


async def test_unreachable_server(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    """A refused connection names only the error type, and keeps no cause."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = EvEnergyClient(session, static_token, base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(CommunicationError, match=r"\(Client\w*Error\)") as caught:
        await api.async_get_vehicles()
    secret_free(caught.value, TOKEN, "page_size")
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


async def test_timeout(session: aiohttp.ClientSession, socket_enabled: None) -> None:
    """No answer within the timeout: a communication error without the URL."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response([])  # pragma: no cover

    app = web.Application()
    app.router.add_get("/v2/vehicles", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        api = EvEnergyClient(
            session, static_token, base_url=f"http://127.0.0.1:{port}", timeout=0.2
        )
        with pytest.raises(CommunicationError, match="in time") as caught:
            await api.async_get_vehicles()
        secret_free(caught.value, TOKEN, "page_size")
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None
    finally:
        await runner.shutdown()
        await runner.cleanup()


# --- client credentials ------------------------------------------------------------


def token_answer(token: str = TOKEN, expires_in: Any = 36000) -> web.Response:
    """The token endpoint's answer."""
    return web.json_response(
        {
            "access_token": token,
            "expires_in": expires_in,
            "token_type": "Bearer",
            "scope": "vehicle:read",
        }
    )


class Clock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        """Start at 1000."""
        self.now = 1000.0

    def __call__(self) -> float:
        """The current time."""
        return self.now


async def test_client_credentials_cached_until_expiry(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """One token request for many calls; a new one shortly before expiry."""
    clock = Clock()
    credentials = ClientCredentials(
        session, scripted.url, CLIENT_ID, CLIENT_SECRET, clock=clock
    )
    scripted.answers = [token_answer("t1", 600), token_answer("t2")]
    assert await credentials() == "t1"
    assert await credentials() == "t1"
    clock.now += 539
    assert await credentials() == "t1"
    clock.now += 1  # 60 s before expiry
    assert await credentials() == "t2"
    request = scripted.seen[0]
    assert request.method == "POST"
    assert request.path == "/o/token/"
    assert request.body == b"grant_type=client_credentials"
    scheme, _, encoded = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    # RFC 6749 §2.3.1: both parts form-urlencoded, then base64.
    login, _, password = base64.b64decode(encoded).decode().partition(":")
    assert (unquote_plus(login), unquote_plus(password)) == (CLIENT_ID, CLIENT_SECRET)
    assert password == "s3cr3t%2F%2B%3Dclient%26secret"
    assert len(scripted.seen) == 2
    assert CLIENT_SECRET not in repr(credentials)
    assert "t2" not in repr(credentials)


async def test_client_credentials_concurrent_callers_share_a_request(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Callers waiting for the first token get the same one."""
    credentials = ClientCredentials(session, scripted.url, CLIENT_ID, CLIENT_SECRET)
    scripted.answers = [token_answer("t1", "soon")]  # no usable lifetime: 10 h
    tokens = await asyncio.gather(*(credentials() for _ in range(5)))
    assert tokens == ["t1"] * 5
    assert len(scripted.seen) == 1


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        (
            web.json_response({"error": "invalid_client"}, status=401),
            AuthenticationError,
            r"client ID or secret \(invalid_client\)$",
        ),
        (
            web.json_response(
                {"error": "unauthorized_client", "error_description": CLIENT_SECRET},
                status=400,
            ),
            AuthenticationError,
            r"\(unauthorized_client\)$",
        ),
        (
            web.json_response({"error": CLIENT_SECRET}, status=400),
            AuthenticationError,
            "secret$",
        ),
        (web.Response(status=400, text="bad"), AuthenticationError, "secret$"),
        (
            web.Response(status=429, headers={"Retry-After": "9"}),
            RateLimitedError,
            "slow down",
        ),
        (web.Response(status=502), CommunicationError, r"HTTP 502"),
        (web.Response(status=302), CommunicationError, r"Unexpected .*HTTP 302"),
        (web.Response(text="<html>"), InvalidResponseError, "not JSON"),
        (
            web.json_response({"token_type": "Bearer"}),
            InvalidResponseError,
            "no access",
        ),
        (web.json_response(["x"]), InvalidResponseError, "no access"),
    ],
)
async def test_client_credentials_refused(
    session: aiohttp.ClientSession,
    scripted: Scripted,
    answer: web.Response,
    error: type[Exception],
    match: str,
) -> None:
    """Refused credentials are an authentication error; no secret in any error."""
    scripted.answers = [answer]
    credentials = ClientCredentials(session, scripted.url, CLIENT_ID, CLIENT_SECRET)
    with pytest.raises(error, match=match) as caught:
        await credentials()
    secret_free(caught.value, CLIENT_SECRET)
    if isinstance(caught.value, RateLimitedError):
        assert caught.value.retry_after == 9


async def test_client_credentials_token_renewed_once_on_401(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A revoked cached token is replaced once; a second 401 is an auth error."""
    credentials = ClientCredentials(session, scripted.url, CLIENT_ID, CLIENT_SECRET)
    api = EvEnergyClient(session, credentials, base_url=scripted.url, user_id=USER_ID)
    scripted.answers = [
        token_answer("t1"),
        problem(401, "Invalid token."),
        token_answer("t2"),
        ok([VEHICLE]),
    ]
    assert len(await api.async_get_vehicles()) == 1
    assert [s.path for s in scripted.seen] == [
        "/o/token/",
        "/v2/vehicles",
        "/o/token/",
        "/v2/vehicles",
    ]
    assert scripted.seen[3].headers["Authorization"] == "Bearer t2"
    scripted.answers = [problem(401), token_answer("t3"), problem(401)]
    with pytest.raises(AuthenticationError) as caught:
        await api.async_get_vehicles()
    secret_free(caught.value, CLIENT_SECRET, "t2", "t3")
    credentials.invalidate("other")  # not the cached token: kept
    scripted.answers = [ok([])]
    assert await api.async_get_vehicles() == []
    assert scripted.seen[-1].headers["Authorization"] == "Bearer t3"


# --- over HTTP: the simulator ------------------------------------------------------

SIM_CLIENT_ID = "ha-client"
SIM_CLIENT_SECRET = "ha-client-secret-0123456789"
SIM_ORG_ID = "org-client"
SIM_ORG_SECRET = "org-secret-9876543210"


class Sim:
    """A running simulator: alice with a plugged-in car, a parked car and a charger."""

    def __init__(self, sim: EvEnergySimulator) -> None:
        """Create the users, OAuth clients, vehicles and the charger."""
        self.sim = sim
        self.alice = sim.add_user("alice@example.com").id
        self.bob = sim.add_user("bob@example.com").id
        self.app = sim.add_client(SIM_CLIENT_ID, SIM_CLIENT_SECRET)
        sim.add_client(SIM_ORG_ID, SIM_ORG_SECRET, organisation_users=[self.alice])
        self.car = sim.add_vehicle(SimVehicle(self.alice, description="Car")).id
        self.parked = sim.add_vehicle(SimVehicle(self.alice, soc=70.0)).id
        self.bobcar = sim.add_vehicle(SimVehicle(self.bob)).id
        self.evse = sim.add_evse(SimEvse(self.alice, vehicle_id=self.car)).id
        sim.plug_in(self.car)
        self.token = sim.issue_token(SIM_CLIENT_ID, self.alice)["access_token"]

    def client(self, session: aiohttp.ClientSession, **kwargs: Any) -> EvEnergyClient:
        """Alice's client with her (authorization-code) token."""

        async def token() -> str:
            return self.token

        return EvEnergyClient(session, token, base_url=self.sim.url, **kwargs)


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[Sim]:
    """The simulator, running with alice's and bob's things."""
    async with EvEnergySimulator() as simulator:
        yield Sim(simulator)


async def test_sim_reads(session: aiohttp.ClientSession, sim: Sim) -> None:
    """User, vehicles with status, one vehicle, location, chargers, the session."""
    api = sim.client(session)
    assert await api.async_get_user_id() == sim.alice
    vehicles = {v.vehicle_id: v for v in await api.async_get_vehicles()}
    assert set(vehicles) == {sim.car, sim.parked}
    car = vehicles[sim.car]
    assert car.description == "Car"
    assert car.integrated == "active"
    assert car.smart_charging_enabled is True
    assert car.status is not None
    assert car.status.is_plugged_in is True
    assert car.status.current_type == "ac"
    assert car.status.state in ("plugged_in_charging", "plugged_in_not_charging")
    assert car.status.sampled_at is not None
    assert (await api.async_get_vehicle(sim.parked)).status is not None
    location = await api.async_get_latest_location(sim.car)
    assert location is not None
    assert location.at_home is True
    (evse,) = await api.async_get_evses()
    assert evse.evse_id == sim.evse
    assert evse.lock_mode == "smart"
    assert evse.status is not None
    active = await api.async_get_active_session(sim.car)
    assert active is not None
    assert active.vehicle_id == sim.car
    assert active.evse_id == sim.evse
    assert active.end is None
    assert active.mode == "smart"
    assert await api.async_get_active_session(sim.parked) is None
    assert api.rate_limit == RateLimit(1000, 1000 - len(sim.sim.requests))


async def test_sim_pagination_to_the_end(
    session: aiohttp.ClientSession, sim: Sim
) -> None:
    """250 vehicles: three pages of 100, every one read once."""
    for number in range(248):
        sim.sim.add_vehicle(SimVehicle(sim.alice, description=f"Fleet {number}"))
    vehicles = await sim.client(session).async_get_vehicles()
    assert len(vehicles) == 250
    assert len({v.vehicle_id for v in vehicles}) == 250
    assert all(v.status is not None for v in vehicles)
    assert sim.sim.requests == [("GET", "/v2/vehicles")] * 3


async def test_sim_boost_and_command_logs(
    session: aiohttp.ClientSession, sim: Sim
) -> None:
    """Boost and back; each sends a command the logs show, newest first."""
    api = sim.client(session)
    active = await api.async_get_active_session(sim.car)
    assert active is not None
    before = datetime.fromtimestamp(sim.sim.now, UTC)
    boosted = await api.async_boost_start(active.session_id)
    assert boosted.mode == "boost"
    with pytest.raises(CommandRejectedError, match="not an in-progress SMART"):
        await api.async_boost_start(active.session_id)
    sim.sim.advance(60)
    assert (await api.async_boost_end(active.session_id)).mode == "smart"
    with pytest.raises(CommandRejectedError, match="not boosting"):
        await api.async_boost_end(active.session_id)
    logs = await api.async_get_command_logs(sim.car, since=before)
    assert [log.command for log in logs] == ["stop_charge", "start_charge"]
    assert logs[1].current_milliamps == 32000
    assert logs[0].command_id is not None
    assert len(await api.async_get_command_logs(sim.car)) == 2
    assert await api.async_get_command_logs(sim.car, since=before + timedelta(1)) == []


async def test_sim_command_failures(session: aiohttp.ClientSession, sim: Sim) -> None:
    """Undeliverable boost, smart charging off, unknown session."""
    api = sim.client(session)
    active = await api.async_get_active_session(sim.car)
    assert active is not None
    sim.sim.vehicle(sim.car).unreachable = True
    with pytest.raises(DeviceOfflineError, match="could not be delivered"):
        await api.async_boost_start(active.session_id)
    sim.sim.vehicle(sim.car).unreachable = False
    await api.async_update_vehicle(sim.car, smart_charging_enabled=False)
    with pytest.raises(CommandRejectedError, match="Smart charging is disabled"):
        await api.async_boost_start(active.session_id)
    with pytest.raises(CommandRejectedError, match="does not exist or has ended"):
        await api.async_boost_start("csesUNKNOWN")


async def test_sim_update_vehicle(session: aiohttp.ClientSession, sim: Sim) -> None:
    """PATCH changes only the given fields; a value out of range is explained."""
    api = sim.client(session)
    changed = await api.async_update_vehicle(
        sim.car, maximum_charge_limit_percentage=90
    )
    assert changed.maximum_charge_limit_percentage == 90
    assert changed.smart_charging_enabled is True
    assert changed.status is not None
    changed = await api.async_update_vehicle(sim.car, smart_charging_enabled=False)
    assert changed.smart_charging_enabled is False
    assert changed.maximum_charge_limit_percentage == 90
    with pytest.raises(
        CommandRejectedError,
        match="maximum_charge_limit_percentage: Ensure this value is less than or "
        r"equal to 100\.",
    ):
        await api.async_update_vehicle(sim.car, maximum_charge_limit_percentage=101)


async def test_sim_access_errors(session: aiohttp.ClientSession, sim: Sim) -> None:
    """Another user's vehicle, a missing scope, a revoked token."""
    api = sim.client(session)
    with pytest.raises(VehicleNotAvailableError) as not_owned:
        await api.async_get_vehicle(sim.bobcar)
    assert not_owned.value.reason == "not_owned"
    sim.app.scopes.discard("debug:read")
    with pytest.raises(AccessDeniedError, match="debug:read") as denied:
        await api.async_get_command_logs(sim.car)
    sim.sim.revoke(sim.alice)
    with pytest.raises(AuthenticationError) as refused:
        await api.async_get_vehicles()
    for error in (not_owned.value, denied.value, refused.value):
        secret_free(error, sim.token)


@pytest.mark.parametrize("header", ["retry-after", "RetryAfter"])
async def test_sim_rate_limit(
    session: aiohttp.ClientSession, sim: Sim, header: str
) -> None:
    """The server's limit: polls slow to 80 % of it, 429 pauses everything."""
    sim.sim.hourly_limit = 10
    sim.sim.retry_after_header = header
    budget = new_budget()
    api = sim.client(session, budget=budget)
    await api.async_get_vehicle(sim.car)
    assert api.rate_limit == RateLimit(10, 9)
    assert budget.per_minute == pytest.approx(8 / 60)
    # 9 left - 2 kept for commands; it refills (0.002 a second) as the test runs.
    assert budget.available == pytest.approx(7, abs=0.01)
    for _ in range(7):
        await api.async_get_vehicle(sim.car)
    with pytest.raises(RateLimitedError, match="budget"):
        await api.async_get_vehicle(sim.car)  # 2 left: only for commands
    assert api.rate_limit == RateLimit(10, 2)
    await api.async_update_vehicle(sim.car, maximum_charge_limit_percentage=85)
    await api.async_update_vehicle(sim.car, maximum_charge_limit_percentage=86)
    assert api.rate_limit == RateLimit(10, 0)
    sim.sim.advance(100)
    with pytest.raises(RateLimitedError) as caught:
        await api.async_update_vehicle(sim.car, maximum_charge_limit_percentage=87)
    assert caught.value.retry_after == 3500
    sent = len(sim.sim.requests)
    with pytest.raises(RateLimitedError, match="slow down"):
        await api.async_update_vehicle(sim.car, maximum_charge_limit_percentage=87)
    assert len(sim.sim.requests) == sent
    secret_free(caught.value, sim.token)


@pytest.mark.parametrize(
    ("fault", "error", "match"),
    [
        (EvEnergyFault.SERVER_ERROR, CommunicationError, "HTTP 500"),
        (EvEnergyFault.BAD_GATEWAY, CommunicationError, "HTTP 502"),
        (EvEnergyFault.UNAVAILABLE, CommunicationError, "HTTP 503"),
        (EvEnergyFault.MALFORMED, InvalidResponseError, "not JSON"),
    ],
)
async def test_sim_faults(
    session: aiohttp.ClientSession,
    sim: Sim,
    fault: EvEnergyFault,
    error: type[Exception],
    match: str,
) -> None:
    """A broken server, a proxy page and a garbled body."""
    sim.sim.fault = fault
    with pytest.raises(error, match=match) as caught:
        await sim.client(session).async_get_vehicles()
    secret_free(caught.value, sim.token)


async def test_sim_slow(session: aiohttp.ClientSession, sim: Sim) -> None:
    """No answer in time: a communication error without cause."""
    sim.sim.fault = EvEnergyFault.SLOW
    sim.sim.slow_seconds = 5
    with pytest.raises(CommunicationError, match="in time") as caught:
        await sim.client(session, timeout=0.2).async_get_vehicles()
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


async def test_sim_client_credentials(session: aiohttp.ClientSession, sim: Sim) -> None:
    """An organisation acts for alice; the token is fetched once and renewed late."""
    sim.sim.token_lifetime = 600
    credentials = ClientCredentials(
        session, sim.sim.url, SIM_ORG_ID, SIM_ORG_SECRET, clock=lambda: sim.sim.now
    )
    api = EvEnergyClient(session, credentials, base_url=sim.sim.url, user_id=sim.alice)
    assert len(await api.async_get_vehicles()) == 2
    await api.async_get_evses()
    assert sim.sim.token_requests == ["client_credentials"]
    sim.sim.advance(539)
    await api.async_get_evses()
    assert sim.sim.token_requests == ["client_credentials"]
    sim.sim.advance(1)
    await api.async_get_evses()
    assert sim.sim.token_requests == ["client_credentials"] * 2
    sim.sim.expire_tokens()  # the server drops it early: renewed once
    await api.async_get_evses()
    assert sim.sim.token_requests == ["client_credentials"] * 3
    # Without a user the organisation token is refused by most endpoints.
    orphan = EvEnergyClient(session, credentials, base_url=sim.sim.url)
    with pytest.raises(CommandRejectedError, match="EvEnergy-User"):
        await orphan.async_get_vehicles()
    assert await orphan.async_get_user_id() == sim.alice
    assert SIM_ORG_SECRET not in repr(credentials)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("user01HN2NJ9NMRZBXT1H6FT9N7735", "user01HN2NJ9NMRZBXT1H6FT9N7735"),
        (" user01HN2NJ9NMRZBXT1H6FT9N7735 ", "user01HN2NJ9NMRZBXT1H6FT9N7735"),
        (
            "https://api.ev.energy/v2/users/user01HN2NJ9NMRZBXT1H6FT9N7735",
            "user01HN2NJ9NMRZBXT1H6FT9N7735",
        ),
        (
            "http://127.0.0.1:8080/v2/users/user01HN2NJ9NMRZBXT1H6FT9N7735/",
            "user01HN2NJ9NMRZBXT1H6FT9N7735",
        ),
        ("user01hn2nj9nmrzbxt1h6ft9n7735", None),  # the pattern is upper case
        ("user01HN2NJ9NMRZBXT1H6FT9N773", None),  # 25 characters
        ("user01HN2NJ9NMRZBXT1H6FT9N77355", None),  # 27 characters
        ("vhcl01HRFF3SEVSCRAV9B3CHVDFN0H", None),
        ("https://api.ev.energy/v2/vehicles/vhcl01HRFF3SEVSCRAV9B3CHVDFN0H", None),
        ("https://api.ev.energy/v2/users/user01HN2NJ9NMRZBXT1H6FT9N7735?x=1", None),
        ("ftp://api.ev.energy/v2/users/user01HN2NJ9NMRZBXT1H6FT9N7735", None),
        ("api.ev.energy/v2/users/user01HN2NJ9NMRZBXT1H6FT9N7735", None),
        ("", None),
    ],
)
def test_user_reference_id(value: str, expected: str | None) -> None:
    """EvEnergy-User names a user by id (spec) or by the user's URL (docs)."""
    assert user_reference_id(value) == expected


@pytest.mark.parametrize("form", ["id", "url", "url/"])
async def test_sim_user_header_as_given(
    session: aiohttp.ClientSession, sim: Sim, form: str
) -> None:
    """An organisation names alice by id or URL; the header goes exactly as given."""
    named = {
        "id": sim.alice,
        "url": f"{sim.sim.api_url}/users/{sim.alice}",
        "url/": f"{sim.sim.api_url}/users/{sim.alice}/",
    }[form]
    credentials = ClientCredentials(session, sim.sim.url, SIM_ORG_ID, SIM_ORG_SECRET)
    api = EvEnergyClient(session, credentials, base_url=sim.sim.url, user_id=named)
    user = await api.async_get_user()
    assert (user.user_id, user.email) == (sim.alice, "alice@example.com")
    assert {v.vehicle_id for v in await api.async_get_vehicles()} == {
        sim.car,
        sim.parked,
    }
    assert sim.sim.user_headers == [named, named]


async def test_sim_user_header_refused(
    session: aiohttp.ClientSession, sim: Sim
) -> None:
    """A user outside the organisation: the service's 400 names the user as refused."""
    credentials = ClientCredentials(session, sim.sim.url, SIM_ORG_ID, SIM_ORG_SECRET)
    api = EvEnergyClient(session, credentials, base_url=sim.sim.url, user_id=sim.bob)
    with pytest.raises(CommandRejectedError, match="EvEnergy-User") as caught:
        await api.async_get_user()
    assert caught.value.reason == "unknown_user"
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    ("client_id", "secret", "match"),
    [
        (SIM_ORG_ID, "wrong-secret", "invalid_client"),
        ("nobody", SIM_ORG_SECRET, "invalid_client"),
        (SIM_CLIENT_ID, SIM_CLIENT_SECRET, "unauthorized_client"),  # no organisation
    ],
)
async def test_sim_client_credentials_refused(
    session: aiohttp.ClientSession,
    sim: Sim,
    client_id: str,
    secret: str,
    match: str,
) -> None:
    """Refused client credentials are an authentication error without the secret."""
    credentials = ClientCredentials(session, sim.sim.url, client_id, secret)
    api = EvEnergyClient(session, credentials, base_url=sim.sim.url, user_id=sim.alice)
    with pytest.raises(AuthenticationError, match=match) as caught:
        await api.async_get_vehicles()
    secret_free(caught.value, secret)
    assert sim.sim.requests == []


async def test_sim_token_endpoint_fault(
    session: aiohttp.ClientSession, sim: Sim
) -> None:
    """A failing token endpoint is a communication error."""
    sim.sim.token_fault = EvEnergyFault.BAD_GATEWAY
    credentials = ClientCredentials(session, sim.sim.url, SIM_ORG_ID, SIM_ORG_SECRET)
    with pytest.raises(CommunicationError, match="HTTP 502") as caught:
        await credentials()
    secret_free(caught.value, SIM_ORG_SECRET)


async def test_client_secret_with_reserved_characters(socket_enabled: None) -> None:
    """A secret with `/+=&:` signs in: encoded by the client, decoded by the server."""
    secret = "s/e+c=r&t:1"
    async with EvEnergySimulator() as sim, aiohttp.ClientSession() as session:
        user = sim.add_user("org-user@example.com")
        sim.add_client("org:client", secret, organisation_users=[user.id])
        credentials = ClientCredentials(session, sim.url, "org:client", secret)
        client = EvEnergyClient(session, credentials, base_url=sim.url, user_id=user.id)
        assert await client.async_get_user_id() == user.id
