"""OVMS: what is known about one vehicle after a poll."""

from __future__ import annotations

from dataclasses import dataclass

from ...api.ovms import OvmsCharge, OvmsLocation, OvmsStatus, OvmsTpms, Units


@dataclass(frozen=True, slots=True)
class OvmsCarState:
    """Everything known about one vehicle after a poll."""

    vehicle_id: str
    units: Units
    car_online: bool | None  # the car's module is connected to the server
    live_updates: bool
    status: OvmsStatus
    charge: OvmsCharge
    location: OvmsLocation
    tpms: OvmsTpms
    # The user gave the car's server password (and its PIN): commands are offered.
    commands: bool = False
    lock_control: bool = False

    @property
    def charging(self) -> bool | None:
        """True while the car charges."""
        return _first(self.charge.charging, self.status.charging)

    @property
    def plugged_in(self) -> bool | None:
        """True while a charge cable is connected."""
        return _first(self.charge.plugged_in, self.status.plugged_in)

    @property
    def soc(self) -> float | None:
        """Battery level in %."""
        return _first(self.charge.soc, self.status.soc)


def _first[T](value: T | None, fallback: T | None) -> T | None:
    """`value`, or `fallback` when the record that holds it was not received."""
    return fallback if value is None else value
