"""How much `import mlrun_magic` (what `%load_ext mlrun_magic` imports first) adds to a
bare Python start. Target: under 30 ms.

Usage: .venv/bin/python benchmarks/import_time.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def timed(code: str, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    timed("import mlrun_magic", 3)  # warm the file cache and .pyc files
    bare = timed("pass", args.runs)
    ours = timed("import mlrun_magic", args.runs)
    ext = timed("import mlrun_magic; mlrun_magic.load_ipython_extension", args.runs) \
        if hasattr(__import__("mlrun_magic"), "load_ipython_extension") else None
    label = 'python -c "import mlrun_magic"'
    print(f"{'python -c pass':34s} median {statistics.median(bare):6.1f} ms")
    print(f"{label:34s} median {statistics.median(ours):6.1f} ms")
    delta = statistics.median(ours) - statistics.median(bare)
    print(f"import mlrun_magic adds {delta:.1f} ms (target < 30 ms) over {args.runs} runs each")
    if ext:
        print(f"(with the extension entry point resolved: median {statistics.median(ext):.1f} ms)")


if __name__ == "__main__":
    main()
