"""EVLinkHA: the provider's name, entry data and option keys, tier allowances."""

from typing import Final

NAME: Final = "evlinkha"
CONF_WEBHOOK_ID: Final = "webhook_id"
# Options: the calls each tier allows per 30 days (the service changes them)
CONF_ALLOWANCE_FREE: Final = "allowance_free"  # per user
CONF_ALLOWANCE_BASIC: Final = "allowance_basic"  # per vehicle
CONF_ALLOWANCE_PRO: Final = "allowance_pro"  # per vehicle
DEFAULT_ALLOWANCES: Final = {
    CONF_ALLOWANCE_FREE: 300,
    CONF_ALLOWANCE_BASIC: 2000,
    CONF_ALLOWANCE_PRO: 10000,
}
# Tiers that may start and stop charging, and that push data (webhooks)
COMMAND_TIERS: Final = frozenset({"basic", "pro"})
PUSH_TIERS: Final = frozenset({"pro"})
