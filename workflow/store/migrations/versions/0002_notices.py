"""Contacts, notices with their idempotency keys, and the office's working-day calendar.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("unit_code", sa.String(12), sa.ForeignKey("units.code"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("webhook", sa.String(500), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.UniqueConstraint("unit_code", "name", name="uq_contacts_unit_name"),
    )
    op.create_index("ix_contacts_unit_code", "contacts", ["unit_code"])
    op.create_table(
        "notices",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("recipient", sa.String(500), nullable=False),
        sa.Column("recipient_name", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.String(32), nullable=True),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("sent_at", sa.String(32), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("ambiguous", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(120), nullable=True),
    )
    op.create_index("ix_notices_recipient", "notices", ["recipient"])
    op.create_index("ix_notices_status", "notices", ["status"])
    op.create_index("ix_notices_created_at", "notices", ["created_at"])
    op.create_table(
        "notice_items",
        sa.Column("notice_id", sa.String(40), sa.ForeignKey("notices.id"), primary_key=True),
        sa.Column("recipient", sa.String(500), primary_key=True),
        sa.Column("unit_code", sa.String(12), primary_key=True),
        sa.Column("milestone", sa.String(40), primary_key=True),
        sa.Column("rung", sa.String(16), primary_key=True),
        sa.Column("rung_date", sa.String(10), nullable=False),
        sa.UniqueConstraint("recipient", "unit_code", "milestone", "rung", name="uq_notice_items_once"),
    )
    op.create_index("ix_notice_items_lookup", "notice_items", ["recipient", "unit_code", "milestone"])
    op.create_table(
        "calendar_days",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("workday", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=True),
        sa.Column("source", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    for table in ("calendar_days", "notice_items", "notices", "contacts"):
        op.drop_table(table)
