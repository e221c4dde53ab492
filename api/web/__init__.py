"""Server-rendered pages: the consumer scan page at the GS1 Digital Link, and the dashboard.

Two routers, each registered with one line in :func:`api.app.create_app`:

* :mod:`api.web.resolver` — ``/01/…``, ``/00/…``, ``/nmpa/…`` and ``/scan``: public, no account.
  HTML for browsers, the verify JSON for ``Accept: application/json``, a GS1 linkset for
  ``?linkType=all``.
* :mod:`api.web.dashboard` — ``/dashboard/…``: token login, alerts, recall, lots, org pages.

Pages call the service layer directly (never over HTTP) and add no business rules of their
own: they choose words, colours and layout. Templates are Jinja2 with autoescaping, static
files are vendored into the package and served from memory (no CDN, no build step), and every
page works without JavaScript except the read-aloud button (docs/adr/0010-web-pages.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.web import i18n

__all__ = [
    "SECURITY_HEADERS",
    "STATIC_PREFIX",
    "html_page",
    "render",
    "static_router",
    "static_url",
]

_HERE: Final = Path(__file__).resolve().parent
STATIC_PREFIX: Final = "/static/web/"

# Pages load only their own stylesheet and script: a strict CSP makes injected markup inert even
# if an escaping bug slipped through, and frame-ancestors stops click-jacking of the recall form.
SECURITY_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
        "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

_TYPES: Final[Mapping[str, str]] = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
}


@cache
def _static_files() -> dict[str, tuple[bytes, str, str]]:
    # Read once: the files are tiny and fixed at install time; serving from memory keeps the
    # consumer page's extra requests off the disk.
    files: dict[str, tuple[bytes, str, str]] = {}
    for path in sorted((_HERE / "static").iterdir()):
        if path.suffix in _TYPES:
            body = path.read_bytes()
            etag = hashlib.sha256(body).hexdigest()[:16]
            files[path.name] = (body, _TYPES[path.suffix], etag)
    return files


def static_url(name: str) -> str:
    """URL of a vendored static file, with a content hash so it can be cached forever."""
    entry = _static_files().get(name)
    version = entry[2] if entry else "0"
    return f"{STATIC_PREFIX}{name}?v={version}"


static_router = APIRouter(include_in_schema=False)


@static_router.get(STATIC_PREFIX + "{name}")
def static_file(name: str) -> Response:
    """Serve one vendored CSS/JS file (a fixed allow-list: no path is ever joined)."""
    entry = _static_files().get(name)
    if entry is None:
        return Response(status_code=404)
    body, media_type, etag = entry
    return Response(
        body,
        media_type=media_type,
        headers={
            "ETag": f'"{etag}"',
            "Cache-Control": "public, max-age=31536000, immutable",
            "X-Content-Type-Options": "nosniff",
        },
    )


@cache
def _env() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(_HERE / "templates")),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a misspelt variable fails the tests, not silently blank
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals["static_url"] = static_url
    return env


def render(template: str, lang: i18n.Lang, **context: Any) -> str:
    """Render a template with the language helpers every page uses.

    Args:
        template: File name under ``templates/``.
        lang: Page language.
        **context: Template variables; ``switch_href`` (the other language's URL) is required.

    Returns:
        The HTML text.
    """

    def t(key: str, **values: object) -> str:
        return i18n.t(lang, key, **values)

    return (
        _env()
        .get_template(template)
        .render(lang=lang, html_lang=i18n.html_lang(lang), t=t, **context)
    )


def html_page(
    template: str,
    lang: i18n.Lang,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` into an HTML response with the security headers and ``Vary``."""
    merged = dict(SECURITY_HEADERS)
    merged["Vary"] = "Accept, Accept-Language"
    merged["Content-Language"] = i18n.html_lang(lang)
    if headers:
        merged.update(headers)
    return HTMLResponse(render(template, lang, **context), status_code=status_code, headers=merged)
