"""EVLinkHA: vehicles linked through Enode, within a monthly call allowance."""

from typing import TYPE_CHECKING, Any

from homeassistant.const import CONF_API_KEY
from homeassistant.helpers.selector import (
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)

if TYPE_CHECKING:
    # Home Assistant >= 2026.10 types its schemas with probatio, which it installs
    # as `voluptuous`; older releases use voluptuous itself.
    import probatio as vol
else:
    import voluptuous as vol

from ...const import CONF_SERVER_URL
from ...models import Provider
from .account import create_account, policy_for
from .const import CONF_WEBHOOK_ID, DEFAULT_ALLOWANCES, NAME
from .entities import ENTITIES


def _allowance_options(data: Any) -> dict[Any, Any]:
    """The tiers' allowances (calls per 30 days), since the service changes them."""
    calls = NumberSelector(
        NumberSelectorConfig(min=1, max=1_000_000, step=1, mode=NumberSelectorMode.BOX)
    )
    return {
        vol.Required(key, default=default): calls
        for key, default in DEFAULT_ALLOWANCES.items()
    }


PROVIDER = Provider(
    name=NAME,
    create_account=create_account,
    entities=(ENTITIES,),
    poll_policy=policy_for,
    redact=frozenset(
        {
            CONF_API_KEY,
            CONF_WEBHOOK_ID,
            CONF_SERVER_URL,
            "webhook_url",
            "vehicle_id",
            "vin",
            "user_id",
        }
    ),
    extra_options=_allowance_options,
)
