"""ev.energy: sign in through OAuth (application credentials) or as an organisation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.data_entry_flow import section
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.config_entry_oauth2_flow import LocalOAuth2Implementation

if TYPE_CHECKING:
    # Home Assistant >= 2026.10 types its schemas with probatio, which it installs
    # as `voluptuous`; older releases use voluptuous itself.
    import probatio as vol
else:
    import voluptuous as vol

from ...api import (
    AuthenticationError,
    CommandRejectedError,
    EvCloudError,
    RateLimitedError,
)
from ...api.evenergy import (
    DEFAULT_BASE_URL,
    ClientCredentials,
    EvEnergyClient,
    User,
    user_reference_id,
)
from ...const import CONF_PROVIDER, LOGGER, SECTION_ADVANCED
from ...flow import PASSWORD, TEXT, URL, EvCloudFlow, printable, valid_url
from .const import (
    AUTH_OAUTH,
    AUTH_ORGANISATION,
    CONF_AUTH,
    CONF_BASE_URL,
    CONF_USER_ID,
    NAME,
)
from .oauth import EvEnergyOAuth

CONF_CLIENT_ID = "client_id"
CONF_CLIENT_SECRET = "client_secret"


def _advanced() -> section:
    return section(vol.Schema({vol.Optional(CONF_BASE_URL): URL}), {"collapsed": True})


OAUTH_SCHEMA = vol.Schema({vol.Required(SECTION_ADVANCED): _advanced()})
ORGANISATION_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_CLIENT_ID): TEXT,
        vol.Required(CONF_CLIENT_SECRET): PASSWORD,
        vol.Required(CONF_USER_ID): TEXT,
        vol.Required(SECTION_ADVANCED): _advanced(),
    }
)
REAUTH_SCHEMA = vol.Schema({vol.Required(CONF_CLIENT_SECRET): PASSWORD})
PLACEHOLDERS = {"default_url": DEFAULT_BASE_URL}


def title(user: User) -> str:
    """The entry's title: the service and the user's e-mail (or id)."""
    return f"ev.energy {user.email or user.user_id}"


class EvEnergyFlow(EvCloudFlow):
    """Add an ev.energy user: OAuth sign-in, or an organisation's client."""

    _evenergy_base_url: str = DEFAULT_BASE_URL

    async def async_step_evenergy(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose how to sign in."""
        return self.async_show_menu(
            step_id=NAME, menu_options=["evenergy_oauth", "evenergy_organisation"]
        )

    async def async_step_evenergy_oauth(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Sign in at ev.energy with the OAuth client from application credentials."""
        errors: dict[str, str] = {}
        if user_input is not None:
            base_url = _base_url(user_input)
            if base_url is None:
                errors[SECTION_ADVANCED] = "invalid_url"
            else:
                self._evenergy_base_url = base_url
                return await self.async_step_pick_implementation()
        return self.async_show_form(
            step_id="evenergy_oauth",
            data_schema=self.add_suggested_values_to_schema(
                OAUTH_SCHEMA,
                user_input
                or {SECTION_ADVANCED: {CONF_BASE_URL: self._evenergy_base_url}},
            ),
            description_placeholders=PLACEHOLDERS,
            errors=errors,
        )

    async def async_step_auth(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Send the user to the chosen service address with their credential."""
        if isinstance(self.flow_impl, LocalOAuth2Implementation) and not isinstance(
            self.flow_impl, EvEnergyOAuth
        ):
            self.flow_impl = EvEnergyOAuth(
                self.hass, self.flow_impl, self._evenergy_base_url
            )
        return await super().async_step_auth(user_input)

    async def async_oauth_create_entry(self, data: dict[str, Any]) -> ConfigFlowResult:
        """Signed in: find the user, then add (or update) the entry."""
        token = str(data["token"]["access_token"])

        async def static_token() -> str:
            return token

        client = EvEnergyClient(
            async_get_clientsession(self.hass),
            static_token,
            base_url=self._evenergy_base_url,
        )
        try:
            user = await client.async_get_user()
        except EvCloudError as err:
            LOGGER.debug("Reading the ev.energy user failed: %s", err)
            return self.async_abort(reason="cannot_connect")
        user_id = user.user_id
        entry_data = {
            **data,
            CONF_PROVIDER: NAME,
            CONF_AUTH: AUTH_OAUTH,
            CONF_BASE_URL: self._evenergy_base_url,
            CONF_USER_ID: user_id,
        }
        if done := await self.async_set_unique_id_or_finish(user_id, entry_data):
            return done
        return self.async_create_entry(title=title(user), data=entry_data)

    async def async_step_evenergy_organisation(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """An organisation's client id and secret, acting for one of its users."""
        errors: dict[str, str] = {}
        if user_input is not None:
            user_input, errors = self.restore_secrets(ORGANISATION_SCHEMA, user_input)
        if user_input is not None and not errors:
            data, user, errors = await self._async_validate_evenergy(user_input)
            if user is not None:
                # The user's id, whichever form (id or URL) the user typed.
                user_id = user.user_id
                if done := await self.async_set_unique_id_or_finish(user_id, data):
                    return done
                return self.async_create_entry(title=title(user), data=data)
        return self.async_show_form(
            step_id="evenergy_organisation",
            data_schema=self.suggested_schema(
                ORGANISATION_SCHEMA,
                user_input or {SECTION_ADVANCED: {CONF_BASE_URL: DEFAULT_BASE_URL}},
            ),
            description_placeholders=PLACEHOLDERS,
            errors=errors,
        )

    async def async_step_evenergy_reauth(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Sign in again (OAuth), or enter the organisation's new secret."""
        entry = self._get_reauth_entry()
        self._evenergy_base_url = entry.data[CONF_BASE_URL]
        if entry.data[CONF_AUTH] == AUTH_OAUTH:
            return await self.async_step_evenergy_reauth_oauth()
        return await self.async_reauth_form(
            "evenergy_reauth",
            REAUTH_SCHEMA,
            user_input,
            self._async_revalidate_evenergy,
        )

    async def async_step_evenergy_reauth_oauth(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm, then sign in at ev.energy again."""
        if user_input is None:
            return self.async_show_form(
                step_id="evenergy_reauth_oauth",
                description_placeholders={"name": self._get_reauth_entry().title},
            )
        return await self.async_step_pick_implementation()

    async def async_step_evenergy_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The form the entry was added with, filled in with its settings."""
        data = self._get_reconfigure_entry().data
        self._evenergy_base_url = data[CONF_BASE_URL]
        if data[CONF_AUTH] == AUTH_OAUTH:
            return await self.async_step_evenergy_oauth()
        current = {**data, SECTION_ADVANCED: {CONF_BASE_URL: data[CONF_BASE_URL]}}
        return self.async_show_form(
            step_id="evenergy_organisation",
            data_schema=self.suggested_schema(ORGANISATION_SCHEMA, current),
            description_placeholders=PLACEHOLDERS,
        )

    async def _async_revalidate_evenergy(
        self, current: Mapping[str, Any], user_input: dict[str, Any]
    ) -> tuple[str, dict[str, Any], dict[str, str]]:
        """The entry's organisation client with the new secret."""
        candidate = {
            **current,
            CONF_CLIENT_SECRET: user_input[CONF_CLIENT_SECRET],
            SECTION_ADVANCED: {CONF_BASE_URL: current[CONF_BASE_URL]},
        }
        data, user, errors = await self._async_validate_evenergy(candidate)
        return user.user_id if user else current[CONF_USER_ID], data, errors

    async def _async_validate_evenergy(
        self, user_input: Mapping[str, Any]
    ) -> tuple[dict[str, Any], User | None, dict[str, str]]:
        """Get a token for the organisation and read the user with it.

        Returns the entry data, the user (None on errors) and the form errors.
        """
        base_url = _base_url(user_input)
        data: dict[str, Any] = {
            CONF_PROVIDER: NAME,
            CONF_AUTH: AUTH_ORGANISATION,
            CONF_BASE_URL: base_url or DEFAULT_BASE_URL,
            CONF_CLIENT_ID: user_input[CONF_CLIENT_ID].strip(),
            CONF_CLIENT_SECRET: user_input[CONF_CLIENT_SECRET].strip(),
            CONF_USER_ID: user_input[CONF_USER_ID].strip(),
        }
        if base_url is None:
            return data, None, {SECTION_ADVANCED: "invalid_url"}
        if user_reference_id(data[CONF_USER_ID]) is None:
            return data, None, {CONF_USER_ID: "invalid_user"}
        if not all(
            printable(data[key])
            for key in (CONF_CLIENT_ID, CONF_CLIENT_SECRET, CONF_USER_ID)
        ):
            return data, None, {"base": "invalid_auth"}
        session = async_get_clientsession(self.hass)
        client = EvEnergyClient(
            session,
            ClientCredentials(
                session, base_url, data[CONF_CLIENT_ID], data[CONF_CLIENT_SECRET]
            ),
            base_url=base_url,
            user_id=data[CONF_USER_ID],
        )
        try:
            user = await client.async_get_user()
        except AuthenticationError:
            return data, None, {"base": "invalid_auth"}
        except RateLimitedError:
            return data, None, {"base": "rate_limited"}
        except EvCloudError as err:
            LOGGER.debug("Validating the ev.energy organisation failed: %s", err)
            if isinstance(err, CommandRejectedError) and err.reason == "unknown_user":
                return data, None, {CONF_USER_ID: "unknown_user"}
            return data, None, {"base": "cannot_connect"}
        return data, user, {}


def _base_url(user_input: Mapping[str, Any]) -> str | None:
    """The service address from the advanced section (default: the real one)."""
    text = user_input.get(SECTION_ADVANCED, {}).get(CONF_BASE_URL, "")
    if not text.strip():
        return DEFAULT_BASE_URL
    url = valid_url(text)
    return url.rstrip("/") if url else None
