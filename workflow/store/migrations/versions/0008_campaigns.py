"""Several campaigns in one database: a unit's state, checklist values, cohorts and the notices told
about it belong to a campaign, by its number.

- `unit_states` holds each unit's state and version per campaign; the `units` table keeps the registry
  (code, name, short name, level, parent). The states already there become campaign 1's, the campaign
  `init` loaded.
- `unit_cohorts`, `checklist_values` and `notice_items` gain `campaign_no` (1 for every row already there)
  in their primary key.
- `campaigns` lists the campaigns added beside the first (`anjian campaign add`).
- `contacts.campaigns` names the campaigns whose notices a contact takes (NULL, as for every contact
  already there: every campaign that covers its unit).
- `audit_log.campaign_no` says whose state a row changed (1 for every row about a unit already there;
  NULL for the database's own rows), so that a campaign's views replay its rows alone.

Nothing the audit log records changes: `audit verify` gives the same answer before and after.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

STATE_COLUMNS = "state, version, changed_at, changed_by"
GUARD = "audit_log is append-only: rows cannot be changed or removed"  # 0003's words
TABLES = {
    "unit_cohorts": ("unit_code, cohort", ("unit_code", "cohort")),
    "checklist_values": ("unit_code, item, value, recorded_at, recorded_by", ("unit_code", "item")),
    "notice_items": ("recipient, unit_code, milestone, rung, notice_id, rung_date",
                     ("recipient", "unit_code", "milestone", "rung")),
}


def _campaign_no(pk: bool = True) -> sa.Column:
    return sa.Column("campaign_no", sa.Integer, primary_key=pk, nullable=False, autoincrement=False, server_default="1")


def _table(name: str, *, numbered: bool) -> None:
    first = [_campaign_no(pk=False)] if numbered else []
    pk = TABLES[name][1]
    pk_name = "pk_notice_items" if name == "notice_items" else f"pk_{name}"
    cols = {
        "unit_cohorts": lambda: [
            sa.Column("unit_code", sa.String(12), sa.ForeignKey("units.code"), nullable=False),
            sa.Column("cohort", sa.String(20), nullable=False)],
        "checklist_values": lambda: [
            sa.Column("unit_code", sa.String(12), sa.ForeignKey("units.code"), nullable=False),
            sa.Column("item", sa.String(64), nullable=False),
            sa.Column("value", sa.Text, nullable=False),
            sa.Column("recorded_at", sa.String(32), nullable=False),
            sa.Column("recorded_by", sa.String(128), nullable=False)],
        "notice_items": lambda: [
            sa.Column("recipient", sa.String(500), nullable=False),
            sa.Column("unit_code", sa.String(12), nullable=False),
            sa.Column("milestone", sa.String(40), nullable=False),
            sa.Column("rung", sa.String(16), nullable=False),
            sa.Column("notice_id", sa.String(40), sa.ForeignKey("notices.id"), nullable=False),
            sa.Column("rung_date", sa.String(10), nullable=False)],
    }[name]()
    op.create_table(f"{name}_new", *first, *cols,
                    sa.PrimaryKeyConstraint(*(["campaign_no"] if numbered else []), *pk, name=f"{pk_name}_new"))
    columns = TABLES[name][0]
    op.execute(f"INSERT INTO {name}_new ({columns}) SELECT {columns} FROM {name}")
    for index in _indexes(name):
        op.drop_index(index[0], table_name=name)
    op.drop_table(name)
    op.rename_table(f"{name}_new", name)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {name} RENAME CONSTRAINT {pk_name}_new TO {pk_name}")
    for index, on in _indexes(name):
        op.create_index(index, name, on)


def _indexes(name: str) -> list[tuple[str, list[str]]]:
    return {"unit_cohorts": [("ix_unit_cohorts_cohort", ["cohort"])],
            "checklist_values": [],
            "notice_items": [("ix_notice_items_notice_id", ["notice_id"])]}[name]


def _file_rows_under_campaign_1() -> None:
    """Every audit row about a unit is campaign 1's: the one column the log's append-only guard (0003) lets
    this migration fill, the guard lifted for that statement alone and put back as it was."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_update")
        op.execute("UPDATE audit_log SET campaign_no = 1 WHERE unit_code IS NOT NULL")
        op.execute(f"CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
                   f"BEGIN SELECT RAISE(ABORT, '{GUARD}'); END")
        return
    guarded = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM pg_trigger WHERE tgname = 'audit_log_no_change'")).scalar()
    if guarded:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_change")
    op.execute("UPDATE audit_log SET campaign_no = 1 WHERE unit_code IS NOT NULL")
    if guarded:
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_change")


def upgrade() -> None:
    op.create_table(
        "unit_states",
        _campaign_no(),
        sa.Column("unit_code", sa.String(12), sa.ForeignKey("units.code"), primary_key=True),
        sa.Column("state", sa.String(20), nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("changed_at", sa.String(32), nullable=True),
        sa.Column("changed_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_unit_states_unit_code", "unit_states", ["unit_code"])
    op.execute(f"INSERT INTO unit_states (campaign_no, unit_code, {STATE_COLUMNS}) "
               f"SELECT 1, code, {STATE_COLUMNS} FROM units")
    for column in ("state", "version", "changed_at", "changed_by"):
        op.execute(f"ALTER TABLE units DROP COLUMN {column}")  # SQLite 3.35 and later drop in place
    for name in TABLES:
        _table(name, numbered=True)
    op.add_column("audit_log", sa.Column("campaign_no", sa.Integer, nullable=True))
    _file_rows_under_campaign_1()
    op.create_index("ix_audit_campaign", "audit_log", ["campaign_no"])
    op.add_column("contacts", sa.Column("campaigns", sa.String(500), nullable=True))
    op.create_table(
        "campaigns",
        sa.Column("no", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(64), nullable=False, unique=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("added_at", sa.String(32), nullable=False),
        sa.Column("added_by", sa.String(128), nullable=False),
    )


def downgrade() -> None:
    """Back to one campaign: refused while a database runs several (their rows would be lost)."""
    conn = op.get_bind()
    if conn.execute(sa.text("SELECT count(*) FROM campaigns")).scalar():
        raise RuntimeError("this database runs several campaigns: a schema before 0008 can keep only the first")
    op.drop_table("campaigns")
    op.execute("ALTER TABLE contacts DROP COLUMN campaigns")
    op.drop_index("ix_audit_campaign", table_name="audit_log")
    op.execute("ALTER TABLE audit_log DROP COLUMN campaign_no")
    for name in TABLES:
        _table(name, numbered=False)
    op.add_column("units", sa.Column("state", sa.String(20), nullable=True))
    op.add_column("units", sa.Column("version", sa.Integer, nullable=False, server_default="1"))
    op.add_column("units", sa.Column("changed_at", sa.String(32), nullable=True))
    op.add_column("units", sa.Column("changed_by", sa.String(128), nullable=True))
    for column in ("state", "version", "changed_at", "changed_by"):
        op.execute(f"UPDATE units SET {column} = (SELECT s.{column} FROM unit_states s "
                   f"WHERE s.unit_code = units.code AND s.campaign_no = 1)")
    op.drop_index("ix_unit_states_unit_code", table_name="unit_states")
    op.drop_table("unit_states")
