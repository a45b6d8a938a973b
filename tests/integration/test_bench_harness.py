"""``make bench``'s harness: a quick run of its cheapest sections writes ``bench.json`` with
every field the README's figures are read from, and a section that breaks is a figure that
says why, not a lost run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIELDS = {"name", "ours", "anchor", "unit", "ratio", "goal", "met", "note"}


def bench(tmp_path, *args) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "benchmarks/bench.py", "--quick", "--out", str(out),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    return done, (json.loads(out.read_text()) if out.exists() else {})


def test_a_quick_run_writes_every_figure_with_its_anchor_and_goal(tmp_path):
    done, result = bench(tmp_path, "--only", "load,suite")
    assert done.returncode == 0, done.stderr[-2000:]
    assert result["runs"] == 1 and result["quick"] is True and result["machine"]["cpus"]
    figures = {f["name"]: f for f in result["figures"]}
    assert {"%load_ext time", "%load_ext memory", "make test wall time"} <= set(figures)
    for item in figures.values():
        assert set(item) == FIELDS, item
        assert item["met"] in (True, False, None)
    load = figures["%load_ext time"]
    assert load["unit"] == "ms" and load["goal"] == "< 60 ms" and load["anchor"] > load["ours"] > 0
    assert abs(load["ratio"] - load["ours"] / load["anchor"]) < 1e-3
    assert load["met"] == (load["ours"] < 60) and "machine's load" in load["note"]
    assert "%load_ext time" in done.stdout and "goals met" in done.stdout


def test_an_unknown_section_is_refused_and_a_broken_one_is_reported(tmp_path):
    done, result = bench(tmp_path, "--only", "load,nope")
    assert done.returncode == 2 and "unknown section 'nope'" in done.stderr and not result
    # A section whose script fails (here: packaging a size that is not one) is a figure.
    done, result = bench(tmp_path, "--only", "packaging", "--sizes", "lots",
                         "--workdir", str(tmp_path / "projects"))
    assert done.returncode == 0, done.stderr[-2000:]
    (broken,) = result["figures"]
    assert broken["name"] == "packaging: not measured" and broken["met"] is False
    assert "lots" in broken["note"]
