"""Fault rules and the request log: what tests use to break and to inspect the workspace.

A rule matches requests by method and path glob and applies one action a given number of
times (``times``, default 1; ``-1`` for every match) after skipping ``offset`` matches:

``status``
    answer ``status`` (default 503) with ``body`` (a JSON object, or a string sent as-is;
    default a Databricks error envelope) and ``Retry-After: retry_after`` when given;
    the request is not handled.
``drop``
    close the connection without answering (the client sees a connection error).
``delay``
    wait ``seconds`` and then handle the request normally.
``respond-then-fail``
    handle the request (its side effects happen) and answer like ``status`` instead.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from mlrun_magic.testing.http import Response, bad_request

ACTIONS = ("status", "drop", "delay", "respond-then-fail")
LOG_LIMIT = 10_000

_DEFAULT_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                  404: "NOT_FOUND", 409: "RESOURCE_CONFLICT", 429: "REQUEST_LIMIT_EXCEEDED",
                  500: "INTERNAL_ERROR", 501: "NOT_IMPLEMENTED",
                  503: "TEMPORARILY_UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


@dataclass
class FaultRule:
    """One fault: see the module help for the meaning of each field."""

    action: str = "status"
    method: str = "*"
    path: str = "*"
    times: int = 1
    offset: int = 0
    status: int = 503
    body: Any = None
    retry_after: str | None = None
    seconds: float = 0.0
    id: int = 0
    hits: int = 0
    seen: int = 0

    def matches(self, method: str, path: str) -> bool:
        return (fnmatch.fnmatchcase(method.upper(), self.method.upper())
                and fnmatch.fnmatchcase(path, self.path))

    def exhausted(self) -> bool:
        return self.times >= 0 and self.hits >= self.times

    def response(self) -> Response:
        """The injected answer of a ``status`` or ``respond-then-fail`` rule."""
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.body is None:
            code = _DEFAULT_CODES.get(self.status, "UNKNOWN")
            return Response.json({"error_code": code,
                                  "message": f"Injected fault: HTTP {self.status}"},
                                 status=self.status, headers=headers)
        if isinstance(self.body, (dict, list)):
            return Response.json(self.body, status=self.status, headers=headers)
        text = str(self.body)
        kind = "text/html" if text.lstrip().startswith("<") else "text/plain"
        try:
            json.loads(text)
            kind = "application/json"
        except ValueError:
            pass
        return Response(self.status, text.encode(), {"Content-Type": kind, **headers})


def parse_rule(spec: dict) -> FaultRule:
    """A :class:`FaultRule` from the JSON of ``POST /__admin/faults`` (400 if malformed)."""
    if not isinstance(spec, dict):
        raise bad_request("A fault is a JSON object")
    known = {"action", "method", "path", "times", "offset", "status", "body", "retry_after",
             "seconds"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise bad_request(f"Unknown fault field(s): {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(known))}")
    action = spec.get("action", "status")
    if action not in ACTIONS:
        raise bad_request(f"Unknown fault action {action!r}; use one of {', '.join(ACTIONS)}")
    try:
        rule = FaultRule(
            action=action, method=str(spec.get("method") or "*"),
            path=str(spec.get("path") or "*"), times=int(spec.get("times", 1)),
            offset=int(spec.get("offset", 0)), status=int(spec.get("status", 503)),
            body=spec.get("body"),
            retry_after=None if spec.get("retry_after") is None else str(spec["retry_after"]),
            seconds=float(spec.get("seconds", 0.0)))
    except (TypeError, ValueError) as exc:
        raise bad_request(f"Malformed fault: {exc}") from None
    return rule


_SECRET_KEYS = {"token", "access_token", "client_secret", "password", "refresh_token"}


def mask_token(value: str) -> str:
    """``Bearer dapi1234…`` becomes ``Bearer ****1234`` (the last four characters only)."""
    scheme, _, secret = value.partition(" ")
    if not secret:
        scheme, secret = "", scheme
    masked = "****" + secret[-4:] if len(secret) > 8 else "****"
    return f"{scheme} {masked}".strip()


def _shorten(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: ("****" if k in _SECRET_KEYS and isinstance(v, str) else _shorten(v))
                for k, v in value.items()}
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    if isinstance(value, str) and len(value) > 1000:
        return f"<{len(value)} characters>"
    return value


class FaultBook:
    """The active fault rules and the request log, shared by all request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.rules: list[FaultRule] = []
        self.log: list[dict] = []
        self._count = 0

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            rule.id = next(self._ids)
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def reset(self) -> None:
        with self._lock:
            self.rules.clear()
            self.log.clear()
            self._count = 0

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first live rule matching this request, counting the hit."""
        with self._lock:
            for rule in self.rules:
                if rule.exhausted() or not rule.matches(method, path):
                    continue
                rule.seen += 1
                if rule.seen <= rule.offset:
                    continue
                rule.hits += 1
                return rule
        return None

    def describe(self) -> list[dict]:
        with self._lock:
            return [asdict(rule) for rule in self.rules]

    def record(self, method: str, path: str, query: dict, headers: Any) -> dict:
        """Start a log entry for a request; the server fills in body, status and fault."""
        shown = {}
        for name, value in headers.items():
            shown[name] = mask_token(value) if name.lower() == "authorization" else value
        entry = {"time": time.time(), "method": method, "path": path, "query": dict(query),
                 "headers": shown, "json": None, "body_size": int(headers.get("Content-Length")
                                                                   or 0),
                 "status": None, "fault": None}
        with self._lock:
            self._count += 1
            entry["id"] = self._count
            self.log.append(entry)
            if len(self.log) > LOG_LIMIT:  # a long-lived `serve` keeps the newest only
                del self.log[: len(self.log) - LOG_LIMIT]
        return entry

    @staticmethod
    def attach_json(entry: dict, payload: Any) -> None:
        entry["json"] = _shorten(payload)

    def requests(self, method: str | None = None, path: str | None = None) -> list[dict]:
        """Logged requests, optionally filtered by method and path glob, oldest first."""
        with self._lock:
            entries = list(self.log)
        return [dict(e) for e in entries
                if (method is None or e["method"] == method.upper())
                and (path is None or fnmatch.fnmatchcase(e["path"], path))]
