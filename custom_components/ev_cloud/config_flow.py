"""The config flow: one class per domain, assembled from the providers' steps."""

from __future__ import annotations

from .const import DOMAIN
from .providers.evenergy.flow import EvEnergyFlow
from .providers.evlinkha.flow import EvLinkFlow
from .providers.evmonitor.flow import EvMonitorFlow
from .providers.goe.flow import GoeFlow
from .providers.ovms.flow import OvmsFlow


class EvCloudConfigFlow(
    GoeFlow, OvmsFlow, EvEnergyFlow, EvLinkFlow, EvMonitorFlow, domain=DOMAIN
):
    """Add an account, a charger or a logbook of one of the supported services."""
