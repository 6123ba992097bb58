"""Diagnostics: entry settings and device readings, secrets and identities redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_HOST, CONF_PASSWORD, CONF_TOKEN, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .const import CONF_EXCLUDED_DEVICES, CONF_SERVER_URL
from .link import CONF_CHARGER_LINKS
from .models import EvCloudConfigEntry

# What every entry may hold; each provider adds the keys of its own (PROVIDER.redact).
TO_REDACT = {
    CONF_TOKEN,
    CONF_PASSWORD,
    CONF_USERNAME,
    CONF_HOST,
    CONF_SERVER_URL,
    CONF_EXCLUDED_DEVICES,
    CONF_CHARGER_LINKS,  # keyed by vehicle ids
    "latitude",
    "longitude",
    "title",
    "unique_id",
    "name",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: EvCloudConfigEntry
) -> dict[str, Any]:
    """What a bug report needs: settings, poll state and the latest readings."""
    runtime = entry.runtime_data
    to_redact = TO_REDACT | runtime.provider.redact
    devices = []
    for index, coordinator in enumerate(runtime.coordinators.values()):
        data = coordinator.data
        devices.append(
            {
                # Device keys contain serials and vehicle ids; number the devices.
                "device": index,
                "provider": coordinator.device.provider,
                "last_update_success": coordinator.last_update_success,
                "update_interval": coordinator.update_interval.total_seconds()
                if coordinator.update_interval
                else None,
                "online": data.online,
                "data_time": data.data_time.isoformat() if data.data_time else None,
                "state": async_redact_data(asdict(data.state), to_redact),
            }
        )
    return {
        "entry": async_redact_data(entry.as_dict(), to_redact),
        "account": async_redact_data(runtime.account.diagnostics(), to_redact),
        "devices_listed": len(runtime.listed),
        "charger_links": [link.diagnostics() for link in runtime.links.values()],
        "devices": devices,
        # Listed but never read: why (the messages are ours, free of secrets).
        "devices_unread": [
            {
                "provider": coordinator.device.provider,
                "error": str(coordinator.last_read_error),
            }
            for coordinator in runtime.unread.values()
        ],
    }
