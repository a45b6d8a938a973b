"""MLflow tracking: ``/api/2.0/mlflow/*`` (and the other MLflow REST prefixes) forwarded to a
real MLflow tracking server, with the rules a Databricks workspace adds applied in front:

- experiment names must be absolute workspace paths (``/Users/<me>/x``, ``/Shared/x``), else
  400 ``INVALID_PARAMETER_VALUE``; with ``settings.require_experiment_parent`` the parent
  folder must exist in the workspace (404 ``RESOURCE_DOES_NOT_EXIST``);
- ``runs/log-batch``: at most 1000 metrics+params+tags, 1000 metrics, 100 params, 100 tags and
  a 1 MB request, else 400 ``INVALID_PARAMETER_VALUE``.

Links of the Databricks UI (``/ml/experiments/<id>[/runs/<run>]``) redirect to MLflow's UI.
"""

from __future__ import annotations

import threading

from mlrun_magic.testing.http import ApiError, Request, Response, bad_request, not_found, route
from mlrun_magic.testing.paths import PathError, local_path

NAME_RULE = "An experiment name must be an absolute path within the Databricks workspace"
_HOP_HEADERS = {"host", "authorization", "content-length", "connection", "keep-alive",
                "transfer-encoding", "te", "upgrade", "accept-encoding"}


class MlflowProxy:
    """Forwards MLflow REST calls to ``workspace.mlflow_url``."""

    def __init__(self, workspace) -> None:
        self.ws = workspace
        self._local = threading.local()

    def routes(self) -> list:
        prefix = r"/(?:api|ajax-api)/(?:2\.0|3\.0)/(?:mlflow|mlflow-artifacts)/"
        return [
            route("POST", r"/(?:api|ajax-api)/2\.0/mlflow/experiments/create", self.create),
            route("POST", r"/(?:api|ajax-api)/2\.0/mlflow/experiments/update", self.update),
            route("POST", r"/(?:api|ajax-api)/2\.0/mlflow/runs/log-batch", self.log_batch),
            route("GET|POST|PUT|PATCH|DELETE|HEAD", prefix + r".*", self.forward),
            route("GET", r"/ml/experiments/(?P<exp>[^/]+)(?:/runs/(?P<run>[^/]+))?/?",
                  self.ui_link, auth=False),
        ]

    def _session(self):
        import requests

        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def forward(self, req: Request, body: bytes | None = None) -> Response:
        import requests

        if not self.ws.mlflow_url:
            raise ApiError(503, "TEMPORARILY_UNAVAILABLE",
                           "This loopback workspace has no MLflow tracking server.")
        payload = req.body() if body is None else body
        headers = {k: v for k, v in req.headers.items() if k.lower() not in _HOP_HEADERS}
        url = self.ws.mlflow_url + req.path
        try:
            answer = self._session().request(req.method, url, params=req.query, data=payload,
                                             headers=headers, timeout=120,
                                             allow_redirects=False)
        except requests.RequestException as exc:
            raise ApiError(503, "TEMPORARILY_UNAVAILABLE",
                           f"The MLflow tracking server did not answer: {exc}") from None
        keep = {k: v for k, v in answer.headers.items()
                if k.lower() in ("content-type", "location", "retry-after")}
        return Response(answer.status_code, answer.content, keep)

    def _check_name(self, name) -> None:
        if not isinstance(name, str) or not name.startswith("/"):
            raise bad_request(f"{NAME_RULE}. Got {name!r}.")
        if name.startswith("/Workspace/"):
            # Databricks stores experiments under their /Users or /Shared path.
            return
        if self.ws.settings.require_experiment_parent:
            parent = name.rstrip("/").rsplit("/", 1)[0] or "/"
            try:
                folder = local_path("/Workspace" + parent, self.ws.storage_root)
            except PathError as exc:
                raise bad_request(str(exc)) from None
            if not folder.is_dir():
                raise not_found(f"Parent directory {parent} does not exist.")

    def create(self, req: Request) -> Response:
        self._check_name(req.json().get("name"))
        return self.forward(req)

    def update(self, req: Request) -> Response:
        if "new_name" in req.json():
            self._check_name(req.json()["new_name"])
        return self.forward(req)

    def log_batch(self, req: Request) -> Response:
        if req.length > 1_000_000:
            raise bad_request(f"The log-batch request is {req.length} bytes; the limit is "
                              "1 MB.")
        body = req.json()
        counts = {k: len(body.get(k) or []) for k in ("metrics", "params", "tags")}
        limits = {"metrics": 1000, "params": 100, "tags": 100}
        for kind, limit in limits.items():
            if counts[kind] > limit:
                raise bad_request(f"A batch logging request can contain at most {limit} "
                                  f"{kind}. Got {counts[kind]} {kind}.")
        if sum(counts.values()) > 1000:
            raise bad_request("A batch logging request can contain at most 1000 metrics, "
                              f"params and tags in total. Got {sum(counts.values())}.")
        return self.forward(req)

    def ui_link(self, req: Request) -> Response:
        target = f"{self.ws.mlflow_url}/#/experiments/{req.match['exp']}"
        if req.match["run"]:
            target += f"/runs/{req.match['run']}"
        return Response(302, b"", {"Location": target})
