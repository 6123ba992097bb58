"""EV-Monitor clients on Home Assistant's session, sharing what each address reads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util.hass_dict import HassKey

from ...api.evmonitor import BodyEncoding, EvMonitorClient
from ...const import CONF_SERVER_URL, DOMAIN
from .const import NAME

# The body encoding each service address was seen to read, for every client of
# the address (the setup form's and the entries'), until Home Assistant stops.
BODY_ENCODINGS: HassKey[dict[str, BodyEncoding]] = HassKey(
    f"{DOMAIN}_{NAME}_body_encodings"
)


def create_client(
    hass: HomeAssistant, data: Mapping[str, Any], *, confirm_refusal: bool = False
) -> EvMonitorClient:
    """A client for the server and account in `data` (entry data or form input).

    `confirm_refusal` (the forms): a refused login is tried in both encodings,
    even where one is known, so that a user can sign in to a service that
    changed what it reads.
    """
    return EvMonitorClient(
        async_get_clientsession(hass),
        data[CONF_SERVER_URL],
        data[CONF_USERNAME],
        data[CONF_PASSWORD],
        encodings=hass.data.setdefault(BODY_ENCODINGS, {}),
        confirm_refusal=confirm_refusal,
    )
