"""What every simulator needs: a server on a port, and a way to drop a connection."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Self

from aiohttp import web

_LOGGER = logging.getLogger(__name__)
SHUTDOWN_TIMEOUT = 2.0  # seconds a stopping server waits for open answers
# Every credential a simulator registered or handed out (passwords, API keys,
# session ids, access and refresh tokens, authorization codes): the tests'
# secret guard (tests/secret_guard.py) treats each as a secret, and empties this
# before each test.
ISSUED: set[str] = set()


def issued(secret: str) -> str:
    """Record a credential the simulator knows or hands out; return it."""
    ISSUED.add(secret)
    return secret


def bind(host: str, port: int) -> socket.socket:
    """Bind and listen now, so the address is known before the site is served."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Connections made before the site starts wait in the backlog.
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def close_connection(request: web.Request) -> web.Response:
    """Drop the connection; aiohttp then skips writing the returned response."""
    if request.transport is not None:
        request.transport.close()
    return web.Response(status=503)


class SimServer:
    """One aiohttp server on `host`: every request goes to `_handle`.

    `start()` serves on a port (0: a free one), `stop()` ends it and every answer
    that still waits in `_sleep`.
    """

    label = "simulator"  # for the log line that says where it listens

    def __init__(self, host: str) -> None:
        """Prepare; nothing listens until `start()`."""
        self._host = host
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._stopping = asyncio.Event()

    async def __aenter__(self) -> Self:
        """Start on a free port."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop serving."""
        await self.stop()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request."""
        raise NotImplementedError

    async def start(self, port: int = 0) -> None:
        """Serve on `port` (0: a free port)."""
        if self._runner is not None:
            raise RuntimeError("simulator already running")
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # No access log: request lines carry credentials and codes. Handlers are
        # cancelled when the client gives up.
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handler_cancellation=True,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
        )
        try:
            await self._runner.setup()
            sock = bind(self._host, port)
            self._port = sock.getsockname()[1]
            await web.SockSite(self._runner, sock).start()
        except BaseException:
            await self.stop()
            raise
        _LOGGER.debug("%s listening on %s", self.label, self.url)

    async def stop(self) -> None:
        """Stop serving; answers that still wait end without a response."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._port = None

    @property
    def url(self) -> str:
        """The server root, e.g. `http://127.0.0.1:40123`."""
        if self._port is None:
            raise RuntimeError("simulator not running")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    async def _sleep(self, seconds: float) -> bool:
        """Wait `seconds` (real time); False when the server stops meanwhile."""
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            return True
        return False
