"""API keys in the database: create (shown once), list, revoke. Used by `digitflow keys` and
the admin endpoints (api/auth)."""

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digitflow.auth import Role, check_tenant, hash_secret, new_key
from digitflow.db.models import ApiKey


@dataclass(frozen=True)
class CreatedKey:
    row: ApiKey
    key: str  # the only time the whole key exists outside the client


def create_key(session: Session, tenant: str, role: Role | str, name: str = "") -> CreatedKey:
    """A new random key for `tenant` with `role`; the caller commits and shows `key` once."""
    key_id, secret, key = new_key()
    row = ApiKey(
        key_id=key_id, tenant_id=check_tenant(tenant), role=Role(role).value,
        name=name.strip()[:200], secret_hash=hash_secret(secret),
    )  # fmt: skip
    session.add(row)
    session.flush()
    return CreatedKey(row, key)


def find_key(session: Session, key_id: str, tenant: str | None = None) -> ApiKey | None:
    query = select(ApiKey).where(ApiKey.key_id == key_id)
    if tenant is not None:
        query = query.where(ApiKey.tenant_id == tenant)
    return session.scalar(query)


def revoke_key(session: Session, key_id: str, tenant: str | None = None) -> ApiKey | None:
    """Revoke a key (only within `tenant` unless None); None if there is no such key."""
    row = find_key(session, key_id, tenant)
    if row is not None and row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
    return row


def list_keys(session: Session, tenant: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if tenant is not None:
        query = query.where(ApiKey.tenant_id == tenant)
    return list(session.scalars(query))


def any_keys(session: Session) -> bool:
    """Whether a key was ever created. Revoked keys count: revoking every key must never turn
    the platform open."""
    return bool(session.scalar(select(func.count()).select_from(ApiKey)))
