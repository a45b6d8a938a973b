"""What a 20-point sweep costs, against a loopback workspace with its own MLflow server.

- **Enter to all submitted**: from the call of ``mlrun_magic.sweep(...)`` (what a
  ``%%project_run`` cell with a ``sweep:`` does once its body is parsed) to the moment every
  point has its Databricks job run: planning every point, the parent MLflow run, packaging
  and uploading once, 20 MLflow runs and 20 ``runs/submit``. ``max_parallel`` is the point
  count, so no point waits for another to end. The loopback workspace runs the 20 drivers on
  this machine, so their start competes with the submissions for the CPU (a real workspace
  runs them elsewhere): the figure is an upper bound on this machine.
- **Requests per minute while 20 run**: this client's requests (the workspace's request log,
  by User-Agent; the drivers' own MLflow calls are not ours), by endpoint, from the last
  submission to the first point's end, with the sweep's table watching every point (status
  and metrics, no log tail), as the notebook's table does.

Run: ``.venv/bin/python benchmarks/sweeping.py [--points 20] [--seconds 90] [--json]``.
Goal (issues 15/16): all 20 submitted in under 10 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.watching import CLUSTER, kind, loopback  # noqa: E402

TRAIN = ("import sys, time\nimport mlflow\nseconds = float(sys.argv[2])\n"
         "with mlflow.start_run():\n    start = time.time()\n    step = 0\n"
         "    while time.time() - start < seconds:\n"
         "        mlflow.log_metric('loss', 1.0 / (step + 1 + int(sys.argv[1])), step=step)\n"
         "        step += 1\n        time.sleep(5)\n")


def make_project(root: Path) -> Path:
    project = root / "swept"
    project.mkdir()
    (project / "train.py").write_text(TRAIN)
    (project / "MLproject").write_text(
        "name: swept\nentry_points:\n  main:\n"
        "    parameters: {i: {type: int, default: 0}, seconds: {type: float, default: 90}}\n"
        "    command: \"python train.py {i} {seconds}\"\n")
    return project


def run_sweep(ws, project: Path, points: int, seconds: float) -> dict:
    import mlrun_magic

    start = time.perf_counter()
    started_at = time.time()
    sweep = mlrun_magic.sweep(str(project), points=[{"i": i} for i in range(points)],
                              parameters={"seconds": seconds}, max_parallel=points,
                              backend="databricks", backend_config=dict(CLUSTER),
                              experiment_name="/Shared/sweeping-bench")
    while sum(1 for p in sweep.points if p.watched is not None or p.error) < points:
        time.sleep(0.05)
    submitted = time.perf_counter() - start
    all_in = time.time()
    errors = [p.error for p in sweep.points if p.error]
    while not any(p.ended for p in sweep.points):
        time.sleep(0.2)
    first_end = time.time()
    status = sweep.wait(timeout=seconds * 3 + 120)
    ours = [r for r in ws.requests() if all_in <= r["time"] <= first_end
            and str(r["headers"].get("User-Agent", "")).startswith("mlrun-magic")]
    minutes = (first_end - all_in) / 60
    kinds = Counter(kind(r["path"]) for r in ours)
    setup = [r for r in ws.requests() if started_at <= r["time"] <= all_in
             and str(r["headers"].get("User-Agent", "")).startswith("mlrun-magic")]
    return {"points": points, "status": status, "errors": errors,
            "enter_to_all_submitted_s": round(submitted, 2),
            "requests_to_submit_all": len(setup),
            "window_s": round(first_end - all_in, 1),
            "requests_per_minute_while_all_run": round(len(ours) / minutes, 1),
            "per_minute_by_endpoint": {k: round(v / minutes, 1) for k, v in kinds.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--pending", type=float, default=1.0,
                        help="seconds each job run waits for its cluster (default 1)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with loopback("sweep-bench-", pending_seconds=args.pending) as (ws, root):
        result = run_sweep(ws, make_project(root), args.points, args.seconds)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['points']}-point sweep ended {result['status']}"
          + (f" ({len(result['errors'])} points failed to launch)" if result["errors"] else ""))
    print(f"Enter to all submitted: {result['enter_to_all_submitted_s']} s "
          f"({result['requests_to_submit_all']} requests; goal: under 10 s)")
    print(f"requests per minute while all {result['points']} run: "
          f"{result['requests_per_minute_while_all_run']} over {result['window_s']} s "
          f"{result['per_minute_by_endpoint']}")


if __name__ == "__main__":
    main()
