"""Key management for admins (their tenant) and operators (any tenant).

GET    /keys            the tenant's keys (never their secrets)
POST   /keys            a new key, shown once
DELETE /keys/{key_id}   revoke (effective within AUTH_CACHE_SECONDS on every API process)
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.auth.dependencies import AdminDep, AuthenticatorDep
from api.auth.schemas import KeyCreate, KeyCreated, KeyList, KeyPublic
from api.deps import SessionDep
from api.errors import ApiError
from digitflow import keys
from digitflow.auth import InvalidTenant, Principal, Role

router = APIRouter(prefix="/keys", tags=["keys"])


class KeyNotFound(ApiError):
    def __init__(self, key_id: str):
        super().__init__(404, "key_not_found", f"no key with id {key_id}")


class OperatorOnly(ApiError):
    def __init__(self, what: str):
        super().__init__(403, "forbidden", f"only an operator key may {what}")


def _scope(principal: Principal, tenant: str | None) -> str | None:
    """The tenant an admin acts on: its own; an operator's choice (None: all)."""
    if principal.role == Role.operator:
        return tenant
    if tenant not in (None, principal.tenant_id):
        raise OperatorOnly("manage another tenant's keys")
    return principal.tenant_id


@router.get("", response_model=KeyList, summary="The tenant's API keys (no secrets)")
def list_keys(
    session: SessionDep, principal: AdminDep,
    tenant: Annotated[str | None, Query(max_length=64, description="operators only")] = None,
) -> dict:  # fmt: skip
    return {"items": keys.list_keys(session, _scope(principal, tenant))}


@router.post(
    "", status_code=201, response_model=KeyCreated,
    summary="Create an API key; the answer holds the key, shown only this once",
)  # fmt: skip
def create_key(body: KeyCreate, session: SessionDep, principal: AdminDep) -> dict:
    if body.role == Role.operator and principal.role != Role.operator:
        raise OperatorOnly("create operator keys")
    tenant = _scope(principal, body.tenant) or principal.tenant_id
    try:
        created = keys.create_key(session, tenant, body.role, body.name)
    except InvalidTenant as exc:
        raise ApiError(422, "invalid_tenant", str(exc)) from exc
    session.commit()
    return {**KeyPublic.model_validate(created.row).model_dump(), "key": created.key}


@router.delete(
    "/{key_id}", status_code=204, summary="Revoke an API key",
    responses={404: {"description": "No such key in this tenant"}},
)  # fmt: skip
def revoke_key(
    key_id: Annotated[str, Path(max_length=32)], session: SessionDep, principal: AdminDep,
    auth: AuthenticatorDep,
) -> Response:  # fmt: skip
    row = keys.revoke_key(session, key_id, _scope(principal, None))
    if row is None:
        raise KeyNotFound(key_id)
    session.commit()
    auth.forget(key_id)
    return Response(status_code=204)
