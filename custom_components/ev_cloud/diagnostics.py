"""Diagnostics: entry settings and device readings, secrets and serials redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_TOKEN, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .const import CONF_SERIAL, CONF_SERVER_URL
from .coordinator import EvCloudConfigEntry

TO_REDACT = {
    CONF_TOKEN,
    CONF_PASSWORD,
    CONF_USERNAME,
    "latitude",
    "longitude",
    CONF_SERIAL,
    CONF_HOST,
    CONF_SERVER_URL,
    "title",
    "unique_id",
    "name",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: EvCloudConfigEntry
) -> dict[str, Any]:
    """What a bug report needs: settings, poll state and the latest readings."""
    devices = []
    for index, coordinator in enumerate(entry.runtime_data.coordinators.values()):
        data = coordinator.data
        devices.append(
            {
                # Device keys contain the serial; number the devices instead.
                "device": index,
                "provider": coordinator.device.provider,
                "last_update_success": coordinator.last_update_success,
                "update_interval": coordinator.update_interval.total_seconds()
                if coordinator.update_interval
                else None,
                "online": data.online,
                "data_time": data.data_time.isoformat() if data.data_time else None,
                "state": async_redact_data(asdict(data.state), TO_REDACT),
            }
        )
    return {
        "entry": async_redact_data(entry.as_dict(), TO_REDACT),
        "devices": devices,
    }
