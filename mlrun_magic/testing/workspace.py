"""The :class:`Workspace`: a loopback Databricks workspace you can start, break and inspect."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlrun_magic.testing.admin import Admin
from mlrun_magic.testing.auth import Auth
from mlrun_magic.testing.catalog import Catalog
from mlrun_magic.testing.compute import Compute
from mlrun_magic.testing.compute_data import CLOUDS
from mlrun_magic.testing.dbfs import Dbfs
from mlrun_magic.testing.driver import kill_group
from mlrun_magic.testing.faults import FaultBook, parse_rule
from mlrun_magic.testing.http import ApiError, Request, Route
from mlrun_magic.testing.inventory import Inventory
from mlrun_magic.testing.jobs import Jobs
from mlrun_magic.testing.mlflow_proxy import MlflowProxy
from mlrun_magic.testing.pages import Pages
from mlrun_magic.testing.paths import local_path
from mlrun_magic.testing.server import WorkspaceHTTPServer
from mlrun_magic.testing.storage import Storage


@dataclass
class Settings:
    """Knobs of the workspace; change them with :meth:`Workspace.configure`.

    ``pending_seconds``: how long each task stays PENDING ("Waiting for cluster").
    ``terminating_seconds``: how long a finished task stays TERMINATING.
    ``oauth_token_ttl``: lifetime of OAuth M2M tokens (seconds; short values exercise refresh).
    ``dbfs_root_disabled``: DBFS answers 403 PERMISSION_DENIED "DBFS root is disabled".
    ``dbfs_handle_ttl``: idle seconds before a ``dbfs/create`` handle expires.
    ``max_log_bytes``: ``runs/get-output`` returns the last this-many bytes of logs.
    ``html_auth_errors``: answer a bad token with the old Jetty HTML 403 page.
    ``require_experiment_parent``: an MLflow experiment's parent folder must exist.
    ``cloud``: ``azure``, ``aws`` or ``gcp``: which node types ``list-node-types`` lists.
    """

    pending_seconds: float = 1.0
    terminating_seconds: float = 0.5
    oauth_token_ttl: float = 3600.0
    dbfs_root_disabled: bool = False
    dbfs_handle_ttl: float = 600.0
    max_log_bytes: int = 5 * 1024 * 1024
    html_auth_errors: bool = False
    require_experiment_parent: bool = True
    cloud: str = "azure"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class Workspace(Inventory):
    """A loopback Databricks workspace on ``http://127.0.0.1:<port>``.

    Use it as a context manager (``with Workspace() as ws:``) or call :meth:`start` and
    :meth:`stop`. ``host`` and ``token`` are what a client needs (``env()`` gives them as
    ``DATABRICKS_HOST``/``DATABRICKS_TOKEN``); ``client_id``/``client_secret`` work with OAuth
    M2M. Without ``mlflow_url`` it starts its own MLflow tracking server.

    Args:
        root: folder for stored files, driver logs and the MLflow server (a temporary folder
            removed on :meth:`stop` when omitted).
        port: TCP port on 127.0.0.1 (a free one when 0).
        mlflow_url: an MLflow tracking server to forward ``/api/2.0/mlflow/*`` to.
        token, client_id, client_secret: fixed credentials instead of generated ones.
        user_name: the user ``scim/v2/Me`` answers with (``/Users/<user_name>`` exists).
        workspace_id: the ``?o=`` id in URLs and the ``X-Databricks-Org-Id`` header.
        first_run_id: the first job-run id it hands out (task runs take ids from the same
            count); two workspaces with different ones never show the same run id.
        **settings: initial :class:`Settings` values; :meth:`reset` returns to them.
    """

    def __init__(self, root: str | Path | None = None, *, port: int = 0,
                 mlflow_url: str | None = None, token: str | None = None,
                 client_id: str | None = None, client_secret: str | None = None,
                 user_name: str = "tester@example.com", workspace_id: int = 1234567890123456,
                 first_run_id: int = 731_000_000_001, **settings: Any) -> None:
        self._own_root = root is None
        self.root = Path(root or tempfile.mkdtemp(prefix="mlrun-magic-workspace-"))
        self.storage_root = self.root / "storage"
        self.port = port
        self.mlflow_url = mlflow_url.rstrip("/") if mlflow_url else None
        self.user_name = user_name
        self.workspace_id = workspace_id
        self.first_run_id = first_run_id
        self._initial_settings = Settings(**settings)
        self.settings = dataclasses.replace(self._initial_settings)
        self.initial_token, self.initial_client_id = token, client_id
        self.initial_client_secret = client_secret
        self.lock = threading.RLock()
        self.processes: set = set()
        self.faults = FaultBook()
        self.auth = Auth(self)
        self.storage = Storage(self)
        self.dbfs = Dbfs(self)
        self.jobs = Jobs(self)
        self.compute, self.catalog = Compute(self), Catalog(self)
        self.proxy = MlflowProxy(self)
        self.admin = Admin(self)
        self.pages = Pages(self)
        self._routes: list[Route] = [*self.admin.routes(), *self.pages.routes(), *self.auth.routes(),
                                     *self.storage.routes(), *self.dbfs.routes(),
                                     *self.jobs.routes(), *self.compute.routes(),
                                     *self.catalog.routes(), *self.proxy.routes()]
        self._http: WorkspaceHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._mlflow = None

    # -- credentials ----------------------------------------------------------------------

    @property
    def host(self) -> str:
        """``http://127.0.0.1:<port>``, what ``DATABRICKS_HOST`` should be."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def token(self) -> str:
        """The personal access token this workspace accepts."""
        return self.auth.pat

    @property
    def client_id(self) -> str:
        return self.auth.client_id

    @property
    def client_secret(self) -> str:
        return self.auth.client_secret

    def env(self) -> dict[str, str]:
        """``DATABRICKS_HOST`` and ``DATABRICKS_TOKEN`` for this workspace."""
        return {"DATABRICKS_HOST": self.host, "DATABRICKS_TOKEN": self.token}

    def issue_token(self, ttl: float | None = None, permission_denied: bool = False) -> str:
        """Another accepted token, valid for ``ttl`` seconds (forever when None)."""
        return self.auth.issue("pat", ttl, permission_denied)

    def expire_token(self, token: str) -> None:
        """Make ``token`` expired: it now gets the 403 "Invalid access token."."""
        self.auth.expire(token)

    def revoke_token(self, token: str) -> None:
        self.auth.revoke(token)

    # -- life ----------------------------------------------------------------------------

    def start(self) -> "Workspace":
        """Start serving (and the MLflow server, when none was given); returns self."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.storage.reset()
        if self.mlflow_url is None:
            from mlrun_magic.testing.mlflow_server import MlflowServer

            self._mlflow = MlflowServer(self.root / "mlflow").launch()
            self.mlflow_url = self._mlflow.url
        self._http = WorkspaceHTTPServer(("127.0.0.1", self.port), self)
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="loopback-workspace", daemon=True)
        self._thread.start()
        if self._mlflow is not None:
            try:
                self._mlflow.wait_ready()
            except Exception:
                self.stop()
                raise
        return self

    def stop(self) -> None:
        """Stop serving, end every driver process and the MLflow server this started."""
        self.jobs.reset()
        for proc in list(self.processes):
            kill_group(proc)
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._mlflow is not None:
            self._mlflow.stop()
            self._mlflow = None
            self.mlflow_url = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "Workspace":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def reset(self) -> None:
        """Back to a fresh workspace: no runs (drivers are killed), faults, logged requests,
        issued tokens, stored files, clusters, policies or volumes; initial settings. MLflow
        data is kept."""
        self.faults.clear()
        self.jobs.reset()
        self.dbfs.reset()
        self.auth.reset()
        self.storage.reset()
        self.compute.reset()
        self.catalog.reset()
        self.settings = dataclasses.replace(self._initial_settings)
        self.faults.reset()

    def configure(self, **changes: Any) -> Settings:
        """Change settings (see :class:`Settings`); unknown names are an error."""
        known = {f.name for f in dataclasses.fields(Settings)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           f"Unknown setting(s) {', '.join(unknown)}; known: "
                           f"{', '.join(sorted(known))}")
        if changes.get("cloud", self.settings.cloud) not in CLOUDS:
            raise ApiError(400, "INVALID_PARAMETER_VALUE",
                           f"Unknown cloud {changes['cloud']!r}; use {', '.join(CLOUDS)}")
        self.settings = dataclasses.replace(self.settings, **changes)
        return self.settings

    # -- faults and inspection -------------------------------------------------------------

    def add_fault(self, path: str = "*", action: str = "status", *, method: str = "*",
                  times: int = 1, status: int = 503, body: Any = None,
                  retry_after: str | float | None = None, seconds: float = 0.0,
                  offset: int = 0) -> dict:
        """Add a fault rule (see :mod:`mlrun_magic.testing.faults`); returns it as a dict."""
        spec = {"path": path, "action": action, "method": method, "times": times,
                "status": status, "body": body, "retry_after": retry_after,
                "seconds": seconds, "offset": offset}
        rule = self.faults.add(parse_rule(spec))
        return dataclasses.asdict(rule)

    def clear_faults(self) -> None:
        self.faults.clear()

    def requests(self, method: str | None = None, path: str | None = None) -> list[dict]:
        """Logged requests (tokens masked), optionally filtered by method and path glob."""
        return self.faults.requests(method, path)

    def runs(self) -> list[dict]:
        """Every job run: ids, state, the exact submitted JSON, task commands and exit codes."""
        return self.jobs.admin_runs()

    def run(self, run_id: int) -> dict:
        """One job run as :meth:`runs` shows it."""
        for item in self.runs():
            if item["run_id"] == run_id:
                return item
        raise KeyError(f"No job run {run_id}")

    def wait_for_run(self, run_id: int, timeout: float = 60.0) -> dict:
        """Wait until job run ``run_id`` is terminal; returns it as :meth:`run` does."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.run(run_id)
            if item["state"]["life_cycle_state"] in ("TERMINATED", "SKIPPED", "INTERNAL_ERROR"):
                return item
            if time.monotonic() > deadline:
                raise TimeoutError(f"Job run {run_id} is still {item['state']} after "
                                   f"{timeout} s")
            time.sleep(0.05)

    def local_path(self, path: str) -> Path:
        """Where a ``/Volumes``, ``/Workspace`` (``/Users``...) or DBFS path is stored here."""
        return local_path(path, self.storage_root)

    # -- plumbing used by the server ---------------------------------------------------------

    def router(self, req: Request) -> Route:
        allowed = False
        for candidate in self._routes:
            match = candidate.pattern.match(req.path)
            if match is None:
                continue
            if req.method not in candidate.methods:
                allowed = True
                continue
            req.match = match
            return candidate
        if allowed:
            raise ApiError(405, "ENDPOINT_NOT_FOUND",
                           f"{req.method} is not allowed for {req.path}")
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"No API found for '{req.method} {req.path}'")

    def log_error(self, text: str) -> None:
        try:
            with open(self.root / "server-errors.log", "a") as log:
                log.write(text + "\n")
        except OSError:
            pass
