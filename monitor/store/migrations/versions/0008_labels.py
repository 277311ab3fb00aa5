"""Labels: an analyst's verdict on an item, one row per act (the latest is the item's label).

Revision ID: 0008
Revises: 0007

- labels: item (references items), relevant, topics (JSON list), note, labelled_at, origin
  (cli | web), indexed by (item_id, id) so an item's latest label is one index look-up.

Tables made by create_all of this schema.py (stamped 0002) already have it: only what is
missing is made.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not sa.inspect(op.get_bind()).has_table("labels"):
        op.create_table(
            "labels",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
            sa.Column("relevant", sa.Boolean, nullable=False),
            sa.Column("topics", sa.JSON, nullable=False),
            sa.Column("note", sa.Text, nullable=False),
            sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("origin", sa.String(10), nullable=False),
        )
    op.create_index("ix_labels_item_id", "labels", ["item_id", "id"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("labels")
