"""OVMS: commands to a car over the server's v2 protocol.

The REST API has none (501), so a car gets commands only once the user gave its
server password (the module's v2 password), when adding the account or in the
options. Without Live updates each command opens a connection of its own; with
them, the car's open connection (`live.py`) carries it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util.ssl import get_default_context

from ...api import AuthenticationError, EvCloudError
from ...api.ovms import DEFAULT_SERVER_URL
from ...api.ovms_v2 import (
    CarRefusedError,
    CommandResult,
    OvmsV2Address,
    OvmsV2Client,
    v2_address,
)
from ...const import CONF_SERVER_URL, DOMAIN, ISSUE_ENTRY_ID, LOGGER
from .const import CONF_PIN, CONF_SERVER_PASSWORD, CONF_V2_SERVER, CONF_VEHICLE_COMMANDS
from .state import OvmsCarState

if TYPE_CHECKING:
    from .account import OvmsCar

# The repair issue of a car whose server password the server refused, and the
# key of its data that names the car.
ISSUE_SERVER_PASSWORD = "ovms_server_password"
ISSUE_VEHICLE = "vehicle"


@dataclass(frozen=True, slots=True)
class CarSecrets:
    """What a car's commands need: its server password, and its PIN for the locks."""

    server_password: str
    pin: str | None = None


def v2_server(data: Mapping[str, Any]) -> OvmsV2Address:
    """The entry's v2 address: the one the user set, else the server URL's."""
    if stored := data.get(CONF_V2_SERVER):
        return OvmsV2Address(stored["host"], int(stored["port"]), bool(stored["tls"]))
    return v2_address(data.get(CONF_SERVER_URL) or DEFAULT_SERVER_URL)


def car_secrets(data: Mapping[str, Any], vehicle_id: str) -> CarSecrets | None:
    """The secrets the entry keeps for a car; None: the car is read-only."""
    stored = data.get(CONF_VEHICLE_COMMANDS, {}).get(vehicle_id)
    if not stored or not stored.get(CONF_SERVER_PASSWORD):
        return None
    return CarSecrets(stored[CONF_SERVER_PASSWORD], stored.get(CONF_PIN) or None)


def new_client(
    address: OvmsV2Address, vehicle_id: str, password: str, **kwargs: Any
) -> OvmsV2Client:
    """A v2 client for a car (Home Assistant's SSL context: no file reads)."""
    return OvmsV2Client(
        address.host,
        vehicle_id,
        password,
        port=address.port,
        tls=address.tls,
        ssl_context=get_default_context() if address.tls else None,
        **kwargs,
    )


async def async_check_login(
    address: OvmsV2Address, vehicle_id: str, password: str
) -> str | None:
    """Log in once; the form error, or None when the server took the password.

    A car that is not connected is fine: the login alone proves the password.
    """
    client = new_client(address, vehicle_id, password, keepalive=None)
    try:
        await client.connect()
    except AuthenticationError:
        return "invalid_server_password"
    except EvCloudError as err:
        LOGGER.debug("Checking the OVMS server password failed: %s", err)
        return "cannot_connect"
    finally:
        await client.close()
    return None


def issue_id(entry_id: str, vehicle_id: str) -> str:
    """The repair issue id of a car's refused server password (the entry's prefix)."""
    return f"{entry_id}_{ISSUE_SERVER_PASSWORD}_{vehicle_id}"


def password_refused(hass: HomeAssistant, car: OvmsCar) -> None:
    """Ask the user for the car's current server password (a repair issue)."""
    entry = car.account.entry
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(entry.entry_id, car.device_id),
        is_fixable=True,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_SERVER_PASSWORD,
        translation_placeholders={"name": entry.title, "vehicle": car.device_id},
        data={ISSUE_ENTRY_ID: entry.entry_id, ISSUE_VEHICLE: car.device_id},
    )


def password_accepted(hass: HomeAssistant, car: OvmsCar) -> None:
    """The server took the car's password: its repair issue is solved."""
    password_accepted_id(hass, car.account.entry.entry_id, car.device_id)


def password_accepted_id(hass: HomeAssistant, entry_id: str, vehicle_id: str) -> None:
    """Drop the repair issue of a car whose password is right (or was replaced)."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(entry_id, vehicle_id))


type Send = Callable[[OvmsV2Client], Awaitable[CommandResult]]


class OvmsCommands:
    """The commands of one car; also its `ChargeControl`."""

    def __init__(self, car: OvmsCar, address: OvmsV2Address, secrets: CarSecrets):
        """Send commands to `car` at `address`."""
        self.car = car
        self.address = address
        self.secrets = secrets

    @property
    def has_pin(self) -> bool:
        """Whether lock and unlock can be sent."""
        return self.secrets.pin is not None

    async def _send(self, send: Send) -> None:
        """Send on the car's open connection, else on one of its own.

        A refused password is the car's matter, not the account's: no reauth
        (the REST login is fine), but a repair issue and a translated error. A
        command the car refused or cannot do (firmware 3 does not tell them
        apart) says so, with the car's own text when it sent one.
        """
        hass = self.car.account.hass
        try:
            live = self.car.live_client
            if live is not None:
                await send(live)
            else:
                async with new_client(
                    self.address,
                    self.car.device_id,
                    self.secrets.server_password,
                    keepalive=None,
                ) as client:
                    await send(client)
        except AuthenticationError as err:
            password_refused(hass, self.car)
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="ovms_server_password_refused",
                translation_placeholders={"vehicle": self.car.device_id},
            ) from err
        except CarRefusedError as err:
            password_accepted(hass, self.car)
            vehicle = self.car.device_id
            if err.text:
                raise HomeAssistantError(
                    translation_domain=DOMAIN,
                    translation_key="ovms_command_refused_said",
                    translation_placeholders={"vehicle": vehicle, "error": err.text},
                ) from err
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="ovms_command_refused",
                translation_placeholders={"vehicle": vehicle},
            ) from err
        password_accepted(hass, self.car)

    async def async_start_charging(self, state: OvmsCarState) -> None:
        """Start charging (11), unless the car charges already."""
        if state.charging:
            return
        await self._send(lambda client: client.start_charging())

    async def async_stop_charging(self, state: OvmsCarState) -> None:
        """Stop charging (12), unless the car is known not to charge."""
        if state.charging is False:
            return
        await self._send(lambda client: client.stop_charging())

    async def async_set_charge_current(self, amps: float) -> None:
        """Set the charge current limit (15), in whole amperes."""
        await self._send(lambda client: client.set_charge_current(round(amps)))

    async def async_set_charge_mode(self, mode: str) -> None:
        """Set the charge mode (10)."""
        await self._send(lambda client: client.set_charge_mode(mode))

    async def async_wake_up(self) -> None:
        """Wake the car up (18)."""
        await self._send(lambda client: client.wake_up())

    async def async_lock(self, locked: bool) -> None:
        """Lock (20) or unlock (22) with the car's PIN."""
        pin = self.secrets.pin
        if pin is None:
            return  # the lock entity only exists with a PIN
        if locked:
            await self._send(lambda client: client.lock(pin))
        else:
            await self._send(lambda client: client.unlock(pin))
