"""ev.energy: the vehicles and chargers of a user (API v2, OAuth 2)."""

from ...api.evenergy import DEFAULT_BASE_URL, authorize_url, token_url
from ...models import OAuthServer, Provider
from .account import create_account, policy_for
from .const import CONF_BASE_URL, CONF_USER_ID, NAME
from .entities import CHARGER_ENTITIES, VEHICLE_ENTITIES

PROVIDER = Provider(
    name=NAME,
    create_account=create_account,
    entities=(VEHICLE_ENTITIES, CHARGER_ENTITIES),
    poll_policy=policy_for,
    redact=frozenset(
        {
            CONF_USER_ID,
            CONF_BASE_URL,
            "client_id",
            "client_secret",
            "token",
            "vehicle_id",
            "evse_id",
            "session_id",
            "cpid",
            "description",
        }
    ),
    oauth=OAuthServer(
        authorize_url=authorize_url(DEFAULT_BASE_URL),
        token_url=token_url(DEFAULT_BASE_URL),
    ),
)
