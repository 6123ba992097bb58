"""EVLinkHA push: the two values the service's profile asks for, and whether they work.

The profile has two fields, Webhook URL (Home Assistant's address on the internet)
and Webhook ID. For each event of a pro user EVLinkHA posts the raw Enode event to
`<Webhook URL>/api/webhook/<Webhook ID>`, and sends nothing while either field is
empty (rogasp/evlink-backend @ eb8e5ba, `backend/app/api/webhook.py`,
`frontend/src/components/profile/HaWebhookSettingsCard.tsx`). A whole webhook URL
in the first field would double the path and reach nothing.
"""

from __future__ import annotations

from typing import Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.network import NoURLAvailableError, get_url

from ...const import DOMAIN
from ...models import EvCloudConfigEntry
from .const import PUSH_TIERS

ISSUE_NO_EXTERNAL_URL: Final = "evlinkha_no_external_url"


def external_url(hass: HomeAssistant) -> str | None:
    """Home Assistant's address on the internet, or None when it has none.

    The external URL set under Settings > System > Network, else the remote
    address of Home Assistant Cloud; never an address of the home network,
    which EVLinkHA cannot reach.
    """
    try:
        return get_url(hass, allow_internal=False, prefer_cloud=False)
    except NoURLAvailableError:
        return None


def issue_id(entry: EvCloudConfigEntry) -> str:
    """The repair issue of an entry whose pushes cannot reach Home Assistant."""
    return f"{entry.entry_id}_{ISSUE_NO_EXTERNAL_URL}"


def async_check_reachable(
    hass: HomeAssistant, entry: EvCloudConfigEntry, tier: str | None
) -> None:
    """A repair while a pro account's pushes cannot reach Home Assistant."""
    if tier in PUSH_TIERS and external_url(hass) is None:
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id(entry),
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=ISSUE_NO_EXTERNAL_URL,
            translation_placeholders={"name": entry.title},
        )
    else:
        ir.async_delete_issue(hass, DOMAIN, issue_id(entry))


def async_drop_issue(hass: HomeAssistant, entry: EvCloudConfigEntry) -> None:
    """The entry unloads: its setup checks again."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(entry))
