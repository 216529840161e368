"""The order center's request and response: plain data between the WSGI edge (``app``)
and the views, so views are tested without sockets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

JSON = "application/json"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


@dataclass
class Request:
    """One request, parsed. ``headers`` keys are lower case; ``form`` is the POSTed form,
    ``json`` the POSTed JSON body (``None`` when there is none)."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    json: Any = None
    client: str = ""
    secure: bool = False

    @property
    def is_api(self) -> bool:
        return self.path == "/api" or self.path.startswith("/api/")


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = TEXT
    headers: list[tuple[str, str]] = field(default_factory=list)
    static: bool = False  # a packaged file: sent as it is (no secret scrubbing)


def json_response(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, indent=2, sort_keys=True, default=str).encode()
    return Response(status, body + b"\n", JSON)


def json_error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def redirect(location: str) -> Response:
    """303 See Other: after a POST the browser GETs ``location`` (a local path)."""
    return Response(303, b"", TEXT, [("Location", location)])


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 0x20 for c in target):
        return default
    return target


def path_with_query(path: str, **params: str | int | None) -> str:
    """``path?k=v&...`` with the values that are set, URL-quoted."""
    pairs = [
        f"{k}={quote(str(v), safe='')}"
        for k, v in params.items()
        if v not in (None, "")
    ]
    return f"{path}?{'&'.join(pairs)}" if pairs else path
