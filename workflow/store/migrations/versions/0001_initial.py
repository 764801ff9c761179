"""The first tables: units, cohorts, checklist values, the audit log and meta.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("code", sa.String(12), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("short_name", sa.String(64), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("parent_code", sa.String(12), nullable=True),
        sa.Column("state", sa.String(20), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.String(32), nullable=True),
        sa.Column("changed_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_units_name", "units", ["name"])
    op.create_index("ix_units_short_name", "units", ["short_name"])
    op.create_index("ix_units_parent_code", "units", ["parent_code"])
    op.create_index("ix_units_level_parent", "units", ["level", "parent_code"])
    op.create_table(
        "unit_cohorts",
        sa.Column("unit_code", sa.String(12), sa.ForeignKey("units.code"), primary_key=True),
        sa.Column("cohort", sa.String(20), primary_key=True),
    )
    op.create_index("ix_unit_cohorts_cohort", "unit_cohorts", ["cohort"])
    op.create_table(
        "checklist_values",
        sa.Column("unit_code", sa.String(12), sa.ForeignKey("units.code"), primary_key=True),
        sa.Column("item", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.String(32), nullable=False),
        sa.Column("recorded_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("from_state", sa.String(20), nullable=True),
        sa.Column("to_state", sa.String(20), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_unit_seq", "audit_log", ["unit_code", "seq"])
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )


def downgrade() -> None:
    for table in ("meta", "audit_log", "checklist_values", "unit_cohorts", "units"):
        op.drop_table(table)
