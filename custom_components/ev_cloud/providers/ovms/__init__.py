"""OVMS: every vehicle of an account on an OVMS server (REST API)."""

from ...models import Provider
from .account import POLICY, create_account
from .const import CONF_LIVE_VEHICLES, CONF_V2_SERVER, CONF_VEHICLE_COMMANDS, NAME
from .entities import ENTITIES
from .repairs import create_repair_flow

PROVIDER: Provider = Provider(
    name=NAME,
    create_account=create_account,
    entities=(ENTITIES,),
    poll_policy=lambda _data: POLICY,
    # Vehicle ids are often plates or VINs; the command secrets are keyed by them.
    redact=frozenset(
        {"vehicle_id", CONF_LIVE_VEHICLES, CONF_VEHICLE_COMMANDS, CONF_V2_SERVER}
    ),
    repair_flow=create_repair_flow,
)
