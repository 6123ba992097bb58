"""Provider glue: how a config entry of each provider becomes devices."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from homeassistant.core import HomeAssistant

from ..const import PROVIDER_GOE
from ..device import EvCloudDevice, PollPolicy
from . import goe

type DeviceFactory = Callable[
    [HomeAssistant, Mapping[str, Any]], Sequence[EvCloudDevice[Any]]
]

# provider -> builds the devices of an entry from its data
DEVICE_FACTORIES: dict[str, DeviceFactory] = {
    PROVIDER_GOE: goe.create_devices,
}
# provider -> the poll policy (defaults and option bounds) for an entry's data
POLL_POLICIES: dict[str, Callable[[Mapping[str, Any]], PollPolicy]] = {
    PROVIDER_GOE: goe.poll_policy,
}
