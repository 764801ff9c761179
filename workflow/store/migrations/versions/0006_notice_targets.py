"""Where a claimed notice writes: `notices.target`, beside `owner` (who claimed it).

A pass that finds another pass's unfinished claims must know whether it can look at what that pass did:
only the same outbox (the same folder on the same machine) can show whether a file was written. The
target is "file://<host>/<folder>" for the file outbox, "smtp:<host>:<port>" for SMTP and "webhook" for
group robots. Notices claimed before this migration have none (NULL: unknown, never the same as a pass's
own target).

A notice now also passes through the statuses `sending` (handed to its sender, so it may have gone out)
and `ambiguous` (left `sending` by another pass where this one cannot look: reported, not sent again,
until an official settles it); they are values of the existing `status` column and need no change here.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notices") as batch:  # an added column needs no copy of the table, on SQLite either
        batch.add_column(sa.Column("target", sa.String(600), nullable=True))


def downgrade() -> None:
    # Back to before 0006 a notice is `claimed`, `sent`, `retry` or `failed`: one that was handed to its
    # sender is `claimed` again, flagged (it may have gone out); one waiting to be settled likewise.
    op.execute("UPDATE notices SET status = 'claimed', ambiguous = 1 WHERE status IN ('sending', 'ambiguous')")
    # Dropped in place (SQLite 3.35 and later can): recreating `notices`, as a batch operation would,
    # is refused while notice_items and notice_contents refer to it.
    op.execute("ALTER TABLE notices DROP COLUMN target")
