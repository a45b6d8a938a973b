"""Downloading an ``http(s)://…/x.zip`` project, streamed to a file, bounded in size and time.

It is one plain GET with ``requests``, the library ``mlflow run`` fetches zips with, so what
works there works here: credentials in the URL (``https://user:token@host/p.zip``) become basic
auth, ``~/.netrc``, the proxy variables and ``REQUESTS_CA_BUNDLE`` (a private CA) are honoured.
A failure says what MLflow says, ``Unable to retrieve ZIP file. Reason: ...``, without any
credential of the URL (its userinfo and every query value are masked).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from mlrun_magic.errors import ProjectURIError
from mlrun_magic.project.zipcheck import mib
from mlrun_magic.redact import redact_text, scrub

REMOTE = re.compile(r"https?://", re.IGNORECASE)
CHUNK_BYTES = 256 * 1024
_PREFIX = "Unable to retrieve ZIP file. Reason: "
_HINT = "Check the link (open it in a browser); nothing was unpacked."


def download(url: str, dest: Path, shown: str, limits) -> Path:
    """GET ``url`` into the new file ``dest`` and return it; ``shown`` is ``url`` as it may
    be shown. Refused past ``limits.max_download_bytes`` or ``limits.download_seconds``."""
    import requests
    import urllib3

    from mlrun_magic.project.zipdeadline import DeadlineAdapter

    deadline = time.monotonic() + limits.download_seconds
    adapter = DeadlineAdapter(limits.download_seconds)
    try:
        with requests.Session() as session:
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            with session.get(url, stream=True,
                             timeout=(limits.connect_timeout, limits.read_timeout)) as response:
                if response.status_code >= 400:
                    raise ProjectURIError(_PREFIX + _http_reason(response, url, shown),
                                          hint=_HINT)
                _check_length(response.headers.get("Content-Length"), shown, limits)
                kind = response.headers.get("Content-Type", "")
                with open(dest, "xb") as out:
                    _stream(response.raw, out, shown, limits, deadline)
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        if adapter.expired:
            raise _too_slow(shown, limits) from None
        raise ProjectURIError(_PREFIX + _clean(str(exc) or type(exc).__name__, url, shown),
                              hint=_HINT) from None
    finally:
        adapter.stop()
    if adapter.expired:  # its sockets shut: what was read may be cut short
        raise _too_slow(shown, limits)
    _check_not_a_page(dest, kind, shown)
    return dest


def _check_not_a_page(dest: Path, kind: str, shown: str) -> None:
    """A sharing link often answers 200 with a sign-in or download page, not the file."""
    with open(dest, "rb") as got:
        start = got.read(4)
    if "html" in kind.lower() and start != b"PK\x03\x04":
        raise ProjectURIError(f"{_PREFIX}{shown} answered a web page ({kind.split(';')[0]}), "
                              "not a zip file",
                              hint="The link leads to a page (a sign-in or download page?), "
                                   "not to the file: give the direct download link, or "
                                   "download the zip and give its path; nothing was unpacked.")


def _too_slow(shown: str, limits) -> ProjectURIError:
    return ProjectURIError(f"{_PREFIX}the download of {shown} took longer than "
                           f"{limits.download_seconds:g} s (ZipLimits.download_seconds)",
                           hint=_HINT)


def _stream(raw, out, shown: str, limits, deadline: float) -> None:
    # read1 returns what one read of the socket brings, so a server trickling bytes meets the
    # deadline within one read timeout (read(n) would wait for all n bytes).
    read = getattr(raw, "read1", None) or raw.read
    size = 0
    while chunk := read(CHUNK_BYTES, decode_content=True):
        size += len(chunk)
        if size > limits.max_download_bytes:
            raise ProjectURIError(f"{_PREFIX}{shown} is larger than "
                                  f"{mib(limits.max_download_bytes)} "
                                  "(ZipLimits.max_download_bytes)", hint=_HINT)
        if time.monotonic() > deadline:
            raise _too_slow(shown, limits)
        out.write(chunk)


def _check_length(declared: str | None, shown: str, limits) -> None:
    if declared and declared.strip().isdigit() and int(declared) > limits.max_download_bytes:
        raise ProjectURIError(f"{_PREFIX}{shown} is {mib(int(declared))}, larger than "
                              f"{mib(limits.max_download_bytes)} "
                              "(ZipLimits.max_download_bytes)", hint=_HINT)


def _http_reason(response, url: str, shown: str) -> str:
    """What ``requests`` says of a failed status (as MLflow shows it), the URL made safe, and
    the start of a short non-HTML answer (MLflow appends the whole answer)."""
    status = response.status_code
    side = "Client" if status < 500 else "Server"
    reason = f"{status} {side} Error: {response.reason} for url: {url}"
    kind = response.headers.get("Content-Type", "")
    if "html" not in kind.lower():
        text = response.raw.read(1024, decode_content=True).decode("utf-8", "replace").strip()
        if text:
            reason += f". Response text: {text[:300]}"
    return _clean(reason, url, shown)


def _clean(text: str, url: str, shown: str) -> str:
    """``text`` without the URL's credentials: the raw URL replaced by its shown form, its
    query values and userinfo (as libraries quote them) masked, every ``user:secret@`` and
    ``token=...`` masked."""
    from urllib.parse import urlsplit

    placeholder = "\0url\0"
    text = text.replace(url, placeholder)
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None:
        secrets = [parts.query, parts.password, parts.username,
                   *(p.partition("=")[2] or p for p in parts.query.split("&"))]
        for secret in sorted(filter(None, secrets), key=len, reverse=True):
            if len(secret) >= 3:
                text = text.replace(secret, "***")
    # Any other URL's query (a redirect's pre-signed link) is masked whole.
    text = re.sub(r"\?[^\s'\"()]+", "?***", text)
    return scrub(redact_text(text)).replace(placeholder, shown)
