"""How the run service keeps a run's live output and metrics, and reads why it failed.

The :class:`~mlrun_magic.service.RunService` methods of the same names delegate here. A
run gets a :class:`~mlrun_magic.service.live_feed.LiveFeed` when a view starts showing it or
``logs --follow`` starts following it; from then on each poll of it (the service's one
poller) reads the new output and metrics, tells its views when something came and sets
how soon it is polled again. Its end is read once, whoever learns it.
"""

from __future__ import annotations

import logging

from mlrun_magic.service.live_feed import LiveFeed

logger = logging.getLogger("mlrun_magic.service")
#: Lines of output a view of a run that did not finish shows.
FAILED_LOG_LINES = 30


def feed_of(service, watched, output: bool = True) -> LiveFeed:
    """The run's live feed, made on first use (``output=False``: its metrics only, until
    someone wants its output too)."""
    with watched.lock:
        if watched.feed is None:
            watched.feed = LiveFeed(watched.run, output=output)
        elif output:
            watched.feed.output = True
        return watched.feed


def watch_feed(service, watched) -> None:
    """Poll the run (if it has not ended) so that its feed is read."""
    if not watched.state.is_terminal:
        service._watch(watched)


def release_feed(service, watched) -> None:
    """Nobody follows the run any more: stop polling a remote run nobody looks at."""
    feed = watched.feed
    if watched.run.remote and not watched.views and (feed is None or not feed.followed):
        service.poller.unwatch(watched.run, service._on_poll)


def feed_step(service, watched, state) -> None:
    """After a poll of a live run: read what is new, redraw its views (once per poll),
    pace the next poll."""
    feed = watched.feed
    if feed is None or state.is_terminal:
        return  # its end is read by read_end, in the thread that learned it
    feed.poll(state.status)
    service._tell(watched, list(watched.views))  # new output, metrics, or a newer "as of"
    longest = getattr(service.settings, "poll_interval", None) or 30.0
    service.poller.pace(watched.run, feed.next_delay(state.status, longest))


def read_end(watched, state) -> None:
    """The run just ended: the rest of its output, its final metrics and, unless it
    finished, why (the backend's failure report and the last lines of its output)."""
    run, feed = watched.run, watched.feed
    if feed is not None:
        feed.finish()
    if state.status == "FINISHED":
        return
    try:
        watched.failure = run.failure_report(state, log_seen=bool(feed and feed.log_seen))
    except Exception:  # noqa: BLE001 (the report is a courtesy; the end must land)
        logger.debug("no failure report for run %s", run.run_id, exc_info=True)
    if feed is not None and feed.log_seen:
        watched.log_tail = "\n".join(feed.tail.last(FAILED_LOG_LINES))
        return
    tail = getattr(watched.failure, "output_tail", "")
    try:
        watched.log_tail = tail or run.logs(tail=FAILED_LOG_LINES)
    except Exception:  # noqa: BLE001
        logger.debug("no log tail for run %s", run.run_id, exc_info=True)


def output_so_far(watched, lines: int) -> str:
    """The last ``lines`` of the live log of a run that has not ended ("" once it has, or
    when it has none yet: then its backend's own output is what there is)."""
    if watched.state.is_terminal:
        return ""
    feed = feed_of(None, watched)
    feed.catch_up()
    return "\n".join(feed.tail.last(lines)) if feed.log_seen else ""
