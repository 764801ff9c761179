"""Sign-in for the service: passwords (argon2id hashes), tokens and browser sessions (SHA-256 of the
secret only), and failed sign-ins counted for the limits.

These tables hold secrets, not the campaign's state: `audit verify` does not rebuild them. The log
records every password set, token issued or revoked, sign-in and failed attempt, without the secret.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "passwords",
        sa.Column("official", sa.String(64), sa.ForeignKey("officials.name"), primary_key=True),
        sa.Column("hash", sa.String(200), nullable=False),
        sa.Column("must_change", sa.Integer, nullable=False),
        sa.Column("set_at", sa.String(32), nullable=False),
        sa.Column("set_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("official", sa.String(64), sa.ForeignKey("officials.name"), nullable=False, index=True),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(100)),
        sa.Column("csrf", sa.String(64)),
        sa.Column("created_at", sa.String(32), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.String(32), nullable=False),
        sa.Column("last_used_at", sa.String(32)),
        sa.Column("revoked_at", sa.String(32)),
        sa.Column("revoked_by", sa.String(64)),
    )
    op.create_table(
        "signin_failures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(32), nullable=False, index=True),
        sa.Column("username", sa.String(64), nullable=False, index=True),
        sa.Column("address", sa.String(64), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("signin_failures")
    op.drop_table("tokens")
    op.drop_table("passwords")
