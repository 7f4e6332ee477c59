"""Domain errors, each carrying the HTTP status and the stable `error` code it maps to.

The API layer turns any `TerapiError` into `{"error": code, "message": message}`; messages are
written for the caller and never include a secret value.
"""

from __future__ import annotations


class TerapiError(Exception):
    """Base of every error the API reports to its caller."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class InvalidRequest(TerapiError):
    """The request is malformed or a field fails validation."""

    status = 400
    code = "invalid_request"


class Unauthorized(TerapiError):
    """The secret key is missing or wrong."""

    status = 401
    code = "unauthorized"


class NotFound(TerapiError):
    """A resource named by the request does not exist."""

    status = 404
    code = "not_found"


class IntegrationNotFound(NotFound):
    """No integration has the given provider config key."""

    code = "unknown_integration"


class ConnectionNotFound(NotFound):
    """No connection has the given id under the given integration."""

    code = "unknown_connection"


class Conflict(TerapiError):
    """The request conflicts with the current state of a resource."""

    status = 409
    code = "conflict"


class ConnectionBusy(Conflict):
    """Another request holds the connection's credentials lease for longer than we can wait."""

    status = 503
    code = "connection_busy"


class StoreUnavailable(TerapiError):
    """An AWS dependency failed; the operation was rolled back and can be retried."""

    status = 503
    code = "service_unavailable"


class CredentialsInvalid(TerapiError):
    """The provider refused the connection's credentials for good; the user must reconnect."""

    status = 424
    code = "credentials_invalid"


class RefreshFailed(TerapiError):
    """The provider could not refresh the token right now (5xx, timeout); retried already."""

    status = 502
    code = "refresh_failed"


class RefreshCoolingDown(TerapiError):
    """A recent refresh failed, and the provider is not asked again until the cool-down ends."""

    status = 503
    code = "refresh_cooling_down"


class RefreshInProgress(TerapiError):
    """Another request is refreshing this connection and did not finish within the wait."""

    status = 503
    code = "refresh_in_progress"
