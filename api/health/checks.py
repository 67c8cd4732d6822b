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
from starlette.concurrency import run_in_threadpool

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
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"


def model_loaded(app: FastAPI) -> str | None:
    if app.state.recognizer is not None:
        return None
    return f"model not loaded: {app.state.model_error or 'still loading'}"


async def run_checks(app: FastAPI) -> dict[str, str | None]:
    """Every registered check, concurrently: {name: None if ready else reason}."""
    checks = app.state.readiness_checks
    reasons = await asyncio.gather(*(check.run(app) for check in checks))
    return {check.name: reason for check, reason in zip(checks, reasons, strict=True)}
