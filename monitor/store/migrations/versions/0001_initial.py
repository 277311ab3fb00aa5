"""The schema of monitor 0.1.0, exactly as its `metadata.create_all` made it.

Revision ID: 0001
Revises: (none)

A database made by that version has these tables and no `alembic_version`; `migrate.py` stamps
it at this revision and upgrades it from here. Frozen: plain types, no reference to schema.py.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feeds",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("lang", sa.String(16)),
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("in_config", sa.Boolean, nullable=False),
        sa.Column("interval", sa.Float),
        sa.Column("next_due", WHEN, nullable=False),
        sa.Column("last_polled_at", WHEN),
        sa.Column("last_success_at", WHEN),
        sa.Column("last_status", sa.String(40)),
        sa.Column("last_error", sa.Text),
        sa.Column("error_streak", sa.Integer, nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("body_hash", sa.String(64)),
        sa.Column("lease_owner", sa.String(200)),
        sa.Column("lease_until", WHEN),
        sa.Column("created_at", WHEN, nullable=False),
        sa.UniqueConstraint("url"),
    )
    op.create_table(
        "items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id")),
        sa.Column("guid", sa.Text),
        sa.Column("url", sa.Text),
        sa.Column("canonical_url", sa.Text),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("published", WHEN),
        sa.Column("fetched_at", WHEN, nullable=False),
        sa.Column("lang", sa.String(16)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("text_source", sa.String(20), nullable=False),
        sa.Column("text_error", sa.String(60)),
        sa.Column("text_error_message", sa.Text),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("relevant", sa.Boolean, nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("topics", sa.JSON, nullable=False),
        sa.Column("matches", sa.JSON, nullable=False),
        sa.Column("rules_version", sa.String(40), nullable=False),
        sa.Column("corpus_file", sa.String(300)),
        sa.UniqueConstraint("feed_id", "guid", name="uq_items_feed_guid"),
        sa.UniqueConstraint("canonical_url"),
        sa.UniqueConstraint("corpus_file"),
    )
    op.create_index("ix_items_relevant_id", "items", ["relevant", "id"])
    op.create_index("ix_items_content_hash", "items", ["content_hash"])
    op.create_table(
        "polls",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("feed_id", sa.Integer, sa.ForeignKey("feeds.id"), nullable=False),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("finished_at", WHEN, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("bytes", sa.Integer, nullable=False),
        sa.Column("entries", sa.Integer, nullable=False),
        sa.Column("new_items", sa.Integer, nullable=False),
        sa.Column("relevant_items", sa.Integer, nullable=False),
        sa.Column("page_errors", sa.Integer, nullable=False),
        sa.Column("error_reason", sa.String(60)),
        sa.Column("error_message", sa.Text),
    )
    op.create_index("ix_polls_feed_started", "polls", ["feed_id", "started_at"])


def downgrade() -> None:
    for table in ("polls", "items", "feeds"):
        op.drop_table(table)
