"""Tenants and roles: who may do what. Shared by the API and the `digitflow keys` command.

Every job, document and prediction belongs to one tenant; an API key names a tenant and a role.
With no keys configured the platform runs open, as one tenant (DEFAULT_TENANT).
"""

import enum
from dataclasses import dataclass

DEFAULT_TENANT = "default"


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
