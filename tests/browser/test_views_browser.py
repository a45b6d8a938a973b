"""Views laid out by a real Chromium: a long link in a narrow run view wraps between the
parts of its URL, never inside a run id; the panel's static snapshot is hidden in JupyterLab
while the widget shows, and is what an HTML export shows offline (issue 12 #9)."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from browser_kit import REPO, open_panel_notebook
from mlrun_magic.notebook.run_view import RunSnapshot, RunView

pytestmark = pytest.mark.browser

MLFLOW_RUN_ID = "0f3c9a8e5b7d4e21a6c0b9d8e7f6a5b4"
JOB_RUN_ID = "987654321098765"

# The lines the characters of ``text`` inside the element ``selector`` are laid out on.
LINES_OF = """([selector, text]) => {
  const el = document.querySelector(selector);
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(text);
    if (at < 0) continue;
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + text.length);
    return new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
  }
  return -1;
}"""


def test_a_long_link_keeps_its_ids_whole_when_it_wraps(browser):
    host = "https://adb-1234567890123456.7.azuredatabricks.net"
    links = {"job_run": f"{host}/?o=1234567890123456#job/{JOB_RUN_ID}/run/{JOB_RUN_ID}",
             "mlflow_run": f"{host}/ml/experiments/1234567890/runs/{MLFLOW_RUN_ID}"}
    view = RunView(RunSnapshot(run_id=MLFLOW_RUN_ID, project="demo", entry_point="main",
                               backend="databricks", status="RUNNING", links=links))
    page = browser.new_page(viewport={"width": 800, "height": 600})
    try:
        # As narrow as the panel's run view gets, minus a label column.
        page.set_content(f"<div style='width:330px'>{view.html()}</div>")
        for key, run_id in (("mlflow_run", MLFLOW_RUN_ID), ("job_run", JOB_RUN_ID)):
            selector = f"a[data-link='{key}']"
            assert page.eval_on_selector(selector, "a => a.getClientRects().length") > 1, \
                f"the {key} link should be long enough to wrap here"
            assert page.evaluate(LINES_OF, [selector, run_id]) == 1, key
            assert page.inner_text(selector) == links[key]  # copied as one URL
    finally:
        page.close()


def test_in_jupyterlab_the_live_panel_hides_its_snapshot(browser, lab, tmp_path):
    """The snapshot that exports show (issue 12 #9) is hidden while the widget shows, and the
    saved notebook holds the form as it was edited."""
    url, token, root = lab
    page = open_panel_notebook(browser, lab, tmp_path, "snapshot.ipynb")
    try:
        snapshot = page.locator(".mlrun-magic-panel-fallback")
        assert snapshot.count() == 1 and not snapshot.is_visible()
        children = page.locator(".jp-OutputArea-child")
        assert children.count() == 2
        assert children.nth(0).is_visible() and not children.nth(1).is_visible()
        label = page.locator(".mlrun-magic-param-label input")
        label.fill("edited in the lab")
        label.press("Tab")
        page.wait_for_function(
            "() => document.querySelector('.mlrun-magic-panel-fallback')"
            ".innerHTML.includes('edited in the lab')", timeout=30_000)
        page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").first.click()
        page.keyboard.press("Control+s")  # (a widget's input keeps its keys from JupyterLab)
        deadline = time.monotonic() + 30
        while "edited in the lab" not in saved_snapshot(root / "snapshot.ipynb"):
            assert time.monotonic() < deadline, "the saved notebook has the old snapshot"
            time.sleep(0.3)
    finally:
        page.close()


def saved_snapshot(path) -> str:
    cells = json.loads(path.read_text())["cells"]
    return "".join("".join(o.get("data", {}).get("text/html", ""))
                   for o in cells[1].get("outputs", []))


def test_an_exported_panel_shows_its_snapshot_offline(browser, tmp_path, mlflow_server):
    """nbconvert's HTML of an executed notebook, opened with the network cut off (so the
    widget script from the CDN never loads): the panel's form is there to read."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    root = tmp_path / "quickstart"
    shutil.copytree(REPO / "example_notebooks" / "quickstart", root,
                    ignore=shutil.ignore_patterns(".mlrun_magic", "*.ipynb"))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in (
        "%load_ext mlrun_magic", f"%config ProjectRun.tracking_uri = {mlflow_server.url!r}",
        "%project_run panel")]
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(root)}}).execute()
    body, _ = HTMLExporter().from_notebook_node(nb)
    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    try:
        page.route("**/*", lambda route: route.abort())  # nothing leaves this machine
        page.set_content(body)
        snapshot = page.locator(".mlrun-magic-panel-fallback")
        assert snapshot.is_visible()
        text = snapshot.inner_text()
        for shown in ("Project", "quickstart", "Entry point", "main", "epochs", "200",
                      "Backend", "local"):
            assert shown in text, shown
    finally:
        page.close()
