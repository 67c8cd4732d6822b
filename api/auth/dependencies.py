"""Who is calling: `PrincipalDep` for any authenticated caller, `require(Role...)` for a role.

Open development mode (no keys configured): every caller is the default tenant's admin.
"""

from typing import Annotated

from fastapi import Depends, Request

from api.errors import ApiError
from digitflow.auth import OPEN_PRINCIPAL, Principal, Role


class Forbidden(ApiError):
    def __init__(self, roles: tuple[Role, ...]):
        wanted = " or ".join(roles)
        super().__init__(403, "forbidden", f"this needs an API key with the role {wanted}")


def current_principal(request: Request) -> Principal:
    return OPEN_PRINCIPAL


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def require(*roles: Role):
    """A dependency that lets through callers with one of `roles` (admins always)."""

    def check(principal: PrincipalDep) -> Principal:
        if not principal.has(*roles):
            raise Forbidden(roles)
        return principal

    return Depends(check)


SubmitterDep = Annotated[Principal, require(Role.submitter)]
ReviewerDep = Annotated[Principal, require(Role.reviewer)]
AdminDep = Annotated[Principal, require(Role.admin)]
