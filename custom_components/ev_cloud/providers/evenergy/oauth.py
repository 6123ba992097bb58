"""ev.energy sign-in: the user's OAuth client against a configurable service address."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import ClientError, ClientResponseError
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.config_entry_oauth2_flow import (
    LocalOAuth2Implementation,
    OAuth2Session,
)

from ...api import AuthenticationError, CommunicationError
from ...api.evenergy import authorize_url, token_url


class EvEnergyOAuth(LocalOAuth2Implementation):
    """The user's application credential, sent to the entry's service address.

    Home Assistant registers the credential with the real service's endpoints;
    this copy uses another base URL (a staging server or the simulator) while
    keeping the credential's id, so the entry still finds its credential.
    """

    def __init__(
        self, hass: HomeAssistant, credential: LocalOAuth2Implementation, base_url: str
    ) -> None:
        """The `credential`'s client, authorizing at `base_url`."""
        super().__init__(
            hass,
            credential.domain,
            credential.client_id,
            credential.client_secret,
            authorize_url(base_url),
            token_url(base_url),
        )
        self._name = credential.name

    @property
    def name(self) -> str:
        """The credential's name, as the user gave it."""
        return self._name


async def async_access_token(session: OAuth2Session) -> str:
    """A valid access token, refreshed when it expires.

    A refresh the service refuses (4xx) means the user must sign in again; one
    that fails for any other reason is retried later like any request.
    """
    try:
        await session.async_ensure_token_valid()
    except ClientResponseError as err:
        # Newer Home Assistant raises its OAuth2TokenRequest*Error, subclasses of
        # ClientResponseError; older releases let aiohttp's error through.
        if 400 <= err.status < 500 and err.status != 429:
            raise AuthenticationError(
                "ev.energy refused to renew the sign-in"
            ) from None
        raise CommunicationError(
            f"Renewing the sign-in failed (HTTP {err.status})"
        ) from None
    except (ClientError, TimeoutError) as err:
        raise CommunicationError(
            f"Renewing the sign-in failed: {type(err).__name__}"
        ) from None
    return str(session.token["access_token"])


class OAuthToken:
    """The entry's access token (a TokenGetter), renewed when the service refuses it.

    Home Assistant refreshes a token shortly before the expiry it stored; a
    token the service refuses earlier (401) is marked expired by `invalidate`,
    so the next call refreshes it instead of asking the user to sign in again.
    """

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        session: Callable[[], OAuth2Session | None],
    ) -> None:
        """The token of `entry`, through the OAuth session `session()` returns."""
        self._hass = hass
        self._entry = entry
        self._session = session

    async def __call__(self) -> str:
        """A valid access token."""
        session = self._session()
        if session is None:
            raise AuthenticationError("Not signed in")
        return await async_access_token(session)

    def invalidate(self, token: str | None = None) -> None:
        """The service refused `token`: refresh it at the next call."""
        stored = self._entry.data.get("token")
        if not isinstance(stored, dict):
            return
        if token is not None and stored.get("access_token") != token:
            return  # refreshed already
        self._hass.config_entries.async_update_entry(
            self._entry, data={**self._entry.data, "token": {**stored, "expires_at": 0}}
        )
