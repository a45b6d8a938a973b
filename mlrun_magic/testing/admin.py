"""The admin API (``/__admin/*``, no auth) for tests and notebooks, and the small HTML pages
that make the workspace's own links (``run_page_url``) resolvable.

- ``POST /__admin/faults``: add a fault rule (or a list); ``GET`` lists them; ``DELETE`` clears.
- ``GET /__admin/requests[?method=&path=<glob>]``: the request log, tokens masked.
- ``GET /__admin/runs``: every job run, its state and the exact submitted JSON.
- ``POST /__admin/reset``: forget runs, faults, requests, issued tokens and stored files.
- ``GET|POST /__admin/settings``: read or change settings (``POST`` takes a JSON object).
- ``POST /__admin/tokens``: issue a token (``{"ttl": s, "permission_denied": bool}``);
  ``POST /__admin/tokens/expire`` and ``/revoke`` with ``{"token": ...}``.
"""

from __future__ import annotations

import html

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
            route("GET", r"/", self.home, auth=False),
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

    def home(self, req: Request) -> Response:
        rows = "".join(
            f"<tr id='run-{r['run_id']}'><td><a href='{html.escape(r['run_page_url'])}'>"
            f"{r['run_id']}</a></td><td>{html.escape(r['run_name'])}</td>"
            f"<td>{r['state']['life_cycle_state']}</td>"
            f"<td>{r['state'].get('result_state', '')}</td></tr>"
            for r in reversed(self.ws.jobs.admin_runs()))
        page = (f"<!doctype html><title>Loopback Databricks workspace</title>"
                f"<h1>Loopback Databricks workspace {self.ws.workspace_id}</h1>"
                f"<p>A test stand-in (mlrun_magic.testing), not Databricks. MLflow: "
                f"<a href='{html.escape(self.ws.mlflow_url or '')}'>"
                f"{html.escape(self.ws.mlflow_url or 'none')}</a></p>"
                f"<table><tr><th>run</th><th>name</th><th>life cycle</th><th>result</th></tr>"
                f"{rows}</table><script>var m=location.hash.match(/run\\/(\\d+)/);"
                f"if(m){{var e=document.getElementById('run-'+m[1]);"
                f"if(e)e.style.background='#ffd';}}</script>")
        return Response(200, page.encode(), {"Content-Type": "text/html; charset=utf-8"})
