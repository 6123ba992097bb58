"""Constants shared by the EV Cloud modules."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "ev_cloud"
LOGGER = logging.getLogger(__package__)

# Config entry data
CONF_PROVIDER: Final = "provider"
CONF_CONNECTION: Final = "connection"
CONF_SERIAL: Final = "serial"
CONF_SERVER_URL: Final = "server_url"
SECTION_ADVANCED: Final = "advanced"

PROVIDER_GOE: Final = "goe"
PROVIDER_OVMS: Final = "ovms"
CONNECTION_CLOUD: Final = "cloud"
CONNECTION_LOCAL: Final = "local"

# Options: poll intervals in seconds, while a device is active and while it is idle
CONF_ACTIVE_INTERVAL: Final = "active_interval"
CONF_IDLE_INTERVAL: Final = "idle_interval"

# Options of account providers: vehicles left out, vehicles with live updates on
CONF_EXCLUDED_VEHICLES: Final = "excluded_vehicles"
CONF_LIVE_VEHICLES: Final = "live_vehicles"
