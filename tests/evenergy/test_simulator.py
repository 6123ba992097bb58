"""Self-test of the ev.energy simulator, over real HTTP on 127.0.0.1."""

import argparse
import asyncio
import base64
from collections.abc import AsyncIterator
import hashlib
import json
import re
import time
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.simulators import evenergy
from tests.simulators.demo import load_demo
from tests.simulators.evenergy import (
    AC,
    EvEnergyFault,
    EvEnergySimulator,
    SimEvse,
    SimVehicle,
)

CLIENT_ID = "client-id"
CLIENT_SECRET = "client-secret"
ORG_ID = "org-client"
ORG_SECRET = "org-secret"
REDIRECT = "https://my.home-assistant.io/redirect/oauth"
START = 1_780_000_000.0


class Env:
    """A running simulator: alice (two vehicles, one charger), bob (one vehicle)."""

    def __init__(self, sim: EvEnergySimulator, client: aiohttp.ClientSession) -> None:
        """Create the users, clients, vehicles and the charger."""
        self.sim = sim
        self.client = client
        self.alice = sim.add_user("alice@example.com").id
        self.bob = sim.add_user("bob@example.com").id
        sim.add_client(CLIENT_ID, CLIENT_SECRET)
        sim.add_client(ORG_ID, ORG_SECRET, organisation_users=[self.alice])
        self.car = sim.add_vehicle(
            SimVehicle(self.alice, description="Car", soc=50.0)
        ).id
        self.parked = sim.add_vehicle(SimVehicle(self.alice, soc=70.0)).id
        self.bobcar = sim.add_vehicle(SimVehicle(self.bob)).id
        self.evse = sim.add_evse(SimEvse(self.alice, vehicle_id=self.car)).id
        sim.plug_in(self.car)
        self.token = sim.issue_token(CLIENT_ID, self.alice)["access_token"]

    async def call(
        self,
        path: str,
        method: str = "GET",
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
        """Call the API (path under the root or a full URL); (status, body, headers)."""
        url = path if path.startswith("http") else f"{self.sim.url}{path}"
        all_headers = {"Authorization": f"Bearer {token or self.token}"}
        all_headers |= headers or {}
        async with self.client.request(
            method, url, headers=all_headers, **kwargs
        ) as response:
            text = await response.text()
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text
            return response.status, body, response.headers

    async def token_request(
        self, data: dict[str, str], auth: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST /o/token/ with a form (and HTTP Basic headers from `_basic`)."""
        async with self.client.post(
            self.sim.token_url, data=data, headers=auth
        ) as response:
            return response.status, await response.json()


@pytest.fixture
async def env(socket_enabled: None) -> AsyncIterator[Env]:
    """The simulator with its story set up, and a client session."""
    sim = EvEnergySimulator(start_time=START)
    async with aiohttp.ClientSession() as client:
        environment = Env(sim, client)
        await sim.start()
        yield environment
        await sim.stop()


def _basic(client_id: str, secret: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def _links(headers: Any) -> dict[str, str]:
    return {
        rel: url for url, rel in re.findall(r'<([^>]*)>; rel="(\w+)"', headers["Link"])
    }


async def _authorize(env: Env, **params: str) -> URL:
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "state": "xyz",
    } | params
    async with env.client.get(
        env.sim.authorize_url, params=query, allow_redirects=False
    ) as response:
        assert response.status == 302, await response.text()
        return URL(response.headers["Location"])


async def test_code_flow_refresh_rotation_and_revoke(env: Env) -> None:
    """Authorize redirects with a code; it buys a token pair; refresh rotates it."""
    location = await _authorize(env)
    assert str(location.with_query(None)) == REDIRECT
    assert location.query["state"] == "xyz"
    code = location.query["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    status, tokens = await env.token_request(form)
    assert status == 200
    assert set(tokens) == {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "scope",
    }
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 36000
    assert "debug:read" in tokens["scope"].split()
    # Single use.
    assert await env.token_request(form) == (400, {"error": "invalid_grant"})
    status, body, _ = await env.call("/v2/users/", token=tokens["access_token"])
    assert status == 200
    assert [user["id"] for user in body] == [env.alice]
    assert body[0]["email"] == "alice@example.com"

    # Refresh with HTTP Basic: new pair, the old refresh token is dead.
    basic = _basic(CLIENT_ID, CLIENT_SECRET)
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    status, fresh = await env.token_request(refresh, basic)
    assert status == 200
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert await env.token_request(refresh, basic) == (400, {"error": "invalid_grant"})
    assert (await env.call("/v2/users/", token=tokens["access_token"]))[0] == 401
    assert (await env.call("/v2/users/", token=fresh["access_token"]))[0] == 200
    assert env.sim.token_requests == [
        "authorization_code",
        "authorization_code",
        "refresh_token",
        "refresh_token",
    ]

    # Revoked: the API says 401 and the refresh is refused -> reauth.
    env.sim.revoke(env.alice)
    assert (await env.call("/v2/users/", token=fresh["access_token"]))[0] == 401
    refresh["refresh_token"] = fresh["refresh_token"]
    assert await env.token_request(refresh, basic) == (400, {"error": "invalid_grant"})


async def test_code_errors(env: Env) -> None:
    """Wrong secret, wrong redirect, expired code, denial, unknown client."""
    code = (await _authorize(env)).query["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID,
        "client_secret": "wrong",
    }
    assert await env.token_request(form) == (401, {"error": "invalid_client"})
    form["client_secret"] = CLIENT_SECRET
    form["redirect_uri"] = "https://elsewhere.example/cb"
    assert await env.token_request(form) == (400, {"error": "invalid_grant"})
    code = (await _authorize(env)).query["code"]
    env.sim.advance(61)
    form |= {"code": code, "redirect_uri": REDIRECT}
    assert await env.token_request(form) == (400, {"error": "invalid_grant"})
    assert await env.token_request(form | {"grant_type": "password"}) == (
        400,
        {"error": "unsupported_grant_type"},
    )
    env.sim.consent = False
    assert (await _authorize(env)).query["error"] == "access_denied"
    async with env.client.get(
        env.sim.authorize_url,
        params={"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": "x"},
        allow_redirects=False,
    ) as response:
        assert response.status == 400  # never redirected to an unknown URI
    async with env.client.get(
        env.sim.authorize_url,
        params={"response_type": "code", "client_id": "nope"},
        allow_redirects=False,
    ) as response:
        assert response.status == 400


async def test_pkce(env: Env) -> None:
    """A code with an S256 challenge needs the matching verifier."""
    verifier = "v" * 50
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    code = (
        await _authorize(env, code_challenge=challenge, code_challenge_method="S256")
    ).query["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "code_verifier": verifier,
    }
    assert await env.token_request(form | {"code_verifier": "w" * 50}) == (
        400,
        {"error": "invalid_grant"},
    )
    code = (
        await _authorize(env, code_challenge=challenge, code_challenge_method="S256")
    ).query["code"]
    status, _ = await env.token_request(form | {"code": code})
    assert status == 200


async def test_token_lifetime_and_expiry(env: Env) -> None:
    """A short lifetime runs out with the simulated clock; 401 problem+json."""
    env.sim.token_lifetime = 5
    tokens = env.sim.issue_token(CLIENT_ID, env.alice)
    assert tokens["expires_in"] == 5
    assert (await env.call("/v2/vehicles", token=tokens["access_token"]))[0] == 200
    env.sim.advance(5)
    status, body, headers = await env.call("/v2/vehicles", token=tokens["access_token"])
    assert status == 401
    assert headers["Content-Type"] == "application/problem+json"
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    env.sim.expire_tokens()
    assert (await env.call("/v2/vehicles"))[0] == 401
    async with env.client.get(f"{env.sim.url}/v2/vehicles") as response:
        assert response.status == 401
        assert (await response.json())["detail"] == (
            "Authentication credentials were not provided."
        )


async def test_client_credentials_and_user_header(env: Env) -> None:
    """An organisation token needs EvEnergy-User on user endpoints."""
    basic = _basic(ORG_ID, ORG_SECRET)
    status, tokens = await env.token_request(
        {"grant_type": "client_credentials"}, basic
    )
    assert status == 200
    assert "refresh_token" not in tokens
    org = tokens["access_token"]
    # Not an organisation client.
    assert await env.token_request(
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
    ) == (400, {"error": "unauthorized_client"})
    status, body, _ = await env.call("/v2/users/", token=org)
    assert (status, [user["id"] for user in body]) == (200, [env.alice])
    status, body, headers = await env.call("/v2/vehicles", token=org)
    assert status == 400
    assert headers["Content-Type"] == "application/problem+json"
    assert "EvEnergy-User" in body["detail"]
    status, body, _ = await env.call(
        "/v2/vehicles", token=org, headers={"EvEnergy-User": env.alice}
    )
    assert (status, [v["id"] for v in body]) == (200, [env.car, env.parked])
    status, _, _ = await env.call(
        "/v2/vehicles", token=org, headers={"EvEnergy-User": env.bob}
    )
    assert status == 400
    # One bucket for the organisation, whatever the user.
    assert env.sim.rate_limit_remaining(ORG_ID, None) == 1000 - 4


async def test_user_header_by_id_or_url(env: Env) -> None:
    """EvEnergy-User: the user's id or URL; anything else a 400 problem."""
    _, tokens = await env.token_request(
        {"grant_type": "client_credentials"}, _basic(ORG_ID, ORG_SECRET)
    )
    org = tokens["access_token"]
    user_url = f"{env.sim.api_url}/users/{env.alice}"
    for named in (env.alice, user_url, f"{user_url}/"):
        status, body, _ = await env.call(
            "/v2/vehicles", token=org, headers={"EvEnergy-User": named}
        )
        assert (status, [v["id"] for v in body]) == (200, [env.car, env.parked])
    status, body, _ = await env.call(
        "/v2/users/", token=org, headers={"EvEnergy-User": user_url}
    )
    assert (status, [user["url"] for user in body]) == (200, [user_url])
    refused = (
        env.bob,  # not of the organisation
        f"{env.sim.api_url}/users/{env.bob}",
        "alice",
        f"{env.sim.api_url}/vehicles/{env.car}",
        f"https://elsewhere.example/v2/users/{env.alice}x",
    )
    for named in refused:
        status, body, headers = await env.call(
            "/v2/vehicles", token=org, headers={"EvEnergy-User": named}
        )
        assert status == 400
        assert headers["Content-Type"] == "application/problem+json"
        assert body == {
            "status": 400,
            "title": "Invalid EvEnergy-User header",
            "detail": "The EvEnergy-User header does not name a user of your "
            "organisation.",
        }
    assert env.sim.user_headers == [
        env.alice,
        user_url,
        f"{user_url}/",
        user_url,
        *refused,
    ]


async def test_vehicles_pagination_and_expand(env: Env) -> None:
    """Follow `Link` to the end; about:blank marks no previous / no next."""
    for index in range(4):
        env.sim.add_vehicle(SimVehicle(env.alice, description=f"Extra {index}"))
    status, page, headers = await env.call("/v2/vehicles?page_size=4")
    assert status == 200
    assert isinstance(page, list)
    assert len(page) == 4
    links = _links(headers)
    assert links["previous"] == "about:blank"
    seen = [vehicle["id"] for vehicle in page]
    while links["next"] != "about:blank":
        status, page, headers = await env.call(links["next"])
        assert status == 200
        seen += [vehicle["id"] for vehicle in page]
        links = _links(headers)
        assert links["previous"] != "about:blank"
    assert len(seen) == 6
    assert seen == sorted(seen)
    assert env.bobcar not in seen
    for bad in ("0", "101", "x"):
        status, body, _ = await env.call(f"/v2/vehicles?page_size={bad}")
        assert status == 400
        assert body["type"] == (
            "https://api.ev.energy/v2/problems/pagination-parameters/"
        )
        assert body["detail"] == ("Invalid value for pagination parameter: page_size")

    # Without expand the status log is a URL; with it, inline.
    vehicle = (await env.call(f"/v2/vehicles/{env.car}"))[1]
    assert isinstance(vehicle["latest_status_log"], str)
    assert vehicle["integrated"] == "ACTIVE"
    vehicle = (await env.call(f"/v2/vehicles/{env.car}?expand=latest_status_log"))[1]
    log = vehicle["latest_status_log"]
    assert log["state"] == "PLUGGED_IN_CHARGING"
    assert log["current_type"] == AC
    assert log["is_plugged_in"] is True
    assert (await env.call(f"/v2/vehicles/{env.bobcar}"))[0] == 404


async def test_charging_story_and_silence(env: Env) -> None:
    """SoC rises to the limit; a silent vehicle's sampled_at stops moving."""
    car = env.sim.vehicle(env.car)
    car.battery_size_watt_hours = 10000
    car.charge_power_watts = 6000
    env.sim.advance(600)  # 1 kWh = 10 %
    status, body, _ = await env.call(f"/v2/vehicles/{env.car}/status_logs")
    assert status == 200
    latest = body[0]
    assert latest["state_of_charge_percentage"] == 60
    assert latest["charge_energy_added_watt_hours"] == 1000
    assert latest["charge_rate_watts"] == 6000
    assert latest["minutes_to_full_charge"] == 20
    env.sim.advance(3600)
    log = (await env.call(f"/v2/vehicles/{env.car}/status_logs"))[1][0]
    assert log["state"] == "PLUGGED_IN_COMPLETE"
    assert log["state_of_charge_percentage"] == 80
    assert log["is_charging"] is False
    # Newest first; filters.
    times = [entry["sampled_at"] for entry in body]
    assert times == sorted(times, reverse=True)
    since = evenergy.iso(START + 600)
    body = (
        await env.call(f"/v2/vehicles/{env.car}/status_logs?sampled_at__gte={since}")
    )[1]
    assert [entry["sampled_at"] for entry in body] == [
        evenergy.iso(START + 4200),
        since,
    ]
    # Silent: sampled_at of the parked car stays.
    env.sim.vehicle(env.parked).silent = True
    before = (await env.call(f"/v2/vehicles/{env.parked}?expand=latest_status_log"))[1]
    env.sim.advance(900)
    after = (await env.call(f"/v2/vehicles/{env.parked}?expand=latest_status_log"))[1]
    assert (
        after["latest_status_log"]["sampled_at"]
        == before["latest_status_log"]["sampled_at"]
    )
    body = (await env.call(f"/v2/vehicles/{env.parked}/location_logs"))[1]
    assert set(body[0]) == {"url", "vehicle", "sampled_at", "logged_at", "at_home"}
    assert body[0]["at_home"] is True
    # The charger metered the energy.
    evse = (await env.call("/v2/evses?expand=latest_status_log"))[1][0]
    assert evse["id"] == env.evse
    log = evse["latest_status_log"]
    assert log["meter_reading_watt_hours"] == 1_250_000 + 3000
    assert log["is_plugged_in"] is True
    assert log["mode"] == "Idle"  # complete
    env.sim.vehicle(env.car).maximum_charge_limit_percentage = 100
    env.sim.advance(60)
    log = (await env.call(f"/v2/evses/{env.evse}/status_logs?page_size=1"))[1][0]
    assert (log["mode"], log["is_charging"], log["charge_rate_watts"]) == (
        "Charge",
        True,
        6000,
    )


async def test_patch_validation(env: Env) -> None:
    """Only a bool and an int 50..100; field_errors otherwise."""
    status, body, headers = await env.call(
        f"/v2/vehicles/{env.car}",
        "PATCH",
        json={"smart_charging_enabled": "yes", "maximum_charge_limit_percentage": 101},
    )
    assert status == 400
    assert headers["Content-Type"] == "application/problem+json"
    assert set(body["field_errors"]) == {
        "smart_charging_enabled",
        "maximum_charge_limit_percentage",
    }
    for bad in (49, 80.5, True, "80"):
        status, body, _ = await env.call(
            f"/v2/vehicles/{env.car}",
            "PATCH",
            json={"maximum_charge_limit_percentage": bad},
        )
        assert status == 400, bad
    status, body, _ = await env.call(
        f"/v2/vehicles/{env.car}",
        "PATCH",
        json={"smart_charging_enabled": False, "maximum_charge_limit_percentage": 90},
    )
    assert status == 200
    assert (
        body["smart_charging_enabled"],
        body["maximum_charge_limit_percentage"],
    ) == (
        False,
        90,
    )
    status, _, _ = await env.call(f"/v2/vehicles/{env.car}", "PATCH", data="not json")
    assert status == 400


async def test_boost_rules(env: Env) -> None:
    """409 unless an in-progress SMART sub-session; 503 when unreachable."""
    status, sessions, _ = await env.call(
        f"/v2/charging_sessions?vehicle_id={env.car}&is_finished=false"
    )
    assert status == 200
    assert len(sessions) == 1
    session = sessions[0]
    assert session["end"] is None
    assert session["sub_sessions"][0]["mode"] == "SMART"
    boost = f"/v2/charging_sessions/{session['id']}/boost_start"
    end = f"/v2/charging_sessions/{session['id']}/boost_end"
    status, body, _ = await env.call(end, "POST")
    assert status == 409
    assert body["status"] == 409

    env.sim.vehicle(env.car).unreachable = True
    status, body, headers = await env.call(boost, "POST")
    assert status == 503
    assert headers["Content-Type"] == "application/problem+json"
    assert body["detail"] == (
        "The command could not be delivered to the vehicle or charger."
    )
    env.sim.vehicle(env.car).unreachable = False
    status, body, _ = await env.call(boost, "POST")
    assert status == 200
    assert [sub["mode"] for sub in body["sub_sessions"]] == ["BOOST", "SMART"]
    assert (await env.call(boost, "POST"))[0] == 409  # already boosting
    commands = (await env.call(f"/v2/vehicles/{env.car}/command_logs"))[1]
    assert [entry["command"] for entry in commands] == ["START_CHARGE"]
    status, body, _ = await env.call(end, "POST")
    assert status == 200
    assert [sub["mode"] for sub in body["sub_sessions"]] == ["SMART", "BOOST", "SMART"]
    commands = (await env.call(f"/v2/vehicles/{env.car}/command_logs"))[1]
    assert [entry["command"] for entry in commands] == ["STOP_CHARGE", "START_CHARGE"]
    since = commands[0]["logged_at"]
    filtered = (
        await env.call(
            f"/v2/vehicles/{env.car}/command_logs", params={"logged_at__gte": since}
        )
    )[1]
    assert [entry["command"] for entry in filtered] == ["STOP_CHARGE"]

    # Smart charging off: 409.
    await env.call(
        f"/v2/vehicles/{env.car}", "PATCH", json={"smart_charging_enabled": False}
    )
    status, body, _ = await env.call(boost, "POST")
    assert status == 409
    assert "Smart charging" in body["detail"]
    # Unplugged: the session is finished and no longer listed as current.
    env.sim.unplug(env.car)
    sessions = (
        await env.call(f"/v2/charging_sessions?vehicle_id={env.car}&is_finished=false")
    )[1]
    assert sessions == []
    sessions = (await env.call("/v2/charging_sessions?is_finished=true"))[1]
    assert sessions[0]["end"] is not None
    assert (await env.call("/v2/charging_sessions?is_finished=maybe"))[0] == 400


async def test_rate_limit(env: Env) -> None:
    """Headers on every answer; 429 problem+json with retry-after beyond it."""
    env.sim.hourly_limit = 3
    remaining = []
    for _ in range(3):
        status, _, headers = await env.call("/v2/vehicles")
        assert status == 200
        assert headers["x-ratelimit-limit"] == "3"
        assert headers["EvEnergy-Version"] == "2"
        remaining.append(headers["x-ratelimit-remaining"])
    assert remaining == ["2", "1", "0"]
    env.sim.advance(600)
    status, body, headers = await env.call("/v2/vehicles")
    assert status == 429
    assert body == {
        "type": "https://api.ev.energy/v2/problems/rate-limit-exceeded/",
        "status": 429,
        "title": "Too many requests",
        "detail": "Request was rate limited. Try again in 3000 seconds",
    }
    assert headers["retry-after"] == "3000"
    # Another user of the same client has its own bucket.
    other = env.sim.issue_token(CLIENT_ID, env.bob)["access_token"]
    assert (await env.call("/v2/vehicles", token=other))[0] == 200
    env.sim.retry_after_header = "RetryAfter"
    _, _, headers = await env.call("/v2/vehicles")
    assert headers["RetryAfter"] == "3000"
    assert "retry-after" not in headers
    env.sim.advance(3000)
    assert (await env.call("/v2/vehicles"))[0] == 200
    assert env.sim.requests.count(("GET", "/v2/vehicles")) == 7


async def test_version_and_errors(env: Env) -> None:
    """EvEnergy-Version 2 only; 404 and 405 are problems too."""
    status, _, headers = await env.call(
        "/v2/vehicles", headers={"EvEnergy-Version": "2"}
    )
    assert (status, headers["EvEnergy-Version"]) == (200, "2")
    status, body, _ = await env.call("/v2/vehicles", headers={"EvEnergy-Version": "3"})
    assert status == 400
    assert body["title"] == "Unsupported version"
    status, body, _ = await env.call("/v2/nothing")
    assert (status, body["detail"]) == (
        404,
        "Resource does not exist or cannot be accessed.",
    )
    status, body, headers = await env.call("/v2/vehicles", "DELETE")
    assert status == 405
    assert headers["Allow"] == "GET"


async def test_missing_debug_scope(env: Env) -> None:
    """Without debug:read the command logs answer 403."""
    env.sim.clients[CLIENT_ID].scopes.discard("debug:read")
    status, body, headers = await env.call(f"/v2/vehicles/{env.car}/command_logs")
    assert status == 403
    assert headers["Content-Type"] == "application/problem+json"
    assert body["detail"] == "You do not have permission to perform this action."
    assert (await env.call(f"/v2/vehicles/{env.car}/status_logs"))[0] == 200
    location = await _authorize(env)
    status, tokens = await env.token_request(
        {
            "grant_type": "authorization_code",
            "code": location.query["code"],
            "redirect_uri": REDIRECT,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        }
    )
    assert status == 200
    assert "debug:read" not in tokens["scope"].split()


async def test_faults(env: Env) -> None:
    """HTML error pages, malformed JSON and slow answers."""
    for fault, code in (
        (EvEnergyFault.SERVER_ERROR, 500),
        (EvEnergyFault.BAD_GATEWAY, 502),
        (EvEnergyFault.UNAVAILABLE, 503),
    ):
        env.sim.fault = fault
        status, body, headers = await env.call("/v2/vehicles")
        assert status == code
        assert headers["Content-Type"].startswith("text/html")
        assert "<html" in body
    env.sim.fault = EvEnergyFault.MALFORMED
    async with env.client.get(
        f"{env.sim.url}/v2/vehicles",
        headers={"Authorization": f"Bearer {env.token}"},
    ) as response:
        assert response.status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(await response.text())
    env.sim.fault = EvEnergyFault.SLOW
    env.sim.slow_seconds = 0.2
    start = time.monotonic()
    assert (await env.call("/v2/vehicles"))[0] == 200
    assert time.monotonic() - start >= 0.2
    env.sim.fault = EvEnergyFault.NONE
    env.sim.token_fault = EvEnergyFault.SERVER_ERROR
    async with env.client.post(
        env.sim.token_url, data={"grant_type": "client_credentials"}
    ) as response:
        assert response.status == 500


async def test_stop_ends_slow_answers(env: Env) -> None:
    """stop() drops a pending slow answer instead of waiting for it."""
    env.sim.fault = EvEnergyFault.SLOW
    pending = asyncio.create_task(env.call("/v2/vehicles"))
    await asyncio.sleep(0.1)
    start = time.monotonic()
    await env.sim.stop()
    assert time.monotonic() - start < 5
    with pytest.raises(aiohttp.ClientError):
        await pending


def test_validation() -> None:
    """Unknown owners and duplicates are refused; time never runs backwards."""
    sim = EvEnergySimulator()
    with pytest.raises(ValueError, match="unknown user"):
        sim.add_vehicle(SimVehicle("user-nobody"))
    user = sim.add_user()
    vehicle = sim.add_vehicle(SimVehicle(user.id))
    assert re.fullmatch(r"vhcl[A-Z\d]{26}", vehicle.id)
    assert re.fullmatch(r"user[A-Z\d]{26}", user.id)
    with pytest.raises(ValueError, match="duplicate"):
        sim.add_vehicle(SimVehicle(user.id, id=vehicle.id))
    with pytest.raises(ValueError, match="forward"):
        sim.advance(-1)


async def test_runner(socket_enabled: None, capsys: pytest.CaptureFixture[str]) -> None:
    """The demo prints its settings; its client signs the user in (OAuth).

    Its DEMO is the OAuth path: the client as an application credential, the form
    with the service address, then the sign-in in the browser. The same client
    also works with client credentials (as an organisation).
    """
    demo = load_demo("evenergy")
    assert demo.menu_path == ("evenergy", "evenergy_oauth")
    assert [step_id for step_id, _ in demo.forms] == ["evenergy_oauth"]
    assert demo.application_credential == ("client_id", "client_secret")
    assert demo.external
    assert demo.identifier == "email"
    stop = asyncio.Event()
    args = argparse.Namespace(host="127.0.0.1", port=0, local_port=0)
    task = asyncio.create_task(evenergy.DEMO.run(args, stop))
    output = ""
    for _ in range(100):
        await asyncio.sleep(0.05)
        output += capsys.readouterr().out
        if "evses=" in output:
            break
    settings = dict(
        line.split("=", 1) for line in output.splitlines() if " " not in line
    )
    assert settings["provider"] == "evenergy"
    assert len(settings["vehicles"].split(",")) == 2
    form = demo.forms[0][1](settings)
    assert form == {"advanced": {"base_url": settings["base_url"]}}
    assert settings["email"] == "demo@example.com"
    async with aiohttp.ClientSession() as client:
        # The browser's sign-in: the simulated user consents at once and is sent
        # back to whatever redirect URI the flow names, with a code for the token.
        redirect_uri = "http://127.0.0.1:8123/auth/external/callback"
        async with client.get(
            settings["authorize_url"],
            params={
                "response_type": "code",
                "client_id": settings["client_id"],
                "redirect_uri": redirect_uri,
                "state": "flow-state",
            },
            allow_redirects=False,
        ) as response:
            assert response.status == 302
            location = URL(response.headers["Location"])
        assert str(location.with_query(None)) == redirect_uri
        assert location.query["state"] == "flow-state"
        async with client.post(
            settings["token_url"],
            data={
                "grant_type": "authorization_code",
                "code": location.query["code"],
                "redirect_uri": redirect_uri,
            },
            headers=_basic(settings["client_id"], settings["client_secret"]),
        ) as response:
            assert response.status == 200
            user_token = (await response.json())["access_token"]
        async with client.get(
            f"{settings['base_url']}/v2/users/",
            headers={"Authorization": f"Bearer {user_token}"},
        ) as response:
            assert response.status == 200, await response.text()
            users = await response.json()
        assert [(u["id"], u["email"]) for u in users] == [
            (settings["user_id"], settings["email"])
        ]
        async with client.post(
            settings["token_url"],
            data={"grant_type": "client_credentials"},
            headers=_basic(settings["client_id"], settings["client_secret"]),
        ) as response:
            token = (await response.json())["access_token"]
        async with client.get(
            f"{settings['base_url']}/v2/vehicles",
            params={"expand": "latest_status_log"},
            headers={
                "Authorization": f"Bearer {token}",
                "EvEnergy-User": settings["user_id"],
            },
        ) as response:
            assert response.status == 200
            states = [v["latest_status_log"]["state"] for v in await response.json()]
        async with client.get(
            f"{settings['base_url']}/v2/evses",
            headers={
                "Authorization": f"Bearer {token}",
                "EvEnergy-User": settings["user_id"],
            },
        ) as response:
            assert len(await response.json()) == 1
    assert states == ["PLUGGED_IN_CHARGING", "STATIONARY"]
    stop.set()
    await asyncio.wait_for(task, 5)
