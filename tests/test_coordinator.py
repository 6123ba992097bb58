"""Coordinator paths that no simulated service produces on demand."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.update_coordinator import UpdateFailed
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ev_cloud.api import RateLimitedError
from custom_components.ev_cloud.const import DOMAIN
from custom_components.ev_cloud.coordinator import EvCloudCoordinator, translate_error
from custom_components.ev_cloud.descriptions import DeviceEntities
from custom_components.ev_cloud.device import DeviceData, EvCloudDevice, PollPolicy


class RateLimitedDevice(EvCloudDevice[None]):
    """A stand-in for a device of a rate-limited service.

    Faked on purpose: it checks the mapping alone; the provider tests see real
    429 answers from their simulators.
    """

    provider = "fake"
    entities = DeviceEntities()
    poll_policy = PollPolicy(active=10, idle=60, min_active=10, min_idle=60)

    async def async_fetch(self) -> DeviceData[None]:
        """Always refused with a Retry-After."""
        raise RateLimitedError("Too many requests", retry_after=42)

    def device_info(self, state: Any) -> DeviceInfo:
        """Not used: no entities are created."""
        return DeviceInfo(identifiers={(DOMAIN, self.key)})


@pytest.mark.parametrize(
    ("wait", "expected"), [(0.2, 2), (1.0, 2), (59.5, 61), (None, None)]
)
def test_retry_after_never_comes_early(
    wait: float | None, expected: int | None
) -> None:
    """A wait under a second is not retried within the same second, again and again."""
    error = translate_error(RateLimitedError("Slow down", wait), "update")
    assert isinstance(error, UpdateFailed)
    assert error.retry_after == expected


async def test_rate_limit_passes_retry_after(hass: HomeAssistant) -> None:
    """429 becomes UpdateFailed with the server's Retry-After."""
    entry = MockConfigEntry(domain=DOMAIN, data={"provider": "fake"})
    entry.add_to_hass(hass)
    coordinator = EvCloudCoordinator(hass, entry, RateLimitedDevice("1"))
    await coordinator.async_refresh()
    assert not coordinator.last_update_success
    error = coordinator.last_exception
    assert isinstance(error, UpdateFailed)
    # One second more: Home Assistant schedules from whole seconds of its clock.
    assert error.retry_after == 43
    assert error.translation_key == "rate_limited"
    assert not RateLimitedDevice("1").is_active(None)
