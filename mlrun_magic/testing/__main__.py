"""``python -m mlrun_magic.testing serve [--port N] [--mlflow URL] [--root DIR]``

Starts a loopback Databricks workspace, prints one JSON line ``{"host": ..., "token": ...}``
(plus ``client_id``, ``client_secret``, ``mlflow_url``) when it is ready, and serves until
SIGINT or SIGTERM. Without ``--mlflow`` it starts its own MLflow tracking server and stops it
on exit.

``python -m mlrun_magic.testing lab [PATH]`` (what ``make lab DIR=PATH`` runs)

Starts a fresh loopback workspace and JupyterLab on 127.0.0.1 serving PATH (default: the
example notebooks in a source checkout, else the current folder); its kernels launch on the
workspace. Ctrl-C stops JupyterLab, the workspace and its MLflow server. A PATH that is not a
folder exits with status 2. See :mod:`mlrun_magic.testing.lab`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlrun_magic.testing",
                                     description="A loopback Databricks workspace for tests.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve a workspace until SIGINT/SIGTERM")
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: free)")
    serve.add_argument("--mlflow", metavar="URL",
                       help="an MLflow tracking server to use (default: start one)")
    serve.add_argument("--root", metavar="DIR",
                       help="folder for files and logs (default: a temporary folder)")
    serve.add_argument("--token", help="the personal access token to accept")
    serve.add_argument("--pending-seconds", type=float, default=1.0,
                       help="how long job tasks stay PENDING (default: 1)")
    lab = commands.add_parser("lab", help="JupyterLab on PATH with a fresh loopback workspace")
    lab.add_argument("path", nargs="?", metavar="PATH",
                     help="the folder to serve (default: the example notebooks in a source "
                          "checkout, else the current folder)")
    lab.add_argument("--root", metavar="DIR",
                     help="where the workspace folders go (default: build/lab in a source "
                          "checkout, else ~/.cache/mlrun-magic/lab)")
    args = parser.parse_args(argv)
    if args.command == "lab":
        from mlrun_magic.testing.lab import LabError, run_lab

        try:
            return run_lab(args.path, args.root)
        except LabError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    from mlrun_magic.testing.mlflow_server import MlflowServerError
    from mlrun_magic.testing.workspace import Workspace

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    workspace = Workspace(args.root, port=args.port, mlflow_url=args.mlflow, token=args.token,
                          pending_seconds=args.pending_seconds)
    try:
        workspace.start()
    except (MlflowServerError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    try:
        print(json.dumps({"host": workspace.host, "token": workspace.token,
                          "client_id": workspace.client_id,
                          "client_secret": workspace.client_secret,
                          "mlflow_url": workspace.mlflow_url}), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        workspace.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
