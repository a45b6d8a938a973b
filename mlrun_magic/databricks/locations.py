"""How a ``--code-location`` is read before it becomes a :class:`~mlrun_magic.databricks.
storage.Target`: trimmed, ``dbfs:/Volumes/...`` (and ``/dbfs/Volumes/...``) read as the volume
path it names, and refused when the workspace would not write where it says: a ``.`` or
``..`` part (``/Volumes/c/s/v/../..`` is not in volume ``c.s.v``) or a control character."""

from __future__ import annotations

import unicodedata

from mlrun_magic.errors import MlrunMagicError

class CodeLocationError(MlrunMagicError):
    """The code location is malformed or cannot be written (also :mod:`.storage`'s)."""

    title = "Code location error"


HINT = ("Give the folder itself, e.g. /Volumes/<catalog>/<schema>/<volume>/mlrun_magic or "
        "/Workspace/Users/<you>/mlrun_magic.")


def normal_location(value: str) -> tuple[str, str | None]:
    """``(the location as the workspace names it, why it cannot be used or None)``."""
    value = value.strip().rstrip("/")
    for prefix in ("dbfs:/Volumes/", "/dbfs/Volumes/"):
        if value.startswith(prefix):
            value = value[len(prefix) - len("/Volumes/"):]
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in value):
        return value, f"code location {value!r} has a control character"
    if any(part in (".", "..") for part in value.split("/")):
        return value, f"code location {value!r} has a '.' or '..' part"
    return value, None


def checked(value: str) -> str:
    """:func:`normal_location`'s location, or its problem as a ``CodeLocationError``."""
    value, problem = normal_location(value)
    if problem:
        raise CodeLocationError(problem, hint=HINT)
    return value
