"""EV-Monitor logbooks: snapshots of a vehicle's entities, queued and uploaded.

An entry is one EV-Monitor vehicle (a logbook). Its one device is the connection
to the logbook: the queue length, the last upload and the last error. Snapshots
are taken when the source's entities change: at the active interval while the
source drives or charges, at the idle interval while it is parked, at once when
it starts or stops driving or charging, and never while nothing changed. They go
to a durable queue (`queue.py`) and are uploaded in batches every upload
interval, at once when a drive or charge ends, on the `upload_now` action and
when Home Assistant stops. Nothing contacts EV-Monitor at setup, so snapshots
are kept while the service is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
import contextlib
from datetime import UTC, datetime
from typing import Any, Final, Literal

from homeassistant.const import EVENT_HOMEASSISTANT_STOP
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.event import (
    async_call_later,
    async_track_state_change_event,
)
from homeassistant.util import dt as dt_util

from ...api import (
    AuthenticationError,
    CommandRejectedError,
    EvCloudError,
    RateLimitedError,
    VehicleNotAvailableError,
)
from ...api.evmonitor import Dataset, EvMonitorClient
from ...const import (
    CONF_ACTIVE_INTERVAL,
    CONF_IDLE_INTERVAL,
    DOMAIN,
    LOGGER,
)
from ...device import (
    DeviceData,
    EvCloudAccount,
    EvCloudDevice,
    PollPolicy,
    RepairIssue,
)
from ...models import EvCloudConfigEntry
from .client import create_client
from .const import (
    CONF_UPLOAD_INTERVAL,
    CONF_VEHICLE,
    DEFAULT_ACTIVE_INTERVAL,
    DEFAULT_IDLE_INTERVAL,
    DEFAULT_UPLOAD_INTERVAL,
    FIELDS,
    NAME,
)
from .entities import ENTITIES
from .queue import DatasetQueue
from .source import fingerprint, is_active, read_dataset, resolve_mapping
from .state import LogbookStatus

# The snapshot intervals, shown as the shared active/idle interval options.
POLICY = PollPolicy(
    active=DEFAULT_ACTIVE_INTERVAL,
    idle=DEFAULT_IDLE_INTERVAL,
    min_active=10,
    min_idle=60,
)
# Seconds Home Assistant's stop waits for a last upload (and an unload does).
STOP_UPLOAD_TIMEOUT: Final = 10.0
UNLOAD_UPLOAD_TIMEOUT: Final = 5.0
# Seconds after setup before what an earlier run left queued is uploaded.
RESUME_DELAY: Final = 10.0
# Failed uploads are retried after the upload interval, doubled per failure, at most
MAX_RETRY_DELAY: Final = 3600.0


def policy_for(data: Mapping[str, Any]) -> PollPolicy:
    """The snapshot intervals' defaults and bounds."""
    return POLICY


def create_account(hass: HomeAssistant, entry: EvCloudConfigEntry) -> EvMonitorAccount:
    """The logbook of an entry, with a client on Home Assistant's shared session."""
    return EvMonitorAccount(hass, entry, create_client(hass, entry.data))


class EvMonitorLogbook(EvCloudDevice[LogbookStatus]):
    """The connection to one EV-Monitor vehicle's logbook; data is only pushed."""

    provider = NAME
    entities = ENTITIES
    poll_policy = None

    def __init__(self, account: EvMonitorAccount) -> None:
        """The logbook `account` uploads to."""
        super().__init__(account.vehicle_id)
        self._account = account

    async def async_fetch(self) -> DeviceData[LogbookStatus]:
        """The queue and upload status (nothing is asked of the service)."""
        return self._account.status()

    def device_info(self, state: LogbookStatus) -> DeviceInfo:
        """A service device named like the entry."""
        return DeviceInfo(
            identifiers={(DOMAIN, self.key)},
            name=self._account.title,
            manufacturer="EV-Monitor",
            model=state.model,
            entry_type=DeviceEntryType.SERVICE,
        )

    def repair_issue(self, error: EvCloudError | None) -> RepairIssue | None:
        """Ask for a source when none of the mapped entities exists."""
        if not self._account.mapping:
            return RepairIssue("evmonitor_no_source")
        return None

    @property
    def upload_control(self) -> EvMonitorAccount:
        """The account uploads the queue."""
        return self._account


class EvMonitorAccount(EvCloudAccount):
    """Takes snapshots of the source, queues them, uploads them in batches."""

    def __init__(
        self, hass: HomeAssistant, entry: EvCloudConfigEntry, client: EvMonitorClient
    ) -> None:
        """The logbook of `entry`; its queue is stored per entry."""
        self._hass = hass
        self._entry = entry
        self._client = client
        self.vehicle_id: str = entry.data[CONF_VEHICLE]
        self.title = entry.title
        self.queue = DatasetQueue(hass, f"{NAME}.{entry.entry_id}")
        self.logbook = EvMonitorLogbook(self)
        # Field -> entity id of the source, resolved at setup.
        self.mapping: dict[str, str] = {}
        self._unsubscribe: list[CALLBACK_TYPE] = []
        self._snapshot_timer: CALLBACK_TYPE | None = None
        self._settle: asyncio.Task[None] | None = None
        self._upload_timer: CALLBACK_TYPE | None = None
        self._upload_due: float | None = None
        self._upload_lock = asyncio.Lock()
        self._saves: set[asyncio.Task[None]] = set()
        self._failures = 0
        # EV-Monitor refused the sign-in: nothing is sent until the reauth.
        self._refused = False
        self._names_read = False
        # Unloading or Home Assistant stopping: no more snapshots or timers.
        self._closing = False
        self._stop_seen = False

    # --- setup and teardown ---------------------------------------------------

    async def async_setup(self) -> None:
        """Load the queue and follow the source; the service is not contacted."""
        await self.queue.async_load()
        self.mapping = resolve_mapping(self._hass, self._entry.options)
        if self.mapping:
            self._unsubscribe.append(
                async_track_state_change_event(
                    self._hass, sorted(set(self.mapping.values())), self._source_changed
                )
            )
        self._unsubscribe.append(
            self._hass.bus.async_listen(
                er.EVENT_ENTITY_REGISTRY_UPDATED, self._registry_updated
            )
        )
        remove_stop = self._hass.bus.async_listen_once(
            EVENT_HOMEASSISTANT_STOP, self._async_stop
        )

        @callback
        def unsubscribe_stop() -> None:
            if not self._stop_seen:  # a fired listen_once is gone already
                remove_stop()

        self._unsubscribe.append(unsubscribe_stop)
        if len(self.queue):  # left by an earlier run
            self._schedule_upload(RESUME_DELAY)
        self._evaluate()

    async def async_list_devices(self) -> list[EvCloudDevice[Any]]:
        """The logbook connection."""
        return [self.logbook]

    async def async_unload(self) -> None:
        """Stop following the source; upload what waits (briefly) and write it."""
        flushed = self._closing  # Home Assistant's stop did it already
        self._closing = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self._cancel_timers()
        if not flushed:
            await self._async_flush(UNLOAD_UPLOAD_TIMEOUT)

    async def _async_stop(self, _event: Event) -> None:
        """Home Assistant stops: upload what waits, then write the queue."""
        self._stop_seen = self._closing = True
        self._cancel_timers()
        await self._async_flush(STOP_UPLOAD_TIMEOUT)

    async def _async_flush(self, limit: float) -> None:
        """One last upload within `limit` seconds (none while the sign-in is refused).

        The queue is written either way.
        """
        if self._saves:
            await asyncio.gather(*self._saves)
        if len(self.queue) and not self._refused:
            try:
                async with asyncio.timeout(limit):
                    await self.async_upload()
            except TimeoutError, EvCloudError:
                LOGGER.info(
                    "%s: %s datasets stay queued for EV-Monitor",
                    self.title,
                    len(self.queue),
                )
        await self.queue.async_save()

    def _cancel_timers(self) -> None:
        for timer in (self._snapshot_timer, self._upload_timer):
            if timer is not None:
                timer()
        if self._settle is not None:
            self._settle.cancel()
            self._settle = None
        self._snapshot_timer = self._upload_timer = self._upload_due = None

    # --- status -----------------------------------------------------------------

    def status(self) -> DeviceData[LogbookStatus]:
        """What the logbook's entities show."""
        extra = self.queue.extra
        last_upload = _time(extra.get("last_upload"))
        error = extra.get("last_error")
        status = LogbookStatus(
            queued=len(self.queue),
            last_upload=last_upload,
            last_error=error if isinstance(error, str) else None,
            uploaded=int(extra.get("uploaded") or 0),
            dropped=self.queue.dropped,
            model=extra.get("model") if isinstance(extra.get("model"), str) else None,
        )
        # Always online: a failed upload is the last-error entity's (and the
        # log's) business, not a device that "stopped reporting".
        return DeviceData(status, online=True, data_time=last_upload)

    @callback
    def _publish(self) -> None:
        self.logbook.push(self.status())

    def diagnostics(self) -> dict[str, Any]:
        """The source mapping, the queue and the uploads."""
        status = self.status().state
        return {
            CONF_VEHICLE: self.vehicle_id,
            "mapping": self.mapping,
            "queued": status.queued,
            "uploaded": status.uploaded,
            "dropped": status.dropped,
            "last_upload": status.last_upload,
            "last_error": status.last_error,
            "failures": self._failures,
            "logins": self._client.login_count,
            # What the service address reads: "form", "json" or not yet known.
            "body_encoding": self._client.body_encoding or "unknown",
            # When and whether active, not the values (they hold the position).
            "last_snapshot": {
                key: value
                for key, value in (self.queue.extra.get("last") or {}).items()
                if key in ("time", "active")
            },
        }

    # --- snapshots --------------------------------------------------------------

    def _option(self, key: str, default: int) -> float:
        return float(self._entry.options.get(key, default))

    @callback
    def _source_changed(self, _event: Event[Any]) -> None:
        """Look once the current burst of changes is written.

        A poll of the source writes its entities one after the other in one go;
        looking at the first change would take a snapshot of half a poll.
        """
        if self._settle is None:
            # A task (not a timer): it runs after the burst, and Home Assistant
            # knows it is pending.
            self._settle = self._hass.async_create_task(
                self._async_settled(), eager_start=False
            )

    async def _async_settled(self) -> None:
        self._settle = None
        self._evaluate()

    @callback
    def _evaluate(self, _now: datetime | None = None) -> None:
        """Take a snapshot if something changed and one is due."""
        if self._snapshot_timer is not None:
            self._snapshot_timer()
            self._snapshot_timer = None
        if not self.mapping or self._closing:
            return
        now = dt_util.utcnow()
        dataset = read_dataset(self._hass, self.mapping, self.vehicle_id, now)
        values = fingerprint(dataset)
        last = self.queue.extra.get("last")
        if not isinstance(last, dict):
            last = {}
        if values is None or last.get("values") == values:
            return
        active = is_active(dataset)
        was_active = last.get("active")
        if isinstance(was_active, bool) and active == was_active:
            interval = self._option(
                CONF_ACTIVE_INTERVAL if active else CONF_IDLE_INTERVAL,
                POLICY.active if active else POLICY.idle,
            )
            wait = float(last.get("time") or 0) + interval - now.timestamp()
            if wait > 0:
                self._snapshot_timer = async_call_later(
                    self._hass, wait, self._evaluate
                )
                return
        self._take(dataset, values, active, ended=bool(was_active) and not active)

    @callback
    def _take(
        self, dataset: Dataset, values: dict[str, str], active: bool, *, ended: bool
    ) -> None:
        """Queue a snapshot and write it; upload at once when a drive/charge ended."""
        self.queue.extra["last"] = {
            "values": values,
            "time": dataset.timestamp.timestamp(),
            "active": active,
        }
        self.queue.add(dataset)
        task = self._hass.async_create_task(self.queue.async_save(), eager_start=True)
        self._saves.add(task)
        task.add_done_callback(self._saves.discard)
        self._publish()
        if self._failures:
            return  # the retry is scheduled; a new snapshot does not hurry it
        interval = self._option(CONF_UPLOAD_INTERVAL, DEFAULT_UPLOAD_INTERVAL)
        self._schedule_upload(0 if ended else interval)

    # --- uploads ----------------------------------------------------------------

    @callback
    def _schedule_upload(self, delay: float, *, replace: bool = False) -> None:
        """Upload after `delay`, unless an upload is due sooner (or `replace`)."""
        if self._closing:
            return
        due = dt_util.utcnow().timestamp() + delay
        if self._upload_timer is not None:
            if not replace and self._upload_due is not None and self._upload_due <= due:
                return
            self._upload_timer()
            self._upload_timer = self._upload_due = None
        if delay <= 0:
            self._entry.async_create_background_task(
                self._hass, self._async_timed_upload(), f"{self.title} upload"
            )
            return
        self._upload_due = due
        self._upload_timer = async_call_later(
            self._hass, delay, self._async_timed_upload
        )

    async def _async_timed_upload(self, _now: datetime | None = None) -> None:
        self._upload_timer = self._upload_due = None
        # A failure is said in the log and the last-error entity, and retried.
        with contextlib.suppress(EvCloudError):
            await self.async_upload()

    async def async_upload_now(self) -> None:
        """The upload-now action: send everything queued."""
        await self.async_upload()

    async def async_upload(self) -> None:
        """Send the queue, oldest first, in batches; raises the api errors."""
        async with self._upload_lock:
            try:
                await self._async_send_all()
            except EvCloudError as err:
                await self._async_failed(err)
                raise
            if self._failures:
                LOGGER.info("%s: uploads to EV-Monitor work again", self.title)
            self._failures = 0
            self._refused = False
            if self.queue.extra.pop("last_error", None) is not None:
                await self.queue.async_save()
                self._publish()
        if not self._names_read and not self._closing:
            await self._async_read_names()

    async def _async_send_all(self) -> None:
        checked = False
        while (batch := await self.queue.async_next_batch()) is not None:
            try:
                await self._client.async_push(batch.datasets, batch_id=batch.batch_id)
            except CommandRejectedError as err:
                if not checked:
                    # Refusals for a vehicle that is gone would drop everything.
                    await self._async_check_vehicle()
                    checked = True
                for dataset in await self.queue.async_refused(batch):
                    LOGGER.warning(
                        "%s: EV-Monitor refused the snapshot of %s, which is "
                        "dropped: %s",
                        self.title,
                        dataset.timestamp.isoformat(),
                        err,
                    )
                self._publish()
                continue
            extra = self.queue.extra
            extra["uploaded"] = int(extra.get("uploaded") or 0) + len(batch.items)
            extra["last_upload"] = dt_util.utcnow().timestamp()
            extra.pop("last_error", None)
            await self.queue.async_done(batch)
            self._publish()

    async def _async_check_vehicle(self) -> None:
        vehicles = await self._client.async_get_vehicles()
        if all(vehicle.vehicle_id != self.vehicle_id for vehicle in vehicles):
            raise VehicleNotAvailableError(
                "The vehicle is no longer in the EV-Monitor account"
            )

    async def _async_failed(self, err: EvCloudError) -> None:
        """Keep the queue; say so once; retry later (or ask to sign in again)."""
        self._failures += 1
        self.queue.extra["last_error"] = str(err)
        await self.queue.async_save()
        self._publish()
        log = LOGGER.warning if self._failures == 1 else LOGGER.debug
        if isinstance(err, AuthenticationError):
            self._refused = True
            log("%s: EV-Monitor refused the sign-in; the queue is kept", self.title)
            self._entry.async_start_reauth(self._hass)
            return
        if isinstance(err, RateLimitedError) and err.retry_after is not None:
            delay = err.retry_after
        else:
            interval = self._option(CONF_UPLOAD_INTERVAL, DEFAULT_UPLOAD_INTERVAL)
            delay = min(interval * 2 ** (self._failures - 1), MAX_RETRY_DELAY)
        log(
            "%s: uploading to EV-Monitor failed (%s); %s datasets kept, "
            "retrying in %.0f s",
            self.title,
            err,
            len(self.queue),
            delay,
        )
        self._schedule_upload(delay, replace=True)

    async def _async_read_names(self) -> None:
        """Name the vehicle's make and model on the device (once per setup)."""
        self._names_read = True
        try:
            vehicles = await self._client.async_get_vehicles()
            vehicle = next(
                (v for v in vehicles if v.vehicle_id == self.vehicle_id), None
            )
            if vehicle is None:
                return
            ids: tuple[tuple[Literal["make", "model"], str | None], ...] = (
                ("make", vehicle.make_id),
                ("model", vehicle.model_id),
            )
            names = [
                await self._client.async_get_name(kind, item_id)
                for kind, item_id in ids
                if item_id
            ]
        except EvCloudError as err:
            LOGGER.debug("%s: cannot name make and model: %s", self.title, err)
            return
        model = " ".join(name for name in names if name) or None
        if model != self.queue.extra.get("model"):
            self.queue.extra["model"] = model
            await self.queue.async_save()
            self._publish()

    # --- renamed source entities ------------------------------------------------

    @callback
    def _registry_updated(
        self, event: Event[er.EventEntityRegistryUpdatedData]
    ) -> None:
        """Follow a source entity the user renamed (its entity id changed)."""
        data = event.data
        if data["action"] != "update" or "old_entity_id" not in data:
            return
        old = data["old_entity_id"]
        if old not in self.mapping.values():
            return
        options = dict(self._entry.options)
        for field in FIELDS:
            if options.get(field) == old:
                options[field] = data["entity_id"]
        self._hass.config_entries.async_update_entry(self._entry, options=options)
        self._hass.config_entries.async_schedule_reload(self._entry.entry_id)


def _time(value: Any) -> datetime | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    return None
