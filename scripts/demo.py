"""`make demo`: the main job end to end on this machine.

Starts a real MLflow tracking server on loopback, runs the quickstart example project through
mlrun_magic's local backend (the MLflow run is created, tagged and joined by the code, which
logs its metrics), prints the run's tracking link and final status, and stops the server.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "example_notebooks" / "quickstart"


def main() -> int:
    import mlrun_magic
    from mlrun_magic.testing.mlflow_server import MlflowServer
    from mlrun_magic.tracking import RestTracking

    build = REPO / "build" / "demo"
    build.mkdir(parents=True, exist_ok=True)
    print("Starting a loopback MLflow tracking server...", flush=True)
    with MlflowServer(build / "mlflow") as server:
        print(f"MLflow tracking server: {server.url}\n", flush=True)
        print(mlrun_magic.plan(str(PROJECT), parameters={"alpha": 0.5}).describe(), "\n", flush=True)
        run = mlrun_magic.run(str(PROJECT), parameters={"alpha": 0.5}, tracking_uri=server.url,
                              experiment_name="mlrun-magic-demo", run_name="demo", echo=True)
        state = run.wait()
        data = RestTracking(server.url).get_run(run.run_id)
        print(f"\nRun {run.run_id}: {state.status} (MLflow says {data['status']}); "
              f"final loss {data['metrics'].get('loss', float('nan')):.4f}")
        print(f"MLflow run link: {run.links.mlflow_run}")
        print(f"Experiment:      {run.links.experiment}")
        print("Stopping the MLflow server (the link works while a server serves "
              f"{build / 'mlflow'}).")
    return 0 if state.status == "FINISHED" else 1


if __name__ == "__main__":
    sys.exit(main())
