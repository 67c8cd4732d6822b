"""Migration 0004 on a database that already holds flagged predictions: they reach the queue."""

import uuid
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from digitflow.db import ReviewTask
from digitflow.db.migrations import downgrade, upgrade

PREVIOUS = "0003"  # the revision 0004 follows on this branch


@pytest.fixture(params=["postgres", "sqlite"])
def database_url(request, tmp_path):
    if request.param == "postgres":
        return request.getfixturevalue("postgres").create_database()
    return f"sqlite:///{tmp_path / 'backfill.db'}"


def _insert_flagged(engine, flagged: bool) -> uuid.UUID:
    now = datetime.now(UTC)
    job_id, doc_id = uuid.uuid4(), uuid.uuid4()
    meta = sa.MetaData()
    meta.reflect(engine, only=["jobs", "documents", "predictions"])
    jobs, documents, predictions = (meta.tables[n] for n in ("jobs", "documents", "predictions"))
    # Reflected SQLite tables see the model's UUID columns as CHAR(32): bind them as hex.
    sqlite = engine.dialect.name == "sqlite"
    job_key, doc_key = (job_id.hex, doc_id.hex) if sqlite else (job_id, doc_id)
    prediction_key = uuid.uuid4().hex if sqlite else uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(jobs.insert(), {
            "id": job_key, "created_at": now, "updated_at": now, "status": "succeeded",
            "layout": "digit", "total": 1, "succeeded": 1, "failed": 0,
            "needs_review": int(flagged), "rejected": [], "tenant_id": "default",
        })  # fmt: skip
        conn.execute(documents.insert(), {
            "id": doc_key, "created_at": now, "updated_at": now, "job_id": job_key, "position": 0,
            "filename": "a.png", "content_hash": "0" * 64, "size": 1, "storage_key": "k",
            "status": "succeeded",
        })  # fmt: skip
        conn.execute(predictions.insert(), {
            "id": prediction_key, "created_at": now, "updated_at": now, "document_id": doc_key,
            "job_id": job_key, "text": "7", "confidence": 0.42, "digits": [],
            "needs_review": flagged, "model_version": "v1", "timings": {},
        })  # fmt: skip
    return doc_id


def test_upgrade_queues_predictions_flagged_before_it(database_url):
    upgrade(database_url, PREVIOUS)
    engine = sa.create_engine(database_url)
    flagged, confident = _insert_flagged(engine, True), _insert_flagged(engine, False)
    upgrade(database_url)
    with engine.connect() as conn:
        columns = (ReviewTask.document_id, ReviewTask.status, ReviewTask.model_text)
        rows = conn.execute(sa.select(*columns, ReviewTask.confidence)).all()
        reviewed = conn.execute(sa.text("SELECT reviewed FROM jobs")).scalars().all()
    assert rows == [(flagged, "pending", "7", 0.42)]
    assert confident not in {row[0] for row in rows} and reviewed == [0, 0]
    downgrade(database_url, PREVIOUS)
    assert "review_tasks" not in sa.inspect(engine).get_table_names()
    engine.dispose()
