"""The reason of a refused write is `storage-error` (it was `storage`).

Revision ID: 0007
Revises: 0006

Failed polls stored with reason `storage` (polls.error_reason, and feeds.last_status for the
feed's last poll) get the new name, so `stats`, `feeds list` and `/metrics` count them under one
reason. No table changes.
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_RENAMES = (("polls", "error_reason"), ("feeds", "last_status"))


def _rename(old: str, new: str) -> None:
    for table, column in _RENAMES:
        op.execute(f"UPDATE {table} SET {column} = '{new}' WHERE {column} = '{old}'")


def upgrade() -> None:
    _rename("storage", "storage-error")


def downgrade() -> None:
    _rename("storage-error", "storage")
