"""How fast ``python -m mlrun_magic.testing serve`` is ready, and that it leaves nothing behind.

Starts the loopback workspace (with its own MLflow tracking server, as a user would) several
times, and for each run measures:

- start-to-ready: from launching the command to the JSON line on stdout *and* a successful
  MLflow call through the workspace (``experiments/get-by-name``);
- shutdown: from SIGTERM to the command's exit, after which no process it started may be
  alive (checked through /proc, no psutil).

Run: ``.venv/bin/python benchmarks/workspace_startup.py [--runs N]``. The first run of a new
MLflow version also builds the migrated-database template cache (``~/.cache/mlrun-magic``);
``--cold`` removes that cache first to measure that case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from mlrun_magic.testing.procs import alive, descendants


def measure_once() -> tuple[float, float, int]:
    root = tempfile.mkdtemp(prefix="ws-bench-")
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mlrun_magic.testing", "serve", "--root", root],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        request = urllib.request.Request(
            info["host"] + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default",
            headers={"Authorization": f"Bearer {info['token']}"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 200
        ready = time.perf_counter() - started
        spawned = descendants(proc.pid)
    except Exception:
        proc.kill()
        raise
    stopping = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    stopped = time.perf_counter() - stopping
    time.sleep(0.2)
    left = [pid for pid in spawned if alive(pid)]
    shutil.rmtree(root, ignore_errors=True)
    if code != 0 or left:
        raise SystemExit(f"serve exited {code}; processes left behind: {left}")
    return ready, stopped, len(spawned)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold", action="store_true",
                        help="remove the MLflow database template cache first")
    args = parser.parse_args()
    if args.cold:
        from mlrun_magic.testing.mlflow_server import _check_installed, _template_path

        _template_path(_check_installed()).unlink(missing_ok=True)
    ready, stopped = [], []
    for index in range(args.runs):
        up, down, spawned = measure_once()
        ready.append(up)
        stopped.append(down)
        print(f"run {index + 1}: ready {up:.2f} s, shutdown {down:.2f} s, "
              f"{spawned} child processes started and all gone")
    print(f"start-to-ready: median {statistics.median(ready):.2f} s, max {max(ready):.2f} s "
          f"(target < 5 s); shutdown: median {statistics.median(stopped):.2f} s; "
          f"{os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
