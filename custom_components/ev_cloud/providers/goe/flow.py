"""go-e: config-flow steps (cloud or local), reauth and reconfigure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_TOKEN
from homeassistant.data_entry_flow import section

if TYPE_CHECKING:
    # Home Assistant >= 2026.10 types its schemas with probatio, which it installs
    # as `voluptuous`; older releases use voluptuous itself.
    import probatio as vol
else:
    import voluptuous as vol

from ...api import (
    AuthenticationError,
    CloudApiDisabledError,
    EvCloudError,
    StaleDataError,
)
from ...api.goe import normalize_serial
from ...const import CONF_PROVIDER, CONF_SERVER_URL, LOGGER, SECTION_ADVANCED
from ...flow import PASSWORD, TEXT, URL, EvCloudFlow, printable, valid_url
from .account import client_from_data
from .const import (
    CONF_CONNECTION,
    CONF_SERIAL,
    CONNECTION_CLOUD,
    CONNECTION_LOCAL,
    NAME,
)

CLOUD_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_SERIAL): TEXT,
        vol.Required(CONF_TOKEN): PASSWORD,
        vol.Required(SECTION_ADVANCED): section(
            vol.Schema({vol.Optional(CONF_SERVER_URL): URL}), {"collapsed": True}
        ),
    }
)
LOCAL_SCHEMA = vol.Schema({vol.Required(CONF_HOST): TEXT})
REAUTH_SCHEMA = vol.Schema({vol.Required(CONF_TOKEN): PASSWORD})
# Shown in the server URL's help text (a URL may not be part of a translation).
PLACEHOLDERS = {"cloud_url": "https://000123.api.v3.go-e.io"}


def title(serial: str) -> str:
    """The entry's title."""
    return f"go-e Charger {serial}"


class GoeFlow(EvCloudFlow):
    """Add a go-e charger: through the cloud (serial + token) or on the network."""

    async def async_step_goe(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose how to reach the go-e charger."""
        return self.async_show_menu(
            step_id=NAME, menu_options=["goe_cloud", "goe_local"]
        )

    async def async_step_goe_cloud(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """go-e through the cloud API: serial number and API token."""
        return await self._async_goe_form(CONNECTION_CLOUD, user_input)

    async def async_step_goe_local(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """go-e through its local HTTP API: host name or IP address."""
        return await self._async_goe_form(CONNECTION_LOCAL, user_input)

    async def async_step_goe_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The form the entry was added with, filled in with its settings."""
        data = self._get_reconfigure_entry().data
        current = {
            **data,
            SECTION_ADVANCED: {CONF_SERVER_URL: data.get(CONF_SERVER_URL, "")},
        }
        return await self._async_goe_form(data[CONF_CONNECTION], None, current)

    async def async_step_goe_reauth(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The cloud rejected the token: ask for the current one."""
        return await self.async_reauth_form(
            "goe_reauth", REAUTH_SCHEMA, user_input, self._async_revalidate_goe
        )

    async def _async_revalidate_goe(
        self, current: Mapping[str, Any], user_input: dict[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """The entry's charger with the new token."""
        candidate = {
            CONF_SERIAL: current[CONF_SERIAL],
            CONF_TOKEN: user_input[CONF_TOKEN],
            SECTION_ADVANCED: {CONF_SERVER_URL: current.get(CONF_SERVER_URL, "")},
        }
        data, errors = await self._async_validate_goe(candidate, CONNECTION_CLOUD)
        return current[CONF_SERIAL], data, errors

    async def _async_goe_form(
        self,
        connection: str,
        user_input: dict[str, Any] | None,
        suggested: Mapping[str, Any] | None = None,
    ) -> ConfigFlowResult:
        schema = CLOUD_SCHEMA if connection == CONNECTION_CLOUD else LOCAL_SCHEMA
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input, errors = self.restore_secrets(schema, user_input)
        if user_input is not None and not errors:
            data, errors = await self._async_validate_goe(user_input, connection)
            if not errors:
                serial = data[CONF_SERIAL]
                if done := await self.async_set_unique_id_or_finish(serial, data):
                    return done
                return self.async_create_entry(title=title(serial), data=data)
        return self.async_show_form(
            step_id=f"goe_{connection}",
            data_schema=self.suggested_schema(schema, user_input or suggested),
            description_placeholders=PLACEHOLDERS,
            errors=errors,
        )

    async def _async_validate_goe(
        self, user_input: Mapping[str, Any], connection: str
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """Turn form input into entry data and check it against the charger.

        Returns the data and the form errors (empty when the charger answered).
        """
        data: dict[str, Any] = {CONF_PROVIDER: NAME, CONF_CONNECTION: connection}
        if connection == CONNECTION_CLOUD:
            try:
                data[CONF_SERIAL] = normalize_serial(user_input[CONF_SERIAL])
            except ValueError:
                return data, {CONF_SERIAL: "invalid_serial"}
            data[CONF_TOKEN] = user_input[CONF_TOKEN].strip()
            if not printable(data[CONF_TOKEN]):
                return data, {"base": "invalid_auth"}
            advanced = user_input.get(SECTION_ADVANCED, {})
            if server_url := advanced.get(CONF_SERVER_URL, "").strip():
                if (server_url := valid_url(server_url)) is None:
                    return data, {SECTION_ADVANCED: "invalid_url"}
                data[CONF_SERVER_URL] = server_url
        else:
            data[CONF_HOST] = user_input[CONF_HOST].strip()

        client = client_from_data(self.hass, data)
        try:
            reading = await client.async_get_status()
        except StaleDataError:
            # The token was accepted; the charger just has not reported recently.
            return data, {}
        except AuthenticationError:
            return data, {"base": "invalid_auth"}
        except CloudApiDisabledError:
            return data, {"base": "cloud_api_disabled"}
        except EvCloudError as err:
            LOGGER.debug("Validating the go-e charger failed: %s", err)
            return data, {"base": "cannot_connect"}
        serial = reading.status.serial
        if connection == CONNECTION_CLOUD and serial != data[CONF_SERIAL]:
            # A token of another charger: the real cloud routes by serial and says 401.
            return data, {"base": "invalid_auth"}
        data[CONF_SERIAL] = serial
        return data, {}
