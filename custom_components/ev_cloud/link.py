"""A vehicle joined to the charger it is charged by at home.

The vehicle's entry options name the charger (any EV Cloud device of role
"charger", in any entry: it is found through the device registry, never by
import). Chargers publish each reading on a dispatcher signal (the coordinator
sends it); each link turns the changes into charger events (car connected,
charging started or stopped, car disconnected) and the energy delivered, and
gives its vehicle:

- an estimated state of charge: the car's last reading plus the energy the
  charger delivered since, times the charging efficiency, over the capacity;
- a look at the vehicle soon after each event, and rest for a vehicle whose
  requests are scarce while the charger charges it (the estimate covers it);
- start and stop through the charger for a vehicle that cannot command.

One charger may serve several vehicles: the one at the charger is the one whose
own data says it is plugged in at home (`vehicle_at_charger`); otherwise no
vehicle is assigned, and nothing is counted for any of them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    device_registry as dr,
    entity_registry as er,
    issue_registry as ir,
)
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.event import async_call_later
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN, LOGGER
from .readings import ChargerReading, VehicleReading, charger_reading, vehicle_reading

if TYPE_CHECKING:
    from .coordinator import EvCloudCoordinator
    from .device import ChargeControl, DeviceData
    from .models import EvCloudConfigEntry

# Charger entry option: the entity whose state is the price of a kWh, for the
# cost of each charging session.
CONF_PRICE_ENTITY = "price_entity"
# Vehicle entry options: {vehicle key: {CONF_CHARGER: registry device id,
# CONF_EFFICIENCY: %, CONF_CAPACITY: kWh (used when the service has none)}}.
CONF_CHARGER_LINKS = "charger_links"
CONF_CHARGER = "charger"
CONF_EFFICIENCY = "efficiency"
CONF_CAPACITY = "capacity"
DEFAULT_EFFICIENCY = 90

# The links of each charger (key), over all entries.
LINKS: HassKey[dict[str, set[ChargerLink]]] = HassKey(f"{DOMAIN}_charger_links")

# The vehicle's service needs a moment to learn what the charger saw.
LOOK_DELAY = timedelta(seconds=60)
# Energy is remembered this long (the oldest car reading an estimate may start from).
HISTORY = timedelta(hours=48)
# A car reading this much older than the first charger reading still counts
# (both read at setup, a moment apart).
SETUP_GRACE = timedelta(minutes=10)


def signal_charger_reading(charger_key: str) -> str:
    """Dispatcher signal with each `ChargerReading` of the charger `charger_key`."""
    return f"{DOMAIN}_charger_reading_{charger_key}"


@dataclass(frozen=True, slots=True)
class ChargerEvents:
    """What changed at the charger between two readings."""

    connected: bool
    started: bool
    stopped: bool
    disconnected: bool

    @classmethod
    def between(cls, old: ChargerReading | None, new: ChargerReading) -> ChargerEvents:
        """The events from `old` to `new` (none for the first reading)."""
        if old is None:
            return cls(False, False, False, False)
        return cls(
            connected=old.plugged is False and new.plugged is True,
            started=old.charging is False and new.charging is True,
            stopped=old.charging is True and new.charging is False,
            disconnected=old.plugged is True and new.plugged is False,
        )

    def __bool__(self) -> bool:
        """True when anything happened."""
        return self.connected or self.started or self.stopped or self.disconnected


def delivered(old: ChargerReading | None, new: ChargerReading) -> float:
    """kWh the charger delivered between two readings (0 while nothing flows).

    Energy counts when either reading says it flows (the charge that ended
    between them counts to its end). A session counter that restarts counts
    from zero; a meter never falls.
    """
    if old is None or new.energy_kwh is None or old.energy_kwh is None:
        return 0.0
    if old.meter != new.meter:
        return 0.0  # one counter against the other says nothing
    if not any(r.charging is True or (r.power_kw or 0) > 0 for r in (old, new)):
        return 0.0
    if new.energy_kwh >= old.energy_kwh:
        return new.energy_kwh - old.energy_kwh
    return 0.0 if new.meter else new.energy_kwh


def vehicle_at_charger(
    links: Iterable[ChargerLink], charger: ChargerReading
) -> ChargerLink | None:
    """The linked vehicle at the charger, when its data says so; else None.

    With one vehicle linked, it is the one unless its own data, newer than the
    car's connection, says it is unplugged or away. With several, exactly one
    must say it is plugged in at home.
    """
    if charger.plugged is False:
        return None
    candidates = list(links)
    if len(candidates) == 1:
        (only,) = candidates
        return None if only.says_elsewhere() else only
    here = [link for link in candidates if link.says_plugged_here()]
    return here[0] if len(here) == 1 else None


def links_of(hass: HomeAssistant, charger_key: str) -> set[ChargerLink]:
    """The links of a charger (empty when none)."""
    return hass.data.get(LINKS, {}).get(charger_key, set())


class ChargerLink:
    """One vehicle and the charger that charges it at home."""

    def __init__(
        self,
        hass: HomeAssistant,
        coordinator: EvCloudCoordinator[Any],
        charger_key: str,
        charger_name: str,
        options: Mapping[str, Any],
    ) -> None:
        """Join the vehicle read by `coordinator` to the charger `charger_key`."""
        self.hass = hass
        self.coordinator = coordinator
        self.charger_key = charger_key
        self.charger_name = charger_name
        self.charger_device_id: str = options[CONF_CHARGER]
        # The vehicle's registry device (None until its entities registered it).
        device = registered_device(hass, coordinator.device.key)
        self.vehicle_device_id: str | None = None if device is None else device.id
        self.efficiency = float(options.get(CONF_EFFICIENCY, DEFAULT_EFFICIENCY)) / 100
        self.capacity_option: float | None = options.get(CONF_CAPACITY)
        self.charger: ChargerReading | None = None
        # When the charger last saw a car connect (None: not seen).
        self.connected_at: datetime | None = None
        # (time, kWh delivered to this vehicle so far), oldest first.
        self._energy: deque[tuple[datetime, float]] = deque()
        self._delivered = 0.0
        self._look: CALLBACK_TYPE | None = None
        self._listeners: list[CALLBACK_TYPE] = []

    # --- the vehicle's side --------------------------------------------------

    @property
    def vehicle_key(self) -> str:
        """The vehicle's device key."""
        return self.coordinator.device.key

    def vehicle(self) -> VehicleReading | None:
        """What the vehicle's own latest data says (None: never read)."""
        data: DeviceData[Any] | None = self.coordinator.data  # None until read
        if data is None:
            return None
        return vehicle_reading(self.hass, self.coordinator.device, data)

    def capacity_kwh(self, vehicle: VehicleReading | None = None) -> float | None:
        """The usable capacity: the service's (from `vehicle`), else the option's."""
        if vehicle is None:
            vehicle = self.vehicle()
        if vehicle is not None and vehicle.capacity_kwh:
            return vehicle.capacity_kwh
        return self.capacity_option or None

    def says_plugged_here(self) -> bool:
        """The vehicle's own data says plugged in, and not away from home."""
        vehicle = self.vehicle()
        return (
            vehicle is not None
            and vehicle.plugged is True
            and vehicle.at_home is not False
        )

    def says_elsewhere(self) -> bool:
        """Its data, newer than the car's connection, says unplugged or away."""
        vehicle = self.vehicle()
        if vehicle is None or (
            vehicle.plugged is not False and vehicle.at_home is not False
        ):
            return False
        if self.connected_at is None or vehicle.data_time is None:
            return True
        return vehicle.data_time >= self.connected_at

    def at_charger(self) -> bool:
        """This vehicle is the one at the charger now."""
        if self.charger is None:
            return False
        return (
            vehicle_at_charger(links_of(self.hass, self.charger_key), self.charger)
            is self
        )

    def charge_route(
        self, name: str
    ) -> tuple[EvCloudCoordinator[Any], ChargeControl[Any]]:
        """The charger's coordinator and control, to charge the vehicle `name`.

        Raises the translated reason when the charger cannot do it: not loaded,
        without start and stop, or without this vehicle plugged in.
        """
        placeholders = {"name": name, "charger": self.charger_name}
        charger = charger_coordinator(self.hass, self.charger_key)
        control = None if charger is None else charger.device.charge_control
        if charger is None or control is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="charge_via_charger_unavailable",
                translation_placeholders=placeholders,
            )
        if not self.at_charger():
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="charge_via_charger_not_plugged",
                translation_placeholders=placeholders,
            )
        return charger, control

    # --- the estimate ----------------------------------------------------------

    def energy_since(self, when: datetime) -> float | None:
        """kWh delivered to this vehicle since `when` (None: not known so far back)."""
        if not self._energy:
            return None
        first_time, first = self._energy[0]
        if when < first_time - SETUP_GRACE:
            return None
        before = first
        for time, total in self._energy:
            if time > when:
                break
            before = total
        return self._delivered - before

    def estimate(self) -> Estimate | None:
        """The estimated state of charge (None: it cannot be estimated now)."""
        vehicle = self.vehicle()
        capacity = self.capacity_kwh(vehicle)
        if vehicle is None or vehicle.soc is None or vehicle.data_time is None:
            return None
        if self.connected_at is not None and vehicle.data_time < self.connected_at:
            # Read before it came home: what it used driving is not known.
            return None
        added = self.energy_since(vehicle.data_time)
        if added is None or not capacity:
            return None
        soc = min(100.0, vehicle.soc + added * self.efficiency / capacity * 100)
        return Estimate(soc, vehicle.soc, vehicle.data_time, added)

    def diagnostics(self) -> dict[str, Any]:
        """What a bug report needs to know about the link (no ids, no names)."""
        estimate = self.estimate()
        charger = self.charger
        return {
            "charger_loaded": charger_coordinator(self.hass, self.charger_key)
            is not None,
            "charger_reading": None if charger is None else asdict(charger),
            "at_charger": self.at_charger(),
            "covered": self.coordinator.covered,
            "efficiency": self.efficiency,
            "capacity_kwh": self.capacity_kwh(),
            "estimate": None if estimate is None else asdict(estimate),
            "delivered_kwh": self._delivered,
        }

    def soc_at(self, when: datetime) -> float | None:
        """The state of charge at `when`: the estimate less what was added since.

        For the start of a session, whose car is only read after it connects.
        """
        estimate = self.estimate()
        capacity = self.capacity_kwh()
        added = self.energy_since(when)
        if estimate is None or added is None or not capacity:
            return None
        return max(0.0, estimate.soc - added * self.efficiency / capacity * 100)

    # --- wiring ------------------------------------------------------------------

    @callback
    def async_start(self, current: ChargerReading | None) -> None:
        """Listen to the charger (starting from its `current` reading, if loaded)."""
        self.hass.data.setdefault(LINKS, {}).setdefault(self.charger_key, set()).add(
            self
        )
        self._listeners.append(
            async_dispatcher_connect(
                self.hass, signal_charger_reading(self.charger_key), self._on_reading
            )
        )
        if current is not None:
            self._on_reading(current)

    @callback
    def async_stop(self) -> None:
        """Stop listening; the vehicle is polled as usual again."""
        for remove in self._listeners:
            remove()
        self._listeners.clear()
        if self._look is not None:
            self._look()
            self._look = None
        links = self.hass.data.get(LINKS, {})
        links.get(self.charger_key, set()).discard(self)
        self.coordinator.set_covered(False)

    @callback
    def _on_reading(self, reading: ChargerReading) -> None:
        previous, self.charger = self.charger, reading
        events = ChargerEvents.between(previous, reading)
        if events.connected:
            self.connected_at = reading.time
        here = self.at_charger()
        if here:
            self._delivered += delivered(previous, reading)
        self._energy.append((reading.time, self._delivered))
        while self._energy and self._energy[0][0] < reading.time - HISTORY:
            self._energy.popleft()
        if events:
            LOGGER.debug(
                "%s: charger %s: %s", self.vehicle_key, self.charger_key, events
            )
            self._look_soon()
        # Plugged in at the charger, charging or not, the estimate covers it.
        covered = (
            reading.online
            and (reading.charging is True or reading.plugged is True)
            and here
            and self.estimate() is not None
        )
        if self.coordinator.covered and not covered:
            self._look_soon()
        self.coordinator.set_covered(covered)
        self.coordinator.async_update_listeners()

    @callback
    def _look_soon(self) -> None:
        """Read the vehicle once, a moment from now (within its budget)."""
        if self._look is not None:
            return

        async def _async_look(_now: datetime) -> None:
            self._look = None
            await self.coordinator.async_request_refresh()

        self._look = async_call_later(self.hass, LOOK_DELAY, _async_look)


@dataclass(frozen=True, slots=True)
class Estimate:
    """An estimated state of charge, and what it was made from."""

    soc: float
    base_soc: float
    base_time: datetime
    energy_added_kwh: float


def charger_coordinator(
    hass: HomeAssistant, charger_key: str
) -> EvCloudCoordinator[Any] | None:
    """The coordinator of a loaded charger with `charger_key`, in any entry."""
    entry: EvCloudConfigEntry
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED and (
            coordinator := entry.runtime_data.coordinators.get(charger_key)
        ):
            return coordinator
    return None


def charger_key_of(hass: HomeAssistant, device_id: str) -> tuple[str, str] | None:
    """The key and name of the EV Cloud device with registry id `device_id`."""
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        return None
    key = next((key for domain, key in device.identifiers if domain == DOMAIN), None)
    if key is None:
        return None
    return key, device.name_by_user or device.name or key


@callback
def async_setup_links(hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
    """Start the links the entry's options name, and drop those gone since.

    A link whose charger or vehicle left the device registry is removed from the
    options, with a repair issue that says so (never an error at each setup).
    """
    runtime = entry.runtime_data
    for vehicle_key, options in entry.options.get(CONF_CHARGER_LINKS, {}).items():
        coordinator = runtime.coordinators.get(vehicle_key) or runtime.unread.get(
            vehicle_key
        )
        if coordinator is None:
            continue  # left out in the options: the link waits
        charger = charger_key_of(hass, options[CONF_CHARGER])
        if charger is None:
            _drop_link(hass, entry, vehicle_key)
            continue
        charger_key, charger_name = charger
        link = ChargerLink(hass, coordinator, charger_key, charger_name, options)
        found = charger_coordinator(hass, charger_key)
        link.async_start(
            charger_reading(found.device, found.data)
            if found is not None and found.data is not None
            else None
        )
        runtime.links[vehicle_key] = link
        entry.async_on_unload(link.async_stop)

    _remove_unlinked_entities(hass, entry)

    @callback
    def _registry_changed(event: Event[dr.EventDeviceRegistryUpdatedData]) -> None:
        links = list(runtime.links.items())
        if event.data["action"] != "remove":
            # A new vehicle's device is registered with its first entities.
            for _key, link in links:
                if link.vehicle_device_id is None:
                    device = registered_device(hass, link.vehicle_key)
                    link.vehicle_device_id = None if device is None else device.id
            return
        gone = event.data["device_id"]
        for vehicle_key, link in links:
            if gone in (link.vehicle_device_id, link.charger_device_id):
                link.async_stop()
                del runtime.links[vehicle_key]
                _drop_link(hass, entry, vehicle_key)

    entry.async_on_unload(
        hass.bus.async_listen(dr.EVENT_DEVICE_REGISTRY_UPDATED, _registry_changed)
    )


def _drop_link(
    hass: HomeAssistant, entry: EvCloudConfigEntry, vehicle_key: str
) -> None:
    """Remove a vehicle's link from the options and say so in a repair issue."""
    links = dict(entry.options.get(CONF_CHARGER_LINKS, {}))
    links.pop(vehicle_key, None)
    LOGGER.warning(
        "%s: the charger link of %s is removed: its vehicle or charger is gone",
        entry.title,
        vehicle_key,
    )
    hass.config_entries.async_update_entry(
        entry, options={**entry.options, CONF_CHARGER_LINKS: links}
    )
    ir.async_create_issue(
        hass,
        DOMAIN,
        link_issue_id(entry, vehicle_key),
        is_fixable=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key="charger_link_removed",
        translation_placeholders={"name": entry.title, "vehicle": vehicle_key},
    )


def link_issue_id(entry: EvCloudConfigEntry, vehicle_key: str) -> str:
    """The repair issue of a removed link (the entry's id first, as all of ours)."""
    return f"{entry.entry_id}_{vehicle_key}_charger_link_removed"


@dataclass(frozen=True, slots=True)
class LinkableVehicle:
    """A vehicle of a loaded entry, as the options flow offers it."""

    name: str
    capacity_known: bool


def linked_vehicles(entry: EvCloudConfigEntry) -> dict[str, LinkableVehicle]:
    """The vehicles of a loaded entry that may be linked to a charger, by key."""
    if entry.state is not ConfigEntryState.LOADED:
        return {}
    vehicles = {}
    for key, coordinator in entry.runtime_data.coordinators.items():
        if coordinator.device.entities.role != "vehicle":
            continue
        device = registered_device(coordinator.hass, key)
        name = (device and (device.name_by_user or device.name)) or key
        reading = vehicle_reading(
            coordinator.hass, coordinator.device, coordinator.data
        )
        vehicles[key] = LinkableVehicle(name, bool(reading.capacity_kwh))
    return vehicles


def charger_devices(hass: HomeAssistant) -> dict[str, str]:
    """Registry id and name of every loaded EV Cloud charger, in any entry."""
    chargers = {}
    entry: EvCloudConfigEntry
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is not ConfigEntryState.LOADED:
            continue
        for key, coordinator in entry.runtime_data.coordinators.items():
            if coordinator.device.entities.role != "charger":
                continue
            if device := registered_device(hass, key):
                chargers[device.id] = (
                    f"{device.name_by_user or device.name or key} ({entry.title})"
                )
    return chargers


def registered_device(hass: HomeAssistant, key: str) -> dr.DeviceEntry | None:
    """The registry device of the EV Cloud device `key`, in any entry.

    (Looked up per entry: the registry's lookup by identifier differs between
    the Home Assistant releases we support.)
    """
    registry = dr.async_get(hass)
    for entry in hass.config_entries.async_entries(DOMAIN):
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
            if (DOMAIN, key) in device.identifiers:
                return device
    return None


# The unique-id ends of the entities a link gives its vehicle.
LINK_ENTITIES = ("_estimated_battery_level", "_last_charging_session")


def _remove_unlinked_entities(hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
    """Drop the link entities of the entry's vehicles that no longer have a link.

    Otherwise they would stay behind as unavailable entities.
    """
    runtime = entry.runtime_data
    registry = er.async_get(hass)
    for entity in er.async_entries_for_config_entry(registry, entry.entry_id):
        for end in LINK_ENTITIES:
            key = entity.unique_id.removesuffix(end)
            coordinator = runtime.coordinators.get(key)
            if (
                key != entity.unique_id
                and key not in runtime.links
                and coordinator is not None
                and coordinator.device.entities.role == "vehicle"
            ):
                registry.async_remove(entity.entity_id)
