"""Repairs: fix flows for the repair issues a provider can repair in a form."""

from __future__ import annotations

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.core import HomeAssistant

from .const import CONF_PROVIDER, ISSUE_ENTRY_ID
from .providers import PROVIDERS


async def async_create_fix_flow(
    hass: HomeAssistant,
    issue_id: str,
    data: dict[str, str | int | float | None] | None,
) -> RepairsFlow:
    """The fix flow of the entry's provider, or a plain confirmation."""
    entry_id = (data or {}).get(ISSUE_ENTRY_ID)
    entry = (
        hass.config_entries.async_get_entry(entry_id)
        if isinstance(entry_id, str)
        else None
    )
    provider = PROVIDERS.get(entry.data.get(CONF_PROVIDER, "")) if entry else None
    if entry is None or provider is None or provider.repair_flow is None:
        return ConfirmRepairFlow()
    return provider.repair_flow(hass, entry, issue_id, data or {})
