"""OVMS: config-flow steps (account, then vehicles), reauth and reconfigure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME

if TYPE_CHECKING:
    # Home Assistant >= 2026.10 types its schemas with probatio, which it installs
    # as `voluptuous`; older releases use voluptuous itself.
    import probatio as vol
else:
    import voluptuous as vol

from ...api import AuthenticationError, EvCloudError, RateLimitedError
from ...api.ovms import DEFAULT_SERVER_URL
from ...const import CONF_EXCLUDED_DEVICES, CONF_PROVIDER, CONF_SERVER_URL, LOGGER
from ...flow import (
    CONF_VEHICLES,
    PASSWORD,
    TEXT,
    URL,
    EvCloudFlow,
    device_selector,
    valid_url,
)
from .account import client_from_data, unique_id
from .const import NAME

SCHEMA = vol.Schema(
    {
        vol.Required(CONF_SERVER_URL): URL,
        vol.Required(CONF_USERNAME): TEXT,
        vol.Required(CONF_PASSWORD): PASSWORD,
    }
)
REAUTH_SCHEMA = vol.Schema({vol.Required(CONF_PASSWORD): PASSWORD})
# Shown in the server URL's help text (a URL may not be part of a translation).
PLACEHOLDERS = {
    "default_url": DEFAULT_SERVER_URL,
    "europe_url": "http://ovms.dexters-web.de:6868",
}


class OvmsFlow(EvCloudFlow):
    """Add an OVMS account: server, user and password, then its vehicles."""

    _ovms_data: dict[str, Any]
    _ovms_vehicles: list[str]

    async def async_step_ovms(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """OVMS: server, user and password or API token."""
        if user_input is None:
            return self._ovms_form()
        data, vehicles, errors = await self._async_validate_ovms(user_input)
        if errors:
            return self._ovms_form(user_input, errors)
        account = unique_id(data[CONF_SERVER_URL], data[CONF_USERNAME])
        if done := await self.async_set_unique_id_or_finish(account, data):
            return done
        self._ovms_data = data
        self._ovms_vehicles = vehicles
        return await self.async_step_ovms_vehicles()

    async def async_step_ovms_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The account form, filled in with the entry's settings."""
        return self._ovms_form(self._get_reconfigure_entry().data)

    async def async_step_ovms_reauth(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The server rejected the password: ask for the current one (or a token)."""
        return await self.async_reauth_form(
            "ovms_reauth", REAUTH_SCHEMA, user_input, self._async_revalidate_ovms
        )

    async def _async_revalidate_ovms(
        self, current: Mapping[str, Any], user_input: dict[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """The entry's account with the new password."""
        data, _, errors = await self._async_validate_ovms(
            {**current, CONF_PASSWORD: user_input[CONF_PASSWORD]}
        )
        return unique_id(data[CONF_SERVER_URL], data[CONF_USERNAME]), data, errors

    async def async_step_ovms_vehicles(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the vehicles to add (all by default; new ones are added later)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            chosen = user_input[CONF_VEHICLES]
            if chosen:
                excluded = sorted(set(self._ovms_vehicles) - set(chosen))
                return self.async_create_entry(
                    title=f"OVMS {self._ovms_data[CONF_USERNAME]}",
                    data=self._ovms_data,
                    options={CONF_EXCLUDED_DEVICES: excluded},
                )
            errors["base"] = "no_vehicle_selected"
        return self.async_show_form(
            step_id="ovms_vehicles",
            data_schema=vol.Schema(
                {
                    vol.Required(
                        CONF_VEHICLES, default=list(self._ovms_vehicles)
                    ): device_selector(self._ovms_vehicles)
                }
            ),
            errors=errors,
        )

    def _ovms_form(
        self,
        suggested: Mapping[str, Any] | None = None,
        errors: dict[str, str] | None = None,
    ) -> ConfigFlowResult:
        return self.async_show_form(
            step_id=NAME,
            data_schema=self.add_suggested_values_to_schema(
                SCHEMA, suggested or {CONF_SERVER_URL: DEFAULT_SERVER_URL}
            ),
            description_placeholders=PLACEHOLDERS,
            errors=errors or {},
        )

    async def _async_validate_ovms(
        self, user_input: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[str], dict[str, str]]:
        """Log in and list the vehicles; returns the data, vehicle ids and errors."""
        server_url = valid_url(user_input.get(CONF_SERVER_URL) or DEFAULT_SERVER_URL)
        data: dict[str, Any] = {
            CONF_PROVIDER: NAME,
            CONF_SERVER_URL: (server_url or "").rstrip("/"),
            CONF_USERNAME: user_input[CONF_USERNAME].strip(),
            CONF_PASSWORD: user_input[CONF_PASSWORD],
        }
        if server_url is None:
            return data, [], {CONF_SERVER_URL: "invalid_url"}
        client = client_from_data(self.hass, data)
        try:
            await client.async_login()
            vehicles = [v.vehicle_id for v in await client.async_get_vehicles()]
        except AuthenticationError:
            return data, [], {"base": "invalid_auth"}
        except RateLimitedError:
            return data, [], {"base": "rate_limited"}
        except EvCloudError as err:
            LOGGER.debug("Validating the OVMS account failed: %s", err)
            return data, [], {"base": "cannot_connect"}
        finally:
            await client.async_logout()
        if not vehicles:
            return data, [], {"base": "no_vehicles"}
        return data, vehicles, {}
