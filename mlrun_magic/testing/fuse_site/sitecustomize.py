"""The loopback driver's FUSE rules: no appends, no random writes under the workspace mounts.

On a Databricks driver, ``/Volumes``, ``/Workspace`` and ``/dbfs`` are FUSE mounts that take
whole, sequential writes only: opening a file there for appending fails with ``OSError:
[Errno 29] Illegal seek``, opening an existing file for update (``r+``, ``w+``/``a+`` on an
existing file, ``O_RDWR``) with ``[Errno 95] Operation not supported``. The loopback's driver
processes (and their subprocesses) get this folder first on ``PYTHONPATH``, so Python imports
this module at start-up and installs an audit hook on ``open`` (``open()``, ``io.open``,
``os.open``) that refuses those opens under ``$MLRUN_MAGIC_TESTING_FUSE_ROOT``, where the
loopback keeps what the mounts show. So a bootstrap that appended to its log would fail here
as it would on Databricks. Not emulated: a seek-then-write on a file opened ``w`` (no audit
event tells it), and non-Python writers (``echo >> file`` in bash).
"""

import errno
import os
import sys


def _install():
    root = os.environ.get("MLRUN_MAGIC_TESTING_FUSE_ROOT")
    if not root:
        return
    areas = tuple(os.path.join(os.path.realpath(root), area) + os.sep
                  for area in ("Volumes", "Workspace", "dbfs"))

    def hook(event, args):
        if event != "open" or not args or isinstance(args[0], int) or args[0] is None:
            return
        mode, flags = (args[1] or ""), (args[2] if len(args) > 2 and args[2] else 0)
        appends = "a" in mode or bool(flags & os.O_APPEND)
        updates = "+" in mode or "r+" in mode or (flags & os.O_ACCMODE) == os.O_RDWR
        if not (appends or updates):
            return
        try:
            path = os.path.realpath(os.fsdecode(args[0]))
        except (TypeError, ValueError):
            return
        if not path.startswith(areas):
            return
        if appends:
            raise OSError(errno.ESPIPE, "Illegal seek", path)
        if os.path.exists(path):
            raise OSError(errno.EOPNOTSUPP, "Operation not supported", path)

    sys.addaudithook(hook)


_install()
