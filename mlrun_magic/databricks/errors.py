"""Databricks REST errors as typed exceptions: the HTTP status, the ``error_code``, the message.

They are :class:`mlrun_magic.transport.ApiError` s, with what the retry rules read
(``never_sent``, ``no_answer``, ``retry_after``)."""

from __future__ import annotations

from mlrun_magic.transport import ApiError
from mlrun_magic.transport import TransportError as _NoAnswer


class DatabricksAPIError(ApiError):
    """A Databricks REST call failed. ``error_code`` is always a string (403s send a number)."""

    title = "Databricks API error"


class BadRequest(DatabricksAPIError):
    """400: the request was invalid (``INVALID_PARAMETER_VALUE``, ``INVALID_STATE``...)."""


class Unauthenticated(DatabricksAPIError):
    """401: no credentials were sent or accepted."""


class PermissionDenied(DatabricksAPIError):
    """403: the credentials are invalid, expired, or lack the right (also: DBFS root disabled)."""


class NotFound(DatabricksAPIError):
    """404 or ``RESOURCE_DOES_NOT_EXIST``."""


class AlreadyExists(DatabricksAPIError):
    """409 or ``RESOURCE_ALREADY_EXISTS``."""


class TooManyRequests(DatabricksAPIError):
    """429 or ``REQUEST_LIMIT_EXCEEDED``: throttled."""


class Unavailable(DatabricksAPIError):
    """503 or ``TEMPORARILY_UNAVAILABLE``."""


class InternalError(DatabricksAPIError):
    """500 and other server errors."""


class TransportError(DatabricksAPIError, _NoAnswer):
    """The workspace could not be reached, or the connection broke, and retrying gave up."""


_BY_CODE = {
    "RESOURCE_DOES_NOT_EXIST": NotFound, "NOT_FOUND": NotFound,
    "RESOURCE_ALREADY_EXISTS": AlreadyExists, "ALREADY_EXISTS": AlreadyExists,
    "REQUEST_LIMIT_EXCEEDED": TooManyRequests, "RESOURCE_EXHAUSTED": TooManyRequests,
    "TEMPORARILY_UNAVAILABLE": Unavailable, "PERMISSION_DENIED": PermissionDenied,
    "UNAUTHENTICATED": Unauthenticated,
}
_BY_STATUS = {400: BadRequest, 401: Unauthenticated, 403: PermissionDenied, 404: NotFound,
              409: AlreadyExists, 429: TooManyRequests, 503: Unavailable}


def error_class(status_code: int, error_code: str | None) -> type[DatabricksAPIError]:
    """The exception class for a status and an ``error_code``; the code wins when it is known."""
    if error_code in _BY_CODE:
        return _BY_CODE[error_code]
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    return InternalError if status_code >= 500 else DatabricksAPIError
