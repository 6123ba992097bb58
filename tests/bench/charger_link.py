"""A car charged at home by a go-e charger, with and without the charger link.

The vehicle's driver (OVMS or EVLinkHA, one car) plays the car's day on its
service; a go-e charger on its own simulator charges it. The car's battery takes
what the charger delivers, times a true efficiency that differs from the link's
option (as in tests/test_link.py), so that both services tell of the same
battery. Linked, the vehicle entry's options name the charger (its device is in
the registry before setup, as after any restart of Home Assistant).

The figures: requests to the vehicle's service per vehicle per day (the
charger's own requests are left out: it is polled the same either way) and,
linked, the worst error of the estimated state of charge against the car's true
one while the charger charges it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
import math
from typing import Any

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.link import (
    CONF_CAPACITY,
    CONF_CHARGER,
    CONF_CHARGER_LINKS,
)
from tests.simulators import goe as goe_sim

from .drivers import Driver, EvLinkDriver, GoeDriver, OvmsDriver
from .harness import BenchRun, Quota, Request, Result, SimThread
from .story import CHARGING, Phase, Story

# The vehicle providers the link is measured for.
LINKED_PROVIDERS = ("ovms", "evlinkha")
TRUE_EFFICIENCY = 0.92  # what reaches the battery (the link assumes 90 %)
PHASE_VOLTS = 230 * 3  # the simulated charger charges on three phases
STATE_OF_CHARGE_HOME = 45.0  # when the story starts, on the way home
TARGET = 80.0  # % the charger fills the battery to


class Car:
    """The simulated car of a vehicle driver: its battery, cable and position."""

    def __init__(self, driver: Driver) -> None:
        """The first (only) car of `driver` (OVMS or EVLinkHA)."""
        self.driver = driver

    @property
    def key(self) -> str:
        """The vehicle's device key in EV Cloud."""
        if isinstance(self.driver, OvmsDriver):
            return f"ovms_{self.driver.cars[0].vehicle_id}"
        assert isinstance(self.driver, EvLinkDriver)
        return f"evlinkha_{self.driver.vehicles[0].id}"

    @property
    def capacity_kwh(self) -> float:
        """The battery's usable capacity."""
        if isinstance(self.driver, OvmsDriver):
            return self.driver.cars[0].battery_kwh
        assert isinstance(self.driver, EvLinkDriver)
        return self.driver.vehicles[0].battery_capacity

    @property
    def soc(self) -> float:
        """The true state of charge."""
        if isinstance(self.driver, OvmsDriver):
            return self.driver.cars[0].soc
        assert isinstance(self.driver, EvLinkDriver)
        return self.driver.vehicles[0].battery_level

    @soc.setter
    def soc(self, value: float) -> None:
        if isinstance(self.driver, OvmsDriver):
            self.driver.cars[0].soc = value
        else:
            assert isinstance(self.driver, EvLinkDriver)
            self.driver.vehicles[0].battery_level = value

    def at(self, latitude: float, longitude: float) -> None:
        """The car stands at this position."""
        if isinstance(self.driver, OvmsDriver):
            car = self.driver.cars[0]
            car.latitude, car.longitude = latitude, longitude
        else:
            assert isinstance(self.driver, EvLinkDriver)
            vehicle = self.driver.vehicles[0]
            vehicle.latitude, vehicle.longitude = latitude, longitude

    def charged(self, kw: float) -> None:
        """The car charges at `kw` (what its service shows)."""
        if isinstance(self.driver, OvmsDriver):
            self.driver.cars[0].charge_power_kw = kw
        else:
            assert isinstance(self.driver, EvLinkDriver)
            self.driver.vehicles[0].charge_power_kw = kw

    def full(self) -> None:
        """The charger stopped: the battery took what it needed."""
        if isinstance(self.driver, OvmsDriver):
            car = self.driver.cars[0]
            if car.charging:
                car.stop_charging()
                car.chargestate = "done"
        else:
            assert isinstance(self.driver, EvLinkDriver)
            vehicle = self.driver.vehicles[0]
            if vehicle.charging:
                self.driver.sim.set_charging(vehicle.id, False)


class ChargedAtHomeDriver(Driver):
    """One car of `provider` and the go-e charger at home, linked or not."""

    def __init__(self, provider: str, story: Story, *, linked: bool) -> None:
        """The day of `story`; `linked`: the vehicle's options name the charger."""
        super().__init__(1, story)
        vehicle_drivers: dict[str, type[Driver]] = {
            "ovms": OvmsDriver,
            "evlinkha": EvLinkDriver,
        }
        self.vehicle = vehicle_drivers[provider](1, story)
        self.charger = GoeDriver(1, story)
        self.linked = linked
        self.car = Car(self.vehicle)
        self.hass: HomeAssistant | None = None
        self.vehicle_entry: MockConfigEntry | None = None
        self.charger_entry: MockConfigEntry | None = None
        self.charger_server = ""  # host:port of the charger's service
        self.worst_error: float | None = None
        # The same from the car's first reading at the charger on.
        self.worst_error_after_read: float | None = None
        self.estimated_share: tuple[int, int] = (0, 0)  # (estimated, charging) samples

    @property
    def provider(self) -> str:  # type: ignore[override]
        """The vehicle's provider."""
        return self.vehicle.provider

    @property
    def reports_data_age(self) -> bool:  # type: ignore[override]
        """As the vehicle's service."""
        return self.vehicle.reports_data_age

    @property
    def platforms(self) -> frozenset[Platform]:
        """The vehicle's and the charger's."""
        return self.vehicle.platforms | self.charger.platforms

    @property
    def goe(self) -> goe_sim.SimCharger:
        """The simulated charger."""
        return self.charger.chargers[0]

    async def async_start(
        self, hass: HomeAssistant, sims: SimThread
    ) -> list[MockConfigEntry]:
        """Both simulators; the vehicle's entry and the charger's."""
        self.hass = hass
        self.vehicle.origin = self.charger.origin = self.origin
        (self.vehicle_entry,) = await self.vehicle.async_start(hass, sims)
        (self.charger_entry,) = await self.charger.async_start(hass, sims)
        self.charger_server = self.charger.sim.cloud_url.removeprefix("http://")
        self.car.soc = STATE_OF_CHARGE_HOME
        # Removed in this order at the end: the vehicle's link ends with its
        # entry (the charger's removal would remove the link, with a repair).
        return [self.vehicle_entry, self.charger_entry]

    async def async_stop(self, sims: SimThread) -> None:
        """Stop both simulators."""
        await self.vehicle.async_stop(sims)
        await self.charger.async_stop(sims)

    def prepare(self, hass: HomeAssistant) -> None:
        """Linked: the charger's device is registered, the vehicle's options name it."""
        if not self.linked:
            return
        assert self.charger_entry is not None
        assert self.vehicle_entry is not None
        device = dr.async_get(hass).async_get_or_create(
            config_entry_id=self.charger_entry.entry_id,
            identifiers={(DOMAIN, f"goe_{self.goe.serial}")},
        )
        link = {CONF_CHARGER: device.id, CONF_CAPACITY: self.car.capacity_kwh}
        hass.config_entries.async_update_entry(
            self.vehicle_entry,
            options={
                **self.vehicle_entry.options,
                CONF_CHARGER_LINKS: {self.car.key: link},
            },
        )

    def begin(self, phase: Phase) -> None:
        """Drive, or come home and plug in, or leave."""
        super().begin(phase)
        self.vehicle.begin(phase)
        self.charger.begin(phase)
        if phase.name != CHARGING:
            return
        assert self.hass is not None
        self.car.at(self.hass.config.latitude, self.hass.config.longitude)
        # The charger fills the battery to TARGET in the story's charging time.
        needed_wh = (
            (TARGET - self.car.soc) / 100 * self.car.capacity_kwh * 1000
        ) / TRUE_EFFICIENCY
        amps = max(6, round(needed_wh / self.charge_hours() / PHASE_VOLTS))
        self.goe.state["amp"] = amps
        self.goe.battery_wh_needed = needed_wh
        self.car.charged(amps * PHASE_VOLTS / 1000 * TRUE_EFFICIENCY)

    def report(self, t: float) -> None:
        """The car reports to its service."""
        self.vehicle.report(t)

    def advance(self, seconds: float) -> None:
        """Both services' clocks; the battery takes the charger's energy."""
        before = self.goe.state["eto"]
        self.charger.advance(seconds)
        kwh = (self.goe.state["eto"] - before) / 1000
        soc = self.car.soc
        self.vehicle.advance(seconds)
        if kwh > 0:  # the charger's energy, not the car's own charge model
            self.car.soc = soc + kwh * TRUE_EFFICIENCY / self.car.capacity_kwh * 100
        if self.goe.complete:
            self.car.full()

    def after_step(self, t: float) -> None:
        """The vehicle's service's counters; the estimate against the battery."""
        self.vehicle.after_step(t)
        entry = self.vehicle_entry
        if not self.goe.charging or entry is None or not hasattr(entry, "runtime_data"):
            return
        link = entry.runtime_data.links.get(self.car.key)
        estimate = None if link is None else link.estimate()
        estimated, samples = self.estimated_share
        self.estimated_share = (estimated + (estimate is not None), samples + 1)
        if estimate is None:
            return
        error = abs(estimate.soc - self.car.soc)
        self.worst_error = max(self.worst_error or 0.0, error)
        plugged_in = self.origin.timestamp() + self.story.charging().start
        if estimate.base_time.timestamp() >= plugged_in:
            self.worst_error_after_read = max(self.worst_error_after_read or 0.0, error)

    def shown_data_times(self, entries: list[MockConfigEntry]) -> list[float | None]:
        """The vehicle's data only."""
        return super().shown_data_times(
            [entry for entry in entries if entry is self.vehicle_entry]
        )

    def counted_requests(self, requests: list[Request]) -> list[Request]:
        """The requests to the vehicle's service (not the charger's)."""
        return [r for r in requests if r.server != self.charger_server]

    def quota(self, requests: list[Request], story: Story) -> Quota:
        """The vehicle's service's limit."""
        return self.vehicle.quota(self.counted_requests(requests), story)


def rounded_up(points: float | None) -> float | None:
    """Points of state of charge, rounded up to a tenth."""
    return None if points is None else math.ceil(points * 10) / 10


@dataclass(frozen=True)
class LinkFigures:
    """One vehicle provider through the day, linked or not (what the JSON holds)."""

    provider: str
    linked: bool
    hours: float
    requests_per_day: float  # to the vehicle's service, per vehicle
    quota_text: str
    worst_estimate_error: float | None  # points of state of charge
    # The same once the estimate starts from a reading taken at the charger.
    worst_estimate_error_after_read: float | None
    estimated_share: float | None  # of the samples while the charger charged
    http_429: int
    failed_updates: int

    @classmethod
    def of(cls, run: BenchRun, result: Result) -> LinkFigures:
        """The figures of a run of a `ChargedAtHomeDriver`."""
        driver = run.driver
        assert isinstance(driver, ChargedAtHomeDriver)
        estimated, samples = driver.estimated_share
        requests = driver.counted_requests(run.recorder.requests)
        return cls(
            provider=driver.provider,
            linked=driver.linked,
            hours=result.hours,
            requests_per_day=round(len(requests) * 24 / result.hours, 1),
            quota_text=result.quota.text,
            worst_estimate_error=rounded_up(driver.worst_error),
            worst_estimate_error_after_read=rounded_up(driver.worst_error_after_read),
            estimated_share=(
                round(estimated / samples, 3) if driver.linked and samples else None
            ),
            http_429=result.http_429,
            failed_updates=result.failed_updates,
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe."""
        return asdict(self)
