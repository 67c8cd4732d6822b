"""GET /metrics (Prometheus text format) and what the API measures.

Request latency is recorded by a pure ASGI middleware (cheap on the fast path) under the route's
template (`/jobs/{job_id}`), never the raw path, so ids do not explode the series. The queue
depth is read from the broker at scrape time.
"""

import logging
import time

from fastapi import APIRouter, FastAPI, Request, Response
from kombu.exceptions import ChannelError
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digitflow.metrics import scrape_registry
from digitflow.queue import DOCUMENTS_QUEUE, broker_problem, queue_depth

logger = logging.getLogger("digitflow.api")

REQUEST_SECONDS = Histogram(
    "digitflow_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and status",
    ["method", "route", "status"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UPLOADS = Counter(
    "digitflow_uploads_total", "POST /jobs uploads by outcome (accepted or failed)", ["outcome"]
)

router = APIRouter(tags=["health"])


class RequestMetrics:
    """Observe each HTTP request's duration under its route template."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            REQUEST_SECONDS.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - started
            )


class QueueDepth:
    """digitflow_queue_depth: messages waiting in the documents queue, read at scrape time."""

    def __init__(self, app: FastAPI):
        self.app = app

    def collect(self):
        family = GaugeMetricFamily(
            "digitflow_queue_depth", "Messages waiting in a Celery queue", labels=["queue"]
        )
        producer = self.app.state.producer
        if producer is not None and broker_problem(producer) is None:  # fails fast when down
            try:
                family.add_metric([DOCUMENTS_QUEUE], queue_depth(producer))
            except ChannelError:  # Redis drops an empty list: the queue is empty, not missing
                family.add_metric([DOCUMENTS_QUEUE], 0)
            except Exception:  # noqa: BLE001 - the broker went away between the two calls
                logger.warning("queue depth unavailable", exc_info=True)
        yield family


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Every process's samples (multiprocess mode) or this one's, plus the queue depth."""

    def render() -> bytes:
        queue = CollectorRegistry()
        queue.register(QueueDepth(request.app))
        registries = [scrape_registry() or REGISTRY, queue]
        return b"".join(generate_latest(registry) for registry in registries)

    return Response(await run_in_threadpool(render), media_type=CONTENT_TYPE_LATEST)
