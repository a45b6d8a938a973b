"""The run view's HTML laid out by a real Chromium (no JupyterLab): a long link in a narrow
view wraps between the parts of its URL, never inside a run id (issue 12 #9)."""

from __future__ import annotations

import pytest

from mlrun_magic.notebook.render import RunSnapshot, RunView

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
