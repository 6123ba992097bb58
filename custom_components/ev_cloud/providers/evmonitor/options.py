"""EV-Monitor: the options (uploads and the source), also asked by the flow."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.selector import (
    DeviceSelector,
    DeviceSelectorConfig,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
)

if TYPE_CHECKING:
    # Home Assistant >= 2026.10 types its schemas with probatio, which it installs
    # as `voluptuous`; older releases use voluptuous itself.
    import probatio as vol
else:
    import voluptuous as vol

from ...const import DOMAIN
from .const import (
    CONF_SOURCE_DEVICE,
    CONF_UPLOAD_INTERVAL,
    DEFAULT_UPLOAD_INTERVAL,
    FIELDS,
    MIN_UPLOAD_INTERVAL,
)
from .source import FIELD_DOMAINS, resolve_mapping

DEVICE = DeviceSelector(DeviceSelectorConfig(integration=DOMAIN))


def field_selectors() -> dict[Any, Any]:
    """One optional entity picker per dataset field."""
    return {
        vol.Optional(field): EntitySelector(
            EntitySelectorConfig(domain=list(FIELD_DOMAINS[field]))
        )
        for field in FIELDS
    }


def source_options(data: Mapping[str, Any]) -> dict[Any, Any]:
    """The options beside the snapshot intervals: uploads and the source."""
    return {
        vol.Required(
            CONF_UPLOAD_INTERVAL, default=DEFAULT_UPLOAD_INTERVAL
        ): NumberSelector(
            NumberSelectorConfig(
                min=MIN_UPLOAD_INTERVAL,
                max=86400,
                step=1,
                unit_of_measurement="s",
                mode=NumberSelectorMode.BOX,
            )
        ),
        vol.Optional(CONF_SOURCE_DEVICE): DEVICE,
        **field_selectors(),
    }


def check_source(hass: HomeAssistant, options: Mapping[str, Any]) -> dict[str, str]:
    """An error when the options name no entity to read."""
    return {} if resolve_mapping(hass, options) else {"base": "no_source"}
