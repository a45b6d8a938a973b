"""In JupyterLab, in a real browser: the launch panel launches a run on the loopback workspace,
and a %%project_run cell's status moves to FINISHED on its own."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from browser_kit import REPO, open_and_run_all, wait_or_shoot, write_notebook

pytestmark = pytest.mark.browser


def test_panel_launches_a_databricks_run(browser, lab, workspace, tmp_path):
    url, token, root = lab
    experiment = f"/Shared/browser-{uuid.uuid4().hex[:8]}"
    write_notebook(root / "panel.ipynb", "%load_ext mlrun_magic",
                   f"%config ProjectRun.experiment_name = {experiment!r}\n"
                   "%config ProjectRun.backend = 'databricks'\n"
                   "%config ProjectRun.poll_interval = 1",
                   "%project_run panel")
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        open_and_run_all(page, url, token, "panel.ipynb", tmp_path)
        panel = wait_or_shoot(page, ".mlrun-magic-panel", tmp_path / "no-panel.png", 90_000)
        epochs = page.locator(".mlrun-magic-param-epochs input")
        epochs.fill("7")
        epochs.press("Tab")
        page.click(".mlrun-magic-launch")
        page.wait_for_selector(".mlrun-magic-panel .mlrun-magic-status[data-status='FINISHED']",
                               timeout=120_000)
        link = page.locator(".mlrun-magic-panel a[data-link='mlflow_run']")
        assert "/ml/experiments/" in link.inner_text()
        job_link = page.locator(".mlrun-magic-panel a[data-link='job_run']")
        assert job_link.inner_text().startswith(f"{workspace.host}/?o=")
        shot = tmp_path / "panel.png"
        panel.screenshot(path=str(shot))
        if os.environ.get("MLRUN_MAGIC_UPDATE_SCREENSHOT"):  # refresh the README's picture
            shutil.copyfile(shot, REPO / "docs" / "panel.png")
    finally:
        page.close()
    runs = workspace.runs()
    assert len(runs) == 1
    body = runs[0].get("request") or runs[0]["submitted"]
    spec = json.loads(body["tasks"][0]["spark_python_task"]["parameters"][3])
    assert "--epochs 7" in spec["command"]


def test_cell_status_moves_to_finished_on_its_own(browser, lab, workspace, tmp_path):
    url, token, root = lab
    write_notebook(root / "cell.ipynb", "%load_ext mlrun_magic\n%config ProjectRun.poll_interval = 1",
                   "%%project_run -b databricks -c cluster.json\nparameters:\n  epochs: 20\n"
                   "  pause: 0.05")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        open_and_run_all(page, url, token, "cell.ipynb", tmp_path)
        first = wait_or_shoot(page, ".mlrun-magic-run .mlrun-magic-status", tmp_path / "no-run.png",
                              90_000)
        assert first.get_attribute("data-status") in ("PENDING", "RUNNING", "QUEUED")
        wait_or_shoot(page, ".mlrun-magic-run .mlrun-magic-status[data-status='FINISHED']",
                      tmp_path / "not-finished.png", 120_000)
        assert page.locator(".mlrun-magic-run a[data-link='job_run']").count() == 1
        assert page.locator(".mlrun-magic-run a[data-link='mlflow_run']").count() == 1
        page.screenshot(path=str(tmp_path / "cell.png"))
    finally:
        page.close()
