"""A real IPython kernel for notebook tests (the ``kernel`` fixture of conftest.py) and what
its iopub messages show."""

from __future__ import annotations

import os
import queue
import shutil
import time
from pathlib import Path

QUICKSTART = Path(__file__).resolve().parents[2] / "example_notebooks" / "quickstart"
OUTPUTS = ("stream", "display_data", "execute_result", "error")


def start_kernel(workspace, tmp_path):
    """A real kernel in a copy of the quickstart, with the workspace's PAT only;
    ``run(code)`` executes and returns the cell's iopub messages (``on_start()`` is called
    once the cell is sent, e.g. to interrupt it); ``run.close()`` shuts it down."""
    from jupyter_client.manager import start_new_kernel

    folder = tmp_path / "quickstart"
    shutil.copytree(QUICKSTART, folder, ignore=shutil.ignore_patterns(".mlrun_magic", "*.ipynb"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABRICKS_", "MLFLOW_"))}
    env.update(workspace.env(), DATABRICKS_CONFIG_FILE=str(tmp_path / "none.cfg"),
               HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               MLFLOW_DISABLE_TELEMETRY="true")
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(folder), env=env)

    def run(code, timeout=120.0, on_start=None):
        msg_id = kc.execute(code)
        if on_start:
            on_start()
        out, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = kc.get_iopub_msg(timeout=1)
            except queue.Empty:
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            msg["received"] = time.monotonic()
            out.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out
        raise AssertionError(f"the cell did not finish in {timeout} s: {out}")

    def close():
        kc.stop_channels()
        km.shutdown_kernel(now=True)

    run.km, run.workspace, run.folder, run.close = km, workspace, folder, close
    return run


def errors_of(messages) -> list[dict]:
    return [m["content"] for m in messages if m["msg_type"] == "error"]


def text_of(messages) -> str:
    """What the cell shows (its outputs; not the panel's widget updates, which the kernel
    sends meanwhile under the same parent)."""
    parts = []
    for m in messages:
        if m["msg_type"] not in OUTPUTS:
            continue
        content = m["content"]
        parts.append(content.get("text", ""))
        parts += [str(v) for v in (content.get("data") or {}).values()]
        parts += content.get("traceback", []) or []
    return "\n".join(parts)
