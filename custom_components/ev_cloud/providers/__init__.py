"""Provider glue: how a config entry of each provider becomes an account."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from ..const import PROVIDER_GOE, PROVIDER_OVMS
from ..device import EvCloudAccount, PollPolicy
from . import goe, ovms

type AccountFactory = Callable[[HomeAssistant, ConfigEntry], EvCloudAccount]

# provider -> builds the account of a config entry
ACCOUNT_FACTORIES: dict[str, AccountFactory] = {
    PROVIDER_GOE: goe.create_account,
    PROVIDER_OVMS: ovms.create_account,
}
# provider -> the poll policy (defaults and option bounds) for an entry's data
POLL_POLICIES: dict[str, Callable[[Mapping[str, Any]], PollPolicy]] = {
    PROVIDER_GOE: goe.poll_policy,
    PROVIDER_OVMS: ovms.poll_policy,
}
# Every provider by name: the one registry that scripts and simulators read.
PROVIDERS = ACCOUNT_FACTORIES
