"""`digitflow keys`: create, list and revoke API keys (on DATABASE_URL, migrated first).

    digitflow keys create --tenant T --role R [--name N]   the new key alone on the last line
    digitflow keys list [--tenant T]
    digitflow keys revoke ID

Creating the first key ends open mode: every API process notices within
AUTH_MODE_REFRESH_SECONDS.
"""

import argparse
import sys

from digitflow.auth import InvalidTenant, Role
from digitflow.settings import PlatformSettings


def register(commands) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--tenant", required=True, help="the tenant the key belongs to")
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--name", default="", help="what the key is for (shown in listings)")
    create.set_defaults(handler=create_key)
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--tenant", default=None, help="only this tenant's keys")
    listing.set_defaults(handler=list_keys)
    revoke = actions.add_parser("revoke", help="revoke a key by its id (see `keys list`)")
    revoke.add_argument("key_id", metavar="ID")
    revoke.set_defaults(handler=revoke_key)


def _sessions(settings: PlatformSettings):
    from digitflow.db import make_sessionmaker

    return make_sessionmaker(settings.resolved_database_url)


def create_key(args: argparse.Namespace, settings: PlatformSettings) -> int:
    from digitflow import keys

    try:
        with _sessions(settings).begin() as session:
            created = keys.create_key(session, args.tenant, args.role, args.name)
            key_id = created.row.key_id
    except InvalidTenant as exc:
        print(f"digitflow keys create: {exc}", file=sys.stderr)
        return 2
    print(f"created key {key_id} (tenant {args.tenant}, role {args.role}); it is shown only once:")
    print(created.key)
    return 0


def list_keys(args: argparse.Namespace, settings: PlatformSettings) -> int:
    from digitflow import keys

    with _sessions(settings)() as session:
        rows = keys.list_keys(session, args.tenant)
    print(f"{'id':<12}  {'tenant':<16} {'role':<10} {'status':<8} {'last used':<20} name")
    for row in rows:
        status = "revoked" if row.revoked_at else "active"
        used = row.last_used_at.strftime("%Y-%m-%d %H:%M:%S") if row.last_used_at else "never"
        print(f"{row.key_id:<12}  {row.tenant_id:<16} {row.role:<10} {status:<8} {used:<20} "
              f"{row.name}")  # fmt: skip
    return 0


def revoke_key(args: argparse.Namespace, settings: PlatformSettings) -> int:
    from digitflow import keys

    with _sessions(settings).begin() as session:
        row = keys.revoke_key(session, args.key_id)
    if row is None:
        print(f"digitflow keys revoke: no key with id {args.key_id!r}", file=sys.stderr)
        return 1
    print(f"revoked key {args.key_id}; API processes refuse it within seconds")
    return 0
