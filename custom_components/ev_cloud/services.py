"""Actions: start and stop charging, and send waiting data, on EV Cloud devices."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_DEVICE_ID
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv, device_registry as dr

if TYPE_CHECKING:
    # Home Assistant >= 2026.10 types its schemas with probatio, which it installs
    # as `voluptuous`; older releases use voluptuous itself.
    import probatio as vol
else:
    import voluptuous as vol

from .const import DOMAIN
from .coordinator import EvCloudCoordinator
from .device import ChargeControl, EvCloudDevice
from .models import EvCloudConfigEntry

SERVICE_START_CHARGING = "start_charging"
SERVICE_STOP_CHARGING = "stop_charging"
SERVICE_UPLOAD_NOW = "upload_now"

DEVICES_SCHEMA = vol.Schema(
    {vol.Required(ATTR_DEVICE_ID): vol.All(cv.ensure_list, [cv.string])}
)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the actions once for the integration (not per entry)."""
    for service, start in (
        (SERVICE_START_CHARGING, True),
        (SERVICE_STOP_CHARGING, False),
    ):
        hass.services.async_register(
            DOMAIN,
            service,
            partial(_async_charge, hass, start=start),
            schema=DEVICES_SCHEMA,
        )
    hass.services.async_register(
        DOMAIN,
        SERVICE_UPLOAD_NOW,
        partial(_async_upload_now, hass),
        schema=DEVICES_SCHEMA,
    )


async def _async_charge(hass: HomeAssistant, call: ServiceCall, *, start: bool) -> None:
    """Start or stop charging; a device already in that state is left alone.

    A vehicle that cannot command charges through its linked charger when it
    is plugged into it.
    """
    targets = [
        _charge_target(hass, device_id) for device_id in call.data[ATTR_DEVICE_ID]
    ]
    for coordinator, control in targets:
        state = coordinator.data.state
        command = (
            control.async_start_charging(state)
            if start
            else control.async_stop_charging(state)
        )
        await coordinator.async_command(command)


async def _async_upload_now(hass: HomeAssistant, call: ServiceCall) -> None:
    """Send the data the devices hold for their services now."""
    for coordinator, control in _targets(
        hass,
        call,
        lambda device: device.upload_control,
        lambda _device: "upload_not_supported",
    ):
        await coordinator.async_command(control.async_upload_now())


def _charge_target(
    hass: HomeAssistant, device_id: str
) -> tuple[EvCloudCoordinator[Any], ChargeControl[Any]]:
    """The device's own charge control, else its linked charger's."""
    coordinator, name = _coordinator_for(hass, device_id)
    device = coordinator.device
    if (control := device.charge_control) is not None:
        return coordinator, control
    link = coordinator.config_entry.runtime_data.links.get(device.key)
    if link is None:
        raise _missing(name, device.charge_control_missing)
    return link.charge_route(name)


def _targets[T](
    hass: HomeAssistant,
    call: ServiceCall,
    capability: Callable[[EvCloudDevice[Any]], T | None],
    missing: Callable[[EvCloudDevice[Any]], str],
) -> list[tuple[EvCloudCoordinator[Any], T]]:
    """Each target's coordinator and capability.

    Every device is resolved first, so that one bad target changes nothing;
    `missing` names the translation that explains a device without it.
    """
    targets = []
    for device_id in call.data[ATTR_DEVICE_ID]:
        coordinator, name = _coordinator_for(hass, device_id)
        device = coordinator.device
        targets.append(
            (
                coordinator,
                _capability(name, capability(device), missing=missing(device)),
            )
        )
    return targets


def _capability[T](name: str, capability: T | None, *, missing: str) -> T:
    """The capability, or the translated reason why the device lacks it."""
    if capability is None:
        raise _missing(name, missing)
    return capability


def _missing(name: str, translation_key: str) -> ServiceValidationError:
    """The error for a device that lacks a capability."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=translation_key,
        translation_placeholders={"name": name},
    )


def _coordinator_for(
    hass: HomeAssistant, device_id: str
) -> tuple[EvCloudCoordinator[Any], str]:
    """The coordinator of a readable EV Cloud device, and the device's name."""
    registry = dr.async_get(hass)
    device_entry = registry.async_get(device_id)
    if device_entry is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="device_not_found",
            translation_placeholders={"device_id": device_id},
        )
    name = device_entry.name_by_user or device_entry.name or device_id
    # Look the entry up from our side: DeviceEntry's entry attributes differ
    # between the Home Assistant releases we support.
    entry: EvCloudConfigEntry | None = next(
        (
            candidate
            for candidate in hass.config_entries.async_entries(DOMAIN)
            if any(
                device.id == device_id
                for device in dr.async_entries_for_config_entry(
                    registry, candidate.entry_id
                )
            )
        ),
        None,
    )
    if entry is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="device_not_found",
            translation_placeholders={"device_id": name},
        )
    if entry.state is not ConfigEntryState.LOADED:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="entry_not_loaded",
            translation_placeholders={"name": name},
        )
    coordinator = next(
        (
            coordinator
            for key, coordinator in entry.runtime_data.coordinators.items()
            if (DOMAIN, key) in device_entry.identifiers
        ),
        None,
    )
    if coordinator is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="device_not_readable",
            translation_placeholders={"name": name},
        )
    return coordinator, name
