"""Sensors: measurements and states of vehicles and chargers."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorStateClass,
)
from homeassistant.const import PERCENTAGE, UnitOfEnergy
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .descriptions import EvCloudSensorEntityDescription
from .entity import AnyCoordinator, EvCloudEntity, async_add_device_entities
from .link import ChargerLink
from .models import EvCloudConfigEntry, signal_device_added
from .sessions import SESSION_ATTRIBUTES, signal_session_ended

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of every device of the entry."""
    async_add_device_entities(
        hass, entry, lambda kind: kind.sensor, EvCloudSensor, async_add_entities
    )
    links = entry.runtime_data.links.values()
    async_add_entities(EstimatedBatteryLevelSensor(link) for link in links)
    async_add_session_sensors(hass, entry, async_add_entities)


class EvCloudSensor(EvCloudEntity, SensorEntity):
    """A sensor of a vehicle or charger."""

    entity_description: EvCloudSensorEntityDescription[Any]

    @property
    def native_value(self) -> StateType | datetime:
        """The value from the latest reading."""
        return self.entity_description.value_fn(self.coordinator.data)

    def shown(self) -> object:
        """The value and its unit."""
        return (self.native_value, self.native_unit_of_measurement)

    @property
    def native_unit_of_measurement(self) -> str | None:
        """The device's own unit where it has one."""
        if self.entity_description.unit_fn is not None:
            return self.entity_description.unit_fn(self.coordinator.data.state)
        return super().native_unit_of_measurement


class EstimatedBatteryLevelSensor(CoordinatorEntity[AnyCoordinator], SensorEntity):
    """A linked vehicle's state of charge, estimated from its charger's energy.

    Updated with each reading of the vehicle or the charger (the link tells the
    vehicle's coordinator's listeners); unknown while it cannot be estimated.
    """

    _attr_has_entity_name = True
    _attr_translation_key = "estimated_battery_level"
    _attr_device_class = SensorDeviceClass.BATTERY
    _attr_native_unit_of_measurement = PERCENTAGE
    _attr_state_class = SensorStateClass.MEASUREMENT
    _attr_suggested_display_precision = 0

    def __init__(self, link: ChargerLink) -> None:
        """Show the estimate of `link`'s vehicle on the vehicle's device."""
        super().__init__(link.coordinator)
        self.link = link
        self._attr_unique_id = f"{link.vehicle_key}_estimated_battery_level"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, link.vehicle_key)})
        self._show_estimate()

    @property
    def available(self) -> bool:
        """Available once the vehicle was read (the charger may say more later)."""
        return self.coordinator.data is not None

    @callback
    def _handle_coordinator_update(self) -> None:
        self._show_estimate()
        super()._handle_coordinator_update()

    def _show_estimate(self) -> None:
        """The estimate (to a tenth of a point) and what it starts from.

        Worked out once per update of the vehicle or the charger.
        """
        estimate = self.link.estimate()
        self._attr_native_value = None if estimate is None else round(estimate.soc, 1)
        self._attr_extra_state_attributes = {
            "charger": self.link.charger_name,
            "base_battery_level": None if estimate is None else estimate.base_soc,
            "base_time": None if estimate is None else estimate.base_time.isoformat(),
            "energy_added_kwh": (
                None if estimate is None else round(estimate.energy_added_kwh, 3)
            ),
        }


class LastChargingSessionSensor(RestoreSensor):
    """The last charging session at a charger, or of a vehicle at its home charger.

    The state is the session's energy; no state class, so that statistics never
    add a session twice (the vehicle's statistic of the energy charged at home
    counts them: `sessions.async_add_home_energy`).
    """

    _attr_has_entity_name = True
    _attr_should_poll = False
    _attr_translation_key = "last_charging_session"
    _attr_device_class = SensorDeviceClass.ENERGY
    _attr_native_unit_of_measurement = UnitOfEnergy.KILO_WATT_HOUR
    _attr_suggested_display_precision = 2

    def __init__(self, device_key: str) -> None:
        """The sensor of the charger or vehicle `device_key`."""
        self._device_key = device_key
        self._attr_unique_id = f"{device_key}_last_charging_session"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, device_key)})

    async def async_added_to_hass(self) -> None:
        """Show the session shown before the restart, and listen for the next."""
        await super().async_added_to_hass()
        if (data := await self.async_get_last_sensor_data()) is not None:
            self._attr_native_value = data.native_value
        if (state := await self.async_get_last_state()) is not None:
            self._attr_extra_state_attributes = {
                key: state.attributes.get(key) for key in SESSION_ATTRIBUTES
            }
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, signal_session_ended(self._device_key), self._ended
            )
        )

    @callback
    def _ended(self, session: Mapping[str, Any]) -> None:
        self._attr_native_value = session["energy_kwh"]
        self._attr_extra_state_attributes = {
            key: session[key] for key in SESSION_ATTRIBUTES
        }
        self.async_write_ha_state()


@callback
def async_add_session_sensors(
    hass: HomeAssistant,
    entry: EvCloudConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A Last charging session sensor for each charger and linked vehicle.

    Chargers added later get theirs when they are added.
    """
    runtime = entry.runtime_data
    added: set[str] = set()

    @callback
    def add(
        coordinators: Iterable[AnyCoordinator], vehicles: Iterable[str] = ()
    ) -> None:
        chargers = [
            coordinator.device.key
            for coordinator in coordinators
            if coordinator.device.entities.role == "charger"
        ]
        keys = [key for key in (*chargers, *vehicles) if key not in added]
        added.update(keys)
        async_add_entities(LastChargingSessionSensor(key) for key in keys)

    @callback
    def add_one(coordinator: AnyCoordinator) -> None:
        add([coordinator])

    add([*runtime.coordinators.values(), *runtime.unread.values()], runtime.links)
    entry.async_on_unload(
        async_dispatcher_connect(hass, signal_device_added(entry), add_one)
    )
