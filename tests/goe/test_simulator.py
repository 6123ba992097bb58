"""Self-test of the go-e simulator, over real HTTP on 127.0.0.1."""

from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
import json
import time
from typing import Any

import aiohttp
import pytest

from tests.simulators.common import HttpFault
from tests.simulators.goe import HOME_ONLY_KEYS, GoeFault, GoeSimulator, SimCharger

HOME_SERIAL = "012345"
HOME_TOKEN = "token-home"
CORE_SERIAL = "000042"
CORE_TOKEN = "token-core"


@pytest.fixture
async def sim(socket_enabled: None) -> AsyncIterator[GoeSimulator]:
    """A running simulator with one HOME and one CORE charger."""
    simulator = GoeSimulator(
        [
            SimCharger(serial=HOME_SERIAL, token=HOME_TOKEN),
            SimCharger(serial=CORE_SERIAL, token=CORE_TOKEN, model="CORE", variant=22),
        ]
    )
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp client session."""
    async with aiohttp.ClientSession() as client:
        yield client


async def _get(
    session: aiohttp.ClientSession,
    url: str,
    params: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], str]:
    async with session.get(url, params=params, headers=headers) as response:
        return response.status, dict(response.headers), await response.text()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _cloud_status(
    sim: GoeSimulator, session: aiohttp.ClientSession, **params: str
) -> tuple[int, dict[str, str], Any]:
    status, headers, text = await _get(
        session, f"{sim.cloud_url}/api/status", params, _bearer(HOME_TOKEN)
    )
    return status, headers, json.loads(text)


async def test_cloud_status_auth_filter_and_last_modified(
    sim: GoeSimulator, session: aiohttp.ClientSession
) -> None:
    """Both auth styles work; the filter selects keys; the request is recorded."""
    url = f"{sim.cloud_url}/api/status"
    status, headers, text = await _get(
        session, url, {"filter": "car,amp,nope"}, _bearer(HOME_TOKEN)
    )
    assert status == 200
    assert json.loads(text) == {"car": 1, "amp": 16}
    modified = parsedate_to_datetime(headers["Last-Modified"]).timestamp()
    assert abs(modified - time.time()) < 2

    status, _, text = await _get(session, url, {"token": HOME_TOKEN, "age": "5"})
    assert status == 200
    full = json.loads(text)
    assert full["sse"] == HOME_SERIAL
    assert full["cbl"] == 32
    assert full["psm"] == 0
    assert sim.charger(HOME_SERIAL).status_requests == [
        {"filter": "car,amp,nope"},
        {"age": "5"},
    ]


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({}, {}),
        ({"token": "wrong"}, {}),
        ({}, {"Authorization": "Bearer wrong"}),
    ],
)
async def test_cloud_rejects_missing_or_unknown_token(
    sim: GoeSimulator,
    session: aiohttp.ClientSession,
    params: dict[str, str],
    headers: dict[str, str],
) -> None:
    """Without a known token the cloud answers 401 on both endpoints."""
    for path in ("/api/status", "/api/set"):
        status, _, text = await _get(session, f"{sim.cloud_url}{path}", params, headers)
        assert status == 401
        assert json.loads(text) == {"success": False, "reason": "invalid token"}


async def test_charging_session(
    sim: GoeSimulator, session: aiohttp.ClientSession
) -> None:
    """Plug in, charge to full, force off, unplug: the status follows."""
    charger = sim.charger(HOME_SERIAL)
    charger.battery_wh_needed = 1000
    charger.plug_in()
    _, _, data = await _cloud_status(sim, session)
    assert data["car"] == 2
    assert data["alw"] is True
    assert data["acu"] == 16
    assert data["modelStatus"] == 15
    assert data["nrg"][4:7] == [16, 16, 16]
    assert data["nrg"][11] == 11040
    assert data["cus"] == 3
    assert data["trx"] == 0

    charger.advance(60)
    _, _, data = await _cloud_status(sim, session)
    assert data["wh"] == pytest.approx(184.0)
    assert data["eto"] == 1_234_567 + 184
    assert data["tpa"] == 11040
    assert data["rbt"] == 3_660_000

    charger.advance(3600)  # more than needed: stops at the battery's need
    _, _, data = await _cloud_status(sim, session)
    assert data["car"] == 4
    assert data["wh"] == pytest.approx(1000)
    assert data["nrg"][11] == 0
    assert data["acu"] is None

    charger.plug_in()  # still connected: the session goes on
    assert charger.status()["wh"] == pytest.approx(1000)
    charger.unplug()
    charger.plug_in()
    assert charger.status()["wh"] == 0

    charger.state["frc"] = 1
    data = charger.status()
    assert (data["car"], data["alw"], data["modelStatus"]) == (3, False, 4)
    charger.unplug()
    data = charger.status()
    assert (data["car"], data["alw"], data["cus"], data["trx"]) == (1, False, 1, None)


async def test_cloud_set(sim: GoeSimulator, session: aiohttp.ClientSession) -> None:
    """202 when any key applies, 422 when none does; values are JSON."""
    charger = sim.charger(HOME_SERIAL)
    params = {
        "token": HOME_TOKEN,
        "amp": "10",
        "fna": '"garage"',
        "frc": "7",
        "car": "1",
        "foo": "1",
        "lmo": "not json",
    }
    status, _, text = await _get(session, f"{sim.cloud_url}/api/set", params)
    assert status == 202
    assert json.loads(text) == {
        "succeeded": [{"amp": 10}, {"fna": "garage"}],
        "failed": [
            {"frc": "value out of range"},
            {"car": "read-only key"},
            {"foo": "unknown key"},
            {"lmo": "invalid JSON"},
        ],
    }
    assert charger.set_log == [{"amp": 10, "fna": "garage"}]
    assert charger.status()["amp"] == 10

    status, _, text = await _get(
        session, f"{sim.cloud_url}/api/set", {"amp": "40"}, _bearer(HOME_TOKEN)
    )
    assert status == 422
    assert json.loads(text) == {
        "succeeded": [],
        "failed": [{"amp": "value out of range"}],
    }
    assert len(charger.set_log) == 1


async def test_limits_follow_variant_and_model(
    sim: GoeSimulator, session: aiohttp.ClientSession
) -> None:
    """`ama` is bounded by the variant; CORE has no `psm`; lowering ama clamps amp."""
    core = sim.charger(CORE_SERIAL)
    assert core.status()["ama"] == 32
    url = f"http://{sim.local_host(CORE_SERIAL)}/api/set"
    status, _, text = await _get(
        session, url, {"ama": "32", "amp": "32", "psm": "1", "bac": "false"}
    )
    assert status == 200
    assert json.loads(text) == {
        "ama": True,
        "amp": True,
        "psm": "unknown key",
        "bac": "unknown key",
    }
    status, _, text = await _get(session, url, {"ama": "10"})
    assert json.loads(text) == {"ama": True}
    assert (core.status()["ama"], core.status()["amp"]) == (10, 10)


async def test_local_status_and_core_filter(
    sim: GoeSimulator, session: aiohttp.ClientSession
) -> None:
    """The local API has no auth; CORE answers 400 with a body for `cbl`.

    Like the PRO of go-eCharger-API-v2 issue #312, it answers the whole status
    with 400 too, and a filter of keys it has with 200.
    """
    home_url = f"http://{sim.local_host(HOME_SERIAL)}/api/status"
    status, _, text = await _get(session, home_url, {"filter": "sse,cbl,psm"})
    assert status == 200
    assert json.loads(text) == {"sse": HOME_SERIAL, "cbl": 32, "psm": 0}
    status, _, text = await _get(session, home_url)
    assert status == 200
    assert json.loads(text).keys() >= HOME_ONLY_KEYS

    core_url = f"http://{sim.local_host(CORE_SERIAL)}/api/status"
    status, _, text = await _get(session, core_url, {"filter": "sse,cbl,var"})
    assert status == 400
    assert json.loads(text) == {"sse": CORE_SERIAL, "var": 22}
    status, _, text = await _get(session, core_url)
    assert status == 400
    assert not HOME_ONLY_KEYS & json.loads(text).keys()
    assert json.loads(text)["sse"] == CORE_SERIAL
    status, _, text = await _get(session, core_url, {"filter": "sse,var"})
    assert status == 200
    core = sim.charger(CORE_SERIAL)
    assert core.status_requests == [
        {"filter": "sse,cbl,var"},
        {},
        {"filter": "sse,var"},
    ]
    assert core.status_codes == [400, 400, 200]


async def test_core_and_pro_on_the_cloud(
    sim: GoeSimulator, session: aiohttp.ClientSession
) -> None:
    """Through the cloud CORE and PRO answer alike: 400 with the keys they have."""
    sim.add_charger(SimCharger(serial="000043", token="token-pro", model="PRO"))
    for token, serial in ((CORE_TOKEN, CORE_SERIAL), ("token-pro", "000043")):
        status, headers, text = await _get(
            session,
            f"{sim.cloud_url}/api/status",
            {"filter": "sse,ust,amp"},
            _bearer(token),
        )
        assert status == 400
        assert json.loads(text) == {"sse": serial, "amp": 16}
        assert "Last-Modified" in headers


async def test_core_has_no_cable_lock_to_set(
    sim: GoeSimulator, session: aiohttp.ClientSession
) -> None:
    """CORE has no `ust` to set; a refused key may be answered with 500.

    With `set_failure_status` 500 the local answer to a refused key is 500 with
    the per-key body.
    """
    core = sim.charger(CORE_SERIAL)
    url = f"{sim.local_url(CORE_SERIAL)}/api/set"
    status, _, text = await _get(session, url, {"ust": "2"})
    assert (status, json.loads(text)) == (200, {"ust": "unknown key"})
    core.set_failure_status = 500
    status, _, text = await _get(session, url, {"ust": "2", "amp": "10"})
    assert (status, json.loads(text)) == (500, {"ust": "unknown key", "amp": True})
    status, _, text = await _get(session, url, {"amp": "12"})
    assert (status, json.loads(text)) == (200, {"amp": True})
    assert core.set_log == [{"amp": 10}, {"amp": 12}]


async def test_local_set_phase_switch(
    sim: GoeSimulator, session: aiohttp.ClientSession
) -> None:
    """`psm=1` charges on one phase; answers are per key."""
    charger = sim.charger(HOME_SERIAL)
    charger.plug_in()
    url = f"http://{sim.local_host(HOME_SERIAL)}/api/set"
    status, _, text = await _get(session, url, {"psm": "1", "amp": "5"})
    assert status == 200
    assert json.loads(text) == {"psm": True, "amp": "value out of range"}
    data = charger.status()
    assert (data["pnp"], data["fsp"]) == (1, True)
    assert data["nrg"][4:12] == [16, 0, 0, 3680, 0, 0, 0, 3680]
    assert data["pha"] == [True, False, False, True, True, True]
    assert charger.set_log == [{"psm": 1}]


async def test_stale(sim: GoeSimulator, session: aiohttp.ClientSession) -> None:
    """Data ages only while STALE; the cloud reports outdated data and refuses sets."""
    charger = sim.charger(HOME_SERIAL)
    charger.fault = GoeFault.STALE
    status, _, _ = await _cloud_status(sim, session)
    assert status == 200
    charger.advance(45.5)
    status, _, data = await _cloud_status(sim, session)
    assert status == 404
    assert data == {"success": False, "reason": "Data is outdated", "age": 45.5}
    status, headers, _ = await _cloud_status(sim, session, age="60")
    assert status == 200
    modified = parsedate_to_datetime(headers["Last-Modified"]).timestamp()
    assert abs(time.time() - 45.5 - modified) < 2
    status, _, text = await _get(
        session, f"{sim.cloud_url}/api/set", {"amp": "8"}, _bearer(HOME_TOKEN)
    )
    assert status == 404
    assert json.loads(text) == {"success": False, "reason": "Charger not online"}
    # The local API still works.
    local = f"http://{sim.local_host(HOME_SERIAL)}/api/status"
    assert (await _get(session, local))[0] == 200

    charger.fault = GoeFault.NONE  # the charger pushes fresh data again
    assert (await _cloud_status(sim, session))[0] == 200


@pytest.mark.parametrize("fault", [GoeFault.OFFLINE, GoeFault.CLOUD_API_DISABLED])
async def test_cloud_forbidden(
    sim: GoeSimulator, session: aiohttp.ClientSession, fault: GoeFault
) -> None:
    """Offline and a disabled cloud API both look like 403 from the cloud."""
    charger = sim.charger(HOME_SERIAL)
    charger.fault = fault
    for path in ("/api/status", "/api/set"):
        status, _, _ = await _get(
            session, f"{sim.cloud_url}{path}", {"amp": "8"}, _bearer(HOME_TOKEN)
        )
        assert status == 403
    assert charger.set_log == []
    local = f"http://{sim.local_host(HOME_SERIAL)}/api/status"
    if fault == GoeFault.OFFLINE:
        with pytest.raises(aiohttp.ClientConnectionError):
            await _get(session, local)
    else:
        assert (await _get(session, local))[0] == 200


@pytest.mark.parametrize("local", [False, True])
async def test_server_error_and_malformed(
    sim: GoeSimulator, session: aiohttp.ClientSession, local: bool
) -> None:
    """502 with HTML, or 200 with a body that is not JSON; nothing is applied."""
    charger = sim.charger(HOME_SERIAL)
    base = f"http://{sim.local_host(HOME_SERIAL)}" if local else sim.cloud_url
    headers = _bearer(HOME_TOKEN)
    charger.fault = GoeFault.SERVER_ERROR
    status, response_headers, text = await _get(
        session, f"{base}/api/status", None, headers
    )
    assert status == 502
    assert response_headers["Content-Type"].startswith("text/html")
    assert "<html>" in text
    charger.fault = GoeFault.MALFORMED
    for path in ("/api/status", "/api/set"):
        status, _, text = await _get(session, f"{base}{path}", {"amp": "8"}, headers)
        assert status == 200
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
    assert charger.set_log == []


async def test_slow(sim: GoeSimulator, session: aiohttp.ClientSession) -> None:
    """SLOW answers late; a client that gives up first changes nothing."""
    charger = sim.charger(HOME_SERIAL)
    charger.fault = GoeFault.SLOW
    charger.slow_seconds = 0.2
    started = time.monotonic()
    status, _, _ = await _cloud_status(sim, session)
    assert status == 200
    assert time.monotonic() - started >= 0.2

    charger.slow_seconds = 30
    url = f"http://{sim.local_host(HOME_SERIAL)}/api/set"
    with pytest.raises(TimeoutError):
        async with session.get(
            url, params={"amp": "8"}, timeout=aiohttp.ClientTimeout(total=0.2)
        ):
            pass
    assert charger.set_log == []


async def test_add_charger_while_running(
    sim: GoeSimulator, session: aiohttp.ClientSession
) -> None:
    """A charger added to a running simulator is reachable at once."""
    added = sim.add_charger(SimCharger(serial="000007", token="token-new"))
    assert sim.charger("000007") is added
    status, _, text = await _get(
        session, f"http://{sim.local_host('000007')}/api/status", {"filter": "sse"}
    )
    assert (status, json.loads(text)) == (200, {"sse": "000007"})
    status, _, text = await _get(
        session,
        f"{sim.cloud_url}/api/status",
        {"token": "token-new", "filter": "sse"},
    )
    assert (status, json.loads(text)) == (200, {"sse": "000007"})


def test_invalid_charger() -> None:
    """Identity and hardware are checked up front."""
    with pytest.raises(ValueError, match="6 digits"):
        SimCharger(serial="12345", token="t")
    with pytest.raises(ValueError, match="variant"):
        SimCharger(serial="123456", token="t", variant=7)
    with pytest.raises(ValueError, match="model"):
        SimCharger(serial="123456", token="t", model="GEMINI")
    with pytest.raises(ValueError, match="set_failure_status"):
        SimCharger(serial="123456", token="t", set_failure_status=404)
    with pytest.raises(ValueError, match="time"):
        SimCharger(serial="123456", token="t").advance(-1)


async def test_http_fault_in_front_of_cloud_and_local(
    sim: GoeSimulator, session: aiohttp.ClientSession
) -> None:
    """An HttpFault answers for the cloud and every charger, or edits their answers."""
    sim.http_fault = HttpFault.answer(503, "<html>maintenance</html>")
    status, _, text = await _get(
        session, f"{sim.cloud_url}/api/status", headers=_bearer(HOME_TOKEN)
    )
    assert (status, text) == (503, "<html>maintenance</html>")
    status, _, _ = await _get(session, f"{sim.local_url(CORE_SERIAL)}/api/status")
    assert status == 503
    assert sim.http_fault.hits == 2
    assert sim.charger(HOME_SERIAL).status_requests == []  # the charger was not asked

    sim.http_fault = HttpFault(
        edit_json=lambda path, value: {**value, "car": "two"},
        edit_headers=lambda path, headers: headers.update({"X-Edited": path}),
    )
    status, headers, body = await _cloud_status(sim, session, filter="car,amp")
    assert status == 200
    assert body == {"car": "two", "amp": 16}
    assert headers["X-Edited"] == "/api/status"
    assert "Last-Modified" in headers

    sim.http_fault = None
    status, _, body = await _cloud_status(sim, session, filter="car")
    assert body == {"car": 1}
