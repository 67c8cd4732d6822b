"""The DigitFlow API: `uvicorn api.main:app` (or `create_app(settings)` in tests).

Everything a request needs (model, micro-batcher, database sessions, object storage, the Celery
producer) is built once, in the lifespan. If the model or a store cannot be opened the process
still starts, so that /health answers and /ready says why it is not ready.
"""

import asyncio
import logging
import signal
import threading
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.auth.keys import Authenticator, AuthMode
from api.auth.router import router as keys_router
from api.budget import DecodeBudget
from api.config import Settings, get_settings
from api.docs.router import BUNDLE_URL, bundle_files
from api.docs.router import router as docs_router
from api.doctypes.router import router as doctypes_router
from api.documents.router import router as documents_router
from api.errors import register_exception_handlers
from api.health.checks import READINESS_CHECKS
from api.health.router import router as health_router
from api.jobs.router import router as jobs_router
from api.metrics import RequestMetrics
from api.metrics import router as metrics_router
from api.pages.router import router as pages_router
from api.predict.batcher import MicroBatcher
from api.predict.fastpath import FastDrawing
from api.predict.router import router as predict_router
from api.review.router import router as review_router
from api.security import Hardening, RateLimiter
from digitflow.db import make_sessionmaker
from digitflow.logs import configure_logging
from digitflow.metrics import MODEL_VERSION
from digitflow.model_source import load_recognizer
from digitflow.queue import make_celery
from digitflow.storage import StorageUnavailable, make_storage
from recognition.doctypes import DocumentTypes

logger = logging.getLogger("digitflow.api")

# Each domain adds its router here (and its readiness check in api.health.checks).
ROUTERS = [
    health_router, predict_router, pages_router, jobs_router, review_router, documents_router,
    keys_router, docs_router, metrics_router, doctypes_router,
]  # fmt: skip


class RefusingOpenMode(RuntimeError):
    """DIGITFLOW_ENV=production with no API keys: the platform would be open to anyone."""


async def _load_model(app: FastAPI, settings: Settings) -> None:
    source = settings.model_source or settings.model_dir
    try:
        # MODEL_SOURCE (a folder, Blob URL or azureml:NAME:VERSION), verified against the card.
        recognizer = await run_in_threadpool(load_recognizer, settings)
    except Exception as exc:  # e.g. no model yet: stay up, report it on /ready
        logger.error("could not load the model from %s: %s", source, exc)
        app.state.model_error = f"{type(exc).__name__} while loading the model"
        return
    logger.info("model %s loaded from %s", recognizer.version, source)
    MODEL_VERSION.labels("api", recognizer.version).set(1)
    app.state.recognizer = recognizer
    app.state.batcher = MicroBatcher(
        recognizer, settings.batch_max_size, settings.decode_threads, settings.batch_inline
    )


def _open_stores(app: FastAPI, settings: Settings) -> None:
    app.state.sessions = make_sessionmaker(settings.resolved_database_url)
    app.state.auth = Authenticator(
        app.state.sessions, settings.auth_cache_seconds, settings.auth_mode_refresh_seconds
    )
    app.state.producer = make_celery(settings)
    try:
        app.state.storage = make_storage(settings)
    except StorageUnavailable as exc:  # opened again on first use; /ready says so meanwhile
        logger.error("object storage unavailable at start-up: %s", exc)


def _drain_before_exit(app: FastAPI, settings: Settings) -> None:
    """On SIGTERM, /ready answers 503 at once; the server is asked to stop (it then finishes
    in-flight requests, uploads included) only `shutdown_drain_seconds` later, so a load
    balancer has taken the process out of rotation before it stops accepting connections."""
    server_handler = signal.getsignal(signal.SIGTERM)
    in_main_thread = threading.current_thread() is threading.main_thread()  # else no signals
    if not callable(server_handler) or settings.shutdown_drain_seconds <= 0 or not in_main_thread:
        return
    loop = asyncio.get_running_loop()

    def on_sigterm(signum, frame) -> None:
        if not app.state.draining:
            app.state.draining = True
            logger.info("SIGTERM: not ready; stopping in %gs", settings.shutdown_drain_seconds)
            loop.call_soon_threadsafe(
                loop.call_later, settings.shutdown_drain_seconds, server_handler, signum, frame
            )

    signal.signal(signal.SIGTERM, on_sigterm)


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    if settings.configure_logging:
        configure_logging(settings.log_format, settings.log_level)
    _drain_before_exit(app, settings)
    _open_stores(app, settings)
    mode = await run_in_threadpool(app.state.auth.refresh_mode)
    if mode == AuthMode.open and settings.digitflow_env == "production":
        raise RefusingOpenMode(
            "DIGITFLOW_ENV=production but no API keys exist: refusing to run open. "
            "Create one with `digitflow keys create --tenant T --role admin`."
        )
    await _load_model(app, settings)
    try:
        yield
    finally:
        # The server may run this while requests are still in flight (granian does): the
        # batcher finishes what it holds before its threads stop.
        if app.state.batcher is not None:
            await app.state.batcher.aclose(settings.shutdown_batch_seconds)
        app.state.budget.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="DigitFlow",
        summary="Reads handwritten digits; sends what it is unsure of to people.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served offline by api.docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.recognizer = app.state.batcher = app.state.model_error = None
    app.state.sessions = app.state.storage = app.state.producer = app.state.auth = None
    app.state.limiter = RateLimiter(settings)
    app.state.budget = DecodeBudget(settings, app.state.limiter)
    app.state.draining = False
    app.state.readiness_checks = list(READINESS_CHECKS)
    app.state.document_types = DocumentTypes(app.state.settings.resolved_document_types_dir)
    register_exception_handlers(app)
    app.add_middleware(FastDrawing)  # inside the metrics, CORS and hardening below
    app.add_middleware(RequestMetrics)
    for router in ROUTERS:
        app.include_router(router)
    app.state.templates = Jinja2Templates(directory=app.state.settings.web_dir / "templates")
    static = StaticFiles(directory=app.state.settings.web_dir / "static")
    app.mount("/static", static, name="static")
    app.mount(BUNDLE_URL, bundle_files(), name="static-docs")
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Location", "Retry-After"],
        )  # fmt: skip
    app.add_middleware(Hardening, settings=settings, limiter=app.state.limiter)  # outermost
    return app


app = create_app()
