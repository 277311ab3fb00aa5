"""One story stored once: the feeds that brought each item, near-duplicate clusters.

Revision ID: 0006
Revises: 0005

- item_sources: every feed entry that brought an item (item, feed, guid, URL, its canonical
  form, when), unique per (feed, guid); filled here with each existing item's own entry;
- items.cluster (indexed): the id of the first item of its near-duplicate cluster, NULL alone;
- items.signature: the MinHash signature of its text (monitor/neardup.py);
- item_bands: the LSH band keys of the signatures, keyed by band. Items stored before this
  revision have no signature: copies are found among the items stored from here on.

Tables made by create_all of this schema.py (stamped 0002) already have all of it: only what
is missing is made, and the source rows are added for items that have none.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    present = {column["name"] for column in inspector.get_columns("items")}
    missing = [column for column in (sa.Column("cluster", sa.Integer),
                                     sa.Column("signature", sa.LargeBinary))
               if column.name not in present]
    if missing:
        with op.batch_alter_table("items") as batch:
            for column in missing:
                batch.add_column(column)
    op.create_index("ix_items_cluster", "items", ["cluster"], if_not_exists=True)
    if not inspector.has_table("item_sources"):
        op.create_table(
            "item_sources",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
            sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id")),
            sa.Column("guid", sa.Text),
            sa.Column("url", sa.Text),
            sa.Column("canonical_url", sa.Text),
            sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
            sa.UniqueConstraint("feed_id", "guid", name="uq_item_sources_feed_guid"),
        )
    op.create_index("ix_item_sources_item", "item_sources", ["item_id"], if_not_exists=True)
    op.create_index("ix_item_sources_canonical_url", "item_sources", ["canonical_url"],
                    if_not_exists=True)
    if not inspector.has_table("item_bands"):
        op.create_table(
            "item_bands",
            sa.Column("band", sa.BigInteger, nullable=False),
            sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
            sa.PrimaryKeyConstraint("band", "item_id", name="pk_item_bands"),
        )
    # Each item's own entry is its first source (items.canonical_url was the entry's then).
    op.execute(
        "INSERT INTO item_sources (item_id, feed_id, guid, url, canonical_url, seen_at) "
        "SELECT id, feed_id, guid, url, canonical_url, fetched_at FROM items "
        "WHERE NOT EXISTS (SELECT 1 FROM item_sources s WHERE s.item_id = items.id)")


def downgrade() -> None:
    op.drop_table("item_bands")
    op.drop_table("item_sources")
    op.drop_index("ix_items_cluster", "items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("signature")
        batch.drop_column("cluster")
