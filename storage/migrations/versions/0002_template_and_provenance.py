"""Record which rendering each row was read from, and where its bytes came from.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON_LIST = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Rows stored before this revision were all read from desktop pages, and
    # their raw bytes were not kept.
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("template", sa.Text(), nullable=False, server_default="desktop"))
        batch.add_column(
            sa.Column("provenance", _JSON_LIST, nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("provenance")
        batch.drop_column("template")
