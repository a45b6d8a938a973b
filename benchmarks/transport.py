"""The Databricks SDK's ``WorkspaceClient`` next to our ``DatabricksClient``, on one loopback
workspace: import cost, the cost of 50 ``jobs/runs/get`` calls, and the retry rules a
submission relies on (no duplicate after a 503 or a read timeout, an overall deadline,
``Retry-After``).

Usage: .venv/bin/python benchmarks/transport.py [--calls 50] [--imports 5] [--json]

Import times are medians over fresh processes (wall clock, minus a bare ``python -c pass``).
Request counts come from the workspace's request log. A "duplicate" is a second job run (or
MLflow run) made by a retry of a request that was done the first time: the fault
``respond-then-fail`` does the request and answers 503; ``delay`` answers after the client's
read timeout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

JOBS = "/api/2.2/jobs"
MLFLOW = "/api/2.0/mlflow"
CLUSTER = {"spark_version": "15.4.x-scala2.12", "node_type_id": "Standard_DS3_v2",
           "num_workers": 1}
IMPORTS = {
    "bare python": "pass",
    "databricks.sdk.WorkspaceClient": "from databricks.sdk import WorkspaceClient",
    "mlrun_magic.databricks.client": "import mlrun_magic.databricks.client",
    "ours, ready to call (+requests, sdk.core Config)":
        "import mlrun_magic.databricks.client, requests, databricks.sdk.core",
}


# -- imports ------------------------------------------------------------------------------
def import_ms(code: str, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def importtime_ms(code: str) -> float:
    """Sum of the top-level cumulative times ``-X importtime`` reports (startup imports out)."""
    err = subprocess.run([sys.executable, "-X", "importtime", "-c", code], check=True,
                         capture_output=True, text=True).stderr
    total = 0
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line[len("import time:"):].split("|")
        if not name[1:].startswith(" "):  # depth 0: imported by the -c code itself
            total += int(cumulative)
    return total / 1000


def measure_imports(runs: int) -> dict:
    for code in IMPORTS.values():
        import_ms(code, 1)  # warm the file cache and the .pyc files
    wall = {name: import_ms(code, runs) for name, code in IMPORTS.items()}
    bare = wall.pop("bare python")
    base_it = importtime_ms("pass")
    return {name: {"wall_ms": round(ms - bare, 1),
                   "importtime_ms": round(importtime_ms(IMPORTS[name]) - base_it, 1)}
            for name, ms in wall.items()}


# -- the two clients ----------------------------------------------------------------------
def sdk_client(ws, *, timeout: float = 60, deadline: float = 300):
    from databricks.sdk import WorkspaceClient
    from databricks.sdk.core import Config

    return WorkspaceClient(config=Config(host=ws.host, token=ws.token, auth_type="pat",
                                         http_timeout_seconds=timeout,
                                         retry_timeout_seconds=deadline))


def our_client(ws, *, timeout: float = 60, deadline: float = 300):
    from mlrun_magic.databricks.auth import resolve_workspace
    from mlrun_magic.databricks.client import DatabricksClient

    return DatabricksClient(resolve_workspace(), timeout=timeout, deadline=deadline)


def submit_sdk(client, token: str | None = None):
    from databricks.sdk.service import compute, jobs

    task = jobs.SubmitTask(task_key="main", new_cluster=compute.ClusterSpec(**CLUSTER),
                           spark_python_task=jobs.SparkPythonTask(python_file="/Workspace/b.py"))
    return client.jobs.submit(run_name="bench", tasks=[task], idempotency_token=token).run_id


def submit_ours(client, token: str | None = None):
    body = {"run_name": "bench", "tasks": [{"task_key": "main", "new_cluster": CLUSTER,
            "spark_python_task": {"python_file": "/Workspace/b.py"}}]}
    if token:
        body["idempotency_token"] = token
    return client.post(f"{JOBS}/runs/submit", body, idempotent=bool(token))["run_id"]


def mlflow_create_sdk(client, experiment_id: str):
    return client.experiments.create_run(experiment_id=experiment_id).run.info.run_id


def mlflow_create_ours(client, experiment_id: str):
    from mlrun_magic.databricks.tracking import DatabricksTracking

    return DatabricksTracking("databricks", client).create_run(experiment_id, {}, None)


# -- measurements -------------------------------------------------------------------------
def latency(ws, make, get, calls: int, nodelay: bool = False) -> dict:
    """``calls`` runs/get of one run; ``nodelay``: the loopback server sends its answers
    with TCP_NODELAY, so the clients' own cost is not hidden under the ~40 ms that Nagle's
    algorithm and delayed ACKs add to every answer sent in two writes."""
    from mlrun_magic.testing.server import WorkspaceRequestHandler

    WorkspaceRequestHandler.disable_nagle_algorithm = nodelay
    try:
        ws.faults.reset()
        client = make(ws)
        built = len(ws.requests())
        run_id = submit_sdk(client) if make is sdk_client else submit_ours(client)
        ws.faults.reset()
        samples = []
        for _ in range(calls):
            t = time.perf_counter()
            get(client, run_id)
            samples.append((time.perf_counter() - t) * 1000)
    finally:
        WorkspaceRequestHandler.disable_nagle_algorithm = False
    return {"construct_requests": built, "requests": len(ws.requests()),
            "median_ms": round(statistics.median(samples), 2),
            "p95_ms": round(sorted(samples)[int(0.95 * len(samples)) - 1], 2),
            "total_ms": round(sum(samples), 1)}


def outcome(fn):
    """``(what happened, seconds)``: "ok" or the class of the exception raised."""
    start = time.perf_counter()
    try:
        fn()
        what = "ok"
    except Exception as exc:  # noqa: BLE001 - any error is a result here
        what = type(exc).__name__
    return what, round(time.perf_counter() - start, 2)


def count_mlflow_runs(ws, experiment_id: str) -> int:
    import requests

    body = requests.post(f"{ws.mlflow_url}{MLFLOW}/runs/search", json={
        "experiment_ids": [experiment_id], "run_view_type": "ALL", "max_results": 100}).json()
    return len(body.get("runs") or [])


def duplicates(ws, make, submit, create, experiment_id) -> dict:
    """Job runs / MLflow runs made by one call that met a 503 after doing its work, or a
    read timeout."""
    found = {}
    for fault, kwargs, timeout in (("503", {"action": "respond-then-fail", "status": 503}, 60),
                                   ("timeout", {"action": "delay", "seconds": 2.5}, 1)):
        client = make(ws, timeout=timeout, deadline=8)
        before = len(ws.runs())
        ws.faults.reset()
        ws.add_fault(f"{JOBS}/runs/submit", method="POST", **kwargs)
        what, _ = outcome(lambda: submit(client))
        time.sleep(3 if fault == "timeout" else 0)  # let a delayed request land
        found[f"runs/submit, {fault}"] = (len(ws.runs()) - before, what)
        before = count_mlflow_runs(ws, experiment_id)
        ws.faults.reset()
        ws.add_fault(f"{MLFLOW}/runs/create", method="POST", **kwargs)
        what, _ = outcome(lambda: create(client, experiment_id))
        time.sleep(3 if fault == "timeout" else 0)
        found[f"mlflow runs/create, {fault}"] = (count_mlflow_runs(ws, experiment_id) - before,
                                                 what)
    ws.faults.reset()
    return found


def deadline(ws, make, get, run_id) -> dict:
    """How long a call to a workspace that always answers 503 (or never answers) lasts,
    with a 4 s overall deadline and a 1.5 s request timeout."""
    result = {}
    for name, kwargs in (("503 forever", {"status": 503, "times": -1}),
                         ("hang forever", {"action": "delay", "seconds": 3, "times": -1})):
        client = make(ws, timeout=1.5, deadline=4)
        ws.faults.reset()
        ws.add_fault(f"{JOBS}/runs/get", method="GET", **kwargs)
        what, seconds = outcome(lambda: get(client, run_id))
        result[name] = (seconds, len(ws.requests(path=f"{JOBS}/runs/get")), what)
    ws.faults.reset()
    time.sleep(3)  # let the delayed handlers finish
    return result


def retry_after(ws, make, get, run_id) -> dict:
    """The pause between a throttled GET (429 or 503 with Retry-After) and its retry."""
    result = {}
    for status, value in ((429, "2"), (503, "2"), (429, "1.5")):
        client = make(ws)
        ws.faults.reset()
        ws.add_fault(f"{JOBS}/runs/get", method="GET", status=status, retry_after=value)
        outcome(lambda: get(client, run_id))
        times = [e["time"] for e in ws.requests(path=f"{JOBS}/runs/get")]
        result[f"{status} Retry-After: {value}"] = round(times[1] - times[0], 2) \
            if len(times) > 1 else None
    ws.faults.reset()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--imports", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    imports = measure_imports(args.imports)

    from mlrun_magic.testing import Workspace

    home = tempfile.mkdtemp(prefix="transport-bench-")
    with Workspace(pending_seconds=3600) as ws:
        os.environ.update(ws.env(), HOME=home,
                          DATABRICKS_CONFIG_FILE=os.path.join(home, "none.cfg"))
        for name in ("DATABRICKS_CONFIG_PROFILE", "MLFLOW_TRACKING_URI"):
            os.environ.pop(name, None)
        sdk = {"make": sdk_client, "submit": submit_sdk, "create": mlflow_create_sdk,
               "get": lambda c, r: c.jobs.get_run(r)}
        ours = {"make": our_client, "submit": submit_ours, "create": mlflow_create_ours,
                "get": lambda c, r: c.get(f"{JOBS}/runs/get", run_id=r)}
        import requests

        experiment_id = requests.post(
            f"{ws.mlflow_url}{MLFLOW}/experiments/create",
            json={"name": f"/Shared/bench-{uuid.uuid4().hex[:8]}"}).json()["experiment_id"]
        results = {}
        for name, side in (("sdk", sdk), ("ours", ours)):
            run_id = submit_ours(our_client(ws))
            results[name] = {
                "latency": latency(ws, side["make"], side["get"], args.calls),
                "latency_nodelay": latency(ws, side["make"], side["get"], args.calls, True),
                "duplicates": duplicates(ws, side["make"], side["submit"], side["create"],
                                         experiment_id),
                "deadline": deadline(ws, side["make"], side["get"], run_id),
                "retry_after": retry_after(ws, side["make"], side["get"], run_id)}
    if args.json:
        print(json.dumps({"imports": imports, **results}, indent=1))
        return
    show(imports, results, args.calls)


def show(imports: dict, results: dict, calls: int) -> None:
    print("cold import (ms over a bare python start; wall median | -X importtime)")
    for name, row in imports.items():
        print(f"  {name:50s} {row['wall_ms']:7.1f} | {row['importtime_ms']:7.1f}")
    sdk, ours = results["sdk"], results["ours"]
    print(f"\n{'':44s}{'WorkspaceClient':>24s}{'DatabricksClient':>24s}")

    def row(label, a, b):
        text = [", ".join(map(str, v)) if isinstance(v, (tuple, list)) else str(v) for v in (a, b)]
        print(f"{label:44s}{text[0]:>24s}{text[1]:>24s}")

    for key, label in (("construct_requests", "requests made by the constructor"),
                       ("requests", f"requests for {calls} runs/get"),
                       ("median_ms", "runs/get median ms"), ("p95_ms", "runs/get p95 ms"),
                       ("total_ms", f"{calls} runs/get total ms")):
        row(label, sdk["latency"][key], ours["latency"][key])
    for key, label in (("median_ms", "  same, server TCP_NODELAY: median ms"),
                       ("p95_ms", "  same, server TCP_NODELAY: p95 ms")):
        row(label, sdk["latency_nodelay"][key], ours["latency_nodelay"][key])
    print("runs made by one call (2 = a duplicate; outcome)")
    for key in sdk["duplicates"]:
        row("  " + key, sdk["duplicates"][key], ours["duplicates"][key])
    print("deadline 4 s, timeout 1.5 s on runs/get (seconds, requests, outcome)")
    for key in sdk["deadline"]:
        row("  " + key, sdk["deadline"][key], ours["deadline"][key])
    print("pause before the retry (s)")
    for key in sdk["retry_after"]:
        row("  " + key, sdk["retry_after"][key], ours["retry_after"][key])
    print("per-call control of retries: SDK no (one policy per ApiClient); ours yes "
          "(idempotent=, deadline=, timeout=)")


if __name__ == "__main__":
    main()
