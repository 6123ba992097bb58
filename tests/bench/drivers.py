"""One driver per provider: its simulator, its entries, and the story told to both.

A driver makes `devices` devices on its provider's simulator (one account with
that many vehicles, or that many entries where an entry has one device: go-e
chargers, EV-Monitor logbooks), plays the story's phases and the cars' reports
on it, and says how much of the service's limit a run used. `DRIVERS` must name
every provider of `PROVIDERS` (a test checks it), so that a new provider joins
the table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
import time
from typing import Any, ClassVar

from homeassistant.components.application_credentials import (
    ClientCredential,
    async_import_client_credential,
)
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.providers import PROVIDERS
from tests.simulators import (
    evenergy as evenergy_sim,
    evlinkha as evlinkha_sim,
    evmonitor as evmonitor_sim,
    goe as goe_sim,
    ovms as ovms_sim,
)

from .harness import Quota, Request, SimThread, busiest
from .story import (
    CHARGING,
    DRIVING,
    KWH_PER_KM,
    SPEED_KMH,
    START,
    Phase,
    Story,
)


class Driver(ABC):
    """A provider's part of a benchmark run."""

    provider: ClassVar[str]
    # Whether the service says how old its data is (so "new data" means something).
    reports_data_age: ClassVar[bool] = True

    def __init__(
        self, devices: int, story: Story, options: Mapping[str, Any] | None = None
    ) -> None:
        """`devices` devices through `story`; `options` for every entry."""
        self.devices = devices
        self.story = story
        self.options = dict(options or {})
        # When the story starts (the frozen clock is there when the run begins).
        self.origin = START
        self._phase = story.phases[0]

    @abstractmethod
    async def async_start(
        self, hass: HomeAssistant, sims: SimThread
    ) -> list[MockConfigEntry]:
        """Start the simulator (in `sims`) with the devices; the entries for them."""

    @abstractmethod
    async def async_stop(self, sims: SimThread) -> None:
        """Stop the simulator."""

    @property
    def platforms(self) -> frozenset[Platform]:
        """The platforms of the run's entries (set up before them)."""
        return frozenset(PROVIDERS[self.provider].platforms)

    def prepare(self, hass: HomeAssistant) -> None:  # noqa: B027 - most need not
        """The entries are added, not set up yet: what Home Assistant stored before."""

    def begin(self, phase: Phase) -> None:
        """A phase of the story starts for every device."""
        self._phase = phase

    def report(self, t: float) -> None:  # noqa: B027 - a charger needs none
        """Every car sends its service a fresh report now (`t` seconds in)."""

    def hass_side(self, hass: HomeAssistant, t: float) -> None:  # noqa: B027
        """What changes in Home Assistant itself now (a sink's source)."""

    @abstractmethod
    def advance(self, seconds: float) -> None:
        """The services' clocks move on."""

    def after_step(self, t: float) -> None:  # noqa: B027 - most need not
        """Look at the service after Home Assistant's step (its counters)."""

    def shown_data_times(self, entries: list[MockConfigEntry]) -> list[float | None]:
        """When the data each device shows was measured (None: unavailable)."""
        times: list[float | None] = []
        for entry in entries:
            if not hasattr(entry, "runtime_data"):
                continue
            for coordinator in entry.runtime_data.coordinators.values():
                data = coordinator.data
                shown = coordinator.last_update_success and data is not None
                if shown and data.data_time is not None:
                    times.append(data.data_time.timestamp())
                else:
                    times.append(None)
        return times

    def counted_requests(self, requests: list[Request]) -> list[Request]:
        """The requests "requests per hour per device" counts."""
        return requests

    @abstractmethod
    def quota(self, requests: list[Request], story: Story) -> Quota:
        """How much of the service's limit the run used."""

    def charge_hours(self) -> float:
        """Hours the battery takes to fill: a share of the charging phase."""
        return self.story.charging().seconds * self.story.charge_share / 3600

    @property
    def driving(self) -> bool:
        """Whether the cars drive now."""
        return self._phase.name == DRIVING


# --- go-e -----------------------------------------------------------------------------

GOE_POWER_W = 3 * 230 * 16  # what the simulated charger delivers at 16 A


class GoeDriver(Driver):
    """N go-e chargers through the cloud API: N entries of one charger each."""

    provider = "goe"

    async def async_start(
        self, hass: HomeAssistant, sims: SimThread
    ) -> list[MockConfigEntry]:
        """One cloud simulator with every charger."""
        self.chargers = [
            goe_sim.SimCharger(serial=f"{200000 + i}", token=f"bench-goe-token-{i}")
            for i in range(self.devices)
        ]
        self.sim = goe_sim.GoeSimulator(self.chargers)
        await sims.run(self.sim.start())
        return [
            MockConfigEntry(
                domain=DOMAIN,
                title=f"go-e Charger {charger.serial}",
                unique_id=charger.serial,
                data={
                    "provider": "goe",
                    "connection": "cloud",
                    "serial": charger.serial,
                    "token": charger.token,
                    "server_url": self.sim.cloud_url,
                },
                options=self.options,
            )
            for charger in self.chargers
        ]

    async def async_stop(self, sims: SimThread) -> None:
        """Stop the simulator."""
        await sims.run(self.sim.stop())

    def begin(self, phase: Phase) -> None:
        """Plug in at the charging phase, unplug after it."""
        super().begin(phase)
        for charger in self.chargers:
            if phase.name == CHARGING:
                charger.battery_wh_needed = GOE_POWER_W * self.charge_hours()
                charger.plug_in()
            else:
                charger.unplug()

    def advance(self, seconds: float) -> None:
        """Every charger's clock."""
        for charger in self.chargers:
            charger.advance(seconds)

    def quota(self, requests: list[Request], story: Story) -> Quota:
        """go-e: at most one request a second per charger."""
        per_second: dict[tuple[str | None, int], int] = defaultdict(int)
        for request in requests:
            per_second[request.credential, int(request.time)] += 1
        most = max(per_second.values(), default=0)
        return Quota(
            limit="1 request/s per charger",
            used=most,
            allowed=1,
            text=f"{most} req/s per charger (≤ 1)",
            within=most <= 1,
        )


# --- OVMS -----------------------------------------------------------------------------

OVMS_USER = "bench"
OVMS_PASSWORD = "bench-ovms-password"  # a simulator's account


class OvmsDriver(Driver):
    """One OVMS account with N vehicles on one server."""

    provider = "ovms"

    async def async_start(
        self, hass: HomeAssistant, sims: SimThread
    ) -> list[MockConfigEntry]:
        """The server with the account and its cars (reporting only when told)."""
        # The server's own clock starts at the frozen time.
        self.sim = ovms_sim.OvmsSimulator(hold_seconds=0)
        self.sim.add_user(OVMS_USER, OVMS_PASSWORD)
        self.cars = [
            self.sim.add_vehicle(
                ovms_sim.SimVehicle(
                    vehicle_id=f"CAR{i:03d}", owner=OVMS_USER, soc=80.0, silent=True
                )
            )
            for i in range(self.devices)
        ]
        self.lowest_quota: float | None = None
        await sims.run(self.sim.start())
        return [
            MockConfigEntry(
                domain=DOMAIN,
                title=f"OVMS {OVMS_USER}",
                unique_id=f"{self.sim.url.removeprefix('http://')}/{OVMS_USER}",
                data={
                    "provider": "ovms",
                    "server_url": self.sim.url,
                    "username": OVMS_USER,
                    "password": OVMS_PASSWORD,
                },
                options={"excluded_vehicles": [], **self.options},
            )
        ]

    async def async_stop(self, sims: SimThread) -> None:
        """Stop the simulator."""
        await sims.run(self.sim.stop())

    def begin(self, phase: Phase) -> None:
        """Drive, charge or park every car."""
        super().begin(phase)
        for car in self.cars:
            if car.plugged_in:
                car.unplug()
            car.car_on = phase.name == DRIVING
            car.handbrake = phase.name != DRIVING
            car.speed = SPEED_KMH if phase.name == DRIVING else 0.0
            if phase.name == CHARGING:
                car.plug_in()
                needed = (car.charge_limit_soc - car.soc) / 100 * car.battery_kwh
                car.charge_power_kw = max(needed, 1.0) / self.charge_hours()
                car.start_charging()

    def report(self, t: float) -> None:
        """Each car sends its records (they stay as they are until the next)."""
        for car in self.cars:
            car.silent = False
            car.silent = True

    def advance(self, seconds: float) -> None:
        """The server's clock (and the cars')."""
        self.sim.advance(seconds)

    def after_step(self, t: float) -> None:
        """The lowest request quota the server had left for us."""
        quotas = [entry.quota for entry in self.sim.rate_limits.values()]
        if quotas:
            low = min(quotas)
            if self.lowest_quota is None or low < self.lowest_quota:
                self.lowest_quota = low

    def quota(self, requests: list[Request], story: Story) -> Quota:
        """OVMS: 120 at once, then 60 a minute per address (the server's counter)."""
        minute = busiest([r.time for r in requests], 60)
        low = self.lowest_quota
        return Quota(
            limit="120 burst, then 60/min per address",
            used=minute,
            allowed=60,
            text=f"busiest minute {minute} req; server quota left ≥ {low:.0f}",
            within=low is None or low > 0,
            extra={"lowest_server_quota_left": low if low is not None else -1},
        )


# --- ev.energy ------------------------------------------------------------------------

EVENERGY_USER = evenergy_sim.make_id("user", 42)
EVENERGY_CLIENT = "bench-evenergy-client"
EVENERGY_SECRET = "bench-evenergy-secret"  # a simulator's client
EVENERGY_CREDENTIAL = "bench_credential"


class EvEnergyDriver(Driver):
    """One ev.energy user (signed in with OAuth) with N vehicles."""

    provider = "evenergy"

    async def async_start(
        self, hass: HomeAssistant, sims: SimThread
    ) -> list[MockConfigEntry]:
        """The service with the user's vehicles, and the user's OAuth client."""
        sim = self.sim = evenergy_sim.EvEnergySimulator(
            start_time=self.origin.timestamp()
        )
        sim.add_user("bench@example.com", user_id=EVENERGY_USER)
        sim.add_client(
            EVENERGY_CLIENT,
            EVENERGY_SECRET,
            redirect_uris=[evenergy_sim.ANY_REDIRECT_URI],
        )
        self.vehicles = [
            sim.add_vehicle(
                evenergy_sim.SimVehicle(EVENERGY_USER, description=f"Car {i}", soc=70)
            )
            for i in range(self.devices)
        ]
        for vehicle in self.vehicles:
            vehicle.silent = True
        await sims.run(sim.start())
        assert await async_setup_component(hass, "application_credentials", {})
        await async_import_client_credential(
            hass,
            DOMAIN,
            ClientCredential(EVENERGY_CLIENT, EVENERGY_SECRET),
            EVENERGY_CREDENTIAL,
        )
        token = sim.issue_token(EVENERGY_CLIENT, EVENERGY_USER)
        token["expires_at"] = time.time() + token["expires_in"]
        return [
            MockConfigEntry(
                domain=DOMAIN,
                title="ev.energy bench@example.com",
                unique_id=EVENERGY_USER,
                data={
                    "provider": "evenergy",
                    "auth": "oauth",
                    "base_url": sim.url,
                    "user_id": EVENERGY_USER,
                    "auth_implementation": EVENERGY_CREDENTIAL,
                    "token": token,
                },
                options=self.options,
            )
        ]

    async def async_stop(self, sims: SimThread) -> None:
        """Stop the simulator."""
        await sims.run(self.sim.stop())

    def begin(self, phase: Phase) -> None:
        """Plug in at the charging phase, unplug after it."""
        super().begin(phase)
        for vehicle in self.vehicles:
            if phase.name == CHARGING:
                needed = (vehicle.target_soc - vehicle.soc) / 100
                watts = needed * vehicle.battery_size_watt_hours / self.charge_hours()
                vehicle.charge_power_watts = max(round(watts), 1000)
                self.sim.plug_in(vehicle.id)
            elif vehicle.plugged_in:
                self.sim.unplug(vehicle.id)

    def report(self, t: float) -> None:
        """Each vehicle's telematics report (a status and a location log)."""
        for vehicle in self.vehicles:
            if self.driving:
                km = SPEED_KMH * self.story.report_every(t - 1) / 3600
                self.sim.drive(vehicle.id, km, KWH_PER_KM * 1000)
            self.sim.sample(vehicle, force=True)

    def advance(self, seconds: float) -> None:
        """The service's clock."""
        self.sim.advance(seconds)

    def quota(self, requests: list[Request], story: Story) -> Quota:
        """ev.energy: 1000 requests per rolling hour per application and user."""
        api = [r.time for r in requests if r.path.startswith("/v2/")]
        hour = busiest(api, 3600)
        return Quota(
            limit="1000/h per application and user",
            used=hour,
            allowed=1000,
            text=f"busiest hour {hour} of 1000",
            within=hour <= 1000,
        )


# --- EVLinkHA -------------------------------------------------------------------------

EVLINK_KEY = "bench-evlinkha-api-key"
EVLINK_FREE = 300  # calls per 30 days, per user
WINDOW_HOURS = 30 * 24


class EvLinkDriver(Driver):
    """One EVLinkHA user on the free tier with N vehicles; every call counts."""

    provider = "evlinkha"

    async def async_start(
        self, hass: HomeAssistant, sims: SimThread
    ) -> list[MockConfigEntry]:
        """The service with the user's vehicles."""
        sim = self.sim = evlinkha_sim.EvLinkSimulator(
            start_time=self.origin.timestamp()
        )
        sim.counted_paths = {"vehicles", "status", "charging"}
        self.user = sim.add_user("bench@example.com", "free", api_key=EVLINK_KEY)
        self.vehicles = [
            sim.add_vehicle(
                evlinkha_sim.SimVehicle(
                    self.user.id, display_name=f"Car {i}", battery_level=70
                )
            )
            for i in range(self.devices)
        ]
        for vehicle in self.vehicles:
            vehicle.silent = True
        await sims.run(sim.start())
        return [
            MockConfigEntry(
                domain=DOMAIN,
                title="EVLinkHA bench@example.com",
                unique_id=self.user.id,
                data={
                    "provider": "evlinkha",
                    "server_url": sim.url,
                    "api_key": EVLINK_KEY,
                    "webhook_id": "bench-evlinkha-webhook",
                },
                options=self.options,
            )
        ]

    async def async_stop(self, sims: SimThread) -> None:
        """Stop the simulator."""
        await sims.run(self.sim.stop())

    def begin(self, phase: Phase) -> None:
        """Plug in (and charge) at the charging phase, unplug after it."""
        super().begin(phase)
        for vehicle in self.vehicles:
            if phase.name == CHARGING:
                needed = (vehicle.charge_limit - vehicle.battery_level) / 100
                kw = needed * vehicle.battery_capacity / self.charge_hours()
                vehicle.charge_power_kw = max(kw, 1.0)
                self.sim.plug_in(vehicle.id)
            elif vehicle.plugged_in:
                self.sim.unplug(vehicle.id)

    def report(self, t: float) -> None:
        """Each vehicle's report (what Enode read from the car)."""
        for vehicle in self.vehicles:
            if self.driving:
                km = SPEED_KMH * self.story.report_every(t - 1) / 3600
                self.sim.drive(vehicle.id, km, KWH_PER_KM)
            self.sim.sample(vehicle, force=True)

    def advance(self, seconds: float) -> None:
        """The service's clock."""
        self.sim.advance(seconds)

    def quota(self, requests: list[Request], story: Story) -> Quota:
        """EVLinkHA free: 300 calls per 30 days for the user."""
        used = self.sim.calls_used(self.user)
        share = EVLINK_FREE * story.hours / WINDOW_HOURS
        return Quota(
            limit="free tier: 300 calls per 30 days per user",
            used=used,
            allowed=round(share, 2),
            text=f"{used} counted calls (300 per 30 days: {share:.1f} in this time)",
        )


# --- EV-Monitor -----------------------------------------------------------------------

EVM_EMAIL = "bench@example.com"
EVM_PASSWORD = "bench-evmonitor-password"  # a simulator's account
SOURCE_UNITS = {
    "soc": "%",
    "range": "km",
    "speed": "km/h",
    "odometer": "km",
    "power": "kW",
    "battery_temperature": "°C",
}
SOURCE_DOMAINS = {"charging": "binary_sensor", "location": "device_tracker"}
BATTERY_KWH = 60.0
KM_PER_KWH = 6.0


@dataclass
class SourceCar:
    """The car whose entities feed one logbook (what another integration shows)."""

    index: int
    soc: float = 70.0
    odometer: float = 20_000.0
    latitude: float = 48.1371
    charging: bool = False
    power_kw: float = 0.0

    def entity(self, field: str) -> str:
        """The source entity of `field`."""
        return f"{SOURCE_DOMAINS.get(field, 'sensor')}.bench_car_{self.index}_{field}"


class EvMonitorDriver(Driver):
    """N EV-Monitor logbooks (N entries), each fed by the entities of one car."""

    provider = "evmonitor"
    reports_data_age = False

    async def async_start(
        self, hass: HomeAssistant, sims: SimThread
    ) -> list[MockConfigEntry]:
        """The service with one vehicle per logbook; the source cars."""
        sim = self.sim = evmonitor_sim.EvMonitorSimulator(
            start_time=self.origin.timestamp()
        )
        user = sim.add_user(EVM_EMAIL, EVM_PASSWORD)
        logbooks = [sim.add_vehicle(user, f"Car {i}") for i in range(self.devices)]
        self.cars = {logbook.id: SourceCar(i) for i, logbook in enumerate(logbooks)}
        self._newest: dict[str, float] = {}
        self._seen = 0
        await sims.run(sim.start())
        return [
            MockConfigEntry(
                domain=DOMAIN,
                title=f"EV-Monitor Car {car.index}",
                unique_id=vehicle_id,
                data={
                    "provider": "evmonitor",
                    "server_url": sim.url,
                    "username": EVM_EMAIL,
                    "password": EVM_PASSWORD,
                    "vehicle": vehicle_id,
                },
                options={
                    **{
                        field: car.entity(field)
                        for field in (*SOURCE_UNITS, *SOURCE_DOMAINS)
                    },
                    **self.options,
                },
            )
            for vehicle_id, car in self.cars.items()
        ]

    async def async_stop(self, sims: SimThread) -> None:
        """Stop the simulator."""
        await sims.run(self.sim.stop())

    def begin(self, phase: Phase) -> None:
        """Charge at the charging phase."""
        super().begin(phase)
        for car in self.cars.values():
            car.charging = phase.name == CHARGING
            if car.charging:
                car.power_kw = (100 - car.soc) / 100 * BATTERY_KWH / self.charge_hours()
            else:
                car.power_kw = 0.0

    def advance(self, seconds: float) -> None:
        """The service's clock; the source cars drive or charge."""
        self.sim.advance(seconds)
        hours = seconds / 3600
        for car in self.cars.values():
            if self.driving:
                km = SPEED_KMH * hours
                car.odometer += km
                car.latitude += km / 111
                car.soc = max(car.soc - km * KWH_PER_KM / BATTERY_KWH * 100, 0.0)
            elif car.charging:
                car.soc = min(car.soc + car.power_kw * hours / BATTERY_KWH * 100, 100)
                if car.soc >= 100:
                    car.charging, car.power_kw = False, 0.0

    def hass_side(self, hass: HomeAssistant, t: float) -> None:
        """The source integration's entities show each car's new values."""
        for car in self.cars.values():
            values = {
                "soc": round(car.soc, 1),
                "range": round(car.soc / 100 * BATTERY_KWH * KM_PER_KWH),
                "speed": SPEED_KMH if self.driving else 0,
                "odometer": round(car.odometer, 1),
                "power": round(car.power_kw, 2),
                "battery_temperature": 21,
            }
            for field, value in values.items():
                hass.states.async_set(
                    car.entity(field),
                    str(value),
                    {"unit_of_measurement": SOURCE_UNITS[field]},
                )
            charging = "on" if car.charging else "off"
            hass.states.async_set(car.entity("charging"), charging)
            hass.states.async_set(
                car.entity("location"),
                "not_home",
                {"latitude": car.latitude, "longitude": 11.5754, "gps_accuracy": 5},
            )

    def _catch_up(self) -> None:
        for dataset in self.sim.datasets[self._seen :]:
            stamp = float(dataset.general["timestamp"])
            if stamp > self._newest.get(dataset.vehicle_id, 0.0):
                self._newest[dataset.vehicle_id] = stamp
        self._seen = len(self.sim.datasets)

    def shown_data_times(self, entries: list[MockConfigEntry]) -> list[float | None]:
        """When the newest snapshot in each logbook was taken."""
        self._catch_up()
        return [self._newest.get(vehicle_id) for vehicle_id in self.cars]

    def counted_requests(self, requests: list[Request]) -> list[Request]:
        """Uploads only (a sink: its requests are uploads, not polls)."""
        return [r for r in requests if r.path.endswith("/push")]

    def quota(self, requests: list[Request], story: Story) -> Quota:
        """EV-Monitor documents no limit; the uploads and sign-ins per hour."""
        uploads = len(self.counted_requests(requests))
        logins = sum(1 for r in requests if r.path.endswith("/login"))
        per_hour = logins / story.hours / self.devices
        return Quota(
            limit="none documented",
            used=None,
            allowed=None,
            text=f"no limit; {per_hour:.1f} sign-ins/h per logbook",
            extra={"uploads": uploads, "logins": logins},
        )


DRIVERS: dict[str, type[Driver]] = {
    driver.provider: driver
    for driver in (GoeDriver, OvmsDriver, EvEnergyDriver, EvLinkDriver, EvMonitorDriver)
}


def driver_for(
    provider: str,
    devices: int,
    story: Story,
    options: Mapping[str, Any] | None = None,
) -> Driver:
    """The driver of `provider` for `devices` devices."""
    return DRIVERS[provider](devices, story, options)
