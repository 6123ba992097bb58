"""go-e Charger as an EV Cloud device (cloud API or local HTTP API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.const import CONF_HOST, CONF_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.util import dt as dt_util

from ...api import CloudApiDisabledError, EvCloudError, StaleDataError
from ...api.goe import ForceState, GoeClient, GoeReading, GoeStatus
from ...const import CONF_SERVER_URL, DOMAIN
from ...device import (
    ChargeControl,
    DeviceData,
    EvCloudAccount,
    EvCloudDevice,
    PollPolicy,
    RepairIssue,
)
from ...models import EvCloudConfigEntry
from .const import CONF_CONNECTION, CONF_SERIAL, CONNECTION_CLOUD, NAME
from .entities import ENTITIES

# Local: the charger answers at most once a second, so 5 s is gentle. Cloud: the
# charger pushes its status every few seconds; 30 s while charging is plenty.
LOCAL_POLICY = PollPolicy(active=5, idle=30, min_active=2, min_idle=5)
CLOUD_POLICY = PollPolicy(active=30, idle=120, min_active=10, min_idle=30)
DEFAULT_CHARGER_NAME = "go-eCharger"
# How far back to look for a charger that stopped reporting without saying since when.
LAST_KNOWN_MAX_AGE = 86400.0


def client_from_data(hass: HomeAssistant, data: Mapping[str, Any]) -> GoeClient:
    """Build the client that config entry data (or flow input) describes."""
    session = async_get_clientsession(hass)
    if data[CONF_CONNECTION] == CONNECTION_CLOUD:
        return GoeClient.cloud(
            session, data[CONF_SERIAL], data[CONF_TOKEN], data.get(CONF_SERVER_URL)
        )
    return GoeClient.local(session, data[CONF_HOST])


def poll_policy(data: Mapping[str, Any]) -> PollPolicy:
    """The poll policy for a go-e entry's connection type."""
    return CLOUD_POLICY if data[CONF_CONNECTION] == CONNECTION_CLOUD else LOCAL_POLICY


class GoeAccount(EvCloudAccount):
    """A go-e entry: exactly one charger."""

    def __init__(self, hass: HomeAssistant, data: Mapping[str, Any]) -> None:
        """The charger that entry data describes."""
        client = client_from_data(hass, data)
        self.charger = GoeCharger(client, data[CONF_SERIAL], poll_policy(data))

    async def async_list_devices(self) -> list[EvCloudDevice[Any]]:
        """The one charger."""
        return [self.charger]


def create_account(hass: HomeAssistant, entry: EvCloudConfigEntry) -> GoeAccount:
    """The account of a go-e entry."""
    return GoeAccount(hass, entry.data)


class GoeCharger(EvCloudDevice[GoeStatus]):
    """One go-e charger."""

    provider = NAME
    entities = ENTITIES

    def __init__(self, client: GoeClient, serial: str, policy: PollPolicy) -> None:
        """Poll `client` for the charger `serial`."""
        super().__init__(serial)
        self.client = client
        self.poll_policy = policy

    async def async_fetch(self) -> DeviceData[GoeStatus]:
        """Read the charger's status."""
        return _device_data(await self.client.async_get_status())

    async def async_fetch_last_known(
        self, err: StaleDataError
    ) -> DeviceData[GoeStatus]:
        """Ask the cloud for the last status it kept (the `age` parameter)."""
        max_age = (err.age or LAST_KNOWN_MAX_AGE) + 60
        reading = await self.client.async_get_status(max_age=max_age)
        return _device_data(reading, online=False)

    def device_info(self, state: GoeStatus) -> DeviceInfo:
        """go-e charger device entry."""
        return DeviceInfo(
            identifiers={(DOMAIN, self.key)},
            manufacturer="go-e",
            model=_model_name(state),
            name=_device_name(state),
            serial_number=self.device_id,
            sw_version=state.firmware,
        )

    def repair_issue(self, error: EvCloudError | None) -> RepairIssue | None:
        """The cloud answers 403: only the user can switch its API on (or the power)."""
        if isinstance(error, CloudApiDisabledError):
            return RepairIssue("cloud_api_disabled")
        return None

    @property
    def charge_control(self) -> ChargeControl[GoeStatus]:
        """Every go-e charger starts and stops through its force state."""
        return self

    def is_active(self, state: GoeStatus) -> bool:
        """Poll faster while a car is connected: current and power change then."""
        return bool(state.plugged_in)

    async def async_start_charging(self, state: GoeStatus) -> None:
        """Force charging on (frc=2).

        Sent even when the last reading says so already: that reading may predate
        a command sent a moment ago, and the charger takes the same value twice.
        """
        await self.async_set({"frc": int(ForceState.ON)})

    async def async_stop_charging(self, state: GoeStatus) -> None:
        """Force charging off (frc=1); sent every time, like start."""
        await self.async_set({"frc": int(ForceState.OFF)})

    async def async_set(self, values: Mapping[str, int | bool | str | None]) -> None:
        """Write API keys to the charger."""
        await self.client.async_set(values)


def _device_data(reading: GoeReading, *, online: bool = True) -> DeviceData[GoeStatus]:
    # The local API sends no Last-Modified: its answer is the charger's data now.
    data_time = reading.data_time or dt_util.utcnow()
    return DeviceData(state=reading.status, online=online, data_time=data_time)


def _device_name(state: GoeStatus) -> str:
    # Every charger leaves the factory named "go-eCharger"; the serial tells them apart.
    if state.name and state.name != DEFAULT_CHARGER_NAME:
        return state.name
    return f"go-e Charger {state.serial}"


def _model_name(state: GoeStatus) -> str:
    model = state.model or "go-eCharger"
    return f"{model} {state.variant} kW" if state.variant else model
