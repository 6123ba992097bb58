"""ev.energy: the provider's name and its entry data keys."""

from typing import Final

NAME: Final = "evenergy"
CONF_AUTH: Final = "auth"  # how the entry signs in: AUTH_OAUTH or AUTH_ORGANISATION
AUTH_OAUTH: Final = "oauth"
AUTH_ORGANISATION: Final = "organisation"
CONF_BASE_URL: Final = "base_url"
CONF_USER_ID: Final = "user_id"
