"""Progress reporting for packaging: a ``(done_bytes, total_bytes)`` callback.

:func:`mlrun_magic.packaging.build_archive` calls ``progress(done, total)`` with the bytes of
file content read so far and the total to read: once with ``done=0`` before the first byte,
after every chunk, and with ``done == total`` at the end (also on a cache hit). Any callable
works; :class:`TerminalProgress` draws a tqdm-style bar on stderr.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_bytes(n: float) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units, like tqdm's ``unit_scale``)."""
    for unit in _UNITS:
        if abs(n) < 1000 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class TerminalProgress:
    """A tqdm-style progress bar for packaging, drawn on ``stream`` (stderr by default)::

        Packaging  42%|████████▍           | 126.0 MB/300.0 MB [00:02<00:03, 61.2 MB/s]

    It draws only when the stream is a terminal, or when ``force`` is true; redraws at most
    every ``interval`` seconds; and ends the line when ``done`` reaches ``total``. Pass an
    instance as ``progress=`` to :func:`mlrun_magic.packaging.build_archive`.
    """

    def __init__(self, stream: TextIO | None = None, *, label: str = "Packaging",
                 force: bool = False, interval: float = 0.1, width: int = 20,
                 min_total: int = 0):
        self.stream = stream if stream is not None else sys.stderr
        self.label = label
        self.interval = interval
        self.width = width
        #: Below this many bytes nothing is drawn (small projects package in a blink).
        self.min_total = min_total
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = force or bool(isatty and isatty())
        self._start: float | None = None
        self._last = 0.0
        self._finished = False

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or self._finished or total < self.min_total:
            return
        now = time.monotonic()
        if self._start is None:
            self._start = now
        final = done >= total
        if not final and now - self._last < self.interval:
            return
        self._last = now
        self.stream.write("\r" + self.render(done, total, now - self._start))
        if final:
            self.stream.write("\n")
            self._finished = True
        self.stream.flush()

    def render(self, done: int, total: int, elapsed: float) -> str:
        """The bar's text for ``done`` of ``total`` bytes after ``elapsed`` seconds."""
        fraction = 1.0 if total <= 0 else min(done / total, 1.0)
        eighths = int(fraction * self.width * 8)
        full, part = divmod(eighths, 8)
        bar = "█" * full + (" ▏▎▍▌▋▊▉"[part] if full < self.width else "")
        bar = bar.ljust(self.width)
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (total - done) / rate if rate > 0 else 0.0
        speed = f"{human_bytes(rate)}/s" if rate else "? B/s"
        return (f"{self.label} {fraction * 100:3.0f}%|{bar}| {human_bytes(done)}/"
                f"{human_bytes(total)} [{_clock(elapsed)}<{_clock(left)}, {speed}]")
