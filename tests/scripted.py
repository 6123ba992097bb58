"""A scripted HTTP server and secret checks that the client tests share.

Registered as a plugin in tests/conftest.py: the fixtures `session` and
`scripted` serve every test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import aiohttp
from aiohttp import web
import pytest


def secret_free(error: BaseException, *secrets: str) -> None:
    """Assert that no secret is in any text, repr or chained exception of `error`."""
    seen: BaseException | None = error
    while seen is not None:
        for secret in secrets:
            assert secret not in str(seen)
            assert secret not in repr(seen)
            assert all(secret not in repr(arg) for arg in seen.args)
        seen = seen.__cause__ or seen.__context__


class Seen:
    """One request the scripted server received."""

    def __init__(self, request: web.Request, body: bytes) -> None:
        """Keep what the tests check; `path` as sent (still percent-encoded)."""
        self.method = request.method
        self.path = request.raw_path.partition("?")[0]
        self.query = dict(request.query)
        self.headers = dict(request.headers)
        self.body = body

    @property
    def form(self) -> dict[str, str]:
        """The body's form fields."""
        return dict(parse_qsl(self.body.decode()))


class Scripted:
    """A local HTTP server that answers each request with the next scripted answer."""

    def __init__(self) -> None:
        """No answers yet; `answers` is filled by the test."""
        self.answers: list[web.StreamResponse] = []
        self.seen: list[Seen] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request, await request.read()))
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
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Close the server."""
        if self._runner is not None:
            await self._runner.cleanup()


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
