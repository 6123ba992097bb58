"""ev.energy sign-in: the user's OAuth client against a configurable service address."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import ClientError, ClientResponseError
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
    """The access token of the entry's OAuth session (a `RenewableToken`).

    Home Assistant's session refreshes it shortly before it expires. When the
    service refuses it earlier (it dropped the token, or its clock is ahead of
    ours), `invalidate` marks it expired, so that the next call refreshes it:
    the user is asked to sign in again only when the refresh is refused.
    """

    def __init__(self, session: Callable[[], OAuth2Session | None]) -> None:
        """Tokens of the session `session()` returns (None: not signed in yet)."""
        self._session = session

    def invalidate(self, token: str | None = None) -> None:
        """Refresh at the next call, unless the token was renewed meanwhile."""
        session = self._session()
        if session is None:
            return
        current = session.token
        if token is not None and current.get("access_token") != token:
            return
        entry = session.config_entry
        session.hass.config_entries.async_update_entry(
            entry, data={**entry.data, "token": {**current, "expires_at": 0}}
        )

    async def __call__(self) -> str:
        """A valid access token."""
        session = self._session()
        if session is None:
            raise AuthenticationError("Not signed in")
        return await async_access_token(session)
