"""In JupyterLab, a loopback Databricks run's view updates on its own after its cell ended:
the driver's newest lines appear in the output block, the logged metric moves with its
sparkline, and the final state stays in the saved notebook, once."""

from __future__ import annotations

import json
import statistics
import time

import pytest

from browser_kit import open_and_run_all, write_notebook

pytestmark = pytest.mark.browser

TICK = ("import time\nimport mlflow\nwith mlflow.start_run():\n"
        "    for i in range(15):\n        print(f'tick {i:03d} {time.time():.3f}', flush=True)\n"
        "        mlflow.log_metric('loss', 1.0 / (i + 1), step=i)\n        time.sleep(1)\n")

# Everything the run view shows, read in one go: status, output lines, the loss metric.
READ_VIEW = """() => {
  const view = document.querySelector('.mlrun-magic-run');
  if (!view) return null;
  const tail = view.querySelector('.mlrun-magic-tail');
  const loss = view.querySelector("tr[data-metric='loss']");
  return {status: view.getAttribute('data-status'),
          lines: tail ? tail.textContent.split('\\n') : [],
          loss: loss ? loss.textContent : null,
          spark: loss ? loss.querySelectorAll('svg').length : 0};
}"""


# Each animation frame, the view's height (-1: no view in the page) and status: an update
# that blanks or collapses the live view, even for one frame, is a flicker. (Once FINISHED
# the output folds away on purpose: the final view is compact.)
WATCH_FRAMES = """() => {
  window.__heights = [];
  const look = () => {
    const view = document.querySelector('.mlrun-magic-run');
    window.__heights.push(view ? [view.getBoundingClientRect().height,
                                  view.getAttribute('data-status')] : [-1, null]);
    requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
}"""


def test_in_jupyterlab_the_views_lines_and_metrics_update_on_their_own(browser, lab, tmp_path):
    url, token, root = lab
    (root / "tick.py").write_text(TICK)
    mlproject = root / "MLproject"
    mlproject.write_text(mlproject.read_text() + "  tick:\n    command: \"python tick.py\"\n")
    write_notebook(root / "live.ipynb", "%load_ext mlrun_magic",
                   "%project_run -b databricks -c cluster.json -e tick")
    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    first_seen: dict[str, float] = {}
    running_states, losses = set(), set()
    try:
        open_and_run_all(page, url, token, "live.ipynb", tmp_path)  # the cell returns at once
        page.wait_for_selector(".mlrun-magic-run")
        page.evaluate(WATCH_FRAMES)
        deadline = time.monotonic() + 150
        view = None
        while time.monotonic() < deadline:
            view = page.evaluate(READ_VIEW)
            if view is not None:
                now = time.time()
                ticks = [line for line in view["lines"] if line.startswith("tick ")]
                for line in ticks:
                    first_seen.setdefault(line, now)
                if view["status"] == "RUNNING" and ticks:
                    running_states.add(tuple(ticks))
                    if view["loss"]:
                        losses.add(view["loss"])
                if view["status"] == "FINISHED":
                    break
            time.sleep(0.2)
        assert view is not None and view["status"] == "FINISHED", view
        frames = page.evaluate("window.__heights")
        assert len(frames) > 100 and min(h for h, _ in frames) > 0, "the view vanished"
        live = [h for h, status in frames if status != "FINISHED"]
        drops = [(a, b) for a, b in zip(live, live[1:]) if b < 0.8 * a]
        assert not drops, f"the view collapsed during an update: {drops[:5]}"
        assert len(running_states) >= 3, "the lines did not change on their own while RUNNING"
        assert len(losses) >= 2, f"the metric did not move while RUNNING: {losses}"
        final_ticks = [line for line in view["lines"] if line.startswith("tick ")]
        assert view["spark"] == 1 and final_ticks[-1].startswith("tick 014"), view
        numbers = [int(line.split()[1]) for line in first_seen]
        assert numbers == list(range(15)), "a line was lost, repeated or out of order"
        delays = [first_seen[line] - float(line.split()[2]) for line in first_seen]
        print(f"print-to-view delay in JupyterLab over {len(delays)} lines: median "
              f"{statistics.median(delays):.2f} s, max {max(delays):.2f} s")
        page.keyboard.press("Control+s")
        deadline = time.monotonic() + 30
        while "FINISHED" not in saved_view(root / "live.ipynb"):
            assert time.monotonic() < deadline, "the saved notebook has no final view"
            time.sleep(0.3)
        cell = json.loads((root / "live.ipynb").read_text())["cells"][1]
        views = [o for o in cell["outputs"] if "mlrun-magic-run" in
                 "".join(o.get("data", {}).get("text/html", ""))]
        assert len(views) == 1, "the saved cell holds more than the view's final state"
        assert len(json.dumps(cell)) < 60_000
    finally:
        page.close()


def saved_view(path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "".join("".join(o.get("data", {}).get("text/html", ""))
                   for o in cells[1].get("outputs", []))
