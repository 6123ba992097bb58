"""How to make each provider's simulator fail, and what Home Assistant then shows.

`tests/test_faults.py` runs every provider through every `Fault`. A provider's
`ProviderFaults` says how its simulator shows each fault (its own fault
switches where it has them, else an `HttpFault` in front of it), what the
documented outcome is, and which faults cannot happen to it (with the reason).
A new provider joins the matrix with a subclass here, registered in `ADAPTERS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import formatdate, parsedate_to_datetime
from enum import StrEnum
from typing import Any, ClassVar

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from tests.evenergy.fixtures import USER_ID as EVENERGY_USER, oauth_data
from tests.evlinkha.fixtures import USER_ID as EVLINKHA_USER
from tests.evmonitor.fixtures import EMAIL
from tests.goe.fixtures import SERIAL
from tests.ovms.fixtures import OVMS_USER
from tests.simulators.common import HttpFault
from tests.simulators.evenergy import EvEnergyFault, EvEnergySimulator
from tests.simulators.evlinkha import EvLinkFault, EvLinkSimulator
from tests.simulators.evmonitor import EvMonitorFault, EvMonitorSimulator
from tests.simulators.goe import GoeFault
from tests.simulators.ovms import OvmsFault


class Fault(StrEnum):
    """What goes wrong between Home Assistant and a service."""

    TIMEOUT = "timeout"
    CONNECTION_REFUSED = "connection_refused"
    TLS_ERROR = "tls_error"
    HTTP_500 = "http_500"
    HTTP_502_HTML = "http_502_html"
    HTTP_503_HTML = "http_503_html"
    RATE_LIMITED = "429_retry_after"
    RATE_LIMITED_BARE = "429_no_retry_after"
    MALFORMED_JSON = "malformed_json"
    EMPTY_BODY = "empty_body"
    WRONG_TYPES = "wrong_types"
    MISSING_FIELDS = "missing_fields"
    HUGE_BODY = "huge_body"
    EXPIRED_CREDENTIALS = "expired_credentials"
    REVOKED_CREDENTIALS = "revoked_credentials"
    CLOCK_SKEW = "clock_skew"


class Outcome(StrEnum):
    """What the user sees while a fault lasts (README, "How data is updated")."""

    # Requests fail: the entities are unavailable; one line when it starts and
    # one when it ends. A sink keeps its queue, shows the error and retries.
    UNAVAILABLE = "unavailable"
    # As UNAVAILABLE, and nothing is sent until the wait the service asked for
    # (or the client's default wait) is over.
    RATE_LIMITED = "rate_limited"
    # The credentials are refused: Home Assistant asks the user to sign in
    # again, and nothing is polled until then.
    REAUTH = "reauth"
    # The answer is read; the value it lacks (or mistypes) shows as unknown,
    # everything else as before; nothing is logged.
    VALUE_UNKNOWN = "value_unknown"
    # Nothing the user sees changes and nothing is logged (a token renewed on
    # the way, a large answer read, times from a clock that runs ahead).
    UNCHANGED = "unchanged"


DEFAULT_OUTCOMES: Mapping[Fault, Outcome] = {
    Fault.TIMEOUT: Outcome.UNAVAILABLE,
    Fault.CONNECTION_REFUSED: Outcome.UNAVAILABLE,
    Fault.TLS_ERROR: Outcome.UNAVAILABLE,
    Fault.HTTP_500: Outcome.UNAVAILABLE,
    Fault.HTTP_502_HTML: Outcome.UNAVAILABLE,
    Fault.HTTP_503_HTML: Outcome.UNAVAILABLE,
    Fault.RATE_LIMITED: Outcome.RATE_LIMITED,
    Fault.RATE_LIMITED_BARE: Outcome.RATE_LIMITED,
    Fault.MALFORMED_JSON: Outcome.UNAVAILABLE,
    Fault.EMPTY_BODY: Outcome.UNAVAILABLE,
    Fault.WRONG_TYPES: Outcome.VALUE_UNKNOWN,
    Fault.MISSING_FIELDS: Outcome.VALUE_UNKNOWN,
    Fault.HUGE_BODY: Outcome.UNCHANGED,
    Fault.EXPIRED_CREDENTIALS: Outcome.UNCHANGED,
    Fault.REVOKED_CREDENTIALS: Outcome.REAUTH,
    Fault.CLOCK_SKEW: Outcome.UNCHANGED,
}

# Seconds a 429 asks to wait (longer than any poll interval of the fixtures, so
# that a poll that ignored it would show).
RETRY_AFTER = 3600
# Bytes of whitespace a huge answer carries besides its JSON.
HUGE_PADDING = 2 * 1024 * 1024
# How far ahead of Home Assistant's clock the service's clock runs.
SKEW = timedelta(minutes=10)
DROP = object()  # `edit_fields` returns it to remove a field

PROXY_500 = (
    "<html><head><title>500 Internal Server Error</title></head>"
    "<body><center><h1>500 Internal Server Error</h1></center>"
    "<hr><center>nginx</center></body></html>"
)
PROXY_502 = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center>"
    "<hr><center>nginx</center></body></html>"
)
PROXY_503 = (
    "<!DOCTYPE html><html><head><title>503 Service Unavailable</title></head>"
    "<body><h1>Service Unavailable</h1><p>Down for maintenance.</p></body></html>"
)


def edit_fields(
    value: Any, keys: frozenset[str], change: Callable[[str, Any], Any]
) -> Any:
    """`value` with every field named in `keys` (at any depth) changed or dropped."""
    if isinstance(value, list):
        return [edit_fields(item, keys, change) for item in value]
    if not isinstance(value, dict):
        return value
    result = {}
    for key, item in value.items():
        new = change(key, item) if key in keys else item
        if new is not DROP:
            result[key] = edit_fields(new, keys, change)
    return result


def shift_iso(text: Any, shift: timedelta = SKEW) -> Any:
    """An ISO 8601 time moved by `shift`, in the same style (`...Z` or `+00:00`)."""
    if not isinstance(text, str) or not text:
        return text
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00")) + shift
    if text.endswith("Z"):
        return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return parsed.isoformat()


class ProviderFaults:
    """How one provider's simulator shows each fault, and what the user then sees.

    `probe` is a value entity of the first device: the test renames it, and
    VALUE_UNKNOWN faults take its value away. `api_paths` are the requests the
    generic faults (an `HttpFault`) hit. `skips` names the faults that cannot
    happen to this provider, with the reason.
    """

    name: ClassVar[str]
    probe: ClassVar[str]
    api_paths: ClassVar[tuple[str, ...]] = ()
    # Seconds the client waits after a 429 without Retry-After (None: its poll
    # interval, as after any failure).
    default_wait: ClassVar[float | None] = None
    # Whether the provider's devices are polled (a sink only sends data).
    polled: ClassVar[bool] = True
    outcomes: ClassVar[Mapping[Fault, Outcome]] = {}
    skips: ClassVar[Mapping[Fault, str]] = {}
    # The entry's data key that holds the service's URL (for the TLS front).
    url_key: ClassVar[str] = "server_url"

    def __init__(self, sim: Any) -> None:
        """Fail `sim`, the provider's running simulator."""
        self.sim = sim
        self._port: int | None = None

    def outcome(self, fault: Fault) -> Outcome:
        """The documented outcome of `fault` for this provider."""
        return self.outcomes.get(fault, DEFAULT_OUTCOMES[fault])

    # --- the simulator's own clock and switches ---------------------------------

    def advance(self, seconds: float) -> None:
        """Move the simulator's clock along with Home Assistant's."""
        self.sim.advance(seconds)

    def set_slow(self, slow: bool) -> None:
        """Answer (or not) after much longer than the client waits."""
        raise NotImplementedError

    def set_malformed(self, malformed: bool) -> None:
        """Answer 200 with a body that is not JSON (or not any more)."""
        raise NotImplementedError

    def set_http_fault(self, fault: HttpFault | None) -> None:
        """Fail the requests an `HttpFault` matches (None: no more)."""
        self.sim.http_fault = fault

    @property
    def http_fault(self) -> HttpFault | None:
        """The `HttpFault` in place, if any."""
        fault: HttpFault | None = self.sim.http_fault
        return fault

    async def stop(self) -> None:
        """Stop listening: connections are refused."""
        self._port = int(self.sim.url.rsplit(":", 1)[1])
        await self.sim.stop()

    async def restart(self) -> None:
        """Listen again on the same port."""
        await self.sim.start(self._port)

    # --- the answers a fault changes ---------------------------------------------

    def mistype(self, path: str, value: Any) -> Any:
        """The answer with the probe's value of another type."""
        raise NotImplementedError

    def drop_field(self, path: str, value: Any) -> Any:
        """The answer without the probe's value."""
        raise NotImplementedError

    def skew(self, path: str, value: Any) -> Any:
        """The answer with its data times from a clock that runs SKEW ahead."""
        raise NotImplementedError

    def skew_headers(self, path: str, headers: Any) -> None:
        """Headers with times from a clock that runs SKEW ahead (most need none)."""

    # --- credentials ---------------------------------------------------------------

    def expire_credentials(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Let the session, token or sign-in expire (the credentials stay valid)."""
        raise NotImplementedError

    def renewals(self) -> int:
        """How often the service renewed a session or token (logins, refreshes)."""
        return 0

    def revoke_credentials(self) -> None:
        """Make the entry's credentials invalid at the service."""
        raise NotImplementedError

    def new_credentials(self) -> dict[str, Any]:
        """Entry data a completed reauth stores (valid at the service)."""
        raise NotImplementedError

    # --- faults --------------------------------------------------------------------

    def _answer(
        self,
        status: int,
        body: str = "",
        content_type: str = "text/html",
        headers: Mapping[str, str] | None = None,
    ) -> HttpFault:
        return HttpFault.answer(
            status,
            body,
            content_type=content_type,
            headers=headers,
            paths=self.api_paths,
        )

    async def inject(
        self, fault: Fault, hass: HomeAssistant, entry: ConfigEntry
    ) -> None:
        """Start `fault` (TLS_ERROR is the test's TLS front)."""
        match fault:
            case Fault.TIMEOUT:
                self.set_slow(True)
            case Fault.CONNECTION_REFUSED:
                await self.stop()
            case Fault.HTTP_500:
                self.set_http_fault(self._answer(500, PROXY_500))
            case Fault.HTTP_502_HTML:
                self.set_http_fault(self._answer(502, PROXY_502))
            case Fault.HTTP_503_HTML:
                self.set_http_fault(self._answer(503, PROXY_503))
            case Fault.RATE_LIMITED:
                self.set_http_fault(
                    self._answer(
                        429,
                        "Too many requests",
                        "text/plain",
                        {"Retry-After": str(RETRY_AFTER)},
                    )
                )
            case Fault.RATE_LIMITED_BARE:
                self.set_http_fault(
                    self._answer(429, "Too many requests", "text/plain")
                )
            case Fault.MALFORMED_JSON:
                self.set_malformed(True)
            case Fault.EMPTY_BODY:
                self.set_http_fault(self._answer(200, "", "application/json"))
            case Fault.WRONG_TYPES:
                self.set_http_fault(HttpFault(edit_json=self.mistype))
            case Fault.MISSING_FIELDS:
                self.set_http_fault(HttpFault(edit_json=self.drop_field))
            case Fault.HUGE_BODY:
                self.set_http_fault(HttpFault(padding=HUGE_PADDING))
            case Fault.EXPIRED_CREDENTIALS:
                self.expire_credentials(hass, entry)
            case Fault.REVOKED_CREDENTIALS:
                self.revoke_credentials()
            case Fault.CLOCK_SKEW:
                self.set_http_fault(
                    HttpFault(edit_json=self.skew, edit_headers=self.skew_headers)
                )

    async def clear(self, fault: Fault) -> None:
        """End `fault` (credentials: the test completes the reauth)."""
        match fault:
            case Fault.TIMEOUT:
                self.set_slow(False)
            case Fault.CONNECTION_REFUSED:
                await self.restart()
            case Fault.MALFORMED_JSON:
                self.set_malformed(False)
            case _:
                self.set_http_fault(None)


class GoeFaults(ProviderFaults):
    """go-e cloud: one charger; faults per charger, or in front of the cloud."""

    name = "goe"
    probe = "sensor.go_e_charger_012345_charge_power"
    skips: ClassVar[Mapping[Fault, str]] = {
        Fault.EXPIRED_CREDENTIALS: (
            "the go-e cloud API token never expires; a token regenerated in the"
            " app is the revoked case"
        ),
    }

    @property
    def charger(self) -> Any:
        """The simulated charger."""
        return self.sim.charger(SERIAL)

    def advance(self, seconds: float) -> None:
        """The charger charges on."""
        self.charger.advance(seconds)

    def set_slow(self, slow: bool) -> None:
        """The charger's SLOW fault (its answers come after an hour)."""
        self.charger.slow_seconds = 3600
        self.charger.fault = GoeFault.SLOW if slow else GoeFault.NONE

    def set_malformed(self, malformed: bool) -> None:
        """The charger's MALFORMED fault."""
        self.charger.fault = GoeFault.MALFORMED if malformed else GoeFault.NONE

    async def stop(self) -> None:
        """The cloud stops listening."""
        self._port = int(self.sim.cloud_url.rsplit(":", 1)[1])
        self._local = int(self.sim.local_host(SERIAL).rsplit(":", 1)[1])
        await self.sim.stop()

    async def restart(self) -> None:
        """The cloud (and the charger's local API) listen on their old ports."""
        await self.sim.start(self._port, local_ports={SERIAL: self._local})

    def mistype(self, path: str, value: Any) -> Any:
        """`nrg` (voltages, currents, powers) as a text instead of a list."""
        return edit_fields(value, frozenset({"nrg"}), lambda key, item: "11 kW")

    def drop_field(self, path: str, value: Any) -> Any:
        """No `nrg`."""
        return edit_fields(value, frozenset({"nrg"}), lambda key, item: DROP)

    def skew(self, path: str, value: Any) -> Any:
        """The status has no times; the Last-Modified header has."""
        return value

    def skew_headers(self, path: str, headers: Any) -> None:
        """Last-Modified from a clock SKEW ahead."""
        if "Last-Modified" in headers:
            moved = datetime.strptime(
                headers["Last-Modified"], "%a, %d %b %Y %H:%M:%S GMT"
            ).replace(tzinfo=UTC)
            headers["Last-Modified"] = (moved + SKEW).strftime(
                "%a, %d %b %Y %H:%M:%S GMT"
            )

    def revoke_credentials(self) -> None:
        """The user regenerated the token in the go-e app."""
        self.charger.token = "sim-token-regenerated"

    def new_credentials(self) -> dict[str, Any]:
        """The regenerated token."""
        return {"token": "sim-token-regenerated"}


# A record's time in `/api/protocol` rows (and in the per-record answers).
OVMS_TIMES = frozenset({"m_msgtime", *(f"m_msgtime_{code}" for code in "sdlywft")})


def _edit_soc(rows: Any, change: Callable[[str], str]) -> Any:
    """`/api/protocol` rows with the S record's state of charge changed."""
    if not isinstance(rows, list):
        return rows
    for row in rows:
        if isinstance(row, dict) and row.get("m_code") == "S":
            soc, _, rest = row["m_msg"].partition(",")
            row["m_msg"] = f"{change(soc)},{rest}"
    return rows


class OvmsFaults(ProviderFaults):
    """An OVMS server with two cars."""

    name = "ovms"
    probe = "sensor.ovms_demo_battery"
    api_paths = ("/api/",)
    default_wait = 60.0  # DEFAULT_RETRY_AFTER: the server sends no Retry-After

    def set_slow(self, slow: bool) -> None:
        """The server's SLOW fault."""
        self.sim.slow_seconds = 3600
        self.sim.fault = OvmsFault.SLOW if slow else OvmsFault.NONE

    def set_malformed(self, malformed: bool) -> None:
        """The server's MALFORMED fault."""
        self.sim.fault = OvmsFault.MALFORMED if malformed else OvmsFault.NONE

    def mistype(self, path: str, value: Any) -> Any:
        """The state of charge (the S record's first field) as no number."""
        return _edit_soc(value, lambda soc: f"v{soc}")

    def drop_field(self, path: str, value: Any) -> Any:
        """No state of charge (an empty first field of the S record)."""
        return _edit_soc(value, lambda soc: "")

    def skew(self, path: str, value: Any) -> Any:
        """Record times SKEW ahead, as the server's clock runs (see skew_headers)."""

        def later(key: str, item: Any) -> Any:
            if not isinstance(item, str) or not item:
                return item
            moved = datetime.fromisoformat(item) + SKEW
            return moved.strftime("%Y-%m-%d %H:%M:%S")

        return edit_fields(value, OVMS_TIMES, later)

    def skew_headers(self, path: str, headers: Any) -> None:
        """The server's Date from the same clock SKEW ahead: ages stay as they are."""
        if "Date" in headers:
            moved = parsedate_to_datetime(headers["Date"]) + SKEW
            headers["Date"] = formatdate(moved.timestamp(), usegmt=True)

    def expire_credentials(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """The server ends every session (its idle timeout)."""
        self.sim.expire_sessions()

    def renewals(self) -> int:
        """Logins."""
        return sum(
            1
            for method, path in self.sim.requests
            if (method, path) == ("GET", "/api/cookie")
        )

    def revoke_credentials(self) -> None:
        """The password was changed on the server; the session ends."""
        self.sim.users[OVMS_USER].password = "changed-password-secret"
        self.sim.expire_sessions()

    def new_credentials(self) -> dict[str, Any]:
        """The new password."""
        return {"password": "changed-password-secret"}


EVENERGY_TIMES = frozenset({"sampled_at", "logged_at"})


class EvEnergyFaults(ProviderFaults):
    """An ev.energy user (OAuth) with two vehicles and a charger."""

    name = "evenergy"
    probe = "sensor.zoe_battery"
    api_paths = ("/v2/",)
    default_wait = 60.0  # DEFAULT_RETRY_AFTER
    url_key = "base_url"

    def set_slow(self, slow: bool) -> None:
        """The API's SLOW fault."""
        self.sim.slow_seconds = 3600
        self.sim.fault = EvEnergyFault.SLOW if slow else EvEnergyFault.NONE

    def set_malformed(self, malformed: bool) -> None:
        """The API's MALFORMED fault."""
        self.sim.fault = EvEnergyFault.MALFORMED if malformed else EvEnergyFault.NONE

    def mistype(self, path: str, value: Any) -> Any:
        """The state of charge as a text."""
        return edit_fields(
            value,
            frozenset({"state_of_charge_percentage"}),
            lambda key, item: "forty-two",
        )

    def drop_field(self, path: str, value: Any) -> Any:
        """No state of charge."""
        return edit_fields(
            value, frozenset({"state_of_charge_percentage"}), lambda key, item: DROP
        )

    def skew(self, path: str, value: Any) -> Any:
        """Sample and log times SKEW ahead."""
        return edit_fields(value, EVENERGY_TIMES, lambda key, item: shift_iso(item))

    def expire_credentials(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """The service ends the access token before the expiry HA stored.

        (The refresh token stays valid. The expiry both know is renewed before
        any request: tests/evenergy/test_integration.py.)
        """
        self.sim.expire_tokens()

    def renewals(self) -> int:
        """Token requests (refreshes)."""
        return len(self.sim.token_requests)

    def revoke_credentials(self) -> None:
        """The user revoked Home Assistant's access: the token and its refresh."""
        self.sim.revoke(EVENERGY_USER)

    def new_credentials(self) -> dict[str, Any]:
        """A token of a new sign-in."""
        sim: EvEnergySimulator = self.sim
        token = oauth_data(sim)["token"]
        return {"token": token}


EVLINKHA_TIMES = frozenset({"lastSeen", "lastUpdated"})


class EvLinkFaults(ProviderFaults):
    """An EVLinkHA pro user with two vehicles."""

    name = "evlinkha"
    probe = "sensor.g6_battery"
    api_paths = ("/api/",)
    skips: ClassVar[Mapping[Fault, str]] = {
        Fault.EXPIRED_CREDENTIALS: (
            "an EVLinkHA API key never expires; a deleted key is the revoked case"
        ),
    }

    def set_slow(self, slow: bool) -> None:
        """The service's SLOW fault."""
        self.sim.slow_seconds = 3600
        self.sim.fault = EvLinkFault.SLOW if slow else EvLinkFault.NONE

    def set_malformed(self, malformed: bool) -> None:
        """The service's MALFORMED fault."""
        self.sim.fault = EvLinkFault.MALFORMED if malformed else EvLinkFault.NONE

    def mistype(self, path: str, value: Any) -> Any:
        """The battery level as a text."""
        return edit_fields(
            value, frozenset({"batteryLevel"}), lambda key, item: "fifty"
        )

    def drop_field(self, path: str, value: Any) -> Any:
        """No battery level."""
        return edit_fields(value, frozenset({"batteryLevel"}), lambda key, item: DROP)

    def skew(self, path: str, value: Any) -> Any:
        """Last seen and last updated SKEW ahead."""
        return edit_fields(value, EVLINKHA_TIMES, lambda key, item: shift_iso(item))

    def revoke_credentials(self) -> None:
        """The user deleted the API key and made a new one."""
        sim: EvLinkSimulator = self.sim
        sim.users[EVLINKHA_USER].api_key = "evl-sim-api-key-renewed-0002"

    def new_credentials(self) -> dict[str, Any]:
        """The new key."""
        return {"api_key": "evl-sim-api-key-renewed-0002"}


class EvMonitorFaults(ProviderFaults):
    """An EV-Monitor logbook: a sink, whose uploads meet the faults."""

    name = "evmonitor"
    probe = "sensor.ev_monitor_the_rocket_upload_queue"
    api_paths = ("/api/",)
    polled = False
    outcomes: ClassVar[Mapping[Fault, Outcome]] = {
        # The push answer is what a sink reads: without a readable SUCCESS the
        # upload failed, and the snapshots stay queued.
        Fault.WRONG_TYPES: Outcome.UNAVAILABLE,
        Fault.MISSING_FIELDS: Outcome.UNAVAILABLE,
    }
    skips: ClassVar[Mapping[Fault, str]] = {
        Fault.CLOCK_SKEW: (
            "EV-Monitor reports no data times: Home Assistant's clock stamps the"
            " snapshots it uploads"
        ),
    }

    def set_slow(self, slow: bool) -> None:
        """The service's SLOW fault."""
        sim: EvMonitorSimulator = self.sim
        sim.slow_seconds = 3600
        sim.fault = EvMonitorFault.SLOW if slow else EvMonitorFault.NONE

    def set_malformed(self, malformed: bool) -> None:
        """The service's MALFORMED fault."""
        sim: EvMonitorSimulator = self.sim
        sim.fault = EvMonitorFault.MALFORMED if malformed else EvMonitorFault.NONE

    def mistype(self, path: str, value: Any) -> Any:
        """SUCCESS as a number."""
        return edit_fields(value, frozenset({"SUCCESS"}), lambda key, item: 1)

    def drop_field(self, path: str, value: Any) -> Any:
        """No SUCCESS."""
        return edit_fields(value, frozenset({"SUCCESS"}), lambda key, item: DROP)

    def expire_credentials(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """The sign-in token expires (after 10 minutes at the real service)."""
        self.sim.expire_tokens()

    def renewals(self) -> int:
        """Sign-ins."""
        sim: EvMonitorSimulator = self.sim
        return sim.tokens_issued

    def revoke_credentials(self) -> None:
        """The password was changed at EV-Monitor."""
        self.sim.users[EMAIL].password = "evm-sim-password-changed-0002"
        self.sim.expire_tokens()

    def new_credentials(self) -> dict[str, Any]:
        """The new password."""
        return {"password": "evm-sim-password-changed-0002"}


ADAPTERS: Mapping[str, type[ProviderFaults]] = {
    adapter.name: adapter
    for adapter in (
        GoeFaults,
        OvmsFaults,
        EvEnergyFaults,
        EvLinkFaults,
        EvMonitorFaults,
    )
}
