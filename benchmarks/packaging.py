"""Packaging a project for Databricks: mlrun_magic next to MLflow and `tar c | gzip -1`.

Generates the benchmark project (benchmarks/generate_project.py: 300 MB, 3,000 files by
default) twice: "full", with a .git folder, a .venv, __pycache__, mlruns and a .env, and
"clean", the same project without them, so every contender packs the same files. On each,
every contender runs in its own child process of this one, and its peak RSS comes from
os.wait4:

  mlflow      MLflow's own DatabricksJobRunner._upload_project_to_dbfs (make_tarfile into a
              temp dir, then sha256 of the whole file), with the DBFS existence check answered
              "already there" so nothing is uploaded
  ours-cold   mlrun_magic.packaging.build_archive with an empty manifest cache
  ours-warm   the same call again on the unchanged project (manifest cache hit)
  tar|gzip-1  `tar c DIR | gzip -1 > FILE`, the practical limit of a single-stream tar.gz

"time" is the packaging call measured inside the child (interpreter start-up and imports
excluded); "wall" is the whole child process seen from here. No assertion is made: the
targets (ours >= 8x faster than MLflow, within 1.5x of tar|gzip -1, peak RSS < 120 MB) are
printed next to the figures.

Usage: .venv/bin/python benchmarks/packaging.py [--size 300MB] [--files 3000] [--seed 0]
       [--workdir DIR] [--projects full,clean] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    del sys.path[0]  # this file is named packaging.py: don't shadow the `packaging` library
CONTENDERS = ("mlflow", "ours-cold", "ours-warm", "tar|gzip-1")


# --- children -------------------------------------------------------------------------------

def _rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_mlflow(project: Path) -> dict:
    """Run MLflow's packaging exactly as its Databricks backend does, minus the upload."""
    import logging

    from mlflow.projects.databricks import DatabricksJobRunner

    found: dict = {}

    class Capture(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if "in temp directory" in msg:
                found["tmp"] = msg.rsplit("in temp directory ", 1)[1].split(" ===")[0]

    class NoUpload(DatabricksJobRunner):
        def _dbfs_path_exists(self, dbfs_path):
            # Called after make_tarfile and the hash, while the temp archive still exists.
            found["size"] = os.path.getsize(os.path.join(found["tmp"], "project.tar.gz"))
            return True

    logger = logging.getLogger("mlflow.projects.databricks")
    logger.addHandler(Capture())
    logger.setLevel(logging.INFO)
    rss0 = _rss_kb()
    start = time.perf_counter()
    uri = NoUpload("databricks")._upload_project_to_dbfs(str(project), "0")
    seconds = time.perf_counter() - start
    files, nbytes = _count(project, skip={"mlruns"})
    return {"seconds": seconds, "size": found["size"], "sha256": uri.rsplit("/", 1)[1][:-7],
            "packed_files": files, "packed_bytes": nbytes, "rss_start_kb": rss0,
            "cached": False}


def child_ours(project: Path) -> dict:
    from mlrun_magic.packaging import build_archive

    rss0 = _rss_kb()
    start = time.perf_counter()
    archive = build_archive(project)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "size": archive.size, "sha256": archive.sha256,
            "packed_files": archive.file_count, "packed_bytes": archive.total_bytes,
            "rss_start_kb": rss0, "cached": archive.cached}


def _count(project: Path, skip: set[str] = frozenset()) -> tuple[int, int]:
    files = nbytes = 0
    for dirpath, dirnames, filenames in os.walk(project):
        dirnames[:] = [d for d in dirnames if d not in skip]
        for name in filenames:
            if name in skip:
                continue
            files += 1
            nbytes += os.lstat(os.path.join(dirpath, name)).st_size
    return files, nbytes


# --- parent ---------------------------------------------------------------------------------

def run_child(argv: list[str], env: dict | None = None) -> tuple[dict, float, int]:
    """Run ``argv``; return its JSON result, its wall time and its peak RSS in KB."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{argv} failed with status {proc.returncode}")
    return (json.loads(out) if out.strip() else {}), wall, usage.ru_maxrss


def run_contender(name: str, project: Path, scratch: Path) -> dict:
    env = dict(os.environ, XDG_CACHE_HOME=str(scratch / "cache"),
               PYTHONPATH=os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")]))
    if name == "tar|gzip-1":
        out = scratch / "tar-gzip.tar.gz"
        cmd = (f"tar c -C {_q(project.parent)} {_q(project.name)} | gzip -1 > {_q(out)}")
        result, wall, rss = run_child(["sh", "-c", cmd])
        files, nbytes = _count(project)
        result = {"seconds": wall, "size": out.stat().st_size, "packed_files": files,
                  "packed_bytes": nbytes, "rss_start_kb": 0, "cached": False, "sha256": ""}
        out.unlink()
    else:
        kind = "mlflow" if name == "mlflow" else "ours"
        result, wall, rss = run_child(
            [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(project)], env)
    result.update(name=name, wall=wall, peak_rss_kb=rss)
    return result


def _parse_size(text: str) -> int:
    import re

    m = re.fullmatch(r"\s*([\d.]+)\s*([kKmMgG]?)[bB]?\s*", text)
    if not m:
        raise SystemExit(f"error: not a size: {text!r}")
    return int(float(m.group(1)) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[
        m.group(2).lower()])


def _q(path: Path) -> str:
    import shlex

    return shlex.quote(str(path))


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f}"


def report(project_name: str, project: Path, results: dict[str, dict]) -> list[str]:
    lines = [f"\nProject '{project_name}' ({project}):",
             f"{'contender':<11} {'files':>6} {'packed MB':>9} {'archive MB':>10} "
             f"{'time s':>7} {'wall s':>7} {'peak RSS MB':>11} {'RSS at start':>12}  note"]
    for name in CONTENDERS:
        r = results.get(name)
        if not r:
            continue
        note = "cache hit" if r.get("cached") else ""
        if name == "ours-warm" and not r.get("cached"):
            note = "NOT a cache hit (files modified < 2 s ago?)"
        start = f"{r['rss_start_kb'] / 1024:,.1f}" if r["rss_start_kb"] else "-"
        lines.append(f"{name:<11} {r['packed_files']:>6,} {_mb(r['packed_bytes']):>9} "
                     f"{_mb(r['size']):>10} {r['seconds']:>7.2f} {r['wall']:>7.2f} "
                     f"{r['peak_rss_kb'] / 1024:>11,.1f} {start:>12}  {note}")
    ours, ml, tg, warm = (results.get(k) for k in ("ours-cold", "mlflow", "tar|gzip-1",
                                                   "ours-warm"))
    if ours and ml:
        x = ml["seconds"] / ours["seconds"]
        lines.append(f"  ours vs MLflow: {x:.1f}x faster (target >= 8x: "
                     f"{'met' if x >= 8 else 'MISSED'}); peak RSS {ours['peak_rss_kb'] / 1024:.0f}"
                     f" MB vs {ml['peak_rss_kb'] / 1024:.0f} MB")
    if ours and tg:
        x = ours["seconds"] / tg["seconds"]
        lines.append(f"  ours vs tar|gzip -1: {x:.2f}x its time (target <= 1.5x: "
                     f"{'met' if x <= 1.5 else 'MISSED'}); gzip deflates on one core, ours on "
                     f"up to {min(4, os.cpu_count() or 1)} threads and stores slices that do "
                     "not compress")
        lines.append(f"  archive size: ours {_mb(ours['size'])} MB, tar|gzip -1 "
                     f"{_mb(tg['size'])} MB" + (f", MLflow (gzip -9) {_mb(ml['size'])} MB"
                                                if ml else ""))
    if ours:
        rss = ours["peak_rss_kb"] / 1024
        lines.append(f"  ours peak RSS: {rss:.0f} MB (target < 120 MB: "
                     f"{'met' if rss < 120 else 'MISSED'})")
    if ours and warm:
        lines.append(f"  unchanged project (warm): {warm['seconds']:.3f} s, "
                     f"{warm['seconds'] / ours['seconds']:.1%} of the cold time")
    if ours and ml and ours["packed_bytes"] != ml["packed_bytes"]:
        lines.append(f"  note: MLflow packs {ml['packed_files']:,} files "
                     f"({_mb(ml['packed_bytes'])} MB) here, ours {ours['packed_files']:,} "
                     f"({_mb(ours['packed_bytes'])} MB): ours leaves out .git, .venv, "
                     "__pycache__ and .env; see the 'clean' project for like-for-like figures.")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", choices=["mlflow", "ours"], help=argparse.SUPPRESS)
    parser.add_argument("project", nargs="?", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size", default="300MB")
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path,
                        help="keep the generated projects here and reuse them (default: a "
                             "temporary folder, removed afterwards)")
    parser.add_argument("--projects", default="full,clean")
    parser.add_argument("--contenders", default=",".join(CONTENDERS))
    parser.add_argument("--json", action="store_true", help="also print the raw results")
    args = parser.parse_args(argv)
    if args.child:
        fn = child_mlflow if args.child == "mlflow" else child_ours
        print(json.dumps(fn(args.project)))
        return

    size = _parse_size(args.size)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mlrun_magic-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    all_results: dict = {}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"generated project: {args.size} in {args.files:,} files, seed {args.seed}")
    try:
        for variant in args.projects.split(","):
            project = workdir / f"{variant}-{size}-{args.files}-{args.seed}"
            stamp = project.with_suffix(".done")
            if not stamp.exists():
                shutil.rmtree(project, ignore_errors=True)
                # In a child: on Linux a child's peak RSS starts at its parent's RSS (the
                # parent's memory map is its own until exec), so this process stays small.
                subprocess.run([sys.executable, str(HERE / "generate_project.py"), str(project),
                                "--size", str(size), "--files", str(args.files),
                                "--seed", str(args.seed)]
                               + ([] if variant == "full" else ["--no-extras"]), check=True,
                               stdout=subprocess.DEVNULL)
                stamp.touch()
            scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=workdir))
            results = {}
            try:
                for name in args.contenders.split(","):
                    print(f"  {variant}: {name} ...", file=sys.stderr, flush=True)
                    results[name] = run_contender(name, project, scratch)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            all_results[variant] = results
            print("\n".join(report(variant, project, results)), flush=True)
        print(f"\n(peak RSS includes this parent's {_rss_kb() / 1024:.0f} MB, which a Linux "
              "child inherits as its starting high-water mark until exec; tar|gzip's is that "
              "of sh, tar and gzip together)")
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(all_results, indent=2))


if __name__ == "__main__":
    main()
