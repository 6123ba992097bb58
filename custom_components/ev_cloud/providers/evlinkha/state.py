"""EVLinkHA: what is known about a vehicle after a poll or a push."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ...api.evlinkha import EvLinkVehicle
from .const import COMMAND_TIERS, PUSH_TIERS


@dataclass(frozen=True, slots=True)
class VehicleState:
    """A vehicle, the account's tier and quota, and its pushes.

    `webhook_url` and `webhook_id` are what the EVLinkHA profile's two push
    fields take (`webhook_url` None while Home Assistant has no external URL).
    """

    vehicle: EvLinkVehicle
    tier: str | None
    calls_left: int
    last_push: datetime | None
    webhook_url: str | None = None
    webhook_id: str | None = None

    @property
    def pushes(self) -> bool:
        """The tier has EVLinkHA push vehicle changes to Home Assistant."""
        return self.tier in PUSH_TIERS

    @property
    def can_charge(self) -> bool:
        """The tier and the vehicle allow starting and stopping charging."""
        return self.tier in COMMAND_TIERS and self.capable(
            "startCharging", "stopCharging"
        )

    def capable(self, *names: str) -> bool:
        """The vehicle can do all of `names` (as far as EVLinkHA said)."""
        capabilities = self.vehicle.capabilities
        return capabilities is None or all(name in capabilities for name in names)
