"""EV-Monitor: config-flow steps (account, vehicle, source), reauth, reconfigure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import (
    SOURCE_REAUTH,
    SOURCE_RECONFIGURE,
    ConfigFlowResult,
)
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.data_entry_flow import section
from homeassistant.helpers.selector import (
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
)

if TYPE_CHECKING:
    # Home Assistant >= 2026.10 types its schemas with probatio, which it installs
    # as `voluptuous`; older releases use voluptuous itself.
    import probatio as vol
else:
    import voluptuous as vol

from ...api import AuthenticationError, EvCloudError, RateLimitedError
from ...api.evmonitor import DEFAULT_SERVER_URL, EvMonitorVehicle
from ...const import CONF_PROVIDER, CONF_SERVER_URL, LOGGER, SECTION_ADVANCED
from ...flow import (
    PASSWORD,
    TEXT,
    URL,
    EvCloudFlow,
    advanced_section,
    advanced_url,
)
from .client import create_client
from .const import (
    CONF_SOURCE,
    CONF_SOURCE_DEVICE,
    CONF_VEHICLE,
    FIELDS,
    NAME,
    SOURCE_DEVICE,
    SOURCE_ENTITIES,
)
from .options import DEVICE, check_source, field_selectors
from .source import device_mapping

SCHEMA = vol.Schema(
    {
        vol.Required(CONF_USERNAME): TEXT,
        vol.Required(CONF_PASSWORD): PASSWORD,
        vol.Required(SECTION_ADVANCED): section(
            vol.Schema({vol.Optional(CONF_SERVER_URL): URL}), {"collapsed": True}
        ),
    }
)
REAUTH_SCHEMA = vol.Schema({vol.Required(CONF_PASSWORD): PASSWORD})
SOURCE_SELECTOR = SelectSelector(
    SelectSelectorConfig(
        options=[SOURCE_DEVICE, SOURCE_ENTITIES],
        translation_key=CONF_SOURCE,
        mode=SelectSelectorMode.LIST,
    )
)


def _label(vehicle: EvMonitorVehicle) -> str:
    return vehicle.nickname or vehicle.vehicle_id


class EvMonitorFlow(EvCloudFlow):
    """Add an EV-Monitor logbook: account, vehicle, then where its data comes from."""

    _evmonitor_data: dict[str, Any]
    _evmonitor_vehicles: list[EvMonitorVehicle]

    async def async_step_evmonitor(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """E-mail and password, and the service address in the advanced section."""
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input, errors = self.restore_secrets(SCHEMA, user_input)
        if user_input is not None and not errors:
            data, vehicles, errors = await self._async_validate_evmonitor(user_input)
            if not errors:
                if self.source == SOURCE_RECONFIGURE:
                    current = self._get_reconfigure_entry().data
                    return await self._async_finish_known(
                        {**data, CONF_VEHICLE: current[CONF_VEHICLE]}, vehicles
                    )
                self._evmonitor_data = data
                self._evmonitor_vehicles = vehicles
                return await self.async_step_evmonitor_vehicle()
        return self._evmonitor_form(user_input, errors)

    async def async_step_evmonitor_vehicle(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Which logbook, and whether a device or chosen entities feed it."""
        if user_input is not None:
            vehicle_id = user_input[CONF_VEHICLE]
            await self.async_set_unique_id(vehicle_id)
            self._abort_if_unique_id_configured()
            self._evmonitor_data[CONF_VEHICLE] = vehicle_id
            if user_input[CONF_SOURCE] == SOURCE_DEVICE:
                return await self.async_step_evmonitor_device()
            return await self.async_step_evmonitor_entities()
        vehicles = SelectSelector(
            SelectSelectorConfig(
                options=[
                    SelectOptionDict(value=v.vehicle_id, label=_label(v))
                    for v in self._evmonitor_vehicles
                ],
                mode=SelectSelectorMode.DROPDOWN,
            )
        )
        return self.async_show_form(
            step_id="evmonitor_vehicle",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_VEHICLE, default=self._evmonitor_vehicles[0].vehicle_id
                    ): vehicles,
                    vol.Required(CONF_SOURCE, default=SOURCE_DEVICE): SOURCE_SELECTOR,
                }
            ),
        )

    async def async_step_evmonitor_device(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A vehicle of this integration; its entities are mapped automatically."""
        errors: dict[str, str] = {}
        if user_input is not None:
            device_id = user_input.get(CONF_SOURCE_DEVICE, "")
            if device_id and device_mapping(self.hass, device_id):
                return self._evmonitor_create({CONF_SOURCE_DEVICE: device_id})
            errors[CONF_SOURCE_DEVICE] = "no_mappable_entities"
        return self.async_show_form(
            step_id="evmonitor_device",
            data_schema=vol.Schema({vol.Required(CONF_SOURCE_DEVICE): DEVICE}),
            errors=errors,
        )

    async def async_step_evmonitor_entities(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Any entities of Home Assistant, one per field."""
        errors: dict[str, str] = {}
        if user_input is not None:
            options = {
                field: user_input[field] for field in FIELDS if user_input.get(field)
            }
            errors = check_source(self.hass, options)
            if not errors:
                return self._evmonitor_create(options)
        return self.async_show_form(
            step_id="evmonitor_entities",
            data_schema=self.add_suggested_values_to_schema(
                vol.Schema(field_selectors()), user_input or {}
            ),
            errors=errors,
        )

    async def async_step_evmonitor_reauth(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """EV-Monitor refused the password: ask for the current one."""
        return await self.async_reauth_form(
            "evmonitor_reauth", REAUTH_SCHEMA, user_input, self._async_revalidate
        )

    async def async_step_evmonitor_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The account form, filled in with the entry's settings."""
        data = self._get_reconfigure_entry().data
        current = {**data, **advanced_section(data[CONF_SERVER_URL])}
        return self._evmonitor_form(current, {})

    # --- helpers ----------------------------------------------------------------

    def _evmonitor_form(
        self, suggested: Mapping[str, Any] | None, errors: dict[str, str]
    ) -> ConfigFlowResult:
        return self.async_show_service_form(
            NAME, SCHEMA, suggested, errors, DEFAULT_SERVER_URL
        )

    def _evmonitor_create(self, options: dict[str, Any]) -> ConfigFlowResult:
        vehicle_id = self._evmonitor_data[CONF_VEHICLE]
        vehicle = next(
            v for v in self._evmonitor_vehicles if v.vehicle_id == vehicle_id
        )
        return self.async_create_entry(
            title=f"EV-Monitor {_label(vehicle)}",
            data=self._evmonitor_data,
            options=options,
        )

    async def _async_finish_known(
        self, data: dict[str, Any], vehicles: list[EvMonitorVehicle]
    ) -> ConfigFlowResult:
        """Reauth or reconfigure: the entry's vehicle must be in the account."""
        listed = any(v.vehicle_id == data[CONF_VEHICLE] for v in vehicles)
        done = await self.async_set_unique_id_or_finish(
            data[CONF_VEHICLE] if listed else "", data
        )
        # Reauth and reconfigure always finish there; this only satisfies the types.
        return done or self.async_abort(reason="wrong_device")

    async def _async_revalidate(
        self, current: Mapping[str, Any], user_input: dict[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """The entry's account with the new password."""
        candidate = {
            CONF_USERNAME: current[CONF_USERNAME],
            CONF_PASSWORD: user_input[CONF_PASSWORD],
            **advanced_section(current[CONF_SERVER_URL]),
        }
        data, vehicles, errors = await self._async_validate_evmonitor(candidate)
        data[CONF_VEHICLE] = current[CONF_VEHICLE]
        listed = any(v.vehicle_id == current[CONF_VEHICLE] for v in vehicles)
        return (current[CONF_VEHICLE] if listed else ""), data, errors

    async def _async_validate_evmonitor(
        self, user_input: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[EvMonitorVehicle], dict[str, str]]:
        """Log in and list the account's vehicles."""
        server_url = advanced_url(user_input, DEFAULT_SERVER_URL)
        data: dict[str, Any] = {
            CONF_PROVIDER: NAME,
            CONF_SERVER_URL: (server_url or "").rstrip("/"),
            CONF_USERNAME: user_input[CONF_USERNAME].strip(),
            CONF_PASSWORD: user_input[CONF_PASSWORD],
        }
        if server_url is None:
            return data, [], {SECTION_ADVANCED: "invalid_url"}
        client = create_client(self.hass, data, confirm_refusal=True)
        try:
            vehicles = await client.async_get_vehicles()
        except AuthenticationError:
            return data, [], {"base": "invalid_auth"}
        except RateLimitedError:
            return data, [], {"base": "rate_limited"}
        except EvCloudError as err:
            LOGGER.debug("Validating the EV-Monitor account failed: %s", err)
            return data, [], {"base": "cannot_connect"}
        if not vehicles and self.source not in (SOURCE_REAUTH, SOURCE_RECONFIGURE):
            return data, [], {"base": "no_vehicles"}
        return data, vehicles, {}
