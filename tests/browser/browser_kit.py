"""Helpers of the browser tests: notebooks on disk, JupyterLab driven through its menus."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def write_notebook(path: Path, *sources: str) -> None:
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"cell{i}",
                     "metadata": {}, "outputs": [], "source": src}
                    for i, src in enumerate(sources)],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                      "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(nb))


def open_and_run_all(page, url: str, token: str, name: str, shot_dir: Path) -> None:
    """Open a notebook in JupyterLab and run its cells one by one (Shift+Enter), each time
    waiting until the cell got its execution count.

    The first cell is sent again if JupyterLab dropped it: on a cold start the frontend can
    report the kernel idle before the kernel takes requests. It should be idempotent
    (``%load_ext``)."""
    page.goto(f"{url}/lab/tree/{name}?token={token}")
    wait_or_shoot(page, ".jp-Notebook-ExecutionIndicator[data-status='idle']",
                  shot_dir / "kernel-not-idle.png", 120_000)
    _wait_for_connected_kernel(url, token)
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    for index in range(cells.count()):
        prompt = cells.nth(index).locator(".jp-InputPrompt")
        for attempt in range(4 if index == 0 else 1):
            prompt.click()
            page.keyboard.press("Shift+Enter")
            try:
                page.wait_for_function(
                    "el => /\\[(\\d+|\\*)\\]/.test(el.textContent)",
                    arg=prompt.element_handle(), timeout=15_000 if index == 0 else 120_000)
                break
            except Exception:
                if attempt == (3 if index == 0 else 0):
                    page.screenshot(path=str(shot_dir / f"cell-{index}-not-run.png"))
                    raise
        try:
            page.wait_for_function("el => /\\[\\d+\\]/.test(el.textContent)",
                                   arg=prompt.element_handle(), timeout=120_000)
        except Exception:
            page.screenshot(path=str(shot_dir / f"cell-{index}-not-done.png"))
            raise


def _wait_for_connected_kernel(url: str, token: str, timeout: float = 120.0) -> None:
    """Until the server has a kernel that is idle with a frontend connected."""
    import time

    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kernels = requests.get(f"{url}/api/kernels", params={"token": token}, timeout=5).json()
        if not isinstance(kernels, list):  # the server's error object while it starts: ask again
            kernels = []
        if any(k.get("execution_state") == "idle" and k.get("connections", 0) > 0
               for k in kernels):
            return
        time.sleep(0.25)
    raise TimeoutError("no kernel became idle with a connected frontend")


def wait_or_shoot(page, selector: str, shot: Path, timeout: int):
    """Wait for ``selector``; on a time-out save a screenshot to ``shot`` before failing."""
    try:
        return page.wait_for_selector(selector, timeout=timeout)
    except Exception:
        page.screenshot(path=str(shot))
        raise


def open_panel_notebook(browser, lab, shot_dir: Path, name: str):
    """A page on a new notebook ``name`` that loads the extension and shows the launch
    panel, every cell run and the form drawn (the caller closes the page)."""
    url, token, root = lab
    write_notebook(root / name, "%load_ext mlrun_magic", "%project_run panel")
    page = browser.new_page(viewport={"width": 1280, "height": 1200})
    try:
        open_and_run_all(page, url, token, name, shot_dir)
        wait_or_shoot(page, ".mlrun-magic-panel .mlrun-magic-form", shot_dir / "no-panel.png",
                      90_000)
    except BaseException:
        page.close()
        raise
    return page
