"""`SecurityHeaders`: every answer says it may not be framed (`X-Frame-Options: DENY` and CSP
`frame-ancestors 'none'`: no clickjacking of the dashboard), carries a Content-Security-Policy that the
built dashboard satisfies (its scripts and styles are files under /assets: nothing inline, nothing from
another origin), `nosniff`, and sends no `Referer` elsewhere (download links may carry `?api_key=`).

The API reference pages (`docs.py`) get a policy with inline styles allowed: Swagger UI and ReDoc set
styles at run time, and ReDoc runs its search in a `blob:` worker. Their scripts are still files only.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMMON = ("default-src 'self'", "img-src 'self' data:", "font-src 'self' data:", "connect-src 'self'",
          "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'")
APP_CSP = "; ".join((*COMMON, "script-src 'self'", "style-src 'self'"))
DOCS_CSP = "; ".join((*COMMON, "script-src 'self'", "style-src 'self' 'unsafe-inline'", "worker-src 'self' blob:"))
DOCS_PATHS = ("/docs", "/redoc")
PLAIN_PAGE_CSP = "; ".join((*COMMON, "script-src 'none'", "style-src 'unsafe-inline'"))  # home.PLAIN_PAGE's <style>


class SecurityHeaders:
    """Adds the headers above to every HTTP answer (ours and Starlette's own errors alike)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = DOCS_CSP if scope["path"] in DOCS_PATHS else APP_CSP

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Content-Security-Policy", csp)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
            await send(message)

        await self.app(scope, receive, with_headers)
