"""What watching a Databricks run live costs and how fresh it is, against a loopback workspace.

Launches runs on a fresh loopback workspace (with its own MLflow server) and watches each
with the run service's live view, as a notebook cell does (a view callback in this process
records every redraw):

- **print-to-view delay**: the driver prints ``tick <i> <epoch>`` lines (``--lines``, one
  every ``--interval`` s, and a metric per line); the delay of a line is from the epoch it
  carries to the first redraw of the view showing it. Median and max.
- **requests per run-minute** while the run is RUNNING, from the workspace's request log
  (only this client's: the driver's own MLflow calls are not ours), by endpoint: for the
  printing run, and for a run that prints once and then stays quiet (``--quiet`` s), where
  the polls back off. MLflow's own client (``mlflow run -b databricks``) polls
  ``runs/get`` every 30 s: 2 requests per run-minute, showing no output and no metrics.

Run: ``.venv/bin/python benchmarks/watching.py [--lines 50] [--interval 1] [--quiet 90]
[--json]``. Goals (issue 14/16): median under 3 s, max under 5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TICK = ("import sys, time\nimport mlflow\nlines, interval = int(sys.argv[1]), float(sys.argv[2])\n"
        "with mlflow.start_run():\n    for i in range(lines):\n"
        "        print(f'tick {i:03d} {time.time():.3f}', flush=True)\n"
        "        mlflow.log_metric('loss', 1.0 / (i + 1), step=i)\n"
        "        time.sleep(interval)\n")
QUIET = "import sys, time\nprint('one line, then quiet', flush=True)\ntime.sleep(float(sys.argv[1]))\n"
CLUSTER = {"spark_version": "15.4.x-cpu-ml-scala2.12", "node_type_id": "Standard_D4ds_v5",
           "num_workers": 1}


class Settings:
    profile = tracking_uri = None
    poll_interval = 30.0
    tail_lines = 20


def make_project(root: Path) -> Path:
    project = root / "watched"
    project.mkdir()
    (project / "tick.py").write_text(TICK)
    (project / "quiet.py").write_text(QUIET)
    (project / "MLproject").write_text(
        "name: watched\nentry_points:\n"
        "  tick:\n    parameters: {lines: {type: int, default: 50}, interval: {type: float, default: 1}}\n"
        "    command: \"python tick.py {lines} {interval}\"\n"
        "  quiet:\n    parameters: {seconds: {type: float, default: 90}}\n"
        "    command: \"python quiet.py {seconds}\"\n")
    return project


def watch(project: Path, entry_point: str, parameters: dict):
    """Launch and watch one run; (redraws [(time, snapshot)], RUNNING window)."""
    import mlrun_magic
    from mlrun_magic.notebook.live import snapshot
    from mlrun_magic.service import RunService

    service = RunService(Settings())
    run = mlrun_magic.run(str(project), entry_point=entry_point, parameters=parameters,
                          backend="databricks", backend_config=dict(CLUSTER),
                          experiment_name="/Shared/watching-bench")
    redraws, lock = [], threading.Lock()

    def view(watched):
        with lock:
            redraws.append((time.time(), snapshot(watched)))

    watched = service.watch(run, view)
    state = service.wait(watched, timeout=600)
    if state.status != "FINISHED":
        raise SystemExit(f"the {entry_point} run ended {state.status}: {state.message}")
    running = [t for t, s in redraws if s.status == "RUNNING"]
    return redraws, (running[0], redraws[-1][0])


def watch_many(project: Path, count: int, lines: int) -> tuple[float, float]:
    """Launch ``count`` printing runs and watch them all from one service (one view each);
    the window (start, end) while all of them are RUNNING."""
    import mlrun_magic
    from mlrun_magic.service import RunService

    service = RunService(Settings())
    watched = []
    for _ in range(count):
        run = mlrun_magic.run(str(project), entry_point="tick",
                              parameters={"lines": lines, "interval": 1},
                              backend="databricks", backend_config=dict(CLUSTER),
                              experiment_name="/Shared/watching-bench")
        watched.append(service.watch(run, lambda _: None))
    while not all(w.state.status == "RUNNING" for w in watched):
        if any(w.state.is_terminal for w in watched):
            raise SystemExit("a run ended before all of them were running")
        time.sleep(0.1)
    start = time.time()
    while not any(w.state.is_terminal for w in watched):
        time.sleep(0.1)
    end = time.time()
    for w in watched:
        service.wait(w, timeout=600)
    return start, end


def delays(redraws) -> list[float]:
    first: dict[str, float] = {}
    for at, snap in redraws:
        for line in snap.log_tail.splitlines():
            if line.startswith("tick "):
                first.setdefault(line, at)
    return [at - float(line.split()[2]) for line, at in first.items()]


def per_minute(ws, window) -> tuple[float, Counter]:
    start, end = window
    ours = [r for r in ws.requests() if start <= r["time"] <= end
            and str(r["headers"].get("User-Agent", "")).startswith("mlrun-magic")]
    kinds = Counter(kind(r["path"]) for r in ours)
    minutes = (end - start) / 60
    return len(ours) / minutes, Counter({k: round(v / minutes, 1) for k, v in kinds.items()})


def kind(path: str) -> str:
    if "/jobs/runs/get" in path:
        return "runs/get"
    if "/mlflow/" in path:
        return "mlflow " + path.rsplit("/mlflow/", 1)[1]
    if path.endswith(("/list", "/directories")) or "/fs/directories" in path:
        return "log listing"
    return "log chunk read" if ("export" in path or "/fs/files" in path or "read" in path) \
        else path


@contextlib.contextmanager
def loopback(prefix: str, **settings):
    """A fresh loopback workspace with its own MLflow server, this process pointed at it;
    yields ``(workspace, scratch folder)``. ``settings`` go to the workspace (e.g.
    ``pending_seconds``, how long a job run waits for its cluster)."""
    from mlrun_magic.testing.mlflow_server import MlflowServer
    from mlrun_magic.testing.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix=prefix))
    with MlflowServer(root / "mlflow") as mlflow_server:
        ws = Workspace(root / "ws", mlflow_url=mlflow_server.url, **settings)
        ws.start()
        try:
            os.environ.update(ws.env())
            os.environ["HOME"] = str(root / "home")
            os.environ["XDG_CACHE_HOME"] = str(root / "cache")
            yield ws, root
        finally:
            ws.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=50)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--quiet", type=float, default=90.0)
    parser.add_argument("--many", type=int, default=0,
                        help="instead: watch this many printing runs at once (--lines each)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.many:
        return main_many(args)
    with loopback("watch-bench-") as (ws, root):
        project = make_project(root)
        redraws, window = watch(project, "tick", {"lines": args.lines,
                                                  "interval": args.interval})
        lags = delays(redraws)
        rate, kinds = per_minute(ws, window)
        _, quiet_window = watch(project, "quiet", {"seconds": args.quiet})
        quiet_rate, quiet_kinds = per_minute(ws, quiet_window)
    result = {"lines": len(lags), "delay_median_s": round(statistics.median(lags), 2),
              "delay_max_s": round(max(lags), 2), "printing_requests_per_run_minute":
              round(rate, 1), "printing_by_endpoint": dict(kinds),
              "quiet_requests_per_run_minute": round(quiet_rate, 1),
              "quiet_by_endpoint": dict(quiet_kinds), "mlflow_client_per_run_minute": 2.0}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"print-to-view delay over {result['lines']} lines: median "
          f"{result['delay_median_s']} s, max {result['delay_max_s']} s "
          "(goal: median < 3 s, max < 5 s)")
    print(f"requests per run-minute while printing: {result['printing_requests_per_run_minute']}"
          f" {dict(kinds)}")
    print(f"requests per run-minute while quiet:    {result['quiet_requests_per_run_minute']}"
          f" {dict(quiet_kinds)}")
    print("MLflow's own client: 2 per run-minute (runs/get every 30 s), no output, no metrics")


def main_many(args) -> None:
    with loopback("watch-many-bench-") as (ws, root):
        window = watch_many(make_project(root), args.many, args.lines)
        rate, kinds = per_minute(ws, window)
    result = {"runs": args.many, "window_s": round(window[1] - window[0], 1),
              "many_requests_per_run_minute": round(rate / args.many, 2),
              "many_by_endpoint": dict(kinds)}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{args.many} runs printing, each watched: {result['many_requests_per_run_minute']} "
          f"requests per run-minute over {result['window_s']} s {dict(kinds)}")


if __name__ == "__main__":
    main()
