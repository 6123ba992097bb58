"""Asyncio clients for the EV and charger cloud services (no Home Assistant imports)."""

from .errors import (
    AccessDeniedError,
    AuthenticationError,
    CloudApiDisabledError,
    CommandRejectedError,
    CommunicationError,
    DeviceOfflineError,
    EvCloudError,
    InvalidResponseError,
    NotSupportedError,
    PollPostponedError,
    QuotaExhaustedError,
    RateLimitedError,
    StaleDataError,
    VehicleNotAvailableError,
)
from .limiter import RequestSpacer

__all__ = [
    "AccessDeniedError",
    "AuthenticationError",
    "CloudApiDisabledError",
    "CommandRejectedError",
    "CommunicationError",
    "DeviceOfflineError",
    "EvCloudError",
    "InvalidResponseError",
    "NotSupportedError",
    "PollPostponedError",
    "QuotaExhaustedError",
    "RateLimitedError",
    "RequestSpacer",
    "StaleDataError",
    "VehicleNotAvailableError",
]
