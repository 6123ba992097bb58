"""The soak's world: each provider's simulator, its entries, story and faults.

One `SoakProvider` per provider of PROVIDERS (`PROVIDERS_IN_SOAK`; a test checks
that every registered provider has one): it starts the provider's simulator with
the devices asked for, adds and sets up the entries, moves the simulator's
clock, tells a little story (cars plug in, charge, drive) and switches the
faults its service can show. Everything random comes from the soak's seeded
RNG, so a rerun with the same seed is the same run.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
import random
from typing import Any, ClassVar
from urllib.parse import urlsplit

import aiohttp
from aiohttp.test_utils import TestClient
from homeassistant.config_entries import SOURCE_REAUTH
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.const import DOMAIN
from tests.evenergy.fixtures import (
    CLIENT_ID,
    CLIENT_SECRET,
    EMAIL as EVENERGY_EMAIL,
    USER_ID as EVENERGY_USER,
    import_credential,
    oauth_data,
)
from tests.evlinkha.fixtures import (
    API_KEY,
    EMAIL as EVLINKHA_EMAIL,
    USER_ID as EVLINKHA_USER,
)
from tests.evmonitor.fixtures import EMAIL as EVMONITOR_EMAIL, PASSWORD
from tests.goe.fixtures import goe_cloud_data
from tests.ovms.fixtures import OVMS_PASSWORD, OVMS_USER, ovms_data
from tests.simulators import evenergy, evlinkha, evmonitor, goe, ovms
from tests.simulators.common import SimServer

SLOW_SECONDS = (5.0, 45.0)  # answers this late; the clients give up after 15-30 s
REVOKED = "revoked-credential"


class Fault(StrEnum):
    """What goes wrong at a service, for a while."""

    # The service is down: connections are refused.
    OUTAGE = "outage"
    # It answers 500 (go-e: 502) with an HTML page.
    SERVER_ERROR = "server_error"
    # Its answers come late, some after the client gave up.
    SLOW = "slow"
    # It no longer accepts the credentials: Home Assistant asks to sign in again,
    # and when the fault ends the user does.
    AUTH_EXPIRY = "auth_expiry"
    # Its sessions or tokens end at once: the client renews them by itself.
    TOKEN_EXPIRY = "token_expiry"


@dataclass
class World:
    """What the providers share: Home Assistant and a client of its HTTP server."""

    hass: HomeAssistant
    http: TestClient
    providers: list[SoakProvider] = field(default_factory=list)

    @property
    def entries(self) -> list[MockConfigEntry]:
        """Every entry of every provider."""
        return [entry for provider in self.providers for entry in provider.entries]

    def forget(self) -> None:
        """Drop the simulators' records of the run (see `SoakProvider.forget`)."""
        for provider in self.providers:
            provider.forget()


async def restart(server: SimServer, port: int) -> None:
    """Serve again on the port a stopped simulator had."""
    await server.start(port)


def port_of(url: str) -> int:
    """The port of a simulator's URL."""
    port = urlsplit(url).port
    assert port is not None
    return port


class SoakProvider(ABC):
    """One provider in the soak: its simulator, entries, story and faults."""

    name: ClassVar[str]
    # Its share of the soak's devices.
    weight: ClassVar[int] = 1
    # The faults its service can show.
    faults: ClassVar[tuple[Fault, ...]] = (
        Fault.OUTAGE,
        Fault.SERVER_ERROR,
        Fault.SLOW,
        Fault.AUTH_EXPIRY,
    )
    # A sink reads other providers' vehicles: it is set up after them.
    sink: ClassVar[bool] = False

    def __init__(self, world: World) -> None:
        """Nothing runs until `async_start`."""
        self.world = world
        self.hass = world.hass
        self.entries: list[MockConfigEntry] = []

    async def _add(self, entry: MockConfigEntry) -> None:
        entry.add_to_hass(self.hass)
        assert await self.hass.config_entries.async_setup(entry.entry_id)
        await self.hass.async_block_till_done()
        self.entries.append(entry)

    @abstractmethod
    async def async_start(self, devices: int) -> None:
        """Start the simulator with `devices` devices; add and set up the entries."""

    @abstractmethod
    async def async_stop(self) -> None:
        """Stop the simulator."""

    @abstractmethod
    def advance(self, seconds: float) -> None:
        """Move the simulator's clock."""

    def story(self, rng: random.Random) -> None:  # noqa: B027 - a sink has none
        """Something happens to some devices (plug in, unplug, drive)."""

    @abstractmethod
    def forget(self) -> None:
        """Drop what the simulator records for tests (requests, pushes, sets).

        The records grow with every request and the soak reads none of them.
        Their memory is the simulator's, yet tracemalloc traces much of it to
        aiohttp's lines, which the measurement cannot tell from Home Assistant's:
        go-e's status-request dicts showed up at aiohttp's middleware line
        (web_middlewares.py, `return await handler(request)`) and their strings
        at `request.query`, the servers' (method, path) tuples at aiohttp's
        `Application._handle`.
        """

    @abstractmethod
    async def async_begin(self, fault: Fault, rng: random.Random) -> None:
        """The fault starts."""

    @abstractmethod
    async def async_end(self, fault: Fault) -> None:
        """The fault ends (for AUTH_EXPIRY: the service accepts the credentials)."""

    def reauth_input(self, entry: MockConfigEntry) -> dict[str, Any]:
        """What the user types into the entry's re-authentication form."""
        raise NotImplementedError

    async def async_sign_in_again(self) -> int:
        """The user completes every re-authentication of the provider's entries.

        Returns how many there were.
        """
        done = 0
        flows = self.hass.config_entries.flow.async_progress_by_handler(
            DOMAIN, match_context={"source": SOURCE_REAUTH}
        )
        for flow in flows:
            entry = next(
                (e for e in self.entries if e.entry_id == flow["context"]["entry_id"]),
                None,
            )
            if entry is None:
                continue
            result = await self._reauth(flow["flow_id"], entry)
            assert result["type"] is FlowResultType.ABORT, result
            assert result["reason"] == "reauth_successful", result
            done += 1
        return done

    async def _reauth(self, flow_id: str, entry: MockConfigEntry) -> Any:
        return await self.hass.config_entries.flow.async_configure(
            flow_id, self.reauth_input(entry)
        )


# --- go-e ----------------------------------------------------------------------------


class GoeSoak(SoakProvider):
    """go-e chargers, one entry each: most through the cloud, some on the network."""

    name = "goe"
    weight = 10
    LOCAL_EVERY = 4  # every fourth charger is reached on the network

    async def async_start(self, devices: int) -> None:
        """One simulator for all chargers."""
        self.chargers = [
            goe.SimCharger(serial=f"{100000 + index}", token=f"soak-goe-token-{index}")
            for index in range(devices)
        ]
        self.sim = goe.GoeSimulator(self.chargers)
        await self.sim.start()
        self._ports = (
            port_of(self.sim.cloud_url),
            {c.serial: port_of(self.sim.local_url(c.serial)) for c in self.chargers},
        )
        for index, charger in enumerate(self.chargers):
            if index % self.LOCAL_EVERY == self.LOCAL_EVERY - 1:
                data = {
                    "provider": "goe",
                    "connection": "local",
                    "serial": charger.serial,
                    "host": self.sim.local_host(charger.serial),
                }
            else:
                data = goe_cloud_data(
                    self.sim, serial=charger.serial, token=charger.token
                )
            await self._add(
                MockConfigEntry(
                    domain=DOMAIN,
                    title=f"go-e Charger {charger.serial}",
                    unique_id=charger.serial,
                    data=data,
                )
            )

    async def async_stop(self) -> None:
        """Stop the cloud and the chargers."""
        await self.sim.stop()

    def advance(self, seconds: float) -> None:
        """Chargers charge."""
        for charger in self.chargers:
            charger.advance(seconds)

    def story(self, rng: random.Random) -> None:
        """A car comes or goes now and then."""
        for charger in self.chargers:
            if rng.random() < 0.1:
                if charger.car_connected:
                    charger.unplug()
                else:
                    charger.plug_in()

    async def async_begin(self, fault: Fault, rng: random.Random) -> None:
        """The cloud (and the chargers' local APIs) fail alike."""
        match fault:
            case Fault.OUTAGE:
                await self.sim.stop()
            case Fault.SERVER_ERROR:
                self._set_fault(goe.GoeFault.SERVER_ERROR)
            case Fault.SLOW:
                self._set_fault(goe.GoeFault.SLOW, rng.uniform(*SLOW_SECONDS))
            case Fault.AUTH_EXPIRY:
                for charger in self.chargers:
                    charger.token = f"{REVOKED}-{charger.serial}"

    async def async_end(self, fault: Fault) -> None:
        """Back to normal."""
        match fault:
            case Fault.OUTAGE:
                cloud, local = self._ports
                await self.sim.start(cloud, local_ports=local)
            case Fault.AUTH_EXPIRY:
                for index, charger in enumerate(self.chargers):
                    charger.token = f"soak-goe-token-{index}"
            case _:
                self._set_fault(goe.GoeFault.NONE)

    def forget(self) -> None:
        """The chargers' logs of status requests and settings."""
        for charger in self.chargers:
            charger.status_requests.clear()
            charger.set_log.clear()

    def _set_fault(self, fault: goe.GoeFault, slow: float = 0.0) -> None:
        for charger in self.chargers:
            charger.fault = fault
            charger.slow_seconds = slow

    def reauth_input(self, entry: MockConfigEntry) -> dict[str, Any]:
        """The charger's token."""
        return {"token": entry.data["token"]}


# --- OVMS ----------------------------------------------------------------------------


class OvmsSoak(SoakProvider):
    """One OVMS account with many cars (one entry)."""

    name = "ovms"
    weight = 14
    faults = (*SoakProvider.faults, Fault.TOKEN_EXPIRY)

    async def async_start(self, devices: int) -> None:
        """The account and its cars, half of them charging."""
        self.sim = ovms.OvmsSimulator(hold_seconds=0)
        self.sim.add_user(OVMS_USER, OVMS_PASSWORD)
        for index in range(devices):
            car = self.sim.add_vehicle(
                ovms.SimVehicle(vehicle_id=f"SOAK{index:02d}", owner=OVMS_USER)
            )
            if index % 2 == 0:
                car.plug_in()
                car.start_charging()
        await self.sim.start()
        self.port = port_of(self.sim.url)
        await self._add(
            MockConfigEntry(
                domain=DOMAIN,
                title=f"OVMS {OVMS_USER}",
                unique_id=f"{self.sim.url.removeprefix('http://')}/{OVMS_USER}",
                data=ovms_data(self.sim),
                options={"excluded_vehicles": []},
            )
        )

    async def async_stop(self) -> None:
        """Stop the server."""
        await self.sim.stop()

    def advance(self, seconds: float) -> None:
        """Cars charge; sessions age."""
        self.sim.advance(seconds)

    def forget(self) -> None:
        """The server's request log, the peer counts sent to the cars."""
        self.sim.requests.clear()
        for car in self.sim.vehicles:
            car.peer_counts_sent.clear()

    def story(self, rng: random.Random) -> None:
        """Cars plug in and charge, or unplug and drive a little."""
        for car in self.sim.vehicles:
            if rng.random() >= 0.1:
                continue
            if car.plugged_in:
                car.unplug()
                car.drive(rng.uniform(1, 30))
            else:
                car.plug_in()
                car.start_charging()

    async def async_begin(self, fault: Fault, rng: random.Random) -> None:
        """The server fails."""
        match fault:
            case Fault.OUTAGE:
                await self.sim.stop()
            case Fault.SERVER_ERROR:
                self.sim.fault = ovms.OvmsFault.SERVER_ERROR
            case Fault.SLOW:
                self.sim.fault = ovms.OvmsFault.SLOW
                self.sim.slow_seconds = rng.uniform(*SLOW_SECONDS)
            case Fault.AUTH_EXPIRY:
                self.sim.users[OVMS_USER].password = REVOKED
                self.sim.expire_sessions()
            case Fault.TOKEN_EXPIRY:
                self.sim.expire_sessions()

    async def async_end(self, fault: Fault) -> None:
        """Back to normal."""
        match fault:
            case Fault.OUTAGE:
                await restart(self.sim, self.port)
            case Fault.AUTH_EXPIRY:
                self.sim.users[OVMS_USER].password = OVMS_PASSWORD
            case _:
                self.sim.fault = ovms.OvmsFault.NONE

    def reauth_input(self, entry: MockConfigEntry) -> dict[str, Any]:
        """The account's password."""
        return {"password": OVMS_PASSWORD}


# --- ev.energy -----------------------------------------------------------------------


class EvEnergySoak(SoakProvider):
    """One ev.energy user (OAuth) with vehicles and a charger for every third one."""

    name = "evenergy"
    weight = 12
    faults = (*SoakProvider.faults, Fault.TOKEN_EXPIRY)
    CHARGER_EVERY = 3  # devices: vehicle, vehicle, charger, ...

    async def async_start(self, devices: int) -> None:
        """The user, its vehicles and chargers; the entry as after signing in."""
        self.sim = evenergy.EvEnergySimulator(start_time=_now())
        self.sim.add_user(EVENERGY_EMAIL, user_id=EVENERGY_USER)
        self.sim.add_client(
            CLIENT_ID, CLIENT_SECRET, redirect_uris=[evenergy.ANY_REDIRECT_URI]
        )
        chargers = devices // self.CHARGER_EVERY
        for index in range(devices - chargers):
            vehicle = self.sim.add_vehicle(
                evenergy.SimVehicle(
                    EVENERGY_USER, description=f"Soak EV {index}", soc=40.0 + index
                ),
                plugged_in=index % 2 == 0,
            )
            if index < chargers:
                self.sim.add_evse(
                    evenergy.SimEvse(
                        EVENERGY_USER, cpid=f"SOAK-{index}", vehicle_id=vehicle.id
                    )
                )
        await self.sim.start()
        self.port = port_of(self.sim.url)
        await import_credential(self.hass)
        await self._add(
            MockConfigEntry(
                domain=DOMAIN,
                title=f"ev.energy {EVENERGY_EMAIL}",
                unique_id=EVENERGY_USER,
                data=oauth_data(self.sim),
            )
        )

    async def async_stop(self) -> None:
        """Stop the service."""
        await self.sim.stop()

    def advance(self, seconds: float) -> None:
        """Vehicles charge, logs are written."""
        self.sim.advance(seconds)

    def forget(self) -> None:
        """The API's and the token endpoint's request logs."""
        self.sim.requests.clear()
        self.sim.token_requests.clear()

    def story(self, rng: random.Random) -> None:
        """Vehicles plug in, or unplug and drive."""
        for vehicle in self.sim.vehicles:
            if rng.random() >= 0.1:
                continue
            if vehicle.plugged_in:
                self.sim.drive(vehicle.id, rng.uniform(1, 30))
            else:
                self.sim.plug_in(vehicle.id)

    async def async_begin(self, fault: Fault, rng: random.Random) -> None:
        """The API (and its token endpoint) fail."""
        match fault:
            case Fault.OUTAGE:
                await self.sim.stop()
            case Fault.SERVER_ERROR:
                self.sim.fault = evenergy.EvEnergyFault.SERVER_ERROR
                self.sim.token_fault = evenergy.EvEnergyFault.SERVER_ERROR
            case Fault.SLOW:
                self.sim.fault = evenergy.EvEnergyFault.SLOW
                self.sim.slow_seconds = rng.uniform(*SLOW_SECONDS)
            case Fault.AUTH_EXPIRY:
                self.sim.revoke(EVENERGY_USER)
            case Fault.TOKEN_EXPIRY:
                self.sim.expire_tokens()

    async def async_end(self, fault: Fault) -> None:
        """Back to normal (a revoked grant stays revoked: the user signs in)."""
        match fault:
            case Fault.OUTAGE:
                await restart(self.sim, self.port)
            case _:
                self.sim.fault = evenergy.EvEnergyFault.NONE
                self.sim.token_fault = evenergy.EvEnergyFault.NONE

    async def _reauth(self, flow_id: str, entry: MockConfigEntry) -> Any:
        """Confirm, sign in at ev.energy, back to Home Assistant."""
        flow = self.hass.config_entries.flow
        result = await flow.async_configure(flow_id, {})
        assert result["type"] is FlowResultType.EXTERNAL_STEP, result
        async with (
            aiohttp.ClientSession() as browser,
            browser.get(result["url"], allow_redirects=False) as answer,
        ):
            assert answer.status == 302
            back = urlsplit(answer.headers["Location"])
        response = await self.world.http.get(f"{back.path}?{back.query}")
        assert response.status == 200
        return await flow.async_configure(flow_id)


# --- EVLinkHA ------------------------------------------------------------------------


class EvLinkSoak(SoakProvider):
    """EVLinkHA pro accounts (one entry each) with vehicles, pushing changes.

    A pro account links at most five vehicles; each account has a simulator of
    its own (its user's profile names one webhook). Home Assistant's external
    URL is the test server's, which the profiles name too.
    """

    name = "evlinkha"
    weight = 10

    async def async_start(self, devices: int) -> None:
        """The accounts and their vehicles; changes are pushed to the webhooks."""
        per_account = evlinkha.MAX_LINKED_VEHICLES[evlinkha.PRO]
        external_url = str(self.world.http.make_url("/")).rstrip("/")
        await self.hass.config.async_update(external_url=external_url)
        self.accounts: list[tuple[evlinkha.EvLinkSimulator, evlinkha.SimUser]] = []
        self.ports: list[int] = []
        for first in range(0, devices, per_account):
            number = first // per_account
            sim = evlinkha.EvLinkSimulator(start_time=_now())
            sim.counted_paths = {"vehicles", "status", "charging"}
            user = sim.add_user(
                EVLINKHA_EMAIL,
                evlinkha.PRO,
                api_key=API_KEY if number == 0 else f"{API_KEY}-{number}",
                user_id=EVLINKHA_USER if number == 0 else f"{EVLINKHA_USER}-{number}",
            )
            for index in range(first, min(first + per_account, devices)):
                vehicle = sim.add_vehicle(
                    evlinkha.SimVehicle(
                        user.id,
                        display_name=f"Soak Link {index}",
                        battery_level=30.0 + index,
                    )
                )
                if index % 2 == 0:
                    sim.plug_in(vehicle.id)
            await sim.start()
            self.accounts.append((sim, user))
            self.ports.append(port_of(sim.url))
            webhook_id = f"soak-evlinkha-webhook-{number}"
            # The profile's two fields: Home Assistant's URL and the webhook id.
            user.ha_external_url = external_url
            user.ha_webhook_id = webhook_id
            sim.push_automatically = True
            await self._add(
                MockConfigEntry(
                    domain=DOMAIN,
                    title=f"EVLinkHA {EVLINKHA_EMAIL}",
                    unique_id=user.id,
                    data={
                        "provider": "evlinkha",
                        "server_url": sim.url,
                        "api_key": user.api_key,
                        "webhook_id": webhook_id,
                    },
                )
            )

    async def async_stop(self) -> None:
        """Stop the services (and their pushes)."""
        for sim, _ in self.accounts:
            await sim.stop()

    def advance(self, seconds: float) -> None:
        """Vehicles charge and report."""
        for sim, _ in self.accounts:
            sim.advance(seconds)

    def forget(self) -> None:
        """The request, counted-call, action and push logs of every account."""
        for sim, _ in self.accounts:
            for log in (sim.requests, sim.counted, sim.actions, sim.pushes):
                log.clear()

    def story(self, rng: random.Random) -> None:
        """Vehicles plug in, or drive."""
        for sim, _ in self.accounts:
            for vehicle in sim.vehicles:
                if rng.random() >= 0.1:
                    continue
                if vehicle.plugged_in:
                    sim.drive(vehicle.id, rng.uniform(1, 30))
                else:
                    sim.plug_in(vehicle.id)

    async def async_begin(self, fault: Fault, rng: random.Random) -> None:
        """The service fails (for every account)."""
        slow = rng.uniform(*SLOW_SECONDS)
        for sim, user in self.accounts:
            match fault:
                case Fault.OUTAGE:
                    await sim.stop()
                case Fault.SERVER_ERROR:
                    sim.fault = evlinkha.EvLinkFault.SERVER_ERROR
                case Fault.SLOW:
                    sim.fault = evlinkha.EvLinkFault.SLOW
                    sim.slow_seconds = slow
                case Fault.AUTH_EXPIRY:
                    user.api_key = f"{REVOKED}-{user.id}"

    async def async_end(self, fault: Fault) -> None:
        """Back to normal."""
        for (sim, user), port, entry in zip(
            self.accounts, self.ports, self.entries, strict=True
        ):
            match fault:
                case Fault.OUTAGE:
                    await restart(sim, port)
                case Fault.AUTH_EXPIRY:
                    user.api_key = entry.data["api_key"]
                case _:
                    sim.fault = evlinkha.EvLinkFault.NONE

    def reauth_input(self, entry: MockConfigEntry) -> dict[str, Any]:
        """The account's API key."""
        return {"api_key": entry.data["api_key"]}


# --- EV-Monitor ----------------------------------------------------------------------


class EvMonitorSoak(SoakProvider):
    """EV-Monitor logbooks (one entry each), fed by other providers' vehicles."""

    name = "evmonitor"
    weight = 4
    sink = True
    faults = (*SoakProvider.faults, Fault.TOKEN_EXPIRY)

    async def async_start(self, devices: int) -> None:
        """One account with a logbook per device, each fed by another vehicle."""
        sources = _vehicle_devices(self.hass, self.world.entries)
        assert len(sources) >= devices, "not enough vehicles to feed the logbooks"
        self.sim = evmonitor.EvMonitorSimulator(start_time=_now())
        user = self.sim.add_user(EVMONITOR_EMAIL, PASSWORD)
        logbooks = [
            self.sim.add_vehicle(user, f"Soak Logbook {index}")
            for index in range(devices)
        ]
        await self.sim.start()
        self.port = port_of(self.sim.url)
        for logbook, source in zip(logbooks, sources, strict=False):
            await self._add(
                MockConfigEntry(
                    domain=DOMAIN,
                    title=f"EV-Monitor {logbook.nickname}",
                    unique_id=logbook.id,
                    data={
                        "provider": "evmonitor",
                        "server_url": self.sim.url,
                        "username": EVMONITOR_EMAIL,
                        "password": PASSWORD,
                        "vehicle": logbook.id,
                    },
                    options={
                        "source_device": source,
                        "active_interval": 60,
                        "idle_interval": 900,
                        "upload_interval": 300,
                    },
                )
            )

    async def async_stop(self) -> None:
        """Stop the service."""
        await self.sim.stop()

    def forget(self) -> None:
        """The request and push logs (the stored datasets are the service's)."""
        self.sim.requests.clear()
        self.sim.pushes.clear()

    def advance(self, seconds: float) -> None:
        """Tokens age."""
        self.sim.advance(seconds)

    async def async_begin(self, fault: Fault, rng: random.Random) -> None:
        """The service fails."""
        match fault:
            case Fault.OUTAGE:
                await self.sim.stop()
            case Fault.SERVER_ERROR:
                self.sim.fault = evmonitor.EvMonitorFault.SERVER_ERROR
            case Fault.SLOW:
                self.sim.fault = evmonitor.EvMonitorFault.SLOW
                self.sim.slow_seconds = rng.uniform(*SLOW_SECONDS)
            case Fault.AUTH_EXPIRY:
                self.sim.users[EVMONITOR_EMAIL].password = REVOKED
                self.sim.expire_tokens()
            case Fault.TOKEN_EXPIRY:
                self.sim.expire_tokens()

    async def async_end(self, fault: Fault) -> None:
        """Back to normal."""
        match fault:
            case Fault.OUTAGE:
                await restart(self.sim, self.port)
            case Fault.AUTH_EXPIRY:
                self.sim.users[EVMONITOR_EMAIL].password = PASSWORD
            case _:
                self.sim.fault = evmonitor.EvMonitorFault.NONE

    def reauth_input(self, entry: MockConfigEntry) -> dict[str, Any]:
        """The account's password."""
        return {"password": PASSWORD}


def _now() -> float:
    """The simulated services start at Home Assistant's (frozen) time."""
    from homeassistant.util import dt as dt_util

    return dt_util.utcnow().timestamp()


def _vehicle_devices(hass: HomeAssistant, entries: list[MockConfigEntry]) -> list[str]:
    """Device ids of the entries' vehicles: devices with a battery level entity."""
    entity_registry = er.async_get(hass)
    devices: list[str] = []
    for entry in entries:
        for device in dr.async_entries_for_config_entry(
            dr.async_get(hass), entry.entry_id
        ):
            if any(
                entity.unique_id.endswith("_battery_level")
                for entity in er.async_entries_for_device(entity_registry, device.id)
            ):
                devices.append(device.id)
    return devices


PROVIDERS_IN_SOAK: dict[str, type[SoakProvider]] = {
    provider.name: provider
    for provider in (GoeSoak, OvmsSoak, EvEnergySoak, EvLinkSoak, EvMonitorSoak)
}
