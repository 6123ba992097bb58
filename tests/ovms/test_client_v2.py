"""The OVMS v2 protocol client, over real TCP against the v2 simulator."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
import hashlib
import hmac
import logging
from pathlib import Path
import socket
from typing import Any

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher
import pytest

from custom_components.ev_cloud.api import (
    AuthenticationError,
    CommandRejectedError,
    CommunicationError,
    DeviceOfflineError,
    EvCloudError,
    InvalidResponseError,
    NotSupportedError,
    ovms_v2,
)
from custom_components.ev_cloud.api.ovms_v2 import (
    CHARGE_MODE_CODES,
    CarCommand,
    CarRefusedError,
    CommandResult,
    OvmsV2Address,
    OvmsV2Client,
    Rc4,
    token_digest,
    v2_address,
)
from tests.simulators.ovms import OvmsSimulator, SimVehicle
from tests.simulators.ovms_v2 import OvmsV2Server
from tests.tls import make_certificates

LOCALHOST = "127.0.0.1"
PASSWORD = "v2-server-password-secret"
ROADSTER_PASSWORD = "roadster-password-secret"
PIN = "pin-4711-secret"


@pytest.fixture
def sim() -> OvmsSimulator:
    """DEMO is plugged in (not charging); ROADSTER is not connected to the server."""
    simulator = OvmsSimulator()
    simulator.add_user("demo", "demo-http-password")
    simulator.add_vehicle(SimVehicle("DEMO", "demo")).plug_in()
    simulator.add_vehicle(
        SimVehicle("ROADSTER", "demo", units="M", tpms_format="W", car_online=False)
    )
    return simulator


@pytest.fixture
async def v2(socket_enabled: None, sim: OvmsSimulator) -> AsyncIterator[OvmsV2Server]:
    """The simulator's v2 port, plain TCP."""
    server = OvmsV2Server(sim)
    server.add_car("DEMO", PASSWORD, pin=PIN)
    server.add_car("ROADSTER", ROADSTER_PASSWORD)
    async with server:
        yield server


class Recorder:
    """Collects what the client reports."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, str]] = []
        self.errors: list[EvCloudError] = []
        self.dropped = asyncio.Event()

    def on_message(self, code: str, data: str) -> None:
        self.messages.append((code, data))

    def on_disconnect(self, error: EvCloudError) -> None:
        self.errors.append(error)
        self.dropped.set()

    def codes(self) -> list[str]:
        return [code for code, _ in self.messages]


def make_client(
    v2: OvmsV2Server,
    vehicle_id: str = "DEMO",
    password: str = PASSWORD,
    recorder: Recorder | None = None,
    **kwargs: Any,
) -> OvmsV2Client:
    if recorder is not None:
        kwargs |= {
            "on_message": recorder.on_message,
            "on_disconnect": recorder.on_disconnect,
        }
    kwargs.setdefault("tls", False)
    kwargs.setdefault("timeout", 2.0)
    kwargs.setdefault("command_timeout", 2.0)
    return OvmsV2Client(LOCALHOST, vehicle_id, password, port=v2.port, **kwargs)


async def until(condition: Callable[[], bool], seconds: float = 2.0) -> None:
    """Wait (real time) until `condition()` holds (it is set by the reader task)."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110 - plain state, no event to wait on
            await asyncio.sleep(0.005)


def secrets_of(v2: OvmsV2Server) -> list[str]:
    return [PASSWORD, ROADSTER_PASSWORD, PIN]


# --- the primitives -------------------------------------------------------------


def test_rc4_rfc6229_key_0102030405() -> None:
    """RFC 6229 keystream of the 40-bit key 0x0102030405 at several offsets."""
    stream = Rc4(bytes([1, 2, 3, 4, 5])).crypt(bytes(1040))
    assert stream[:16].hex() == "b2396305f03dc027ccc3524a0a1118a8"
    assert stream[16:32].hex() == "6982944f18fc82d589c403a47a0d0919"
    assert stream[240:256].hex() == "28cb1132c96ce286421dcaadb8b69eae"
    assert stream[1024:1040].hex() == "30abbcc7c20b01609f23ee2d5f6bb7df"
    # Discarding 1024 bytes (as the protocol does) starts at that offset.
    primed = Rc4(bytes([1, 2, 3, 4, 5]), 1024).crypt(bytes(16))
    assert primed.hex() == "30abbcc7c20b01609f23ee2d5f6bb7df"


def test_rc4_classic_vectors_and_streaming() -> None:
    """The well-known vectors; encrypting in pieces equals one piece."""
    assert Rc4(b"Key").crypt(b"Plaintext").hex() == "bbf316e8d940af0ad3"
    assert Rc4(b"Wiki").crypt(b"pedia").hex() == "1021bf0420"
    assert (
        Rc4(b"Secret").crypt(b"Attack at dawn").hex() == "45a01f645fc35b383552544b9bf5"
    )
    cipher = Rc4(b"Secret")
    assert cipher.crypt(b"Attack") + cipher.crypt(b" at dawn") == bytes.fromhex(
        "45a01f645fc35b383552544b9bf5"
    )
    with pytest.raises(ValueError, match="key"):
        Rc4(b"")


def test_session_cipher_against_another_rc4() -> None:
    """The session cipher equals ARC4 of `cryptography` keyed with the session key."""
    key = hmac.new(b"pw", b"SERVERTOKEN" + b"CLIENTTOKEN", hashlib.md5).digest()
    other = Cipher(ARC4(key), mode=None).encryptor()
    other.update(bytes(1024))
    message = b"MP-0 C11"
    ours = ovms_v2.session_ciphers("pw", "SERVERTOKEN", "CLIENTTOKEN")
    assert ours.crypt(message) == other.update(message)


def test_token_digest_rfc2104() -> None:
    """HMAC-MD5 of RFC 2104's second test case, base64 encoded."""
    expected = base64.b64encode(bytes.fromhex("750c783e6ab0b503eaa86e310a5db738"))
    assert token_digest("Jefe", "what do ya want for nothing?") == expected.decode()


@pytest.mark.parametrize(
    ("url", "address"),
    [
        (
            "https://api.openvehicles.com:6869",
            OvmsV2Address("api.openvehicles.com", 6870, True),
        ),
        (
            "http://ovms.example.org:6868/",
            OvmsV2Address("ovms.example.org", 6867, False),
        ),
        ("dexters-web.de", OvmsV2Address("dexters-web.de", 6867, False)),
        ("https://[::1]:6869", OvmsV2Address("::1", 6870, True)),
    ],
)
def test_v2_address(url: str, address: OvmsV2Address) -> None:
    """The v2 port follows the REST URL's scheme, on the same host."""
    assert v2_address(url) == address


def test_v2_address_without_host() -> None:
    """A URL without a host is refused."""
    with pytest.raises(ValueError, match="no host"):
        v2_address("https://")


def test_from_server_url() -> None:
    """A client for the v2 address of a REST URL."""
    client = OvmsV2Client.from_server_url(
        "https://api.openvehicles.com:6869", "DEMO", PASSWORD, timeout=5.0
    )
    assert (client.host, client.port, client.tls) == (
        "api.openvehicles.com",
        6870,
        True,
    )
    assert not client.connected


def test_vehicle_id_must_be_one_word() -> None:
    """The login line is split at spaces."""
    with pytest.raises(ValueError, match="one word"):
        OvmsV2Client(LOCALHOST, "MY CAR", PASSWORD)
    with pytest.raises(ValueError, match="one word"):
        OvmsV2Client(LOCALHOST, "", PASSWORD)


# --- login ----------------------------------------------------------------------


async def test_connect_receives_the_car_state(
    v2: OvmsV2Server, sim: OvmsSimulator
) -> None:
    """After login: Z (car connected), the stored records, T."""
    recorder = Recorder()
    async with make_client(v2, recorder=recorder) as client:
        assert client.connected
        assert client.car_connected is True
        await until(lambda: "T" in client.records)
        records = sim.vehicle("DEMO").build_records()
        for code in ("S", "D", "L", "Y"):
            assert client.records[code] == records[code]
        assert client.last_update_age == 0
        assert recorder.codes()[0] == "Z"
        assert recorder.codes()[-1] == "T"
    assert not client.connected
    assert recorder.errors == []  # close() is no drop
    assert await client.wait_closed() is None


async def test_vehicle_id_is_case_insensitive(v2: OvmsV2Server) -> None:
    """The server upper-cases the vehicle id."""
    async with make_client(v2, "demo") as client:
        assert client.car_connected


async def test_wrong_password(v2: OvmsV2Server) -> None:
    """The server closes without an answer: AuthenticationError, no secret shown."""
    client = make_client(v2, password="wrong-password-secret")
    with pytest.raises(AuthenticationError) as caught:
        await client.connect()
    assert v2.logins_refused == 1
    assert "wrong-password-secret" not in str(caught.value)
    assert not client.connected
    with pytest.raises(RuntimeError):
        await client.connect()  # a client connects once


async def test_unknown_vehicle(v2: OvmsV2Server) -> None:
    """An unknown vehicle id looks like a wrong password."""
    with pytest.raises(AuthenticationError):
        await make_client(v2, "NOSUCHCAR").connect()


async def test_server_without_the_password(v2: OvmsV2Server) -> None:
    """A server whose digest does not match is not trusted."""
    bad = token_digest("another-password", "A" * 22)
    v2.login_answer = f"MP-S 0 {'A' * 22} {bad}".encode()
    with pytest.raises(AuthenticationError, match="could not prove"):
        await make_client(v2).connect()


async def test_reflected_token(
    v2: OvmsV2Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server sending our own token back is refused, even with a valid digest."""
    monkeypatch.setattr(ovms_v2.secrets, "choice", lambda alphabet: "Q")
    v2.server_token = "Q" * 22
    with pytest.raises(AuthenticationError):
        await make_client(v2).connect()


@pytest.mark.parametrize(
    "answer",
    [b"HELLO", b"MP-S 1 user DEMO", b"MP-S 0 token !!not-base64!!", b"x" * 70000],
)
async def test_unexpected_login_answer(v2: OvmsV2Server, answer: bytes) -> None:
    """Anything but `MP-S 0 <token> <digest>` is an invalid response."""
    v2.login_answer = answer
    with pytest.raises(InvalidResponseError):
        await make_client(v2).connect()


async def test_connection_refused(socket_enabled: None) -> None:
    """Nothing listens: CommunicationError."""
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        port = sock.getsockname()[1]
    client = OvmsV2Client(LOCALHOST, "DEMO", PASSWORD, port=port, tls=False)
    with pytest.raises(CommunicationError, match="Cannot connect"):
        await client.connect()


async def test_login_timeout(socket_enabled: None) -> None:
    """A server that never answers the login: CommunicationError after the timeout."""
    held: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        held.append(writer)

    server = await asyncio.start_server(silent, LOCALHOST, 0)
    port = server.sockets[0].getsockname()[1]
    client = OvmsV2Client(
        LOCALHOST, "DEMO", PASSWORD, port=port, tls=False, timeout=0.2
    )
    try:
        with pytest.raises(CommunicationError, match="Timeout"):
            await client.connect()
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_no_peer_status(v2: OvmsV2Server) -> None:
    """Without Z the car's state stays unknown; commands still work."""
    v2.send_peer_status = False
    async with make_client(v2, timeout=0.2) as client:
        assert client.car_connected is None
        await client.wake_up()


async def test_connection_ends_before_peer_status(
    v2: OvmsV2Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection that ends right after the login fails connect()."""
    v2.send_peer_status = False
    original = v2._send_records

    def drop(app: Any, vehicle: SimVehicle, *, live: bool) -> None:
        original(app, vehicle, live=live)
        app.writer.close()

    monkeypatch.setattr(v2, "_send_records", drop)
    recorder = Recorder()
    client = make_client(v2, recorder=recorder)
    with pytest.raises(CommunicationError, match="closed the connection"):
        await client.connect()
    assert recorder.errors == []  # connect() raised it; no drop to report
    assert not client.connected


# --- TLS ------------------------------------------------------------------------


async def test_tls(socket_enabled: None, sim: OvmsSimulator, tmp_path: Path) -> None:
    """Over TLS with a trusted certificate; an untrusted one fails the connect."""
    certificates = make_certificates(tmp_path)
    server = OvmsV2Server(sim, tls=certificates.trusted)
    server.add_car("DEMO", PASSWORD, pin=PIN)
    async with server:
        client = make_client(
            server, tls=True, ssl_context=certificates.client_context()
        )
        async with client:
            assert client.car_connected
            await client.start_charging()
        # The system's default authorities do not know the test authority.
        with pytest.raises(CommunicationError, match="Cannot connect"):
            await make_client(server, tls=True).connect()


# --- commands -------------------------------------------------------------------


async def test_commands_act_on_the_car(v2: OvmsV2Server, sim: OvmsSimulator) -> None:
    """Each command reaches the car, changes it, and the car pushes its new state."""
    car = sim.vehicle("DEMO")
    recorder = Recorder()
    async with make_client(v2, recorder=recorder) as client:
        result = await client.start_charging()
        assert result == CommandResult(11, 0, "")
        assert car.charging
        await until(lambda: client.records["S"].split(",")[4] == "charging")
        await client.stop_charging()
        assert not car.charging
        await client.set_charge_current(16)
        assert car.charge_limit_amps == 16
        for mode in CHARGE_MODE_CODES:
            await client.set_charge_mode(mode)
            assert car.charge_mode == mode
        await client.wake_up()
        assert car.awake
        await client.unlock(PIN)
        assert not car.locked
        await client.lock(PIN)
        assert car.locked
    codes = [code for _, code, _ in v2.commands]
    assert codes == [11, 12, 15, *[10] * len(CHARGE_MODE_CODES), 18, 22, 20]
    assert v2.commands[2] == ("DEMO", 15, ("16",))
    assert v2.commands[3] == ("DEMO", 10, ("0",))


async def test_generic_command(v2: OvmsV2Server) -> None:
    """command() joins the parameters with commas and returns the car's text."""
    v2.forced_results[7] = (0, "SMS reply")
    async with make_client(v2) as client:
        result = await client.command(7, "STAT", 2)
    assert result == CommandResult(7, 0, "SMS reply")
    assert v2.commands == [("DEMO", 7, ("STAT", "2"))]


async def test_command_failed(v2: OvmsV2Server, sim: OvmsSimulator) -> None:
    """Result 1 without a text (firmware 3's own answer): refused or cannot do."""
    sim.vehicle("DEMO").unplug()
    async with make_client(v2) as client:
        with pytest.raises(CarRefusedError) as caught:
            await client.start_charging()
        assert (caught.value.code, caught.value.text) == (11, "")
        assert caught.value.reason == "failed"
        assert str(caught.value) == "The car refused command 11 or cannot do it"
        with pytest.raises(CarRefusedError):
            await client.set_charge_current(99)  # out of the car's range


async def test_command_failed_with_the_cars_text(
    v2: OvmsV2Server, sim: OvmsSimulator
) -> None:
    """A vehicle module that answers itself sends its text; success has it too."""
    v2.cars["DEMO"].module_texts = True
    sim.vehicle("DEMO").unplug()
    async with make_client(v2) as client:
        with pytest.raises(CarRefusedError) as caught:
            await client.start_charging()
        assert caught.value.text == "not plugged in"
        assert str(caught.value).endswith("or cannot do it: not plugged in")
        assert await client.wake_up() == CommandResult(18, 0, "")


async def test_command_the_car_cannot_do(v2: OvmsV2Server) -> None:
    """A command the car's module lacks is result 1, not 2 (firmware 3)."""
    v2.cars["DEMO"].commands -= {CarCommand.SET_CHARGE_MODE}
    async with make_client(v2) as client:
        with pytest.raises(CarRefusedError) as caught:
            await client.set_charge_mode("range")
    assert (caught.value.code, caught.value.text) == (10, "")


async def test_wrong_pin_is_not_shown(v2: OvmsV2Server, sim: OvmsSimulator) -> None:
    """A refused lock/unlock says so without the car's text (it may echo the PIN)."""
    v2.forced_results[22] = (1, f"bad pin {PIN}")
    async with make_client(v2) as client:
        with pytest.raises(CarRefusedError) as caught:
            await client.unlock(PIN)
        assert PIN not in str(caught.value)
        assert caught.value.text == ""
        v2.cars["DEMO"].module_texts = True  # "wrong PIN <what it got>"
        with pytest.raises(CarRefusedError) as caught:
            await client.lock("wrong-pin-0000")
        assert "wrong-pin-0000" not in str(caught.value)
        assert caught.value.text == ""
    assert sim.vehicle("DEMO").locked


async def test_password_in_car_text_is_dropped(v2: OvmsV2Server) -> None:
    """A car text that shows the server password is left out."""
    v2.forced_results[11] = (1, f"netpass {PASSWORD} wrong")
    async with make_client(v2) as client:
        with pytest.raises(CommandRejectedError) as caught:
            await client.start_charging()
    assert str(caught.value) == "The car refused command 11 or cannot do it"
    assert caught.value.text == ""


@pytest.mark.parametrize(
    ("result", "match"), [(2, "does not know"), (3, "does not implement")]
)
async def test_command_not_supported(v2: OvmsV2Server, result: int, match: str) -> None:
    """Results 2 and 3: NotSupportedError."""
    v2.forced_results[18] = (result, "")
    async with make_client(v2) as client:
        with pytest.raises(NotSupportedError, match=match):
            await client.wake_up()


@pytest.mark.parametrize("code", [8, 40, 49, 99])
async def test_unknown_command_is_unsupported(v2: OvmsV2Server, code: int) -> None:
    """Firmware 3 answers 2 to a code it does not know, and to 40 (SMS), 49 (AT)."""
    async with make_client(v2) as client:
        with pytest.raises(NotSupportedError, match=f"does not know command {code}"):
            await client.command(code, 1)


async def test_unknown_result_is_a_failure(v2: OvmsV2Server) -> None:
    """A result code beyond 3 counts as failed."""
    v2.forced_results[11] = (9, "")
    async with make_client(v2) as client:
        with pytest.raises(
            CarRefusedError, match=r"refused command 11 or cannot do it$"
        ):
            await client.start_charging()


@pytest.mark.parametrize(
    "call",
    [
        lambda client: client.set_charge_current(0),
        lambda client: client.set_charge_mode("eco"),
        lambda client: client.lock("12,34"),
        lambda client: client.unlock(""),
        lambda client: client.command(70000),
        lambda client: client.command(7, "a,b"),
        lambda client: client.command(7, "a\r\nMP-0 C5"),
    ],
)
async def test_invalid_arguments(
    v2: OvmsV2Server, call: Callable[[OvmsV2Client], Awaitable[Any]]
) -> None:
    """Bad arguments are refused before anything is sent."""
    async with make_client(v2) as client:
        with pytest.raises(ValueError, match=r"must|charge mode|codes") as caught:
            await call(client)
    assert "12,34" not in str(caught.value)
    assert v2.commands == []


async def test_car_offline_at_connect(v2: OvmsV2Server) -> None:
    """Z0: the car is offline; commands fail at once without being sent."""
    async with make_client(v2, "ROADSTER", ROADSTER_PASSWORD) as client:
        assert client.car_connected is False
        # The server still has the records the car sent last.
        await until(lambda: "T" in client.records)
        assert "W" in client.records
        with pytest.raises(DeviceOfflineError, match="offline"):
            await client.start_charging()
    assert v2.commands == []


async def test_car_drops_during_a_command(v2: OvmsV2Server, sim: OvmsSimulator) -> None:
    """Z0 while a command waits: DeviceOfflineError at once."""
    v2.silent_commands.add(11)
    async with make_client(v2, command_timeout=10.0) as client:
        task = asyncio.create_task(client.start_charging())
        await until(lambda: len(v2.commands) == 1)
        sim.vehicle("DEMO").car_online = False
        v2.push("DEMO")
        with pytest.raises(DeviceOfflineError):
            await task
        assert client.car_connected is False
        # And back: Z1, records again.
        sim.vehicle("DEMO").car_online = True
        v2.push("DEMO")
        await until(lambda: client.car_connected is True)
        await client.stop_charging()


async def test_command_timeout(v2: OvmsV2Server) -> None:
    """No answer within the command timeout: DeviceOfflineError; the link stays."""
    v2.silent_commands.add(11)
    async with make_client(v2, command_timeout=0.2) as client:
        with pytest.raises(DeviceOfflineError, match="did not answer"):
            await client.start_charging()
        assert client.connected
        # A late answer to it is no answer to the next command.
        v2.send_raw("DEMO", "c", "11,0")
        await client.stop_charging()


async def test_commands_take_turns(v2: OvmsV2Server, sim: OvmsSimulator) -> None:
    """Concurrent commands are sent one after the other."""
    async with make_client(v2) as client:
        results = await asyncio.gather(
            client.start_charging(), client.set_charge_current(10), client.wake_up()
        )
    assert [result.code for result in results] == [11, 15, 18]


# --- pushed messages ------------------------------------------------------------


async def test_pushed_messages(v2: OvmsV2Server, sim: OvmsSimulator) -> None:
    """push() after a change: the callback and `records` get the new state."""
    recorder = Recorder()
    async with make_client(v2, recorder=recorder) as client:
        await until(lambda: "T" in client.records)
        recorder.messages.clear()
        car = sim.vehicle("DEMO")
        car.soc = 42.5
        v2.push("DEMO")
        await until(lambda: ("T", "0") in recorder.messages)
        assert client.records["S"].startswith("42.5,")
        assert recorder.codes() == ["D", "L", "S", "Y", "T"]
        v2.send_raw("DEMO", "F", "3.3.004,VIN123,20,1,SIM,sim")
        await until(lambda: "F" in client.records)


async def test_paranoid_records_pass_through(
    v2: OvmsV2Server, sim: OvmsSimulator
) -> None:
    """A paranoid car's records arrive as E messages (end to end encrypted)."""
    sim.vehicle("DEMO").paranoid = True
    recorder = Recorder()
    async with make_client(v2, recorder=recorder) as client:
        await until(lambda: "T" in client.records)
    assert "E" in recorder.codes()
    assert "S" not in recorder.codes()


async def test_odd_messages(v2: OvmsV2Server, caplog: pytest.LogCaptureFixture) -> None:
    """Unmatched or odd answers reach the callback; a failing callback is logged."""
    recorder = Recorder()
    seen: list[str] = []

    def on_message(code: str, data: str) -> None:
        seen.append(code)
        if code == "P":
            raise RuntimeError("callback broke")
        recorder.on_message(code, data)

    async with make_client(v2, on_message=on_message) as client:
        await until(lambda: "T" in client.records)
        v2.send_raw("DEMO", "c", "11,0")  # nobody waits
        v2.send_raw("DEMO", "c", "garbage")
        v2.send_raw("DEMO", "T", "soon")
        v2.send_raw("DEMO", "P", "Acharge done")
        v2.send_raw("DEMO", "Z", "")
        await until(lambda: seen[-1] == "Z")
        assert ("c", "11,0") in recorder.messages
        assert ("c", "garbage") in recorder.messages
        assert client.last_update_age == 0
        assert client.car_connected is False
        assert client.connected
    assert "Error in the OVMS message callback" in caplog.text


# --- keep-alive -----------------------------------------------------------------


async def test_ping(v2: OvmsV2Server) -> None:
    """ping() waits for the answer; the keep-alive pings on its own."""
    async with make_client(v2, keepalive=0.05) as client:
        await client.ping()
        await until(lambda: v2.apps[0].received.count("A") >= 3)


async def test_server_ping_is_answered(v2: OvmsV2Server) -> None:
    """The server's A gets an a."""
    async with make_client(v2) as client:
        await until(lambda: "T" in client.records)
        v2.send_raw("DEMO", "A", "")
        await until(lambda: "a" in v2.apps[0].received)


async def test_unanswered_ping_ends_the_connection(v2: OvmsV2Server) -> None:
    """A silent server: the keep-alive's ping times out, the drop is reported."""
    v2.answer_pings = False
    recorder = Recorder()
    client = make_client(v2, recorder=recorder, keepalive=0.05, timeout=0.2)
    async with client:
        error = await client.wait_closed()
        assert isinstance(error, CommunicationError)
        assert "ping" in str(error)
        assert recorder.errors == [error]
        assert not client.connected
        with pytest.raises(CommunicationError):
            await client.ping()


# --- a connection that breaks ---------------------------------------------------


async def test_dropped_connection(v2: OvmsV2Server) -> None:
    """The server drops the link: reported once, commands fail."""
    recorder = Recorder()
    async with make_client(v2, recorder=recorder) as client:
        await until(lambda: "T" in client.records)
        v2.drop_all()
        await recorder.dropped.wait()
        assert isinstance(recorder.errors[0], CommunicationError)
        assert await client.wait_closed() is recorder.errors[0]
        with pytest.raises(CommunicationError, match="Not connected"):
            await client.start_charging()
    assert len(recorder.errors) == 1


async def test_drop_during_a_command(v2: OvmsV2Server) -> None:
    """The link ends while a command waits: CommunicationError."""
    v2.drop_on_command = True
    async with make_client(v2, command_timeout=10.0) as client:
        with pytest.raises(CommunicationError):
            await client.start_charging()
        assert not client.connected


async def test_close_during_a_command(v2: OvmsV2Server) -> None:
    """close() while a command waits fails it; no drop is reported."""
    v2.silent_commands.add(11)
    recorder = Recorder()
    client = make_client(v2, recorder=recorder, command_timeout=10.0)
    await client.connect()
    task = asyncio.create_task(client.start_charging())
    await until(lambda: len(v2.commands) == 1)
    await client.close()
    with pytest.raises(CommunicationError, match="closed"):
        await task
    assert recorder.errors == []


async def test_reset_connection(v2: OvmsV2Server) -> None:
    """A socket error while reading: CommunicationError."""
    recorder = Recorder()
    async with make_client(v2, recorder=recorder) as client:
        await until(lambda: "T" in client.records)
        assert client._reader is not None
        client._reader.set_exception(ConnectionResetError())
        await recorder.dropped.wait()
    assert "ConnectionResetError" in str(recorder.errors[0])


async def test_write_fails(v2: OvmsV2Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failing write: CommunicationError, and the connection ends."""
    recorder = Recorder()
    async with make_client(v2, recorder=recorder) as client:
        assert client._writer is not None

        async def broken() -> None:
            raise BrokenPipeError

        monkeypatch.setattr(client._writer, "drain", broken)
        with pytest.raises(CommunicationError, match="Cannot send"):
            await client.start_charging()
        assert not client.connected
    assert len(recorder.errors) == 1


@pytest.mark.parametrize(
    "line",
    [
        b"%%not base64%%",
        base64.b64encode(b"random bytes, not our cipher"),
        b"A" * 70000,
    ],
)
async def test_garbled_line(v2: OvmsV2Server, line: bytes) -> None:
    """A line that is not an encrypted message: InvalidResponseError, link ends."""
    recorder = Recorder()
    async with make_client(v2, recorder=recorder) as client:
        await until(lambda: "T" in client.records)
        v2.send_garbage("DEMO", line)
        await recorder.dropped.wait()
    assert isinstance(recorder.errors[0], InvalidResponseError)


async def test_empty_lines_are_skipped(v2: OvmsV2Server) -> None:
    """A bare CR LF is no message."""
    async with make_client(v2) as client:
        await until(lambda: "T" in client.records)
        v2.send_garbage("DEMO", b"")
        await client.wake_up()


async def test_close_without_connect() -> None:
    """close() on a client that never connected is harmless."""
    client = OvmsV2Client(LOCALHOST, "DEMO", PASSWORD)
    await client.close()
    assert not client.connected


# --- secrets --------------------------------------------------------------------


async def test_no_secret_in_logs(
    v2: OvmsV2Server, sim: OvmsSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """Password, PIN, tokens and digests never reach a log line (DEBUG included)."""
    caplog.set_level(logging.DEBUG)
    async with make_client(v2) as client:
        await client.unlock(PIN)
        await client.lock(PIN)
        with pytest.raises(CommandRejectedError):
            await client.lock("wrong-pin-secret")
    with pytest.raises(AuthenticationError):
        await make_client(v2, password="wrong-password-secret").connect()
    text = caplog.text
    assert "sent command 22" in text
    for secret in [*secrets_of(v2), "wrong-pin-secret", "wrong-password-secret"]:
        assert secret not in text


async def test_car_checks_its_arguments(v2: OvmsV2Server, sim: OvmsSimulator) -> None:
    """The simulated car refuses an unknown mode number or a car without a PIN."""
    sim.vehicle("ROADSTER").car_online = True
    v2.cars["DEMO"].module_texts = True
    async with make_client(v2) as client:
        with pytest.raises(CommandRejectedError, match="unknown charge mode"):
            await client.command(10, 2)
    async with make_client(v2, "ROADSTER", ROADSTER_PASSWORD) as client:
        with pytest.raises(CommandRejectedError):
            await client.unlock("any-pin-at-all")
    assert sim.vehicle("ROADSTER").locked
