"""What every simulator needs: a listening socket and a way to drop a connection."""

from __future__ import annotations

import socket

from aiohttp import web


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
