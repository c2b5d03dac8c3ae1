"""`GET /`: the web UI's build when there is one (frontend/dist), a plain page until then."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(tags=["home"], include_in_schema=False)
FRONTEND_BUILD = Path(__file__).resolve().parents[2] / "frontend" / "dist"

PLAIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fine-tuning Studio</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#222}
code{background:#f3f3f3;padding:.1rem .3rem;border-radius:3px}</style></head>
<body><h1>Fine-tuning Studio</h1>
<p>The studio is running. The web dashboard is not built yet; everything works over the REST API:</p>
<ul><li><a href="/docs">API reference (OpenAPI)</a></li><li><a href="/healthz">Health</a></li>
<li><a href="/v1/fine_tuning/jobs">Jobs</a> · <a href="/v1/files">Files</a></li></ul>
<p>Upload a dataset and start a LoRA job on the bundled demo model:</p>
<pre><code>curl -F purpose=fine-tune -F file=@examples/data/chat.jsonl http://127.0.0.1:8000/v1/files
curl -H 'Content-Type: application/json' http://127.0.0.1:8000/v1/fine_tuning/jobs \\
  -d '{"model": "studio-tiny-llama", "training_file": "file-…", "tuning": {"type": "lora"}}'</code></pre>
</body></html>"""


@router.get("/", response_class=HTMLResponse)
def home():
    """The dashboard, or a plain page with the first steps."""
    index = FRONTEND_BUILD / "index.html"
    if index.is_file():
        return FileResponse(index)
    return HTMLResponse(PLAIN_PAGE)
