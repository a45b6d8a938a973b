"""JupyterLab on loopback and Debian's Chromium driven by Playwright, for the browser tests.

Chromium is Debian's (/usr/bin/chromium; `make test` installs it with apt when missing) and
is never downloaded. A machine without it skips these tests, saying why.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from browser_kit import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing and could not be installed (make test runs "
                    "scripts/ensure_chromium.sh: apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api",
                                         reason="playwright is in the test extras")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def lab(workspace, mlflow_server, tmp_path):
    """JupyterLab serving a copy of the quick-start project, its kernels pointed at the
    loopback workspace. Yields (base URL, token, root folder)."""
    from mlrun_magic.testing.mlflow_server import free_port
    from mlrun_magic.testing.procs import alive, descendants

    root = tmp_path / "quickstart"
    shutil.copytree(REPO / "example_notebooks" / "quickstart", root,
                    ignore=shutil.ignore_patterns(".mlrun_magic", "*.ipynb"))
    home = tmp_path / "home"
    home.mkdir()
    # No "Would you like to get notified about Jupyter news?" toast over the page.
    settings = tmp_path / "lab-settings"
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text('{"fetchNews": "false", "checkForUpdates": false}')
    port, token = free_port(), "browser-test-token"
    env = {**os.environ, **workspace.env(), "HOME": str(home),
           "DATABRICKS_CONFIG_FILE": str(home / ".databrickscfg"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "JUPYTER_CONFIG_DIR": str(home / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings)}
    for name in ("MLFLOW_TRACKING_URI", "DATABRICKS_CONFIG_PROFILE", "DATABRICKS_CLIENT_ID",
                 "DATABRICKS_CLIENT_SECRET", "JPY_SESSION_NAME"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}", "--no-browser",
           f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log = open(tmp_path / "jupyterlab.log", "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/api/status", params={"token": token}, timeout=2).ok:
                break
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            raise RuntimeError((tmp_path / "jupyterlab.log").read_text()[-3000:])
        time.sleep(0.3)
    else:
        raise RuntimeError("JupyterLab did not start: " + (tmp_path / "jupyterlab.log").read_text()[-3000:])
    try:
        yield url, token, root
    finally:
        children = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in children:  # kernels started their own sessions: stop them too
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        log.close()
