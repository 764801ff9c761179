"""Evidence per file in a table of its own: until now an item's or a transition's evidence (path, SHA-256)
lived only inside the JSON of its audit row, so finding a unit's files meant reading every row of its log.

One row per file an audit row attaches: the row's seq and the file's place in its list, the unit, what
it was attached to (the checklist item of a `record`, else the trigger), its path and SHA-256. The table
is filled here from the audit rows already written, and from then on beside each audit row;
`anjian audit verify` rebuilds it from the log and names the first row where the two disagree.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 5000


def upgrade() -> None:
    table = op.create_table(
        "evidence",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("position", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("unit_code", sa.String(12), nullable=True),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
    )
    op.create_index("ix_evidence_unit_code", "evidence", ["unit_code"])
    op.create_index("ix_evidence_sha256", "evidence", ["sha256"])
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT seq, unit_code, action, evidence, detail FROM audit_log "
                                "WHERE evidence <> '[]' ORDER BY seq"))
    pending = []
    for seq, unit, action, evidence, detail in rows:
        # The rule of `store.evidence.attached`, written out here: a migration stays as it was run.
        subject = (json.loads(detail).get("item") if action == "record" else None) or action
        pending += [{"seq": seq, "position": i, "unit_code": unit, "subject": subject, "path": f["path"],
                     "sha256": f["sha256"]} for i, f in enumerate(json.loads(evidence))]
    for start in range(0, len(pending), BATCH):
        op.bulk_insert(table, pending[start:start + BATCH])


def downgrade() -> None:
    op.drop_index("ix_evidence_sha256", table_name="evidence")
    op.drop_index("ix_evidence_unit_code", table_name="evidence")
    op.drop_table("evidence")
