"""Who holds this key? Verified once per process, then answered from memory.

argon2 costs tens of milliseconds of CPU a check, far too much per request. So each key is
checked against its hash once; afterwards a SHA-256 digest of the presented key finds the
verified key in memory. A key's row is re-read at most every `auth_cache_seconds` (so a
revocation takes effect within seconds), and that re-read also records `last_used_at` (at most
once a minute per process, never per request).

Open mode: while no key has ever been created, every caller is the default tenant's admin. The
mode is read at start-up and re-read every `auth_mode_refresh_seconds`.
"""

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from digitflow.auth import Principal, Role, parse_key, verify_secret
from digitflow.keys import any_keys, find_key

logger = logging.getLogger("digitflow.api")

LAST_USED_EVERY = timedelta(minutes=1)
MAX_CACHED_KEYS = 10_000


class AuthMode:
    open = "open"  # no key was ever created: one default tenant, no checks
    keys = "keys"  # every protected request needs a valid key
    unknown = "unknown"  # the database could not say yet: protected requests get 503


@dataclass
class _Entry:
    principal: Principal | None  # None: revoked or unknown
    checked_at: float


class Authenticator:
    def __init__(
        self, sessions: sessionmaker[Session], cache_seconds: float, mode_refresh_seconds: float
    ):
        self.sessions = sessions
        self.cache_seconds, self.mode_refresh_seconds = cache_seconds, mode_refresh_seconds
        self.mode = AuthMode.unknown
        self.mode_checked_at = float("-inf")
        # digest of a presented key -> the key id it was verified as (argon2 passed once)
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        self._entries: dict[str, _Entry] = {}

    # --- open or not -----------------------------------------------------------------------

    def mode_is_stale(self) -> bool:
        return time.monotonic() - self.mode_checked_at > self.mode_refresh_seconds

    def refresh_mode(self) -> str:
        """Read the mode from the database (sync: run it in a thread from async code)."""
        self.mode_checked_at = time.monotonic()  # others keep the old mode meanwhile
        try:
            with self.sessions() as session:
                mode = AuthMode.keys if any_keys(session) else AuthMode.open
        except Exception as exc:  # noqa: BLE001 - down or not migrated: fail closed
            if self.mode == AuthMode.unknown:
                logger.error("cannot read API keys (%s): protected endpoints answer 503",
                             type(exc).__name__)  # fmt: skip
            self.mode_checked_at = float("-inf")  # try again on the next request
            return self.mode if self.mode == AuthMode.keys else AuthMode.unknown
        if mode != self.mode:
            _announce(mode)
        self.mode = mode
        return mode

    # --- keys --------------------------------------------------------------------------------

    def cached(self, key: str) -> Principal | None | bool:
        """The key's principal (or None if refused) if memory knows it well enough, else False."""
        key_id = self._verified.get(_digest(key))
        entry = self._entries.get(key_id) if key_id else None
        if entry is None or time.monotonic() - entry.checked_at > self.cache_seconds:
            return False
        return entry.principal

    def verified(self, key: str) -> bool:
        """Whether this process has checked this exact key against its hash before."""
        return _digest(key) in self._verified

    def load(self, key: str) -> Principal | None:
        """Check a key against the database (sync); None if unknown, wrong or revoked."""
        parsed = parse_key(key)
        if parsed is None:
            return None
        key_id, secret = parsed
        digest = _digest(key)
        with self.sessions.begin() as session:
            row = find_key(session, key_id)
            if row is None or row.revoked_at is not None:
                principal = None
            elif self._verified.get(digest) == key_id or verify_secret(row.secret_hash, secret):
                principal = Principal(row.tenant_id, Role(row.role), row.key_id, row.name)
                self._remember(digest, key_id)
                now = datetime.now(UTC)
                if row.last_used_at is None or now - row.last_used_at > LAST_USED_EVERY:
                    row.last_used_at = now
            else:
                return None  # a wrong secret under a real id: never cached as that key
        self._entries[key_id] = _Entry(principal, time.monotonic())
        return principal

    def forget(self, key_id: str) -> None:
        """Drop what memory holds about a key (it was just revoked through this process)."""
        self._entries.pop(key_id, None)

    def _remember(self, digest: bytes, key_id: str) -> None:
        self._verified[digest] = key_id
        self._verified.move_to_end(digest)
        while len(self._verified) > MAX_CACHED_KEYS:
            self._verified.popitem(last=False)
        if len(self._entries) > MAX_CACHED_KEYS:
            self._entries.clear()


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "replace")).digest()


def _announce(mode: str) -> None:
    if mode == AuthMode.open:
        logger.warning(
            "=" * 72 + "\nOPEN MODE: no API keys exist, so every caller is the admin of the "
            "'default' tenant.\nCreate a key (`digitflow keys create --tenant T --role admin`) "
            "to require keys.\n" + "=" * 72
        )
    else:
        logger.info("API keys required (Authorization: Bearer <key>)")
