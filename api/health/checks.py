"""Readiness checks: each answers None when its dependency is usable, or the reason it is not.

`/ready` runs every check registered in `api.main.READINESS_CHECKS`. A check may be sync (run in
the threadpool, e.g. a database ping) or async; one that raises or runs past its timeout counts
as not ready, with that as the reason.
"""

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import FastAPI
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from digitflow.db import Job
from digitflow.queue import broker_problem
from digitflow.storage import make_storage

Probe = Callable[[FastAPI], str | None | Awaitable[str | None]]


@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    probe: Probe
    timeout: float = 2.0

    async def run(self, app: FastAPI) -> str | None:
        try:
            if inspect.iscoroutinefunction(self.probe):
                return await asyncio.wait_for(self.probe(app), self.timeout)
            return await asyncio.wait_for(run_in_threadpool(self.probe, app), self.timeout)
        except TimeoutError:
            return f"no answer within {self.timeout:g} s"
        except Exception as exc:  # never its message: it may name hosts, paths or drivers
            return f"check failed ({type(exc).__name__})"


def model_loaded(app: FastAPI) -> str | None:
    if app.state.recognizer is not None:
        return None
    return f"model not loaded: {app.state.model_error or 'still loading'}"


def database_ready(app: FastAPI) -> str | None:
    """The database answers and is migrated (the jobs table exists)."""
    try:
        with app.state.sessions() as session:
            session.execute(select(Job.id).limit(0))
    except Exception as exc:  # noqa: BLE001 - any failure means not ready; say which kind
        return (
            f"database unusable ({type(exc).__name__}): not reachable, or not migrated "
            "(run `digitflow migrate`)"
        )
    return None


def broker_ready(app: FastAPI) -> str | None:
    return broker_problem(app.state.producer)


def storage_ready(app: FastAPI) -> str | None:
    try:
        if app.state.storage is None:
            app.state.storage = make_storage(app.state.settings)
        app.state.storage.check()
    except Exception as exc:  # noqa: BLE001
        return f"object storage unusable ({type(exc).__name__})"
    return None


def not_draining(app: FastAPI) -> str | None:
    return "shutting down (SIGTERM received)" if app.state.draining else None


# Every dependency of the API, checked by /ready.
READINESS_CHECKS = [
    ReadinessCheck("shutdown", not_draining),
    ReadinessCheck("model", model_loaded),
    ReadinessCheck("database", database_ready),
    ReadinessCheck("broker", broker_ready),
    ReadinessCheck("storage", storage_ready),
]


async def run_checks(app: FastAPI) -> dict[str, str | None]:
    """Every registered check, concurrently: {name: None if ready else reason}."""
    checks = app.state.readiness_checks
    reasons = await asyncio.gather(*(check.run(app) for check in checks))
    return {check.name: reason for check, reason in zip(checks, reasons, strict=True)}
