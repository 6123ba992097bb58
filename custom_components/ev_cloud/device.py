"""The contract between the shared Home Assistant layer and a provider.

An account (`EvCloudAccount`) is the service side of one config entry and lists its
devices (`EvCloudDevice`). A device is read by polling, by pushed data, or both;
what it can do beyond reading (start/stop charging, ...) is a capability of the
device instance, since it may depend on the subscription or the vehicle. The
coordinators, the entities and the actions only talk to these interfaces.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, Self

from homeassistant.helpers.device_registry import DeviceInfo

from .api import EvCloudError, StaleDataError
from .const import CONF_ACTIVE_INTERVAL, CONF_IDLE_INTERVAL

if TYPE_CHECKING:
    from .descriptions import DeviceEntities


@dataclass(frozen=True, slots=True)
class DeviceData[StateT]:
    """One reading of a device: its state, whether it reports, and when it did."""

    state: StateT
    online: bool
    data_time: datetime | None


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """Poll intervals (seconds): defaults and the bounds the options flow allows."""

    active: int
    idle: int
    min_active: int
    min_idle: int
    maximum: int = 3600


@dataclass(frozen=True, slots=True)
class RepairIssue:
    """A problem only the user can fix, shown under Settings > Repairs.

    `translation_key` names the text in the provider's `issues` translations.
    """

    translation_key: str
    placeholders: Mapping[str, str] | None = None


class ChargeControl[StateT](Protocol):
    """A device that can start and stop charging (the start/stop actions)."""

    async def async_start_charging(self, state: StateT) -> None:
        """Start charging; must succeed for a device that already charges."""

    async def async_stop_charging(self, state: StateT) -> None:
        """Stop charging; must succeed for a device that is already stopped."""


class UploadControl(Protocol):
    """A device that sends data to its service (the upload-now action)."""

    async def async_upload_now(self) -> None:
        """Send everything that waits now; raises the api errors."""


class EvCloudDevice[StateT](ABC):
    """A vehicle, a charger or a service connection of one config entry."""

    # The provider's name (its key in PROVIDERS).
    provider: str
    # What entities the device has, typed on this kind of device and its state.
    entities: DeviceEntities[Self, StateT]
    # None: the device is never polled, its data only arrives by push.
    poll_policy: PollPolicy | None

    def __init__(self, device_id: str) -> None:
        """`device_id` is the provider's stable id (serial, vehicle id)."""
        self.device_id = device_id
        self._push_listener: Callable[[DeviceData[StateT]], None] | None = None

    @property
    def key(self) -> str:
        """Unique across providers; prefixes entity unique ids and device ids."""
        return f"{self.provider}_{self.device_id}"

    @abstractmethod
    async def async_fetch(self) -> DeviceData[StateT]:
        """Read the device; raises the api errors."""

    def want_fresh(self) -> None:  # noqa: B027 - most devices read the service each time
        """The next read was asked for (a refresh, a command): read the service.

        Devices whose polls share one read per poll cycle (a list of all the
        account's devices) read it again for this one, within the budget.
        """

    async def async_fetch_last_known(self, err: StaleDataError) -> DeviceData[StateT]:
        """Read the last data the service kept for a device that stopped reporting."""
        raise err

    @abstractmethod
    def device_info(self, state: StateT) -> DeviceInfo:
        """Describe the device for the device registry (kept current)."""

    @property
    def listed_name(self) -> str:
        """The device's name before it could be read (its own then replaces it)."""
        return self.device_id

    def is_active(self, state: StateT) -> bool:
        """True while the device charges or drives: poll at the active interval."""
        return False

    def next_interval(
        self, data: DeviceData[StateT], options: Mapping[str, Any]
    ) -> timedelta | None:
        """How long to wait before the next poll, after reading `data`.

        The active interval while the device reports and is active, else the idle
        one; providers with request budgets or message ages refine this.
        """
        if (policy := self.poll_policy) is None:
            return None
        if data.online and self.is_active(data.state):
            seconds = options.get(CONF_ACTIVE_INTERVAL, policy.active)
        else:
            seconds = options.get(CONF_IDLE_INTERVAL, policy.idle)
        return timedelta(seconds=seconds)

    def covered_interval(self, options: Mapping[str, Any]) -> timedelta | None:
        """The interval while a linked charger charges the vehicle (`link.py`).

        The estimate from the charger's energy covers the charge, so the idle
        interval; a device whose requests are scarce returns None (read only
        when the charger's events call for it).
        """
        return self.initial_interval(options)

    def initial_interval(self, options: Mapping[str, Any]) -> timedelta | None:
        """The interval before the first reading."""
        if (policy := self.poll_policy) is None:
            return None
        return timedelta(seconds=options.get(CONF_IDLE_INTERVAL, policy.idle))

    def repair_issue(self, error: EvCloudError | None) -> RepairIssue | None:
        """The repair issue that the last read's outcome calls for (None: none)."""
        return None

    @property
    def charge_control(self) -> ChargeControl[StateT] | None:
        """How to start and stop charging, when this device can."""
        return None

    # The exception translation that explains why `charge_control` is None.
    charge_control_missing: str = "charge_control_not_supported"

    @property
    def upload_control(self) -> UploadControl | None:
        """How to send waiting data now, for a device that sends data."""
        return None

    # --- pushed data ------------------------------------------------------------

    def set_push_listener(
        self, listener: Callable[[DeviceData[StateT]], None] | None
    ) -> None:
        """Where pushed readings go (the device's coordinator)."""
        self._push_listener = listener

    def push(self, data: DeviceData[StateT]) -> bool:
        """Hand a reading that the service pushed to Home Assistant.

        Returns False while nothing listens (the entry is not loaded yet).
        """
        if self._push_listener is None:
            return False
        self._push_listener(data)
        return True


class EvCloudAccount(ABC):
    """The service side of one config entry: its client and its devices."""

    # How often to look for devices added to or removed from the account
    # (None: the entry's devices never change, e.g. one charger).
    device_list_interval: timedelta | None = None

    async def async_setup(self) -> None:  # noqa: B027 - most accounts need none
        """Prepare the account (log in); raises the api errors."""

    @abstractmethod
    async def async_list_devices(self) -> list[EvCloudDevice[Any]]:
        """The account's devices now; a device already listed is returned again."""

    def selectable_devices(self) -> list[str] | None:
        """Device ids the user may leave out in the options (None: no choice)."""
        return None

    def diagnostics(self) -> dict[str, Any]:
        """What a bug report needs to know about the account (redacted later)."""
        return {}

    async def async_unload(self) -> None:  # noqa: B027 - most accounts need none
        """Release the account (log out); must not raise."""
