"""What a notice says in a table of its own, as the data it is rendered from; a notice item keyed by
what it is.

A national reminder pass claims some 44,000 notices and then marks each sent. With the rendered text and
HTML in the `notices` row (about 3 KB each), claiming wrote some 150 MB and marking rewrote all of it
(a new tuple of each on PostgreSQL); on SQLite, whose write-ahead log then copies it into the database
again, a pass wrote a gigabyte. `notice_contents` holds what the templates are rendered from (a few
hundred bytes of JSON), written once and never touched again; the parts are rendered where the notice
is sent. The rendered text of notices claimed before this migration is kept beside it (`body`, `html`),
so a notice left claimed or waiting for a retry goes out as it was.

A notice item is told to a recipient once: (recipient, unit, milestone, rung) is now its primary key,
where it was a unique constraint beside a five-column key and a third index on a prefix of it; the
notice it belongs to has an index of its own. `ix_notices_recipient` was used by no query.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ITEM_COLUMNS = "notice_id, recipient, unit_code, milestone, rung, rung_date"


def _items(name: str, key: sa.PrimaryKeyConstraint, *extra) -> None:
    op.create_table(
        name,
        sa.Column("notice_id", sa.String(40), sa.ForeignKey("notices.id"), nullable=False),
        sa.Column("recipient", sa.String(500), nullable=False),
        sa.Column("unit_code", sa.String(12), nullable=False),
        sa.Column("milestone", sa.String(40), nullable=False),
        sa.Column("rung", sa.String(16), nullable=False),
        sa.Column("rung_date", sa.String(10), nullable=False),
        key,
        *extra,
    )


def upgrade() -> None:
    op.create_table(
        "notice_contents",
        sa.Column("notice_id", sa.String(40), sa.ForeignKey("notices.id"), primary_key=True),
        sa.Column("content", sa.Text, nullable=True),
        sa.Column("body", sa.Text, nullable=True),
        sa.Column("html", sa.Text, nullable=True),
    )
    op.execute("INSERT INTO notice_contents (notice_id, body, html) SELECT id, body, html FROM notices")
    _items("notice_items_new", sa.PrimaryKeyConstraint("recipient", "unit_code", "milestone", "rung", name="pk_notice_items"))
    op.execute(f"INSERT INTO notice_items_new ({ITEM_COLUMNS}) SELECT {ITEM_COLUMNS} FROM notice_items")
    op.drop_table("notice_items")
    op.rename_table("notice_items_new", "notice_items")
    op.create_index("ix_notice_items_notice_id", "notice_items", ["notice_id"])
    op.drop_index("ix_notices_recipient", table_name="notices")
    # Dropped in place (SQLite 3.35 and later can): recreating `notices`, as a batch operation would,
    # is refused while notice_items and notice_bodies refer to it.
    op.execute("ALTER TABLE notices DROP COLUMN body")
    op.execute("ALTER TABLE notices DROP COLUMN html")


def downgrade() -> None:
    op.add_column("notices", sa.Column("body", sa.Text, nullable=False, server_default=""))
    op.add_column("notices", sa.Column("html", sa.Text, nullable=True))
    # A notice claimed since holds only its content: it is rendered here, as the pass that sent it did.
    from anjian.notifications.render import body_of

    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT n.id, n.channel, c.content, c.body, c.html FROM notices n "
                                "JOIN notice_contents c ON c.notice_id = n.id")).all()
    for nid, channel, stored, body, html in rows:
        if stored is not None:
            body, html = body_of(channel, stored, body, html)
        conn.execute(sa.text("UPDATE notices SET body = :body, html = :html WHERE id = :id"),
                     {"body": body, "html": html, "id": nid})
    op.create_index("ix_notices_recipient", "notices", ["recipient"])
    op.drop_table("notice_contents")
    op.drop_index("ix_notice_items_notice_id", table_name="notice_items")
    _items("notice_items_old", sa.PrimaryKeyConstraint("notice_id", "recipient", "unit_code", "milestone", "rung",
                                                       name="notice_items_old_pkey"),
           sa.UniqueConstraint("recipient", "unit_code", "milestone", "rung", name="uq_notice_items_once"))
    op.execute(f"INSERT INTO notice_items_old ({ITEM_COLUMNS}) SELECT {ITEM_COLUMNS} FROM notice_items")
    op.drop_table("notice_items")
    op.rename_table("notice_items_old", "notice_items")
    op.create_index("ix_notice_items_lookup", "notice_items", ["recipient", "unit_code", "milestone"])
