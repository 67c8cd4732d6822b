"""HTML pages: templates in web/templates share one frame (header and navigation, base.html);
their scripts and styles are static files mounted at /static by api.main."""

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

# The main navigation, in order: (path, label).
NAV = [("/", "Draw"), ("/bulk", "Bulk upload"), ("/review/page", "Review"), ("/docs", "API docs")]


def render(request: Request, template: str, title: str) -> HTMLResponse:
    context = {"title": title, "nav": NAV, "path": request.url.path}
    return request.app.state.templates.TemplateResponse(request, template, context)


@router.get("/")
def canvas(request: Request) -> HTMLResponse:
    return render(request, "index.html", "draw digits")


@router.get("/bulk")
def bulk(request: Request) -> HTMLResponse:
    return render(request, "jobs.html", "bulk upload")
