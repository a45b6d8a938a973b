"""The errors mlrun_magic raises for things a user can fix.

Every error is one readable sentence or two: what is wrong, where (file, key, line) and what
to do. In a notebook they fail the cell with that message instead of a long traceback from
our code (``_render_traceback_``); on the command line they print as ``error: ...`` and
exit with status 2.
"""

from __future__ import annotations


class MlrunMagicError(Exception):
    """Base class of every error mlrun_magic raises on purpose."""

    #: A short name shown in front of the message, e.g. ``MLproject error``.
    title = "mlrun_magic error"

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n{self.hint}"
        return self.message

    def _render_traceback_(self) -> list[str]:
        # IPython shows these lines instead of a traceback; ipykernel still sends an
        # iopub `error`, so nbval, nbclient and papermill see the cell fail.
        lines = [f"{self.title}: {self.message}"]
        if self.hint:
            lines.append(self.hint)
        return lines

    def to_dict(self) -> dict:
        """The error as JSON-ready data (``--json`` output of the CLI)."""
        out = {"type": type(self).__name__, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        return out


class MLprojectError(MlrunMagicError):
    """The MLproject file, its env file or the parameters given for it are invalid."""

    title = "MLproject error"

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None, hint: str | None = None):
        where = []
        if file:
            where.append(f"{file}:{line}" if line else str(file))
        if key:
            where.append(f"key '{key}'")
        full = f"{', '.join(where)}: {message}" if where else message
        super().__init__(full, hint=hint)
        self.file = file
        self.key = key
        self.line = line


class ProjectURIError(MlrunMagicError):
    """A project URI could not be resolved to a folder (missing path, bad git URI or version)."""

    title = "Project not found"


class TrackingError(MlrunMagicError):
    """The MLflow tracking server refused a request or could not be reached."""

    title = "MLflow tracking error"


class BackendError(MlrunMagicError):
    """The backend could not start, watch or stop the run."""

    title = "Backend error"


class RunFailedError(MlrunMagicError):
    """A run that was waited for ended FAILED or KILLED."""

    title = "Run failed"


class PackagingError(MlrunMagicError):
    """The project folder could not be packaged (a link out of the project, unreadable file...)."""

    title = "Packaging error"


class ArgumentsError(MlrunMagicError):
    """The command line or magic line is malformed (the magic shows it as a UsageError)."""

    title = "Usage error"
