"""Charging sessions at the home charger: energy, peak power, state of charge, cost.

A session runs from a car connecting to the charger to it disconnecting (for a
charger that never says whether a car is plugged in: from charging started to
stopped). Each charger of an entry has a `SessionTracker` that follows the
readings its coordinator publishes (`link.signal_charger_reading`). The open
session is stored: one that spans a restart stays one session, and the energy
the charger's meter counted while Home Assistant was down belongs to it.

When a session ends: the `ev_cloud_charging_session` event, the Last charging
session sensors of the charger and of the vehicle it charged (a dispatcher
signal per device), and the vehicle's long-term statistic of the energy charged
at home (recorder external statistics, hourly sums).

The vehicle is one of those linked to the charger (`link.py`), decided while
the session runs. When several could be it, the session stays unassigned; when
none said so, too. The log says which: a session is never given a vehicle by
guessing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
import math
from typing import TYPE_CHECKING, Any

from homeassistant.components.recorder import get_instance
from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    get_last_statistics,
)
from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT, UnitOfEnergy
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.dispatcher import (
    async_dispatcher_connect,
    async_dispatcher_send,
)
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util, slugify
from homeassistant.util.hass_dict import HassKey
from homeassistant.util.unit_conversion import EnergyConverter

from .const import DOMAIN, LOGGER
from .link import (
    CONF_PRICE_ENTITY,
    ChargerLink,
    delivered,
    links_of,
    registered_device,
    signal_charger_reading,
    vehicle_at_charger,
)
from .models import EvCloudConfigEntry, signal_device_added
from .readings import ChargerReading, charger_reading

if TYPE_CHECKING:
    from .coordinator import EvCloudCoordinator

EVENT_CHARGING_SESSION = f"{DOMAIN}_charging_session"
# What the Last charging session sensors show beside the energy (their state).
SESSION_ATTRIBUTES = (
    "start",
    "end",
    "start_soc",
    "end_soc",
    "peak_power_kw",
    "cost",
    "currency",
)
STORAGE_VERSION = 1
# An open session is written at most this often (and when it starts, when it
# ends, when the entry unloads and when Home Assistant stops).
SAVE_DELAY = 60.0
# A price per kWh from a price per this unit of energy.
PRICE_PER_KWH: dict[str, float] = {
    UnitOfEnergy.WATT_HOUR: 1000.0,
    UnitOfEnergy.KILO_WATT_HOUR: 1.0,
    UnitOfEnergy.MEGA_WATT_HOUR: 0.001,
}


def signal_session_ended(device_key: str) -> str:
    """Dispatcher signal with the event data of each session ended at a device."""
    return f"{DOMAIN}_session_ended_{device_key}"


def home_energy_statistic_id(vehicle_key: str) -> str:
    """The long-term statistic of the energy a vehicle was charged with at home."""
    return f"{DOMAIN}:{slugify(vehicle_key)}_energy_charged_at_home"


@dataclass(slots=True)
class ChargingSession:
    """A session at one charger while it runs.

    `hours` holds the kWh of each hour (its start, ISO) for the statistic.
    `cost` stays None without a price entity, and becomes None (unknown) when
    the price was not a number while energy flowed.
    """

    start: datetime
    # True: it ends when the car disconnects; False: when charging stops.
    by_plug: bool
    price_entity: str | None = None
    energy_kwh: float = 0.0
    peak_power_kw: float | None = None
    hours: dict[str, float] = field(default_factory=dict)
    # The vehicle at the charger; `unassigned` once that cannot be told.
    vehicle_key: str | None = None
    unassigned: bool = False
    # The state of charge of each linked vehicle when the session started.
    start_socs: dict[str, float | None] = field(default_factory=dict)
    cost: float | None = None
    currency: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """What is stored."""
        return {
            "start": self.start.isoformat(),
            "by_plug": self.by_plug,
            "price_entity": self.price_entity,
            "energy_kwh": self.energy_kwh,
            "peak_power_kw": self.peak_power_kw,
            "hours": self.hours,
            "vehicle_key": self.vehicle_key,
            "unassigned": self.unassigned,
            "start_socs": self.start_socs,
            "cost": self.cost,
            "currency": self.currency,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChargingSession:
        """A stored session (KeyError, TypeError or ValueError when malformed)."""
        return cls(
            start=_time(data["start"]),
            by_plug=bool(data["by_plug"]),
            price_entity=data["price_entity"],
            energy_kwh=float(data["energy_kwh"]),
            peak_power_kw=data["peak_power_kw"],
            hours={str(hour): float(kwh) for hour, kwh in data["hours"].items()},
            vehicle_key=data["vehicle_key"],
            unassigned=bool(data["unassigned"]),
            start_socs=dict(data["start_socs"]),
            cost=data["cost"],
            currency=data["currency"],
        )


def _time(value: str) -> datetime:
    parsed = dt_util.parse_datetime(value)
    if parsed is None:
        raise ValueError(f"not a time: {value}")
    return parsed


def _reading_as_dict(reading: ChargerReading) -> dict[str, Any]:
    return {
        "time": reading.time.isoformat(),
        "online": reading.online,
        "plugged": reading.plugged,
        "charging": reading.charging,
        "power_kw": reading.power_kw,
        "energy_kwh": reading.energy_kwh,
        "meter": reading.meter,
        "session_kwh": reading.session_kwh,
    }


def _reading_from_dict(data: Mapping[str, Any]) -> ChargerReading:
    return ChargerReading(
        time=_time(data["time"]),
        online=bool(data["online"]),
        plugged=data["plugged"],
        charging=data["charging"],
        power_kw=data["power_kw"],
        energy_kwh=data["energy_kwh"],
        meter=bool(data["meter"]),
        session_kwh=data.get("session_kwh"),
    )


def energy_between(old: ChargerReading | None, new: ChargerReading) -> float:
    """kWh delivered between two readings of a charger while a car is connected.

    A meter only counts what the connected car took, so all it grew counts
    (also while Home Assistant was down, or when the car was unplugged before
    the charger was read again); a session counter that grew since a reading
    that said charging counts too. Otherwise as `link.delivered`. Readings that
    hold different counters (the meter was missing from one) count nothing.
    """
    if (
        old is None
        or old.energy_kwh is None
        or new.energy_kwh is None
        or old.meter != new.meter
    ):
        return 0.0
    growth = new.energy_kwh - old.energy_kwh
    if growth >= 0 and (new.meter or old.charging is True):
        return growth
    return delivered(old, new)


def _price(hass: HomeAssistant, entity_id: str) -> tuple[float, str] | None:
    """The price of a kWh and its currency, from the entity (None: unknown).

    The unit says both ("EUR/kWh", "SEK/MWh"); without one, the price is per
    kWh in Home Assistant's currency.
    """
    state = hass.states.get(entity_id)
    if state is None:
        return None
    try:
        value = float(state.state)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    unit = str(state.attributes.get(ATTR_UNIT_OF_MEASUREMENT) or "")
    currency, slash, energy_unit = unit.partition("/")
    factor = PRICE_PER_KWH.get(energy_unit.strip()) if slash else 1.0
    if factor is None:
        return None
    return value * factor, currency.strip() or hass.config.currency


def _soc(link: ChargerLink | None) -> float | None:
    """The vehicle's state of charge: estimated, else its own last reading."""
    if link is None:
        return None
    if (estimate := link.estimate()) is not None:
        return round(estimate.soc, 1)
    vehicle = link.vehicle()
    return None if vehicle is None or vehicle.soc is None else round(vehicle.soc, 1)


def _start_soc(link: ChargerLink | None, session: ChargingSession) -> float | None:
    """The car's state of charge when the session started.

    From the estimate at the end less what the session added to this car, when
    the link knows it (the car is read only after it connects); else the value
    taken at the start.
    """
    if link is None:
        return None
    if (soc := link.soc_at(session.start)) is not None:
        return round(soc, 1)
    return session.start_socs.get(link.vehicle_key)


def _hour(time: datetime) -> str:
    return dt_util.as_utc(time).replace(minute=0, second=0, microsecond=0).isoformat()


class SessionTracker:
    """The charging sessions at one charger."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: EvCloudConfigEntry,
        coordinator: EvCloudCoordinator[Any],
        store: SessionStore,
    ) -> None:
        """Follow the charger read by `coordinator`, from what `store` kept of it."""
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.key: str = coordinator.device.key
        self._store = store
        self.session: ChargingSession | None = None
        # The last reading that had an energy counter: where the next counts from.
        self.last: ChargerReading | None = None
        # What the charger last said (None: never said).
        self.plugged: bool | None = None
        self.charging: bool | None = None
        self._remove_listener: CALLBACK_TYPE | None = None
        self._restore(store.stored.pop(self.key, None))

    def _restore(self, stored: Any) -> None:
        if not isinstance(stored, Mapping):
            return
        try:
            session = stored["session"]
            last = stored["last"]
            self.session = (
                None if session is None else ChargingSession.from_dict(session)
            )
            self.last = None if last is None else _reading_from_dict(last)
            self.plugged = stored["plugged"]
            self.charging = stored["charging"]
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            LOGGER.warning(
                "%s: the stored charging session of %s is unreadable; it is "
                "dropped: %r",
                self.entry.title,
                self.key,
                err,
            )
            self.session = self.last = self.plugged = self.charging = None
            return
        if self.session is not None:
            LOGGER.debug(
                "%s: charging session since %s resumed", self.key, self.session.start
            )

    def as_stored(self) -> dict[str, Any]:
        """What the store keeps of this charger."""
        return {
            "session": None if self.session is None else self.session.as_dict(),
            "last": None if self.last is None else _reading_as_dict(self.last),
            "plugged": self.plugged,
            "charging": self.charging,
        }

    @callback
    def async_start(self) -> None:
        """Listen to the charger's readings, starting with its current one."""
        self._remove_listener = async_dispatcher_connect(
            self.hass, signal_charger_reading(self.key), self._on_reading
        )
        if self.coordinator.data is not None:
            self._on_reading(
                charger_reading(self.coordinator.device, self.coordinator.data)
            )

    @callback
    def async_stop(self) -> None:
        """Stop listening (the entry unloads; the store keeps the open session)."""
        if self._remove_listener is not None:
            self._remove_listener()
            self._remove_listener = None

    @callback
    def _on_reading(self, reading: ChargerReading) -> None:
        if not reading.online:
            return  # an offline charger's values are not news
        session = self.session
        begins = session is None and self._begins(reading)
        ends = False
        if session is None and begins:
            session = self.session = self._begin(reading)
        if session is not None:
            self._count(session, reading, first=begins)
            ends = (
                reading.plugged is False
                if session.by_plug
                else reading.charging is False
            )
            if ends:
                self._finish(session, reading)
            else:
                self._assign(session, reading)
        said = (self.plugged, self.charging)
        self._remember(reading)
        if begins or ends:
            self._store.save_now()
        elif self.session is not None or said != (self.plugged, self.charging):
            self._store.save_later()

    def _begins(self, reading: ChargerReading) -> bool:
        """A car connected (or, without a plug state, charging started)."""
        if reading.plugged is not None:
            return self.plugged is False and reading.plugged
        return self.charging is False and reading.charging is True

    def _remember(self, reading: ChargerReading) -> None:
        if reading.plugged is not None:
            self.plugged = reading.plugged
        if reading.charging is not None:
            self.charging = reading.charging
        if reading.energy_kwh is not None:
            self.last = reading

    def _begin(self, reading: ChargerReading) -> ChargingSession:
        price_entity = self.entry.options.get(CONF_PRICE_ENTITY) or None
        price = None if price_entity is None else _price(self.hass, price_entity)
        session = ChargingSession(
            start=reading.time,
            by_plug=reading.plugged is not None,
            price_entity=price_entity,
            cost=0.0 if price_entity else None,
            # Known from the start: a session that took nothing cost 0 of it.
            currency=None if price is None else price[1],
            start_socs={
                link.vehicle_key: _soc(link) for link in links_of(self.hass, self.key)
            },
        )
        LOGGER.debug("%s: charging session started", self.key)
        return session

    def _count(
        self, session: ChargingSession, reading: ChargerReading, *, first: bool
    ) -> None:
        """Add the energy, power and cost since the last reading.

        At a session's first reading the charger's session counter, when it has
        one, is all the session took: the meter's growth since the last reading
        may hold a whole earlier session that began and ended between two reads.
        """
        if reading.power_kw is not None:
            session.peak_power_kw = max(session.peak_power_kw or 0.0, reading.power_kw)
        if first and reading.session_kwh is not None:
            energy = reading.session_kwh
        else:
            energy = energy_between(self.last, reading)
        if energy <= 0:
            return
        session.energy_kwh += energy
        hour = _hour(reading.time)
        session.hours[hour] = session.hours.get(hour, 0.0) + energy
        if session.cost is None or session.price_entity is None:
            return
        price = _price(self.hass, session.price_entity)
        if price is None or session.currency not in (None, price[1]):
            LOGGER.info(
                "%s: the cost of the charging session since %s is unknown: the "
                "price (%s) was not a number of one currency per unit of energy",
                self.key,
                session.start,
                session.price_entity,
            )
            session.cost = None
            return
        session.cost += energy * price[0]
        session.currency = price[1]

    def _assign(self, session: ChargingSession, reading: ChargerReading) -> None:
        """Decide which linked vehicle is at the charger, once it is clear."""
        links = links_of(self.hass, self.key)
        if session.unassigned or not links:
            return
        here = vehicle_at_charger(links, reading)
        if here is None:
            plugged_here = sorted(
                link.vehicle_key for link in links if link.says_plugged_here()
            )
            if len(links) > 1 and len(plugged_here) > 1:
                self._unassign(
                    session,
                    f"{', '.join(plugged_here)} all say they are plugged in at home",
                )
            return
        if session.vehicle_key is None:
            session.vehicle_key = here.vehicle_key
            LOGGER.debug("%s: %s is at the charger", self.key, here.vehicle_key)
        elif session.vehicle_key != here.vehicle_key:
            self._unassign(
                session,
                f"{session.vehicle_key} and then {here.vehicle_key} were at it",
            )

    def _unassign(self, session: ChargingSession, why: str) -> None:
        session.unassigned = True
        session.vehicle_key = None
        LOGGER.info(
            "%s: the charging session since %s is not assigned to a vehicle: %s",
            self.key,
            session.start,
            why,
        )

    def _finish(self, session: ChargingSession, reading: ChargerReading) -> None:
        """Tell the event, the sensors and the statistic about the session."""
        self.session = None
        links = links_of(self.hass, self.key)
        vehicle_key = session.vehicle_key
        if vehicle_key is None and links and not session.unassigned:
            LOGGER.info(
                "%s: the charging session since %s is not assigned to a vehicle: "
                "no linked vehicle said it was plugged in at home",
                self.key,
                session.start,
            )
        link = next((link for link in links if link.vehicle_key == vehicle_key), None)
        charger = registered_device(self.hass, self.key)
        vehicle = (
            None if vehicle_key is None else registered_device(self.hass, vehicle_key)
        )
        data: dict[str, Any] = {
            "charger_device_id": None if charger is None else charger.id,
            "vehicle_device_id": None if vehicle is None else vehicle.id,
            "start": session.start.isoformat(),
            "end": reading.time.isoformat(),
            "energy_kwh": round(session.energy_kwh, 3),
            "start_soc": _start_soc(link, session),
            "end_soc": _soc(link),
            "peak_power_kw": (
                None
                if session.peak_power_kw is None
                else round(session.peak_power_kw, 2)
            ),
            "cost": None if session.cost is None else round(session.cost, 2),
            "currency": session.currency if session.cost is not None else None,
            "at_home": True,
        }
        LOGGER.debug("%s: charging session ended: %s", self.key, data)
        self.hass.bus.async_fire(EVENT_CHARGING_SESSION, data)
        async_dispatcher_send(self.hass, signal_session_ended(self.key), data)
        if vehicle_key is None:
            return
        async_dispatcher_send(self.hass, signal_session_ended(vehicle_key), data)
        if session.hours and "recorder" in self.hass.config.components:
            name = vehicle_key
            if vehicle is not None:
                name = vehicle.name_by_user or vehicle.name or vehicle_key
            self.hass.async_create_task(
                async_add_home_energy(self.hass, vehicle_key, name, session.hours)
            )


class SessionStore:
    """Where an entry keeps the open session of each of its chargers."""

    def __init__(self, hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
        """The store of `entry`'s sessions (not loaded yet)."""
        self._hass = hass
        self._trackers = entry.runtime_data.sessions
        self._store: Store[dict[str, Any]] = Store(
            hass,
            STORAGE_VERSION,
            f"{DOMAIN}.sessions.{entry.entry_id}",
            private=True,
            atomic_writes=True,
        )
        # What was stored of chargers that have no tracker (yet).
        self.stored: dict[str, Any] = {}
        self._write_pending = False

    async def async_load(self) -> None:
        """Read what was stored."""
        stored = await self._store.async_load()
        self.stored = dict(stored) if isinstance(stored, Mapping) else {}

    def _data(self) -> dict[str, Any]:
        return self.stored | {
            key: tracker.as_stored() for key, tracker in self._trackers.items()
        }

    @callback
    def save_later(self) -> None:
        """Write within SAVE_DELAY (or when Home Assistant stops).

        A delayed write moves on with each new call: asked again only once
        written, it comes while the readings go on.
        """
        if self._write_pending:
            return
        self._write_pending = True
        self._store.async_delay_save(self._data_to_write, SAVE_DELAY)

    def _data_to_write(self) -> dict[str, Any]:
        self._write_pending = False
        return self._data()

    @callback
    def save_now(self) -> None:
        """Write now (a session started or ended); a pending write is dropped."""
        self._write_pending = False
        self._hass.async_create_task(self._store.async_save(self._data()))

    async def async_unload(self) -> None:
        """Stop the trackers and write what they hold."""
        for tracker in self._trackers.values():
            tracker.async_stop()
        self._write_pending = False
        await self._store.async_save(self._data())


async def async_setup_sessions(hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
    """Follow the sessions at each charger of the entry, now and when one is added."""
    runtime = entry.runtime_data
    if not any(kind.role == "charger" for kind in runtime.provider.entities):
        return
    store = SessionStore(hass, entry)
    await store.async_load()

    @callback
    def track(coordinator: EvCloudCoordinator[Any]) -> None:
        key = coordinator.device.key
        if coordinator.device.entities.role != "charger" or key in runtime.sessions:
            return
        tracker = runtime.sessions[key] = SessionTracker(
            hass, entry, coordinator, store
        )
        tracker.async_start()

    for coordinator in (*runtime.coordinators.values(), *runtime.unread.values()):
        track(coordinator)
    entry.async_on_unload(store.async_unload)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_device_added(entry), track)
    )


async def async_remove_sessions(hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
    """Remove the entry's stored sessions."""
    await Store[dict[str, Any]](
        hass, STORAGE_VERSION, f"{DOMAIN}.sessions.{entry.entry_id}"
    ).async_remove()


# --- the long-term statistic of each vehicle ----------------------------------------


@dataclass(slots=True)
class _HomeEnergySums:
    """The last row written of each statistic, so that the next continues it.

    The recorder writes in its own time: a statistic read back before it wrote
    the previous rows would restart the sum.
    """

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last: dict[str, tuple[float, float]] = field(default_factory=dict)


HOME_ENERGY: HassKey[_HomeEnergySums] = HassKey(f"{DOMAIN}_home_energy")


async def async_add_home_energy(
    hass: HomeAssistant, vehicle_key: str, name: str, hours: Mapping[str, float]
) -> None:
    """Add a session's kWh per hour to the vehicle's energy charged at home.

    Each hour's row holds the sum of everything charged at home up to its end,
    continuing the last row stored; an hour that already has a row (an earlier
    session ended in it) gets the larger sum.
    """
    statistic_id = home_energy_statistic_id(vehicle_key)
    sums = hass.data.setdefault(HOME_ENERGY, _HomeEnergySums())
    async with sums.lock:
        last = sums.last.get(statistic_id)
        if last is None:
            found = await get_instance(hass).async_add_executor_job(
                get_last_statistics, hass, 1, statistic_id, False, {"sum"}
            )
            rows = found.get(statistic_id)
            last = (rows[0]["start"], rows[0].get("sum") or 0.0) if rows else (0.0, 0.0)
        last_start, total = last
        # Never a row before the last one: sums only go forward in time.
        added: dict[float, float] = {}
        for hour, kwh in hours.items():
            start = max(_time(hour).timestamp(), last_start)
            added[start] = added.get(start, 0.0) + kwh
        statistics: list[StatisticData] = []
        for start in sorted(added):
            total += added[start]
            statistics.append(
                StatisticData(start=dt_util.utc_from_timestamp(start), sum=total)
            )
        sums.last[statistic_id] = (statistics[-1]["start"].timestamp(), total)
        async_add_external_statistics(
            hass,
            StatisticMetaData(
                has_sum=True,
                mean_type=StatisticMeanType.NONE,
                name=f"{name} energy charged at home",
                source=DOMAIN,
                statistic_id=statistic_id,
                unit_class=EnergyConverter.UNIT_CLASS,
                unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
            ),
            statistics,
        )
