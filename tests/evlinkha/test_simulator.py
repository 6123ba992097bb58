"""Self-test of the EVLinkHA simulator, over real HTTP on 127.0.0.1."""

import argparse
import asyncio
from collections.abc import AsyncIterator
import json
import time
from typing import Any

import aiohttp
from aiohttp import web
import pytest

from tests.simulators import evlinkha
from tests.simulators.common import bind
from tests.simulators.demo import load_demo
from tests.simulators.evlinkha import (
    COMPLETE,
    STOPPED,
    UNPLUGGED,
    WINDOW_SECONDS,
    EvLinkFault,
    EvLinkSimulator,
    SimVehicle,
)

START = 1_780_000_000.0
PRO_KEY = "key-pro"
FREE_KEY = "key-free"
BASIC_KEY = "key-basic"


class Env:
    """A running simulator: a pro user (charging car, parked car), free and basic."""

    def __init__(self, sim: EvLinkSimulator, client: aiohttp.ClientSession) -> None:
        """Create the users and vehicles."""
        self.sim = sim
        self.client = client
        self.pro = sim.add_user("pro@example.com", "pro", api_key=PRO_KEY)
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
        sim.plug_in(self.car)

    async def call(
        self,
        path: str,
        method: str = "GET",
        *,
        key: str = PRO_KEY,
        style: str = "hosted",
        **kwargs: Any,
    ) -> tuple[int, Any]:
        """Call `path` under the style's root (hosted: /api/v1/ha + X-API-Key)."""
        if style == "hosted":
            url, headers = self.sim.hosted_url + path, {"X-API-Key": key}
        elif style == "backend":
            url, headers = self.sim.backend_url, {"Authorization": f"Bearer {key}"}
            url += path
        else:
            url = f"{self.sim.url}/api{path}"
            headers = {"Authorization": f"Bearer {key}"}
        async with self.client.request(
            method, url, headers=headers, **kwargs
        ) as response:
            text = await response.text()
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text
            return response.status, body

    async def charge(
        self, vehicle_id: str, action: Any, key: str = PRO_KEY, **kwargs: Any
    ) -> tuple[int, Any]:
        """POST a charging action."""
        return await self.call(
            f"/charging/{vehicle_id}",
            "POST",
            key=key,
            json={"action": action},
            **kwargs,
        )


@pytest.fixture
async def env(socket_enabled: None) -> AsyncIterator[Env]:
    """The simulator with its story set up, and a client session."""
    sim = EvLinkSimulator(start_time=START)
    async with aiohttp.ClientSession() as client:
        environment = Env(sim, client)
        await sim.start()
        yield environment
        await sim.stop()


async def test_both_styles_and_auth(env: Env) -> None:
    """/api/v1/ha with X-API-Key and /api/ha with Bearer serve the same data."""
    for style in ("hosted", "backend"):
        status, me = await env.call("/me", style=style)
        assert status == 200
        assert me == {
            "user_id": env.pro.id,
            "tier": "pro",
            "email": "pro@example.com",
            "name": "Sim User",
            "role": "user",
            "sms_credits": 0,
        }
        status, vehicles = await env.call("/vehicles", style=style)
        assert status == 200
        assert [v["vehicleId"] for v in vehicles] == [env.car, env.parked]
        assert vehicles[1]["vehicleName"] == "Tesla Model 3"
        assert "capabilities" not in vehicles[0]
        status, body = await env.call(f"/status/{env.car}", style=style)
        assert status == 200
        assert body["chargeState"]["powerDeliveryState"] == "PLUGGED_IN:CHARGING"
        assert set(body["capabilities"]) == set(evlinkha.CAPABILITIES)
        assert body["capabilities"]["startCharging"] == {
            "isCapable": True,
            "interventionIds": [],
        }
        assert "batteryLevel" not in body
        assert await env.call("/me", key="wrong", style=style) == (
            401,
            {"detail": "Invalid API key"},
        )
    # Each style wants its own header.
    async with env.client.get(
        f"{env.sim.backend_url}/me", headers={"X-API-Key": PRO_KEY}
    ) as response:
        assert response.status == 401
        assert await response.json() == {"detail": "Invalid authorization header"}
    async with env.client.get(
        f"{env.sim.hosted_url}/me", headers={"Authorization": f"Bearer {PRO_KEY}"}
    ) as response:
        assert response.status == 401
    # Unknown paths and methods are FastAPI's.
    assert await env.call("/nothing") == (404, {"detail": "Not Found"})
    assert await env.call("/me", "POST") == (405, {"detail": "Method Not Allowed"})
    assert (await env.call("/vehicles", key=FREE_KEY))[1][0]["vehicleId"] == (
        env.freecar
    )
    lonely = env.sim.add_user("none@example.com", "free", api_key="key-none")
    assert await env.call("/vehicles", key=lonely.api_key) == (200, [])
    assert env.sim.requests[0] == ("GET", "/api/v1/ha/me")
    assert ("GET", "/api/ha/me") in env.sim.requests


async def test_status_body(env: Env) -> None:
    """The Enode blocks, units and the legacy root keys of /api/status."""
    status, body = await env.call(f"/status/{env.parked}")
    assert status == 200
    charge = body["chargeState"]
    assert charge == {
        "batteryLevel": 50,
        "range": round(0.5 * 91.0 * 6.0, 1),
        "isCharging": False,
        "isPluggedIn": False,
        "isFullyCharged": False,
        "batteryCapacity": 91.0,
        "chargeRate": None,
        "chargeLimit": 90,
        "chargeTimeRemaining": None,
        "maxCurrent": 16,
        "powerDeliveryState": UNPLUGGED,
        "lastUpdated": "2026-05-28T20:26:40.000000Z",
    }
    assert body["lastSeen"] == charge["lastUpdated"]
    assert body["information"]["brand"] == "Tesla"
    assert body["vendor"] == "TESLA"
    assert body["smartChargingPolicy"] == {
        "deadline": None,
        "isEnabled": False,
        "minimumChargeLimit": 0,
    }
    assert set(body["location"]) == {"id", "latitude", "longitude", "lastUpdated"}
    assert set(body["odometer"]) == {"distance", "lastUpdated"}
    status, legacy = await env.call(f"/status/{env.car}", style="legacy")
    assert status == 200
    assert legacy["batteryLevel"] == 50
    assert legacy["isCharging"] is True
    assert legacy["isPluggedIn"] is True
    assert legacy["chargingState"] == "PLUGGED_IN:CHARGING"
    assert legacy["range"] == legacy["chargeState"]["range"]
    assert "capabilities" not in legacy
    assert legacy["latitude"] == legacy["location"]["latitude"]
    # Legacy status wants Bearer.
    assert (await env.call(f"/status/{env.car}", key="bad", style="legacy"))[0] == 401
    env.sim.vehicle(env.parked).capable["startCharging"] = False
    env.sim.advance(1)
    _, body = await env.call(f"/status/{env.parked}")
    assert body["capabilities"]["startCharging"]["isCapable"] is False


async def test_vehicle_errors(env: Env) -> None:
    """Unknown 404, another user's 403 (free: the handler's messages)."""
    assert await env.call("/status/nope", key=FREE_KEY) == (
        404,
        {"detail": "Vehicle not found"},
    )
    assert await env.call(f"/status/{env.car}", key=FREE_KEY) == (
        403,
        {"detail": "Access denied"},
    )
    # Basic and pro: the limiter looks the vehicle up first.
    assert await env.call(f"/status/{env.freecar}") == (
        404,
        {"detail": "Vehicle not found or does not belong to user."},
    )
    env.sim.counted_paths = set()
    assert await env.call("/status/nope") == (404, {"detail": "Vehicle not found"})
    assert await env.call(f"/status/{env.freecar}") == (
        403,
        {"detail": "Access denied"},
    )
    assert env.sim.counted == []


async def test_free_allowance_per_user(env: Env) -> None:
    """300 calls per free user over all vehicles; then 429; vehicles not counted."""
    second = env.sim.add_vehicle(SimVehicle(env.free.id)).id
    for number in range(300):
        vehicle = env.freecar if number % 2 else second
        assert (await env.call(f"/status/{vehicle}", key=FREE_KEY))[0] == 200
    assert env.sim.calls_used(env.free) == 300
    assert (await env.call("/vehicles", key=FREE_KEY))[0] == 200
    assert await env.call(f"/status/{env.freecar}", key=FREE_KEY) == (
        429,
        {
            "detail": "Rate limit exceeded for free tier. Monthly allowance "
            "(300/300) and purchased tokens (0) are exhausted."
        },
    )
    # Legacy status counts too; failures are not counted.
    assert (await env.call(f"/status/{env.freecar}", key=FREE_KEY, style="legacy"))[
        0
    ] == 429
    assert env.sim.calls_used(env.free.id) == 300
    assert len(env.sim.counted) == 300
    # Purchased tokens come after the allowance.
    env.free.purchased_tokens = 2
    assert (await env.call(f"/status/{env.freecar}", key=FREE_KEY))[0] == 200
    assert env.free.purchased_tokens == 1
    # The window rolls: a call counts until 30 days after it was made.
    env.sim.advance(WINDOW_SECONDS)
    assert env.sim.window_start(env.free) == START
    assert env.sim.calls_used(env.free) == 301
    env.sim.advance(1)
    assert env.sim.calls_used(env.free) == 0
    assert (await env.call(f"/status/{env.freecar}", key=FREE_KEY))[0] == 200


@pytest.mark.parametrize(("tier", "allowed"), [("basic", 2000), ("pro", 10000)])
async def test_paid_allowance_per_vehicle(env: Env, tier: str, allowed: int) -> None:
    """Basic 2000 and pro 10000 per vehicle; another vehicle still has its own."""
    user = env.basic if tier == "basic" else env.pro
    key = BASIC_KEY if tier == "basic" else PRO_KEY
    first = env.basiccar if tier == "basic" else env.car
    second = env.sim.add_vehicle(SimVehicle(user.id)).id
    assert env.sim.allowance(user) == allowed
    # Use the allowance without so many requests: lower it, then check the text.
    env.sim.max_calls[tier] = 3
    for _ in range(3):
        assert (await env.call(f"/status/{first}", key=key))[0] == 200
    status, body = await env.call(f"/status/{first}", key=key)
    assert status == 429
    assert body["detail"] == (
        f"Rate limit exceeded for {tier} tier. Monthly allowance (3/3) and "
        "purchased tokens (0) are exhausted."
    )
    assert env.sim.calls_used(user, first) == 3
    assert (await env.call(f"/status/{second}", key=key))[0] == 200
    assert env.sim.calls_used(user, second) == 1
    assert env.sim.calls_used(user) == 4
    env.sim.max_calls[tier] = allowed
    assert (await env.call(f"/status/{first}", key=key))[0] == 200


async def test_paid_window_follows_the_billing_period(env: Env) -> None:
    """Paid: counted from the period's end - 30 days; it renews; ended, it is free.

    rogasp/evlink-backend @ eb8e5ba, backend/app/api/dependencies.py.
    """
    env.sim.max_calls["pro"] = 2
    assert env.pro.tier_reset_date == START + WINDOW_SECONDS
    for _ in range(2):
        assert (await env.call(f"/status/{env.car}"))[0] == 200
    assert (await env.call(f"/status/{env.car}"))[0] == 429
    # The period renews at its end, and only then the count starts again.
    env.sim.advance(WINDOW_SECONDS - 1)
    assert (await env.call(f"/status/{env.car}"))[0] == 429
    env.sim.advance(1)
    assert env.pro.tier_reset_date == START + 2 * WINDOW_SECONDS
    assert env.sim.window_start(env.pro) == START + WINDOW_SECONDS
    assert env.sim.calls_used(env.pro, env.car) == 0
    assert (await env.call(f"/status/{env.car}"))[0] == 200
    # A period that ended unrenewed: the free tier's rolling window, per user.
    env.pro.renews = False
    env.sim.advance(WINDOW_SECONDS)
    assert not env.sim.paid(env.pro)
    assert env.sim.allowance(env.pro) == 300
    assert env.sim.window_start(env.pro) == env.sim.now - WINDOW_SECONDS
    assert (await env.call(f"/status/{env.parked}"))[0] == 200
    assert env.sim.calls_used(env.pro, env.parked) == env.sim.calls_used(env.pro) == 2
    assert (await env.call("/me"))[1]["tier"] == "pro"


async def test_linked_vehicle_limit(env: Env) -> None:
    """Basic allows two linked vehicles, pro five."""
    env.sim.add_vehicle(SimVehicle(env.basic.id))
    env.sim.add_vehicle(SimVehicle(env.basic.id))
    assert await env.call(f"/status/{env.basiccar}", key=BASIC_KEY) == (
        403,
        {"detail": "Basic tier allows max 2 linked vehicles. You have 3."},
    )


async def test_counted_paths(env: Env) -> None:
    """`counted_paths` may include vehicles."""
    env.sim.counted_paths = {"vehicles", "status"}
    env.sim.max_calls["free"] = 2
    assert (await env.call("/vehicles", key=FREE_KEY))[0] == 200
    assert (await env.call("/me", key=FREE_KEY))[0] == 200
    assert (await env.call(f"/status/{env.freecar}", key=FREE_KEY))[0] == 200
    assert (await env.call("/vehicles", key=FREE_KEY))[0] == 429
    assert env.sim.counted == [
        ("GET", "/api/v1/ha/vehicles"),
        ("GET", f"/api/v1/ha/status/{env.freecar}"),
    ]
    # A pro user's vehicle list is counted against the user.
    assert (await env.call("/vehicles"))[0] == 200
    assert env.sim.calls_used(env.pro) == 1


async def test_charging_story(env: Env) -> None:
    """STOP then START take effect after the delay; charging ends COMPLETE."""
    sim = env.sim
    vehicle = sim.vehicle(env.car)
    status, body = await env.charge(env.car, "STOP")
    assert status == 200
    assert body["status"] == "success"
    assert body["vehicle_id"] == env.car
    assert body["enode_vehicle_id"] == vehicle.enode_id
    assert body["action"] == "STOP"
    assert body["enode_response"]["state"] == "PENDING"
    assert body["enode_response"]["targetId"] == vehicle.enode_id
    assert body["enode_response"]["kind"] == "STOP"
    # Same action again: the pending one is reused.
    again = await env.charge(env.car, "STOP")
    assert again[1]["enode_response"]["id"] == body["enode_response"]["id"]
    assert vehicle.charging
    sim.advance(5)
    assert vehicle.charging
    sim.advance(5)
    assert not vehicle.charging
    assert sim.actions[0].state == "CONFIRMED"
    _, status_body = await env.call(f"/status/{env.car}")
    assert status_body["chargeState"]["powerDeliveryState"] == STOPPED
    assert status_body["chargeState"]["chargeRate"] is None
    assert await env.charge(env.car, "STOP") == (
        400,
        {
            "detail": json.dumps(
                {
                    "type": f"{evlinkha.ENODE_PROBLEMS}bad-request",
                    "title": "Bad Request",
                    "detail": "Vehicle is not charging.",
                }
            )
        },
    )
    assert (await env.charge(env.car, "START"))[0] == 200
    sim.advance(10)
    assert vehicle.charging
    assert (await env.charge(env.car, "START"))[0] == 400
    level = vehicle.battery_level
    sim.advance(600)
    assert vehicle.battery_level > level
    _, charging = await env.call(f"/status/{env.car}")
    charge = charging["chargeState"]
    assert charge["isCharging"] is True
    assert charge["chargeRate"] == 11.0
    assert charge["chargeTimeRemaining"] > 0
    sim.advance(4 * 3600)
    _, done = await env.call(f"/status/{env.car}")
    assert done["chargeState"]["powerDeliveryState"] == COMPLETE
    assert done["chargeState"]["batteryLevel"] == 80
    assert done["chargeState"]["isFullyCharged"] is True
    assert "fully charged" in (await env.charge(env.car, "START"))[1]["detail"]
    # Counted: each accepted charging call.
    assert env.sim.calls_used(env.pro, env.car) == 6


async def test_charging_rules(env: Env) -> None:
    """Unplugged 400, free 403, bad body 422 (list), smart charging 422 (string)."""
    status, body = await env.charge(env.parked, "START")
    assert status == 400
    assert json.loads(body["detail"])["detail"] == "Vehicle is not plugged in."
    assert await env.charge(env.freecar, "START", key=FREE_KEY) == (
        403,
        {"detail": "This feature is not available for Free users."},
    )
    assert await env.charge(env.car, "GO") == (
        422,
        {
            "detail": [
                {
                    "loc": ["body", "action"],
                    "msg": 'string does not match regex "^(START|STOP)$"',
                    "type": "value_error.str.regex",
                    "ctx": {"pattern": "^(START|STOP)$"},
                }
            ]
        },
    )
    status, body = await env.call(f"/charging/{env.car}", "POST", json={})
    assert status == 422
    assert body["detail"][0]["type"] == "value_error.missing"
    status, body = await env.call(f"/charging/{env.car}", "POST", data=b"{nope")
    assert status == 422
    assert isinstance(body["detail"], list)
    assert await env.charge("nope", "STOP", style="backend") == (
        404,
        {"detail": "Vehicle not found or does not belong to user."},
    )
    env.sim.counted_paths = set()
    assert await env.charge("nope", "STOP") == (404, {"detail": "Vehicle not found"})
    assert await env.charge(env.basiccar, "STOP") == (403, {"detail": "Access denied"})
    env.sim.vehicle(env.car).smart_charging = True
    status, body = await env.charge(env.car, "STOP")
    assert status == 422
    assert isinstance(body["detail"], str)
    assert "smart charging" in body["detail"]
    env.sim.vehicle(env.car).smart_charging = False
    env.sim.charging_fault = True
    assert await env.charge(env.car, "STOP") == (
        502,
        {"detail": "Failed to trigger charging action"},
    )
    # Basic users may charge; a different pending action is cancelled.
    env.sim.charging_fault = False
    env.sim.plug_in(env.basiccar, charge=False)
    assert (await env.charge(env.basiccar, "START", key=BASIC_KEY))[0] == 200
    env.sim.set_charging(env.basiccar, True)
    assert (await env.charge(env.basiccar, "STOP", key=BASIC_KEY))[0] == 200
    assert [a.state for a in env.sim.actions] == ["CANCELLED", "PENDING"]


async def test_silent_vehicle_keeps_its_stamps(env: Env) -> None:
    """lastSeen and lastUpdated move only while the vehicle reports."""
    _, before = await env.call(f"/status/{env.car}")
    env.sim.vehicle(env.car).silent = True
    env.sim.advance(600)
    _, silent = await env.call(f"/status/{env.car}")
    assert silent["lastSeen"] == before["lastSeen"]
    assert silent["chargeState"] == before["chargeState"]
    env.sim.vehicle(env.car).silent = False
    env.sim.advance(1)
    _, after = await env.call(f"/status/{env.car}")
    assert after["lastSeen"] > before["lastSeen"]
    assert after["chargeState"]["batteryLevel"] > before["chargeState"]["batteryLevel"]


class Receiver:
    """A tiny webhook receiver on 127.0.0.1 (Home Assistant's webhook route)."""

    def __init__(self) -> None:
        """Nothing received yet."""
        self.bodies: list[bytes] = []
        self.paths: list[str] = []
        self.content_types: list[str] = []
        self.status = 200
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def _post(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        self.paths.append(request.path)
        self.content_types.append(request.content_type)
        return web.Response(status=self.status)

    async def start(self) -> None:
        """Listen on a free port."""
        app = web.Application()
        app.router.add_post("/api/webhook/{id}", self._post)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        sock = bind("127.0.0.1", 0)
        port = sock.getsockname()[1]
        await web.SockSite(self.runner, sock).start()
        self.base = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Stop listening."""
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def receiver(socket_enabled: None) -> AsyncIterator[Receiver]:
    """A running webhook receiver."""
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


async def test_push_goes_where_the_profile_says(env: Env, receiver: Receiver) -> None:
    """<Webhook URL>/api/webhook/<Webhook ID>, pro only, nothing while one is empty.

    rogasp/evlink-backend @ eb8e5ba, backend/app/api/webhook.py
    (`push_to_homeassistant`).
    """
    assert env.sim.webhook_target(env.pro) is None
    assert await env.sim.push(env.car) is None
    env.pro.ha_external_url = receiver.base + "/"  # the trailing slash is dropped
    assert await env.sim.push(env.car) is None
    env.pro.ha_external_url, env.pro.ha_webhook_id = "", "entry-id"
    assert await env.sim.push(env.car) is None
    env.pro.ha_external_url = receiver.base + "/"
    assert env.sim.webhook_target(env.pro) == f"{receiver.base}/api/webhook/entry-id"
    # Below pro nothing is sent, whatever the profile says.
    env.basic.ha_external_url, env.basic.ha_webhook_id = receiver.base, "basic-id"
    assert env.sim.webhook_target(env.basic) is None
    assert await env.sim.push(env.basiccar) is None
    assert await env.sim.push_raw(env.basic, {"event": "x"}) is None
    assert receiver.bodies == []
    assert env.sim.pushes == []

    assert await env.sim.push(env.car) == 200
    assert receiver.paths == ["/api/webhook/entry-id"]
    assert receiver.content_types == ["application/json"]
    payload = json.loads(receiver.bodies[-1])
    vehicle = env.sim.vehicle(env.car)
    assert payload["event"] == "user:vehicle:updated"
    assert payload["user"] == {"id": env.pro.id}
    assert payload["vehicle"]["id"] == vehicle.enode_id
    assert payload["vehicle"]["userId"] == env.pro.id
    assert "vehicleId" not in payload["vehicle"]
    _, status = await env.call(f"/status/{env.car}")
    for key in ("chargeState", "information", "location", "capabilities"):
        assert payload["vehicle"][key] == status[key], key


async def test_push(env: Env, receiver: Receiver) -> None:
    """Statuses, raw bodies and automatic pushes."""
    env.pro.ha_external_url, env.pro.ha_webhook_id = receiver.base, "entry-id"
    receiver.status = 404
    assert await env.sim.push(env.car) == 404
    assert await env.sim.push_raw(env.pro, b"not json", "text/plain") == 404
    assert receiver.bodies[-1] == b"not json"
    assert await env.sim.push_raw(env.pro, {"event": "user:vehicle:updated"}) == 404
    assert json.loads(receiver.bodies[-1]) == {"event": "user:vehicle:updated"}
    receiver.status = 200
    # Automatic: a change pushes, a silent or unchanged vehicle does not.
    env.sim.push_automatically = True
    count = len(receiver.bodies)
    env.sim.vehicle(env.parked).silent = True
    env.sim.advance(60)  # the charging car changes; the parked one is unchanged
    await env.sim.flush_pushes()
    assert len(receiver.bodies) == count + 1
    enode_id = env.sim.vehicle(env.car).enode_id
    assert json.loads(receiver.bodies[-1])["vehicle"]["id"] == enode_id
    env.sim.unplug(env.car)
    await env.sim.flush_pushes()
    last = json.loads(receiver.bodies[-1])["vehicle"]
    assert last["chargeState"]["powerDeliveryState"] == UNPLUGGED
    assert (env.car, 200) in env.sim.pushes
    # Nobody listening: no status.
    await receiver.stop()
    assert await env.sim.push(env.car) is None


async def test_faults(env: Env) -> None:
    """500 HTML, 502 detail, malformed JSON and slow answers; none counted."""
    env.sim.fault = EvLinkFault.SERVER_ERROR
    status, body = await env.call(f"/status/{env.car}")
    assert status == 500
    assert "<html" in body
    env.sim.fault = EvLinkFault.BAD_GATEWAY
    assert await env.call(f"/status/{env.car}") == (
        502,
        {"detail": "Error fetching vehicle data"},
    )
    env.sim.fault = EvLinkFault.MALFORMED
    async with env.client.get(
        f"{env.sim.hosted_url}/me", headers={"X-API-Key": PRO_KEY}
    ) as response:
        assert response.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(await response.text())
    env.sim.fault = EvLinkFault.SLOW
    env.sim.slow_seconds = 0.2
    start = time.monotonic()
    assert (await env.call("/me"))[0] == 200
    assert time.monotonic() - start >= 0.2
    assert env.sim.counted == []
    assert len(env.sim.requests) == 4


async def test_stop_ends_slow_answers(env: Env) -> None:
    """stop() drops a pending slow answer instead of waiting for it."""
    env.sim.fault = EvLinkFault.SLOW
    pending = asyncio.create_task(env.call("/me"))
    await asyncio.sleep(0.1)
    start = time.monotonic()
    await env.sim.stop()
    assert time.monotonic() - start < 5
    with pytest.raises(aiohttp.ClientError):
        await pending


def test_validation() -> None:
    """Unknown owners, tiers and duplicates are refused; time never runs backwards."""
    sim = EvLinkSimulator()
    with pytest.raises(ValueError, match="unknown user"):
        sim.add_vehicle(SimVehicle("nobody"))
    with pytest.raises(ValueError, match="unknown tier"):
        sim.add_user(tier="gold")
    user = sim.add_user(api_key="same")
    with pytest.raises(ValueError, match="duplicate API key"):
        sim.add_user("other@example.com", api_key="same")
    vehicle = sim.add_vehicle(SimVehicle(user.id))
    assert vehicle.id != vehicle.enode_id
    with pytest.raises(ValueError, match="duplicate"):
        sim.add_vehicle(SimVehicle(user.id, id=vehicle.id))
    with pytest.raises(ValueError, match="forward"):
        sim.advance(-1)
    sim.remove_vehicle(vehicle.id)
    assert sim.vehicles == []


async def test_runner(socket_enabled: None, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo prints its settings; its key reads both vehicles."""
    demo = load_demo("evlinkha")
    assert demo.menu_path == ("evlinkha",)
    assert demo.identifier == "email"
    stop = asyncio.Event()
    args = argparse.Namespace(host="127.0.0.1", port=0, local_port=0)
    task = asyncio.create_task(evlinkha.DEMO.run(args, stop))
    output = ""
    for _ in range(100):
        await asyncio.sleep(0.05)
        output += capsys.readouterr().out
        if "vehicles=" in output:
            break
    settings = dict(
        line.split("=", 1) for line in output.splitlines() if " " not in line
    )
    assert settings["provider"] == "evlinkha"
    assert settings["api_url"] == f"{settings['server_url']}/api/v1/ha"
    step_id, form = demo.forms[0]
    assert step_id == "evlinkha"
    assert form(settings) == {
        "api_key": settings["api_key"],
        "advanced": {"server_url": settings["server_url"]},
    }
    async with aiohttp.ClientSession() as client:
        async with client.get(
            f"{settings['api_url']}/vehicles",
            headers={"X-API-Key": settings["api_key"]},
        ) as response:
            assert response.status == 200
            vehicles = await response.json()
        async with client.get(
            f"{settings['api_url']}/me", headers={"X-API-Key": settings["api_key"]}
        ) as response:
            me = await response.json()
    assert me["email"] == settings["email"]
    assert me["tier"] == "pro"
    assert [v["vehicleId"] for v in vehicles] == settings["vehicles"].split(",")
    states = [v["chargeState"]["powerDeliveryState"] for v in vehicles]
    assert states == ["PLUGGED_IN:CHARGING", "UNPLUGGED"]
    stop.set()
    await asyncio.wait_for(task, 5)
