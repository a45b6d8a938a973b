"""The sections of ``make bench`` (see bench.py): each measures one claim with the benchmark
script of this folder, in child processes, and returns its figures."""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: MLflow's own client polls ``runs/get`` every 30 s: 2 requests per run-minute.
MLFLOW_PER_RUN_MINUTE = 2.0


def figure(name, ours, anchor, unit, goal, met, note="", *, ratio=None, load=False) -> dict:
    """One row of bench.json (``ratio`` is ours / anchor unless given)."""
    if ratio is None and ours is not None and anchor:
        ratio = ours / anchor
    return {"name": name, "ours": _round(ours), "anchor": _round(anchor), "unit": unit,
            "ratio": _round(ratio), "goal": goal, "met": met,
            "note": note + (" Depends on the machine's load." if load else "")}


def _round(value):
    return round(value, 4) if isinstance(value, float) else value


def median(samples: list[dict], key: str) -> float:
    return statistics.median(sample[key] for sample in samples)


def child_json(argv: list[str], timeout: float) -> dict:
    """Run a benchmark script of this folder in its own process; its ``--json`` result."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv[:1])} failed: {done.stderr.strip()[-400:]}")
    out = done.stdout
    return json.loads(out[out.index("{"):])


def samples_of(options, argv: list[str], timeout: float) -> list[dict]:
    """``--runs`` results of a script, each from a fresh process (and its own workspace)."""
    return [child_json(argv, timeout) for _ in range(options.runs)]


# -- 1. extension load ----------------------------------------------------------------------
def load(options) -> list[dict]:
    from benchmarks.import_time import CONTENDERS, sample

    got = {}
    for name, work in CONTENDERS.items():
        sample(work)  # warm-up: file cache, .pyc files
        got[name] = [sample(work) for _ in range(options.runs)]
    ours, anchor = got["%load_ext mlrun_magic"], got["import mlflow.projects"]
    ms, mb = median(ours, "added_ms"), median(ours, "added_mb")
    note = "Added to a bare IPython start; anchor: import mlflow.projects."
    return [figure("%load_ext time", ms, median(anchor, "added_ms"), "ms", "< 60 ms", ms < 60,
                   note, load=True),
            figure("%load_ext memory", mb, median(anchor, "added_mb"), "MB", "< 15 MB",
                   mb < 15, note)]


# -- 2. packaging ---------------------------------------------------------------------------
def packaging(options) -> list[dict]:
    figures = []
    for size in options.sizes.split(","):
        figures += _packaging_at(options, size.strip())
    return figures


def _packaging_at(options, size: str) -> list[dict]:
    from benchmarks import packaging as pk

    nbytes = pk._parse_size(size)
    files = 300 if options.quick else 3000
    full, clean = (_generated(options.workdir, variant, nbytes, files)
                   for variant in ("full", "clean"))
    scratch = Path(tempfile.mkdtemp(prefix="bench-", dir=options.workdir))
    try:
        for project in (full, clean):  # warm-up: every file in the page cache
            pk.run_contender("tar|gzip-1", project, scratch)
        rounds = [_packaging_round(pk, full, clean, scratch, n) for n in range(options.runs)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    got = {key: [r[key] for r in rounds] for key in rounds[0]}
    ours, mlflow = median(got["ours"], "seconds"), median(got["mlflow"], "seconds")
    ours_clean, tar = median(got["ours-clean"], "seconds"), median(got["tar"], "seconds")
    warm = median(got["warm"], "seconds")
    rss = max(r["peak_rss_kb"] for r in got["ours"] + got["ours-clean"]) / 1024
    ml = got["mlflow"][0]
    what = (f"{size} project, {files:,} files. MLflow packs all {ml['packed_files']:,} files "
            f"({ml['packed_bytes'] / 1e6:,.0f} MB) with .git, .venv, __pycache__; ours "
            f"{got['ours'][0]['packed_files']:,}.")
    return [
        figure(f"packaging {size}: time vs MLflow", ours, mlflow, "s", ">= 15x faster",
               mlflow / ours >= 15, what + " Anchor: MLflow's make_tarfile + sha256.",
               load=True),
        figure(f"packaging {size}: time vs tar|gzip -1", ours_clean, tar, "s", "<= 1.0x",
               ours_clean / tar <= 1.0, "The same files (the project without its noise); "
               "ours timed inside its process, tar|gzip as the whole pipeline.", load=True),
        figure(f"packaging {size}: peak RSS", rss, median(got["mlflow"], "peak_rss_kb") / 1024,
               "MB", "< 64 MB", rss < 64, "Highest of ours (whole process); anchor: MLflow's."),
        figure(f"packaging {size}: unchanged project", warm, ours, "s", "< 0.1 s",
               warm < 0.1 and all(r["cached"] for r in got["warm"]),
               "Re-packaging an unchanged project (manifest cache); anchor: ours cold."),
    ]


def _packaging_round(pk, full: Path, clean: Path, scratch: Path, number: int) -> dict:
    """One sample of every contender (a fresh manifest cache for the cold ones)."""
    cold = scratch / f"cold-{number}"
    again = scratch / f"clean-{number}"
    for folder in (cold, again):
        folder.mkdir()
    return {"mlflow": pk.run_contender("mlflow", full, cold),
            "ours": pk.run_contender("ours-cold", full, cold),
            "warm": pk.run_contender("ours-warm", full, cold),
            "ours-clean": pk.run_contender("ours-cold", clean, again),
            "tar": pk.run_contender("tar|gzip-1", clean, again)}


def _generated(workdir: Path, variant: str, nbytes: int, files: int) -> Path:
    """The benchmark project (made once, kept in ``workdir``)."""
    project = workdir / f"{variant}-{nbytes}-{files}-0"
    stamp = project.with_suffix(".done")
    if not stamp.exists():
        shutil.rmtree(project, ignore_errors=True)
        workdir.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / "generate_project.py"),
                        str(project), "--size", str(nbytes), "--files", str(files)]
                       + ([] if variant == "full" else ["--no-extras"]), check=True,
                       stdout=subprocess.DEVNULL)
        stamp.touch()
    return project


# -- 3. submitting --------------------------------------------------------------------------
def submitting(options) -> list[dict]:
    got = child_json(["benchmarks/submitting.py", "--runs", str(options.runs), "--json"],
                     timeout=1800)
    ours, mlflow = got["ours_submit_s"], got["mlflow_submit_s"]
    warm, mlflow_warm = got["ours_warm_submit_s"], got["mlflow_warm_submit_s"]
    note = "Call to job run submitted with its URL; anchor: mlflow.projects.run(backend=" \
           "'databricks', synchronous=False) on the same project. Loopback workspace."
    return [
        figure("submit latency, first in a process", ours, mlflow, "s", "<= 0.5x MLflow's",
               ours <= 0.5 * mlflow, note + " Both calls import databricks.sdk (about 1.9 s "
               "here), a notebook's first run only.", load=True),
        figure("submit latency, a changed project", warm, mlflow_warm, "s",
               "<= 0.5x MLflow's", warm <= 0.5 * mlflow_warm,
               note + " Each contender's second call, after changing the project.", load=True),
        figure("re-submit of an unchanged project", got["resubmit_s"], ours, "s",
               "< a cold submit", got["resubmit_s"] < ours, "Anchor: ours, cold.", load=True),
        figure("bytes uploaded by a re-submit", got["resubmit_bytes_uploaded"], None, "bytes",
               "0", got["resubmit_bytes_uploaded"] == 0),
        figure("requests per submission", got["requests_per_submission"],
               got["mlflow_requests_per_submission"], "requests", "(reported)", None,
               f"A re-submit: {got['requests_per_resubmit']}. Anchor: MLflow's client."),
    ]


# -- 4 and 5. watching: requests per run-minute, log latency ---------------------------------
def watching(options) -> list[dict]:
    lines, quiet = ("10", "15") if options.quick else ("50", "60")
    one = samples_of(options, ["benchmarks/watching.py", "--json", "--lines", lines,
                               "--quiet", quiet], timeout=900)
    many = samples_of(options, ["benchmarks/watching.py", "--json", "--many", "10",
                                "--lines", "20" if options.quick else "60"], timeout=900)
    per_run = f"<= MLflow's ({MLFLOW_PER_RUN_MINUTE:g})"
    anchor = "Anchor: MLflow's client, runs/get every 30 s, which shows no log or metrics."
    printing = median(one, "printing_requests_per_run_minute")
    quiet_rate = median(one, "quiet_requests_per_run_minute")
    ten = median(many, "many_requests_per_run_minute")
    return [
        figure("log latency, median", median(one, "delay_median_s"), None, "s", "< 3 s",
               median(one, "delay_median_s") < 3, f"Over {lines} lines printed 1 s apart.",
               load=True),
        figure("log latency, max", median(one, "delay_max_s"), None, "s", "< 5 s",
               median(one, "delay_max_s") < 5, "The median of each sample's max.", load=True),
        figure("requests per run-minute, one run printing", printing, MLFLOW_PER_RUN_MINUTE,
               "requests", per_run, printing <= MLFLOW_PER_RUN_MINUTE,
               "Status, log tail and metrics shown. " + anchor),
        figure("requests per run-minute, one quiet run", quiet_rate, MLFLOW_PER_RUN_MINUTE,
               "requests", per_run, quiet_rate <= MLFLOW_PER_RUN_MINUTE, anchor),
        figure("requests per run-minute, ten runs", ten, MLFLOW_PER_RUN_MINUTE, "requests",
               per_run, ten <= MLFLOW_PER_RUN_MINUTE, "Ten printing runs, each with its view. "
               + anchor),
    ]


# -- 6. the 20-point sweep ------------------------------------------------------------------
def sweep(options) -> list[dict]:
    seconds, pending = ("10", "5") if options.quick else ("40", "20")
    got = samples_of(options, ["benchmarks/sweeping.py", "--json", "--seconds", seconds,
                               "--pending", pending], timeout=900)
    submitted = median(got, "enter_to_all_submitted_s")
    per_run = median(got, "requests_per_minute_while_all_run") / median(got, "points")
    return [
        figure("20-point sweep: Enter to all submitted", submitted, None, "s", "< 10 s",
               submitted < 10, f"Job clusters take {pending} s to start (a new Databricks "
               "cluster takes minutes), so the 20 loopback drivers do not compete with the "
               "submissions for this machine's cores.", load=True),
        figure("requests per run-minute, 20-point sweep", per_run, MLFLOW_PER_RUN_MINUTE,
               "requests", f"<= MLflow's ({MLFLOW_PER_RUN_MINUTE:g})",
               per_run <= MLFLOW_PER_RUN_MINUTE, "The sweep's table: status and the metric "
               "of every point, while all 20 run."),
    ]


# -- 7. the suite ---------------------------------------------------------------------------
def suite(options) -> list[dict]:
    record = options.suite_record
    if not record.exists():
        return [figure("make test wall time", None, None, "min", "< 15 min", False,
                       f"Not measured: no {record.relative_to(ROOT)}; run make test first.")]
    got = json.loads(record.read_text(encoding="utf-8"))
    minutes = got["seconds"] / 60
    when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(got["finished"]))
    return [figure("make test wall time", minutes, None, "min", "< 15 min", minutes < 15,
                   f"The last make test here ({when} UTC, {got['passed']} passed, "
                   f"{got['workers']} workers).", load=True)]


SECTIONS = {"load": load, "packaging": packaging, "submitting": submitting,
            "watching": watching, "sweep": sweep, "suite": suite}
