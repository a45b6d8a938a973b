"""A ``%%project_run`` cell with a ``sweep:`` in a real kernel against the loopback workspace:
one table, redrawn in place, ends with every point FINISHED and the best one marked; a dry
run lists each point's command and starts nothing; the sweep flags without a sweep are a
sentence."""

from __future__ import annotations

import re

import pytest

from tests.notebook.kernel_kit import errors_of, text_of

pytestmark = pytest.mark.slow

CELL = """%%project_run -b databricks -c cluster.json --wait --metric loss --goal min{flags}
parameters:
  epochs: 4
sweep:
  alpha: [0.05, 0.5]
max_parallel: 2
"""


def tables(messages) -> list[str]:
    return [m["content"]["data"]["text/html"] for m in messages
            if m["msg_type"] in ("display_data", "update_display_data")
            and "mlrun-magic-sweep" in m["content"]["data"].get("text/html", "")]


def test_a_sweep_cell_shows_one_table_that_ends_with_the_best_point_marked(kernel):
    out = kernel(CELL.format(flags=""), timeout=240)
    assert not errors_of(out), text_of(out)
    shown = tables(out)
    assert len(shown) > 1 and [m["msg_type"] for m in out if "mlrun-magic-sweep" in str(
        m["content"].get("data", ""))][0] == "display_data"
    final = shown[-1]
    assert 'data-status="FINISHED"' in final and final.count("data-status='FINISHED'") == 2
    assert final.count("data-best='true'") == 1
    # alpha 0.5 fits the line faster than 0.05 in 4 epochs: its loss is lower.
    best = re.search(r"<tr data-point='(\d)' data-best='true'", final).group(1)
    assert best == "2", final
    assert "<Sweep " in text_of(out)  # the cell's value: the sweep, briefly


def test_a_dry_run_lists_the_points_and_starts_nothing(kernel):
    before = len(kernel.workspace.requests())
    out = kernel(CELL.format(flags=" --dry-run"))
    assert not errors_of(out), text_of(out)
    text = text_of(out)
    assert "a sweep of 2 runs" in text and "point 2 of 2 (alpha=0.5)" in text
    assert "--alpha 0.5 --epochs 4" in text
    assert not [r for r in kernel.workspace.requests()[before:]
                if r["path"].endswith(("/runs/submit", "/runs/create"))]


def test_sweep_flags_without_a_sweep_are_a_sentence(kernel):
    out = kernel("%project_run -b databricks --max-parallel 2")
    (error,) = errors_of(out)
    assert "the cell body has no sweep:" in "\n".join(error["traceback"])
    out = kernel("%%project_run -b databricks\nsweep:\n  alpha: [0.1, fast]\n")
    (error,) = errors_of(out)
    assert "point 2 of 2 (alpha=fast)" in "\n".join(error["traceback"])


def test_status_and_cancel_take_the_sweeps_id(kernel):
    out = kernel("%%project_run -b databricks -c cluster.json\nparameters:\n  pause: 1\n"
                 "sweep:\n  epochs: [300, 301, 302]\nmax_parallel: 1\n")
    assert not errors_of(out), text_of(out)
    sweep_id = re.search(r'class="mlrun-magic-sweep" data-run-id="(\w+)"', text_of(out)).group(1)
    status = kernel(f"%project_run status {sweep_id[:10]}")
    assert not errors_of(status) and f'data-run-id="{sweep_id}"' in text_of(status)
    cancel = kernel(f"%project_run cancel {sweep_id}", timeout=180)
    assert not errors_of(cancel), text_of(cancel)
    final = tables(cancel)[-1]
    assert 'data-status="KILLED"' in final and final.count("data-status='KILLED'") == 3
    runs = kernel.workspace.runs()
    assert len(runs) == 1 and runs[0]["state"]["life_cycle_state"] == "TERMINATED"
