"""Hardening every request passes through, before routing: one pure ASGI middleware.

- header caps: too many or too large headers -> 431 (the server itself should cap them first:
  see docs/security.md for uvicorn's `--h11-max-incomplete-event-size`);
- trusted hosts: an unknown `Host` -> 400 (stops DNS rebinding against a local instance);
- a rate limit per client address (`limits`, fixed window) -> 429 with Retry-After;
- security headers on every response: CSP without inline script, nosniff, frame-ancestors,
  Referrer-Policy.

The per-key limit is applied where the key is known (api.auth.dependencies).
"""

import json
import math
import threading
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.config import Settings

# Pages load only their own scripts and styles; nothing may frame them.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI and ReDoc set inline styles (never inline scripts) and ReDoc runs a blob: worker.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# Probes must answer even when a client is over its limit.
UNLIMITED_PATHS = ("/health", "/ready")


class LocalWindows:
    """Fixed windows counted in this process's memory, with the same answers as `limits`'
    FixedWindowRateLimiter: a dict lookup a request, where `limits`' memory storage costs
    ~25-60 us (its locks and expiry bookkeeping), too much on a path that serves 1,000 req/s."""

    MAX_ENTRIES = 100_000  # then windows that have ended are dropped

    def __init__(self):
        self._counts: dict[tuple, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def hit(self, item: RateLimitItem, *identifiers: str) -> bool:
        return self._count(item, identifiers, add=1)

    def test(self, item: RateLimitItem, *identifiers: str) -> bool:
        return self._count(item, identifiers, add=0)

    def reset_time(self, item: RateLimitItem) -> float:
        period = item.get_expiry()
        return (time.time() // period + 1) * period

    def _count(self, item: RateLimitItem, identifiers: tuple, add: int) -> bool:
        period = item.get_expiry()
        window = int(time.time() // period)
        key = (period, *identifiers)
        with self._lock:
            started, count = self._counts.get(key, (window, 0))
            if started != window:
                count = 0
            if count + add > item.amount or (not add and count >= item.amount):
                return False
            self._counts[key] = (window, count + add)
            if len(self._counts) > self.MAX_ENTRIES:
                self._prune()
        return True

    def _prune(self) -> None:
        now = time.time()
        self._counts = {key: value for key, value in self._counts.items()
                        if value[0] == int(now // key[0])}  # fmt: skip


class RateLimiter:
    """Fixed-window limits per client address, per API key, and on decode-heavy requests per
    address; `overrides` give chosen addresses or key ids their own address/key limit (e.g. a
    benchmark client) but never lift the decode-heavy one. Counted in process memory, or with
    `limits` in a shared store (RATE_LIMIT_STORAGE=redis://...) so that replicas share counts."""

    def __init__(self, settings: Settings):
        self.enabled = settings.rate_limit_enabled
        if settings.rate_limit_storage.startswith("memory://"):
            self._strategy = LocalWindows()
        else:
            storage = storage_from_string(settings.rate_limit_storage)
            self._strategy = FixedWindowRateLimiter(storage)
        self._defaults = {
            "address": parse(settings.rate_limit_per_address),
            "key": parse(settings.rate_limit_per_key),
            "heavy": parse(settings.rate_limit_heavy_per_address),
            "refused": parse(settings.rate_limit_refused_keys_per_address),
        }
        overrides = settings.rate_limit_overrides
        self._overrides = {who: parse(limit) for who, limit in overrides.items()}

    def retry_after(self, kind: str, who: str) -> int | None:
        """None if `who` may go ahead (and counts the request), else seconds to wait."""
        if not self.enabled:
            return None
        item = self._item(kind, who)
        if self._strategy.hit(item, kind, who):
            return None
        if isinstance(self._strategy, LocalWindows):
            reset = self._strategy.reset_time(item)
        else:
            reset = self._strategy.get_window_stats(item, kind, who).reset_time
        return max(1, math.ceil(reset - time.time()))

    def exhausted(self, kind: str, who: str) -> bool:
        """Whether `who` is over its limit, without counting a request."""
        return self.enabled and not self._strategy.test(self._item(kind, who), kind, who)

    def _item(self, kind: str, who: str) -> RateLimitItem:
        if kind in ("address", "key") and who in self._overrides:
            return self._overrides[who]
        return self._defaults[kind]


class Hardening:
    def __init__(self, app: ASGIApp, settings: Settings, limiter: RateLimiter):
        self.app, self.limiter = app, limiter
        self.max_header_bytes, self.max_headers = settings.max_header_bytes, settings.max_headers
        hosts = [host.lower() for host in settings.allowed_hosts]
        self.any_host = "*" in hosts
        self.hosts = {host for host in hosts if not host.startswith("*.")}
        self.suffixes = tuple(host[1:] for host in hosts if host.startswith("*."))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            await _send_error(send, *refusal)
            return
        csp = DOCS_CSP if scope["path"].startswith(DOCS_PATHS) else PAGE_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [(b"content-security-policy", csp.encode()), *SECURITY_HEADERS]
                headers += [(name, value) for name, value in extra if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> tuple | None:
        headers = scope["headers"]
        size = sum(len(name) + len(value) for name, value in headers)
        if len(headers) > self.max_headers or size > self.max_header_bytes:
            detail = (f"request headers too large: at most {self.max_headers} headers and "
                      f"{self.max_header_bytes} bytes")  # fmt: skip
            return 431, "headers_too_large", detail, None
        host = next((value for name, value in headers if name == b"host"), b"")
        if not self._host_allowed(host.decode("latin-1")):
            return 400, "invalid_host", "this Host is not served here (see ALLOWED_HOSTS)", None
        if scope["path"] in UNLIMITED_PATHS:
            return None
        address = (scope.get("client") or ("unknown", 0))[0]
        wait = self.limiter.retry_after("address", address)
        if wait is not None:
            return 429, "rate_limited", f"too many requests from {address}; retry later", wait
        return None

    def _host_allowed(self, host: str) -> bool:
        if self.any_host:
            return True
        host = host.lower()
        name = host[: host.find("]") + 1] if host.startswith("[") else host.split(":", 1)[0]
        return name in self.hosts or (bool(self.suffixes) and name.endswith(self.suffixes))


async def _send_error(send: Send, status: int, code: str, detail: str, retry_after) -> None:
    body = json.dumps({"detail": detail, "code": code}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"content-security-policy", PAGE_CSP.encode()), *SECURITY_HEADERS]  # fmt: skip
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
