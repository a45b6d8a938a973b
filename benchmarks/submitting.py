"""How long submitting a project run to Databricks takes, next to MLflow's own client.

Against one fresh loopback workspace (with its own MLflow server) whose job runs wait
``pending_seconds`` (600) for their cluster, so no driver starts and competes for the CPU;
a real new cluster takes minutes to start, so the submission is what a user waits for.
Each sample is a fresh child process (one warm-up sample per contender first, then the
contenders in turn); only the call is timed, inside the child, by the wall clock and by the
process's CPU time (steadier on a busy machine); ``import mlrun_magic`` / ``import
mlflow.projects`` is timed apart. Lazy imports the call makes are part of the call, as on a
notebook's first run (both calls import ``databricks.sdk``); ``*_total_s`` adds the import.

- **submit**: from the call to its return with the job run's URL known. Ours:
  ``mlrun_magic.run(project, backend="databricks", backend_config=CLUSTER,
  experiment_name=...)``; MLflow: ``mlflow.projects.run(project, backend="databricks",
  backend_config=<cluster JSON file>, synchronous=False, experiment_name=...)``. Both
  projects (the same small MLproject with one float parameter) get a new ``stamp.txt``
  before every sample, so each submission packages and uploads a changed project.
- **re-submit** (ours): a second ``run()`` of the unchanged project in the same child (the
  archive is cached and already uploaded), and the bytes it uploaded: ``Content-Length`` of
  its upload requests in the workspace's request log. Also a third ``run()`` after a
  change, in the now warm process (``warm_submit``); MLflow's second call after a change
  likewise (``mlflow_warm_submit``): a notebook's second run, imports paid.
- **requests per submission**: every request the workspace logged during the call (only
  the child talks to it then), by endpoint. Not filtered by User-Agent: the SDK's ``Config``
  in our client sends ``GET /.well-known/databricks-config`` with its own agent.

Run: ``.venv/bin/python benchmarks/submitting.py [--runs 5] [--json]``.
Goals (issue): ours at most half of MLflow's submit time; a re-submit uploads 0 bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.watching import CLUSTER, loopback  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PENDING_SECONDS = 600.0
MLPROJECT = ("name: submitted\npython_env: python_env.yaml\nentry_points:\n  main:\n"
             "    parameters:\n      alpha: {type: float, default: 0.5}\n"
             "    command: \"python train.py {alpha}\"\n")
TRAIN = ("import sys\nimport mlflow\nwith mlflow.start_run():\n"
         "    mlflow.log_metric('loss', 1.0 / (1 + float(sys.argv[1])))\n")
PYTHON_ENV = "python: \"3.11\"\ndependencies:\n  - mlflow\n"
OURS = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
import mlrun_magic
imported = time.perf_counter() - t0
project, experiment, cluster = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

def submit():
    start = time.time(); t = time.perf_counter(); cpu = time.process_time()
    run = mlrun_magic.run(project, parameters={"alpha": 0.5}, backend="databricks",
                          backend_config=cluster, experiment_name=experiment)
    took, cpu = time.perf_counter() - t, time.process_time() - cpu
    if not run.links.job_run:
        raise SystemExit("no job run URL")
    return {"s": took, "cpu_s": cpu, "start": start, "end": time.time(),
            "url": run.links.job_run, "sent": run.uploaded.uploaded_bytes}

cold = submit()
resubmit = submit()
Path(project, "stamp.txt").write_text(sys.argv[4])
warm = submit()
print("RESULT " + json.dumps({"import_s": imported, "cold": cold, "resubmit": resubmit,
                              "warm": warm}))
"""
MLFLOW = """
import json, sys, time
t0 = time.perf_counter()
import mlflow, mlflow.projects
imported = time.perf_counter() - t0
project, experiment, cluster = sys.argv[1:4]
from pathlib import Path

def submit():
    start = time.time(); t = time.perf_counter(); cpu = time.process_time()
    run = mlflow.projects.run(project, entry_point="main", parameters={"alpha": "0.5"},
                              backend="databricks", backend_config=cluster,
                              experiment_name=experiment, synchronous=False)
    took, cpu = time.perf_counter() - t, time.process_time() - cpu
    tags = mlflow.tracking.MlflowClient().get_run(run.run_id).data.tags
    return {"s": took, "cpu_s": cpu, "start": start, "end": start + took,
            "url": tags["mlflow.databricks.runURL"]}

cold = submit()
Path(project, "stamp.txt").write_text(sys.argv[4])
print("RESULT " + json.dumps({"import_s": imported, "cold": cold, "warm": submit()}))
"""
UPLOADS = ("POST workspace/import", "POST dbfs/put", "POST dbfs/add-block", "PUT fs/files",
           "POST /dbfs (legacy route)")


def make_project(root: Path, name: str) -> Path:
    """The small project both contenders submit (one copy each: ours writes its history in
    ``.mlrun_magic/``, which MLflow would otherwise pack)."""
    project = root / name
    project.mkdir()
    (project / "MLproject").write_text(MLPROJECT)
    (project / "train.py").write_text(TRAIN)
    (project / "python_env.yaml").write_text(PYTHON_ENV)
    return project


def child_env(ws, root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "MLFLOW_"))}
    env.update(ws.env(), MLFLOW_TRACKING_URI="databricks", HOME=str(root / "home"),
               XDG_CACHE_HOME=str(root / "cache"), PYTHONPATH=str(ROOT))
    return env


def sample(code: str, argv: list[str], env: dict, cwd: Path) -> dict:
    """One fresh child process; its ``RESULT`` line."""
    done = subprocess.run([sys.executable, "-c", code, *argv], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0 or "RESULT " not in done.stdout:
        raise SystemExit(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.split("RESULT ", 1)[1])


def endpoint(req: dict) -> str:
    """``METHOD api/path`` with file paths cut off (``PUT fs/files``)."""
    path = req["path"]
    if path.startswith("/dbfs/"):
        return f"{req['method']} /dbfs (legacy route)"
    path = re.sub(r"^/api/2\.\d/", "", path)
    for prefix in ("fs/files", "fs/directories"):
        if path.startswith(prefix):
            path = prefix
    return f"{req['method']} {path}"


def window(ws, call: dict) -> list[dict]:
    """The requests logged during one call."""
    return [r for r in ws.requests() if call["start"] <= r["time"] <= call["end"]]


def uploaded_bytes(requests: list[dict]) -> int:
    return sum(r["body_size"] for r in requests if endpoint(r) in UPLOADS)


def stamp(project: Path) -> str:
    value = uuid.uuid4().hex
    (project / "stamp.txt").write_text(value)
    return value


def samples(ws, contenders: dict, runs: int, env: dict, root: Path) -> dict:
    """A warm-up, then ``runs`` samples of each contender, taken in turn (so a machine
    busy for a while slows both alike); each call with its requests attached."""
    taken: dict = {name: [] for name in contenders}
    for i in range(runs + 1):
        for name, (code, project, extra) in contenders.items():
            stamp(project)
            result = sample(code, [str(project), "/Shared/submitting-bench", extra,
                                   uuid.uuid4().hex], env, root)
            for key in ("cold", "resubmit", "warm"):
                if key in result:
                    result[key]["requests"] = window(ws, result[key])
            if i:  # the first is the warm-up
                taken[name].append(result)
    return taken


def longest_gap(call: dict) -> list:
    """``[seconds, what came before]``: the longest stretch of the call with no new request
    (a slow answer, or work in the client), to explain an outlier."""
    times = [(call["start"], "call start")] + [(r["time"], endpoint(r)) for r in
                                               call["requests"]] + [(call["end"], "")]
    gap, before = max((b[0] - a[0], a[1]) for a, b in zip(times, times[1:]))
    return [round(gap, 3), before]


def summary(samples: list, key: str) -> dict:
    """Per-sample times, requests and upload bytes of one call (``key``); the median time;
    the last sample's requests by endpoint."""
    calls = [s[key] for s in samples]
    counts = [len(c["requests"]) for c in calls]
    kinds = Counter(endpoint(r) for r in calls[-1]["requests"])
    return {"s": [round(c["s"], 3) for c in calls],
            "cpu_s": [round(c["cpu_s"], 3) for c in calls],
            "median_s": round(statistics.median(c["s"] for c in calls), 3),
            "median_cpu_s": round(statistics.median(c["cpu_s"] for c in calls), 3),
            "requests": counts, "by_endpoint": dict(sorted(kinds.items())),
            "bytes_uploaded": [uploaded_bytes(c["requests"]) for c in calls],
            "client_sent": [c.get("sent") for c in calls],
            "longest_gap": [longest_gap(c) for c in calls]}


def measure(runs: int = 5) -> dict:
    """Start a loopback workspace, take ``runs`` samples of each contender, summarise."""
    with loopback("submit-bench-", pending_seconds=PENDING_SECONDS) as (ws, root):
        env = child_env(ws, root)
        cluster_file = root / "cluster.json"
        cluster_file.write_text(json.dumps(CLUSTER))
        taken = samples(ws, {
            "ours": (OURS, make_project(root, "project-ours"), json.dumps(CLUSTER)),
            "mlflow": (MLFLOW, make_project(root, "project-mlflow"), str(cluster_file)),
        }, runs, env, root)
    ours, theirs = taken["ours"], taken["mlflow"]
    cold, again, warm = (summary(ours, k) for k in ("cold", "resubmit", "warm"))
    mlflow, mlflow_warm = summary(theirs, "cold"), summary(theirs, "warm")
    return {
        "runs": runs, "pending_seconds": PENDING_SECONDS,
        "ours_submit_s": cold["median_s"], "mlflow_submit_s": mlflow["median_s"],
        "ratio": round(cold["median_s"] / mlflow["median_s"], 3),
        "ours_submit_cpu_s": cold["median_cpu_s"], "mlflow_submit_cpu_s": mlflow["median_cpu_s"],
        "cpu_ratio": round(cold["median_cpu_s"] / mlflow["median_cpu_s"], 3),
        "ours_warm_submit_s": warm["median_s"], "mlflow_warm_submit_s": mlflow_warm["median_s"],
        "warm_ratio": round(warm["median_s"] / mlflow_warm["median_s"], 3),
        "resubmit_s": again["median_s"],
        "resubmit_bytes_uploaded": max(again["bytes_uploaded"]),
        "cold_bytes_uploaded": statistics.median(cold["bytes_uploaded"]),
        "mlflow_bytes_uploaded": statistics.median(mlflow["bytes_uploaded"]),
        "requests_per_submission": statistics.median(cold["requests"]),
        "requests_per_resubmit": statistics.median(again["requests"]),
        "mlflow_requests_per_submission": statistics.median(mlflow["requests"]),
        "ours_import_s": round(statistics.median(s["import_s"] for s in ours), 3),
        "mlflow_import_s": round(statistics.median(s["import_s"] for s in theirs), 3),
        "ours_submit_samples_s": cold["s"], "mlflow_submit_samples_s": mlflow["s"],
        "resubmit_samples_s": again["s"], "ours_warm_submit_samples_s": warm["s"],
        "mlflow_warm_submit_samples_s": mlflow_warm["s"],
        "ours_submit_cpu_samples_s": cold["cpu_s"], "mlflow_submit_cpu_samples_s": mlflow["cpu_s"],
        "resubmit_bytes_samples": again["bytes_uploaded"],
        "resubmit_client_sent": again["client_sent"],
        "ours_total_s": round(statistics.median(s["import_s"] + s["cold"]["s"] for s in ours), 3),
        "mlflow_total_s": round(statistics.median(s["import_s"] + s["cold"]["s"]
                                                  for s in theirs), 3),
        "ours_longest_gap": cold["longest_gap"], "mlflow_longest_gap": mlflow["longest_gap"],
        "ours_by_endpoint": cold["by_endpoint"], "resubmit_by_endpoint": again["by_endpoint"],
        "mlflow_by_endpoint": mlflow["by_endpoint"],
    }


def report(r: dict) -> None:
    print(f"submit, median of {r['runs']} fresh processes (job run URL known):")
    print(f"  ours   {r['ours_submit_s']:6.3f} s  {r['ours_submit_samples_s']}  "
          f"(import mlrun_magic {r['ours_import_s']} s apart)")
    print(f"  MLflow {r['mlflow_submit_s']:6.3f} s  {r['mlflow_submit_samples_s']}  "
          f"(import mlflow.projects {r['mlflow_import_s']} s apart)")
    print(f"  ratio  {r['ratio']}  (goal: at most 0.5); CPU time of the call: ours "
          f"{r['ours_submit_cpu_s']} s, MLflow {r['mlflow_submit_cpu_s']} s, ratio "
          f"{r['cpu_ratio']}")
    print(f"import + submit: ours {r['ours_total_s']} s, MLflow {r['mlflow_total_s']} s")
    print(f"changed project in a warm process (after one submit): ours "
          f"{r['ours_warm_submit_s']} s, MLflow {r['mlflow_warm_submit_s']} s, ratio "
          f"{r['warm_ratio']} (goal: at most 0.5)")
    print(f"re-submit of the unchanged project: {r['resubmit_s']} s "
          f"{r['resubmit_samples_s']}, {r['resubmit_bytes_uploaded']} bytes uploaded "
          f"(goal: 0; a cold submit uploads {r['cold_bytes_uploaded']}, MLflow's "
          f"{r['mlflow_bytes_uploaded']})")
    print(f"requests per submission: ours {r['requests_per_submission']}, re-submit "
          f"{r['requests_per_resubmit']}, MLflow {r['mlflow_requests_per_submission']}")
    for name, key in (("ours", "ours_by_endpoint"), ("re-submit", "resubmit_by_endpoint"),
                      ("MLflow", "mlflow_by_endpoint")):
        print(f"  {name:9s} {r[key]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.runs)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        report(result)


if __name__ == "__main__":
    main()
