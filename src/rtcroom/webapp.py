"""The browser app's files, read once at start-up and served from memory.

The app is a few small files (no build step), so keeping them in memory
costs kilobytes and saves a file open and a thread hop on every request:
time that a user waits for before the camera even starts.

Pages are served with their stylesheet inlined: a fresh browser opens a new
connection per request, and on a busy machine each one costs the browser's
network service several milliseconds before the page's scripts may run
(they wait for the stylesheets before them). The files stay separate in
the source; the inlining happens here, once.

Mounted under a path prefix (the ASGI scope's root_path: /rtc), pages name
their files and /ws under it: each page's links, and its
`<meta name="rtcroom-base">` that the scripts read, are rewritten once per
prefix.
"""

from __future__ import annotations

import hashlib
import html
import mimetypes
import re
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

WEB_ROOT = Path(str(files("rtcroom") / "web"))

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_STYLESHEET = re.compile(r'<link rel="stylesheet" href="/static/([\w.-]+\.css)">')
BASE_META = '<meta name="rtcroom-base" content="">'


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def _asset(body: bytes, media_type: str) -> Asset:
    return Asset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')


class WebAssets:
    def __init__(self, root: Path = WEB_ROOT) -> None:
        self.assets: dict[str, Asset] = {}
        # Pages as served under a prefix: (prefix, name) -> asset.
        self._prefixed: dict[tuple[str, str], Asset] = {}
        for path in sorted(root.iterdir()):
            if path.is_file():
                body = path.read_bytes()
                if path.suffix == ".html":
                    body = inline_stylesheets(body, root)
                media_type = _TYPES.get(path.suffix) or (
                    mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                )
                if media_type == "text/html":
                    media_type = "text/html; charset=utf-8"
                    if BASE_META.encode() not in body:
                        raise ValueError(f"{path.name} lacks {BASE_META}")
                self.assets[path.name] = _asset(body, media_type)

    def asset(self, name: str, prefix: str = "") -> Asset | None:
        """The file `name` as served under `prefix` ("" or "/rtc")."""
        asset = self.assets.get(name)
        if asset is None or not prefix or not asset.media_type.startswith("text/html"):
            return asset
        prefixed = self._prefixed.get((prefix, name))
        if prefixed is None:
            page = asset.body.decode()
            page = page.replace('"/static/', f'"{prefix}/static/')
            page = page.replace(BASE_META, BASE_META.replace('""', f'"{html.escape(prefix)}"'))
            prefixed = self._prefixed[(prefix, name)] = _asset(page.encode(), asset.media_type)
        return prefixed

    def response(self, request: Request, name: str) -> Response:
        asset = self.asset(name, request.scope.get("root_path", "").rstrip("/"))
        if asset is None:
            return PlainTextResponse("Not Found", status_code=404)
        # Revalidate every time (names are not versioned); unchanged files cost a 304.
        headers = {"ETag": asset.etag, "Cache-Control": "no-cache"}
        if asset.media_type.startswith("text/html"):
            # Room links may carry an access token: never pass it on to
            # other sites as a Referer, and never be framed by them.
            headers["Referrer-Policy"] = "no-referrer"
            headers["X-Frame-Options"] = "DENY"
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)


def inline_stylesheets(page: bytes, root: Path) -> bytes:
    """`page` with each `<link rel="stylesheet" href="/static/X.css">` replaced by a
    `<style>` element holding X.css from `root`."""

    def inline(match: re.Match[str]) -> str:
        css = (root / match[1]).read_text()
        if "</style" in css.lower():
            raise ValueError(f"{match[1]} cannot be inlined: it contains </style")
        return f"<style>/* /static/{match[1]} */\n{css}</style>"

    return _STYLESHEET.sub(inline, page.decode()).encode()
