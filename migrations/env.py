"""Alembic environment: the URL comes from the platform settings (DATABASE_URL or the SQLite
default), or from `config.attributes["database_url"]` when called from code (tests, the CLI)."""

from logging.config import fileConfig

from alembic import context

from digitflow.db.models import Base
from digitflow.db.session import make_engine
from digitflow.settings import PlatformSettings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def database_url() -> str:
    return config.attributes.get("database_url") or PlatformSettings().resolved_database_url


def run_migrations_offline() -> None:
    context.configure(
        url=database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    with make_engine(database_url()).connect() as connection:
        # Batch mode lets the same revisions ALTER tables on SQLite (copy-and-move).
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
