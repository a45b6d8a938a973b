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
    waiting until the cell got its execution count."""
    page.goto(f"{url}/lab/tree/{name}?token={token}")
    wait_or_shoot(page, ".jp-Notebook-ExecutionIndicator[data-status='idle']",
                  shot_dir / "kernel-not-idle.png", 90_000)
    cells = page.locator(".jp-Notebook .jp-CodeCell")
    cells.first.locator(".jp-InputPrompt").click()
    for index in range(cells.count()):
        page.keyboard.press("Shift+Enter")
        prompt = cells.nth(index).locator(".jp-InputPrompt")
        try:
            page.wait_for_function(
                "el => /\\[\\d+\\]/.test(el.textContent)", arg=prompt.element_handle(),
                timeout=120_000)
        except Exception:
            page.screenshot(path=str(shot_dir / f"cell-{index}-not-run.png"))
            raise


def wait_or_shoot(page, selector: str, shot: Path, timeout: int):
    """Wait for ``selector``; on a time-out save a screenshot to ``shot`` before failing."""
    try:
        return page.wait_for_selector(selector, timeout=timeout)
    except Exception:
        page.screenshot(path=str(shot))
        raise
