"""The web dashboard: `frontend/dist` (built by `make install`) at `/`, its hashed files under `/assets`,
and `index.html` for every client-side route (`/jobs/…`, `/registry/…`) so a reload or a shared link works.

Client-side routes are matched by their first segment (`CLIENT_SECTIONS`, the top-level paths of
frontend/src/routes/router.tsx; a test keeps the two in step), not by a catch-all: the API's routes, and any
route added after this router, are never shadowed, and an unknown path still answers the JSON error
envelope. Until the dashboard is built, a plain page with the first steps stands in.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.convertors import Convertor, register_url_convertor

from backend.api.errors import APIError
from backend.api.headers import PLAIN_PAGE_CSP

router = APIRouter(tags=["home"], include_in_schema=False)
FRONTEND_BUILD = Path(__file__).resolve().parents[2] / "frontend" / "dist"
CLIENT_SECTIONS = ("jobs", "datasets", "registry", "playground", "compare")
ASSET_NAME = re.compile(r"[A-Za-z0-9._-]+")
INDEX_HEADERS = {"Cache-Control": "no-cache"}  # always revalidate: it names the current hashed assets
ASSET_HEADERS = {"Cache-Control": "public, max-age=31536000, immutable"}  # names carry a content hash


class ClientRoute(Convertor):
    """A path of the single-page app: one of its sections, then anything (`jobs/ftjob-…`)."""

    regex = r"(?:" + "|".join(re.escape(p) for p in CLIENT_SECTIONS) + r")(?:/.*)?"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("client_route", ClientRoute())

PLAIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fine-tuning Studio</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#222}
code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}</style></head>
<body><h1>Fine-tuning Studio</h1>
<p>The studio is running. The web dashboard is not built yet (<code>make install</code> builds it);
everything works over the REST API:</p>
<ul><li><a href="/docs">API reference (OpenAPI)</a></li><li><a href="/healthz">Health</a></li>
<li><a href="/v1/fine_tuning/jobs">Jobs</a> · <a href="/v1/files">Files</a></li></ul>
<p>Upload a dataset and start a LoRA job on the bundled demo model:</p>
<pre><code>curl -F purpose=fine-tune -F file=@examples/data/chat.jsonl http://127.0.0.1:8000/v1/files
curl -H 'Content-Type: application/json' http://127.0.0.1:8000/v1/fine_tuning/jobs \\
  -d '{"model": "studio-tiny-llama", "training_file": "file-…", "tuning": {"type": "lora"}}'</code></pre>
</body></html>"""


def dashboard() -> Response:
    index = FRONTEND_BUILD / "index.html"
    if index.is_file():
        return FileResponse(index, media_type="text/html", headers=INDEX_HEADERS)
    return HTMLResponse(PLAIN_PAGE, headers={"Content-Security-Policy": PLAIN_PAGE_CSP})


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    """The dashboard, or a plain page with the first steps."""
    return dashboard()


@router.get("/assets/{name}")
def asset(name: str) -> Response:
    """A file of the dashboard's build (JavaScript, CSS, fonts)."""
    path = FRONTEND_BUILD / "assets" / name
    if not ASSET_NAME.fullmatch(name) or name.startswith(".") or not path.is_file():
        raise APIError(404, f"No such asset: '{name}'.", param="name", code="not_found")
    return FileResponse(path, headers=ASSET_HEADERS)


@router.get("/{path:client_route}", response_class=HTMLResponse)
def client_route(path: str) -> Response:
    """A page of the dashboard (`/jobs/ftjob-…`, `/registry/name`): the app routes it in the browser."""
    return dashboard()
