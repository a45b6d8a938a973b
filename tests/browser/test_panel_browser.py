"""In JupyterLab, in a real browser: the launch panel (aligned, as in the README picture)
launches a run on the loopback workspace, and a %%project_run cell goes FINISHED on its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from browser_kit import (REPO, open_and_run_all, open_panel_notebook, wait_or_shoot,
                         write_notebook)

pytestmark = pytest.mark.browser


FORM_COLUMN = [".mlrun-magic-project input", ".mlrun-magic-form select",
               ".mlrun-magic-param-alpha input", ".mlrun-magic-param-epochs input",
               ".mlrun-magic-param-label input", ".mlrun-magic-backend button",
               ".mlrun-magic-spec-file input", ".mlrun-magic-experiment input",
               ".mlrun-magic-launch"]


def commit_all(root) -> None:
    """Make the project a git repository with one commit (the panel shows the commit)."""
    git = ["git", "-c", "user.name=Panel Test", "-c", "user.email=panel@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    (root / ".git" / "info").mkdir(exist_ok=True)
    (root / ".git" / "info" / "exclude").write_text(".ipynb_checkpoints/\n.virtual_documents/\n")
    subprocess.run(git + ["add", "."], cwd=root, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "quickstart"], cwd=root, check=True)


def test_panel_launches_a_databricks_run(browser, lab, workspace, tmp_path):
    """Open the notebook, run it, pick Databricks and an experiment, change a parameter,
    Launch; the panel shows the job-run and MLflow links and goes FINISHED on its own."""
    started = time.monotonic()
    url, token, root = lab
    experiment = f"/Shared/browser-{uuid.uuid4().hex[:8]}"
    write_notebook(root / "panel.ipynb", "%load_ext mlrun_magic\n"
                   "%config ProjectRun.poll_interval = 1", "%project_run panel")
    commit_all(root)
    page = browser.new_page(viewport={"width": 1280, "height": 1400})
    try:
        open_and_run_all(page, url, token, "panel.ipynb", tmp_path)
        wait_or_shoot(page, ".mlrun-magic-panel .mlrun-magic-form",
                      tmp_path / "no-panel.png", 90_000)
        page.locator(".mlrun-magic-backend button", has_text="Databricks").click()
        wait_or_shoot(page, ".mlrun-magic-spec-file input", tmp_path / "no-databricks.png",
                      30_000)
        page.locator(".mlrun-magic-experiment input").fill(experiment)
        epochs = page.locator(".mlrun-magic-param-epochs input")
        epochs.fill("7")
        epochs.press("Tab")
        assert "git" in page.locator(".mlrun-magic-source").inner_text()
        check_alignment(page, tmp_path)
        page.click(".mlrun-magic-launch")
        wait_or_shoot(page, ".mlrun-magic-panel .mlrun-magic-run "
                            ".mlrun-magic-status[data-status='FINISHED']",
                      tmp_path / "not-finished.png", 120_000)
        wait_or_shoot(page, ".mlrun-magic-history-status[data-status='FINISHED']",
                      tmp_path / "no-history.png", 30_000)
        link = page.locator(".mlrun-magic-panel .mlrun-magic-run a[data-link='mlflow_run']")
        assert "/ml/experiments/" in link.inner_text()
        job_link = page.locator(".mlrun-magic-panel .mlrun-magic-run a[data-link='job_run']")
        assert job_link.inner_text().startswith(f"{workspace.host}/?o=")
        assert page.locator(".mlrun-magic-error").count() == 0
        shot = tmp_path / "panel.png"
        page.locator(".mlrun-magic-panel").screenshot(path=str(shot))
        readme_shot = REPO / "docs" / "panel.png"
        if os.environ.get("MLRUN_MAGIC_UPDATE_SCREENSHOT") or not readme_shot.exists():
            shutil.copyfile(shot, readme_shot)  # the README's picture, refreshed when asked
    finally:
        page.close()
    runs = workspace.runs()
    assert len(runs) == 1
    body = runs[0].get("request") or runs[0]["submitted"]
    spec = json.loads(body["tasks"][0]["spark_python_task"]["parameters"][3])
    assert "--epochs 7" in spec["command"]
    print(f"panel browser test: {time.monotonic() - started:.1f}s from a started JupyterLab")


def check_alignment(page, shot_dir) -> None:
    """The form's fields and the Launch button share one left edge, and the labels one
    right edge: what the README's screenshot shows must be a tidy panel."""
    lefts = {sel: page.locator(sel).first.bounding_box()["x"] for sel in FORM_COLUMN}
    labels = page.locator(".mlrun-magic-label span").evaluate_all(
        "els => els.filter(e => e.getClientRects().length)"  # hidden rows (Parallel runs) aside
        ".map(e => e.getBoundingClientRect().right)")
    if max(lefts.values()) - min(lefts.values()) > 1.5 or max(labels) - min(labels) > 1.5:
        page.screenshot(path=str(shot_dir / "misaligned.png"))
        raise AssertionError(f"misaligned panel: field lefts {lefts}, label rights {labels}")


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


def test_number_fields_launch_what_they_show_or_refuse(browser, lab, tmp_path):
    """Typed into the int and float fields in the browser: 1.5, 1e3, abc and nothing. A value
    the type takes is what the dry run's command shows; any other keeps the text as typed,
    says why next to the field and disables Launch and Dry run."""
    url, token, root = lab
    page = open_panel_notebook(browser, lab, tmp_path, "fields.ipynb")
    try:
        launch = page.locator(".mlrun-magic-launch")
        dry_run = page.locator(".mlrun-magic-dry-run")
        cases = [("epochs", "1.5", None), ("epochs", "1e3", None), ("epochs", "abc", None),
                 ("epochs", "", None), ("epochs", "12", "--epochs 12"),
                 ("alpha", "1.5", "--alpha 1.5"), ("alpha", "1e3", "--alpha 1e3"),
                 ("alpha", "abc", None), ("alpha", "", None), ("alpha", "0.5", None)]
        for name, typed, shown in cases:
            field = page.locator(f".mlrun-magic-param-{name} input")
            field.fill(typed)
            field.press("Tab")
            page.wait_for_timeout(300)  # the kernel answers the change
            assert field.input_value() == typed  # what is shown is what was typed
            if typed == "0.5":  # back at the default: nothing to refuse, nothing sent
                assert launch.is_enabled()
                continue
            if shown is None:
                note = page.locator(".mlrun-magic-form").inner_text()
                assert launch.is_disabled() and dry_run.is_disabled(), (name, typed)
                assert ("is not a" in note or "needs a" in note), (name, typed, note)
                continue
            assert launch.is_enabled(), (name, typed)
            dry_run.click()
            plan = page.locator(".mlrun-magic-plan")
            plan.wait_for(timeout=30_000)
            page.wait_for_function(
                "want => [...document.querySelectorAll('.mlrun-magic-plan')]"
                ".some(e => e.innerText.includes(want))", arg=shown, timeout=30_000)
            if name == "epochs":  # leave it valid for the float cases
                field.fill("12")
                field.press("Tab")
    finally:
        page.close()
