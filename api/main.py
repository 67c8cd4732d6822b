"""The DigitFlow API: `uvicorn api.main:app` (or `create_app(settings)` in tests).

The model is loaded once, in the lifespan; if it cannot be loaded the process still starts so
that /health answers and /ready says why it is not ready.
"""

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from api.config import Settings, get_settings
from api.errors import register_exception_handlers
from api.health.checks import ReadinessCheck, model_loaded
from api.health.router import router as health_router
from api.jobs.dependencies import broker_ready, database_ready
from api.jobs.router import routers as jobs_routers
from api.pages.router import router as pages_router
from api.predict.batcher import MicroBatcher
from api.predict.router import router as predict_router
from digitflow.model_source import load_recognizer

logger = logging.getLogger("digitflow.api")

# Each domain adds its router here, and each dependency its readiness check.
ROUTERS = [health_router, predict_router, pages_router, jobs_routers]
READINESS_CHECKS = [
    ReadinessCheck("model", model_loaded),
    ReadinessCheck("database", database_ready),
    ReadinessCheck("broker", broker_ready),
]


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    try:
        recognizer = await run_in_threadpool(load_recognizer, settings)
    except Exception as exc:  # e.g. no model yet: stay up, report it on /ready
        source = settings.model_source or settings.model_dir
        logger.error("could not load the model from %s: %s", source, exc)
        app.state.model_error = f"{source}: {type(exc).__name__}: {exc}"
    else:
        logger.info("model %s loaded from %s", recognizer.version, recognizer.model_dir)
        app.state.recognizer = recognizer
        app.state.batcher = MicroBatcher(
            recognizer, settings.batch_max_size, settings.decode_threads
        )
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
    app.state.readiness_checks = list(READINESS_CHECKS)
    register_exception_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    static = StaticFiles(directory=app.state.settings.web_dir / "static")
    app.mount("/static", static, name="static")
    return app


app = create_app()
