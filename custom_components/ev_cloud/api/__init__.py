"""Asyncio clients for the EV and charger cloud services (no Home Assistant imports)."""

from .errors import (
    AuthenticationError,
    CloudApiDisabledError,
    CommandRejectedError,
    CommunicationError,
    DeviceOfflineError,
    EvCloudError,
    InvalidResponseError,
    RateLimitedError,
    StaleDataError,
)
from .limiter import RequestSpacer

__all__ = [
    "AuthenticationError",
    "CloudApiDisabledError",
    "CommandRejectedError",
    "CommunicationError",
    "DeviceOfflineError",
    "EvCloudError",
    "InvalidResponseError",
    "RateLimitedError",
    "RequestSpacer",
    "StaleDataError",
]
