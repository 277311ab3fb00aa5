"""The alerts' outbox: one row per alert and relevant item to announce.

Revision ID: 0009
Revises: 0007

alert_outbox (alert, item, state, attempts, created_at, next_attempt, last_error, sent_at,
delivered, resends, lease_owner, lease_until), unique per (alert, item), indexed for the
sender's claim. A database made by create_all of this schema.py already has it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if not sa.inspect(op.get_bind()).has_table("alert_outbox"):
        op.create_table(
            "alert_outbox",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("alert", sa.String(60), nullable=False),
            sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), nullable=False),
            sa.Column("state", sa.String(10), nullable=False),
            sa.Column("attempts", sa.Integer, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("next_attempt", sa.DateTime(timezone=True), nullable=False),
            sa.Column("last_error", sa.Text),
            sa.Column("sent_at", sa.DateTime(timezone=True)),
            sa.Column("delivered", sa.JSON, nullable=False),
            sa.Column("resends", sa.Integer, nullable=False),
            sa.Column("lease_owner", sa.String(200)),
            sa.Column("lease_until", sa.DateTime(timezone=True)),
            sa.UniqueConstraint("alert", "item_id", name="uq_alert_outbox_alert_item"),
        )
    op.create_index("ix_alert_outbox_due", "alert_outbox", ["alert", "state", "next_attempt"],
                    if_not_exists=True)


def downgrade() -> None:
    op.drop_table("alert_outbox")
