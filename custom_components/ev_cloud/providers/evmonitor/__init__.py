"""EV-Monitor: a sink; Home Assistant uploads a vehicle's data to its logbook."""

from homeassistant.const import CONF_PASSWORD, CONF_USERNAME

from ...const import CONF_SERVER_URL
from ...models import Provider
from .account import create_account, policy_for
from .const import CONF_VEHICLE, NAME
from .entities import ENTITIES
from .options import check_source, source_options

PROVIDER = Provider(
    name=NAME,
    create_account=create_account,
    entities=(ENTITIES,),
    poll_policy=policy_for,
    redact=frozenset(
        {CONF_USERNAME, CONF_PASSWORD, CONF_SERVER_URL, CONF_VEHICLE, "vehicle_id"}
    ),
    extra_options=source_options,
    check_options=check_source,
)
