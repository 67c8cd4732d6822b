"""Alembic migrations: upgrade and downgrade on Postgres and SQLite, and no drift from the model."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from digitflow.db import Base
from digitflow.db.migrations import downgrade, upgrade

TABLES = {"jobs", "documents", "predictions", "api_keys"}


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("postgres").create_database()
    return f"sqlite:///{tmp_path / 'migrations.db'}"


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(database_url):
    upgrade(database_url)
    assert TABLES <= tables(database_url)
    downgrade(database_url, "base")
    assert not TABLES & tables(database_url)
    upgrade(database_url)
    assert TABLES <= tables(database_url)


def test_migrations_match_the_model(database_url):
    upgrade(database_url)
    engine = create_engine(database_url)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []


def test_constraints_follow_the_naming_convention(postgres):
    url = postgres.create_database()
    upgrade(url)
    engine = create_engine(url)
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("jobs")["name"] == "pk_jobs"
    assert {c["name"] for c in inspector.get_unique_constraints("predictions")} == {
        "uq_predictions_document_id"
    }
    foreign_keys = {fk["name"] for fk in inspector.get_foreign_keys("documents")}
    indexes = {index["name"] for index in inspector.get_indexes("documents")}
    assert "fk_documents_job_id_jobs" in foreign_keys
    assert "ix_documents_status_enqueued_at" in indexes
    engine.dispose()
