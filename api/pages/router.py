"""HTML pages from web/ (static files are mounted at /static by api.main)."""

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.deps import SettingsDep

router = APIRouter(include_in_schema=False)


@router.get("/")
async def canvas(settings: SettingsDep) -> FileResponse:
    return FileResponse(settings.web_dir / "index.html")


@router.get("/bulk")
async def bulk(settings: SettingsDep) -> FileResponse:
    return FileResponse(settings.web_dir / "jobs.html")
