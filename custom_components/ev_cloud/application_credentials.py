"""Application credentials for the provider that signs in through OAuth.

Home Assistant allows one authorization server per integration.
"""

from __future__ import annotations

from homeassistant.components.application_credentials import AuthorizationServer
from homeassistant.core import HomeAssistant

from .providers import oauth_provider


async def async_get_authorization_server(hass: HomeAssistant) -> AuthorizationServer:
    """The real service's authorize and token endpoints."""
    server = oauth_provider().oauth
    assert server is not None  # oauth_provider() only returns one that has it
    return AuthorizationServer(
        authorize_url=server.authorize_url, token_url=server.token_url
    )
