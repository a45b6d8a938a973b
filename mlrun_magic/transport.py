"""One ``requests`` session to one server, and the one retry policy of mlrun_magic.

Both the Databricks workspace client and the MLflow tracking client send every request
through :meth:`HttpClient.call`. Each request has a timeout, and the whole call (retries
included) an overall deadline: a retry that would end after it is not made. What is retried,
with exponential backoff and jitter:

* a connection that never opened (nothing was sent), always;
* a throttled request (429, ``REQUEST_LIMIT_EXCEEDED``: refused, not done), always,
  after ``Retry-After`` when the server gives one;
* 500, 502, 503, 504, ``TEMPORARILY_UNAVAILABLE`` and the transient messages Databricks
  sends, read timeouts and connections broken after the request was sent **only** when the
  request is safe to repeat: GET, HEAD, PUT, DELETE, and a POST the caller marks
  ``idempotent`` (a request body read from a file is rewound first; one that cannot be
  rewound is never repeated).

Failures are :class:`ApiError` (or the subclass a client's ``error_class`` chooses) with the
HTTP status, the ``error_code``, the message and, for a failure without an answer,
``never_sent`` (surely not done) or ``no_answer`` (it may have been done).
"""

from __future__ import annotations

import logging
import random
import re
import time
from typing import Any

from mlrun_magic.errors import MlrunMagicError

logger = logging.getLogger("mlrun_magic.transport")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
#: Messages Databricks sends with errors that go away on their own (from the SDKs).
TRANSIENT_MESSAGES = ("ClusterNotReadyException", "UnknownWorkerEnvironmentException",
                      "does not have any associated worker environments",
                      "There is no worker environment with id", "Unknown worker environment",
                      "Please try again later or try a faster operation.",
                      "RPC token bucket limit has been exceeded")
#: Server errors after which repeating an idempotent request is safe and often works.
TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
THROTTLED_CODES = frozenset({"REQUEST_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED"})


class ApiError(MlrunMagicError):
    """A REST call failed. ``error_code`` is always a string (Databricks' 403s send a number);
    ``status_code`` is ``None`` when no answer came (then ``reason`` says why)."""

    title = "API error"

    def __init__(self, message: str, *, status_code: int | None = None,
                 error_code: str | None = None, method: str = "", path: str = "",
                 hint: str | None = None):
        where = f"{method} {path}: " if method else ""
        code = f" {error_code}" if error_code else ""
        super().__init__(f"{where}HTTP {status_code}{code}: {message}", hint=hint)
        self.status_code = status_code
        self.error_code = error_code
        self.api_message = message
        self.method = method
        self.path = path
        #: True when the request never reached the server (so it was surely not done).
        self.never_sent = False
        #: True when the request was sent and no answer came (it may have been done).
        self.no_answer = False
        self.timed_out = False
        self.reason = ""
        self.retry_after: float | None = None
        #: The attempts made when the deadline stopped the retries (else ``None``).
        self.gave_up_after: int | None = None

    @property
    def throttled(self) -> bool:
        return self.status_code == 429 or self.error_code in THROTTLED_CODES

    @property
    def transient(self) -> bool:
        return (self.status_code in TRANSIENT_STATUSES
                or self.error_code == "TEMPORARILY_UNAVAILABLE"
                or any(m in self.api_message for m in TRANSIENT_MESSAGES))


class TransportError(ApiError):
    """The server could not be reached, or the connection broke, and retrying gave up."""


def _config_errors():
    """``requests`` errors that mean the host is unusable as written (never retried)."""
    import requests

    return (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema, requests.exceptions.InvalidHeader)


def _shown(url: str) -> str:
    from mlrun_magic.redact import redact_url

    return redact_url(url)


class HttpClient:
    """REST calls to one server over one session. ``call()`` returns parsed JSON (or the
    response); see the module for the retry rules.

    ``auth_headers`` (a callable) is asked for fresh headers before every attempt, so
    refreshed OAuth tokens are used; a ``session`` may carry its own auth instead."""

    #: The exception class for an error answer: ``error_class(status, error_code)``.
    error_class = staticmethod(lambda status, code: ApiError)
    transport_error = TransportError
    #: What the server is, in messages ("the workspace address ... cannot be used").
    server_name = "server"
    #: What a failure to connect tells the user to check.
    unreachable_hint = "Check the host and your network."
    bad_host_hint: str | None = None

    def __init__(self, base_url: str, *, auth_headers=None, session=None,
                 user_agent: str | None = None, timeout: float = 60.0, deadline: float = 300.0,
                 backoff: float = 1.0, max_backoff: float = 10.0):
        import requests

        self.host = base_url.rstrip("/")
        self.auth_headers = auth_headers
        self.timeout, self.deadline = timeout, deadline
        self.backoff, self.max_backoff = backoff, max_backoff
        self.session = session or requests.Session()
        if user_agent:
            self.session.headers["User-Agent"] = user_agent
        self.sleep = time.sleep

    def call(self, method: str, path: str, *, json: Any = None, params: dict | None = None,
             data=None, headers: dict | None = None, idempotent: bool | None = None,
             retry: bool = True, raw: bool = False, stream: bool = False,
             timeout: float | None = None, deadline: float | None = None):
        """Send one request, retrying what is safe (``retry=False``: one attempt); raise an
        :class:`ApiError` on failure.

        ``raw=True`` returns the ``requests.Response`` (uploads, downloads, HEAD); otherwise
        the JSON body as a dict. ``data`` may be a seekable file: it is rewound before a retry.
        """
        method = method.upper()
        idempotent = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        deadline_at = time.monotonic() + (deadline or self.deadline)
        rewind = data.tell() if hasattr(data, "seek") and hasattr(data, "tell") else None
        repeatable = idempotent and (data is None or rewind is not None)
        attempt = 0
        while True:
            attempt += 1
            if rewind is not None:
                data.seek(rewind)
            resp, error = self._attempt(method, path, json, params, data, headers, stream,
                                        timeout or self.timeout)
            if error is None:
                return resp if raw else self._json(resp, method, path)
            safe = error.throttled or error.never_sent or (
                repeatable and (error.no_answer or error.transient))
            if not retry or not safe:
                raise error
            delay = error.retry_after if error.retry_after is not None \
                else self.retry_delay(attempt)
            if time.monotonic() + delay > deadline_at:
                error.gave_up_after = attempt
                error.message += f" (gave up after {attempt} attempts)"
                raise error
            logger.info("%s %s: %s; retrying in %.1f s (attempt %d)", method, path,
                        error.api_message, delay, attempt + 1)
            self.sleep(delay)

    def _attempt(self, method, path, json, params, data, headers, stream, timeout):
        """``(response, None)`` for a 2xx/3xx answer, else ``(None, the error)``."""
        import requests

        try:
            all_headers = self.auth_headers() if self.auth_headers else {}
            all_headers.update(headers or {})
            resp = self.session.request(method, f"{self.host}{path}", json=json,
                                        params=_query(params), data=data, headers=all_headers,
                                        stream=stream, timeout=(min(10.0, timeout), timeout))
        except requests.ConnectionError as exc:
            never_sent = connect_failed(exc)
            return None, self._no_answer(
                f"cannot reach {_shown(self.host)}: {_short(exc)}" if never_sent else
                f"the connection broke before an answer came: {_short(exc)}",
                method, path, reason=_short(exc), never_sent=never_sent,
                hint=self.unreachable_hint if never_sent else None)
        except requests.Timeout as exc:
            return None, self._no_answer(f"no answer within {timeout:.0f} s "
                                         f"({type(exc).__name__})", method, path,
                                         reason=type(exc).__name__, timed_out=True)
        except _config_errors() as exc:
            raise self.transport_error(
                f"the {self.server_name} address {_shown(self.host)} cannot be used "
                f"({type(exc).__name__})",
                method=method, path=path, hint=self.bad_host_hint) from None
        except requests.RequestException as exc:
            # The answer was cut while its body was read (ChunkedEncodingError...):
            # the request was sent, so it may have been done.
            return None, self._no_answer(f"the connection broke while the answer was read "
                                         f"({type(exc).__name__})", method, path,
                                         reason=type(exc).__name__)
        if resp.status_code < 400:
            return resp, None
        return None, self.error_from(resp, method, path)

    def _no_answer(self, message, method, path, *, reason, never_sent=False, timed_out=False,
                   hint=None) -> ApiError:
        error = self.transport_error(message, method=method, path=path, hint=hint)
        error.never_sent, error.no_answer = never_sent, not never_sent
        error.timed_out, error.reason = timed_out, reason
        return error

    def retry_delay(self, attempt: int) -> float:
        """Exponential backoff with jitter before retry number ``attempt``."""
        ceiling = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def error_from(self, resp, method: str, path: str) -> ApiError:
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
                       or strip_html(resp.text)[:300] or resp.reason or "")
        message = without_sent_credentials(message, resp)
        cls = self.error_class(resp.status_code, code)
        error = cls(message, status_code=resp.status_code, error_code=code, method=method,
                    path=path, hint=self.hint(resp.status_code, code, message))
        error.retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        return error

    #: What to do about an error answer: ``hint(status, error_code, message)`` or ``None``.
    hint = staticmethod(lambda status, code, message: None)

    def _json(self, resp, method: str, path: str) -> dict:
        if not resp.content:
            return {}
        try:
            body = resp.json()
        except ValueError:
            # A private-link workspace reached from outside answers 200 with a login page.
            raise self.error_class(resp.status_code, None)(
                f"expected JSON but got {resp.headers.get('Content-Type', 'no content type')}: "
                f"{strip_html(resp.text)[:200]}", status_code=resp.status_code, method=method,
                path=path, hint="Is the host right, and reachable from here (private link, "
                                "proxy)?") from None
        return body if isinstance(body, dict) else {"value": body}


def without_sent_credentials(text: str, resp) -> str:
    """``text`` (what a server said) with the credentials this request sent masked: a server
    that echoes the bearer token back in its error must not put it in our messages."""
    sent = getattr(getattr(resp, "request", None), "headers", None) or {}
    for name, value in sent.items():
        if "authorization" in name.lower() or "token" in name.lower():
            secret = str(value).split(" ", 1)[-1].strip()
            if len(secret) >= 8:
                text = text.replace(secret, "***")
    return text


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


def strip_html(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text or "")).strip()
