"""ev.energy: what is known about a vehicle or a charger after a poll."""

from __future__ import annotations

from dataclasses import dataclass

from ...api.evenergy import CommandLog, Evse, Location, Vehicle


@dataclass(frozen=True, slots=True)
class VehicleState:
    """A vehicle with its newest status, location and command."""

    vehicle: Vehicle
    location: Location | None
    last_command: CommandLog | None
    requests_left: int | None  # of the account's hourly allowance

    @property
    def plugged_in(self) -> bool | None:
        """True while a charge cable is connected."""
        return self.vehicle.status.is_plugged_in if self.vehicle.status else None


@dataclass(frozen=True, slots=True)
class ChargerState:
    """A charger (EVSE) of the account with its newest status."""

    evse: Evse
