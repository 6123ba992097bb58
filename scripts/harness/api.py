"""A minimal client for Home Assistant's REST, auth and websocket API."""

import asyncio
import http.client
import json
import time
from typing import Any
import urllib.error
import urllib.parse
import urllib.request

import aiohttp

from .common import HarnessError


class HomeAssistantApi:
    """Minimal client for HA's REST, auth and websocket API, holding the tokens."""

    def __init__(self, url: str) -> None:
        """Start without tokens; onboarding or login provides them."""
        self.url = url
        # Onboarding and the login flow want an IndieAuth client id: HA's frontend.
        self.client_id = f"{url}/"
        self.redirect_uri = f"{url}/?auth_callback=1"
        self.access_token: str | None = None
        self.refresh_token: str | None = None
        self.expires_at = 0.0

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        form: dict[str, str] | None = None,
        auth: bool = True,
        timeout: float = 30,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send a request; return (status, JSON or text); status 0: no answer."""
        headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if auth:
            headers["Authorization"] = f"Bearer {self.token()}"
        # The URL is always http://127.0.0.1:<port> (no file: or other schemes).
        req = urllib.request.Request(  # noqa: S310
            self.url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        except OSError, http.client.HTTPException:  # HA drops connections as it stops
            return 0, None
        text = raw.decode(errors="replace")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def token(self) -> str:
        """Return a valid access token, refreshing it shortly before it expires."""
        if self.access_token is None:
            raise HarnessError("no access token yet")
        if self.refresh_token and time.monotonic() > self.expires_at - 60:
            self._grant(
                {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
            )
        return self.access_token

    def exchange_code(self, code: str) -> None:
        """Turn an authorization code (from onboarding or login) into tokens."""
        self._grant({"grant_type": "authorization_code", "code": code})

    def _grant(self, form: dict[str, str]) -> None:
        """POST /auth/token and keep the tokens it returns."""
        status, data = self.request(
            "POST", "/auth/token", form=form | {"client_id": self.client_id}, auth=False
        )
        if status != 200 or not isinstance(data, dict):
            raise HarnessError(f"/auth/token answered {status}: {data}")
        self.access_token = data["access_token"]
        self.refresh_token = data.get("refresh_token", self.refresh_token)
        self.expires_at = time.monotonic() + float(data.get("expires_in", 1800))

    def post_ok(
        self,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """POST with the token; raise HarnessError unless HA answers 200."""
        status, data = self.request(
            "POST", path, body if body is not None else {}, headers=headers
        )
        if status != 200:
            raise HarnessError(f"POST {path} answered {status}: {data}")
        return data

    def get_ok(self, path: str) -> Any:
        """GET with the token; raise HarnessError unless HA answers 200."""
        status, data = self.request("GET", path)
        if status != 200:
            raise HarnessError(f"GET {path} answered {status}: {data}")
        return data

    def websocket(self, *commands: str | dict[str, Any]) -> list[Any]:
        """Run websocket commands; return their results, raise if one fails.

        A command is its type (``"config/entity_registry/list"``) or a whole
        message without ``id`` (``{"type": "call_service", ...}``).
        """
        replies = self.websocket_replies(*commands)
        for command, reply in zip(commands, replies, strict=True):
            if not reply.get("success"):
                name = command if isinstance(command, str) else command["type"]
                raise HarnessError(f"websocket {name} failed: {reply.get('error')}")
        return [reply["result"] for reply in replies]

    def websocket_replies(self, *commands: str | dict[str, Any]) -> list[Any]:
        """Run websocket commands; return HA's whole replies (success or error)."""
        messages = [
            {"type": command} if isinstance(command, str) else dict(command)
            for command in commands
        ]
        # Failures incl. timeouts, and a socket HA closes (stopping, killed) before
        # it answers (a close message where a reply was due).
        try:
            return asyncio.run(self._websocket(messages))
        except (
            aiohttp.ClientError,
            aiohttp.WSMessageTypeError,
            OSError,
            ValueError,
        ) as err:
            names = ", ".join(message["type"] for message in messages)
            raise HarnessError(f"websocket {names}: {err!r}") from err

    async def _websocket(self, messages: list[dict[str, Any]]) -> list[Any]:
        """Authenticate on /api/websocket and send ``messages`` one by one."""
        url = self.url.replace("http", "ws", 1) + "/api/websocket"
        replies = []
        async with (
            asyncio.timeout(60),
            aiohttp.ClientSession() as session,
            session.ws_connect(url) as ws,
        ):
            await ws.receive_json()  # auth_required
            await ws.send_json({"type": "auth", "access_token": self.token()})
            if (msg := await ws.receive_json()).get("type") != "auth_ok":
                raise HarnessError(f"websocket authentication failed: {msg}")
            for msg_id, message in enumerate(messages, start=1):
                await ws.send_json(message | {"id": msg_id})
                while (reply := await ws.receive_json()).get("id") != msg_id:
                    pass
                replies.append(reply)
        return replies

    def call_service(
        self,
        domain: str,
        service: str,
        data: dict[str, Any] | None = None,
        target: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call an action as the frontend does (websocket); return HA's reply."""
        message: dict[str, Any] = {
            "type": "call_service",
            "domain": domain,
            "service": service,
            "service_data": data or {},
        }
        if target is not None:
            message["target"] = target
        (reply,) = self.websocket_replies(message)
        return dict(reply)

    def long_lived_token(self, name: str, days: int = 1) -> str:
        """Create a long-lived access token (Profile > Security in the UI)."""
        (token,) = self.websocket(
            {
                "type": "auth/long_lived_access_token",
                "client_name": name,
                "lifespan": days,
            }
        )
        return str(token)
