"""OVMS v2 app protocol client: commands to the car (start/stop charging, ...).

The server's REST API has no commands (501); they travel on the v2 protocol (TCP
6867 plain, 6870 TLS). Facts from OVMS-3 docs/source/protocol_v2 (startup,
encryption_scheme_0x30, messages, commands) and the server's ApiV2.pm:

- The app opens with `MP-A 0 <token> <digest> <vehicle id>`; token = 22 random
  characters, digest = base64(HMAC-MD5(key=server password, msg=token)). The
  server answers `MP-S 0 <server token> <server digest>` (same digest rule), which
  we verify. On a wrong digest or an unknown vehicle the server closes the
  connection without a word.
- Session key = HMAC-MD5(password, server token + client token); one RC4 cipher
  per direction, both keyed with it, each primed with 1024 discarded bytes. Every
  later line is base64(RC4("MP-0 <code><data>")) + CR LF.
- After login the server sends `Z` (1: the car is connected, 0: not), the car's
  stored messages (S, D, L, W/Y, F, ...) and `T` (seconds since the car's last
  update); then it forwards whatever the car sends, and `Z` again when the car
  connects or drops. A command to a car that is not connected is silently
  discarded, so `Z0` is the only "offline" signal there is.
- `C<cmd>[,params]` -> `c<cmd>,<result>[,text]`; the protocol docs say result 0
  ok, 1 failed, 2 unsupported, 3 unimplemented. Firmware 3 (ovms_server_v2.cpp
  `ProcessCommand`, OVMS-3 @ 01e5965) answers 1 also when the car cannot do the
  command (its vehicle module does not implement it), with the module's own text
  when the module answers itself and none otherwise; 2 only for codes the
  firmware does not know (and 40, 49); never 3. `A` is a ping, `a` its answer;
  the server drops an app that sent nothing for 20 minutes.

Result mapping: 0 returns a `CommandResult`; 1 (and any unknown result) raises
`CarRefusedError` ("refused or cannot do it", with the car's text); 2 and 3 raise
`NotSupportedError` (the firmware does not know the command). A car the server
reports as not connected, or no answer within the command timeout, raises
`DeviceOfflineError`.

Secrets (server password, car PIN, tokens, digests) never reach a log or an error.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Mapping
import contextlib
from dataclasses import dataclass
from enum import IntEnum
import hashlib
import hmac
import logging
import secrets
import ssl
import string
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from .errors import (
    AuthenticationError,
    CommandRejectedError,
    CommunicationError,
    DeviceOfflineError,
    EvCloudError,
    InvalidResponseError,
    NotSupportedError,
)

_LOGGER = logging.getLogger(__name__)

PLAIN_PORT = 6867
TLS_PORT = 6870
DEFAULT_TIMEOUT = 15.0  # connect + login, a ping, a write
DEFAULT_COMMAND_TIMEOUT = 30.0  # the car answers over its cellular link
DEFAULT_KEEPALIVE = 300.0  # ping well inside the server's 20 min idle limit
TOKEN_LENGTH = 22  # as the server's own tokens
# The server draws its tokens from the base64 alphabet; any printable non-space works.
TOKEN_ALPHABET = string.ascii_letters + string.digits + "+/"
RC4_DISCARD = 1024
LINE_LIMIT = 64 * 1024  # longer lines are garbage, not messages
PREFIX = "MP-0 "


class CarCommand(IntEnum):
    """Command codes of commands.rst that this client offers as methods."""

    SET_CHARGE_MODE = 10
    START_CHARGE = 11
    STOP_CHARGE = 12
    SET_CHARGE_CURRENT = 15
    WAKE_UP = 18
    LOCK = 20
    UNLOCK = 22


# Charge mode names (as in the S message) -> the number command 10 takes.
CHARGE_MODE_CODES: Mapping[str, int] = {
    "standard": 0,
    "storage": 1,
    "range": 3,
    "performance": 4,
}


class Rc4:
    """The RC4 stream cipher (no library we can rely on still ships it)."""

    def __init__(self, key: bytes, discard: int = 0) -> None:
        """Key schedule; then throw away `discard` bytes of keystream."""
        if not 1 <= len(key) <= 256:
            raise ValueError("RC4 key must be 1 to 256 bytes")
        box = list(range(256))
        j = 0
        for i in range(256):
            j = (j + box[i] + key[i % len(key)]) & 0xFF
            box[i], box[j] = box[j], box[i]
        self._box = box
        self._i = 0
        self._j = 0
        if discard:
            self.crypt(bytes(discard))

    def crypt(self, data: bytes) -> bytes:
        """Encrypt or decrypt (the same operation); the keystream moves on."""
        box, i, j = self._box, self._i, self._j
        out = bytearray(len(data))
        for index, byte in enumerate(data):
            i = (i + 1) & 0xFF
            j = (j + box[i]) & 0xFF
            box[i], box[j] = box[j], box[i]
            out[index] = byte ^ box[(box[i] + box[j]) & 0xFF]
        self._i, self._j = i, j
        return bytes(out)


def _hmac_md5(password: str, message: str) -> bytes:
    return hmac.new(password.encode(), message.encode(), hashlib.md5).digest()


def token_digest(password: str, token: str) -> str:
    """base64(HMAC-MD5(password, token)): what each side proves itself with."""
    return base64.b64encode(_hmac_md5(password, token)).decode()


def session_ciphers(password: str, server_token: str, client_token: str) -> Rc4:
    """One primed RC4 cipher for the session (make one per direction)."""
    return Rc4(_hmac_md5(password, server_token + client_token), RC4_DISCARD)


@dataclass(frozen=True, slots=True)
class OvmsV2Address:
    """Where a server's v2 protocol listens."""

    host: str
    port: int
    tls: bool


def v2_address(server_url: str) -> OvmsV2Address:
    """The v2 address of the server behind a REST URL (https -> 6870 TLS, else 6867).

    `https://api.openvehicles.com:6869` -> api.openvehicles.com, 6870, TLS. The REST
    port says nothing about the v2 port, so the standard ones are used.
    """
    url = urlsplit(server_url if "://" in server_url else f"http://{server_url}")
    if not url.hostname:
        raise ValueError("the server URL has no host")
    tls = url.scheme == "https"
    return OvmsV2Address(url.hostname, TLS_PORT if tls else PLAIN_PORT, tls)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """A command the car carried out: its code, result (0) and any text it sent."""

    code: int
    result: int
    text: str


class CarRefusedError(CommandRejectedError):
    """Result 1: the car refused the command or cannot carry it out.

    Firmware 3 answers 1 for both and does not say which. `text` is the car's own
    text: "" when it sent none, or when it may hold a secret (see `command`).
    """

    def __init__(self, code: int, text: str) -> None:
        """Keep the command code and the car's text next to the message."""
        said = f": {text}" if text else ""
        super().__init__(
            f"The car refused command {code} or cannot do it{said}", reason="failed"
        )
        self.code = code
        self.text = text


type MessageCallback = Callable[[str, str], None]
type DisconnectCallback = Callable[[EvCloudError], None]


def _check_param(value: str) -> str:
    # A comma splits parameters and a line break ends the message.
    if any(char in value for char in ",\r\n"):
        raise ValueError("command parameters must not contain commas or line breaks")
    return value


class OvmsV2Client:
    """One app connection to an OVMS server for one vehicle.

    `on_message(code, data)` gets every message except command answers and pings
    (S, D, L, W, Y, F, Z, T, E, ...), from the reader task; `records` keeps the
    latest data per code. `on_disconnect(error)` is called once when the
    connection drops (not after `close()`); `wait_closed()` returns that error.
    Command answers nobody waits for (late ones, another app's) go to `on_message`.

    `server_password` is the car's server password (the module's v2 password the
    server keeps per vehicle), not the account's web password. A client connects
    once; make a new one to reconnect. Commands are sent one at a time.
    """

    def __init__(
        self,
        host: str,
        vehicle_id: str,
        server_password: str,
        *,
        port: int = TLS_PORT,
        tls: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        keepalive: float | None = DEFAULT_KEEPALIVE,
        on_message: MessageCallback | None = None,
        on_disconnect: DisconnectCallback | None = None,
    ) -> None:
        """Prepare; nothing is sent until `connect()`.

        Pass Home Assistant's client SSL context as `ssl_context` (creating one
        reads certificate files); without it one is created in a thread.
        `keepalive=None` sends no pings.
        """
        if not vehicle_id or any(char.isspace() for char in vehicle_id):
            raise ValueError("the vehicle id must be one word")
        self.host = host
        self.port = port
        self.tls = tls
        self.vehicle_id = vehicle_id
        self._password = server_password
        self._ssl_context = ssl_context
        self._timeout = timeout
        self._command_timeout = command_timeout
        self._keepalive = keepalive
        self._on_message = on_message
        self._on_disconnect = on_disconnect
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tx: Rc4 | None = None
        self._rx: Rc4 | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._command_lock = asyncio.Lock()
        self._pending: tuple[int, asyncio.Future[CommandResult]] | None = None
        self._pong: asyncio.Future[None] | None = None
        self._peer_status = asyncio.Event()
        self._closed = asyncio.Event()
        self._error: EvCloudError | None = None
        self.car_connected: bool | None = None  # from Z; None until the server said
        self.last_update_age: int | None = None  # from T: seconds since the car sent
        self.records: dict[str, str] = {}

    @classmethod
    def from_server_url(
        cls,
        server_url: str,
        vehicle_id: str,
        server_password: str,
        **kwargs: Any,
    ) -> OvmsV2Client:
        """A client for the v2 address of a REST server URL (see `v2_address`)."""
        address = v2_address(server_url)
        return cls(
            address.host,
            vehicle_id,
            server_password,
            port=address.port,
            tls=address.tls,
            **kwargs,
        )

    async def __aenter__(self) -> Self:
        """Connect."""
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close."""
        await self.close()

    @property
    def connected(self) -> bool:
        """True between a successful `connect()` and the end of the connection."""
        return self._writer is not None and not self._closed.is_set()

    @property
    def _where(self) -> str:
        return f"the OVMS server {self.host}:{self.port}"

    # --- connection ---------------------------------------------------------------

    async def connect(self) -> None:
        """Open the connection, log in, and wait for the car's connection status.

        AuthenticationError: the server closed the connection at login (wrong
        vehicle id or server password) or could not prove it knows the password.
        """
        if self._writer is not None:
            raise RuntimeError("a client connects once; make a new one to reconnect")
        context: ssl.SSLContext | None = None
        if self.tls:
            context = self._ssl_context or await asyncio.to_thread(
                ssl.create_default_context
            )
        try:
            async with asyncio.timeout(self._timeout):
                self._reader, self._writer = await asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=context,
                    server_hostname=self.host if context else None,
                    limit=LINE_LIMIT,
                )
                await self._login()
        except TimeoutError:
            await self._abort()
            raise CommunicationError(f"Timeout connecting to {self._where}") from None
        except OSError as err:
            await self._abort()
            raise CommunicationError(
                f"Cannot connect to {self._where}: {err.strerror or type(err).__name__}"
            ) from None
        except UnicodeError:
            # A host name that cannot be encoded (a label over 63 characters).
            await self._abort()
            raise CommunicationError(
                f"Cannot connect to {self._where}: invalid host name"
            ) from None
        except EvCloudError:
            await self._abort()
            raise
        _LOGGER.debug("Logged in to %s for %s", self._where, self.vehicle_id)
        # A drop before connect() returns is its error, not a reported drop.
        on_disconnect, self._on_disconnect = self._on_disconnect, None
        self._tasks.append(asyncio.create_task(self._read_loop()))
        if self._keepalive:
            self._tasks.append(asyncio.create_task(self._keepalive_loop()))
        # The server sends Z right after the login; without it the car's state is
        # unknown and commands rely on their timeout.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await self._wait_any(self._peer_status)
        if self._error is not None:
            await self._abort()
            raise self._error
        self._on_disconnect = on_disconnect

    async def _login(self) -> None:
        assert self._reader is not None
        assert self._writer is not None
        client_token = "".join(
            secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH)
        )
        digest = token_digest(self._password, client_token)
        # Never logged: the line carries the token and its digest.
        self._writer.write(
            f"MP-A 0 {client_token} {digest} {self.vehicle_id}\r\n".encode()
        )
        await self._writer.drain()
        try:
            line = await self._reader.readline()
        except ValueError:
            raise InvalidResponseError(
                f"{self._where} sent an overlong login answer"
            ) from None
        if not line:
            raise AuthenticationError(
                f"{self._where} refused the login: check the vehicle id and "
                "the server password"
            )
        parts = line.decode("ascii", "replace").split()
        if len(parts) < 4 or parts[0] != "MP-S" or parts[1] != "0":
            raise InvalidResponseError(f"{self._where} sent an unexpected login answer")
        server_token, server_digest = parts[2], parts[3]
        try:
            received = base64.b64decode(server_digest, validate=True)
        except binascii.Error:
            raise InvalidResponseError(
                f"{self._where} sent an unreadable login answer"
            ) from None
        expected = _hmac_md5(self._password, server_token)
        # Our own token sent back would be a reflection, not proof.
        if server_token == client_token or not hmac.compare_digest(received, expected):
            raise AuthenticationError(
                f"{self._where} could not prove it knows the server password"
            )
        self._tx = session_ciphers(self._password, server_token, client_token)
        self._rx = session_ciphers(self._password, server_token, client_token)

    async def close(self) -> None:
        """Close the connection (no disconnect callback)."""
        self._on_disconnect = None
        self._shutdown(CommunicationError(f"Connection to {self._where} closed"))
        await self._abort()

    async def wait_closed(self) -> EvCloudError | None:
        """Wait until the connection ends; the error that ended it (None: `close()`)."""
        await self._closed.wait()
        return self._error

    async def _abort(self) -> None:
        """Stop the tasks and close the socket."""
        self._closed.set()
        tasks, self._tasks = self._tasks, []
        current = asyncio.current_task()
        for task in tasks:
            if task is not current:
                task.cancel()
        for task in tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()

    def _shutdown(self, error: EvCloudError, *, dropped: bool = False) -> None:
        """End the connection: fail every waiter with `error`, report a drop once."""
        if self._closed.is_set():
            return
        self._closed.set()
        if dropped:
            self._error = error
            _LOGGER.debug("Connection to %s ended: %s", self._where, error)
        if self._writer is not None:
            self._writer.close()
        for future in (self._pending[1] if self._pending else None, self._pong):
            if future is not None and not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: no warning if nobody awaits it
        for task in self._tasks:
            if task is not asyncio.current_task():
                task.cancel()
        if dropped and self._on_disconnect is not None:
            self._on_disconnect(error)

    async def _wait_any(self, event: asyncio.Event) -> None:
        """Wait for `event`, or for the connection to end."""
        waiters = [
            asyncio.ensure_future(event.wait()),
            asyncio.ensure_future(self._closed.wait()),
        ]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    # --- lines --------------------------------------------------------------------

    def _send(self, message: str) -> None:
        """Encrypt and write one message; encryption and write stay in order."""
        if not self.connected:
            raise CommunicationError(f"Not connected to {self._where}")
        assert self._tx is not None
        assert self._writer is not None
        encrypted = self._tx.crypt(f"{PREFIX}{message}".encode())
        self._writer.write(base64.b64encode(encrypted) + b"\r\n")

    async def _drain(self) -> None:
        assert self._writer is not None
        try:
            async with asyncio.timeout(self._timeout):
                await self._writer.drain()
        except (OSError, TimeoutError) as err:
            error = CommunicationError(f"Cannot send to {self._where}")
            self._shutdown(error, dropped=True)
            raise error from err

    def _decode(self, line: bytes) -> tuple[str, str]:
        assert self._rx is not None
        try:
            encrypted = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise InvalidResponseError(f"{self._where} sent a garbled line") from None
        text = self._rx.crypt(encrypted).decode("utf-8", "replace")
        if not text.startswith(PREFIX) or len(text) == len(PREFIX):
            raise InvalidResponseError(f"{self._where} sent an undecodable message")
        return text[len(PREFIX)], text[len(PREFIX) + 1 :]

    async def _read_loop(self) -> None:
        assert self._reader is not None
        try:
            while True:
                try:
                    line = await self._reader.readline()
                except ValueError:
                    raise InvalidResponseError(
                        f"{self._where} sent an overlong line"
                    ) from None
                if not line.endswith(b"\n"):  # end of stream
                    raise CommunicationError(f"{self._where} closed the connection")
                line = line.rstrip(b"\r\n")
                if line:
                    self._dispatch(*self._decode(line))
        except OSError as err:
            self._shutdown(
                CommunicationError(
                    f"Connection to {self._where} lost: {type(err).__name__}"
                ),
                dropped=True,
            )
        except EvCloudError as err:
            self._shutdown(err, dropped=True)

    def _dispatch(self, code: str, data: str) -> None:
        _LOGGER.debug("%s: received %s message", self.vehicle_id, code)
        if code == "a":
            if self._pong is not None and not self._pong.done():
                self._pong.set_result(None)
            return
        if code == "A":
            self._send("a")
            return
        if code == "c" and self._answer(data):
            return
        if code == "Z":
            self.car_connected = data.strip() not in ("", "0")
            self._peer_status.set()
            if not self.car_connected and self._pending is not None:
                future = self._pending[1]
                if not future.done():
                    future.set_exception(self._offline())
        elif code == "T":
            with contextlib.suppress(ValueError):
                self.last_update_age = int(data)
        if code != "c":
            self.records[code] = data
        if self._on_message is not None:
            try:
                self._on_message(code, data)
            except Exception:
                _LOGGER.exception("Error in the OVMS message callback")

    def _answer(self, data: str) -> bool:
        """Hand a command answer to its waiter; False if nobody waits for it."""
        parts = data.split(",", 2)
        try:
            code, result = int(parts[0]), int(parts[1])
        except ValueError, IndexError:
            return False
        pending = self._pending
        if pending is None or pending[0] != code or pending[1].done():
            return False
        pending[1].set_result(
            CommandResult(code, result, parts[2] if len(parts) > 2 else "")
        )
        return True

    def _offline(self) -> DeviceOfflineError:
        return DeviceOfflineError(
            f"The car {self.vehicle_id} is offline: it is not connected to the server"
        )

    # --- keep-alive ---------------------------------------------------------------

    async def _keepalive_loop(self) -> None:
        assert self._keepalive is not None
        while True:
            await asyncio.sleep(self._keepalive)
            try:
                await self.ping()
            except EvCloudError:
                return  # ping() has ended the connection

    async def ping(self) -> None:
        """Ping the server; CommunicationError (and the connection ends) if silent."""
        if self._pong is None or self._pong.done():
            self._pong = asyncio.get_running_loop().create_future()
            self._send("A")
            await self._drain()
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.shield(self._pong)
        except TimeoutError:
            error = CommunicationError(f"{self._where} did not answer a ping")
            self._shutdown(error, dropped=True)
            raise error from None

    # --- commands -----------------------------------------------------------------

    async def command(
        self, code: int, *params: str | int, sensitive: bool = False
    ) -> CommandResult:
        """Send command `code` to the car and wait for its answer (see module doc).

        `sensitive` (a PIN among the parameters): the car's answer text is left
        out of errors, in case it repeats them. Parameters are never logged.
        """
        if not 0 <= code <= 65535:
            raise ValueError("command codes are 0 to 65535")
        message = ",".join([f"C{code}", *(_check_param(str(p)) for p in params)])
        async with self._command_lock:
            if self.car_connected is False:
                raise self._offline()
            future: asyncio.Future[CommandResult] = (
                asyncio.get_running_loop().create_future()
            )
            self._pending = (code, future)
            try:
                self._send(message)
                _LOGGER.debug("%s: sent command %d", self.vehicle_id, code)
                await self._drain()
                async with asyncio.timeout(self._command_timeout):
                    answer = await future
            except TimeoutError:
                raise DeviceOfflineError(
                    f"The car {self.vehicle_id} did not answer command {code} "
                    f"within {self._command_timeout:g} s"
                ) from None
            finally:
                self._pending = None
        return self._result(answer, sensitive=sensitive)

    def _result(self, answer: CommandResult, *, sensitive: bool) -> CommandResult:
        code = answer.code
        _LOGGER.debug("%s: command %d result %d", self.vehicle_id, code, answer.result)
        if answer.result == 0:
            return answer
        if answer.result == 2:
            raise NotSupportedError(f"The car's firmware does not know command {code}")
        if answer.result == 3:
            raise NotSupportedError(
                f"The car's firmware does not implement command {code}"
            )
        text = answer.text.strip()
        if sensitive or self._password in text:
            text = ""  # it may repeat the PIN; never echo the server password
        raise CarRefusedError(code, text)

    async def start_charging(self) -> CommandResult:
        """Start charging (command 11)."""
        return await self.command(CarCommand.START_CHARGE)

    async def stop_charging(self) -> CommandResult:
        """Stop charging (command 12)."""
        return await self.command(CarCommand.STOP_CHARGE)

    async def set_charge_current(self, amps: int) -> CommandResult:
        """Set the charge current limit in A (command 15)."""
        if amps <= 0:
            raise ValueError("the charge current must be positive")
        return await self.command(CarCommand.SET_CHARGE_CURRENT, int(amps))

    async def set_charge_mode(self, mode: str) -> CommandResult:
        """Set the charge mode: standard, storage, range or performance (command 10)."""
        if mode not in CHARGE_MODE_CODES:
            raise ValueError(f"charge mode must be one of {tuple(CHARGE_MODE_CODES)}")
        return await self.command(CarCommand.SET_CHARGE_MODE, CHARGE_MODE_CODES[mode])

    async def wake_up(self) -> CommandResult:
        """Wake the car up (command 18)."""
        return await self.command(CarCommand.WAKE_UP)

    async def lock(self, pin: str) -> CommandResult:
        """Lock the car with its PIN (command 20)."""
        return await self.command(CarCommand.LOCK, _pin(pin), sensitive=True)

    async def unlock(self, pin: str) -> CommandResult:
        """Unlock the car with its PIN (command 22)."""
        return await self.command(CarCommand.UNLOCK, _pin(pin), sensitive=True)


def _pin(pin: str) -> str:
    if not pin or any(char in pin for char in ",\r\n"):
        # The message must not show the PIN.
        raise ValueError("the PIN must be non-empty, without commas or line breaks")
    return pin
