"""PROVIDERS: every service EV Cloud supports, by name; the one registry.

Shared code, `scripts/` and `tests/simulators/` find a provider here. A provider
is a package beside this file (see docs/adding-a-provider.md).
"""

from ..models import Provider
from . import evenergy, evlinkha, evmonitor, goe, ovms

PROVIDERS: dict[str, Provider] = {
    provider.name: provider
    for provider in (
        goe.PROVIDER,
        ovms.PROVIDER,
        evenergy.PROVIDER,
        evlinkha.PROVIDER,
        evmonitor.PROVIDER,
    )
}


def oauth_provider() -> Provider:
    """The one provider whose users sign in through application credentials."""
    [provider] = [p for p in PROVIDERS.values() if p.oauth is not None]
    return provider
