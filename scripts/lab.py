"""`make lab`: JupyterLab on 127.0.0.1 with the example notebooks and a loopback workspace.

The kernels inherit DATABRICKS_HOST/DATABRICKS_TOKEN of the loopback workspace, so every
example notebook launches real job runs here. Ctrl-C stops JupyterLab and the workspace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    from mlrun_magic.testing import Workspace
    from mlrun_magic.testing.mlflow_server import free_port

    with Workspace(REPO / "build" / "lab" / "workspace", pending_seconds=3) as workspace:
        env = {**os.environ, **workspace.env()}
        env.pop("DATABRICKS_CONFIG_PROFILE", None)
        port = free_port()
        print(f"Loopback workspace {workspace.host} (MLflow {workspace.mlflow_url})")
        print(f"JupyterLab: http://127.0.0.1:{port}/lab (the token is in the lines below)\n",
              flush=True)
        cmd = [sys.executable, "-m", "jupyterlab", "--ip=127.0.0.1", f"--port={port}",
               "--no-browser", f"--notebook-dir={REPO / 'example_notebooks'}"]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        # Stop cleanly on SIGTERM too, so the workspace and its MLflow server go with us.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        lab = subprocess.Popen(cmd, env=env)
        try:
            return lab.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            if lab.poll() is None:
                lab.terminate()
                try:
                    lab.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    lab.kill()


if __name__ == "__main__":
    sys.exit(main())
