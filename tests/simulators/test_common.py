"""What every simulator shares: HttpFault in front of it, and a restart on its port."""

from collections.abc import AsyncIterator
import json
from typing import Any

import aiohttp
from aiohttp import web
import pytest

from tests.simulators.common import HttpFault, SimServer


class EchoServer(SimServer):
    """Answers every request with its path as JSON (or as text under /text)."""

    label = "echo simulator"

    def __init__(self) -> None:
        """Listen on 127.0.0.1; count what reaches the simulator itself."""
        super().__init__("127.0.0.1")
        self.handled = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.handled += 1
        if request.path.startswith("/text"):
            return web.Response(text="plain")
        if request.path.startswith("/error"):
            return web.json_response({"error": "no"}, status=404)
        return web.json_response(
            {"path": request.path, "time": "2027-01-01T12:00:00Z"},
            headers={"Last-Modified": "Fri, 01 Jan 2027 12:00:00 GMT"},
        )


@pytest.fixture
async def echo(socket_enabled: None) -> AsyncIterator[EchoServer]:
    """A running echo server."""
    server = EchoServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, dict(response.headers), await response.read()


async def test_answer_replaces_the_simulator_on_matching_paths(
    echo: EchoServer,
) -> None:
    """A canned answer (status, body, type, headers) for the paths it names."""
    echo.http_fault = HttpFault.answer(
        429,
        "Too many requests",
        content_type="text/plain",
        headers={"Retry-After": "60"},
        paths=("/api/",),
    )
    status, headers, body = await _get(f"{echo.url}/api/vehicles")
    assert (status, body) == (429, b"Too many requests")
    assert headers["Retry-After"] == "60"
    assert headers["Content-Type"].startswith("text/plain")
    assert echo.handled == 0
    # Another path is not matched: the simulator answers.
    status, _, body = await _get(f"{echo.url}/o/token/")
    assert status == 200
    assert json.loads(body)["path"] == "/o/token/"
    assert (echo.handled, echo.http_fault.hits) == (1, 1)


async def test_edits_change_successful_json_answers_only(echo: EchoServer) -> None:
    """Fields and headers edited, whitespace added; other answers untouched."""

    def edit(path: str, value: Any) -> Any:
        return {**value, "time": None, "path": path.upper()}

    def headers(path: str, found: Any) -> None:
        found["Last-Modified"] = "Sat, 02 Jan 2027 12:00:00 GMT"

    echo.http_fault = HttpFault(edit_json=edit, edit_headers=headers, padding=1000)
    status, found, body = await _get(f"{echo.url}/api/x")
    assert status == 200
    assert json.loads(body) == {"path": "/API/X", "time": None}
    assert body.endswith(b" " * 1000)
    assert found["Last-Modified"] == "Sat, 02 Jan 2027 12:00:00 GMT"
    assert int(found["Content-Length"]) == len(body)
    # Not JSON, or not successful: as the simulator sent it.
    assert (await _get(f"{echo.url}/text"))[2] == b"plain"
    status, _, body = await _get(f"{echo.url}/error")
    assert (status, json.loads(body)) == (404, {"error": "no"})
    assert echo.http_fault.hits == 3

    echo.http_fault = None
    assert json.loads((await _get(f"{echo.url}/api/x"))[2])["path"] == "/api/x"


async def test_restart_on_the_same_port(echo: EchoServer) -> None:
    """Stopped, connections are refused; started on the old port, it answers."""
    url = echo.url
    port = int(url.rsplit(":", 1)[1])
    await echo.stop()
    with pytest.raises(aiohttp.ClientConnectorError):
        await _get(f"{url}/api/x")
    await echo.start(port)
    assert echo.url == url
    assert (await _get(f"{url}/api/x"))[0] == 200
