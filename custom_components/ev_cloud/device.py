"""What the integration needs from a provider, whatever the provider.

An account (`EvCloudAccount`) is the service side of one config entry and lists its
devices (`EvCloudDevice`). The coordinators and the entity base only talk to these
interfaces; a provider adds subclasses in `providers/` and never edits them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from homeassistant.helpers.device_registry import DeviceInfo

from .api import StaleDataError
from .const import CONF_ACTIVE_INTERVAL, CONF_IDLE_INTERVAL


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


class EvCloudDevice[StateT](ABC):
    """A vehicle or charger of one config entry."""

    provider: ClassVar[str]
    poll_policy: PollPolicy

    def __init__(self, device_id: str) -> None:
        """`device_id` is the provider's stable id (serial, vehicle id)."""
        self.device_id = device_id

    @property
    def key(self) -> str:
        """Unique across providers; prefixes entity unique ids and device ids."""
        return f"{self.provider}_{self.device_id}"

    @abstractmethod
    async def async_fetch(self) -> DeviceData[StateT]:
        """Read the device; raises the api errors."""

    async def async_fetch_last_known(self, err: StaleDataError) -> DeviceData[StateT]:
        """Read the last data the service kept for a device that stopped reporting."""
        raise err

    @abstractmethod
    def device_info(self, state: StateT) -> DeviceInfo:
        """Describe the device for the device registry."""

    def is_active(self, state: StateT) -> bool:
        """True while the device charges or drives: poll at the active interval."""
        return False

    def next_interval(
        self, data: DeviceData[StateT], options: Mapping[str, Any]
    ) -> timedelta:
        """How long to wait before the next poll, after reading `data`.

        The active interval while the device reports and is active, else the idle
        one; providers with request budgets or message ages refine this.
        """
        policy = self.poll_policy
        if data.online and self.is_active(data.state):
            seconds = options.get(CONF_ACTIVE_INTERVAL, policy.active)
        else:
            seconds = options.get(CONF_IDLE_INTERVAL, policy.idle)
        return timedelta(seconds=seconds)

    def initial_interval(self, options: Mapping[str, Any]) -> timedelta:
        """The interval before the first reading."""
        return timedelta(seconds=options.get(CONF_IDLE_INTERVAL, self.poll_policy.idle))

    supports_charge_control: ClassVar[bool] = False
    # The exception translation that explains why a device cannot start or stop.
    charge_control_error: ClassVar[str] = "charge_control_not_supported"

    async def async_start_charging(self, state: StateT) -> None:
        """Start charging; must succeed for a device that already charges."""
        raise NotImplementedError

    async def async_stop_charging(self, state: StateT) -> None:
        """Stop charging; must succeed for a device that is already stopped."""
        raise NotImplementedError


class EvCloudAccount(ABC):
    """The service side of one config entry: its client and its devices."""

    # How often to look for devices added to or removed from the account
    # (None: the entry's devices never change, e.g. one charger).
    device_list_interval: ClassVar[timedelta | None] = None

    async def async_setup(self) -> None:  # noqa: B027 - most accounts need none
        """Prepare the account (log in); raises the api errors."""

    @abstractmethod
    async def async_list_devices(self) -> list[EvCloudDevice[Any]]:
        """The account's devices now; a device already listed is returned again."""

    async def async_unload(self) -> None:  # noqa: B027 - most accounts need none
        """Release the account (log out); must not raise."""
