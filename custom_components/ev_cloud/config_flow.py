"""The config flow: one class per domain, assembled from the providers' steps."""

from __future__ import annotations

from homeassistant.core import callback

from .const import DOMAIN
from .models import EvCloudConfigEntry
from .providers.evenergy.flow import EvEnergyFlow
from .providers.evlinkha.flow import EvLinkFlow
from .providers.evmonitor.flow import EvMonitorFlow
from .providers.goe.flow import GoeFlow
from .providers.ovms.flow import OvmsFlow, OvmsOptions


class EvCloudOptions(OvmsOptions):
    """The options: intervals and devices, with the providers' own steps."""


class EvCloudConfigFlow(
    GoeFlow, OvmsFlow, EvEnergyFlow, EvLinkFlow, EvMonitorFlow, domain=DOMAIN
):
    """Add an account, a charger or a logbook of one of the supported services."""

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: EvCloudConfigEntry) -> EvCloudOptions:
        """Poll intervals, devices, and what the entry's provider adds."""
        return EvCloudOptions()
