"""Who is calling: `PrincipalDep` for any authenticated caller, `require(Role...)` for a role.

`Authorization: Bearer <key>`. A missing, malformed, unknown or revoked key is 401 (with
`WWW-Authenticate`); a key without the role is 403. Open development mode (no key was ever
created): every caller is the default tenant's admin.
"""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.auth.keys import Authenticator, AuthMode
from api.errors import ApiError
from digitflow.auth import OPEN_PRINCIPAL, Principal, Role

# Declares the scheme in the OpenAPI document (Swagger UI's "Authorize"); errors are ours.
bearer = HTTPBearer(auto_error=False, description="an API key from `digitflow keys create`")


class Unauthenticated(ApiError):
    def __init__(self, detail: str):
        super().__init__(401, "unauthenticated", detail)
        self.headers = {"WWW-Authenticate": 'Bearer realm="digitflow"'}


class Forbidden(ApiError):
    def __init__(self, roles: tuple[Role, ...]):
        wanted = " or ".join(roles)
        super().__init__(403, "forbidden", f"this needs an API key with the role {wanted}")


class RateLimited(ApiError):
    def __init__(self, retry_after: int, detail: str = "too many requests with this API key"):
        super().__init__(429, "rate_limited", f"{detail}; retry later")
        self.headers = {"Retry-After": str(retry_after)}


class AuthUnavailable(ApiError):
    def __init__(self):
        super().__init__(503, "unavailable", "API keys cannot be checked now (database down)")
        self.headers = {"Retry-After": "5"}


async def get_authenticator(request: Request) -> Authenticator:
    return request.app.state.auth


async def auth_mode(app) -> str:
    """open, keys or unknown: read again from the database when the cached answer is stale."""
    auth: Authenticator | None = app.state.auth
    if auth is None:  # the lifespan has not run (yet)
        return AuthMode.unknown
    if auth.mode_is_stale():
        return await run_in_threadpool(auth.refresh_mode)
    return auth.mode


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    mode = await auth_mode(request.app)
    if mode == AuthMode.open:
        return OPEN_PRINCIPAL
    if mode == AuthMode.unknown:
        raise AuthUnavailable()
    if credentials is None:
        raise Unauthenticated("an API key is required: send `Authorization: Bearer <key>`")
    key, auth, limiter = credentials.credentials, request.app.state.auth, request.app.state.limiter
    principal = auth.cached(key)
    address = request.client.host if request.client else "unknown"
    if principal is False:
        # A guesser gets no more argon2 checks for now; keys verified before need none.
        if not auth.verified(key) and limiter.exhausted("refused", address):
            raise RateLimited(60, "too many refused API keys from this address")
        principal = await run_in_threadpool(auth.load, key)
    if principal is None:
        limiter.retry_after("refused", address)  # counts the refusal
        raise Unauthenticated("the API key is not valid (unknown, malformed or revoked)")
    wait = limiter.retry_after("key", principal.key_id)
    if wait is not None:
        raise RateLimited(wait)
    return principal


async def sent_key_principal(request: Request) -> Principal | None:
    """The open canvas path (issue 9): no key is needed, but a key that is sent is checked
    (401 if refused) and its own rate limit applies. Called directly, not as a dependency: the
    fast path keeps dependency injection out of its ~0.3 ms framework budget."""
    credentials = await bearer(request)
    if credentials is None:
        return None
    return await current_principal(request, credentials)


PrincipalDep = Annotated[Principal, Depends(current_principal)]
AuthenticatorDep = Annotated[Authenticator, Depends(get_authenticator)]


def require(*roles: Role):
    """A dependency that lets through callers with one of `roles` (admins always)."""

    async def check(principal: PrincipalDep) -> Principal:  # async: no threadpool hop
        if not principal.has(*roles):
            raise Forbidden(roles)
        return principal

    return Depends(check)


SubmitterDep = Annotated[Principal, require(Role.submitter)]
ReviewerDep = Annotated[Principal, require(Role.reviewer)]
AdminDep = Annotated[Principal, require(Role.admin)]
