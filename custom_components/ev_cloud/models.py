"""What a provider registers, and what a loaded config entry holds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import Platform
from homeassistant.core import CALLBACK_TYPE, HomeAssistant

from .const import DOMAIN
from .descriptions import DeviceEntities
from .device import EvCloudAccount, PollPolicy

if TYPE_CHECKING:
    from homeassistant.components.repairs import RepairsFlow

    from .coordinator import EvCloudCoordinator
    from .link import ChargerLink
    from .sessions import SessionTracker

# A provider's fix flow for one of its repair issues: (hass, entry, issue id,
# issue data); the data names the entry (`const.ISSUE_ENTRY_ID`).
type RepairFlowFactory = Callable[
    [HomeAssistant, "EvCloudConfigEntry", str, Mapping[str, Any]], "RepairsFlow"
]


@dataclass(frozen=True, slots=True)
class OAuthServer:
    """Where users sign in with their own OAuth client (application credentials)."""

    authorize_url: str
    token_url: str


@dataclass(frozen=True, kw_only=True)
class Provider:
    """One service, as the shared code sees it; registered once in PROVIDERS.

    `name` is stored in each entry's data and names the provider's flow steps:
    `async_step_<name>` (chosen in the first menu), `async_step_<name>_reauth`
    and `async_step_<name>_reconfigure`, which the provider's config-flow mixin
    implements (listed in `config_flow.EvCloudConfigFlow`).
    """

    name: str
    create_account: Callable[[HomeAssistant, EvCloudConfigEntry], EvCloudAccount]
    # One per kind of device the provider has (vehicles, chargers, ...).
    entities: tuple[DeviceEntities[Any, Any], ...]
    # Poll interval defaults and option bounds, from the entry's data.
    poll_policy: Callable[[Mapping[str, Any]], PollPolicy | None]
    # Keys whose values diagnostics must hide (device ids that name a person's car...).
    redact: frozenset[str] = frozenset()
    # Set for the provider whose users sign in with an OAuth client of their own.
    oauth: OAuthServer | None = None
    # Options of the provider's own, beside the intervals: schema fields (with
    # their defaults) from the entry's data; the answers are stored as given.
    extra_options: Callable[[Mapping[str, Any]], dict[Any, Any]] | None = None
    # Checks the options form's answers: errors by field ("base" for the form).
    check_options: (
        Callable[[HomeAssistant, Mapping[str, Any]], dict[str, str]] | None
    ) = None
    # The fix flow of the provider's fixable repair issues.
    repair_flow: RepairFlowFactory | None = None

    @property
    def platforms(self) -> list[Platform]:
        """The platforms to forward an entry of this provider to."""
        return sorted(set().union(*(kind.platforms for kind in self.entities)))


@dataclass(slots=True)
class EvCloudRuntimeData:
    """What a loaded entry holds.

    `listed` are the keys of the devices the account listed last: a registry
    device may only be removed when the service no longer lists it, even when
    it cannot be read right now. `coordinators` are the devices read at least
    once; `unread` those listed but never read yet (their entities unavailable),
    which are tried again at each listing.
    """

    provider: Provider
    account: EvCloudAccount
    coordinators: dict[str, EvCloudCoordinator[Any]] = field(default_factory=dict)
    unread: dict[str, EvCloudCoordinator[Any]] = field(default_factory=dict)
    listed: set[str] = field(default_factory=set)
    # The charger links of the entry's vehicles, by vehicle key (`link.py`).
    links: dict[str, ChargerLink] = field(default_factory=dict)
    # The charging sessions at the entry's chargers, by charger key (`sessions.py`).
    sessions: dict[str, SessionTracker] = field(default_factory=dict)
    # Cancels the pending first read of devices the request budget put off.
    cancel_read_later: CALLBACK_TYPE | None = None

    def cancel_pending(self) -> None:
        """Read no device later (the entry unloads)."""
        if self.cancel_read_later is not None:
            self.cancel_read_later()
            self.cancel_read_later = None


type EvCloudConfigEntry = ConfigEntry[EvCloudRuntimeData]


def signal_device_added(entry: EvCloudConfigEntry) -> str:
    """Dispatcher signal sent with the coordinator of a device added at runtime."""
    return f"{DOMAIN}_{entry.entry_id}_device_added"
