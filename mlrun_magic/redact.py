"""The one home of redaction: what keeps secrets out of everything mlrun_magic shows or logs.

* :func:`redact_url` / :func:`redact_text`: a URL's ``user:password@`` removed (one URL, or
  every URL in free text such as git's error output); :func:`redact_url_query` also masks
  the query's values (download links), :func:`redact_queries` every query in free text.
* :func:`split_userinfo`: an MLflow tracking URI without its credentials, and the credentials
  as the environment variables MLflow reads.
* :func:`scrub`: anything that looks like a token or password in an error message masked.
* :func:`redact_secrets`: a JSON-like value (a ``runs/submit`` body) with secret-looking
  values masked.

Standard library only, so the lowest layers may use it.
"""

from __future__ import annotations

import re

# What follows the "@" that ends a URL's userinfo: a host then "/"; or, before anything else
# (a query, a quote, ": ", the end), something that plainly is a host (a dot, a port, brackets
# or localhost), so "http://h/x?mail=a@b" stays whole.
_HOST = r"(?:\[[0-9A-Fa-f:.]*\]|[\w.~-]+)(?::\d*)?"
_PLAIN_HOST = r"(?:\[[0-9A-Fa-f:.]*\](?::\d*)?|[\w~-]*\.[\w.~-]*(?::\d*)?|[\w.~-]+:\d*|localhost)"
_HOST_END = r"(?![\w.~-])"
# Greedy: a password may hold an unencoded "/", "?", "#" or "@" (urlsplit's netloc stops at the
# first "/?#"), so the userinfo runs to the *last* such "@"; failing that, to an "@" before the
# first "/?#" as usual. Over-redacting is harmless; showing part of a secret is not. A file://
# URL has no userinfo ("file:///data/a@b/c" is a path).
_USERINFO = re.compile(
    r"(?<![\w+.-])(?P<scheme>[a-zA-Z][\w+.-]*://)"
    rf"(?P<userinfo>(?<![fF][iI][lL][eE]://)\S+(?=@(?:{_HOST}/|{_PLAIN_HOST}{_HOST_END}))"
    r"|[^/?#\s]*(?=@))@")


_REMOTE = re.compile(r"(?![fF][iI][lL][eE]://)[a-zA-Z][\w+.-]*://")


def split_authority(url: str) -> tuple[str, str, str] | None:
    """``(scheme + "://", userinfo, the rest)`` when ``url`` starts with ``scheme://userinfo@``,
    else None. ``http://a:pa/ss@h:1/x`` gives ``("http://", "a:pa/ss", "h:1/x")``."""
    match = _USERINFO.match(url)
    if match is None:
        return None
    return match["scheme"], match["userinfo"], url[match.end():]


def redact_url(url: str) -> str:
    """``url`` without user names and passwords (``https://tok@host/x`` -> ``https://host/x``)."""
    parts = split_authority(url)
    return url if parts is None else parts[0] + parts[2]


def redact_url_query(url: str) -> str:
    """``url`` without user names and passwords and with every query value masked
    (``https://h/get?token=abc&n=p.zip`` -> ``https://h/get?token=***&n=***``): the query of a
    download link is often its credential (``?token=``, pre-signed ``X-Amz-Signature=``,
    ``sig=``), under names no list can know. The ``#fragment`` (a subdirectory) is kept, and
    so is a path's ``?`` (a plain path or ``file://`` URL has no query)."""
    url = redact_url(url)
    head, mark, rest = url.partition("?")
    if not mark or not _REMOTE.match(head):
        return url
    query, hash_, fragment = rest.partition("#")
    masked = "&".join(p.partition("=")[0] + "=***" if "=" in p else "***" if p else ""
                      for p in query.split("&"))
    return f"{head}?{masked}{hash_}{fragment}"


def redact_queries(text: str) -> str:
    """Every URL's query in free text masked whole (``https://h/p.zip?***``): a link's query
    is often its key (a pre-signed ``X-Amz-Signature=``, ``?token=``), under any name."""
    return re.sub(r"(://[^\s'\"?#]*)\?[^\s'\"#]*", r"\1?***", text)


def redact_text(text: str) -> str:
    """Every ``scheme://user:secret@host`` in free text (git's error output) made safe."""
    return _USERINFO.sub(lambda m: m["scheme"], text)


def split_userinfo(uri: str) -> tuple[str, dict[str, str]]:
    """``(uri without "user:password@", the environment MLflow reads for them)``.

    ``http://me:s3cret@host:5000`` gives ``("http://host:5000", {"MLFLOW_TRACKING_USERNAME":
    "me", "MLFLOW_TRACKING_PASSWORD": "s3cret"})`` (percent-escapes decoded). Only ``http(s)``
    URIs are split: MLflow reads those variables for them alone (a database URI keeps its
    password, which its driver needs). Without credentials the environment is empty.
    """
    from urllib.parse import unquote

    # The userinfo redact_url removes, so a password with an unencoded "/", "?", "#" or "@"
    # becomes basic auth whole instead of half of it landing in the path.
    parts = split_authority(uri)
    if parts is None or parts[0].lower() not in ("http://", "https://"):
        return uri, {}
    scheme, userinfo, rest = parts
    user, has_password, password = userinfo.partition(":")
    env = {}
    if user or has_password:
        env["MLFLOW_TRACKING_USERNAME"] = unquote(user)
        env["MLFLOW_TRACKING_PASSWORD"] = unquote(password)
    return scheme + rest, env


_SECRET_PATTERNS = [
    re.compile(r"(token|secret|password|client_secret|access_token)([\"']?\s*[=:]\s*[\"']?)"
               r"([^\s,;'\"]+)", re.IGNORECASE),
    re.compile(r"\b(dapi|dkea|dose)[0-9a-f]{16,}\b"),
    re.compile(r"\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/=-]+"),
]


def scrub(text: str) -> str:
    """Mask anything that looks like a credential in ``text``: ``token=...``, ``"password":
    "..."``, ``Bearer ...``, Databricks tokens."""
    text = _SECRET_PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}***"
                                   if m.group(3) != "***" else m.group(0), text)
    text = _SECRET_PATTERNS[1].sub("***", text)
    return _SECRET_PATTERNS[2].sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


_SECRET_KEY = ("token", "secret", "password", "passwd", "credential", "api_key", "apikey")
#: Inside Spark settings and environment variables names are freer: ``fs.azure.account.key.*``,
#: ``DATABRICKS_PAT``, ``MY_PASS``, ``AUTH``.
_SETTING_SECRET_KEY = _SECRET_KEY + ("key", "pass", "pat", "auth", "sas", "private")
_SETTINGS = ("spark_conf", "spark_env_vars", "environment_variables")
_SECRET_VALUE = ("Basic ", "Bearer ", "dapi", "dkea", "-----BEGIN")


def redact_secrets(value, key: str = "", words=_SECRET_KEY):
    """A copy of ``value`` with the values of secret-looking keys (or that look like credentials
    themselves) masked, whatever their type or nesting; ``{{secrets/..}}`` references are
    kept: they are pointers, not secrets."""
    if key != "idempotency_token" and key not in _SETTINGS \
            and any(s in key.lower() for s in words):
        return _mask_all(value)
    if isinstance(value, dict):
        inner = _SETTING_SECRET_KEY if key in _SETTINGS else words
        return {k: redact_secrets(v, str(k), inner) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_secrets(v, key, words) for v in value]
    if isinstance(value, str) and value.startswith(_SECRET_VALUE):
        return "***"
    return value


def _mask_all(value):
    """Every leaf of ``value`` masked but references, booleans and nothing."""
    if isinstance(value, dict):
        return {k: _mask_all(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_all(v) for v in value]
    if value is None or isinstance(value, bool) or \
            isinstance(value, str) and value.startswith("{{secrets/"):
        return value
    return "***"
