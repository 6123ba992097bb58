"""Constants shared by the EV Cloud modules (no provider's own)."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "ev_cloud"
LOGGER = logging.getLogger(__package__)

# Config entry data: which provider, and where its service is (advanced section)
CONF_PROVIDER: Final = "provider"
CONF_SERVER_URL: Final = "server_url"
SECTION_ADVANCED: Final = "advanced"

# Options: poll intervals in seconds, while a device is active and while it is idle
CONF_ACTIVE_INTERVAL: Final = "active_interval"
CONF_IDLE_INTERVAL: Final = "idle_interval"
# Options of accounts with several devices: the device ids the user left out
# (stored as "excluded_vehicles" since the first release)
CONF_EXCLUDED_DEVICES: Final = "excluded_vehicles"
# The key of a fixable repair issue's data that names its config entry.
ISSUE_ENTRY_ID: Final = "entry_id"
