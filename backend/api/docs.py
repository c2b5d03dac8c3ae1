"""The API reference, offline: `/docs` (Swagger UI) and `/redoc` (ReDoc) load their JavaScript and CSS from
the studio itself — the copies shipped by the pinned `fastapi-offline` package — instead of FastAPI's
default CDN, so they render on a machine without internet. The pages hold no inline script (the Swagger UI
set-up is `/docs/assets/swagger-init.js`), so they run under the studio's Content-Security-Policy.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from backend.api.errors import APIError

router = APIRouter(tags=["docs"], include_in_schema=False)
ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
SHIPPED = {"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"}
ASSET_HEADERS = {"Cache-Control": "public, max-age=86400"}
TITLE = "Fine-tuning Studio"

SWAGGER_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json", dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
  showExtensions: true, showCommonExtensions: true, validatorUrl: null, persistAuthorization: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""

SWAGGER_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{TITLE} — API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" href="/docs/assets/favicon.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-init.js"></script></body></html>"""

REDOC_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{TITLE} — API reference (ReDoc)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" type="image/png" href="/docs/assets/favicon.png"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="/docs/assets/redoc.standalone.js"></script></body></html>"""


@router.get("/docs", response_class=HTMLResponse)
def swagger_ui() -> Response:
    """Swagger UI for the OpenAPI schema."""
    return HTMLResponse(SWAGGER_PAGE)


@router.get("/redoc", response_class=HTMLResponse)
def redoc() -> Response:
    """ReDoc for the OpenAPI schema."""
    return HTMLResponse(REDOC_PAGE)


@router.get("/docs/assets/{name}")
def docs_asset(name: str) -> Response:
    """A file of Swagger UI or ReDoc (from fastapi-offline), or the Swagger UI set-up script."""
    if name == "swagger-init.js":
        return Response(SWAGGER_INIT, media_type="text/javascript", headers=ASSET_HEADERS)
    if name not in SHIPPED:
        raise APIError(404, f"No such asset: '{name}'.", param="name", code="not_found")
    return FileResponse(ASSETS / name, headers=ASSET_HEADERS)
