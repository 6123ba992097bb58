"""Provider glue: how a config entry of each provider becomes an account."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from homeassistant.core import HomeAssistant

from ..const import PROVIDER_GOE
from ..device import EvCloudAccount, PollPolicy
from . import goe

type AccountFactory = Callable[
    [HomeAssistant, Mapping[str, Any], Mapping[str, Any]], EvCloudAccount
]

# provider -> builds the account of an entry from its data and options
ACCOUNT_FACTORIES: dict[str, AccountFactory] = {
    PROVIDER_GOE: goe.create_account,
}
# provider -> the poll policy (defaults and option bounds) for an entry's data
POLL_POLICIES: dict[str, Callable[[Mapping[str, Any]], PollPolicy]] = {
    PROVIDER_GOE: goe.poll_policy,
}
