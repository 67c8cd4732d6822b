"""Field readings: why a prediction needs review

Revision ID: 0002
Revises: 0012
Create Date: 2026-11-26 12:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Rows written before this revision get an empty list; the default is dropped afterwards so
    # the table matches the model (the application always writes the column).
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("review_reasons", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.alter_column("review_reasons", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("predictions", schema=None) as batch_op:
        batch_op.drop_column("review_reasons")
