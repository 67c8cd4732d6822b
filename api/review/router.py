"""The review queue (reviewer role, scoped to the caller's tenant).

GET  /review                       the queue: lowest confidence (or oldest) first, size and age
POST /review/claim                 claim up to n items with a lease (exclusive)
POST /review/claims/renew          extend the caller's leases
POST /review/{document_id}         accept | correct | unreadable (the claimant only, else 409)
POST /review/{document_id}/release give a claimed item back (skip)
POST /review/{document_id}/undo    take back the caller's last decision
GET  /review/metrics               review rate, queue, pace, agreement, auto-accept error
GET  /review/page                  the reviewer's page (web/templates/review.html)
"""

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from api.auth.dependencies import ReviewerDep
from api.deps import SessionDep
from api.pages.router import render
from api.review import metrics as review_metrics
from api.review import service
from api.review.dependencies import LeaseDep, NowDep
from api.review.schemas import (
    Claim,
    ClaimRequest,
    DecisionRequest,
    DecisionResult,
    QueuePage,
    Renewed,
    RenewRequest,
    ReviewMetrics,
)

router = APIRouter(prefix="/review", tags=["review"])

CONFLICT = {409: {"description": "Not your claim, lease expired, or already final"}}
NOT_FOUND = {404: {"description": "No such document in the caller's tenant"}}


@router.get("", response_model=QueuePage, summary="The review queue")
def get_queue(
    session: SessionDep,
    principal: ReviewerDep,
    now: NowDep,
    job_id: Annotated[uuid.UUID | None, Query(description="only this job's items")] = None,
    order: Annotated[Literal["confidence", "oldest"], Query()] = "confidence",
    limit: Annotated[int, Query(ge=0, le=500)] = 50,
) -> dict:
    return service.queue(session, principal.tenant_id, job_id, order, limit, now)


@router.post("/claim", response_model=Claim, summary="Claim items for review, with a lease")
def claim(
    body: ClaimRequest, session: SessionDep, principal: ReviewerDep, lease: LeaseDep, now: NowDep
) -> dict:
    items, expires = service.claim(
        session, principal, body.limit, body.job_id, body.exclude, lease, now, body.order
    )
    return {
        "lease_seconds": int(lease.total_seconds()),
        "lease_expires_at": expires,
        "items": items,
    }


@router.post("/claims/renew", response_model=Renewed, summary="Extend your leases")
def renew(
    body: RenewRequest, session: SessionDep, principal: ReviewerDep, lease: LeaseDep, now: NowDep
) -> dict:
    count = service.renew(session, principal, body.document_ids, lease, now)
    return {"renewed": count, "lease_expires_at": now + lease}


@router.get("/metrics", response_model=ReviewMetrics, summary="Review metrics")
def get_metrics(
    session: SessionDep,
    principal: ReviewerDep,
    now: NowDep,
    job_id: Annotated[uuid.UUID | None, Query()] = None,
) -> dict:
    return review_metrics.metrics(session, principal.tenant_id, job_id, now)


@router.get("/page", include_in_schema=False)
def page(request: Request) -> HTMLResponse:
    return render(request, "review.html", "review")


def _decision_route(path: str, summary: str):
    """POST on one document, answering a DecisionResult (409 and 404 documented)."""
    return router.post(
        path, response_model=DecisionResult, summary=summary, responses={**CONFLICT, **NOT_FOUND}
    )


@_decision_route("/{document_id}", "Decide on a claimed item")
def decide(
    document_id: uuid.UUID,
    body: DecisionRequest,
    session: SessionDep,
    principal: ReviewerDep,
    now: NowDep,
) -> dict:
    return service.decide(session, principal, document_id, body.action, body.text, now)


@router.post(
    "/{document_id}/release",
    status_code=204,
    summary="Give a claimed item back to the queue (skip)",
    responses={**CONFLICT, **NOT_FOUND},
)
def release(document_id: uuid.UUID, session: SessionDep, principal: ReviewerDep, now: NowDep):
    service.release(session, principal, document_id, now)


@_decision_route(
    "/{document_id}/undo", "Undo your last decision on a document (it is claimed by you again)"
)
def undo(
    document_id: uuid.UUID, session: SessionDep, principal: ReviewerDep, lease: LeaseDep,
    now: NowDep,
) -> dict:  # fmt: skip
    return service.undo(session, principal, document_id, lease, now)
