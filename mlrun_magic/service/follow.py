"""Following a run's output as it is written: ``RunService.follow_logs``.

One loop, driven by the run's state: read what is new (the backend's ``log_reader()``: the
Databricks bootstrap's chunks, or a local run's log file), hand it to ``on_text``, ask the
run's state once, and sleep along the poller's schedule (2 s again whenever text came, at
most :data:`FOLLOW_MAX_INTERVAL` s apart while the run is RUNNING, so a line shows within a
few seconds of being printed). It ends when the log's end marker has been read and the run
is terminal, with one final read after the end; ``stop`` (a ``threading.Event``) ends it
early. Ctrl-C raises ``KeyboardInterrupt`` to the caller and leaves the run running. A log
that cannot be read is said once in the text and the run's state is followed to its end.

Cost per iteration: one state request, one listing, plus one read per new chunk: about
90 requests per minute while a Databricks run prints steadily, 40 while it is quiet.
"""

from __future__ import annotations

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.poller import SCHEDULE
from mlrun_magic.runs import RunState

#: Longest pause between two reads of a RUNNING run's log (seconds).
FOLLOW_MAX_INTERVAL = 3.0


def follow_logs(service, target, on_text, *, stop=None) -> RunState:
    """Call ``on_text(text)`` with the run's output as it grows; return its final state
    (or the latest, when ``stop`` ended the following)."""
    import threading

    watched = service.get(target)
    reader = watched.run.log_reader()
    stop = stop if stop is not None else threading.Event()
    ended = False
    step = 0
    state = watched.state
    while True:
        if not ended:
            update = _read(reader, on_text)
            if update.text:
                on_text(update.text)
                step = 1  # the driver publishes at most every 2 s: read again then
            ended = update.ended
        if state.is_terminal and ended:
            return state
        state = service.refresh(watched)
        if state.is_terminal and not ended:
            _drain(reader, on_text)  # the last reads after the end: what came before it
            return state
        if state.is_terminal:
            continue
        delay = SCHEDULE[min(step, len(SCHEDULE) - 1)]
        cap = FOLLOW_MAX_INTERVAL if state.status == "RUNNING" and not ended \
            else getattr(service.settings, "poll_interval", None) or SCHEDULE[-1]
        step += 1
        if stop.wait(min(delay, cap)):
            return state


def _drain(reader, on_text) -> None:
    """Read until the log says it ended or nothing more comes: one read is bounded (a
    local log file's 4 MB, a number of chunks), so a big last burst takes several."""
    while True:
        update = _read(reader, on_text)
        if update.text:
            on_text(update.text)
        if update.ended or not update.text:
            return


def _read(reader, on_text):
    """``reader.read_new()``; a log that cannot be read (refused, storage down after the
    retries) is said once and treated as ended: the run's outcome is still waited for."""
    try:
        return reader.read_new()
    except MlrunMagicError as exc:
        from mlrun_magic.databricks.logtail import LogUpdate  # not on the %load_ext path

        why = exc.args[0] if exc.args else exc
        on_text(f"\n[mlrun_magic] the live log cannot be read ({why}); following the run's "
                "state only\n")
        return LogUpdate("", True, None)
