"""Following a run's output as it is written: ``RunService.follow_logs``.

The text comes from the run's :class:`~mlrun_magic.service.live_feed.LiveFeed`, which the
service's one poller reads (the Databricks bootstrap's chunks, or a local run's log file):
following adds no polling of its own, and a run followed while a view shows it is read once
for both. ``on_text`` is called in the caller's thread, with the output from the start of
the run as far as it is kept and then as it comes, until the run has ended and its log has
been read to its end marker. ``stop`` (a ``threading.Event``) ends it early; Ctrl-C raises
``KeyboardInterrupt`` to the caller and leaves the run running. A log that cannot be read is
said once in the text and the run's state is followed to its end.
"""

from __future__ import annotations

import queue
import threading

#: Seconds between two looks at ``stop`` and a pending Ctrl-C while nothing comes.
WAIT_SLICE = 0.25


def follow_logs(service, target, on_text, *, stop=None):
    """Call ``on_text(text)`` with the run's output as it grows; return its final state
    (or the latest, when ``stop`` ended the following)."""
    watched = service.get(target)
    stop = stop if stop is not None else threading.Event()
    feed = service.feed_of(watched)
    inbox = feed.follow()
    service.watch_feed(watched)
    try:
        while True:
            if watched.state.is_terminal and not feed.done.is_set():
                feed.finish()  # it had ended before anyone read its log
            if stop.is_set():
                return watched.state
            try:
                text = inbox.get(timeout=WAIT_SLICE)
            except queue.Empty:
                continue
            if text is None:
                return watched.state
            on_text(text)
    finally:
        feed.unfollow(inbox)
        service.release_feed(watched)
