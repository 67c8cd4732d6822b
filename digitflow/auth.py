"""Tenants, roles and API keys: who may do what. Shared by the API and `digitflow keys`.

Every job, document and prediction belongs to one tenant; an API key names a tenant and a role.
With no keys created the platform runs open, as one tenant (DEFAULT_TENANT).

A key reads `df_<id>_<secret>`: the id (public, shown by `digitflow keys list`) finds the row,
the secret (32 random bytes) is checked against its argon2 hash. Only the hash is stored (see
digitflow.keys); the key itself is shown once, when it is created.
"""

import enum
import re
import secrets
from dataclasses import dataclass
from functools import cache

DEFAULT_TENANT = "default"
KEY_PREFIX = "df"
# df_<12 hex id>_<43 url-safe base64 characters of secret>
KEY_PATTERN = re.compile(r"^df_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class Role(enum.StrEnum):
    submitter = "submitter"  # creates and reads its tenant's jobs, results and images
    reviewer = "reviewer"  # works its tenant's review queue
    admin = "admin"  # everything in its tenant, key management
    operator = "operator"  # the platform's own admin, across tenants


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller of a request, as its API key says (or the open-mode default)."""

    tenant_id: str
    role: Role
    key_id: str | None = None  # None in open mode
    name: str = "anonymous"

    def has(self, *roles: Role) -> bool:
        # An admin may do everything in its tenant; an operator everything anywhere.
        return self.role in roles or self.role in (Role.admin, Role.operator)


OPEN_PRINCIPAL = Principal(tenant_id=DEFAULT_TENANT, role=Role.admin)


class InvalidTenant(ValueError):
    pass


def new_key() -> tuple[str, str, str]:
    """(id, secret, whole key) of a fresh random key."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    return key_id, secret, f"{KEY_PREFIX}_{key_id}_{secret}"


def parse_key(key: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed key, else None."""
    match = KEY_PATTERN.match(key)
    return (match.group(1), match.group(2)) if match else None


@cache
def _hasher():
    # argon2id with OWASP's smallest recommended cost (19 MiB, 2 passes, 1 lane): the secrets are
    # 256 random bits, so stretching buys nothing against guessing; the hash guards a stolen
    # database copy. Checked once per key per process (api.auth.keys caches what it verified).
    # Imported here: workers never need it.
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_secret(secret: str) -> str:
    return _hasher().hash(secret)


def verify_secret(secret_hash: str, secret: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def check_tenant(tenant: str) -> str:
    if not TENANT_PATTERN.match(tenant):
        raise InvalidTenant(
            f"invalid tenant {tenant!r}: 1-64 characters, lower-case letters, digits, - and _"
        )
    return tenant
