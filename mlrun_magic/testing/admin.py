"""The admin API (``/__admin/*``, no auth) for tests and notebooks (the HTML pages behind the
workspace's own links are in :mod:`mlrun_magic.testing.pages`).

- ``POST /__admin/faults``: add a fault rule (or a list); ``GET`` lists them; ``DELETE`` clears.
- ``GET /__admin/requests[?method=&path=<glob>]``: the request log, tokens masked.
- ``GET /__admin/runs``: every job run, its state and the exact submitted JSON.
- ``POST /__admin/reset``: forget runs, faults, requests, issued tokens and stored files.
- ``GET|POST /__admin/settings``: read or change settings (``POST`` takes a JSON object).
- ``POST /__admin/tokens``: issue a token (``{"ttl": s, "permission_denied": bool}``);
  ``POST /__admin/tokens/expire`` and ``/revoke`` with ``{"token": ...}``.
- ``GET|POST /__admin/clusters``, ``/__admin/policies``: list, or add one (the JSON object
  takes the arguments of ``Workspace.add_cluster``/``add_policy``).
- ``GET|POST /__admin/catalogs``: the catalogs (null while open), or set them
  (``{"catalogs": ...}`` as ``Workspace.set_catalogs``); ``POST /__admin/volumes`` adds one
  (``{"full_name": ..., "volume_type": ...}``).
"""

from __future__ import annotations

from mlrun_magic.testing.faults import parse_rule
from mlrun_magic.testing.http import Request, Response, bad_request, required, route


class Admin:
    """Routes of the admin API."""

    def __init__(self, workspace) -> None:
        self.ws = workspace

    def routes(self) -> list:
        return [
            route("POST|GET|DELETE", r"/__admin/faults", self.faults, auth=False),
            route("GET", r"/__admin/requests", self.requests, auth=False),
            route("GET", r"/__admin/runs", self.runs, auth=False),
            route("POST", r"/__admin/reset", self.reset, auth=False),
            route("GET|POST", r"/__admin/settings", self.settings, auth=False),
            route("POST", r"/__admin/tokens(?:/(?P<action>expire|revoke))?", self.tokens,
                  auth=False),
            route("GET|POST", r"/__admin/clusters", self.clusters, auth=False),
            route("GET|POST", r"/__admin/policies", self.policies, auth=False),
            route("GET|POST", r"/__admin/catalogs", self.catalogs, auth=False),
            route("POST", r"/__admin/volumes", self.volumes, auth=False),
        ]

    def faults(self, req: Request) -> Response:
        book = self.ws.faults
        if req.method == "DELETE":
            book.clear()
            return Response.json({})
        if req.method == "POST":
            import json

            try:
                spec = json.loads(req.body() or b"{}")
            except ValueError:
                raise bad_request("The fault is not valid JSON.") from None
            for item in spec if isinstance(spec, list) else [spec]:
                book.add(parse_rule(item))
        return Response.json({"faults": book.describe()})

    def requests(self, req: Request) -> Response:
        entries = self.ws.faults.requests(req.query.get("method"), req.query.get("path"))
        return Response.json({"requests": entries})

    def runs(self, req: Request) -> Response:
        return Response.json({"runs": self.ws.jobs.admin_runs()})

    def reset(self, req: Request) -> Response:
        self.ws.reset()
        return Response.json({})

    def settings(self, req: Request) -> Response:
        if req.method == "POST":
            self.ws.configure(**req.json())
        return Response.json(self.ws.settings.as_dict())

    def tokens(self, req: Request) -> Response:
        body = req.json()
        action = req.match["action"]
        if action is None:
            ttl = body.get("ttl")
            token = self.ws.auth.issue("pat", None if ttl is None else float(ttl),
                                       bool(body.get("permission_denied")))
            return Response.json({"token": token})
        token = required(body, "token")
        (self.ws.auth.expire if action == "expire" else self.ws.auth.revoke)(token)
        return Response.json({})

    def clusters(self, req: Request) -> Response:
        if req.method == "POST":
            return _call(self.ws.add_cluster, req)
        return Response.json({"clusters": self.ws.clusters()})

    def policies(self, req: Request) -> Response:
        if req.method == "POST":
            return _call(self.ws.add_policy, req)
        return Response.json({"policies": self.ws.policies()})

    def catalogs(self, req: Request) -> Response:
        if req.method == "POST":
            self.ws.set_catalogs(req.json().get("catalogs"))
        with self.ws.lock:
            catalogs = self.ws.catalog.catalogs
            shape = None if catalogs is None else {
                c: {s: sorted(v) for s, v in schemas.items()} for c, schemas in catalogs.items()}
        return Response.json({"catalogs": shape})

    def volumes(self, req: Request) -> Response:
        return _call(self.ws.add_volume, req)


def _call(add, req: Request) -> Response:
    """``add(**body)``; a missing or misspelt argument is a 400, not a 500."""
    try:
        return Response.json(add(**req.json()))
    except TypeError as exc:
        raise bad_request(f"Invalid fields: {exc}") from None
