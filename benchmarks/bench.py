"""``make bench``: every performance claim of the README as a figure next to its anchor,
measured in one run on this machine, written to ``build/bench.json``.

Each figure is the median of ``--runs`` samples (default 5) after a warm-up, each contender
in its own process, peak RSS from the OS (``os.wait4``/``getrusage``). A figure is an object
with ``name``, ``ours``, ``anchor`` (what it is compared with, measured in the same run, or
null when the goal is absolute), ``unit``, ``ratio`` (ours / anchor), ``goal`` (as text),
``met`` (true/false) and ``note`` (what the anchor is; ``load`` says when the figure depends
on how busy the machine is). The sections, each a module of this folder run in child
processes:

1. extension load (``import_time.py``);
2. packaging at 300 MB and 1 GB (``packaging.py``): MLflow's own packaging of the project as
   it is (with ``.git``, ``.venv``, ``__pycache__``, ``mlruns``), ours of the same, and
   ``tar c | gzip -1`` of the same files ours packs;
3. submitting (``submitting.py``): ours vs ``mlflow.projects.run(backend="databricks")``;
4. requests per run-minute and 5. log latency (``watching.py``);
6. the 20-point sweep (``sweeping.py``);
7. the wall time of the last ``make test`` here (recorded by it in ``build/suite.json``).

Usage: ``.venv/bin/python benchmarks/bench.py [--runs 5] [--only load,packaging,...]
[--sizes 300MB,1GB] [--out build/bench.json]``; ``--quick`` is a smoke run (1 sample, small
sizes, short runs): its figures are not the README's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    del sys.path[0]  # benchmarks/packaging.py must not shadow the `packaging` library
sys.path.insert(0, str(ROOT))

from benchmarks.bench_sections import SECTIONS  # noqa: E402

SUITE_RECORD = ROOT / "build" / "suite.json"


def run_sections(names: list[str], options) -> list[dict]:
    figures: list[dict] = []
    for name in names:
        print(f"-- {name} ...", file=sys.stderr, flush=True)
        start = time.monotonic()
        try:
            figures += SECTIONS[name](options)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 (one broken section
            # must not lose the others; a script's argument error is a SystemExit)
            figures.append({"name": f"{name}: not measured", "ours": None, "anchor": None,
                            "unit": "", "ratio": None, "goal": "", "met": False,
                            "note": f"{type(exc).__name__}: {exc}"[:500]})
        print(f"   {name} took {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
    return figures


def table(figures: list[dict]) -> str:
    """The figures as a fixed-width table."""
    def show(value) -> str:
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return str(value)

    rows = [("figure", "ours", "anchor", "unit", "ratio", "goal", "met")]
    rows += [(f["name"], show(f["ours"]), show(f["anchor"]), f["unit"], show(f["ratio"]),
              f["goal"], {True: "yes", False: "NO", None: "-"}[f["met"]]) for f in figures]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {f['name']}: {f['note']}" for f in figures if f.get("note")]
    # met is None for a figure reported without a goal (requests per submission)
    return "\n".join(lines + (["", "notes:"] + notes if notes else []))


def markdown(figures: list[dict]) -> str:
    """The figures as the README's table (``build/bench.md``, next to bench.json)."""
    def show(value, unit="") -> str:
        if value is None:
            return "-"
        text = f"{value:,.3g}" if isinstance(value, float) and abs(value) < 1000 \
            else f"{value:,.0f}" if isinstance(value, float) else str(value)
        return f"{text} {unit}".strip()

    lines = ["| Figure | mlrun_magic | anchor | ratio | goal | met |", "|---|---|---|---|---|---|"]
    def cell(text: str) -> str:
        return text.replace("|", "\\|")  # tar|gzip in a table cell

    lines += [f"| {cell(f['name'])} | {show(f['ours'], f['unit'])} | "
              f"{show(f['anchor'], f['unit'])} | {show(f['ratio'])} | {cell(f['goal'])} | "
              f"{ {True: 'yes', False: '**no**', None: '-'}[f['met']] } |" for f in figures]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="samples per figure (default 5)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"sections to run (default all: {','.join(SECTIONS)})")
    parser.add_argument("--sizes", help="packaging project sizes (default 300MB,1GB; "
                                         "--quick: 20MB)")
    parser.add_argument("--workdir", type=Path, default=ROOT / "build" / "bench-projects",
                        help="where the generated projects are kept between runs")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench.json")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 1 sample, 20 MB projects, short runs")
    options = parser.parse_args(argv)
    if options.quick:
        options.runs = 1
    options.sizes = options.sizes or ("20MB" if options.quick else "300MB,1GB")
    if options.runs < 1:
        parser.error("--runs must be at least 1")
    names = [n.strip() for n in options.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section {unknown[0]!r}; the sections are {', '.join(SECTIONS)}")
    options.suite_record = SUITE_RECORD
    started = time.time()
    figures = run_sections(names, options)
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
              "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                          "platform": sys.platform},
              "runs": options.runs, "quick": options.quick,
              "seconds": round(time.time() - started, 1), "figures": figures}
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    options.out.with_suffix(".md").write_text(markdown(figures), encoding="utf-8")
    print(table(figures))
    goals = [f for f in figures if f["met"] is not None]
    print(f"\n{sum(bool(f['met']) for f in goals)} of {len(goals)} goals met; "
          f"written to {options.out} ({result['seconds']:.0f} s, median of {options.runs})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
