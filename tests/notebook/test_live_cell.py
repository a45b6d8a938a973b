"""A ``%%project_run`` cell in a real kernel against the loopback workspace: while it waits for
its Databricks run, the view's updates (display updates of the one output) show the
driver's lines and the logged metric while the run is RUNNING, before it finishes; what a
notebook keeps of the cell is the view's final state, one output, whatever the number of
updates."""

from __future__ import annotations

import json
import re
from html import unescape

import pytest

from tests.notebook.kernel_kit import errors_of, text_of

pytestmark = pytest.mark.slow

TICK = ("import sys\nimport time\nimport mlflow\nsteps = int(sys.argv[1])\n"
        "with mlflow.start_run():\n    for i in range(steps):\n"
        "        print(f'tick {i:03d}', flush=True)\n"
        "        mlflow.log_metric('loss', 1.0 / (i + 1), step=i)\n        time.sleep(0.5)\n")
CELL = """%%project_run -b databricks -c cluster.json -e tick --wait
parameters:
  steps: 14
"""


@pytest.fixture
def nb(kernel):
    (kernel.folder / "tick.py").write_text(TICK)
    mlproject = kernel.folder / "MLproject"
    mlproject.write_text(mlproject.read_text() + "  tick:\n    parameters:\n"
                         "      steps: {type: int, default: 5}\n"
                         "    command: \"python tick.py {steps}\"\n")
    return kernel


def views(messages):
    """(message type, display id, status, tick lines, loss shown) of each view output."""
    shown = []
    for m in messages:
        if m["msg_type"] not in ("display_data", "update_display_data"):
            continue
        html = m["content"]["data"].get("text/html", "")
        if "mlrun-magic-run" not in html:
            continue
        status = re.search(r'data-status="(\w+)"', html).group(1)
        tail = re.search(r'<pre class="mlrun-magic-tail"[^>]*>(.*?)</pre>', html, re.S)
        ticks = re.findall(r"tick \d{3}", unescape(tail.group(1))) if tail else []
        loss = re.search(r"<tr data-metric=\"loss\".*?</tr>", html, re.S)
        shown.append((m["msg_type"], m["content"].get("transient", {}).get("display_id"),
                      status, ticks, loss.group(0) if loss else None))
    return shown


def test_a_waiting_cell_shows_lines_and_metrics_while_running_and_keeps_the_final_view(nb):
    out = nb(CELL, timeout=180)
    assert not errors_of(out), text_of(out)
    shown = views(out)
    assert shown[0][0] == "display_data" and all(s[0] == "update_display_data"
                                                 for s in shown[1:]), shown
    assert len({s[1] for s in shown}) == 1, "the updates went to more than the one view"
    running = [s for s in shown if s[2] == "RUNNING" and s[3]]
    assert running, "no update showed a line while the run was RUNNING"
    assert any(s[4] for s in running), "no update showed the metric while the run was RUNNING"
    assert len({tuple(s[3]) for s in running}) >= 2, "the lines did not change while RUNNING"
    for *_, ticks, _ in shown:
        numbers = [int(t.split()[1]) for t in ticks]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) if numbers else True
    final = shown[-1]
    assert final[2] == "FINISHED" and final[3][-1] == "tick 013" and "0.07143" in final[4]
    # What a notebook keeps: display updates replace the one output (as nbformat does).
    outputs = kept_outputs(out)
    assert len(outputs) == 1 and 'data-status="FINISHED"' in outputs[0]["data"]["text/html"]
    assert len(json.dumps(outputs)) < 40_000 < sum(len(json.dumps(m["content"])) for m in out)


def kept_outputs(messages) -> list[dict]:
    """The cell's outputs as a front end keeps them: an update replaces its display's data."""
    outputs, by_id = [], {}
    for m in messages:
        content = m["content"]
        display_id = content.get("transient", {}).get("display_id")
        if m["msg_type"] == "display_data":
            outputs.append({"data": dict(content["data"])})
            if display_id:
                by_id[display_id] = outputs[-1]
        elif m["msg_type"] == "update_display_data" and display_id in by_id:
            by_id[display_id]["data"] = dict(content["data"])
    return outputs
