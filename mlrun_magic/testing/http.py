"""Request, response and error types shared by the workspace's route modules.

A route handler takes a :class:`Request` and returns a :class:`Response` or raises
:class:`ApiError`, which the server turns into Databricks' JSON error envelope.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

CHUNK = 1024 * 1024


class ApiError(Exception):
    """An error answered as ``{"error_code": ..., "message": ...}`` with an HTTP status."""

    def __init__(self, status: int, error_code: str | int, message: str,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}

    def response(self) -> "Response":
        return Response.json({"error_code": self.error_code, "message": self.message},
                             status=self.status, headers=self.headers)


def bad_request(message: str, code: str = "INVALID_PARAMETER_VALUE") -> ApiError:
    return ApiError(400, code, message)


def not_found(message: str, code: str = "RESOURCE_DOES_NOT_EXIST") -> ApiError:
    return ApiError(404, code, message)


@dataclass
class Response:
    """What a handler answers: a status, headers and either bytes or a file to stream."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    file: Path | None = None
    file_range: tuple[int, int] | None = None  # inclusive byte range of ``file``

    @classmethod
    def json(cls, payload: Any, status: int = 200,
             headers: dict[str, str] | None = None) -> "Response":
        body = json.dumps(payload).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def empty(cls, status: int = 200) -> "Response":
        return cls(status, b"")


class Request:
    """One HTTP request as the route handlers see it; the body is read lazily."""

    def __init__(self, method: str, path: str, query: str, headers: Any, rfile: Any):
        self.method = method
        self.path = path
        self.query = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        self.headers = headers
        self._rfile = rfile
        self.length = int(headers.get("Content-Length") or 0)
        self._remaining = self.length
        self._body: bytes | None = None
        self._json: Any = None
        self.match: re.Match | None = None
        self.token: str | None = None
        self.log_entry: dict | None = None

    @property
    def body_consumed(self) -> bool:
        return self._remaining == 0

    def read_chunks(self) -> Iterable[bytes]:
        """The body in chunks of at most 1 MiB, without holding it in memory."""
        while self._remaining > 0:
            chunk = self._rfile.read(min(CHUNK, self._remaining))
            if not chunk:
                raise ApiError(400, "MALFORMED_REQUEST", "The request body ended early.")
            self._remaining -= len(chunk)
            yield chunk

    def body(self, limit: int = 64 * CHUNK) -> bytes:
        """The whole body (refused above ``limit`` bytes)."""
        if self._body is None:
            if self.length > limit:
                raise ApiError(400, "MAX_REQUEST_SIZE_EXCEEDED",
                               f"The request body is {self.length} bytes; the limit is {limit}.")
            self._body = b"".join(self.read_chunks())
        return self._body

    def save_body(self, target: Path) -> int:
        """Stream the body into ``target`` and return its size."""
        with open(target, "wb") as out:
            for chunk in self.read_chunks():
                out.write(chunk)
        return self.length

    def drain(self, limit: int = 16 * CHUNK) -> bool:
        """Read and discard what is left of the body; False if too much is left to bother."""
        if self._remaining > limit:
            return False
        for _ in self.read_chunks():
            pass
        return True

    def json(self) -> dict:
        """The JSON object body ({} when empty); a malformed body is a 400 envelope."""
        if self._json is None:
            raw = self.body()
            if not raw.strip():
                self._json = {}
            else:
                try:
                    self._json = json.loads(raw)
                except ValueError:
                    raise ApiError(400, "MALFORMED_REQUEST",
                                   "Invalid JSON given in the body of the request - "
                                   "failed to parse given JSON") from None
                if not isinstance(self._json, dict):
                    raise ApiError(400, "MALFORMED_REQUEST",
                                   "Invalid JSON given in the body of the request - "
                                   "expected a map")
        return self._json

    def params(self) -> dict:
        """Query parameters merged over a JSON body (some clients send GET with a JSON body)."""
        merged = dict(self.json()) if self.length else {}
        merged.update(self.query)
        return merged


Handler = Callable[[Request], Response]


@dataclass
class Route:
    """``methods`` and a regular expression matched against the whole decoded path."""

    methods: tuple[str, ...]
    pattern: re.Pattern
    handler: Handler
    auth: bool = True


def route(methods: str, pattern: str, handler: Handler, auth: bool = True) -> Route:
    return Route(tuple(methods.split("|")), re.compile(pattern + r"\Z"), handler, auth)


def copy_file_range(path: Path, out: Any, start: int, end: int) -> None:
    """Write bytes ``start..end`` (inclusive) of ``path`` to ``out``."""
    with open(path, "rb") as src:
        src.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = src.read(min(CHUNK, left))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)


def copy_file(path: Path, out: Any) -> None:
    with open(path, "rb") as src:
        shutil.copyfileobj(src, out, CHUNK)


# Parameter helpers: Databricks answers type errors with INVALID_PARAMETER_VALUE.

def required(params: dict, name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise bad_request(f"Missing required field: {name}")
    return value


def as_bool(value: Any, name: str, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise bad_request(f"Invalid value for parameter {name}: expected a boolean, got {value!r}")


def as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise bad_request(f"Invalid value for parameter {name}: expected an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"Invalid value for parameter {name}: expected an integer, "
                          f"got {value!r}") from None
