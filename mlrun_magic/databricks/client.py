"""The one session to a Databricks workspace: jobs, storage, identity and its MLflow.

:class:`DatabricksClient` is an :class:`mlrun_magic.transport.HttpClient`: every call has a
per-request timeout and an overall deadline, and only what is safe is retried (see
:mod:`mlrun_magic.transport`): ``runs/submit`` always carries an ``idempotency_token``, so a
retry after a lost answer returns the same run instead of starting a second one.

Errors come back as :mod:`mlrun_magic.databricks.errors` exceptions carrying the HTTP
status, the ``error_code`` and the message. Authentication headers are fetched per request
from the SDK (so OAuth tokens refresh) and never logged.

Who the caller is (``scim/v2/Me``) is asked once per process for each workspace and
credentials (:meth:`DatabricksClient.me`).
"""

from __future__ import annotations

import logging
import threading

from mlrun_magic.databricks.auth import WorkspaceAuth
from mlrun_magic.databricks.errors import TransportError, error_class
from mlrun_magic.transport import HttpClient

logger = logging.getLogger("mlrun_magic.databricks")

ME = "/api/2.0/preview/scim/v2/Me"
#: ``(user name, workspace id)`` by :meth:`WorkspaceAuth.identity`: one lookup per process.
_IDENTITIES: dict[str, tuple[str, str | None]] = {}
_IDENTITY_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_LOCK = threading.Lock()


class DatabricksClient(HttpClient):
    """REST calls to one workspace. ``call()`` returns parsed JSON (or the response)."""

    error_class = staticmethod(error_class)
    transport_error = TransportError
    server_name = "workspace"
    unreachable_hint = "Check the workspace host and your network."
    bad_host_hint = ("Check DATABRICKS_HOST or the profile's host: it must look like "
                     "https://<workspace>.cloud.databricks.com")

    def __init__(self, workspace: WorkspaceAuth, *, timeout: float = 60.0,
                 deadline: float = 300.0, backoff: float = 1.0, max_backoff: float = 10.0,
                 session=None):
        from mlrun_magic.version import __version__

        super().__init__(workspace.host, auth_headers=workspace.auth_headers, session=session,
                         user_agent=f"mlrun-magic/{__version__} auth/{workspace.auth_type}",
                         timeout=timeout, deadline=deadline, backoff=backoff,
                         max_backoff=max_backoff)
        self.workspace = workspace

    # -- small helpers used across the backend -------------------------------------------
    def get(self, path: str, **params) -> dict:
        return self.call("GET", path, params=params)

    def post(self, path: str, body: dict | None = None, *, idempotent: bool = False) -> dict:
        return self.call("POST", path, json=body or {}, idempotent=idempotent)

    def me(self) -> tuple[str, str | None]:
        """``(user name, workspace id)`` of the caller, asked once per process for these
        credentials on this workspace."""
        key = self.workspace.identity()
        with _LOCKS_LOCK:
            lock = _IDENTITY_LOCKS.setdefault(key, threading.Lock())
        with lock:
            if key not in _IDENTITIES:
                resp = self.call("GET", ME, raw=True)
                user = self._json(resp, "GET", ME).get("userName", "")
                _IDENTITIES[key] = (user, resp.headers.get("X-Databricks-Org-Id"))
        return _IDENTITIES[key]

    @staticmethod
    def hint(status: int, code: str | None, message: str) -> str | None:
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
