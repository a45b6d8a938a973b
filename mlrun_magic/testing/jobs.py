"""The Jobs API slice for one-time runs: ``runs/submit``, ``runs/get``, ``runs/get-output``,
``runs/cancel`` and ``runs/list`` under ``/api/2.0``, ``/api/2.1`` and ``/api/2.2``.

``runs/submit`` validates the body as Databricks does (see :func:`validate_submit`) and honours
``idempotency_token``: the same token returns the same ``run_id`` and starts nothing new.
"""

from __future__ import annotations

import itertools
import re

from mlrun_magic.testing.driver import Driver
from mlrun_magic.testing.http import (ApiError, Request, Response, as_int, bad_request,
                                      required, route)
from mlrun_magic.testing.runs import TASK_TYPES, JobRun, RunView, TaskRun

_COMPUTE = ("new_cluster", "existing_cluster_id", "environment_key")
_NEEDS_COMPUTE = ("spark_python_task", "python_wheel_task", "spark_jar_task",
                  "spark_submit_task", "shell_command_task")
_SINGLE_TASK_KEYS = ("new_cluster", "existing_cluster_id", "libraries", "timeout_seconds",
                     "max_retries", "min_retry_interval_millis", "retry_on_timeout")
_TASK_KEY = re.compile(r"^[\w\-]{1,100}$")
_LIBRARY_KINDS = ("pypi", "whl", "jar", "maven", "cran", "egg", "requirements")
GET_OUTPUT_MULTI = ("Retrieving the output of runs with multiple tasks is not supported. "
                    "Please retrieve the output of each individual task run instead.")


def _check_task(task: dict, where: str, api_version: str, environments: set[str]) -> None:
    types = [t for t in TASK_TYPES if t in task]
    if api_version != "2.0" and "shell_command_task" in types:
        raise bad_request(f"{where}: shell_command_task is not supported in Jobs API "
                          f"{api_version}.")
    if len(types) != 1:
        raise bad_request(f"{where}: exactly one task type must be specified; got "
                          f"{', '.join(types) if types else 'none'}.")
    kind = types[0]
    if not isinstance(task[kind], dict):
        raise bad_request(f"{where}: {kind} must be an object.")
    compute = [c for c in _COMPUTE if task.get(c) not in (None, "", {})]
    if len(compute) > 1:
        raise bad_request(f"{where}: only one of {', '.join(_COMPUTE)} may be specified.")
    if not compute and kind in _NEEDS_COMPUTE and not environments:
        raise bad_request(f"{where}: one of new_cluster, existing_cluster_id or "
                          "environment_key (serverless) must be specified.")
    if "environment_key" in compute and task["environment_key"] not in environments:
        raise bad_request(f"{where}: environment_key {task['environment_key']!r} does not "
                          "match any environment in environments.")
    cluster = task.get("new_cluster")
    if cluster is not None:
        if not isinstance(cluster, dict):
            raise bad_request(f"{where}: new_cluster must be an object.")
        if not cluster.get("spark_version"):
            raise bad_request(f"{where}: Missing required field: new_cluster.spark_version")
        if "num_workers" in cluster and "autoscale" in cluster:
            raise bad_request(f"{where}: new_cluster: num_workers and autoscale are "
                              "mutually exclusive.")
        env_vars = cluster.get("spark_env_vars")
        if env_vars is not None and not isinstance(env_vars, dict):
            raise bad_request(f"{where}: new_cluster.spark_env_vars must be a map.")
    libraries = task.get("libraries", [])
    if not isinstance(libraries, list) or any(
            not isinstance(lib, dict) or len(lib) != 1 or next(iter(lib)) not in _LIBRARY_KINDS
            for lib in libraries):
        raise bad_request(f"{where}: libraries must be a list of objects with one of "
                          f"{', '.join(_LIBRARY_KINDS)}.")
    if kind == "spark_python_task":
        spec = task[kind]
        if not isinstance(spec.get("python_file"), str) or not spec["python_file"]:
            raise bad_request(f"{where}: Missing required field: spark_python_task.python_file")
        params = spec.get("parameters", [])
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise bad_request(f"{where}: spark_python_task.parameters must be a list of strings.")
    if kind == "shell_command_task":
        command = task[kind].get("command")
        if not isinstance(command, list) or not command:
            raise bad_request(f"{where}: shell_command_task.command must be a non-empty list.")


def validate_submit(body: dict, api_version: str) -> tuple[list[dict], bool]:
    """The task specs of a ``runs/submit`` body and whether it used the 2.0 single-task form.

    Raises the 400 ``INVALID_PARAMETER_VALUE`` Databricks answers for a malformed body.
    """
    token = body.get("idempotency_token")
    if token is not None and (not isinstance(token, str) or len(token) > 64):
        raise bad_request("idempotency_token must be a string of at most 64 characters.")
    run_name = body.get("run_name", "Untitled")
    if not isinstance(run_name, str) or len(run_name.encode()) > 4096:
        raise bad_request("run_name must be a string of at most 4096 bytes.")
    timeout = body.get("timeout_seconds", 0)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
        raise bad_request("timeout_seconds must be a non-negative integer.")
    tags = body.get("tags") or {}
    if not isinstance(tags, dict) or len(tags) > 25:
        raise bad_request("tags must be a map of at most 25 entries.")
    environments = body.get("environments") or []
    if not isinstance(environments, list):
        raise bad_request("environments must be a list.")
    env_keys = {e.get("environment_key") for e in environments if isinstance(e, dict)}
    top_types = [t for t in TASK_TYPES if t in body]
    tasks = body.get("tasks")
    if tasks is None and api_version == "2.0" and top_types:
        task = {k: body[k] for k in (*_SINGLE_TASK_KEYS, *top_types) if k in body}
        task["task_key"] = "main"
        _check_task(task, "run", api_version, env_keys)
        return [task], True
    if top_types:
        raise bad_request(f"{', '.join(top_types)} must be inside tasks in Jobs API "
                          f"{api_version} (the multi-task format).")
    if not isinstance(tasks, list) or not tasks:
        raise bad_request("At least one task is required in tasks.")
    seen: set[str] = set()
    for index, task in enumerate(tasks):
        where = f"tasks[{index}]"
        if not isinstance(task, dict):
            raise bad_request(f"{where} must be an object.")
        key = task.get("task_key")
        if not isinstance(key, str) or not key:
            raise bad_request(f"{where}: Missing required field: task_key")
        if not _TASK_KEY.match(key):
            raise bad_request(f"{where}: task_key {key!r} may contain only letters, digits, "
                              "'_' and '-' (at most 100 characters).")
        if key in seen:
            raise bad_request(f"Task key {key} is not unique: task keys must be unique "
                              "within a run.")
        seen.add(key)
        _check_task(task, where, api_version, env_keys)
    for index, task in enumerate(tasks):
        for dep in task.get("depends_on") or []:
            upstream = dep.get("task_key") if isinstance(dep, dict) else None
            if upstream not in seen or tasks.index(next(t for t in tasks if
                                                        t["task_key"] == upstream)) >= index:
                raise bad_request(f"tasks[{index}]: depends_on {upstream!r} must name an "
                                  "earlier task of this run.")
    return [dict(t) for t in tasks], False


class Jobs:
    """Job runs of one workspace: submission, inspection, cancellation."""

    def __init__(self, workspace) -> None:
        self.ws = workspace
        self.view = RunView(workspace)
        self.driver = Driver(workspace)
        self.runs: dict[int, JobRun] = {}
        self.task_runs: dict[int, tuple[JobRun, TaskRun]] = {}
        self.tokens: dict[str, int] = {}
        self._ids = itertools.count(workspace.first_run_id)
        self._job_ids = itertools.count(912_000_000_001)

    def reset(self) -> None:
        with self.ws.lock:
            runs = list(self.runs.values())
            self.runs.clear()
            self.task_runs.clear()
            self.tokens.clear()
        for run in runs:
            run.cancel_requested.set()
        for run in runs:
            if run.thread is not None:
                run.thread.join(timeout=15)

    def routes(self) -> list:
        api = r"/api/(?P<version>2\.[012])/jobs/runs/"
        return [route("POST", api + "submit", self.submit),
                route("GET", api + "get", self.get),
                route("GET", api + "get-output", self.get_output),
                route("POST", api + "cancel", self.cancel),
                route("GET", api + "list", self.list)]

    def submit(self, req: Request) -> Response:
        body = req.json()
        version = req.match["version"]
        specs, single = validate_submit(body, version)
        token = body.get("idempotency_token")
        with self.ws.lock:
            if token is not None and token in self.tokens:
                return Response.json({"run_id": self.tokens[token]})
            run_id = next(self._ids)
            tasks = [TaskRun(next(self._ids), spec["task_key"], spec) for spec in specs]
            run = JobRun(run_id, next(self._job_ids), body.get("run_name", "Untitled"), body,
                         version, single, tasks, token, body.get("timeout_seconds", 0))
            run.token = self.ws.auth.issue("run")
            self.runs[run_id] = run
            for task in tasks:
                self.task_runs[task.run_id] = (run, task)
            if token is not None:
                self.tokens[token] = run_id
        self.driver.start(run)
        return Response.json({"run_id": run_id})

    def _run_id(self, req: Request) -> int:
        params = req.params() if req.method == "GET" else req.json()
        return as_int(required(params, "run_id"), "run_id")

    @staticmethod
    def _missing(run_id: int) -> ApiError:
        return bad_request(f"Run {run_id} does not exist.")

    def get(self, req: Request) -> Response:
        run_id = self._run_id(req)
        with self.ws.lock:
            if run_id in self.runs:
                return Response.json(self.view.run_json(self.runs[run_id], req.match["version"]))
            if run_id in self.task_runs:
                return Response.json(self.view.task_json(*self.task_runs[run_id]))
        raise self._missing(run_id)

    def get_output(self, req: Request) -> Response:
        run_id = self._run_id(req)
        version = req.match["version"]
        with self.ws.lock:
            if run_id in self.runs:
                run = self.runs[run_id]
                if version != "2.0" or len(run.tasks) != 1:
                    raise bad_request(GET_OUTPUT_MULTI)
                task = run.tasks[0]
                metadata = self.view.run_json(run, version)
            elif run_id in self.task_runs:
                run, task = self.task_runs[run_id]
                metadata = self.view.task_json(run, task)
            else:
                raise self._missing(run_id)
            terminal = task.state.terminal
        output: dict = {"metadata": metadata}
        if terminal:
            if task.log_path is not None and task.log_path.exists():
                logs, truncated = _tail(task.log_path, self.ws.settings.max_log_bytes)
                output["logs"], output["logs_truncated"] = logs, truncated
            if task.error:
                output["error"] = task.error
            if task.error_trace:
                output["error_trace"] = task.error_trace
        if "notebook_task" in task.spec:
            output["notebook_output"] = {}
        return Response.json(output)

    def cancel(self, req: Request) -> Response:
        run_id = self._run_id(req)
        with self.ws.lock:
            run = self.runs.get(run_id) or (self.task_runs.get(run_id) or (None,))[0]
        if run is None:
            raise self._missing(run_id)
        with self.ws.lock:
            waiting = run.state.life_cycle in ("QUEUED", "PENDING", "BLOCKED")
        run.cancel_requested.set()
        if waiting and run.thread is not None:
            # No driver to stop yet: the run ends at once, and the answer waits for that
            # (Databricks cancels "asynchronously, so it may still be running" when it
            # answers; it may as well not be). Otherwise a client's first look after its
            # cancel always saw it still PENDING, and its next look came a second later.
            run.thread.join(timeout=0.5)
        return Response.json({})

    def list(self, req: Request) -> Response:
        params = req.params()
        limit = min(as_int(params.get("limit", 25), "limit"), 25) or 25
        offset = as_int(params.get("offset", 0), "offset")
        with self.ws.lock:
            runs = sorted(self.runs.values(), key=lambda r: -r.run_id)
            shown = [self.view.run_json(r, req.match["version"]) for r in
                     runs[offset:offset + limit]]
        return Response.json({"runs": shown, "has_more": offset + limit < len(runs)})

    def admin_runs(self) -> list[dict]:
        with self.ws.lock:
            return [self.view.admin_json(r) for r in sorted(self.runs.values(),
                                                            key=lambda r: r.run_id)]


def _tail(path, limit: int) -> tuple[str, bool]:
    size = path.stat().st_size
    with open(path, "rb") as src:
        if size > limit:
            src.seek(size - limit)
        data = src.read()
    return data.decode(errors="replace"), size > limit
