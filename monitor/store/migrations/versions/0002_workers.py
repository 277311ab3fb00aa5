"""Several workers: lease and due-time indexes, the worker of each poll, corpus numbers.

Revision ID: 0002
Revises: 0001

- feeds: an index on next_due (the claim query walks it) and a partial index on lease_owner
  (only leased rows: a worker renews and frees its own leases without a scan);
- polls.worker: the worker identity (host:pid:nonce) that made the poll;
- corpus_numbers: the corpus file numbers handed out by the database, one per item key, filled
  here from the corpus files the items already name.
"""

import re
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_NAME = re.compile(r"^(\d{3,})_([0-9a-f]{16})\.txt$")


def upgrade() -> None:
    op.create_index("ix_feeds_next_due", "feeds", ["next_due"])
    op.create_index("ix_feeds_lease_owner", "feeds", ["lease_owner"],
                    postgresql_where=sa.text("lease_owner IS NOT NULL"),
                    sqlite_where=sa.text("lease_owner IS NOT NULL"))
    op.add_column("polls", sa.Column("worker", sa.String(200)))
    numbers = op.create_table(
        "corpus_numbers",
        sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("key", sa.String(16), nullable=False),
        sa.Column("origin", sa.String(10), nullable=False),
        sa.Column("reserved_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("key"),
    )
    bind = op.get_bind()
    names = bind.execute(sa.text(
        "SELECT corpus_file FROM items WHERE corpus_file IS NOT NULL")).scalars().all()
    now = datetime.now(UTC)
    if bind.dialect.name == "sqlite":
        now = now.replace(tzinfo=None)  # how UTCDateTime stores it there
    rows, numbers_seen, keys_seen = [], set(), set()
    for name in sorted(names):
        match = _NAME.match(name)
        if not match:
            continue
        number, key = int(match.group(1)), match.group(2)
        if number in numbers_seen or key in keys_seen:
            continue
        numbers_seen.add(number)
        keys_seen.add(key)
        rows.append({"number": number, "key": key, "origin": "folder", "reserved_at": now})
    if rows:
        op.bulk_insert(numbers, rows)


def downgrade() -> None:
    op.drop_table("corpus_numbers")
    op.drop_column("polls", "worker")
    op.drop_index("ix_feeds_lease_owner", "feeds")
    op.drop_index("ix_feeds_next_due", "feeds")
