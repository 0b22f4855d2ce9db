"""Link reprints to their originals: signatures, an LSH index, and the links.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("aid", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("signature", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("duplicate_of", sa.Text(), nullable=True))
        batch.add_column(sa.Column("similarity", sa.Float(), nullable=True))
    op.create_index("ix_articles_duplicate_of", "articles", ["duplicate_of"])
    op.create_table(
        "lsh_buckets",
        sa.Column("band", sa.SmallInteger(), nullable=False),
        sa.Column("bucket", sa.BigInteger(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["article_id"],
            ["articles.id"],
            name="fk_lsh_buckets_article_id_articles",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("band", "bucket", "article_id", name="pk_lsh_buckets"),
    )
    op.create_index("ix_lsh_buckets_article_id", "lsh_buckets", ["article_id"])


def downgrade() -> None:
    op.drop_table("lsh_buckets")
    op.drop_index("ix_articles_duplicate_of", table_name="articles")
    with op.batch_alter_table("articles") as batch:
        batch.drop_column("similarity")
        batch.drop_column("duplicate_of")
        batch.drop_column("signature")
        batch.drop_column("aid")
