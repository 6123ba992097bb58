"""EV-Monitor: the provider's name, entry data and option keys, and cadence defaults."""

from typing import Final

NAME: Final = "evmonitor"
# Entry data: the EV-Monitor vehicle (logbook) the data goes to
CONF_VEHICLE: Final = "vehicle"
# Flow field: where the data comes from
CONF_SOURCE: Final = "source"
SOURCE_DEVICE: Final = "device"
SOURCE_ENTITIES: Final = "entities"
# Options: a device of this integration, mapped automatically ...
CONF_SOURCE_DEVICE: Final = "source_device"
# ... and/or one entity per field (an entity given here wins over the device's)
FIELD_SOC: Final = "soc"
FIELD_RANGE: Final = "range"
FIELD_SPEED: Final = "speed"
FIELD_ODOMETER: Final = "odometer"
FIELD_POWER: Final = "power"
FIELD_BATTERY_TEMPERATURE: Final = "battery_temperature"
FIELD_CHARGING: Final = "charging"
FIELD_LOCATION: Final = "location"
FIELDS: Final = (
    FIELD_SOC,
    FIELD_RANGE,
    FIELD_SPEED,
    FIELD_ODOMETER,
    FIELD_POWER,
    FIELD_BATTERY_TEMPERATURE,
    FIELD_CHARGING,
    FIELD_LOCATION,
)
# Options: seconds between uploads of what is queued
CONF_UPLOAD_INTERVAL: Final = "upload_interval"
DEFAULT_UPLOAD_INTERVAL: Final = 300
MIN_UPLOAD_INTERVAL: Final = 10
# Snapshot intervals (the shared active/idle interval options): while the source
# drives or charges, and while it is parked.
DEFAULT_ACTIVE_INTERVAL: Final = 60
DEFAULT_IDLE_INTERVAL: Final = 900
