"""`digitflow migrate`: alembic upgrade head on DATABASE_URL (or the SQLite default)."""

import argparse
import sys

from digitflow.settings import PlatformSettings


def register(commands) -> None:
    mig = commands.add_parser("migrate", help="apply database migrations (alembic upgrade head)")
    mig.set_defaults(handler=migrate)


def migrate(args: argparse.Namespace, settings: PlatformSettings) -> int:
    from digitflow.db.migrations import upgrade

    upgrade(settings.resolved_database_url)
    print(f"database at head: {redact(settings.resolved_database_url)}", file=sys.stderr)
    return 0


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
