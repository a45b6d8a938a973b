"""In JupyterLab, in a real browser against the loopback workspace: a sweep cell's table
updates on its own after its cell ended, until every point is FINISHED and the best one is
marked, and ``%project_run compare`` then shows the sweep's runs and what differs between
them; the launch panel turns a comma-separated list into a sweep and shows its table."""

from __future__ import annotations

import json
import time

import pytest

from browser_kit import open_and_run_all, open_panel_notebook, wait_or_shoot, write_notebook

pytestmark = pytest.mark.browser

SWEEP_CELL = """%%project_run -b databricks -c cluster.json --metric loss --goal min
parameters:
  pause: 0.3
sweep:
  alpha: [0.1, 0.3]
  epochs: [5, 6]
max_parallel: 2
"""

# The sweep table under ``root`` (a CSS selector), read in one go: how many tables there are,
# the table's status, its counts, each row's point and status, and the rows marked best.
READ_SWEEP = """root => {
  const tables = document.querySelectorAll(root + ' .mlrun-magic-sweep');
  if (!tables.length) return null;
  const table = tables[tables.length - 1];
  const counts = table.querySelector('.mlrun-magic-counts');
  return {tables: tables.length,
          status: table.getAttribute('data-status'),
          counts: counts ? counts.textContent : null,
          rows: [...table.querySelectorAll('tr[data-point]')].map(tr => {
            const badge = tr.querySelector('span[data-status]');
            return [tr.getAttribute('data-point'), badge ? badge.getAttribute('data-status') : null,
                    tr.innerText, [...tr.querySelectorAll('a[href]')].map(a => a.textContent)];
          }),
          best: [...table.querySelectorAll("tr[data-best='true']")].map(
            tr => tr.getAttribute('data-point'))};
}"""

# The compare table: its title, the run headers and each row as [label, values...].
READ_COMPARE = """() => {
  const view = document.querySelector('.mlrun-magic-compare');
  if (!view) return null;
  const rows = [...view.querySelectorAll('table tr')];
  return {title: view.querySelector('b') ? view.querySelector('b').textContent : null,
          heads: [...rows[0].querySelectorAll('th')].map(th => th.textContent.trim()),
          rows: rows.slice(1).map(tr => [...tr.querySelectorAll('td')].map(
            td => td.textContent.trim()))};
}"""


def watch_sweep(page, root: str, want_rows: int, deadline_s: float, shot) -> tuple[dict, list]:
    """Read the sweep table under ``root`` every 0.2 s until it is FINISHED with
    ``want_rows`` rows (or the deadline passes: then a screenshot and a failure). Returns
    the last reading and every distinct (status, row statuses) seen, in order."""
    deadline = time.monotonic() + deadline_s
    seen: list = []
    view = None
    while time.monotonic() < deadline:
        view = page.evaluate(READ_SWEEP, root)
        if view is not None:
            state = (view["status"], tuple(status for _, status, *_ in view["rows"]))
            if not seen or seen[-1] != state:
                seen.append(state)
                print(f"{time.monotonic() - deadline + deadline_s:6.1f}s {state}")
            if view["status"] == "FINISHED" and len(view["rows"]) == want_rows and all(
                    status == "FINISHED" for _, status, *_ in view["rows"]):
                return view, seen
        time.sleep(0.2)
    page.screenshot(path=str(shot))
    raise AssertionError(f"the sweep table did not reach FINISHED within {deadline_s:.0f} s: "
                         f"last {view}, states seen {seen}")


def submitted_commands(workspace) -> list[str]:
    """The MLflow Project command of every job run the loopback workspace was sent."""
    commands = []
    for run in workspace.runs():
        body = run.get("request") or run["submitted"]
        spec = json.loads(body["tasks"][0]["spark_python_task"]["parameters"][3])
        commands.append(spec["command"])
    return commands


def test_in_jupyterlab_a_sweep_cell_watches_and_ranks_its_grid_then_compare_shows_what_differs(
        browser, lab, workspace, tmp_path):
    started = time.monotonic()
    url, token, root = lab
    write_notebook(root / "sweep.ipynb", "%load_ext mlrun_magic", SWEEP_CELL)
    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    try:
        open_and_run_all(page, url, token, "sweep.ipynb", tmp_path)  # the cell returns at once
        wait_or_shoot(page, ".mlrun-magic-sweep", tmp_path / "no-sweep.png", 60_000)
        cell_done = time.monotonic()
        view, seen = watch_sweep(page, ".jp-Notebook", 4, 180, tmp_path / "sweep-not-finished.png")
        finished = time.monotonic()
        # The kernel was idle all along: only its poller can have moved the table.
        assert seen[0][0] != "FINISHED" or any(s != "FINISHED" for s in seen[0][1]), seen
        assert len(seen) >= 2, f"the table never changed on its own: {seen}"
        assert view["tables"] == 1, "the sweep's table was drawn again instead of in place"
        assert [point for point, *_ in view["rows"]] == ["1", "2", "3", "4"], view
        assert len(view["best"]) == 1, view
        assert view["counts"] == "(4 finished)", view
        # Highest alpha and most epochs fit the line best: the lowest loss is point 4.
        rows = {point: text for point, _, text, _ in view["rows"]}
        assert view["best"] == ["4"], view
        assert rows["4"].split("\t")[1:3] == ["0.3", "6"], rows  # alpha, epochs
        assert all(links == ["job run", "MLflow"] for *_, links in view["rows"]), view
        commands = submitted_commands(workspace)
        assert len(commands) == 4, commands
        for alpha in ("0.1", "0.3"):
            for epochs in ("5", "6"):
                assert sum(f"--alpha {alpha} " in c and f"--epochs {epochs} " in c
                           and "--pause 0.3" in c for c in commands) == 1, (alpha, epochs, commands)

        # A new cell below, typed and run in the page: compare the kernel's last sweep.
        # (Shift+Enter on the last cell may have added an empty one: count, do not assume.)
        cells = page.locator(".jp-Notebook .jp-CodeCell")
        before = cells.count()
        cells.nth(1).locator(".jp-InputPrompt").click()
        page.keyboard.press("Escape")
        page.keyboard.press("b")
        page.wait_for_function("n => document.querySelectorAll('.jp-Notebook .jp-CodeCell')"
                               ".length === n", arg=before + 1, timeout=10_000)
        page.keyboard.press("Enter")
        page.keyboard.type("%project_run compare")
        page.keyboard.press("Shift+Enter")
        wait_or_shoot(page, ".mlrun-magic-compare", tmp_path / "no-compare.png", 60_000)
        compare = page.evaluate(READ_COMPARE)
        assert compare["title"] == "Comparing 4 runs", compare
        assert len(compare["heads"]) == 5 and compare["heads"][0] == "", compare
        table = {row[0]: row[1:] for row in compare["rows"]}
        assert table["status"] == ["FINISHED"] * 4, table
        assert sorted(table["param alpha"]) == ["0.1", "0.1", "0.3", "0.3"], table
        assert sorted(table["param epochs"]) == ["5", "5", "6", "6"], table
        pairs = sorted(zip(table["param alpha"], table["param epochs"]))
        assert pairs == [("0.1", "5"), ("0.1", "6"), ("0.3", "5"), ("0.3", "6")], table
        assert not [label for label in table if label.startswith("param ")
                    and label not in ("param alpha", "param epochs")], table  # same for all
        assert "metric loss" in table and len(table["metric loss"]) == 4, table

        page.keyboard.press("Control+s")
        deadline = time.monotonic() + 30
        while 'data-status="FINISHED"' not in saved_html(root / "sweep.ipynb", 1):
            assert time.monotonic() < deadline, "the saved notebook has no final sweep table"
            time.sleep(0.3)
        cell = json.loads((root / "sweep.ipynb").read_text())["cells"][1]
        tables = [o for o in cell["outputs"] if "mlrun-magic-sweep" in
                  "".join(o.get("data", {}).get("text/html", ""))]
        assert len(tables) == 1, "the saved cell holds more than the table's final state"
        saved = "".join(tables[0]["data"]["text/html"])
        assert saved.count("data-status='FINISHED'") == 4 and saved.count("data-best='true'") == 1
        assert "mlrun-magic-compare" in saved_html(root / "sweep.ipynb", 2)
    except BaseException:
        page.screenshot(path=str(tmp_path / "failed.png"))
        raise
    finally:
        page.close()
    print(f"sweep browser test: cell ran {cell_done - started:.1f}s, table FINISHED "
          f"{finished - cell_done:.1f}s later, {len(seen)} states seen, "
          f"{time.monotonic() - started:.1f}s in all")


def test_in_jupyterlab_the_panel_launches_a_sweep_from_a_comma_list(browser, lab, workspace,
                                                                   tmp_path):
    started = time.monotonic()
    page = open_panel_notebook(browser, lab, tmp_path, "sweep_panel.ipynb")
    try:
        page.locator(".mlrun-magic-backend button", has_text="Databricks").click()
        wait_or_shoot(page, ".mlrun-magic-spec-file input", tmp_path / "no-databricks.png",
                      30_000)
        assert page.locator(".mlrun-magic-spec-file input").input_value() == "cluster.json"
        launch = page.locator(".mlrun-magic-launch")
        parallel = page.locator(".mlrun-magic-parallel input")
        assert launch.inner_text().strip() == "Launch" and not parallel.is_visible()
        # epochs 5: the MLproject's 200 epochs with a 0.3 s pause would run a minute each.
        for name, typed in (("alpha", "0.1, 0.3"), ("pause", "0.3"), ("epochs", "5")):
            field = page.locator(f".mlrun-magic-param-{name} input")
            field.click()
            page.keyboard.press("Control+a")
            field.press_sequentially(typed, delay=30)  # key by key, as a person types
            field.press("Tab")
            assert field.input_value() == typed
        try:
            page.wait_for_function(
                "() => document.querySelector('.mlrun-magic-launch').innerText.trim()"
                " === 'Launch 2 runs'", timeout=15_000)
        except Exception:
            page.screenshot(path=str(tmp_path / "no-launch-2-runs.png"))
            raise AssertionError(f"Launch reads {launch.inner_text()!r}") from None
        assert parallel.is_visible() and parallel.input_value() == "4"
        form = page.locator(".mlrun-magic-form").inner_text()
        assert "2 values: one run each" in form and "Parallel runs" in form
        assert "a sweep of 2 runs (alpha), at most 4 at once" in form
        assert launch.is_enabled()
        t0 = time.monotonic()
        launch.click()
        wait_or_shoot(page, ".mlrun-magic-panel .mlrun-magic-sweep", tmp_path / "no-sweep.png",
                      60_000)
        view, seen = watch_sweep(page, ".mlrun-magic-panel", 2, 150,
                                 tmp_path / "panel-sweep-not-finished.png")
        print(f"launch to finished {time.monotonic() - t0:.1f}s; form ready {t0 - started:.1f}s")
        assert view["tables"] == 1 and [p for p, *_ in view["rows"]] == ["1", "2"], view
        assert view["counts"] == "(2 finished)", view
        assert all(links == ["job run", "MLflow"] for *_, links in view["rows"]), view
        assert len(seen) >= 2, f"the panel's table never changed on its own: {seen}"
        assert page.locator(".mlrun-magic-error").count() == 0
        page.locator(".mlrun-magic-panel").screenshot(path=str(tmp_path / "panel-sweep.png"))
    except BaseException:
        page.screenshot(path=str(tmp_path / "failed.png"))
        raise
    finally:
        page.close()
    commands = submitted_commands(workspace)
    assert len(commands) == 2, commands
    for alpha in ("0.1", "0.3"):
        assert sum(f"--alpha {alpha} " in c and "--epochs 5 " in c and "--pause 0.3" in c
                   for c in commands) == 1, commands
    print(f"panel sweep browser test: {time.monotonic() - started:.1f}s from a started JupyterLab")


def saved_html(path, index: int) -> str:
    cells = json.loads(path.read_text())["cells"]
    if len(cells) <= index:
        return ""
    return "".join("".join(o.get("data", {}).get("text/html", ""))
                   for o in cells[index].get("outputs", []))
