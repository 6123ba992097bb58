"""OVMS: a car's open v2 connection while Live updates are on.

The server pushes each record the car sends (S, D, L, W/Y) to connected apps: the
car's coordinator shows them at once, and the REST polls slow down. When the
connection drops, polling takes over again and the link reconnects with a
growing pause.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from homeassistant.util import dt as dt_util

from ...api import AuthenticationError, EvCloudError
from ...api.ovms_v2 import OvmsV2Address, OvmsV2Client
from ...const import LOGGER
from .commands import CarSecrets, new_client, password_accepted, password_refused

if TYPE_CHECKING:
    from .account import OvmsCar

# The records the REST answers are made of.
RECORD_CODES: Final = frozenset("SDLWY")
RETRY_FIRST: Final = 10.0  # seconds
RETRY_MAX: Final = 300.0


class OvmsLiveLink:
    """Keeps one v2 connection to the server open for a car, and feeds its records."""

    def __init__(
        self, car: OvmsCar, address: OvmsV2Address, secrets: CarSecrets
    ) -> None:
        """Prepare; `start()` connects."""
        self.car = car
        self.address = address
        self.secrets = secrets
        self.client: OvmsV2Client | None = None
        self.received: dict[str, datetime] = {}
        self._task: asyncio.Task[None] | None = None
        self._push_pending = False

    @property
    def connected(self) -> bool:
        """True while the connection is up."""
        return self.client is not None and self.client.connected

    def start(self) -> None:
        """Connect in the background (and keep reconnecting) until `async_stop()`."""
        if self._task is None:
            entry = self.car.account.entry
            self._task = entry.async_create_background_task(
                self.car.account.hass,
                self._run(),
                f"ev_cloud ovms live {self.car.device_id}",
            )

    async def async_stop(self) -> None:
        """Close the connection and stop reconnecting."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = RETRY_FIRST
        while True:
            client = new_client(
                self.address,
                self.car.device_id,
                self.secrets.server_password,
                on_message=self._on_message,
            )
            try:
                if not await self._connect(client):
                    return
                delay = RETRY_FIRST
                error = await client.wait_closed()
                LOGGER.info(
                    "Live connection of %s dropped (%s); polling the REST API",
                    self.car.device_id,
                    error,
                )
                self.car.link_dropped()
            except EvCloudError as err:
                LOGGER.debug(
                    "Live connection of %s failed: %s", self.car.device_id, err
                )
            finally:
                # Also when cancelled (unload) halfway through connecting.
                self.client = None
                await client.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX)

    async def _connect(self, client: OvmsV2Client) -> bool:
        """Log in and show the stored records; False: the password was refused."""
        hass = self.car.account.hass
        try:
            await client.connect()
        except AuthenticationError:
            # Trying again would not help: the user has to enter the password.
            LOGGER.warning(
                "The OVMS server refused the server password of %s; "
                "its live updates use the REST API only",
                self.car.device_id,
            )
            password_refused(hass, self.car)
            return False
        password_accepted(hass, self.car)
        LOGGER.info("Live connection of %s is up", self.car.device_id)
        self.client = client
        # The stored records arrive right after the login; T says how old the
        # car's last one is.
        age = timedelta(seconds=client.last_update_age or 0)
        now = dt_util.utcnow()
        self.received = {
            code: now - age for code in client.records if code in RECORD_CODES
        }
        self._push()
        return True

    def _on_message(self, code: str, data: str) -> None:
        """A message from the server: records are shown; others only kept."""
        if code == "Z" and self.client is not None:
            self._schedule_push()
        if code not in RECORD_CODES:
            return
        self.received[code] = dt_util.utcnow()
        self._schedule_push()

    def _schedule_push(self) -> None:
        # The car sends its records in a burst: show them together.
        if not self._push_pending:
            self._push_pending = True
            asyncio.get_running_loop().call_soon(self._push)

    def _push(self) -> None:
        self._push_pending = False
        if self.client is not None:
            self.car.push_records(
                dict(self.client.records), self.received, self.client.car_connected
            )
