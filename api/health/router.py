"""Liveness, readiness and what model is serving."""

from pathlib import PurePosixPath

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.auth.dependencies import auth_mode
from api.deps import RecognizerDep
from api.health.checks import run_checks

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


AUTH_FIELD = Field(
    description="keys: API keys required; open: no keys exist, every caller is the default "
    "tenant's admin (development only); unknown: the key store cannot be read"
)


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]
    auth: str = AUTH_FIELD


class NotReady(BaseModel):
    detail: str
    code: str
    checks: dict[str, str]
    auth: str = AUTH_FIELD


@router.get("/health", response_model=Health, summary="Liveness: the process is up")
async def health() -> dict:
    return {"status": "ok"}


@router.get(
    "/ready",
    response_model=Readiness,
    responses={503: {"model": NotReady, "description": "A dependency is not usable"}},
    summary="Readiness: the model is loaded (and, with the bulk path, database and broker answer)",
)
async def ready(request: Request):
    reasons = await run_checks(request.app)
    checks = {name: reason or "ok" for name, reason in reasons.items()}
    failing = [f"{name}: {reason}" for name, reason in reasons.items() if reason]
    mode = await auth_mode(request.app)
    if failing:
        body = {"detail": "not ready: " + "; ".join(failing), "code": "not_ready", "checks": checks,
                "auth": mode}  # fmt: skip
        return JSONResponse(body, status_code=503)
    return {"status": "ready", "checks": checks, "auth": mode}


@router.get(
    "/model-info",
    summary="The serving model's card: version, metrics, calibration, review threshold, data",
    responses={503: {"description": "The model is not loaded"}},
)
async def model_info(recognizer: RecognizerDep) -> dict:
    return {**without_locations(recognizer.card.model_dump(mode="json")),
            "backend": recognizer.backend}  # fmt: skip


LOCATION_KEYS = {"path", "uri", "url", "dir", "directory"}


def without_locations(value):
    """The card as the public may see it: where the training data or model files lived (paths,
    hosts) is cut to the last name ("/data/mnist" -> "mnist")."""
    if isinstance(value, dict):
        return {key: _last_name(item) if key.lower() in LOCATION_KEYS else without_locations(item)
                for key, item in value.items()}  # fmt: skip
    if isinstance(value, list):
        return [without_locations(item) for item in value]
    return value


def _last_name(value):
    return PurePosixPath(value.rstrip("/")).name if isinstance(value, str) else value
