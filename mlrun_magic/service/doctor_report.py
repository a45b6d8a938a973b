"""What the doctor says: one :class:`Check` per thing that can fail a run, in a
:class:`DoctorReport`. Re-exported by :mod:`mlrun_magic.service.doctor`."""

from __future__ import annotations

from dataclasses import dataclass

from mlrun_magic.errors import MlrunMagicError
from mlrun_magic.redact import redact_text, scrub

STATUSES = ("ok", "fail", "warn")
#: The order checks are shown in (others after these, in the order they came).
ORDER = ("credentials", "identity", "workspace", "project", "environment", "archive",
         "compute", "serverless", "spark version", "node type", "cluster", "policy",
         "experiment", "volume", "DBFS root", "code location", "tracking URI")
#: At most this many characters of a found/fix text (a pasted spec can be long).
MAX_TEXT = 600


def _safe(text: str) -> str:
    text = scrub(redact_text(" ".join(str(text or "").split())))
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` is ``ok``, ``fail`` or ``warn`` (shown ✓, ✗, !);
    ``found`` says what was found, ``fix`` what to do ("" when ok). Both are one line, with
    URL credentials and anything that looks like a token masked."""

    name: str
    status: str
    found: str
    fix: str = ""

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"check status must be one of {STATUSES}, not {self.status!r}")
        object.__setattr__(self, "found", _safe(self.found))
        object.__setattr__(self, "fix", _safe(self.fix))

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "found": self.found, "fix": self.fix}


def ok(name: str, found: str) -> Check:
    return Check(name, "ok", found)


def fail(name: str, found: str, fix: str = "") -> Check:
    return Check(name, "fail", found, fix)


def warn(name: str, found: str, fix: str = "") -> Check:
    return Check(name, "warn", found, fix)


def from_error(name: str, exc, fix: str = "") -> Check:
    """A failed check saying what an :class:`~mlrun_magic.errors.MlrunMagicError` says."""
    return fail(name, getattr(exc, "message", None) or str(exc),
                getattr(exc, "hint", None) or fix)


def guarded(name: str, step) -> list[Check]:
    """``step()``'s checks; an error it raises becomes a failed ``name`` check that says it."""
    try:
        result = step()
    except MlrunMagicError as exc:
        return [fail(name, exc.message, exc.hint or "")]
    except Exception as exc:  # noqa: BLE001 (one broken check never stops the others)
        return [fail(name, f"the check could not finish: {type(exc).__name__}: {exc}",
                     "Run the doctor again; if this stays, report it as an mlrun_magic bug "
                     "with this line (the other checks still ran).")]
    return [result] if isinstance(result, Check) else list(result)


def in_background(name: str, call) -> "Future":
    """``call()`` in a daemon thread, as a :class:`concurrent.futures.Future`. Not a thread
    pool: its workers are joined when the interpreter exits, so a request stuck until its
    deadline would hold up Ctrl-C in a terminal; a check nobody waits for any more must not."""
    import threading
    from concurrent.futures import Future

    future: Future = Future()

    def work():
        try:
            future.set_result(call())
        except BaseException as exc:  # noqa: BLE001 (handed to whoever waits)
            future.set_exception(exc)

    threading.Thread(target=work, name=f"doctor-{name}", daemon=True).start()
    return future


def ordered(checks) -> tuple[Check, ...]:
    """``checks`` in :data:`ORDER` (a stable sort: unknown names last, as they came)."""
    rank = {name: i for i, name in enumerate(ORDER)}
    return tuple(sorted(checks, key=lambda c: rank.get(c.name, len(ORDER))))


@dataclass(frozen=True)
class DoctorReport:
    """Every check, and whether the network ones ran (``network=False``: only the cheap,
    offline ones). ``ok`` is true when no check failed (warnings allowed)."""

    checks: tuple[Check, ...]
    network: bool

    @property
    def ok(self) -> bool:
        return not any(c.status == "fail" for c in self.checks)

    def check(self, name: str) -> Check | None:
        """The check called ``name`` (``None`` when it did not run)."""
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "network": self.network,
                "checks": [c.to_dict() for c in self.checks]}
