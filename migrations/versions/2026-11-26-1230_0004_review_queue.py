"""The review queue: review tasks with leases, double-keying keyings, the append-only decision
trail, and a reviewed counter on jobs

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 12:30:00+00:00
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# Predictions flagged before this revision get their review task, so they reach the queue.
BACKFILL_CHUNK = 1000

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.String(length=64), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("reviewer_name", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("text", sa.String(length=256), nullable=True),
        sa.Column("before", sa.JSON(), nullable=False),
        sa.Column("after", sa.JSON(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=False),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_review_decisions_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_decisions")),
    )
    with op.batch_alter_table("review_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_decisions_document_id_created_at"),
            ["document_id", "created_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_review_decisions_tenant_id_created_at"),
            ["tenant_id", "created_at"],
            unique=False,
        )

    op.create_table(
        "review_tasks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("audit", sa.Boolean(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("model_text", sa.String(length=256), nullable=False),
        sa.Column("final_text", sa.String(length=256), nullable=True),
        sa.Column("keyings_required", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=200), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.String(length=200), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_review_tasks_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_review_tasks_job_id_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_tasks")),
        sa.UniqueConstraint("document_id", name=op.f("uq_review_tasks_document_id")),
    )
    with op.batch_alter_table("review_tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_tasks_job_id_status"), ["job_id", "status"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_review_tasks_status_confidence"), ["status", "confidence"], unique=False
        )

    op.create_table(
        "review_keyings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_id", sa.Uuid(), nullable=False),
        sa.Column("reviewer", sa.String(length=200), nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["review_tasks.id"],
            name=op.f("fk_review_keyings_task_id_review_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_keyings")),
    )
    with op.batch_alter_table("review_keyings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_review_keyings_task_id_reviewer"), ["task_id", "reviewer"], unique=True
        )

    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reviewed", sa.Integer(), server_default="0", nullable=False))

    _queue_flagged_predictions()


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("reviewed")

    with op.batch_alter_table("review_keyings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_keyings_task_id_reviewer"))

    op.drop_table("review_keyings")
    with op.batch_alter_table("review_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_tasks_status_confidence"))
        batch_op.drop_index(batch_op.f("ix_review_tasks_job_id_status"))

    op.drop_table("review_tasks")
    with op.batch_alter_table("review_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_review_decisions_tenant_id_created_at"))
        batch_op.drop_index(batch_op.f("ix_review_decisions_document_id_created_at"))

    op.drop_table("review_decisions")


def _queue_flagged_predictions() -> None:
    bind = op.get_bind()
    predictions = sa.table(
        "predictions", sa.column("document_id", sa.Uuid()), sa.column("job_id", sa.Uuid()),
        sa.column("text", sa.String()), sa.column("confidence", sa.Float()),
        sa.column("needs_review", sa.Boolean()),
    )  # fmt: skip
    rows = bind.execute(sa.select(predictions).where(predictions.c.needs_review.is_(True))).all()
    now = datetime.now(UTC)
    values = [
        {"id": uuid.uuid4(), "created_at": now, "updated_at": now, "document_id": r.document_id,
         "job_id": r.job_id, "status": "pending", "reasons": ["low_confidence"], "audit": False,
         "confidence": r.confidence, "model_text": r.text, "keyings_required": 1}
        for r in rows
    ]  # fmt: skip
    review_tasks = sa.Table(
        "review_tasks", sa.MetaData(), sa.Column("id", sa.Uuid()),
        sa.Column("created_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True)), sa.Column("document_id", sa.Uuid()),
        sa.Column("job_id", sa.Uuid()), sa.Column("status", sa.String()),
        sa.Column("reasons", sa.JSON()), sa.Column("audit", sa.Boolean()),
        sa.Column("confidence", sa.Float()), sa.Column("model_text", sa.String()),
        sa.Column("keyings_required", sa.Integer()),
    )  # fmt: skip
    for start in range(0, len(values), BACKFILL_CHUNK):
        bind.execute(sa.insert(review_tasks), values[start : start + BACKFILL_CHUNK])
