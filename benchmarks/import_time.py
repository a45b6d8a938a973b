"""What ``%load_ext mlrun_magic`` adds to a bare IPython start, next to ``import
mlflow.projects`` (what a user would otherwise load). Goal: under 60 ms and 15 MB.

Each sample is a fresh process: an IPython shell is made (the bare start), then the
extension is loaded; the process reports both clocks and its peak RSS (from the OS).

Usage: .venv/bin/python benchmarks/import_time.py [--runs 15]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

PROBE = """
import json, resource, time
t0 = time.perf_counter()
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
c = Config(); c.HistoryAccessor.enabled = False
ip = InteractiveShell.instance(config=c)
t1 = time.perf_counter()
rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
{work}
t2 = time.perf_counter()
rss2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"bare_ms": (t1 - t0) * 1000, "added_ms": (t2 - t1) * 1000,
                  "added_mb": (rss2 - rss1) / 1024}}))
"""
CONTENDERS = {
    "%load_ext mlrun_magic": "ip.run_line_magic('load_ext', 'mlrun_magic')",
    "import mlflow.projects": "import mlflow.projects",
}


def sample(work: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(work=work)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    for name, work in CONTENDERS.items():
        sample(work)  # warm-up: file cache and .pyc files
        runs = [sample(work) for _ in range(args.runs)]
        added = statistics.median(r["added_ms"] for r in runs)
        mb = statistics.median(r["added_mb"] for r in runs)
        bare = statistics.median(r["bare_ms"] for r in runs)
        print(f"{name:24s} adds {added:7.1f} ms, {mb:5.1f} MB peak RSS "
              f"(bare IPython start {bare:.0f} ms; median of {args.runs})")


if __name__ == "__main__":
    main()
