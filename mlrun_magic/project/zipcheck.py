"""The checks a project zip passes before anything of it is written (see ``ziparchive``).

:func:`check_directory_size` reads the end records of the archive before Python's zipfile
reads its central directory into memory (a directory of millions of tiny entries would cost
gigabytes); :func:`check_archive` then checks every member: its name, its type and the
archive's bounds. Each refusal is a :class:`ProjectURIError` naming the member and the rule.
"""

from __future__ import annotations

import os
import re
import stat
import struct
import zipfile
from dataclasses import dataclass

from mlrun_magic.errors import ProjectURIError
from mlrun_magic.project.bounded import MIB

#: Bytes of one part of a path that Linux and macOS file systems take.
_COMPONENT_BYTES = 255
_SUPPORTED = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
_DRIVE = re.compile(r"[A-Za-z]:")
_EOCD, _EOCD64, _LOCATOR64 = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07"
_NOTHING = "Nothing was unpacked."
#: mlrun_magic's own folder in a project (history, run logs): never taken from an archive.
STATE_DIR = ".mlrun_magic"


@dataclass(frozen=True)
class Member:
    """A member that passed the checks: its path parts, whether a folder, its file mode."""

    info: zipfile.ZipInfo
    parts: tuple[str, ...]
    is_dir: bool
    mode: int


def mib(n: int) -> str:
    """``n`` bytes in MiB (or bytes, under one), for messages."""
    if n < MIB:
        return f"{n:,} bytes"
    return f"{n / MIB:,.1f} MiB" if n < 10 * MIB else f"{n // MIB:,} MiB"


def check_directory_size(fp, shown: str, limits) -> None:
    """Refuse an archive whose end record declares more members or a larger central directory
    than ``limits`` allow. The end record is found as zipfile finds it (``_EndRecData``): the
    last 22 bytes if they are one without a comment, else the last signature in the final
    64 KiB; a zip64 record is the one right before its locator."""
    fp.seek(0, os.SEEK_END)
    size = fp.tell()
    window = min(size, 22 + 65536 + 20 + 56)
    fp.seek(size - window)
    tail = fp.read(window)
    if len(tail) >= 22 and tail[-22:-18] == _EOCD and tail[-2:] == b"\0\0":
        at = len(tail) - 22
    else:
        at = tail.rfind(_EOCD, max(0, len(tail) - 22 - 65536))
        if at < 0 or len(tail) - at < 22:
            return  # not a zip: zipfile says so
    entries, directory = struct.unpack("<HI", tail[at + 10:at + 16])
    if at >= 76 and tail[at - 20:at - 16] == _LOCATOR64 and tail[at - 76:at - 72] == _EOCD64:
        entries, directory = struct.unpack("<QQ", tail[at - 76 + 32:at - 76 + 48])
    _check_counts(entries, directory, shown, limits)


def _check_counts(entries: int, directory: int, shown: str, limits) -> None:
    if entries > limits.max_members:
        raise ProjectURIError(f"{shown} declares {entries:,} members; mlrun_magic unpacks at "
                              f"most {limits.max_members:,} (ZipLimits.max_members)",
                              hint=_NOTHING)
    if directory > limits.max_directory_bytes:
        raise ProjectURIError(f"{shown} has a central directory of {mib(directory)}; at most "
                              f"{mib(limits.max_directory_bytes)} is read "
                              "(ZipLimits.max_directory_bytes)", hint=_NOTHING)


def check_archive(zf: zipfile.ZipFile, shown: str, limits) -> list[Member]:
    """Every member of ``zf`` checked, in order, or the first refusal. Members under a
    ``.mlrun_magic/`` folder (at any depth, as packaging leaves it out) are left out: a zip of a folder that was run from holds the history and
    logs of someone else's runs, and the unpacked project starts with none."""
    infos = zf.infolist()
    if len(infos) > limits.max_members:
        raise ProjectURIError(f"{shown} has {len(infos):,} members; mlrun_magic unpacks at "
                              f"most {limits.max_members:,} (ZipLimits.max_members)",
                              hint=_NOTHING)
    members: list[Member] = []
    files: set[str] = set()
    folders: set[str] = set()
    total = 0
    for info in infos:
        parts, problem = _name_parts(info.orig_filename, limits)
        problem = problem or _type_problem(info)
        if problem is None and (not parts or STATE_DIR in parts):
            continue  # "./": the root itself; or our own state folder (at any depth)
        is_dir = info.filename.endswith("/")
        key = "/".join(parts)
        if problem is None and not is_dir and key in files:
            problem = "appears twice in the archive"
        total += info.file_size
        problem = problem or _size_problem(info, total, limits)
        if problem:
            raise ProjectURIError(f"zip member {_shown_name(info)} of {shown} {problem}",
                                  hint=_NOTHING)
        folders.update("/".join(parts[:i]) for i in range(1, len(parts) + is_dir))
        if not is_dir:
            files.add(key)
        executable = (info.external_attr >> 16) & 0o111
        members.append(Member(info, parts, is_dir, 0o755 if executable or is_dir else 0o644))
    clash = next((name for name in sorted(files) if name in folders), None)
    if clash is not None:
        raise ProjectURIError(f"zip member {clash!r} of {shown} is both a file and a folder",
                              hint=_NOTHING)
    return members


def _name_parts(raw: str, limits) -> tuple[tuple[str, ...], str | None]:
    """The path parts of a member name (``.`` and empty parts dropped), or why it is refused."""
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        return (), "has a control character in its name"
    if "\\" in raw:
        return (), ("has a backslash in its name (a Windows separator, which the zip format "
                    "does not use)")
    if raw.startswith("/"):
        return (), "is an absolute path"
    if _DRIVE.match(raw):
        return (), "starts with a drive letter"
    parts = tuple(p for p in raw.split("/") if p not in ("", "."))
    if ".." in parts:
        return (), "has a '..' component, which would leave the project folder"
    if len(parts) > limits.max_depth:
        return (), (f"is nested {len(parts)} folders deep; at most {limits.max_depth} are "
                    "unpacked (ZipLimits.max_depth)")
    if len(os.fsencode(raw)) > limits.max_name_bytes or \
            any(len(os.fsencode(p)) > _COMPONENT_BYTES for p in parts):
        return (), (f"has a name longer than {limits.max_name_bytes} bytes "
                    f"(ZipLimits.max_name_bytes) or a part longer than {_COMPONENT_BYTES}")
    return parts, None


def _type_problem(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return ("is a symbolic link; links are not unpacked (zip the files themselves: "
                "zip -r without -y stores what a link points to)")
    if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "is a device, a pipe or a socket, not a file or a folder"
    if info.flag_bits & 0x1:
        return "is encrypted; mlrun_magic unpacks no password-protected zips"
    if info.compress_type not in _SUPPORTED:
        return f"uses compression method {info.compress_type}, which Python cannot read"
    return None


def _size_problem(info: zipfile.ZipInfo, total: int, limits) -> str | None:
    if total > limits.max_unpacked_bytes:
        return (f"brings the unpacked size to {mib(total)}; at most "
                f"{mib(limits.max_unpacked_bytes)} is unpacked (ZipLimits.max_unpacked_bytes)")
    if info.file_size > limits.ratio_floor_bytes and \
            info.file_size > limits.max_ratio * max(info.compress_size, 1):
        ratio = info.file_size // max(info.compress_size, 1)
        return (f"unpacks {ratio:,} times larger than it is ({mib(info.file_size)}); at most "
                f"{limits.max_ratio} times is allowed (ZipLimits.max_ratio): a zip bomb?")
    return None


def _shown_name(info: zipfile.ZipInfo) -> str:
    name = info.orig_filename
    return repr(name if len(name) <= 200 else name[:200] + "...")
