"""The EVLinkHA client: parsing, and over real HTTP to a scripted server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
import json
import socket
from typing import Any

import aiohttp
from aiohttp import web
import pytest

from custom_components.ev_cloud.api import (
    AccessDeniedError,
    AuthenticationError,
    CommandRejectedError,
    CommunicationError,
    EvCloudError,
    InvalidResponseError,
    QuotaExhaustedError,
    RateLimitedError,
    VehicleNotAvailableError,
)
from custom_components.ev_cloud.api.budget import DAY, QuotaBudget
from custom_components.ev_cloud.api.evlinkha import (
    DEFAULT_SERVER_URL,
    HOSTED_PATH,
    POWER_DELIVERY_STATES,
    SELF_HOSTED_PATH,
    ChargeState,
    EvLinkClient,
    EvLinkVehicle,
    Me,
    api_root,
    detail_text,
    parse_allowance,
    parse_me,
    parse_push,
    parse_vehicle,
    power_delivery_key,
)
from tests.scripted import Scripted, secret_free
from tests.simulators.evlinkha import EvLinkFault, EvLinkSimulator, SimVehicle

API_KEY = "evlk_live_9f8e7d6c5b4a3210fedcba9876543210"
VEHICLE_ID = "331c054f-b583-4284-b7b0-ce348c0a66fc"
ENODE_ID = "9801efc6-2d23-4fc5-bdc6-ba40b4e25e55"

# providers.md §5.3: a `/ha/status/{vehicle_id}` answer.
STATUS: dict[str, Any] = {
    "vehicleName": "XPENG G6",
    "isReachable": True,
    "lastSeen": "2025-07-25T08:16:52.043000Z",
    "chargeState": {
        "batteryLevel": 25,
        "range": 136.5,
        "isCharging": False,
        "isPluggedIn": False,
        "isFullyCharged": False,
        "batteryCapacity": 91.0,
        "chargeRate": None,
        "chargeLimit": 90,
        "chargeTimeRemaining": None,
        "maxCurrent": None,
        "powerDeliveryState": "UNPLUGGED",
        "lastUpdated": "2025-07-21T20:58:02.419000Z",
    },
    "information": {
        "displayName": None,
        "vin": "LMVHFEFZ0PA000001",
        "brand": "XPENG",
        "model": "G6",
        "year": 2025,
    },
    "location": {
        "id": None,
        "latitude": 59.14,
        "longitude": 18.13,
        "lastUpdated": "2025-07-25T08:16:52Z",
    },
    "odometer": {"distance": 897.0, "lastUpdated": "2025-07-25T08:16:52Z"},
    "vendor": "XPENG",
    "smartChargingPolicy": {
        "deadline": None,
        "isEnabled": False,
        "minimumChargeLimit": 0,
    },
    "capabilities": {
        "information": {"isCapable": True, "interventionIds": []},
        "chargeState": {"isCapable": True, "interventionIds": []},
        "location": {"isCapable": True, "interventionIds": []},
        "odometer": {"isCapable": True, "interventionIds": []},
        "setMaxCurrent": {"isCapable": False, "interventionIds": ["x"]},
        "startCharging": {"isCapable": True, "interventionIds": []},
        "stopCharging": {"isCapable": True, "interventionIds": []},
        "smartCharging": {"isCapable": False, "interventionIds": []},
    },
}

EXPECTED = EvLinkVehicle(
    vehicle_id=VEHICLE_ID,
    name="XPENG G6",
    is_reachable=True,
    last_seen=datetime(2025, 7, 25, 8, 16, 52, 43000, tzinfo=UTC),
    charge=ChargeState(
        battery_level=25.0,
        range_km=136.5,
        is_charging=False,
        is_plugged_in=False,
        is_fully_charged=False,
        battery_capacity_kwh=91.0,
        charge_rate_kw=None,
        charge_limit=90.0,
        time_remaining_min=None,
        max_current=None,
        power_delivery_state="unplugged",
        last_updated=datetime(2025, 7, 21, 20, 58, 2, 419000, tzinfo=UTC),
    ),
    latitude=59.14,
    longitude=18.13,
    odometer_km=897.0,
    vendor="XPENG",
    brand="XPENG",
    model="G6",
    year=2025,
    vin="LMVHFEFZ0PA000001",
    smart_charging=False,
    capabilities=tuple(
        sorted(
            {
                "chargeState",
                "information",
                "location",
                "odometer",
                "startCharging",
                "stopCharging",
            }
        )
    ),
)

# api-docs/evlinkha.txt: the legacy `/api/status/{id}` answer.
LEGACY_STATUS: dict[str, Any] = {
    "batteryLevel": 18,
    "range": 98.28,
    "isCharging": False,
    "isPluggedIn": False,
    "chargingState": "UNPLUGGED",
    "vehicleName": "XPENG G6",
    "lastSeen": "2025-05-20T15:48:12.933Z",
    "isReachable": True,
    "chargeState": {
        "batteryLevel": 18,
        "range": 98.28,
        "isPluggedIn": False,
        "isCharging": False,
        "batteryCapacity": 91,
        "chargeLimit": None,
        "chargeRate": None,
        "chargeTimeRemaining": None,
        "isFullyCharged": False,
        "lastUpdated": "2025-05-13T14:15:29.717Z",
        "powerDeliveryState": "UNPLUGGED",
        "maxCurrent": None,
    },
}


# --- parsing ---------------------------------------------------------------------


CLOUD = "https://api.evlinkha.cloud"
EXAMPLE = "https://ev.example.org"


@pytest.mark.parametrize(
    ("server_url", "expected"),
    [
        (DEFAULT_SERVER_URL, (f"{CLOUD}/api/v1/ha", "key")),
        (f"{CLOUD}/", (f"{CLOUD}/api/v1/ha", "key")),
        (" https://api.evlinkha.com ", ("https://api.evlinkha.com/api/v1/ha", "key")),
        (f"{CLOUD}/api/v1/ha/", (DEFAULT_SERVER_URL + HOSTED_PATH, "key")),
        (
            "http://192.168.1.5:8000/api/ha",
            ("http://192.168.1.5:8000/api/ha", "bearer"),
        ),
        (f"{EXAMPLE}/x/api/ha/?q=1#f", (f"{EXAMPLE}/x/api/ha", "bearer")),
        (f"{EXAMPLE}/proxy/evlink", (f"{EXAMPLE}/proxy/evlink", "key")),
        (f"{EXAMPLE}/api/hax", (f"{EXAMPLE}/api/hax", "key")),
    ],
)
def test_api_root(server_url: str, expected: tuple[str, str]) -> None:
    """No path: the hosted API; a path ending in /api/ha: self-hosted, bearer."""
    assert api_root(server_url) == expected
    assert SELF_HOSTED_PATH == "/api/ha"


@pytest.mark.parametrize(
    "server_url", ["api.evlinkha.cloud", "ftp://x/", "https://", ""]
)
def test_api_root_refuses_other_urls(server_url: str) -> None:
    """Only http(s) URLs with a host."""
    with pytest.raises(ValueError, match="server URL"):
        api_root(server_url)


def test_parse_status_example() -> None:
    """The status example of providers.md §5.3, with the id given by the caller."""
    assert parse_vehicle(STATUS) is None  # no id of its own
    assert parse_vehicle({**STATUS, "vehicleId": VEHICLE_ID}) == EXPECTED
    assert parse_vehicle({**STATUS, "id": VEHICLE_ID}) == EXPECTED


def test_vehicle_id_preferred_over_id() -> None:
    """`vehicleId` (EVLinkHA's) wins over `id`; a numeric id becomes text."""
    both = parse_vehicle({"vehicleId": VEHICLE_ID, "id": ENODE_ID})
    assert both is not None
    assert both.vehicle_id == VEHICLE_ID
    numeric = parse_vehicle({"vehicleId": "", "id": 42})
    assert numeric is not None
    assert numeric.vehicle_id == "42"
    for wrong in ({"vehicleId": None}, {"id": True}, {"id": "  "}, [], "x", None):
        assert parse_vehicle(wrong) is None


def test_parse_legacy_status() -> None:
    """chargeState wins over the deprecated top-level keys, which fill its gaps."""
    vehicle = parse_vehicle({**LEGACY_STATUS, "vehicleId": VEHICLE_ID})
    assert vehicle is not None
    assert vehicle.charge.battery_level == 18.0
    assert vehicle.charge.battery_capacity_kwh == 91.0
    assert vehicle.charge.power_delivery_state == "unplugged"
    assert vehicle.name == "XPENG G6"
    assert vehicle.brand is None
    assert vehicle.capabilities is None  # not in the answer: unknown
    conflicting = parse_vehicle(
        {
            "vehicleId": VEHICLE_ID,
            "batteryLevel": 10,
            "isCharging": True,
            "chargingState": "PLUGGED_IN:CHARGING",
            "chargeState": {
                "batteryLevel": 55,
                "isCharging": False,
                "powerDeliveryState": "PLUGGED_IN:STOPPED",
            },
        }
    )
    assert conflicting is not None
    assert conflicting.charge.battery_level == 55.0
    assert conflicting.charge.is_charging is False
    assert conflicting.charge.power_delivery_state == "plugged_in_stopped"
    legacy_only = parse_vehicle(
        {
            "vehicleId": VEHICLE_ID,
            "batteryLevel": 10,
            "range": 50.5,
            "isCharging": True,
            "isPluggedIn": True,
            "chargingState": "PLUGGED_IN:CHARGING",
            "chargeState": {"batteryLevel": None, "isCharging": "yes"},
        }
    )
    assert legacy_only is not None
    assert legacy_only.charge == ChargeState(
        battery_level=10.0,
        range_km=50.5,
        is_charging=True,
        is_plugged_in=True,
        power_delivery_state="plugged_in_charging",
    )


def test_parse_vehicle_defensively() -> None:
    """Wrong types and missing fields are None, never an exception."""
    vehicle = parse_vehicle(
        {
            "vehicleId": VEHICLE_ID,
            "vehicleName": " ",
            "isReachable": "true",
            "lastSeen": "last week",
            "chargeState": {
                "batteryLevel": "25",
                "range": float("nan"),
                "isCharging": 1,
                "isFullyCharged": None,
                "batteryCapacity": True,
                "chargeRate": float("inf"),
                "chargeLimit": [],
                "chargeTimeRemaining": {},
                "maxCurrent": "16",
                "powerDeliveryState": "PLUGGED_IN:TELEPORTING",
                "lastUpdated": 1_700_000_000,
            },
            "information": {"brand": 5, "model": "", "year": 2025.5, "vin": None},
            "location": {"latitude": "59.1", "longitude": None},
            "odometer": [897],
            "vendor": {},
            "smartChargingPolicy": "on",
            "capabilities": {
                "startCharging": {"isCapable": "true"},
                "stopCharging": True,
                "location": {"isCapable": True},
            },
        }
    )
    assert vehicle == EvLinkVehicle(vehicle_id=VEHICLE_ID, capabilities=("location",))
    odd_shapes = parse_vehicle(
        {
            "id": VEHICLE_ID,
            "chargeState": "x",
            "information": [],
            "location": None,
            "capabilities": ["startCharging"],
            "smartChargingPolicy": {"isEnabled": True},
            "lastSeen": "2025-07-25T08:16:52",  # naive: UTC
            "latitude": 1,
            "longitude": 2.5,
        }
    )
    assert odd_shapes == EvLinkVehicle(
        vehicle_id=VEHICLE_ID,
        smart_charging=True,
        last_seen=datetime(2025, 7, 25, 8, 16, 52, tzinfo=UTC),
        latitude=1.0,
        longitude=2.5,
    )


def test_vehicle_name_sources() -> None:
    """The display name first, then vehicleName, then brand and model."""
    named = parse_vehicle(
        {
            "id": "v",
            "vehicleName": "XPENG G6",
            "information": {"displayName": "Family car", "brand": "XPENG"},
        }
    )
    assert named is not None
    assert named.name == "Family car"
    made_of = parse_vehicle(
        {"id": "v", "information": {"brand": "Tesla", "model": "Model 3"}}
    )
    assert made_of is not None
    assert made_of.name == "Tesla Model 3"
    brand_only = parse_vehicle({"id": "v", "information": {"brand": "Tesla"}})
    assert brand_only is not None
    assert brand_only.name == "Tesla"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("UNKNOWN", "unknown"),
        ("UNPLUGGED", "unplugged"),
        ("PLUGGED_IN:INITIALIZING", "plugged_in_initializing"),
        ("PLUGGED_IN:CHARGING", "plugged_in_charging"),
        ("PLUGGED_IN:COMPLETE", "plugged_in_complete"),
        ("PLUGGED_IN:STOPPED", "plugged_in_stopped"),
        ("PLUGGED_IN:NO_POWER", "plugged_in_no_power"),
        ("PLUGGED_IN:FAULT", "plugged_in_fault"),
        ("PLUGGED_IN:DISCHARGING", "plugged_in_discharging"),
        ("plugged_in:charging", "plugged_in_charging"),
        (" Plugged_In:Complete ", "plugged_in_complete"),
        ("PLUGGED_IN:WARP", None),
        ("", None),
        (3, None),
        (None, None),
    ],
)
def test_power_delivery_states(value: Any, expected: str | None) -> None:
    """The enum lower-cased, ":" as "_"; values added later are None."""
    assert power_delivery_key(value) == expected


def test_power_delivery_state_list() -> None:
    """Every enum value of providers.md §5.3, in order."""
    assert POWER_DELIVERY_STATES == (
        "unknown",
        "unplugged",
        "plugged_in_initializing",
        "plugged_in_charging",
        "plugged_in_complete",
        "plugged_in_stopped",
        "plugged_in_no_power",
        "plugged_in_fault",
        "plugged_in_discharging",
    )


ENODE_VEHICLE: dict[str, Any] = {
    "id": ENODE_ID,
    "vendor": "TESLA",
    "lastSeen": "2025-07-25T09:00:00Z",
    "isReachable": True,
    "information": {"brand": "Tesla", "model": "Model Y", "year": 2023, "vin": "5YJ"},
    "chargeState": {"batteryLevel": 80, "powerDeliveryState": "PLUGGED_IN:COMPLETE"},
    "capabilities": {"startCharging": {"isCapable": True}},
}


def test_parse_push_shapes() -> None:
    """An event, a bare vehicle wrapper, and a list of events."""
    event = {"event": "user:vehicle:updated", "vehicle": ENODE_VEHICLE}
    [vehicle] = parse_push(event)
    assert vehicle.vehicle_id == ENODE_ID
    assert vehicle.name == "Tesla Model Y"
    assert vehicle.charge.battery_level == 80.0
    assert vehicle.charge.power_delivery_state == "plugged_in_complete"
    assert vehicle.capabilities == ("startCharging",)
    assert parse_push({"vehicle": {**STATUS, "vehicleId": VEHICLE_ID}}) == [EXPECTED]
    other = {**ENODE_VEHICLE, "id": "second"}
    many = parse_push(
        [
            event,
            {"event": "user:vehicle:discovered", "vehicle": other},
            {"event": "user:vendor-action:updated", "action": {"id": "a"}},
            {"event": "user:vehicle:deleted", "vehicle": {"id": "gone"}},
            "noise",
        ]
    )
    assert [v.vehicle_id for v in many] == [ENODE_ID, "second"]


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "",
        "vehicle",
        42,
        [],
        {},
        {"event": "user:vehicle:updated"},
        {"vehicle": None},
        {"vehicle": []},
        {"vehicle": "x"},
        {"vehicle": {"vehicleName": "no id"}},
        {"vehicle": {"id": None, "chargeState": {"batteryLevel": 5}}},
        [None, 1, "x", [], {"vehicle": {}}],
        [[{"vehicle": ENODE_VEHICLE}]],
        {"event": "user:vehicle:deleted", "vehicle": ENODE_VEHICLE},
        ENODE_VEHICLE,  # a bare vehicle is no event
    ],
)
def test_parse_push_malformed(payload: Any) -> None:
    """Anything malformed gives no vehicle and never raises."""
    assert parse_push(payload) == []


def test_parse_me() -> None:
    """The account; an unknown tier is None, a missing user id is an error."""
    assert parse_me(
        {
            "user_id": "u-1",
            "tier": "Pro",
            "email": "a@example.com",
            "name": "Ann",
            "role": "user",
            "sms_credits": 0,
        }
    ) == Me(user_id="u-1", tier="pro", email="a@example.com", name="Ann")
    assert parse_me({"user_id": 7, "tier": "platinum", "email": 3}) == Me(
        "7", None, None, None
    )
    for wrong in ({}, {"user_id": ""}, {"user_id": None}, [], "u-1"):
        with pytest.raises(InvalidResponseError, match="no user id"):
            parse_me(wrong)


@pytest.mark.parametrize(
    ("detail", "expected"),
    [
        ("Access denied", "Access denied"),
        (
            '{"type": "https://developers.enode.com/api/problems/bad-request", '
            '"title": "Bad Request", "detail": "Vehicle is not plugged in."}',
            "Vehicle is not plugged in.",
        ),
        ('{"title": "Unprocessable Entity"}', "Unprocessable Entity"),
        ('{"error": "x"}', '{"error": "x"}'),
        ("{not json", "{not json"),
        ("{}", "{}"),
        ('{"detail": "x"', '{"detail": "x"'),
        ("[1]", "[1]"),
        ("  ", None),
        (
            [
                {
                    "type": "string_pattern_mismatch",
                    "loc": ["body", "action"],
                    "msg": "String should match pattern '^(START|STOP)$'",
                    "input": "GO",
                },
                {"loc": ["body", 0], "msg": "Field required"},
                {"msg": "Bad"},
                {"loc": "body", "msg": "Odd loc"},
                {"loc": ["body"]},
                "plain text",
                5,
            ],
            "body.action: String should match pattern '^(START|STOP)$'; "
            "body.0: Field required; Bad; Odd loc; plain text",
        ),
        ([], None),
        ({"msg": "x"}, None),
        (None, None),
    ],
)
def test_detail_text(detail: Any, expected: str | None) -> None:
    """FastAPI's detail, a string or a list of validation problems, as one text."""
    assert detail_text(detail) == expected


def test_parse_allowance() -> None:
    """The used and allowed calls of the 429 text."""
    text = (
        "Rate limit exceeded for free tier. Monthly allowance (300/300) and "
        "purchased tokens (0) are exhausted."
    )
    assert parse_allowance(text) == (300, 300)
    assert parse_allowance("monthly ALLOWANCE ( 12 / 10000 )") == (12, 10000)
    assert parse_allowance("Too many requests") is None
    assert parse_allowance(None) is None


# --- over HTTP: a scripted server ------------------------------------------------


def ok(body: Any) -> web.Response:
    """A JSON answer."""
    return web.Response(text=json.dumps(body), content_type="application/json")


def fail(status: int, detail: Any = None, **headers: str) -> web.Response:
    """A FastAPI error answer ({"detail": ...})."""
    return web.Response(
        status=status,
        text=json.dumps({"detail": detail}),
        content_type="application/json",
        headers=headers,
    )


class Clock:
    """A wall clock the tests move."""

    def __init__(self) -> None:
        """Start at a fixed moment."""
        self.now = 1_780_000_000.0

    def __call__(self) -> float:
        """The current time."""
        return self.now


def budget(allowance: int = 10, reserve: float = 0.0) -> QuotaBudget:
    """A 30-day budget on a test clock."""
    return QuotaBudget(allowance=allowance, reserve=reserve, clock=Clock())


def leaves(epoch: float) -> float:
    """When the calls of the (UTC) day of `epoch` leave a 30-day window."""
    return (epoch // DAY + 1) * DAY + 30 * DAY


async def test_hosted_style_requests(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The hosted API: /api/v1/ha paths and X-API-Key, no Authorization."""
    scripted.answers = [
        ok({"user_id": "u-1", "tier": "free", "email": None, "name": "Ann"}),
        ok([{**STATUS, "vehicleId": VEHICLE_ID}, {"vehicleName": "no id"}, None]),
        ok(STATUS),
        ok({"status": "success", "vehicle_id": VEHICLE_ID, "action": "START"}),
    ]
    api = EvLinkClient(session, scripted.url, API_KEY)
    assert api.auth_style == "key"
    assert api.root == scripted.url + HOSTED_PATH
    assert await api.async_get_me() == Me("u-1", "free", None, "Ann")
    assert await api.async_get_vehicles() == [EXPECTED]
    assert await api.async_get_status(VEHICLE_ID) == EXPECTED
    await api.async_set_charging(VEHICLE_ID, True)
    assert [(s.method, s.path) for s in scripted.seen] == [
        ("GET", "/api/v1/ha/me"),
        ("GET", "/api/v1/ha/vehicles"),
        ("GET", f"/api/v1/ha/status/{VEHICLE_ID}"),
        ("POST", f"/api/v1/ha/charging/{VEHICLE_ID}"),
    ]
    for seen in scripted.seen:
        assert seen.headers["X-API-Key"] == API_KEY
        assert "Authorization" not in seen.headers
    assert json.loads(scripted.seen[-1].body) == {"action": "START"}
    assert API_KEY not in repr(api)


async def test_self_hosted_style_requests(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The backend: /api/ha paths and a bearer token, no X-API-Key."""
    scripted.answers = [ok({"user_id": "u-1"}), ok({}), ok([]), ok(STATUS)]
    api = EvLinkClient(session, f"{scripted.url}/api/ha/", API_KEY)
    assert api.auth_style == "bearer"
    await api.async_get_me()
    await api.async_set_charging("a/b?c d", False)
    assert await api.async_get_vehicles() == []
    await api.async_get_status("..")
    assert [(s.method, s.path) for s in scripted.seen] == [
        ("GET", "/api/ha/me"),
        ("POST", "/api/ha/charging/a%2Fb%3Fc%20d"),
        ("GET", "/api/ha/vehicles"),
        ("GET", "/api/ha/status/%2E%2E"),
    ]
    for seen in scripted.seen:
        assert seen.headers["Authorization"] == f"Bearer {API_KEY}"
        assert "X-API-Key" not in seen.headers
    assert json.loads(scripted.seen[1].body) == {"action": "STOP"}


async def test_status_is_named_by_the_id_asked_for(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """An id in the answer (Enode's) does not replace the one asked for."""
    scripted.answers = [ok({**STATUS, "id": ENODE_ID}), ok(LEGACY_STATUS)]
    api = EvLinkClient(session, scripted.url, API_KEY)
    assert (await api.async_get_status(VEHICLE_ID)) == EXPECTED
    legacy = await api.async_get_status(VEHICLE_ID)
    assert legacy.vehicle_id == VEHICLE_ID
    assert legacy.charge.battery_level == 18.0


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        (web.Response(text="<html>hi</html>", content_type="text/html"), "not JSON"),
        (ok({"vehicles": []}), "no list"),
    ],
)
async def test_vehicle_list_of_wrong_shape(
    session: aiohttp.ClientSession,
    scripted: Scripted,
    answer: web.Response,
    match: str,
) -> None:
    """A list that is no JSON array is an invalid response."""
    scripted.answers = [answer]
    with pytest.raises(InvalidResponseError, match=match):
        await EvLinkClient(session, scripted.url, API_KEY).async_get_vehicles()


@pytest.mark.parametrize("body", [[STATUS], "ok", None])
async def test_status_of_wrong_shape(
    session: aiohttp.ClientSession, scripted: Scripted, body: Any
) -> None:
    """A status that is no JSON object is an invalid response."""
    scripted.answers = [ok(body)]
    with pytest.raises(InvalidResponseError, match="no object"):
        await EvLinkClient(session, scripted.url, API_KEY).async_get_status("v")


async def test_me_of_wrong_shape(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """/me without a user id, or not JSON."""
    scripted.answers = [ok(["u-1"]), web.Response(text="", status=200)]
    api = EvLinkClient(session, scripted.url, API_KEY)
    with pytest.raises(InvalidResponseError, match="no user id"):
        await api.async_get_me()
    with pytest.raises(InvalidResponseError, match="not JSON"):
        await api.async_get_me()


@pytest.mark.parametrize(
    ("answer", "error", "match", "reason"),
    [
        (fail(401, "Invalid API key"), AuthenticationError, "Invalid API key", None),
        (fail(401, None), AuthenticationError, "rejected the API key$", None),
        (
            fail(403, "This feature is not available for Free users."),
            AccessDeniedError,
            "not available for Free users",
            None,
        ),
        (fail(403, "Access denied"), AccessDeniedError, "Access denied", None),
        (
            fail(404, "Vehicle not found"),
            VehicleNotAvailableError,
            "another account",
            "not_owned",
        ),
        (
            fail(400, "Vehicle is not plugged in"),
            CommandRejectedError,
            "not plugged in",
            "unplugged_or_state",
        ),
        (
            fail(422, "Vehicle is under smart charging control"),
            CommandRejectedError,
            "smart charging control",
            "smart_charging",
        ),
        (
            fail(422, [{"loc": ["body", "action"], "msg": "Field required"}]),
            CommandRejectedError,
            "refused the request: body.action: Field required",
            None,
        ),
        (
            fail(502, "Error fetching vehicle data"),
            CommunicationError,
            r"HTTP 502\): Error fetching vehicle data",
            None,
        ),
        (
            fail(500, "Vehicle does not have an associated Enode ID"),
            CommunicationError,
            "associated Enode ID",
            None,
        ),
        (
            web.Response(
                status=503, text="<html>down</html>", content_type="text/html"
            ),
            CommunicationError,
            r"failed \(HTTP 503\)$",
            None,
        ),
        (
            web.Response(status=302, headers={"Location": "https://evil.example/"}),
            CommunicationError,
            "redirected",
            None,
        ),
        (fail(409, "Conflict"), CommunicationError, r"HTTP 409\): Conflict", None),
        (web.Response(status=418, text="tea"), CommunicationError, r"418\)$", None),
        (
            web.Response(status=500, text='["x"]', content_type="application/json"),
            CommunicationError,
            r"failed \(HTTP 500\)$",
            None,
        ),
    ],
)
async def test_error_mapping(
    session: aiohttp.ClientSession,
    scripted: Scripted,
    answer: web.Response,
    error: type[EvCloudError],
    match: str,
    reason: str | None,
) -> None:
    """Each status as the error it means, with the server's text."""
    scripted.answers = [answer]
    api = EvLinkClient(session, scripted.url, API_KEY)
    with pytest.raises(error, match=match) as caught:
        await api.async_set_charging(VEHICLE_ID, True)
    assert type(caught.value) is error
    assert getattr(caught.value, "reason", None) == reason
    secret_free(caught.value, API_KEY)
    assert len(scripted.seen) == 1


async def test_not_found_outside_a_vehicle(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A 404 of /me or /vehicles means the URL serves no EVLinkHA API."""
    scripted.answers = [fail(404, "Not Found"), fail(404, "Not Found")]
    api = EvLinkClient(session, scripted.url, API_KEY)
    with pytest.raises(CommunicationError, match="server URL"):
        await api.async_get_me()
    with pytest.raises(CommunicationError, match="server URL"):
        await api.async_get_vehicles()


async def test_server_text_is_cleaned(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A key the server echoes is masked; URL queries and long texts are cut."""
    scripted.answers = [
        fail(403, f"Key {API_KEY} denied, see https://x.example/a?key={API_KEY}"),
        fail(502, "x" * 1000),
    ]
    api = EvLinkClient(session, scripted.url, API_KEY)
    with pytest.raises(AccessDeniedError) as caught:
        await api.async_get_vehicles()
    assert "Key *** denied, see https://x.example/a" in str(caught.value)
    secret_free(caught.value, API_KEY, "?key")
    with pytest.raises(CommunicationError) as long:
        await api.async_get_vehicles()
    assert len(str(long.value)) < 400


QUOTA_TEXT = (
    "Rate limit exceeded for free tier. Monthly allowance (300/300) and purchased "
    "tokens (0) are exhausted."
)


async def test_quota_exhausted_pauses_the_budget(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A 429 with the monthly allowance text: QuotaExhaustedError, paused budget."""
    quota = budget(allowance=300)
    scripted.answers = [fail(429, QUOTA_TEXT, **{"Retry-After": "60"})]
    api = EvLinkClient(session, scripted.url, API_KEY, budget=quota)
    with pytest.raises(QuotaExhaustedError, match=r"\(300/300\)") as caught:
        await api.async_get_status(VEHICLE_ID)
    assert isinstance(caught.value, RateLimitedError)
    assert (caught.value.used, caught.value.allowance) == (300, 300)
    assert caught.value.retry_after is None
    assert quota.paused_until == quota.window_ends
    # Paused: nothing more is sent, commands included.
    with pytest.raises(RateLimitedError, match="pause"):
        await api.async_set_charging(VEHICLE_ID, True)
    assert len(scripted.seen) == 1


async def test_quota_text_without_counts(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The allowance named without counts, and no budget: counts are None."""
    scripted.answers = [fail(429, "Monthly allowance exhausted")]
    api = EvLinkClient(session, scripted.url, API_KEY)
    with pytest.raises(QuotaExhaustedError, match=r"used up$") as caught:
        await api.async_get_vehicles()
    assert (caught.value.used, caught.value.allowance) == (None, None)


@pytest.mark.parametrize(
    ("answer", "retry_after"),
    [
        (fail(429, "Too many requests", **{"Retry-After": "120"}), 120.0),
        (fail(429, None, **{"Retry-After": "soon"}), None),
        (web.Response(status=429, text="slow down"), None),
    ],
)
async def test_plain_rate_limit(
    session: aiohttp.ClientSession,
    scripted: Scripted,
    answer: web.Response,
    retry_after: float | None,
) -> None:
    """A 429 without the allowance text: RateLimitedError with its Retry-After."""
    quota = budget()
    scripted.answers = [answer]
    api = EvLinkClient(session, scripted.url, API_KEY, budget=quota)
    with pytest.raises(RateLimitedError) as caught:
        await api.async_get_status(VEHICLE_ID)
    assert type(caught.value) is RateLimitedError
    assert caught.value.retry_after == retry_after
    if retry_after is None:
        assert quota.paused_until == 0.0
    else:
        assert quota.paused_until == Clock().now + retry_after


async def test_budget_spent_per_call(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Every call but /me counts; a command may use the reserve; failures count."""
    quota = budget(allowance=10, reserve=0.2)
    scripted.answers = [
        ok({"user_id": "u"}),
        ok([]),
        ok(STATUS),
        fail(502, "Error fetching vehicle data"),
        ok({"status": "success"}),
    ]
    api = EvLinkClient(session, scripted.url, API_KEY, budget=quota)
    await api.async_get_me()
    assert quota.spent == 0
    await api.async_get_vehicles()
    await api.async_get_status(VEHICLE_ID)
    with pytest.raises(CommunicationError):
        await api.async_get_status(VEHICLE_ID)
    assert quota.spent == 3
    # Use up the polls' share: 8 of 10, 2 kept for commands.
    for _ in range(5):
        quota.acquire()
    with pytest.raises(RateLimitedError, match="used up") as caught:
        await api.async_get_status(VEHICLE_ID)
    # Until today's calls leave the window.
    assert caught.value.retry_after == pytest.approx(leaves(Clock().now) - Clock().now)
    await api.async_set_charging(VEHICLE_ID, True)
    assert quota.spent == 9
    assert len(scripted.seen) == 5


async def test_unreachable_server(
    session: aiohttp.ClientSession, socket_enabled: None
) -> None:
    """A refused connection names only the error type, and keeps no cause."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    api = EvLinkClient(session, f"http://127.0.0.1:{port}", API_KEY)
    with pytest.raises(CommunicationError, match=r"\(Client\w*Error\)") as caught:
        await api.async_get_vehicles()
    secret_free(caught.value, API_KEY, "/api/v1/ha")
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


async def test_timeout(session: aiohttp.ClientSession, socket_enabled: None) -> None:
    """No answer within the timeout: a communication error without the URL."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response([])  # pragma: no cover

    app = web.Application()
    app.router.add_get("/api/v1/ha/vehicles", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        api = EvLinkClient(session, f"http://127.0.0.1:{port}", API_KEY, timeout=0.2)
        with pytest.raises(CommunicationError, match="in time") as caught:
            await api.async_get_vehicles()
        secret_free(caught.value, API_KEY, "/api/v1/ha")
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None
    finally:
        await runner.shutdown()
        await runner.cleanup()


def test_command_rejected_keeps_old_calls() -> None:
    """CommandRejectedError without a reason, as every other provider raises it."""
    error = CommandRejectedError("The charger rejected amp")
    assert error.reason is None
    assert str(error) == "The charger rejected amp"
    assert CommandRejectedError("x", reason="smart_charging").reason == "smart_charging"


# --- over HTTP: the EVLinkHA simulator -------------------------------------------

SIM_START = 1_780_000_000.0
PRO_KEY = "evlink_sim_pro_4f7d9c2e1b0a8f6e5d4c3b2a"
FREE_KEY = "evlink_sim_free_0a1b2c3d4e5f6a7b8c9d0e1f"
BASIC_KEY = "evlink_sim_basic_9e8d7c6b5a4f3e2d1c0b9a8f"
SIM_KEYS = (PRO_KEY, FREE_KEY, BASIC_KEY)


class World:
    """The simulator with a pro user (plugged-in car, parked car), free and basic."""

    def __init__(self, sim: EvLinkSimulator, session: aiohttp.ClientSession) -> None:
        """Create the users and vehicles."""
        self.sim = sim
        self.session = session
        self.pro = sim.add_user("pro@example.com", "pro", api_key=PRO_KEY, name="Pia")
        self.free = sim.add_user("free@example.com", "free", api_key=FREE_KEY)
        self.basic = sim.add_user("basic@example.com", "basic", api_key=BASIC_KEY)
        self.car = sim.add_vehicle(
            SimVehicle(self.pro.id, battery_level=50.0, charge_limit=80)
        ).id
        self.parked = sim.add_vehicle(
            SimVehicle(self.pro.id, brand="Tesla", model="Model 3")
        ).id
        self.freecar = sim.add_vehicle(SimVehicle(self.free.id)).id
        self.basiccar = sim.add_vehicle(SimVehicle(self.basic.id)).id
        sim.plug_in(self.car, charge=False)

    def client(
        self, key: str = PRO_KEY, *, backend: bool = False, **kwargs: Any
    ) -> EvLinkClient:
        """A client of the hosted API (or of the self-hosted backend)."""
        server_url = self.sim.backend_url if backend else self.sim.url
        return EvLinkClient(self.session, server_url, key, **kwargs)

    def budget(self, allowance: int = 100, reserve: float = 0.0) -> QuotaBudget:
        """A budget on the simulator's clock."""
        return QuotaBudget(
            allowance=allowance, reserve=reserve, clock=lambda: self.sim.now
        )


@pytest.fixture
async def world(
    socket_enabled: None, session: aiohttp.ClientSession
) -> AsyncIterator[World]:
    """The simulator, running, with its users and vehicles."""
    sim = EvLinkSimulator(start_time=SIM_START)
    environment = World(sim, session)
    async with sim:
        yield environment


@pytest.mark.parametrize("backend", [False, True], ids=["hosted", "self_hosted"])
async def test_sim_reads_in_both_styles(world: World, backend: bool) -> None:
    """Both API styles serve the same account, vehicles and status."""
    api = world.client(backend=backend)
    assert api.auth_style == ("bearer" if backend else "key")
    me = await api.async_get_me()
    assert me == Me(world.pro.id, "pro", "pro@example.com", "Pia")
    vehicles = {
        vehicle.vehicle_id: vehicle for vehicle in await api.async_get_vehicles()
    }
    assert set(vehicles) == {world.car, world.parked}
    car = vehicles[world.car]
    assert car.name == "XPENG G6"
    assert car.charge.battery_level == 50.0
    assert car.charge.is_plugged_in is True
    assert car.charge.is_charging is False
    assert car.charge.power_delivery_state == "plugged_in_stopped"
    assert car.charge.last_updated == datetime.fromtimestamp(SIM_START, UTC)
    assert car.last_seen == datetime.fromtimestamp(SIM_START, UTC)
    assert car.vin == world.sim.vehicle(world.car).vin
    assert vehicles[world.parked].name == "Tesla Model 3"
    status = await api.async_get_status(world.parked)
    assert status.vehicle_id == world.parked
    assert status.charge.power_delivery_state == "unplugged"
    assert status.capabilities == tuple(
        sorted(
            {
                "chargeState",
                "information",
                "location",
                "odometer",
                "setMaxCurrent",
                "smartCharging",
                "startCharging",
                "stopCharging",
            }
        )
    )
    assert status.odometer_km == 1234.0
    assert status.smart_charging is False
    prefix = "/api/ha" if backend else "/api/v1/ha"
    assert world.sim.requests == [
        ("GET", f"{prefix}/me"),
        ("GET", f"{prefix}/vehicles"),
        ("GET", f"{prefix}/status/{world.parked}"),
    ]


@pytest.mark.parametrize("backend", [False, True], ids=["hosted", "self_hosted"])
async def test_sim_charging_start_and_stop(world: World, backend: bool) -> None:
    """START and STOP take effect after the service's action delay."""
    api = world.client(backend=backend)
    await api.async_set_charging(world.car, True)
    assert [a.kind for a in world.sim.actions] == ["START"]
    world.sim.advance(world.sim.command_delay)
    status = await api.async_get_status(world.car)
    assert status.charge.is_charging is True
    assert status.charge.power_delivery_state == "plugged_in_charging"
    assert status.charge.charge_rate_kw == 11.0
    assert status.charge.time_remaining_min is not None
    await api.async_set_charging(world.car, False)
    world.sim.advance(world.sim.command_delay)
    status = await api.async_get_status(world.car)
    assert status.charge.is_charging is False
    assert status.charge.power_delivery_state == "plugged_in_stopped"
    assert [(a.kind, a.state) for a in world.sim.actions] == [
        ("START", "CONFIRMED"),
        ("STOP", "CONFIRMED"),
    ]


def check_secret_free(error: BaseException) -> None:
    """No key of any simulated user anywhere in the error."""
    secret_free(error, *SIM_KEYS)


async def test_sim_wrong_key(world: World) -> None:
    """An unknown key: AuthenticationError in both styles, the key never shown."""
    wrong = "evlink_not_a_known_key_1234567890"
    for backend in (False, True):
        api = world.client(wrong, backend=backend)
        with pytest.raises(AuthenticationError, match="Invalid API key") as caught:
            await api.async_get_me()
        secret_free(caught.value, wrong)


async def test_sim_vehicle_errors(world: World) -> None:
    """Unknown and foreign vehicles; a free user's charging command."""
    pro = world.client()
    with pytest.raises(VehicleNotAvailableError) as unknown:
        await pro.async_get_status("no-such-vehicle")
    assert unknown.value.reason == "not_owned"
    check_secret_free(unknown.value)
    with pytest.raises(VehicleNotAvailableError) as foreign:
        await pro.async_get_status(world.freecar)
    assert foreign.value.reason == "not_owned"
    free = world.client(FREE_KEY)
    with pytest.raises(AccessDeniedError, match="Access denied") as denied:
        await free.async_get_status(world.car)
    check_secret_free(denied.value)
    with pytest.raises(AccessDeniedError, match="not available for Free users") as tier:
        await free.async_set_charging(world.freecar, True)
    check_secret_free(tier.value)


async def test_sim_command_rejections(world: World) -> None:
    """The vehicle's state (400) and smart charging control (422) refuse commands."""
    api = world.client()
    with pytest.raises(CommandRejectedError, match="not plugged in") as unplugged:
        await api.async_set_charging(world.parked, True)
    assert unplugged.value.reason == "unplugged_or_state"
    assert "{" not in str(unplugged.value)  # Enode's problem JSON is unpacked
    with pytest.raises(CommandRejectedError, match="not charging") as idle:
        await api.async_set_charging(world.car, False)
    assert idle.value.reason == "unplugged_or_state"
    world.sim.vehicle(world.car).smart_charging = True
    with pytest.raises(CommandRejectedError, match="smart charging") as smart:
        await api.async_set_charging(world.car, True)
    assert smart.value.reason == "smart_charging"
    world.sim.charging_fault = True
    with pytest.raises(CommunicationError, match="Failed to trigger") as failed:
        await api.async_set_charging(world.car, True)
    for error in (unplugged, idle, smart, failed):
        check_secret_free(error.value)
    assert world.sim.actions == []


@pytest.mark.parametrize(
    ("fault", "error", "match"),
    [
        (EvLinkFault.SERVER_ERROR, CommunicationError, r"failed \(HTTP 500\)$"),
        (
            EvLinkFault.BAD_GATEWAY,
            CommunicationError,
            r"HTTP 502\): Error fetching vehicle data",
        ),
        (EvLinkFault.MALFORMED, InvalidResponseError, "not JSON"),
    ],
)
async def test_sim_faults(
    world: World, fault: EvLinkFault, error: type[EvCloudError], match: str
) -> None:
    """The service's failure modes as communication errors."""
    world.sim.fault = fault
    with pytest.raises(error, match=match) as caught:
        await world.client().async_get_status(world.car)
    assert type(caught.value) is error
    check_secret_free(caught.value)


async def test_sim_timeout(world: World) -> None:
    """A slow answer: a communication error without a cause."""
    world.sim.fault = EvLinkFault.SLOW
    world.sim.slow_seconds = 2.0
    with pytest.raises(CommunicationError, match="in time") as caught:
        await world.client(timeout=0.2).async_get_vehicles()
    check_secret_free(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None


async def test_sim_quota_exhausted(world: World) -> None:
    """The monthly allowance used up: QuotaExhaustedError, the budget paused."""
    world.sim.max_calls["free"] = 2
    quota = world.budget(allowance=300)
    api = world.client(FREE_KEY, budget=quota)
    await api.async_get_status(world.freecar)
    await api.async_get_status(world.freecar)
    with pytest.raises(QuotaExhaustedError, match=r"\(2/2\)") as caught:
        await api.async_get_status(world.freecar)
    assert (caught.value.used, caught.value.allowance) == (2, 2)
    assert caught.value.retry_after is None
    check_secret_free(caught.value)
    # Until the oldest day it counted calls on (today) leaves the window.
    assert quota.paused_until == quota.window_ends == leaves(SIM_START)
    sent = len(world.sim.requests)
    with pytest.raises(RateLimitedError, match="pause"):
        await api.async_get_vehicles()
    with pytest.raises(RateLimitedError, match="pause"):
        await api.async_set_charging(world.freecar, True)
    assert len(world.sim.requests) == sent
    # /me takes nothing from the budget and is still sent.
    assert (await api.async_get_me()).tier == "free"


async def test_sim_budget_spent_per_call(world: World) -> None:
    """Every call but /me is counted, more than the service counts itself."""
    quota = world.budget(allowance=10, reserve=0.1)
    api = world.client(budget=quota)
    await api.async_get_me()
    assert quota.spent == 0
    await api.async_get_vehicles()
    await api.async_get_status(world.car)
    with pytest.raises(VehicleNotAvailableError):
        await api.async_get_status("no-such-vehicle")
    await api.async_set_charging(world.car, True)
    assert quota.spent == 4
    # The service counted only the answered status and charging calls.
    assert len(world.sim.counted) == 2
    # Polls stop at the reserve (9 of 10), a command may use it.
    for _ in range(5):
        await api.async_get_status(world.car)
    with pytest.raises(RateLimitedError, match="used up"):
        await api.async_get_status(world.car)
    world.sim.advance(world.sim.command_delay)
    await api.async_set_charging(world.car, False)
    assert quota.spent == 10
    with pytest.raises(RateLimitedError, match="used up"):
        await api.async_set_charging(world.car, True)
    assert len(world.sim.requests) == 11


async def test_sim_push_payload(world: World) -> None:
    """What the service pushes parses like the polled vehicle.

    It is Enode's raw event, whose vehicle has Enode's id (the account finds the
    vehicle by its VIN).
    """
    world.sim.plug_in(world.car)
    pushed = parse_push(world.sim.push_payload(world.car))
    polled = await world.client().async_get_status(world.car)
    enode_id = world.sim.vehicle(world.car).enode_id
    assert [vehicle.vehicle_id for vehicle in pushed] == [enode_id]
    assert pushed[0].vin == polled.vin is not None
    assert pushed[0].charge == polled.charge
    assert pushed[0].charge.power_delivery_state == "plugged_in_charging"
    assert pushed[0].capabilities == polled.capabilities
    assert pushed[0].name == polled.name
