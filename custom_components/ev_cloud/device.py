"""What the integration needs from a provider's device, whatever the provider.

The coordinator and the entity base only talk to this interface; a provider adds a
subclass in `providers/` and never edits them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from homeassistant.helpers.device_registry import DeviceInfo

from .api import StaleDataError


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

    supports_charge_control: ClassVar[bool] = False

    async def async_start_charging(self, state: StateT) -> None:
        """Start charging; a device that already charges is left alone."""
        raise NotImplementedError

    async def async_stop_charging(self, state: StateT) -> None:
        """Stop charging; a device that is already stopped is left alone."""
        raise NotImplementedError
