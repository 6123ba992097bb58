"""What every simulator needs: a server on a port, and a way to drop a connection.

`HttpFault` is a failure that looks the same in front of every service (a proxy's
error page, a rate limiter, a truncated or padded answer, a field another
version of the service names or types differently): set a simulator's
`http_fault` and `fault_middleware` shows it on every request it matches.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
import json
import logging
import socket
from typing import Any, Self

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


type JsonEdit = Callable[[str, Any], Any]
type HeaderEdit = Callable[[str, MutableMapping[str, str]], None]
type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

JSON_TYPES = ("application/json", "application/problem+json")


@dataclass
class HttpFault:
    """How every request whose path starts with one of `paths` (all: empty) fails.

    With `status` set, the simulator is not asked: the answer is `status` with
    `body`, `content_type` and `headers` (a proxy's error page, a rate limiter).
    Without it the simulator answers, and a successful JSON answer is changed:
    `edit_json(path, value)` returns the new value (a field renamed, retyped or
    dropped, times shifted), `edit_headers(path, headers)` changes the headers in
    place, and `padding` bytes of whitespace are added (a huge, still valid body).
    `hits` counts the requests the fault saw.
    """

    status: int | None = None
    body: str = ""
    content_type: str = "text/html"
    headers: Mapping[str, str] = field(default_factory=dict)
    edit_json: JsonEdit | None = None
    edit_headers: HeaderEdit | None = None
    padding: int = 0
    paths: tuple[str, ...] = ()
    hits: int = 0

    @classmethod
    def answer(
        cls,
        status: int,
        body: str = "",
        *,
        content_type: str = "text/html",
        headers: Mapping[str, str] | None = None,
        paths: tuple[str, ...] = (),
    ) -> HttpFault:
        """Answer every matching request with this, instead of the simulator."""
        return cls(
            status=status,
            body=body,
            content_type=content_type,
            headers=dict(headers or {}),
            paths=paths,
        )

    def matches(self, path: str) -> bool:
        """Whether the fault applies to a request for `path`."""
        return not self.paths or path.startswith(self.paths)

    async def apply(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """The answer to `request` while the fault lasts."""
        self.hits += 1
        if self.status is not None:
            return web.Response(
                status=self.status,
                text=self.body,
                content_type=self.content_type,
                headers=self.headers,
            )
        response = await handler(request)
        if not (
            isinstance(response, web.Response)
            and 200 <= response.status < 300
            and isinstance(response.body, bytes)
            and response.content_type in JSON_TYPES
        ):
            return response
        body = response.body
        if self.edit_json is not None:
            value = self.edit_json(request.path, json.loads(body))
            body = json.dumps(value, separators=(",", ":")).encode()
        if self.edit_headers is not None:
            self.edit_headers(request.path, response.headers)
        response.body = body + b" " * self.padding
        return response


def fault_middleware(current: Callable[[], HttpFault | None]) -> Any:
    """An aiohttp middleware that shows the fault `current()` returns, if any."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = current()
        if fault is None or not fault.matches(request.path):
            return await handler(request)
        return await fault.apply(request, handler)

    return middleware


class SimServer:
    """One aiohttp server on `host`: every request goes to `_handle`.

    `start()` serves on a port (0: a free one), `stop()` ends it and every answer
    that still waits in `_sleep`; a stopped server starts again on its old
    port with `start(port)`. `http_fault` (an `HttpFault`) fails requests in
    front of `_handle`.
    """

    label = "simulator"  # for the log line that says where it listens

    def __init__(self, host: str) -> None:
        """Prepare; nothing listens until `start()`."""
        self._host = host
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._stopping = asyncio.Event()
        self.http_fault: HttpFault | None = None

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
        app = web.Application(middlewares=[fault_middleware(lambda: self.http_fault)])
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
