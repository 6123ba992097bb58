"""A simulated OVMS server v2 protocol port (the ApiV2 plugin), for app connections.

It serves the cars of an `OvmsSimulator` (their `SimVehicle` state is shared), on
127.0.0.1, plain or TLS. The server side is written on its own (its own RC4, its own
line handling) from OVMS-3 docs/source/protocol_v2 and the server's ApiV2.pm, so
that the client is not checked against itself:

- `MP-A 0 <token> <digest> <vehicle id>`: an unknown vehicle or a wrong digest
  closes the connection without an answer (as ApiV2.pm `welcome_30`). Otherwise
  `MP-S 0 <22-char token> <digest>`, then encrypted: `Z` (1/0: car connected), the
  car's stored records (S, D, L, W/Y; a paranoid car's as `E M<code><data>`),
  `T` (age of the car's last update).
- `C<code>[,params]` from the app goes to the car; the car here answers at once.
  A car that is not online gets nothing (the real server discards the command),
  so the app waits in vain. `A` is answered with `a`.

Results as firmware 3 gives them (ovms_server_v2.cpp `ProcessCommand`, OVMS-3 @
01e5965): the vehicle commands (10-12, 15-26) answer `c<code>,0` or `c<code>,1`,
and 1 means both "the car refused" and "the car cannot do this" (its vehicle
module returns NotImplemented); there is no text on this path. A code the firmware
does not know, and 40 (SMS) and 49 (AT command), answer 2. 3 is never sent.
Commands the simulated cars carry out: 10 charge mode, 11 start charging (needs
the cable), 12 stop, 15 charge current (1..`max_amps`), 18 wake up, 20/22
lock/unlock (PIN check); anything else that fails answers 1. The firmware's own
commands (1-7, 41: features, parameters, reboot, shell, USSD) are not simulated
(1, "not simulated").

Per car (`V2Car`): `commands`, the vehicle commands its module implements (one
outside it answers 1, e.g. charge mode on a car without charge modes);
`module_texts`, a vehicle module that answers the commands itself, as the
Twizy's `ProcessMsgCommand` does: `c<code>,<0|1>,<its text>` (the text field is
there even when empty), e.g. "not plugged in".

Switches: `forced_results[code] = (result, text)`, `silent_commands` (no answer),
`drop_on_command` (the connection ends when a command arrives), `drop_all()`,
`send_garbage(vehicle_id)`, `send_peer_status=False` (no `Z` after login),
`answer_pings=False`,
`login_answer` (a raw answer instead of `MP-S ...`). `commands` lists what arrived.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from dataclasses import dataclass, field
import hashlib
import hmac
import logging
import math
import random
import ssl

from .common import issued
from .ovms import CHARGE_MODE_KEYS, OvmsSimulator, SimVehicle

_LOGGER = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
# The server draws tokens from this table (ApiV2.pm $b64tab).
B64TAB = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
MODE_NAMES = {number: name for name, number in CHARGE_MODE_KEYS.items()}
# The vehicle commands firmware 3's ProcessCommand passes to the vehicle module
# (answered 0, or 1 when the module fails or does not implement them).
VEHICLE_COMMANDS = frozenset({10, 11, 12, *range(15, 27)})
# Commands the firmware answers itself; not simulated.
FIRMWARE_OWN_COMMANDS = frozenset({1, 2, 3, 4, 5, 6, 7, 41})
# What the simulated cars can do.
CAR_COMMANDS = frozenset({10, 11, 12, 15, 18, 20, 22})


class _Arc4:
    """RC4, written apart from the client's (a generator of keystream bytes)."""

    def __init__(self, key: bytes) -> None:
        self._stream = self._keystream(key)
        self.apply(b"\x00" * 1024)  # prime with 1 KiB, as the server does

    @staticmethod
    def _keystream(key: bytes) -> Iterator[int]:
        state = list(range(256))
        j = 0
        for i in range(256):
            j = (j + state[i] + key[i % len(key)]) % 256
            state[i], state[j] = state[j], state[i]
        i = j = 0
        while True:
            i = (i + 1) % 256
            j = (j + state[i]) % 256
            state[i], state[j] = state[j], state[i]
            yield state[(state[i] + state[j]) % 256]

    def apply(self, data: bytes) -> bytes:
        return bytes(byte ^ next(self._stream) for byte in data)


def _hmac_md5(secret: str, text: str) -> bytes:
    return hmac.new(secret.encode(), text.encode(), hashlib.md5).digest()


@dataclass
class V2Car:
    """The v2 settings of one car: its server password and its PIN.

    `commands`: the vehicle commands its module implements; `module_texts`: the
    module answers commands itself, with its own text (see the module doc).
    """

    vehicle: SimVehicle
    password: str
    pin: str | None = None
    max_amps: int = 32
    commands: frozenset[int] = CAR_COMMANDS
    module_texts: bool = False


@dataclass
class _App:
    """One logged-in app connection."""

    vehicle_id: str
    writer: asyncio.StreamWriter
    tx: _Arc4
    rx: _Arc4
    car_online: bool = True  # what the app was last told (Z)
    received: list[str] = field(default_factory=list)


class OvmsV2Server:
    """The v2 port of an `OvmsSimulator`: `async with OvmsV2Server(sim) as v2: ...`."""

    def __init__(self, simulator: OvmsSimulator, *, tls: ssl.SSLContext | None = None):
        """Serve the simulator's cars (those added with `add_car`); TLS with `tls`."""
        self.simulator = simulator
        self.tls = tls
        self.cars: dict[str, V2Car] = {}
        self.apps: list[_App] = []
        self.commands: list[tuple[str, int, tuple[str, ...]]] = []
        self.logins_refused = 0
        self.forced_results: dict[int, tuple[int, str]] = {}
        self.silent_commands: set[int] = set()
        self.drop_on_command = False
        self.send_peer_status = True
        self.answer_pings = True
        self.login_answer: bytes | None = None
        self.server_token: str | None = None  # fixed token (tests of reflection)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> OvmsV2Server:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def add_car(
        self, vehicle_id: str, password: str, *, pin: str | None = None
    ) -> V2Car:
        """Give a car of the simulator a server password (and a PIN)."""
        car = V2Car(self.simulator.vehicle(vehicle_id), issued(password))
        if pin is not None:
            car.pin = issued(pin)
        self.cars[vehicle_id] = car
        return car

    async def start(self, port: int = 0) -> None:
        """Listen on 127.0.0.1, at `port` (0: a free one)."""
        self._server = await asyncio.start_server(self._serve, LOCALHOST, port)

    async def stop(self) -> None:
        """Stop listening and drop every connection."""
        self.drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self._server = None

    @property
    def port(self) -> int:
        """The port it listens on."""
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def drop_all(self) -> None:
        """Close every connection (as a server restart or a lost link)."""
        for writer in list(self._connections):
            writer.close()
        self._connections.clear()
        self.apps.clear()

    # --- pushing --------------------------------------------------------------------

    def push(self, vehicle_id: str) -> None:
        """Send the car's current state to its apps, as the car would after a change.

        A change of `car_online` is announced with `Z`; an offline car sends nothing.
        """
        vehicle = self.cars[vehicle_id].vehicle
        for app in self._apps_of(vehicle_id):
            if app.car_online != vehicle.car_online:
                app.car_online = vehicle.car_online
                self._transmit(app, "Z", "1" if vehicle.car_online else "0")
            if vehicle.sending:
                self._send_records(app, vehicle, live=True)

    def send_raw(self, vehicle_id: str, code: str, data: str) -> None:
        """Send one message (code + data) to the car's apps."""
        for app in self._apps_of(vehicle_id):
            self._transmit(app, code, data)

    def send_garbage(self, vehicle_id: str, line: bytes = b"%%not base64%%") -> None:
        """Write a line that is no encrypted message to the car's apps."""
        for app in self._apps_of(vehicle_id):
            app.writer.write(line + b"\r\n")

    def _apps_of(self, vehicle_id: str) -> list[_App]:
        return [app for app in self.apps if app.vehicle_id == vehicle_id]

    def _transmit(self, app: _App, code: str, data: str) -> None:
        plain = f"MP-0 {code}{data}".encode()
        app.writer.write(base64.b64encode(app.tx.apply(plain)) + b"\r\n")

    def _send_records(self, app: _App, vehicle: SimVehicle, *, live: bool) -> None:
        stored = vehicle.stored_records()
        for code, (message, _, paranoid) in sorted(stored.items()):
            if paranoid:
                self._transmit(app, "E", f"M{code}{message}")
            else:
                self._transmit(app, code, message)
        ages = [
            math.floor(vehicle.now) - received for _, received, _ in stored.values()
        ]
        self._transmit(app, "T", "0" if live else str(min(ages, default=0)))

    # --- connections ----------------------------------------------------------------

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self.tls is not None:
            # Here, not in start_server: a refused certificate is the client's
            # business, not an error of the event loop.
            try:
                await writer.start_tls(self.tls)
            except OSError:
                return  # the failed handshake has closed the transport
        self._connections.add(writer)
        app: _App | None = None
        try:
            app = await self._welcome(reader, writer)
            while app is not None and (line := await reader.readline()):
                self._line(app, line.strip())
        except OSError, ValueError:
            pass  # a broken or garbled connection just ends, as on the server
        finally:
            if app in self.apps:
                self.apps.remove(app)
            self._connections.discard(writer)
            writer.close()

    async def _welcome(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> _App | None:
        parts = (await reader.readline()).decode().split()
        if len(parts) < 5 or parts[0] != "MP-A" or parts[1] != "0":
            return None
        client_token, client_digest, vehicle_id = parts[2], parts[3], parts[4].upper()
        # The client's token and digest are secrets of this test too.
        issued(client_token)
        issued(client_digest)
        car = self.cars.get(vehicle_id)
        if car is None or base64.b64decode(client_digest) != _hmac_md5(
            car.password, client_token
        ):
            self.logins_refused += 1
            return None  # the server closes without an answer
        if self.login_answer is not None:
            writer.write(self.login_answer + b"\r\n")
            return None
        server_token = self.server_token or "".join(
            random.choice(B64TAB) for _ in range(22)
        )
        server_digest = base64.b64encode(_hmac_md5(car.password, server_token)).decode()
        issued(server_token)
        issued(server_digest)
        key = _hmac_md5(car.password, server_token + client_token)
        app = _App(vehicle_id, writer, tx=_Arc4(key), rx=_Arc4(key))
        writer.write(f"MP-S 0 {server_token} {server_digest}\r\n".encode())
        self.apps.append(app)
        vehicle = car.vehicle
        app.car_online = vehicle.car_online
        if self.send_peer_status:
            self._transmit(app, "Z", "1" if vehicle.car_online else "0")
        self._send_records(app, vehicle, live=False)
        await writer.drain()
        return app

    def _line(self, app: _App, line: bytes) -> None:
        message = app.rx.apply(base64.b64decode(line, validate=True)).decode()
        if not message.startswith("MP-0 ") or len(message) < 6:
            raise ValueError("undecodable message")  # the server aborts
        code, data = message[5], message[6:]
        app.received.append(code)
        _LOGGER.debug("v2 %s: message %s", app.vehicle_id, code)
        if code == "A" and self.answer_pings:
            self._transmit(app, "a", "")
        elif code == "C":
            self._command(app, data)

    def _command(self, app: _App, data: str) -> None:
        number, *params = data.split(",")
        code = int(number)
        self.commands.append((app.vehicle_id, code, tuple(params)))
        if self.drop_on_command:
            app.writer.close()
            return
        car = self.cars[app.vehicle_id]
        if not car.vehicle.car_online or code in self.silent_commands:
            return  # discarded: no answer ever comes
        text: str | None
        if code in self.forced_results:
            result, forced = self.forced_results[code]
            text = forced or None
        else:
            result, text = self._answer(car, code, params)
        answer = f"{code},{result}" + ("" if text is None else f",{text}")
        self._transmit(app, "c", answer)
        if result == 0:
            self.push(app.vehicle_id)

    @classmethod
    def _answer(
        cls, car: V2Car, code: int, params: list[str]
    ) -> tuple[int, str | None]:
        """Firmware 3's answer to a command: (result, text; None: no text field)."""
        if code in FIRMWARE_OWN_COMMANDS:
            return 1, "not simulated"
        if code not in VEHICLE_COMMANDS:
            return 2, None  # unknown to the firmware; 40 and 49 as well
        if code not in car.commands:
            return 1, None  # the module does not implement it
        failure = cls._execute(car, code, params)
        if car.module_texts:
            return (1, failure) if failure else (0, "")
        return (1 if failure else 0), None

    @staticmethod
    def _execute(car: V2Car, code: int, params: list[str]) -> str | None:
        """What the car does with a command it implements: None, or why it failed."""
        vehicle = car.vehicle
        first = params[0] if params else ""
        match code:
            case 10:
                if not first.isdigit() or int(first) not in MODE_NAMES:
                    return "unknown charge mode"
                vehicle.charge_mode = MODE_NAMES[int(first)]
            case 11:
                if not vehicle.plugged_in:
                    return "not plugged in"
                vehicle.start_charging()
            case 12:
                vehicle.stop_charging()
            case 15:
                if not first.isdigit() or not 1 <= int(first) <= car.max_amps:
                    return "current out of range"
                vehicle.charge_limit_amps = int(first)
            case 18:
                vehicle.awake = True
            case 20 | 22:
                if car.pin is None or first != car.pin:
                    return f"wrong PIN {first}"  # a module may echo what it got
                vehicle.locked = code == 20
        return None
