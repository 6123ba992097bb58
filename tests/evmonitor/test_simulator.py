"""Self-test of the EV-Monitor simulator, over real HTTP on 127.0.0.1."""

import argparse
import asyncio
from collections.abc import AsyncIterator
import json
import time
from typing import Any

import aiohttp
import pytest

from tests.simulators import evmonitor
from tests.simulators.demo import load_demo
from tests.simulators.evmonitor import (
    LOGIN_FAILED,
    TOKEN_EXPIRED,
    TOKEN_INVALID,
    EvMonitorBodyMode,
    EvMonitorFault,
    EvMonitorSimulator,
    parse_php_form,
)

START = 1_780_000_000.0
EMAIL = "driver@example.com"
PASSWORD = "s3cret pass"
OK = {"SUCCESS": "OK"}


class Env:
    """A running simulator: a user with two vehicles, another user with one."""

    def __init__(self, sim: EvMonitorSimulator, client: aiohttp.ClientSession) -> None:
        """Create the users and vehicles."""
        self.sim = sim
        self.client = client
        self.user = sim.add_user(EMAIL, PASSWORD)
        self.rocket = sim.add_vehicle(self.user, "The Rocket")
        self.van = sim.add_vehicle(self.user, "Van", make="Renault", model="Kangoo")
        other = sim.add_user("other@example.com", "other")
        self.foreign = sim.add_vehicle(other, "Not yours")

    async def post(
        self,
        endpoint: str,
        form: Any = None,
        *,
        json_body: Any = None,
        client_timeout: float | None = None,
    ) -> tuple[int, Any]:
        """POST a form (dict or list of pairs) or a JSON body to /api/<endpoint>."""
        kwargs: dict[str, Any] = (
            {"json": json_body} if json_body is not None else {"data": form or {}}
        )
        if client_timeout is not None:
            kwargs["timeout"] = aiohttp.ClientTimeout(total=client_timeout)
        async with self.client.post(f"{self.sim.api_url}/{endpoint}", **kwargs) as r:
            text = await r.text()
            try:
                return r.status, json.loads(text)
            except ValueError:
                return r.status, text

    async def login(self) -> str:
        """A fresh token."""
        status, body = await self.post(
            "login", {"username": EMAIL, "password": PASSWORD}
        )
        assert status == 200
        assert body["SUCCESS"] == "OK"
        return body["token"]

    async def control(self, name: str, body: Any = None) -> tuple[int, Any]:
        """GET /_sim/<name> (no body), or POST the JSON `body` to it."""
        url = f"{self.sim.url}/_sim/{name}"
        if body is None:
            request = self.client.get(url)
        else:
            request = self.client.post(url, json=body)
        async with request as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text

    async def push_soon(self, form: dict[str, str]) -> asyncio.Task[tuple[int, Any]]:
        """Start a push; return once the simulator has handled it (held or not)."""
        before = len(self.sim.pushes)
        task = asyncio.create_task(self.post("push", form))
        for _ in range(200):
            if len(self.sim.pushes) > before or task.done():
                return task
            await asyncio.sleep(0.01)
        pytest.fail("the push never reached the simulator")

    def dataset(self, index: int = 0, **general: Any) -> dict[str, str]:
        """Form fields of a minimal dataset `data[index]` (plus `general` fields)."""
        fields = {"vehicle_id": self.rocket.id, "timestamp": str(int(START))}
        fields |= {key: str(value) for key, value in general.items()}
        return {f"data[{index}][general][{k}]": v for k, v in fields.items()}


@pytest.fixture(params=[False], ids=["api"])
async def env(
    socket_enabled: None, request: pytest.FixtureRequest
) -> AsyncIterator[Env]:
    """The simulator with its accounts, and a client session.

    Parametrised indirectly with True: with the control endpoint (`ctl`).
    """
    sim = EvMonitorSimulator(start_time=START, control=request.param)
    async with aiohttp.ClientSession() as client:
        environment = Env(sim, client)
        await sim.start()
        yield environment
        await sim.stop()


# The simulator with its control endpoint, as the demo runs it.
ctl = pytest.mark.parametrize("env", [True], ids=["control"], indirect=True)


def error(message: str) -> tuple[int, dict[str, str]]:
    """An in-band error answer."""
    return 200, {"SUCCESS": "ERROR", "error": message}


async def test_login(env: Env) -> None:
    """The e-mail and password give a 15-character token; wrong ones in-band ERROR."""
    token = await env.login()
    assert len(token) == 15
    assert token.isalnum()
    assert await env.post("login", {"username": EMAIL, "password": "no"}) == error(
        LOGIN_FAILED
    )
    assert await env.post("login", {"username": "x@example.com"}) == error(LOGIN_FAILED)
    status, body = await env.post(
        "login", json_body={"username": EMAIL, "password": PASSWORD}
    )
    assert status == 200
    assert body["SUCCESS"] == "OK"
    assert body["token"] != token
    assert env.sim.tokens_issued == 2


async def test_json_only_reads_no_form(env: Env) -> None:
    """JSON_ONLY: a form is no fields at all, answered as the service answers that.

    The login says the credentials are wrong, other calls that the token is
    missing; a JSON body is read whatever its content type says.
    """
    env.sim.body_mode = EvMonitorBodyMode.JSON_ONLY
    credentials = {"username": EMAIL, "password": PASSWORD}
    assert await env.post("login", credentials) == error(LOGIN_FAILED)
    status, body = await env.post("login", json_body=credentials)
    assert (status, body["SUCCESS"]) == (200, "OK")
    token = body["token"]
    assert await env.post("get_vehicles", {"token": token}) == error(
        "Missing field token"
    )
    async with env.client.post(
        f"{env.sim.api_url}/get_make",
        data=json.dumps({"token": token, "make": env.rocket.make}),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as response:
        assert await response.json() == {"SUCCESS": "OK", "name": "Energica"}
    assert await env.post("push", {"token": token, **env.dataset()}) == error(
        "Missing field token"
    )
    dataset = {"general": {"vehicle_id": env.rocket.id, "timestamp": int(START)}}
    push = {"token": token, "batch_id": "b1", "data": [dataset]}
    assert await env.post("push", json_body=push) == (200, OK)
    assert [d.encoding for d in env.sim.datasets] == ["json"]
    assert env.sim.bodies == [
        ("login", "form", False),
        ("login", "json", True),
        ("get_vehicles", "form", False),
        ("get_make", "form", True),
        ("push", "form", False),
        ("push", "json", True),
    ]


async def test_form_only_reads_no_json(env: Env) -> None:
    """FORM_ONLY (PHP's $_POST): a JSON body is no fields at all."""
    env.sim.body_mode = EvMonitorBodyMode.FORM_ONLY
    credentials = {"username": EMAIL, "password": PASSWORD}
    assert await env.post("login", json_body=credentials) == error(LOGIN_FAILED)
    token = await env.login()
    assert await env.post("get_vehicles", json_body={"token": token}) == error(
        "Missing field token"
    )
    status, body = await env.post("get_vehicles", {"token": token})
    assert (status, body["SUCCESS"]) == (200, "OK")
    assert [readable for _, _, readable in env.sim.bodies] == [
        False,
        True,
        False,
        True,
    ]


async def test_token_expiry(env: Env) -> None:
    """A token lives 10 minutes of simulated time; unknown tokens are refused."""
    token = await env.login()
    env.sim.advance(599)
    assert (await env.post("get_vehicles", {"token": token}))[1]["SUCCESS"] == "OK"
    env.sim.advance(1)
    assert await env.post("get_vehicles", {"token": token}) == error(TOKEN_EXPIRED)
    assert await env.post("push", {"token": token, **env.dataset()}) == error(
        TOKEN_EXPIRED
    )
    assert await env.post("get_vehicles", {"token": "nope"}) == error(TOKEN_INVALID)
    assert await env.post("get_vehicles", {}) == error("Missing field token")
    fresh = await env.login()
    assert (await env.post("get_vehicles", {"token": fresh}))[1]["SUCCESS"] == "OK"
    env.sim.expire_tokens()
    assert await env.post("get_vehicles", {"token": fresh}) == error(TOKEN_EXPIRED)
    assert env.sim.datasets == []


async def test_vehicles_make_model(env: Env) -> None:
    """Only the user's vehicles, every value a string; make/model ids resolve."""
    token = await env.login()
    status, body = await env.post("get_vehicles", {"token": token})
    assert status == 200
    assert body == {
        "SUCCESS": "OK",
        "vehicles": [env.rocket.json(), env.van.json()],
    }
    rocket = body["vehicles"][0]
    assert rocket["nickname"] == "The Rocket"
    assert rocket["plan"] == "0"
    assert all(isinstance(value, str) for value in rocket.values())
    assert await env.post("get_make", {"token": token, "make": rocket["make"]}) == (
        200,
        {"SUCCESS": "OK", "name": "Energica"},
    )
    assert await env.post(
        "get_model", json_body={"token": token, "model": rocket["model"]}
    ) == (200, {"SUCCESS": "OK", "name": "SS9"})
    # The foreign vehicle shares make and model ids with the Rocket.
    assert env.foreign.make == env.rocket.make
    assert await env.post("get_make", {"token": token, "make": "zzz"}) == error(
        "Unknown make"
    )
    assert await env.post("get_model", {"token": token}) == error("Missing field model")
    assert await env.post("get_make", {"make": rocket["make"]}) == error(
        "Missing field token"
    )


async def test_push_form(env: Env) -> None:
    """PHP form arrays: two datasets with motors, batteries and GPS."""
    token = await env.login()
    form = [("token", token), ("user-agent", "EV Cloud test")]
    form += list(env.dataset(0, speed=88, state=1, odometer=1200).items())
    form += [
        ("data[0][general][motor][0][rpm]", "4000"),
        ("data[0][general][motor][1][rpm]", "3900"),
        ("data[0][general][batt][0][soc]", "77"),
        ("data[0][general][batt][0][temp]", "-3"),
        ("data[0][general][gps][lat]", "52.52"),
        ("data[0][general][gps][lng]", "13.405"),
        ("data[0][general][gps][acc]", "5"),
        ("data[0][general][gps][alt]", "34.5"),
    ]
    form += list(env.dataset(1, state=10, watt_100km=15000).items())
    form.append(("data[1][general][vehicle_id]", env.van.id))
    assert await env.post("push", form) == (200, OK)
    first, second = env.sim.datasets
    assert first.vehicle_id == env.rocket.id
    assert first.encoding == "form"
    assert first.user_agent == "EV Cloud test"
    assert first.batch_id is None
    assert first.received == START
    assert first.general == {
        "vehicle_id": env.rocket.id,
        "timestamp": int(START),
        "speed": 88,
        "state": 1,
        "odometer": 1200,
        "motor": {0: {"rpm": 4000}, 1: {"rpm": 3900}},
        "batt": {0: {"soc": 77, "temp": -3}},
        "gps": {"lat": 52.52, "lng": 13.405, "acc": 5, "alt": 34.5},
    }
    assert second.vehicle_id == env.van.id
    assert second.general["state"] == 10
    assert env.sim.datasets_of(env.van.id) == [second]
    assert env.sim.pushes == [(None, 2, "stored")]


async def test_push_json(env: Env) -> None:
    """A JSON body: data, motor and batt as lists or index-keyed objects."""
    token = await env.login()
    body = {
        "token": token,
        "user-agent": "EV Cloud",
        "data": [
            {
                "general": {
                    "vehicle_id": env.rocket.id,
                    "timestamp": int(START),
                    "range": 210,
                    "batt": [{"soc": 80, "v": 400}],
                    "motor": {"3": {"watt": 12000}},
                    "gps": {"lat": -33.9, "lng": 151.2, "acc": 10},
                }
            }
        ],
    }
    assert await env.post("push", json_body=body) == (200, OK)
    (dataset,) = env.sim.datasets
    assert dataset.encoding == "json"
    assert dataset.general["batt"] == {0: {"soc": 80, "v": 400}}
    assert dataset.general["motor"] == {3: {"watt": 12000}}
    assert dataset.general["gps"] == {"lat": -33.9, "lng": 151.2, "acc": 10}
    assert await env.post("push", json_body=[1]) == error("Invalid JSON")
    async with env.client.post(
        f"{env.sim.api_url}/push",
        data=b"{nope",
        headers={"Content-Type": "application/json"},
    ) as response:
        assert await response.json() == {"SUCCESS": "ERROR", "error": "Invalid JSON"}


G = "data[0][general]"
GPS_OK = {f"{G}[gps][lat]": "1", f"{G}[gps][lng]": "2", f"{G}[gps][acc]": "3"}


@pytest.mark.parametrize(
    ("base", "fields", "message"),
    [
        (False, {}, "Missing field data"),
        (False, {f"{G}[timestamp]": "1"}, f"Missing field {G}[vehicle_id]"),
        (False, {f"{G}[vehicle_id]": "x"}, f"Missing field {G}[timestamp]"),
        (False, {"data[0][speed]": "1"}, "Unknown field data[0][speed]"),
        (True, {f"{G}[gps][acc]": ""}, f"Missing field {G}[gps][acc]"),
        (True, {f"{G}[gps][lat]": ""}, f"Missing field {G}[gps][lat]"),
        (True, {f"{G}[gps][lng]": ""}, f"Missing field {G}[gps][lng]"),
        (True, {f"{G}[gps][lat]": "91"}, f"Invalid field {G}[gps][lat]"),
        (True, {f"{G}[gps][sats]": "9"}, f"Unknown field {G}[gps][sats]"),
        (True, {f"{G}[speed]": "12.5"}, f"Invalid field {G}[speed]"),
        (True, {f"{G}[state]": "5"}, f"Invalid field {G}[state]"),
        (True, {f"{G}[motor][256][rpm]": "1"}, f"Invalid field {G}[motor][256]"),
        (True, {f"{G}[batt][0][volts]": "1"}, f"Unknown field {G}[batt][0][volts]"),
        (True, {f"{G}[colour]": "red"}, f"Unknown field {G}[colour]"),
        (True, {f"{G}[vehicle_id]": "FOREIGN"}, "Vehicle not found"),
        (True, {f"{G}[vehicle_id]": "unknown"}, "Vehicle not found"),
    ],
)
async def test_validation(
    env: Env, base: bool, fields: dict[str, str], message: str
) -> None:
    """Missing or wrong fields answer an in-band ERROR naming them; nothing stored."""
    token = await env.login()
    form = {"token": token}
    if base:
        form |= env.dataset() | GPS_OK
    form |= {
        key: env.foreign.id if value == "FOREIGN" else value
        for key, value in fields.items()
    }
    form = {key: value for key, value in form.items() if value != ""}
    if form != {"token": token}:
        # A good dataset next to the bad one is not stored either.
        form |= {
            "data[5][general][vehicle_id]": env.van.id,
            "data[5][general][timestamp]": "1",
        }
    assert await env.post("push", form) == error(message)
    assert env.sim.datasets == []
    assert env.sim.pushes == [(None, 0, "error")]


async def test_lenient_mode(env: Env) -> None:
    """Without `strict`, unknown fields are kept; `mandatory` is configurable."""
    env.sim.strict = False
    env.sim.mandatory = ("vehicle_id",)
    token = await env.login()
    form = {
        "token": token,
        "data[0][general][vehicle_id]": env.rocket.id,
        "data[0][general][colour]": "red",
    }
    assert await env.post("push", form) == (200, OK)
    assert env.sim.datasets[0].general == {"vehicle_id": env.rocket.id, "colour": "red"}


async def test_batch_id_is_idempotent(env: Env) -> None:
    """A batch id already accepted is acknowledged again and not stored twice."""
    token = await env.login()
    form = {"token": token, "batch_id": "b-1"} | env.dataset(speed=5)
    assert await env.post("push", form) == (200, OK)
    assert await env.post("push", form) == (200, OK)
    body = {
        "token": token,
        "batch_id": "b-1",
        "data": [{"general": {"vehicle_id": env.rocket.id, "timestamp": 1}}],
    }
    assert await env.post("push", json_body=body) == (200, OK)
    assert [(d.batch_id, d.general["speed"]) for d in env.sim.datasets] == [("b-1", 5)]
    body["batch_id"] = "b-2"
    assert await env.post("push", json_body=body) == (200, OK)
    assert [d.batch_id for d in env.sim.datasets] == ["b-1", "b-2"]
    assert env.sim.pushes == [
        ("b-1", 1, "stored"),
        ("b-1", 0, "duplicate"),
        ("b-1", 0, "duplicate"),
        ("b-2", 1, "stored"),
    ]
    # A rejected batch may be sent again.
    bad = {"token": token, "batch_id": "b-3", "data[0][general][speed]": "1"}
    assert (await env.post("push", bad))[1]["SUCCESS"] == "ERROR"
    assert await env.post("push", bad | env.dataset()) == (200, OK)
    assert env.sim.datasets[-1].batch_id == "b-3"


async def test_in_band_error_fault(env: Env) -> None:
    """`in_band_error` makes push answer that ERROR and store nothing."""
    token = await env.login()
    env.sim.in_band_error = "Database error"
    form = {"token": token, "batch_id": "x"} | env.dataset()
    assert await env.post("push", form) == error("Database error")
    assert env.sim.datasets == []
    # Other endpoints still answer.
    assert (await env.post("get_vehicles", {"token": token}))[1]["SUCCESS"] == "OK"
    env.sim.in_band_error = None
    assert await env.post("push", form) == (200, OK)
    assert len(env.sim.datasets) == 1


async def test_faults(env: Env) -> None:
    """500 and 503 HTML, malformed JSON, slow answers; nothing stored."""
    token = await env.login()
    form = {"token": token} | env.dataset()
    env.sim.fault = EvMonitorFault.SERVER_ERROR
    status, body = await env.post("push", form)
    assert status == 500
    assert "<html" in body
    env.sim.fault = EvMonitorFault.UNAVAILABLE
    status, body = await env.post("login", {"username": EMAIL, "password": PASSWORD})
    assert status == 503
    assert "Service Unavailable" in body
    env.sim.fault = EvMonitorFault.MALFORMED
    async with env.client.post(f"{env.sim.api_url}/get_vehicles", data=form) as r:
        assert r.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(await r.text())
    assert env.sim.datasets == []
    env.sim.fault = EvMonitorFault.SLOW
    env.sim.slow_seconds = 0.2
    start = time.monotonic()
    assert await env.post("push", form) == (200, OK)
    assert time.monotonic() - start >= 0.2
    assert len(env.sim.datasets) == 1
    assert [path for _, path in env.sim.requests] == [
        "/api/login",
        "/api/push",
        "/api/login",
        "/api/get_vehicles",
        "/api/push",
    ]


async def test_down_closes_connections(env: Env) -> None:
    """`down`: the connection is closed without an answer."""
    env.sim.down = True
    with pytest.raises(aiohttp.ClientError):
        await env.post("login", {"username": EMAIL, "password": PASSWORD})
    assert env.sim.requests == []
    env.sim.down = False
    assert await env.login()


async def test_stop_ends_slow_answers(env: Env) -> None:
    """stop() drops a pending slow answer instead of waiting for it."""
    env.sim.fault = EvMonitorFault.SLOW
    pending = asyncio.create_task(env.post("login", {}))
    await asyncio.sleep(0.1)
    start = time.monotonic()
    await env.sim.stop()
    assert time.monotonic() - start < 5
    with pytest.raises(aiohttp.ClientError):
        await pending


async def test_methods_and_paths(env: Env) -> None:
    """POST only; unknown endpoints and paths outside /api/ are 404."""
    async with env.client.get(f"{env.sim.api_url}/get_vehicles") as response:
        assert response.status == 405
        assert await response.json() == {"SUCCESS": "ERROR", "error": "POST only"}
    assert await env.post("nothing") == (
        404,
        {"SUCCESS": "ERROR", "error": "Unknown endpoint"},
    )
    async with env.client.post(f"{env.sim.url}/web/devs") as response:
        assert response.status == 404


def test_parse_php_form() -> None:
    """PHP's nesting of bracketed keys, with `[]` appending."""
    assert parse_php_form(
        [
            ("token", "t"),
            ("data[0][general][speed]", "1"),
            ("data[0][general][gps][lat]", "2"),
            ("data[1][general][speed]", "3"),
            ("list[]", "a"),
            ("list[]", "b"),
        ]
    ) == {
        "token": "t",
        "data": {
            "0": {"general": {"speed": "1", "gps": {"lat": "2"}}},
            "1": {"general": {"speed": "3"}},
        },
        "list": {"0": "a", "1": "b"},
    }


async def test_runner(socket_enabled: None, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo prints its settings; its account logs in and pushes."""
    demo = load_demo("evmonitor")
    assert demo.menu_path == ("evmonitor",)
    assert demo.identifier == "vehicles"
    stop = asyncio.Event()
    args = argparse.Namespace(host="127.0.0.1", port=0, local_port=0)
    task = asyncio.create_task(evmonitor.DEMO.run(args, stop))
    output = ""
    for _ in range(100):
        await asyncio.sleep(0.05)
        output += capsys.readouterr().out
        if "vehicles=" in output:
            break
    settings = dict(
        line.split("=", 1) for line in output.splitlines() if " " not in line
    )
    assert settings["provider"] == "evmonitor"
    assert settings["username"] == "evmonitor-demo@example.com"
    assert settings["api_url"] == f"{settings['server_url']}/api"
    step_id, form = demo.forms[0]
    assert step_id == "evmonitor"
    assert form(settings) == {
        "username": settings["username"],
        "password": settings["password"],
        "advanced": {"server_url": settings["server_url"]},
    }
    # Then the vehicle, fed from a device of the OVMS demo's entry (made first).
    assert demo.after == ("ovms",)
    assert set(demo.needs) <= set(settings)
    values = settings | {"device:ovms_DEMO": "0123abcd"}
    assert [(step, form(values)) for step, form in demo.forms[1:]] == [
        ("evmonitor_vehicle", {"vehicle": settings["vehicles"], "source": "device"}),
        ("evmonitor_device", {"source_device": "0123abcd"}),
    ]
    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{settings['api_url']}/login",
            data={"username": settings["username"], "password": settings["password"]},
        ) as response:
            token = (await response.json())["token"]
        async with client.post(
            f"{settings['api_url']}/get_vehicles", data={"token": token}
        ) as response:
            vehicles = (await response.json())["vehicles"]
        assert [v["nickname"] for v in vehicles] == ["The Rocket"]
        assert [v["id"] for v in vehicles] == [settings["vehicles"]]
        async with client.post(
            f"{settings['api_url']}/push",
            data={
                "token": token,
                "data[0][general][vehicle_id]": vehicles[0]["id"],
                "data[0][general][timestamp]": "1",
            },
        ) as response:
            assert await response.json() == OK
    for _ in range(40):
        await asyncio.sleep(0.05)
        output += capsys.readouterr().out
        if "event=dataset" in output:
            break
    assert f"event=dataset vehicle={settings['vehicles']} batch=None" in output
    # The demo serves the control endpoint; its switches are printed.
    async with aiohttp.ClientSession() as client:
        async with client.post(
            f"{settings['server_url']}/_sim/hold", json={"hold": True}
        ) as response:
            assert await response.json() == {"hold": True}
        async with client.get(f"{settings['server_url']}/_sim/datasets") as response:
            state = await response.json()
    assert [d["vehicle_id"] for d in state["datasets"]] == [settings["vehicles"]]
    for _ in range(40):
        await asyncio.sleep(0.05)
        output += capsys.readouterr().out
        if "event=hold" in output:
            break
    assert "event=hold on=True" in output
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_control_needs_control(env: Env) -> None:
    """Without `control=True`, /_sim/ is a path like any other outside /api/."""
    assert (await env.control("down", {"down": True}))[0] == 404
    assert (await env.control("datasets"))[0] == 404
    assert not env.sim.down


@ctl
async def test_control_down(env: Env) -> None:
    """POST /_sim/down drops every API connection; the endpoint still answers."""
    assert await env.control("down", {"down": True}) == (200, {"down": True})
    assert env.sim.down
    with pytest.raises(aiohttp.ClientError):
        await env.login()
    assert (await env.control("datasets"))[0] == 200
    assert await env.control("down", {"down": False}) == (200, {"down": False})
    assert await env.login()


@ctl
async def test_control_refuses_bad_requests(env: Env) -> None:
    """Unknown switches and methods are 404, a body without the boolean 400."""
    assert (await env.control("fault", {"fault": True}))[0] == 404
    assert (await env.control("down"))[0] == 404  # GET
    assert (await env.control("datasets", {"datasets": True}))[0] == 404  # POST
    status, text = await env.control("hold", {"hold": "yes"})
    assert (status, text) == (400, 'body must be {"hold": true|false}\n')
    assert (await env.control("down", {}))[0] == 400
    async with env.client.post(f"{env.sim.url}/_sim/down", data="no json") as r:
        assert r.status == 400
    assert not env.sim.down
    assert not env.sim.hold
    # The API's own paths are untouched by the control endpoint.
    assert env.sim.requests == []


@ctl
async def test_control_datasets(env: Env) -> None:
    """GET /_sim/datasets: every accepted dataset, every push, held answers."""
    assert await env.control("datasets") == (
        200,
        {"datasets": [], "pushes": [], "held": 0},
    )
    token = await env.login()
    form = {"token": token, "batch_id": "b-1"}
    form |= env.dataset(0, speed=7) | env.dataset(1, timestamp=int(START) + 10)
    form["data[0][general][gps][lat]"] = "48.1"
    form["data[0][general][gps][lng]"] = "11.5"
    form["data[0][general][gps][acc]"] = "5"
    assert await env.post("push", form) == (200, OK)
    assert await env.post("push", form) == (200, OK)
    env.sim.advance(30)
    assert await env.post("push", {"token": token} | env.dataset()) == (200, OK)
    assert (await env.post("push", {"token": token, "batch_id": "b-2"}))[1][
        "SUCCESS"
    ] == "ERROR"
    status, state = await env.control("datasets")
    assert status == 200
    rocket = env.rocket.id
    assert state["datasets"] == [
        {
            "vehicle_id": rocket,
            "batch_id": "b-1",
            "general": {
                "vehicle_id": rocket,
                "timestamp": int(START),
                "speed": 7,
                "gps": {"lat": 48.1, "lng": 11.5, "acc": 5},
            },
            "received": START,
        },
        {
            "vehicle_id": rocket,
            "batch_id": "b-1",
            "general": {"vehicle_id": rocket, "timestamp": int(START) + 10},
            "received": START,
        },
        {
            "vehicle_id": rocket,
            "batch_id": None,
            "general": {"vehicle_id": rocket, "timestamp": int(START)},
            "received": START + 30,
        },
    ]
    assert state["pushes"] == [
        {"batch_id": "b-1", "datasets": 2, "result": "stored"},
        {"batch_id": "b-1", "datasets": 0, "result": "duplicate"},
        {"batch_id": None, "datasets": 1, "result": "stored"},
        {"batch_id": "b-2", "datasets": 0, "result": "error"},
    ]
    assert state["held"] == 0


@ctl
async def test_hold_stores_but_holds_the_answer(env: Env) -> None:
    """With `hold`, a push is stored at once; its answer waits for the release."""
    token = await env.login()
    assert await env.control("hold", {"hold": True}) == (200, {"hold": True})
    form = {"token": token, "batch_id": "b-1"} | env.dataset(speed=3)
    pending = await env.push_soon(form)
    assert [(d.batch_id, d.general["speed"]) for d in env.sim.datasets] == [("b-1", 3)]
    assert env.sim.pushes == [("b-1", 1, "stored")]
    # Other calls are answered meanwhile; the answer is not sent.
    assert (await env.post("get_vehicles", {"token": token}))[1]["SUCCESS"] == "OK"
    await asyncio.sleep(0.2)
    assert not pending.done()
    assert (await env.control("datasets"))[1]["held"] == 1
    # A resend of the batch is a duplicate, held as well.
    again = await env.push_soon(form)
    assert env.sim.pushes[-1] == ("b-1", 0, "duplicate")
    assert env.sim.held == 2
    assert await env.control("hold", {"hold": False}) == (200, {"hold": False})
    assert await asyncio.wait_for(pending, 5) == (200, OK)
    assert await asyncio.wait_for(again, 5) == (200, OK)
    assert env.sim.held == 0
    assert len(env.sim.datasets) == 1


@ctl
async def test_hold_holds_refusals_too(env: Env) -> None:
    """A refused push is held as well; only push answers are held."""
    token = await env.login()
    env.sim.hold = True
    pending = await env.push_soon({"token": token, "data[0][general][speed]": "1"})
    assert env.sim.pushes == [(None, 0, "error")]
    assert not pending.done()
    assert await env.login()  # login answers
    env.sim.hold = False
    status, body = await asyncio.wait_for(pending, 5)
    assert status == 200
    assert body["SUCCESS"] == "ERROR"


@ctl
async def test_hold_until_the_client_gives_up(env: Env) -> None:
    """A client that closes the connection ends the held request; stored stays."""
    token = await env.login()
    env.sim.hold = True
    form = {"token": token, "batch_id": "b-1"} | env.dataset()
    with pytest.raises(TimeoutError):
        await env.post("push", form, client_timeout=0.3)
    assert [d.batch_id for d in env.sim.datasets] == ["b-1"]
    for _ in range(100):
        if env.sim.held == 0:
            break
        await asyncio.sleep(0.02)
    assert env.sim.held == 0, "the closed connection's answer is still held"
    env.sim.hold = False
    # The client sends the batch again (it never heard): acknowledged, not stored.
    assert await env.post("push", form) == (200, OK)
    assert env.sim.pushes == [("b-1", 1, "stored"), ("b-1", 0, "duplicate")]
    assert len(env.sim.datasets) == 1


@ctl
async def test_down_drops_held_answers(env: Env) -> None:
    """Going down while an answer is held closes its connection: no answer."""
    token = await env.login()
    env.sim.hold = True
    pending = await env.push_soon({"token": token} | env.dataset())
    assert await env.control("down", {"down": True}) == (200, {"down": True})
    with pytest.raises(aiohttp.ClientError):
        await asyncio.wait_for(pending, 5)
    assert len(env.sim.datasets) == 1
    assert env.sim.held == 0
    # Released while down: still no answer for new pushes (down drops them).
    env.sim.hold = False
    with pytest.raises(aiohttp.ClientError):
        await env.post("push", {"token": token} | env.dataset())


@ctl
async def test_stop_ends_held_answers(env: Env) -> None:
    """stop() drops a held answer instead of waiting for the release."""
    token = await env.login()
    env.sim.hold = True
    pending = await env.push_soon({"token": token} | env.dataset())
    start = time.monotonic()
    await env.sim.stop()
    assert time.monotonic() - start < 5
    with pytest.raises(aiohttp.ClientError):
        await asyncio.wait_for(pending, 5)
    assert env.sim.held == 0
