"""The DigitFlow API: `uvicorn api.main:app` (or `create_app(settings)` in tests).

Everything a request needs (model, micro-batcher, database sessions, object storage, the Celery
producer) is built once, in the lifespan. If the model or a store cannot be opened the process
still starts, so that /health answers and /ready says why it is not ready.
"""

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.config import Settings, get_settings
from api.doctypes.router import router as doctypes_router
from api.errors import register_exception_handlers
from api.health.checks import READINESS_CHECKS
from api.health.router import router as health_router
from api.jobs.router import router as jobs_router
from api.pages.router import router as pages_router
from api.predict.batcher import MicroBatcher
from api.predict.router import router as predict_router
from digitflow.db import make_sessionmaker
from digitflow.queue import make_celery
from digitflow.storage import StorageUnavailable, make_storage
from recognition import Recognizer
from recognition.doctypes import DocumentTypes

logger = logging.getLogger("digitflow.api")

# Each domain adds its router here (and its readiness check in api.health.checks).
ROUTERS = [health_router, predict_router, pages_router, jobs_router, doctypes_router]


async def _load_model(app: FastAPI, settings: Settings) -> None:
    try:
        recognizer = await run_in_threadpool(Recognizer, settings.model_dir)
    except Exception as exc:  # e.g. no model yet: stay up, report it on /ready
        logger.error("could not load the model from %s: %s", settings.model_dir, exc)
        app.state.model_error = f"{type(exc).__name__} while loading the model"
        return
    logger.info("model %s loaded from %s", recognizer.version, settings.model_dir)
    app.state.recognizer = recognizer
    app.state.batcher = MicroBatcher(recognizer, settings.batch_max_size, settings.decode_threads)


def _open_stores(app: FastAPI, settings: Settings) -> None:
    app.state.sessions = make_sessionmaker(settings.resolved_database_url)
    app.state.producer = make_celery(settings)
    try:
        app.state.storage = make_storage(settings)
    except StorageUnavailable as exc:  # opened again on first use; /ready says so meanwhile
        logger.error("object storage unavailable at start-up: %s", exc)


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    _open_stores(app, settings)
    await _load_model(app, settings)
    try:
        yield
    finally:
        if app.state.batcher is not None:
            app.state.batcher.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="DigitFlow",
        summary="Reads handwritten digits; sends what it is unsure of to people.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    app.state.recognizer = app.state.batcher = app.state.model_error = None
    app.state.sessions = app.state.storage = app.state.producer = None
    app.state.readiness_checks = list(READINESS_CHECKS)
    app.state.document_types = DocumentTypes(app.state.settings.resolved_document_types_dir)
    register_exception_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.state.templates = Jinja2Templates(directory=app.state.settings.web_dir / "templates")
    static = StaticFiles(directory=app.state.settings.web_dir / "static")
    app.mount("/static", static, name="static")
    return app


app = create_app()
