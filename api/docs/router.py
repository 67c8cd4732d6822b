"""/docs (Swagger UI) and /redoc served from the platform itself: the bundles packaged with
`fastapi-offline` (no CDN: they work on an air-gapped network) and no inline script (CSP)."""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

BUNDLE_DIR = Path(fastapi_offline.__file__).parent / "static"
BUNDLE_URL = "/static-docs"

router = APIRouter(include_in_schema=False)

SWAGGER_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DigitFlow API - Swagger UI</title>
<link rel="icon" href="{BUNDLE_URL}/favicon.png">
<link rel="stylesheet" href="{BUNDLE_URL}/swagger-ui.css"></head>
<body><div id="swagger-ui" data-openapi-url="/openapi.json"></div>
<script src="{BUNDLE_URL}/swagger-ui-bundle.js"></script>
<script src="/static/swagger-init.js"></script></body></html>"""

REDOC_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>DigitFlow API - ReDoc</title>
<link rel="icon" href="{BUNDLE_URL}/favicon.png"></head>
<body><redoc spec-url="/openapi.json"></redoc>
<script src="{BUNDLE_URL}/redoc.standalone.js"></script></body></html>"""


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return HTMLResponse(SWAGGER_PAGE)


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return HTMLResponse(REDOC_PAGE)


def bundle_files() -> StaticFiles:
    return StaticFiles(directory=BUNDLE_DIR)
