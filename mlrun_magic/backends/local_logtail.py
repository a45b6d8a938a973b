"""A local run's live log: the new bytes of its log file, the same shape as Databricks'.

:class:`LocalLogReader` reads ``<project>/.mlrun_magic/logs/<run id>.log`` from where it
stopped last time (never re-reading), decoding UTF-8 with a character split between two
reads carried over. The log has ended once the process has ended and its log file is
closed (the backend writes a last ``=== Run ... ===`` line first): then the read that says
``ended`` has everything. A file that became shorter than what was read (truncated or
rotated) is read again from its start.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from mlrun_magic.databricks.logtail import LogUpdate

READ_LIMIT = 4 * 1024 * 1024  # bytes per read: a huge burst comes over several reads


class LocalLogReader:
    """``read_new()`` -> :class:`~mlrun_magic.databricks.logtail.LogUpdate` of a log file;
    ``final()`` returns the run's final state once it has ended (else None)."""

    def __init__(self, path: Path, final):
        self.path, self.final = Path(path), final
        self.offset = 0
        self.end: dict | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def read_new(self) -> LogUpdate:
        if self.end is not None:
            return LogUpdate("", True, self.end)
        state = self.final()  # asked before reading: what it wrote before ending is read now
        try:
            with open(self.path, "rb") as log:
                if os.fstat(log.fileno()).st_size < self.offset:  # truncated or rotated
                    self.offset = 0
                    self._decoder.reset()
                log.seek(self.offset)
                data = log.read(READ_LIMIT)
        except OSError:
            data = b""
        self.offset += len(data)
        text = self._decoder.decode(data)
        if state is not None and len(data) < READ_LIMIT:
            text += self._decoder.decode(b"", final=True)
            self.end = {"status": state.status, "bytes": self.offset,
                        "exit_code": 0 if state.status == "FINISHED" else 1}
        return LogUpdate(text, self.end is not None, self.end)
