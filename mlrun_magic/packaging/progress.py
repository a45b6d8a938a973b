"""Progress of packaging and upload: one reporter interface, three faces.

:func:`mlrun_magic.packaging.build_archive` and the uploads call ``progress(done, total)``
with the bytes done so far and the total: once with ``done=0``, after every chunk, and with
``done == total`` at the end (also on a cache hit). Any callable works. :class:`Progress` is
the reporter every front end uses: it draws only work worth watching (at least
:data:`MIN_BYTES`, the one threshold), at most every ``interval`` seconds, and always the end.
Its faces: :class:`TerminalProgress` (tqdm, on stderr), the notebook's HTML bar and the
panel's message line (both in :mod:`mlrun_magic.notebook`).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_UNITS = ("B", "kB", "MB", "GB", "TB")
#: Below this many bytes packaging takes a blink: no progress is drawn.
MIN_BYTES = 8 * 1000 * 1000


def human_bytes(n: float) -> str:
    """``1234567`` -> ``"1.2 MB"`` (decimal units, like tqdm's ``unit_scale``)."""
    for unit in _UNITS:
        if abs(n) < 1000 or unit == _UNITS[-1]:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


class Progress:
    """A ``progress(done, total)`` callback that decides when to draw; faces implement
    :meth:`draw` (and :meth:`close` for the end)."""

    def __init__(self, *, label: str = "Packaging", min_bytes: int = MIN_BYTES,
                 interval: float = 0.1):
        self.label = label
        self.min_bytes = min_bytes
        self.interval = interval
        self._last = 0.0
        self._closed = False

    def __call__(self, done: int, total: int) -> None:
        if self._closed or total < self.min_bytes:
            return
        now = time.monotonic()
        final = done >= total
        if not final and now - self._last < self.interval:
            return
        self._last = now
        self.draw(done, total)
        if final:
            self._closed = True
            self.close()

    def draw(self, done: int, total: int) -> None:
        """Show ``done`` of ``total`` bytes."""
        raise NotImplementedError

    def close(self) -> None:
        """The work is done (``done == total`` was drawn)."""

    @staticmethod
    def percent(done: int, total: int) -> float:
        return 100.0 * min(done, total) / total if total else 100.0


class TerminalProgress(Progress):
    """tqdm's bar on ``stream`` (stderr by default), only when it is a terminal (or
    ``force``)::

        Packaging:  42%|████▏     | 126M/300M [00:02<00:03, 61.2MB/s]
    """

    def __init__(self, stream: TextIO | None = None, *, force: bool = False, **options):
        super().__init__(**options)
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = force or bool(isatty and isatty())
        self._bar = None
        self._drawn = 0

    def __call__(self, done: int, total: int) -> None:
        if self.enabled:
            super().__call__(done, total)

    def draw(self, done: int, total: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.label, unit="B", unit_scale=True,
                             file=self.stream, mininterval=0, leave=True, dynamic_ncols=True)
        self._bar.update(done - self._drawn)
        self._drawn = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
