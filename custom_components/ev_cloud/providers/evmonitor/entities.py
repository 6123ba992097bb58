"""EV-Monitor: the entities of a logbook connection (all diagnostic)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import EntityCategory

from ...descriptions import DeviceEntities, EvCloudSensorEntityDescription
from .state import LogbookStatus

if TYPE_CHECKING:
    from .account import EvMonitorLogbook

# Home Assistant keeps states of at most 255 characters.
MAX_STATE = 255


def _short(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_STATE:
        return text
    return text[: MAX_STATE - 1] + "…"


SENSORS: tuple[EvCloudSensorEntityDescription[LogbookStatus], ...] = (
    EvCloudSensorEntityDescription(
        key="queue_length",
        translation_key="queue_length",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda data: data.state.queued,
    ),
    EvCloudSensorEntityDescription(
        key="last_upload",
        translation_key="last_upload",
        device_class=SensorDeviceClass.TIMESTAMP,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: data.state.last_upload,
    ),
    EvCloudSensorEntityDescription(
        key="last_error",
        translation_key="last_error",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda data: _short(data.state.last_error),
    ),
    EvCloudSensorEntityDescription(
        key="uploaded",
        translation_key="uploaded",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.TOTAL_INCREASING,
        entity_registry_enabled_default=False,
        value_fn=lambda data: data.state.uploaded,
    ),
)

ENTITIES: DeviceEntities[EvMonitorLogbook, LogbookStatus] = DeviceEntities(
    sensor=SENSORS
)
