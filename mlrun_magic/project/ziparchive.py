"""Zip project URIs: a local ``.zip`` file (a path or ``file://``) or an ``http(s)://…/x.zip``.

A URI is a zip when, without its ``#subdirectory``, it matches MLflow's ``.+\\.zip$`` (so
``https://host/get?name=p.zip`` is one, ``P.ZIP`` is not). As in ``mlflow run``, the archive
is unpacked into a temporary folder as it is, and ``#subdirectory`` is a folder inside it: a
zip whose root holds one folder needs ``#thatfolder`` (MLflow does not step into it either).
The folder lives until the process exits; ``--version`` is refused (a zip is no git project).

Unlike MLflow, the archive is unpacked safely, and checked whole before the first file is
written: a member with an absolute path, a drive letter, a backslash or a control character in
its name, a ``..`` component, a name given twice, a symbolic link, a device, a pipe or an
encrypted member is refused, and so is an archive over any bound of :class:`ZipLimits` (member
count, unpacked size, compression ratio, download size and time). A refusal (or Ctrl-C)
removes the temporary folder: nothing is left half unpacked. A ``.mlrun_magic`` folder in the
archive (the history and logs of whoever zipped a folder they ran from) is left out.
Symbolic links are refused, not made: Python's zipfile (so MLflow) writes a link as a small
file holding the target's path, which no project can use, and a real link would need every
later member checked through it.
"""

from __future__ import annotations

import lzma
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from mlrun_magic.errors import ProjectURIError
from mlrun_magic.project.bounded import MIB
from mlrun_magic.project.tempdirs import make_temp_dir, remove_temp_dir
from mlrun_magic.project.zipcheck import check_archive, check_directory_size
from mlrun_magic.project.zipdownload import REMOTE, download
from mlrun_magic.redact import redact_url_query

#: MLflow's test (``mlflow.projects.utils._ZIP_URI_REGEX``), applied to the URI without ``#...``.
ZIP_URI = re.compile(r".+\.zip$")
#: A URL that is neither ``file://`` (a local zip) nor ``http(s)://`` (downloaded).
_OTHER_URL = re.compile(r"(?![fF][iI][lL][eE]://)[a-zA-Z][\w+.-]*://")
CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True)
class ZipLimits:
    """What one project zip may cost. Every refusal names the bound it hit and its value."""

    #: Bytes of an http(s) download, streamed to disk (never held in memory).
    max_download_bytes: int = 512 * MIB
    #: Seconds to connect, and of silence between two reads of a download.
    connect_timeout: float = 15.0
    read_timeout: float = 60.0
    #: Seconds for a whole download.
    download_seconds: float = 600.0
    #: Files and folders in one archive (a large repository has a few thousand).
    max_members: int = 20_000
    #: Bytes of the archive's central directory, checked before it is read into memory.
    max_directory_bytes: int = 10 * MIB
    #: Bytes of all members once unpacked.
    max_unpacked_bytes: int = 2048 * MIB
    #: How many times larger than its compressed data a member may unpack (text is 3-10x,
    #: a zip bomb 1000x), for members of more than ``ratio_floor_bytes``.
    max_ratio: int = 200
    ratio_floor_bytes: int = 1 * MIB
    #: Folders one member may be nested in (real projects use under 20), and the bytes of
    #: its name (file systems take 255 a part and 4096 a path).
    max_depth: int = 64
    max_name_bytes: int = 1024


LIMITS = ZipLimits()


def is_zip_uri(base: str) -> bool:
    """Whether ``base`` (a project URI without ``#subdirectory``) names a zip, as for MLflow."""
    return ZIP_URI.match(base) is not None


def open_zip_project(base: str, local: Path | None, sub: str, version: str | None, *,
                     shown: str, limits: ZipLimits = LIMITS) -> tuple[Path, str]:
    """Unpack the zip at ``base`` (``local``: its path when it is not a URL) and return
    ``(project folder, mlflow.source.name)``. ``shown`` is the URI as it may be shown."""
    shown_base = redact_url_query(base)
    if version is not None:
        raise ProjectURIError(f"--version needs a git project, and {shown} is a zip file",
                              hint="Drop --version: a zip holds one version of the project "
                                   "(mlflow run says: Setting a version is only supported "
                                   "for Git project URIs).")
    remote = REMOTE.match(base) is not None
    if not remote:
        _check_local(None if _OTHER_URL.match(base) else local, shown_base)
    tmp = make_temp_dir("mlrun-magic-zip-")
    try:
        archive = download(base, tmp / "download.zip", shown_base, limits) if remote else local
        root = (tmp / "project").resolve()
        unpack_zip(archive, root, shown=shown_base, limits=limits)
        if remote:
            archive.unlink()
        directory = root / sub if sub else root
        if not directory.is_dir():
            raise ProjectURIError(f"Could not find subdirectory {sub} of {shown_base}",
                                  hint="Check the part after '#': it is a folder path inside "
                                       "the zip.")
    except BaseException:
        remove_temp_dir(tmp)
        raise
    return directory, shown if remote else _source_name(local, sub)


def _check_local(local: Path | None, shown_base: str) -> None:
    if local is None:
        raise ProjectURIError(f"Unable to retrieve ZIP file. Reason: {shown_base} is neither a "
                              "local file nor an http(s) URL",
                              hint="Give the path of a .zip file, or an https:// link to one.")
    if not local.exists():
        raise ProjectURIError(f"project zip file {local} does not exist",
                              hint="Check the path, or give an https:// link to the zip.")
    if not local.is_file():
        raise ProjectURIError(f"{local} is not a zip file but a {_kind(local)}",
                              hint="Give the path of a .zip file.")


def _kind(path: Path) -> str:
    mode = path.stat().st_mode
    return "pipe" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"


def _source_name(local: Path, sub: str) -> str:
    """MLflow's ``mlflow.source.name`` of a local zip: its absolute path, or
    ``file://<work tree>#<path in it>`` when it lies in a git work tree. With ``#sub`` MLflow
    records the URI as typed; here its path is absolute, as for folders, so that the tag still
    names the file when the run is looked at from elsewhere."""
    path = os.path.abspath(local)
    if sub:
        return f"{path}#{sub}"
    import git

    try:
        root = git.Repo(os.path.dirname(path), search_parent_directories=True).working_tree_dir
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, git.GitCommandNotFound):
        return path
    return f"file://{root}#{os.path.relpath(path, root)}"


def unpack_zip(archive: Path, root: Path, *, shown: str, limits: ZipLimits = LIMITS) -> None:
    """Unpack ``archive`` into the new folder ``root``, checking all of it first (see the
    module's help). On a refusal :class:`ProjectURIError` names the member and the bound;
    the caller removes ``root``'s temporary parent."""
    try:
        with open(archive, "rb") as fp:
            check_directory_size(fp, shown, limits)
            with zipfile.ZipFile(fp) as zf:
                _write_members(zf, check_archive(zf, shown, limits), root, shown)
    except ProjectURIError:
        raise
    except _BROKEN as exc:
        raise ProjectURIError(f"cannot unpack {shown}: {_reason(exc)}",
                              hint="Check that the file is a complete .zip archive; nothing "
                                   "was unpacked.") from None


def _write_members(zf: zipfile.ZipFile, members, root: Path, shown: str) -> None:
    root.mkdir()
    for m in members:
        target = root.joinpath(*m.parts)
        if m.is_dir:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        _copy(zf, m.info, target, m.mode, shown)


def _copy(zf: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, mode: int,
          shown: str) -> None:
    """Write one member in chunks (constant memory), never more than its header declares (so
    the declared sizes checked before bound the whole), never following or replacing anything
    already at ``target``."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    written = 0
    with zf.open(info) as src, os.fdopen(fd, "wb") as dst:
        while chunk := src.read(CHUNK_BYTES):
            written += len(chunk)
            if written > info.file_size:
                raise ProjectURIError(f"zip member {info.filename!r} of {shown} holds more "
                                      f"than the {info.file_size} bytes its header declares",
                                      hint="The archive is damaged or hostile; nothing was "
                                           "unpacked.")
            dst.write(chunk)


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


#: What zipfile raises for a damaged archive (RuntimeError: encrypted; zlib, lzma, struct: bad
#: data; OSError: bz2's bad data, or a file system refusing a name).
_BROKEN = (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError,
           NotImplementedError, RuntimeError, UnicodeError, OverflowError, zlib.error,
           lzma.LZMAError, struct.error)
