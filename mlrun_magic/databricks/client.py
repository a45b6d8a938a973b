"""One ``requests`` session to a Databricks workspace, with retries that never double a run.

Every call has a per-request timeout and the whole call (retries included) an overall
deadline. What is retried, with exponential backoff and jitter:

* connection failures before the request was sent (always safe);
* 429 / ``REQUEST_LIMIT_EXCEEDED`` (the request was refused, not done), honouring
  ``Retry-After``;
* 5xx answers (500, 502, 503 / ``TEMPORARILY_UNAVAILABLE``, 504), read timeouts and dropped
  connections, **only** for requests that are safe to repeat: reads, PUTs, and POSTs the
  caller marks idempotent (``runs/submit`` always carries an ``idempotency_token``, so a
  retry after a lost response returns the same run instead of starting a second one).

Errors come back as :mod:`mlrun_magic.databricks.errors` exceptions carrying the HTTP
status, the ``error_code`` and the message. Authentication headers are fetched per request
from the SDK (so OAuth tokens refresh) and never logged.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from mlrun_magic.databricks.auth import Workspace
from mlrun_magic.databricks.errors import (DatabricksAPIError, InternalError, TooManyRequests,
                                           TransportError, Unavailable, error_class)

logger = logging.getLogger("mlrun_magic.databricks")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Messages Databricks sends with errors that go away on their own (from the SDKs).
TRANSIENT_MESSAGES = ("ClusterNotReadyException", "UnknownWorkerEnvironmentException",
                      "does not have any associated worker environments",
                      "There is no worker environment with id", "Unknown worker environment",
                      "Please try again later or try a faster operation.",
                      "RPC token bucket limit has been exceeded")
#: Server errors after which repeating an idempotent request is safe and often works.
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})


def _config_errors():
    """``requests`` errors that mean the host is unusable as written (never retried)."""
    import requests

    return (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader)


def _shown(url: str) -> str:
    from mlrun_magic.redact import redact_url

    return redact_url(url)


class DatabricksClient:
    """REST calls to one workspace. ``call()`` returns parsed JSON (or the response)."""

    def __init__(self, workspace: Workspace, *, timeout: float = 60.0, deadline: float = 300.0,
                 backoff: float = 1.0, max_backoff: float = 10.0, session=None):
        import requests

        from mlrun_magic.version import __version__

        self.workspace = workspace
        self.host = workspace.host
        self.timeout = timeout
        self.deadline = deadline
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = (f"mlrun-magic/{__version__} "
                                              f"auth/{workspace.auth_type}")
        self.sleep = time.sleep
        self._workspace_id: str | None = None
        self._user: str | None = None

    # -- the one way out ---------------------------------------------------------------
    def call(self, method: str, path: str, *, json: Any = None, params: dict | None = None,
             data=None, headers: dict | None = None, idempotent: bool | None = None,
             raw: bool = False, stream: bool = False, timeout: float | None = None,
             deadline: float | None = None):
        """Send one request, retrying what is safe; raise a DatabricksAPIError on failure.

        ``raw=True`` returns the ``requests.Response`` (uploads, downloads, HEAD); otherwise
        the JSON body as a dict. ``data`` may be a seekable file: it is rewound before a retry.
        """
        import requests

        method = method.upper()
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        url = f"{self.host}{path}"
        deadline_at = time.monotonic() + (deadline or self.deadline)
        rewind = data.tell() if hasattr(data, "seek") and hasattr(data, "tell") else None
        attempt = 0
        while True:
            attempt += 1
            if rewind is not None:
                data.seek(rewind)
            retry_after = None
            try:
                all_headers = self.workspace.auth_headers()
                all_headers.update(headers or {})
                resp = self.session.request(method, url, json=json, params=_query(params),
                                            data=data, headers=all_headers, stream=stream,
                                            timeout=(min(10.0, timeout or self.timeout),
                                                     timeout or self.timeout))
            except requests.ConnectionError as exc:
                never_sent = connect_failed(exc)
                error = TransportError(
                    f"cannot reach {_shown(self.host)}: {_short(exc)}" if never_sent else
                    f"the connection broke before an answer came: {_short(exc)}",
                    method=method, path=path,
                    hint="Check the workspace host and your network." if never_sent else None)
                error.never_sent = never_sent
                retryable = never_sent or (idempotent and (data is None or rewind is not None))
            except requests.Timeout as exc:
                error = TransportError(f"no answer within {timeout or self.timeout:.0f} s "
                                       f"({type(exc).__name__})", method=method, path=path)
                retryable = idempotent and (data is None or rewind is not None)
            except _config_errors() as exc:
                raise TransportError(
                    f"the workspace address {_shown(self.host)} cannot be used "
                    f"({type(exc).__name__})", method=method, path=path,
                    hint="Check DATABRICKS_HOST or the profile's host: it must look like "
                         "https://<workspace>.cloud.databricks.com") from None
            except requests.RequestException as exc:
                # The answer was cut while its body was read (ChunkedEncodingError...):
                # the request was sent, so it may have been done.
                error = TransportError(f"the connection broke while the answer was read "
                                       f"({type(exc).__name__})", method=method, path=path)
                retryable = idempotent and (data is None or rewind is not None)
            else:
                if resp.status_code < 400:
                    return resp if raw else self._json(resp, method, path)
                error = self.error_from(resp, method, path)
                if isinstance(error, TooManyRequests):
                    retryable = True
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                else:
                    transient = isinstance(error, Unavailable) or (
                        isinstance(error, InternalError) and resp.status_code in TRANSIENT_STATUSES
                    ) or any(m in error.api_message for m in TRANSIENT_MESSAGES)
                    retryable = transient and idempotent and (data is None or rewind is not None)
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if not retryable:
                raise error
            delay = retry_after if retry_after is not None else self.retry_delay(attempt)
            if time.monotonic() + delay > deadline_at:
                error.message += f" (gave up after {attempt} attempts)"
                raise error
            logger.info("%s %s: %s; retrying in %.1f s (attempt %d)", method, path,
                        error.api_message, delay, attempt + 1)
            self.sleep(delay)

    def retry_delay(self, attempt: int) -> float:
        """Exponential backoff with jitter before retry number ``attempt``."""
        ceiling = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    @staticmethod
    def error_from(resp, method: str, path: str) -> DatabricksAPIError:
        """Turn an error response (JSON envelope, HTML page or text) into an exception."""
        code = None
        message = ""
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            raw_code = body.get("error_code", body.get("error"))
            code = str(raw_code) if raw_code is not None else None
            message = str(body.get("message") or body.get("error_description")
                          or body.get("detail") or "")
        if not message:
            message = (resp.headers.get("X-Databricks-Reason-Phrase")
                       or _strip_html(resp.text)[:300] or resp.reason or "")
        cls = error_class(resp.status_code, code)
        return cls(message, status_code=resp.status_code, error_code=code, method=method,
                   path=path, hint=_hint(resp.status_code, code, message))

    @staticmethod
    def _json(resp, method: str, path: str) -> dict:
        if not resp.content:
            return {}
        try:
            body = resp.json()
        except ValueError:
            # A private-link workspace reached from outside answers 200 with a login page.
            raise DatabricksAPIError(
                f"expected JSON but got {resp.headers.get('Content-Type', 'no content type')}: "
                f"{_strip_html(resp.text)[:200]}", status_code=resp.status_code, method=method,
                path=path, hint="Is the host right, and reachable from here (private link, "
                                "proxy)?") from None
        return body if isinstance(body, dict) else {"value": body}

    # -- small helpers used across the backend -------------------------------------------
    def get(self, path: str, **params) -> dict:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: dict | None = None, *, idempotent: bool = False) -> dict:
        return self.call("POST", path, json=body or {}, idempotent=idempotent)

    def me(self) -> tuple[str, str | None]:
        """``(user name, workspace id)`` of the caller (cached)."""
        if self._user is None:
            resp = self.call("GET", "/api/2.0/preview/scim/v2/Me", raw=True)
            self._user = self._json(resp, "GET", "/api/2.0/preview/scim/v2/Me").get("userName", "")
            self._workspace_id = resp.headers.get("X-Databricks-Org-Id")
        return self._user, self._workspace_id


def _query(params: dict | None) -> dict | None:
    if not params:
        return params
    # Databricks wants booleans in query strings as true/false.
    return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items()
            if v is not None}


def connect_failed(exc) -> bool:
    """True when the connection was never established (so nothing was sent)."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    cause = exc
    while cause is not None:
        if isinstance(cause, (NewConnectionError, ConnectTimeoutError)):
            return True
        reason = getattr(cause, "reason", None)
        if isinstance(reason, (NewConnectionError, ConnectTimeoutError)):
            return True
        cause = cause.args[0] if cause.args and isinstance(cause.args[0], Exception) else None
    return "Connection refused" in str(exc) or "Failed to establish a new connection" in str(exc)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (``None`` when absent; 1 s when not a number)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return 1.0


def _short(exc) -> str:
    text = str(exc)
    for marker in ("Connection refused", "Connection reset by peer", "RemoteDisconnected",
                   "Connection aborted", "timed out", "Name or service not known"):
        if marker in text:
            return marker
    return type(exc).__name__


def _strip_html(text: str) -> str:
    import re

    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text or "")).strip()


def _hint(status: int, code: str | None, message: str) -> str | None:
    if status == 401:
        return "No credentials were accepted: run `databricks auth login` or check the profile."
    if status == 403 and "DBFS root" in message:
        return ("This workspace has no DBFS root. Upload to a Unity Catalog volume instead: "
                "--code-location /Volumes/<catalog>/<schema>/<volume>/mlrun_magic")
    if status == 403:
        return ("The credentials were refused or lack the permission: check the token or "
                "profile, and your rights on the target.")
    if code == "INVALID_STATE" and "jobs created" in message:
        return "The workspace's hourly job-creation quota is used up; try again later."
    return None
