"""EVLinkHA: config-flow steps (API key, service address), reauth, reconfigure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from homeassistant.components import webhook
from homeassistant.config_entries import SOURCE_RECONFIGURE, ConfigFlowResult
from homeassistant.const import CONF_API_KEY
from homeassistant.data_entry_flow import section
from homeassistant.helpers.aiohttp_client import async_get_clientsession

if TYPE_CHECKING:
    # Home Assistant >= 2026.10 types its schemas with probatio, which it installs
    # as `voluptuous`; older releases use voluptuous itself.
    import probatio as vol
else:
    import voluptuous as vol

from ...api import AuthenticationError, EvCloudError, RateLimitedError
from ...api.evlinkha import DEFAULT_SERVER_URL, EvLinkClient, Me
from ...const import CONF_PROVIDER, CONF_SERVER_URL, LOGGER, SECTION_ADVANCED
from ...flow import (
    PASSWORD,
    URL,
    EvCloudFlow,
    advanced_section,
    advanced_url,
    printable,
)
from .const import CONF_WEBHOOK_ID, NAME
from .push import external_url

SCHEMA = vol.Schema(
    {
        vol.Required(CONF_API_KEY): PASSWORD,
        vol.Required(SECTION_ADVANCED): section(
            vol.Schema({vol.Optional(CONF_SERVER_URL): URL}), {"collapsed": True}
        ),
    }
)
REAUTH_SCHEMA = vol.Schema({vol.Required(CONF_API_KEY): PASSWORD})


class EvLinkFlow(EvCloudFlow):
    """Add an EVLinkHA account with the API key from the user's profile."""

    async def async_step_evlinkha(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """API key, and the service address in the advanced section."""
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input, errors = self.restore_secrets(SCHEMA, user_input)
        if user_input is not None and not errors:
            data, me, errors = await self._async_validate_evlinkha(user_input)
            if me is not None:
                if self.source == SOURCE_RECONFIGURE:
                    # The webhook EVLinkHA was pointed at stays the same.
                    current = self._get_reconfigure_entry().data
                    data[CONF_WEBHOOK_ID] = current[CONF_WEBHOOK_ID]
                if done := await self.async_set_unique_id_or_finish(me.user_id, data):
                    return done
                data[CONF_WEBHOOK_ID] = webhook.async_generate_id()
                # The profile asks for the two values apart (see push.py).
                placeholders = {"webhook_id": data[CONF_WEBHOOK_ID]}
                description = "evlinkha_webhook_no_url"
                if (url := external_url(self.hass)) is not None:
                    placeholders["webhook_url"] = url
                    description = "evlinkha_webhook"
                return self.async_create_entry(
                    title=f"EVLinkHA {me.email or me.user_id}",
                    data=data,
                    description=description,
                    description_placeholders=placeholders,
                )
        return self._evlinkha_form(user_input, errors)

    async def async_step_evlinkha_reauth(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The service rejected the API key: ask for the current one."""
        return await self.async_reauth_form(
            "evlinkha_reauth",
            REAUTH_SCHEMA,
            user_input,
            self._async_revalidate_evlinkha,
        )

    async def async_step_evlinkha_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The form the entry was added with, filled in with its settings."""
        data = self._get_reconfigure_entry().data
        current = {**data, **advanced_section(data[CONF_SERVER_URL])}
        return self._evlinkha_form(current, {})

    def _evlinkha_form(
        self, suggested: Mapping[str, Any] | None, errors: dict[str, str]
    ) -> ConfigFlowResult:
        return self.async_show_service_form(
            NAME, SCHEMA, suggested, errors, DEFAULT_SERVER_URL
        )

    async def _async_revalidate_evlinkha(
        self, current: Mapping[str, Any], user_input: dict[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """The entry's account with the new key (keeping its webhook)."""
        candidate = {
            CONF_API_KEY: user_input[CONF_API_KEY],
            **advanced_section(current[CONF_SERVER_URL]),
        }
        data, me, errors = await self._async_validate_evlinkha(candidate)
        data[CONF_WEBHOOK_ID] = current[CONF_WEBHOOK_ID]
        return (me.user_id if me else ""), data, errors

    async def _async_validate_evlinkha(
        self, user_input: Mapping[str, Any]
    ) -> tuple[dict[str, Any], Me | None, dict[str, str]]:
        """Read the user with the key: its id names the entry."""
        server_url = advanced_url(user_input, DEFAULT_SERVER_URL)
        data: dict[str, Any] = {
            CONF_PROVIDER: NAME,
            CONF_SERVER_URL: (server_url or "").rstrip("/"),
            CONF_API_KEY: user_input[CONF_API_KEY].strip(),
        }
        if server_url is None:
            return data, None, {SECTION_ADVANCED: "invalid_url"}
        if not printable(data[CONF_API_KEY]):
            return data, None, {"base": "invalid_auth"}
        client = EvLinkClient(
            async_get_clientsession(self.hass),
            data[CONF_SERVER_URL],
            data[CONF_API_KEY],
        )
        try:
            me = await client.async_get_me()
        except AuthenticationError:
            return data, None, {"base": "invalid_auth"}
        except RateLimitedError:
            return data, None, {"base": "rate_limited"}
        except EvCloudError as err:
            LOGGER.debug("Validating the EVLinkHA key failed: %s", err)
            return data, None, {"base": "cannot_connect"}
        return data, me, {}
