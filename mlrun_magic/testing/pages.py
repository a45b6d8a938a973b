"""The workspace's HTML pages, so the links it hands out open something a person can read.

- ``GET /``: every job run of this workspace. The job-run URL Databricks gives
  (``/?o=<workspace id>#job/<job id>/run/<run id>``) also lands here, because the browser never
  sends the fragment; a small script then replaces the page with that run's page.
- ``GET /loopback/runs/<run id>``: one job run: its state, tasks (what each runs, with its
  parameters and cluster), start and end times, duration and the driver's output. An unknown
  run gets a page that says so (404).

Everything shown is HTML-escaped, and no secret is shown: the workspace's own tokens are
masked wherever they appear, and so are secret-looking values (``mlrun_magic.redact``).
"""

from __future__ import annotations

import html
import json
import re
import time
from typing import Any

from mlrun_magic.redact import redact_secrets, scrub
from mlrun_magic.testing.http import Request, Response, route

#: What the script on ``/`` looks for in ``location.hash`` (kept in one place for its test).
RUN_FRAGMENT = r"^#job/(\d+)/run/(\d+)$"
LOG_TAIL_BYTES = 64 * 1024
_STYLE = ("<style>body{font-family:sans-serif;margin:2em;max-width:70em}"
          "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;"
          "text-align:left;vertical-align:top}pre{background:#f6f6f6;padding:.6em;"
          "overflow-x:auto;white-space:pre-wrap}</style>")


class Pages:
    """The HTML pages of one workspace."""

    def __init__(self, workspace) -> None:
        self.ws = workspace

    def routes(self) -> list:
        return [route("GET", r"/", self.home, auth=False),
                route("GET", r"/loopback/runs/(?P<run_id>[^/]+)/?", self.run_page, auth=False)]

    def home(self, req: Request) -> Response:
        rows = "".join(
            f"<tr id='run-{r['run_id']}'><td><a href='/loopback/runs/{r['run_id']}'>"
            f"{r['run_id']}</a></td><td>{_e(r['run_name'])}</td>"
            f"<td>{_e(r['state']['life_cycle_state'])}</td>"
            f"<td>{_e(r['state'].get('result_state', ''))}</td></tr>"
            for r in reversed(self.ws.jobs.admin_runs()))
        mlflow = self.ws.mlflow_url or ""
        # The fragment of a job-run URL never reaches the server: the page follows it itself.
        script = (f"<script>var m=location.hash.match(new RegExp({json.dumps(RUN_FRAGMENT)}));"
                  f"if(m)location.replace('/loopback/runs/'+m[2]);</script>")
        body = (f"{script}<h1>Loopback Databricks workspace {self.ws.workspace_id}</h1>"
                f"<p>A test stand-in (mlrun_magic.testing), not Databricks. MLflow: "
                f"<a href='{_e(mlflow)}'>{_e(mlflow or 'none')}</a></p>"
                f"<table><tr><th>run</th><th>name</th><th>life cycle</th><th>result</th></tr>"
                f"{rows}</table>")
        return _page("Loopback Databricks workspace", body)

    def run_page(self, req: Request) -> Response:
        raw = req.match["run_id"]
        with self.ws.lock:
            run = self.ws.jobs.runs.get(int(raw)) if raw.isdigit() else None
            if run is None and raw.isdigit() and int(raw) in self.ws.jobs.task_runs:
                run = self.ws.jobs.task_runs[int(raw)][0]
            view = _RunView(run, self._mask) if run is not None else None
            body = view.render(self.ws) if view is not None else None
        if body is None:
            return _page(f"No run {raw}", f"<h1>No run {_e(raw)} in this workspace</h1>"
                         f"<p>This loopback workspace ({_e(self.ws.host)}) has no job run "
                         f"{_e(raw)}. A run exists only while the workspace that ran it "
                         f"serves: a new <code>make lab</code> or <code>make demo</code> is "
                         f"a new workspace.</p>{_back(self.ws)}", status=404)
        return _page(f"Job run {run.run_id}", body)

    def _mask(self, text: str) -> str:
        """``text`` with every token this workspace issued (and anything secret-looking)
        masked."""
        with self.ws.auth._lock:
            known = [*self.ws.auth.tokens, self.ws.auth.pat, self.ws.auth.client_secret]
        known += [r.token for r in self.ws.jobs.runs.values() if r.token]
        for token in sorted(set(filter(None, known)), key=len, reverse=True):
            text = text.replace(token, "***")
        return scrub(text)


class _RunView:
    """One job run rendered as HTML (call under the workspace lock)."""

    def __init__(self, run, mask) -> None:
        self.run, self.mask = run, mask

    def render(self, ws) -> str:
        run = self.run
        state = run.state
        parts = [f"<h1>Job run {run.run_id}: {self._e(run.run_name)}</h1>", _back(ws),
                 "<h2>State</h2>", _table([
                     ("Life cycle", state.life_cycle),
                     ("Result", state.result_state or "(not yet)"),
                     ("State message", state.state_message or "(none)"),
                     ("Job", str(run.job_id)),
                     ("Started", _when(state.start_time)),
                     ("Ended", _when(state.end_time) if state.end_time else "(still running)"),
                     ("Duration", _duration(state.durations()["run_duration"]))], self.mask)]
        for task in run.tasks:
            parts.append(self._task(task))
        return "".join(parts)

    def _task(self, task) -> str:
        spec = redact_secrets(task.spec)
        kind = task.task_type
        what = spec.get(kind) or {}
        params = what.get("parameters") or what.get("command") or []
        rows = [("Task key", task.task_key), ("Task run id", str(task.run_id)),
                ("Type", kind), ("Runs", what.get("python_file") or
                                 what.get("notebook_path") or json.dumps(what)),
                ("Life cycle", task.state.life_cycle),
                ("Result", task.state.result_state or "(not yet)"),
                ("State message", task.state.state_message or "(none)"),
                ("Started", _when(task.state.start_time)),
                ("Ended", _when(task.state.end_time) if task.state.end_time else "(not yet)"),
                ("Duration", _duration(task.state.durations()["run_duration"])),
                ("Cluster id", task.cluster_id or "(none yet)"),
                ("Exit code", "" if task.exit_code is None else str(task.exit_code))]
        compute = {k: spec[k] for k in ("new_cluster", "existing_cluster_id",
                                        "environment_key", "libraries") if k in spec}
        return (f"<h2 id='task-{task.run_id}'>Task {self._e(task.task_key)}</h2>"
                f"{_table(rows, self.mask)}"
                f"<h3>Parameters</h3>{self._pre(_params(params)) if params else '<p>none</p>'}"
                f"<h3>Cluster</h3>{self._pre(json.dumps(compute, indent=2))}"
                f"<h3>Output</h3>{self._output(task)}")

    def _output(self, task) -> str:
        parts = []
        if task.error:
            parts.append(f"<p><b>Error:</b> {self._e(task.error)}</p>")
        log = task.log_path
        if log is not None and log.exists():
            text, cut = _tail(log)
            note = f"<p>The last {LOG_TAIL_BYTES // 1024} KiB of the driver's log:</p>" \
                if cut else "<p>The driver's log:</p>"
            parts.append(note + self._pre(text or "(empty)"))
        elif not parts:
            parts.append("<p>No output yet: the driver has not started.</p>")
        return "".join(parts)

    def _e(self, text: Any) -> str:
        return _e(self.mask(str(text)))

    def _pre(self, text: str) -> str:
        return f"<pre>{self._e(text)}</pre>"


def _params(params: list) -> str:
    return "\n".join(str(p) for p in params)


def _tail(path) -> tuple[str, bool]:
    size = path.stat().st_size
    with open(path, "rb") as src:
        if size > LOG_TAIL_BYTES:
            src.seek(size - LOG_TAIL_BYTES)
        return src.read().decode(errors="replace"), size > LOG_TAIL_BYTES


def _table(rows: list[tuple[str, str]], mask) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(mask(str(v)))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else ""


def _duration(ms: int) -> str:
    seconds = ms / 1000
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _back(ws) -> str:
    return f"<p><a href='/?o={ws.workspace_id}'>All runs of this workspace</a></p>"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _page(title: str, body: str, status: int = 200) -> Response:
    page = f"<!doctype html><meta charset='utf-8'><title>{_e(title)}</title>{_STYLE}{body}"
    return Response(status, page.encode(), {"Content-Type": "text/html; charset=utf-8"})


def fragment_run_id(fragment: str) -> str | None:
    """The run id the script on ``/`` follows for a URL fragment (``#job/J/run/R``), or None."""
    match = re.match(RUN_FRAGMENT, fragment)
    return match[2] if match else None
