"""One error hierarchy for every provider client.

Messages are written by us and never contain credentials or request URLs, so they are
safe to show in the UI and to log.
"""

from __future__ import annotations


class EvCloudError(Exception):
    """Base class of every error a provider client raises."""


class AuthenticationError(EvCloudError):
    """The service rejected the credentials (the user must enter new ones)."""


class AccessDeniedError(EvCloudError):
    """The credentials lack a permission (scope) for this request.

    Re-authenticating with the same grant does not help: the service (or the
    account's owner) must grant the permission first.
    """


class RateLimitedError(EvCloudError):
    """The service asked us to slow down."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        """Keep the server's Retry-After (seconds) when it sent one."""
        super().__init__(message)
        self.retry_after = retry_after


class PollPostponedError(RateLimitedError):
    """Our own request budget put a poll off for `retry_after` seconds.

    Nothing was sent: the poll's requests did not all fit the budget yet (other
    devices' polls that fell at the same time took them).
    """


class QuotaExhaustedError(RateLimitedError):
    """The service's call allowance of this period is used up.

    `used` and `allowance` are the counts the service reported ("Monthly allowance
    (300/300)"), None when it did not say; the service names no time to retry.
    """

    def __init__(
        self, message: str, *, used: int | None = None, allowance: int | None = None
    ) -> None:
        """Keep the counts the service reported."""
        super().__init__(message, None)
        self.used = used
        self.allowance = allowance


class CommunicationError(EvCloudError):
    """Network failure, timeout or a server-side error (5xx); worth retrying."""


class InvalidResponseError(CommunicationError):
    """The service answered with something we cannot read (not JSON, wrong shape)."""


class DeviceOfflineError(EvCloudError):
    """The service works, but the device behind it is not reachable right now."""


class StaleDataError(DeviceOfflineError):
    """The device has not reported for a while; `age` is how old its last data is."""

    def __init__(self, message: str, age: float | None = None) -> None:
        """Keep the data age (seconds) when the service told it."""
        super().__init__(message)
        self.age = age


class CloudApiDisabledError(EvCloudError):
    """The cloud refuses to answer for a device: offline, or its cloud API is off.

    The service does not tell these apart; the user can only check both.
    """


class CommandRejectedError(EvCloudError):
    """The service or the device refused a command (e.g. a value out of range).

    `reason`, when the service tells it, says why in a machine-readable way (e.g.
    "unplugged_or_state": the vehicle's state does not allow it, or
    "smart_charging": a schedule or smart charging controls the vehicle).
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        """Keep the machine-readable reason next to the message."""
        super().__init__(message)
        self.reason = reason


class VehicleNotAvailableError(EvCloudError):
    """The service will not serve this vehicle's data; retrying does not help.

    `reason` says why: "not_owned" (the vehicle is unknown or belongs to another
    account) or "paranoid" (the car encrypts its data end to end, which the service's
    API cannot read).
    """

    def __init__(self, message: str, reason: str | None = None) -> None:
        """Keep the machine-readable reason next to the message."""
        super().__init__(message)
        self.reason = reason


class NotSupportedError(EvCloudError):
    """The service does not implement this request (HTTP 501)."""
