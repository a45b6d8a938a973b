"""``%project_run logs RUN --follow``: the run's output streamed into the cell as it is written.

The text is the driver's own output (the Databricks bootstrap's log chunks, or a local run's
log file), read by :meth:`RunService.follow_logs`; it goes to the cell's stdout as it arrives.
Following ends with a line giving the run's outcome; a run that ended FAILED or KILLED fails
the cell, as ``python -m mlrun_magic logs --follow`` exits 1. Ctrl-C (the kernel's interrupt)
stops following, not the run: the cell says so and how to follow again.
"""

from __future__ import annotations

import sys

from mlrun_magic.errors import RunFailedError


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def follow_in_cell(service, watched) -> None:
    """Stream ``watched``'s output into the cell until the run ends."""
    try:
        state = service.follow_logs(watched, _write)
    except KeyboardInterrupt:
        print(f"\nStopped following run {watched.run_id}; the run goes on "
              f"(%project_run logs {watched.run_id} --follow follows it again, "
              f"%project_run cancel {watched.run_id} stops it).")
        return
    ending = f"Run {watched.run_id} {state.status}"
    if state.message:
        ending += f": {state.message}"
    if state.status != "FINISHED":
        raise RunFailedError(ending + ".", hint=f"%project_run status {watched.run_id} shows "
                                                "its view and links.")
    print(ending + ".")
