"""go-e Charger, through its cloud API or its local HTTP API."""

from ...models import Provider
from .account import create_account, poll_policy
from .const import CONF_SERIAL, NAME
from .entities import ENTITIES

PROVIDER = Provider(
    name=NAME,
    create_account=create_account,
    entities=(ENTITIES,),
    poll_policy=poll_policy,
    redact=frozenset({CONF_SERIAL}),
)
