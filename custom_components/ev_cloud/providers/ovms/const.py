"""OVMS: the provider's name and its option keys."""

from typing import Final

NAME: Final = "ovms"
# Options: vehicles whose live updates the user switched on
CONF_LIVE_VEHICLES: Final = "live_vehicles"
