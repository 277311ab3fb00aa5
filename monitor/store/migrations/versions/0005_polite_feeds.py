"""Feed state for polite polling: moved feeds, feeds gone, learnt intervals.

Revision ID: 0005
Revises: 0004

- feeds.fetch_url: where the feed is fetched from after a permanent redirect (301/308);
- feeds.disabled_reason: why monitor stopped polling a feed on its own (410 Gone);
- feeds.adaptive_interval: the interval learnt from the feed's publication rate and the
  server's caching hints.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


COLUMNS = (("fetch_url", sa.Text), ("disabled_reason", sa.Text), ("adaptive_interval", sa.Float))


def upgrade() -> None:
    # Tables made by create_all of this schema.py (stamped 0002) already have the columns.
    present = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("feeds")}
    missing = [(name, kind) for name, kind in COLUMNS if name not in present]
    if missing:
        with op.batch_alter_table("feeds") as batch:
            for name, kind in missing:
                batch.add_column(sa.Column(name, kind()))


def downgrade() -> None:
    with op.batch_alter_table("feeds") as batch:
        batch.drop_column("adaptive_interval")
        batch.drop_column("disabled_reason")
        batch.drop_column("fetch_url")
