"""The EV-Monitor client: encoding, a scripted server, and the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
import json
from typing import Any

import aiohttp
from aiohttp import web
import pytest

from custom_components.ev_cloud.api import (
    AuthenticationError,
    CommandRejectedError,
    CommunicationError,
    InvalidResponseError,
    RateLimitedError,
)
from custom_components.ev_cloud.api.evmonitor import (
    DEFAULT_SERVER_URL,
    PATHS,
    TOKEN_RENEW_AFTER,
    BodyEncoding,
    Dataset,
    EvMonitorClient,
    EvMonitorVehicle,
    dataset_objects,
    encode_datasets,
    is_credentials_error,
    is_missing_fields_error,
    is_token_error,
    parse_vehicles,
    php_fields,
    server_root,
)
from tests.scripted import Scripted, Seen, secret_free
from tests.simulators.evmonitor import (
    EvMonitorBodyMode,
    EvMonitorFault,
    EvMonitorSimulator,
)

EMAIL = "driver@example.org"
PASSWORD = "s3cret-Pa55word!"
TOKEN = "o7axty6jzequrg5"
TOKEN_2 = "p8byuz7kafrvsh6"
MOMENT = datetime(2025, 7, 25, 8, 16, 52, tzinfo=UTC)
VEHICLES = {
    "SUCCESS": "OK",
    "vehicles": [
        {
            "id": "abcdefg1234",
            "user_id": "aabbcc112233",
            "make": "84a2z6xrqomuh9b",
            "model": "rn8ytw6qvs16iwt",
            "nickname": "The Rocket",
            "plan": "0",
        }
    ],
}


# --- encoding ----------------------------------------------------------------------


def test_encode_minimal_dataset() -> None:
    """Only the vehicle and the time when nothing else is known."""
    assert encode_datasets([Dataset("veh1", MOMENT)]) == {
        "data[0][general][vehicle_id]": "veh1",
        "data[0][general][timestamp]": str(int(MOMENT.timestamp())),
    }


def test_encode_full_dataset_units_and_ints() -> None:
    """Ints where the docs say int; W from kW; GPS with all three values."""
    fields = encode_datasets(
        [
            Dataset(
                "veh1",
                MOMENT,
                soc=81.6,
                range_km=301.4,
                speed_kmh=48.5,
                odometer_km=12345.49,
                power_kw=11.04,
                battery_temp_c=23.7,
                state=1,
                latitude=52.5200066,
                longitude=13.404954,
                accuracy_m=4.6,
            )
        ]
    )
    assert fields == {
        "data[0][general][vehicle_id]": "veh1",
        "data[0][general][timestamp]": "1753431412",
        "data[0][general][speed]": "48",
        "data[0][general][range]": "301",
        "data[0][general][state]": "1",
        "data[0][general][odometer]": "12345",
        "data[0][general][batt][0][soc]": "82",
        "data[0][general][batt][0][w]": "11040",
        "data[0][general][batt][0][temp]": "24",
        "data[0][general][gps][lat]": "52.5200066",
        "data[0][general][gps][lng]": "13.404954",
        "data[0][general][gps][acc]": "5",
    }


@pytest.mark.parametrize(
    ("power_kw", "state", "key", "watts"),
    [
        (7.4, 10, "w_charge", "7400"),
        (-50.0, 1, "w_charge", "50000"),
        (-50.0, None, "w_charge", "50000"),
        (3.2, 0, "w", "3200"),
        (150.0, 11, "w_charge", "150000"),
    ],
)
def test_encode_power_direction(
    power_kw: float, state: int | None, key: str, watts: str
) -> None:
    """Power goes to w_charge while charging (state 10/11 or negative power)."""
    fields = encode_datasets([Dataset("v", MOMENT, power_kw=power_kw, state=state)])
    assert fields[f"data[0][general][batt][0][{key}]"] == watts
    other = "w" if key == "w_charge" else "w_charge"
    assert f"data[0][general][batt][0][{other}]" not in fields


@pytest.mark.parametrize(
    ("lat", "lng", "acc"),
    [(52.5, 13.4, None), (52.5, None, 3.0), (None, 13.4, 3.0), (52.5, 13.4, -1.0)],
)
def test_encode_gps_only_complete(
    lat: float | None, lng: float | None, acc: float | None
) -> None:
    """No GPS object unless lat, lng and a valid acc are all known."""
    fields = encode_datasets(
        [Dataset("v", MOMENT, latitude=lat, longitude=lng, accuracy_m=acc)]
    )
    assert not any("[gps]" in key for key in fields)


def test_encode_skips_non_finite_and_unknown_state() -> None:
    """NaN, infinity and states the docs do not define are left out."""
    fields = encode_datasets(
        [
            Dataset(
                "v",
                MOMENT,
                soc=float("nan"),
                speed_kmh=float("inf"),
                state=7,
                latitude=1.0,
                longitude=2.0,
                accuracy_m=float("nan"),
            )
        ]
    )
    assert set(fields) == {
        "data[0][general][vehicle_id]",
        "data[0][general][timestamp]",
    }


def test_encode_coordinates_without_exponent() -> None:
    """Tiny and negative coordinates stay decimal."""
    fields = encode_datasets(
        [Dataset("v", MOMENT, latitude=0.00001, longitude=-0.0, accuracy_m=0)]
    )
    assert fields["data[0][general][gps][lat]"] == "0.00001"
    assert fields["data[0][general][gps][lng]"] == "0"
    assert fields["data[0][general][gps][acc]"] == "0"


def test_encode_several_datasets_and_naive_time() -> None:
    """Each dataset gets its own index; a naive time is UTC."""
    fields = encode_datasets(
        [
            Dataset("a", MOMENT, soc=50),
            Dataset("b", datetime(2025, 7, 25, 8, 16, 52), range_km=100),
        ]
    )
    assert fields["data[0][general][vehicle_id]"] == "a"
    assert fields["data[0][general][batt][0][soc]"] == "50"
    assert fields["data[1][general][vehicle_id]"] == "b"
    assert fields["data[1][general][timestamp]"] == "1753431412"
    assert fields["data[1][general][range]"] == "100"
    assert "data[1][general][batt][0][soc]" not in fields


def test_json_datasets_nest_as_the_form_notation() -> None:
    """The JSON `data` array is the PHP notation's nesting, with numbers as numbers."""
    datasets = [
        Dataset(
            "veh1",
            MOMENT,
            soc=81.6,
            power_kw=-7.4,
            latitude=52.52000661,
            longitude=-0.0,
            accuracy_m=4.6,
        ),
        Dataset("veh2", MOMENT, speed_kmh=30),
    ]
    objects = dataset_objects(datasets)
    assert objects == [
        {
            "general": {
                "vehicle_id": "veh1",
                "timestamp": 1753431412,
                "batt": [{"soc": 82, "w_charge": 7400}],
                "gps": {"lat": 52.5200066, "lng": 0.0, "acc": 5},
            }
        },
        {"general": {"vehicle_id": "veh2", "timestamp": 1753431412, "speed": 30}},
    ]
    assert php_fields({"data": objects}) == encode_datasets(datasets)
    assert php_fields({"token": "t", "make": "m"}) == {"token": "t", "make": "m"}


def test_encode_requires_vehicle() -> None:
    """A dataset without a vehicle id is a programming error."""
    with pytest.raises(ValueError, match="names no vehicle"):
        encode_datasets([Dataset(" ", MOMENT)])


# --- parsing -----------------------------------------------------------------------


def test_parse_vehicles_defensive() -> None:
    """Items without an id are skipped; integers become text."""
    assert parse_vehicles(
        [
            VEHICLES["vehicles"][0],
            {"id": 7, "nickname": " ", "make": None},
            {"nickname": "no id"},
            "junk",
        ]
    ) == [
        EvMonitorVehicle(
            "abcdefg1234", "The Rocket", "84a2z6xrqomuh9b", "rn8ytw6qvs16iwt"
        ),
        EvMonitorVehicle("7", None, None, None),
    ]
    with pytest.raises(InvalidResponseError):
        parse_vehicles({"id": "x"})


def test_missing_fields_classifier() -> None:
    """What a service says to a body it could not read: fields are missing."""
    assert is_missing_fields_error("Missing field token")
    assert is_missing_fields_error("Fields missing")
    assert is_missing_fields_error("username and password are required")
    assert not is_missing_fields_error("Email / Password combination wrong!")
    assert not is_missing_fields_error("Token expired")
    assert not is_missing_fields_error(None)


def test_error_classifiers() -> None:
    """Which in-band errors mean credentials, which the token."""
    assert is_credentials_error("Email / Password combination wrong!")
    assert is_credentials_error("email / password COMBINATION WRONG!")
    assert not is_credentials_error("Token expired")
    assert not is_credentials_error(None)
    assert is_token_error("Token expired")
    assert is_token_error("invalid token")
    assert not is_token_error("Vehicle not found")
    assert not is_token_error(None)


def test_server_root() -> None:
    """http(s) with a host; trailing slash, query and fragment dropped."""
    assert str(server_root(DEFAULT_SERVER_URL + "/")) == DEFAULT_SERVER_URL
    assert str(server_root("http://h:8080/x/?q=1#f")) == "http://h:8080/x"
    for bad in ("ftp://h", "https://", "not a url"):
        with pytest.raises(ValueError, match="server URL"):
            server_root(bad)


# --- over HTTP: a scripted server ------------------------------------------------


def ok(**body: Any) -> web.Response:
    """An in-band success."""
    return web.Response(
        text=json.dumps({"SUCCESS": "OK", **body}), content_type="application/json"
    )


def error(text: str) -> web.Response:
    """An in-band error (HTTP 200)."""
    return web.Response(
        text=json.dumps({"SUCCESS": "ERROR", "error": text}),
        content_type="application/json",
    )


class Clock:
    """A monotonic clock the tests move."""

    def __init__(self) -> None:
        """Start at a fixed moment."""
        self.now = 1000.0

    def __call__(self) -> float:
        """The current time."""
        return self.now


def client(
    session: aiohttp.ClientSession,
    url: str,
    clock: Clock | None = None,
    **options: Any,
) -> EvMonitorClient:
    """A client of the scripted server."""
    return EvMonitorClient(
        session, url, EMAIL, PASSWORD, clock=clock or Clock(), **options
    )


def sent_as(seen: Seen) -> tuple[BodyEncoding, dict[str, Any]]:
    """How a request's body was encoded, and what it held."""
    if seen.headers["Content-Type"].startswith("application/json"):
        return "json", json.loads(seen.body)
    assert seen.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    return "form", seen.form


async def test_login_and_vehicles(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Login posts the form; the token travels with the next call."""
    scripted.answers = [ok(token=TOKEN), ok(vehicles=VEHICLES["vehicles"])]
    api = client(session, scripted.url)
    assert not api.logged_in
    await api.async_login()
    assert api.logged_in
    assert api.login_count == 1
    vehicles = await api.async_get_vehicles()
    assert vehicles == [
        EvMonitorVehicle(
            "abcdefg1234", "The Rocket", "84a2z6xrqomuh9b", "rn8ytw6qvs16iwt"
        )
    ]
    login, listing = scripted.seen
    assert (login.method, login.path) == ("POST", PATHS["login"])
    assert login.form == {"username": EMAIL, "password": PASSWORD}
    assert login.headers["Content-Type"].startswith("application/x-www-form-urlencoded")
    assert login.headers["User-Agent"] == "EV Cloud (Home Assistant)"
    assert (listing.path, listing.form) == (PATHS["vehicles"], {"token": TOKEN})


async def test_trailing_comma_is_read(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The docs' own example answer has a trailing comma."""
    body = json.dumps(VEHICLES)[:-1] + ", }"
    scripted.answers = [
        ok(token=TOKEN),
        web.Response(text=body, content_type="text/html"),
    ]
    vehicles = await client(session, scripted.url).async_get_vehicles()
    assert [v.vehicle_id for v in vehicles] == ["abcdefg1234"]


async def test_token_renewed_before_ten_minutes(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The token is reused for 9 minutes, then the client logs in again."""
    clock = Clock()
    scripted.answers = [
        ok(token=TOKEN),
        ok(vehicles=[]),
        ok(vehicles=[]),
        ok(token=TOKEN_2),
        ok(vehicles=[]),
    ]
    api = client(session, scripted.url, clock)
    await api.async_get_vehicles()  # logs in first
    clock.now += TOKEN_RENEW_AFTER - 1
    await api.async_get_vehicles()
    clock.now += 1
    assert not api.logged_in
    await api.async_get_vehicles()
    assert [(s.path, s.form.get("token")) for s in scripted.seen] == [
        (PATHS["login"], None),
        (PATHS["vehicles"], TOKEN),
        (PATHS["vehicles"], TOKEN),
        (PATHS["login"], None),
        (PATHS["vehicles"], TOKEN_2),
    ]
    assert api.login_count == 2


async def test_token_rejected_renews_once(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """An in-band token error logs in again and repeats the request once."""
    scripted.answers = [
        ok(token=TOKEN),
        error("Token invalid or expired"),
        ok(token=TOKEN_2),
        ok(name="Energica"),
    ]
    api = client(session, scripted.url)
    assert await api.async_get_name("make", "84a2z6xrqomuh9b") == "Energica"
    assert [(s.path, s.form) for s in scripted.seen[1::2]] == [
        (PATHS["make"], {"token": TOKEN, "make": "84a2z6xrqomuh9b"}),
        (PATHS["make"], {"token": TOKEN_2, "make": "84a2z6xrqomuh9b"}),
    ]


async def test_fresh_token_rejected_gives_up(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A second token error in a row is not retried forever."""
    scripted.answers = [
        ok(token=TOKEN),
        error("Token expired"),
        ok(token=TOKEN_2),
        error("Token expired"),
    ]
    api = client(session, scripted.url)
    with pytest.raises(CommunicationError, match="fresh token") as caught:
        await api.async_get_vehicles()
    secret_free(caught.value, PASSWORD, TOKEN, TOKEN_2)
    assert not api.logged_in


async def test_names(session: aiohttp.ClientSession, scripted: Scripted) -> None:
    """Model names; an unknown id (in-band error) or no name is None."""
    scripted.answers = [
        ok(token=TOKEN),
        ok(name="SS9"),
        error("Model not found"),
        ok(name=""),
    ]
    api = client(session, scripted.url)
    assert await api.async_get_name("model", "rn8ytw6qvs16iwt") == "SS9"
    assert await api.async_get_name("model", "nope") is None
    assert await api.async_get_name("model", "blank") is None
    assert scripted.seen[1].form == {"token": TOKEN, "model": "rn8ytw6qvs16iwt"}
    with pytest.raises(ValueError, match="kind"):
        await api.async_get_name("colour", "x")  # type: ignore[arg-type]


async def test_push_sends_datasets_and_batch(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The push form holds the token, user-agent, batch id and datasets."""
    scripted.answers = [ok(token=TOKEN), ok()]
    api = client(session, scripted.url)
    datasets = [Dataset("abcdefg1234", MOMENT, soc=80, state=10, power_kw=7.2)]
    await api.async_push(datasets, batch_id="batch-1")
    push = scripted.seen[1]
    assert push.path == PATHS["push"]
    assert push.form == {
        "token": TOKEN,
        "user-agent": "EV Cloud (Home Assistant)",
        "batch_id": "batch-1",
        **encode_datasets(datasets),
    }


async def test_push_nothing_sends_nothing(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """No datasets, no login, no request."""
    await client(session, scripted.url).async_push([], batch_id="b")
    assert scripted.seen == []


async def test_push_refused(session: aiohttp.ClientSession, scripted: Scripted) -> None:
    """Any other in-band push error is CommandRejectedError, secrets masked."""
    scripted.answers = [ok(token=TOKEN), error(f"Bad dataset for {TOKEN}")]
    with pytest.raises(CommandRejectedError, match="Bad dataset") as caught:
        await client(session, scripted.url).async_push(
            [Dataset("v", MOMENT)], batch_id="b"
        )
    secret_free(caught.value, PASSWORD, TOKEN)


async def test_wrong_credentials(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The documented login error, to a form and to JSON: AuthenticationError.

    Until the service has read one encoding, a refused form may only mean that
    it did not read the form: the login goes once more as JSON, then counts.
    """
    scripted.answers = [error("Email / Password combination wrong!") for _ in range(2)]
    api = client(session, scripted.url)
    with pytest.raises(AuthenticationError) as caught:
        await api.async_login()
    secret_free(caught.value, PASSWORD)
    assert PASSWORD not in repr(api)
    assert not api.logged_in
    credentials = {"username": EMAIL, "password": PASSWORD}
    assert [sent_as(seen) for seen in scripted.seen] == [
        ("form", credentials),
        ("json", credentials),
    ]
    assert api.body_encoding is None


async def test_login_refused_to_a_form_goes_as_json(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A service that reads only JSON: the second login works and is remembered.

    The token goes along as JSON from then on; another client of the same
    address (sharing `encodings`) starts in JSON.
    """
    scripted.answers = [
        error("Email / Password combination wrong!"),
        ok(token=TOKEN),
        ok(vehicles=VEHICLES["vehicles"]),
        ok(token=TOKEN_2),
    ]
    encodings: dict[str, BodyEncoding] = {}
    api = client(session, scripted.url, encodings=encodings)
    assert [v.vehicle_id for v in await api.async_get_vehicles()] == ["abcdefg1234"]
    assert api.body_encoding == "json"
    assert encodings == {scripted.url: "json"}
    await client(session, scripted.url, encodings=encodings).async_login()
    assert [sent_as(seen)[0] for seen in scripted.seen] == [
        "form",
        "json",
        "json",
        "json",
    ]
    assert sent_as(scripted.seen[2]) == ("json", {"token": TOKEN})


@pytest.mark.parametrize("known", ["form", "json"])
async def test_known_encoding_wrong_password_costs_one_request(
    session: aiohttp.ClientSession, scripted: Scripted, known: BodyEncoding
) -> None:
    """Once the address's encoding is known, a refused login counts at once."""
    scripted.answers = [error("Email / Password combination wrong!")]
    api = client(session, scripted.url, encodings={scripted.url: known})
    with pytest.raises(AuthenticationError):
        await api.async_login()
    assert [sent_as(seen)[0] for seen in scripted.seen] == [known]
    assert api.body_encoding == known


async def test_confirm_refusal_tries_the_other_encoding(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """For the forms: a service that changed what it reads is found again."""
    scripted.answers = [error("Email / Password combination wrong!"), ok(token=TOKEN)]
    encodings: dict[str, BodyEncoding] = {scripted.url: "json"}
    api = client(session, scripted.url, encodings=encodings, confirm_refusal=True)
    await api.async_login()
    assert [sent_as(seen)[0] for seen in scripted.seen] == ["json", "form"]
    assert encodings == {scripted.url: "form"}


async def test_missing_fields_repeated_as_json(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A call whose form the service missed goes once more as JSON, and JSON stays.

    "Missing field token" is about a body not read, not a token to renew.
    """
    scripted.answers = [
        ok(token=TOKEN),
        error("Missing field token"),
        ok(name="Energica"),
        ok(name="SS9"),
    ]
    api = client(session, scripted.url)
    assert await api.async_get_name("make", "84a2z6xrqomuh9b") == "Energica"
    assert api.body_encoding == "json"
    assert await api.async_get_name("model", "rn8ytw6qvs16iwt") == "SS9"
    assert [sent_as(seen) for seen in scripted.seen[1:]] == [
        ("form", {"token": TOKEN, "make": "84a2z6xrqomuh9b"}),
        ("json", {"token": TOKEN, "make": "84a2z6xrqomuh9b"}),
        ("json", {"token": TOKEN, "model": "rn8ytw6qvs16iwt"}),
    ]
    assert api.login_count == 1


async def test_push_repeated_as_json_keeps_the_batch(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """The JSON repeat of a push is the same upload: same datasets, same batch id."""
    scripted.answers = [ok(token=TOKEN), error("Missing field data"), ok()]
    api = client(session, scripted.url)
    datasets = [Dataset("abcdefg1234", MOMENT, soc=80, state=10, power_kw=7.2)]
    await api.async_push(datasets, batch_id="batch-1")
    (form_encoding, form), (json_encoding, body) = map(sent_as, scripted.seen[1:])
    assert (form_encoding, json_encoding) == ("form", "json")
    assert body == {
        "token": TOKEN,
        "data": dataset_objects(datasets),
        "user-agent": "EV Cloud (Home Assistant)",
        "batch_id": "batch-1",
    }
    assert php_fields(body) == form


@pytest.mark.parametrize(
    ("repeat", "said"),
    [
        # The service read the form: its answer stands.
        ("Missing field token", "Missing field data\\[0\\]\\[general\\]\\[speed\\]"),
        # The service read only the JSON: its answer is the one that counts.
        ("Vehicle not found", "Vehicle not found"),
    ],
)
async def test_push_refused_in_both_encodings(
    session: aiohttp.ClientSession, scripted: Scripted, repeat: str, said: str
) -> None:
    """Refused as form and as JSON: the answer that read the data is reported."""
    scripted.answers = [
        ok(token=TOKEN),
        error("Missing field data[0][general][speed]"),
        error(repeat),
    ]
    api = client(session, scripted.url)
    with pytest.raises(CommandRejectedError, match=said):
        await api.async_push([Dataset("v", MOMENT)], batch_id="b")
    assert api.body_encoding == "form"


async def test_json_call_missing_fields_not_repeated(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Sent as JSON already: a missing-fields refusal is the answer."""
    scripted.answers = [ok(token=TOKEN), error("Missing field data[0][general][speed]")]
    api = client(session, scripted.url, encodings={scripted.url: "json"})
    with pytest.raises(CommandRejectedError, match="speed"):
        await api.async_push([Dataset("v", MOMENT)], batch_id="b")
    assert len(scripted.seen) == 2


async def test_login_wrong_in_one_encoding_unread_in_the_other(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A service that read the form and said the password is wrong: it is wrong."""
    scripted.answers = [
        error("Email / Password combination wrong!"),
        error("Missing field username"),
    ]
    with pytest.raises(AuthenticationError):
        await client(session, scripted.url).async_login()


async def test_login_unread_in_both_encodings(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A login that says fields are missing to both is no wrong password."""
    scripted.answers = [error("Missing field username"), error("Fields missing")]
    with pytest.raises(CommunicationError, match="could not read") as caught:
        await client(session, scripted.url).async_login()
    assert not isinstance(caught.value, AuthenticationError)


async def test_other_login_error(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A login error that is not about the credentials is worth retrying."""
    scripted.answers = [error(f"Maintenance, {PASSWORD} try later")]
    with pytest.raises(CommunicationError, match="Maintenance") as caught:
        await client(session, scripted.url).async_login()
    assert not isinstance(caught.value, AuthenticationError)
    secret_free(caught.value, PASSWORD)


async def test_vehicle_list_refused(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """An in-band error of the vehicle list is a CommunicationError."""
    scripted.answers = [ok(token=TOKEN), error("Database busy")]
    with pytest.raises(CommunicationError, match="Database busy"):
        await client(session, scripted.url).async_get_vehicles()


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (web.Response(status=502, text="bad gateway"), CommunicationError),
        (web.Response(status=404, text="no"), CommunicationError),
        (web.Response(status=302, headers={"Location": "/x"}), CommunicationError),
        (web.Response(status=400, text="<html>"), CommunicationError),
        (web.Response(status=429, headers={"Retry-After": "30"}), RateLimitedError),
        (web.Response(text="<html>not json</html>"), InvalidResponseError),
        (web.Response(text='{"token": "x"}'), InvalidResponseError),
        (web.Response(text="[1, 2]"), InvalidResponseError),
        (web.Response(text='{"SUCCESS": "OK"}'), InvalidResponseError),
    ],
)
async def test_transport_errors(
    session: aiohttp.ClientSession,
    scripted: Scripted,
    answer: web.Response,
    kind: type[Exception],
) -> None:
    """HTTP failures and unreadable answers to the login."""
    scripted.answers = [answer]
    with pytest.raises(kind) as caught:
        await client(session, scripted.url).async_login()
    secret_free(caught.value, PASSWORD)


async def test_rate_limit_retry_after(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """429 keeps the Retry-After seconds."""
    scripted.answers = [web.Response(status=429, headers={"Retry-After": "30"})]
    with pytest.raises(RateLimitedError) as caught:
        await client(session, scripted.url).async_login()
    assert caught.value.retry_after == 30.0


async def test_in_band_answer_on_4xx(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """A 4xx that still carries the in-band answer is read as such."""
    scripted.answers = [
        web.Response(
            status=401,
            text=json.dumps(
                {"SUCCESS": "ERROR", "error": "Email / Password combination wrong!"}
            ),
        )
        for _ in ("form", "json")
    ]
    with pytest.raises(AuthenticationError):
        await client(session, scripted.url).async_login()


async def test_timeout_and_unreachable(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Timeouts and refused connections are CommunicationError without secrets."""

    class Slow(web.Response):
        async def prepare(self, request: web.BaseRequest) -> Any:
            await asyncio.sleep(1)
            return await super().prepare(request)

    scripted.answers = [Slow(text="{}")]
    api = EvMonitorClient(session, scripted.url, EMAIL, PASSWORD, timeout=0.1)
    with pytest.raises(CommunicationError, match="in time") as caught:
        await api.async_login()
    secret_free(caught.value, PASSWORD)
    await scripted.stop()
    with pytest.raises(CommunicationError, match="Cannot reach") as caught:
        await client(session, scripted.url).async_login()
    secret_free(caught.value, PASSWORD)


async def test_concurrent_calls_share_one_login(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Two calls at once log in once."""
    scripted.answers = [ok(token=TOKEN), ok(vehicles=[]), ok(vehicles=[])]
    api = client(session, scripted.url)
    await asyncio.gather(api.async_get_vehicles(), api.async_get_vehicles())
    assert api.login_count == 1


# --- over HTTP: the EV-Monitor simulator --------------------------------------------

SIM_START = 1_780_000_000.0


class SimEnv:
    """The simulator with one user (two vehicles), and a client of it."""

    def __init__(self, sim: EvMonitorSimulator, session: aiohttp.ClientSession) -> None:
        """Create the account and the client."""
        self.sim = sim
        self.user = sim.add_user(EMAIL, PASSWORD)
        self.rocket = sim.add_vehicle(self.user, "The Rocket")
        self.van = sim.add_vehicle(self.user, "Van", make="Renault", model="Kangoo")
        self.clock = Clock()
        self.api = EvMonitorClient(
            session, sim.url, EMAIL, PASSWORD, clock=self.clock, timeout=2
        )


@pytest.fixture
def sim_body_mode() -> EvMonitorBodyMode:
    """The simulator reads form fields and JSON (tests parametrize this)."""
    return EvMonitorBodyMode.ANY


ALL_BODY_MODES = pytest.mark.parametrize(
    "sim_body_mode", list(EvMonitorBodyMode), ids=str
)


@pytest.fixture
async def sim_env(
    socket_enabled: None,
    session: aiohttp.ClientSession,
    sim_body_mode: EvMonitorBodyMode,
) -> AsyncIterator[SimEnv]:
    """The simulator, running, with its account and a client."""
    sim = EvMonitorSimulator(start_time=SIM_START, body_mode=sim_body_mode)
    await sim.start()
    env = SimEnv(sim, session)
    try:
        yield env
    finally:
        await sim.stop()


@ALL_BODY_MODES
async def test_sim_login_vehicles_names(sim_env: SimEnv) -> None:
    """Login, the vehicle list and make/model names, one token for all."""
    api = sim_env.api
    await api.async_login()
    vehicles = await api.async_get_vehicles()
    assert {v.nickname for v in vehicles} == {"The Rocket", "Van"}
    van = next(v for v in vehicles if v.vehicle_id == sim_env.van.id)
    assert van.make_id is not None
    assert van.model_id is not None
    assert await api.async_get_name("make", van.make_id) == "Renault"
    assert await api.async_get_name("model", van.model_id) == "Kangoo"
    assert await api.async_get_name("model", "unknown-id") is None
    assert sim_env.sim.tokens_issued == 1


@ALL_BODY_MODES
async def test_sim_wrong_password(
    sim_env: SimEnv, session: aiohttp.ClientSession
) -> None:
    """The simulator's login error is AuthenticationError without the password.

    A form, then JSON: two requests, whatever the service reads.
    """
    wrong = "not-" + PASSWORD
    api = EvMonitorClient(session, sim_env.sim.url, EMAIL, wrong)
    with pytest.raises(AuthenticationError) as caught:
        await api.async_get_vehicles()
    secret_free(caught.value, wrong)
    assert [(endpoint, sent) for endpoint, sent, _ in sim_env.sim.bodies] == [
        ("login", "form"),
        ("login", "json"),
    ]


@ALL_BODY_MODES
async def test_sim_encoding_is_learned(sim_env: SimEnv) -> None:
    """Each call after the login goes in the encoding the service reads, once.

    A service that reads form fields gets form fields only; one that reads only
    JSON gets one refused form login, then JSON.
    """
    api = sim_env.api
    await api.async_get_vehicles()
    await api.async_push([Dataset(sim_env.rocket.id, MOMENT)], batch_id="b")
    sim_env.sim.expire_tokens()
    await api.async_get_vehicles()
    json_only = sim_env.sim.body_mode is EvMonitorBodyMode.JSON_ONLY
    expected = "json" if json_only else "form"
    assert api.body_encoding == expected
    first = [("login", "form", False)] if json_only else []
    assert sim_env.sim.bodies == [
        *first,
        ("login", expected, True),
        ("get_vehicles", expected, True),
        ("push", expected, True),
        ("get_vehicles", expected, True),  # Token expired
        ("login", expected, True),
        ("get_vehicles", expected, True),
    ]


@ALL_BODY_MODES
async def test_sim_token_expiry_renewed(sim_env: SimEnv) -> None:
    """A token the service expired is renewed once and the call repeated."""
    api = sim_env.api
    await api.async_get_vehicles()
    sim_env.sim.advance(600)  # the service's clock runs ahead of ours
    assert api.logged_in
    assert len(await api.async_get_vehicles()) == 2
    assert sim_env.sim.tokens_issued == 2
    sim_env.sim.expire_tokens()
    await api.async_push([Dataset(sim_env.rocket.id, MOMENT)], batch_id="b1")
    assert sim_env.sim.tokens_issued == 3
    assert len(sim_env.sim.datasets) == 1


async def test_sim_token_renewed_before_expiry(sim_env: SimEnv) -> None:
    """After 9 minutes the client logs in before the service would refuse."""
    api = sim_env.api
    await api.async_get_vehicles()
    sim_env.sim.advance(TOKEN_RENEW_AFTER)
    sim_env.clock.now += TOKEN_RENEW_AFTER
    await api.async_get_vehicles()
    assert sim_env.sim.tokens_issued == 2
    # No call was refused: login, list, login, list.
    assert [path for _, path in sim_env.sim.requests] == [
        PATHS["login"],
        PATHS["vehicles"],
        PATHS["login"],
        PATHS["vehicles"],
    ]


@ALL_BODY_MODES
async def test_sim_push_recorded(sim_env: SimEnv) -> None:
    """The simulator accepts and records every field the client encodes."""
    datasets = [
        Dataset(
            sim_env.rocket.id,
            MOMENT,
            soc=81.6,
            range_km=301.4,
            speed_kmh=48.5,
            odometer_km=12345.4,
            power_kw=-7.4,
            battery_temp_c=23.7,
            state=10,
            latitude=52.5200066,
            longitude=13.404954,
            accuracy_m=4.6,
        ),
        Dataset(sim_env.van.id, MOMENT, soc=40),
    ]
    await sim_env.api.async_push(datasets, batch_id="batch-1")
    rocket, van = sim_env.sim.datasets
    assert rocket.vehicle_id == sim_env.rocket.id
    assert rocket.batch_id == "batch-1"
    assert rocket.user_agent == "EV Cloud (Home Assistant)"
    json_only = sim_env.sim.body_mode is EvMonitorBodyMode.JSON_ONLY
    assert rocket.encoding == ("json" if json_only else "form")
    general = rocket.general
    assert general["timestamp"] == int(MOMENT.timestamp())
    assert (general["speed"], general["range"], general["odometer"]) == (48, 301, 12345)
    assert general["state"] == 10
    assert general["batt"] == {0: {"soc": 82, "w_charge": 7400, "temp": 24}}
    assert general["gps"]["lat"] == pytest.approx(52.5200066)
    assert general["gps"]["lng"] == pytest.approx(13.404954)
    assert general["gps"]["acc"] == 5
    assert van.vehicle_id == sim_env.van.id
    assert van.general["batt"] == {0: {"soc": 40}}


@ALL_BODY_MODES
async def test_sim_push_idempotent(sim_env: SimEnv) -> None:
    """The same batch id twice stores its datasets once."""
    datasets = [Dataset(sim_env.rocket.id, MOMENT, soc=50)]
    await sim_env.api.async_push(datasets, batch_id="same")
    await sim_env.api.async_push(datasets, batch_id="same")
    await sim_env.api.async_push(datasets, batch_id="other")
    assert len(sim_env.sim.datasets_of(sim_env.rocket.id)) == 2
    assert [outcome for _, _, outcome in sim_env.sim.pushes] == [
        "stored",
        "duplicate",
        "stored",
    ]


@ALL_BODY_MODES
async def test_sim_push_refused(sim_env: SimEnv) -> None:
    """A dataset the service refuses (unknown vehicle, in-band error) is rejected."""
    with pytest.raises(CommandRejectedError, match="Vehicle not found") as caught:
        await sim_env.api.async_push([Dataset("foreign", MOMENT)], batch_id="b")
    secret_free(caught.value, PASSWORD)
    sim_env.sim.in_band_error = "Dataset rejected"
    with pytest.raises(CommandRejectedError, match="Dataset rejected"):
        await sim_env.api.async_push([Dataset(sim_env.rocket.id, MOMENT)], batch_id="c")
    assert sim_env.sim.datasets == []


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (EvMonitorFault.SERVER_ERROR, CommunicationError),
        (EvMonitorFault.UNAVAILABLE, CommunicationError),
        (EvMonitorFault.MALFORMED, InvalidResponseError),
    ],
)
async def test_sim_faults(
    sim_env: SimEnv, fault: EvMonitorFault, kind: type[Exception]
) -> None:
    """Server errors and unreadable answers are worth retrying."""
    sim_env.sim.fault = fault
    with pytest.raises(kind) as caught:
        await sim_env.api.async_get_vehicles()
    assert not isinstance(caught.value, AuthenticationError)
    secret_free(caught.value, PASSWORD)


async def test_sim_slow_and_down(sim_env: SimEnv) -> None:
    """A timeout and a closed connection are CommunicationError."""
    sim_env.sim.fault = EvMonitorFault.SLOW
    sim_env.sim.slow_seconds = 5
    with pytest.raises(CommunicationError, match="in time"):
        await sim_env.api.async_login()
    sim_env.sim.fault = EvMonitorFault.NONE
    sim_env.sim.down = True
    with pytest.raises(CommunicationError, match="Cannot reach") as caught:
        await sim_env.api.async_login()
    secret_free(caught.value, PASSWORD)


async def test_error_texts_trimmed(
    session: aiohttp.ClientSession, scripted: Scripted
) -> None:
    """Long server texts are cut; an error without text says nothing more."""
    scripted.answers = [
        ok(token=TOKEN),
        error("x " * 400),
        web.Response(text='{"SUCCESS": "ERROR"}'),
        web.Response(status=429, headers={"Retry-After": "soon"}),
    ]
    api = client(session, scripted.url)
    with pytest.raises(CommandRejectedError) as caught:
        await api.async_push([Dataset("v", MOMENT)], batch_id="b")
    assert len(str(caught.value)) < 340
    assert str(caught.value).endswith("…")
    with pytest.raises(CommandRejectedError) as caught:
        await api.async_push([Dataset("v", MOMENT)], batch_id="b")
    assert str(caught.value) == "EV-Monitor refused the data"
    with pytest.raises(RateLimitedError) as limited:
        await api.async_push([Dataset("v", MOMENT)], batch_id="b")
    assert limited.value.retry_after is None
