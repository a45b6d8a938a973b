"""The end of a run's output, kept in memory: lines in order, bounded in bytes and length."""

from __future__ import annotations

from collections import deque

#: Output kept per run (what a late ``logs --follow`` catches up with, what views cut from).
KEPT_BYTES = 1024 * 1024
#: A line longer than this is shown cut (a progress bar that never prints a newline).
LINE_CHARS = 2000


class TextTail:
    """Text appended in pieces as it comes, read back as its last lines.

    A line is complete once its newline came; the unfinished last line is shown too (a
    progress bar, a prompt). Carriage returns rewrite the line as a terminal does, so a
    tqdm bar is one line, not thousands. What is dropped from the front is counted.
    """

    def __init__(self, max_bytes: int = KEPT_BYTES):
        self.max_bytes = max_bytes
        self._lines: deque[str] = deque()
        self._size = 0
        self.partial = ""
        self.dropped_lines = 0
        self.total_chars = 0

    def append(self, text: str) -> None:
        self.total_chars += len(text)
        pieces = (self.partial + text).split("\n")
        self.partial = _unfinished(pieces.pop())
        for piece in pieces:
            line = _last_rewrite(piece)
            line = line if len(line) <= LINE_CHARS else line[:LINE_CHARS] + " [...]"
            self._lines.append(line)
            self._size += len(line) + 1
        while self._size > self.max_bytes and self._lines:
            self._size -= len(self._lines.popleft()) + 1
            self.dropped_lines += 1

    def last(self, count: int) -> list[str]:
        """The last ``count`` lines, the unfinished one included."""
        if count <= 0:
            return []
        lines = list(self._lines)[-count:] if len(self._lines) > count else list(self._lines)
        shown = _last_rewrite(self.partial)[:LINE_CHARS]
        if shown:
            lines = (lines + [shown])[-count:]
        return lines

    def text(self) -> str:
        """Everything kept, as it was written (but for cut and rewritten lines)."""
        kept = "\n".join(self._lines)
        kept = kept + "\n" if self._lines else ""
        return kept + _last_rewrite(self.partial)

    def __bool__(self) -> bool:
        return bool(self._lines) or bool(self.partial)


def _last_rewrite(line: str) -> str:
    """What a terminal shows of ``line``: the text after its last carriage return (a
    trailing one, as Windows' ``\\r\\n`` leaves, is not a rewrite)."""
    line = line[:-1] if line.endswith("\r") else line
    return line.rsplit("\r", 1)[-1] if "\r" in line else line


def _unfinished(text: str) -> str:
    """The unfinished last line, less what a carriage return already rewrote (the return
    itself is kept: the next piece may start the line again), bounded."""
    start = text.rstrip("\r").rfind("\r")
    return (text[start + 1:] if start >= 0 else text)[-LINE_CHARS * 4:]
