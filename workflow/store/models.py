"""The tables, as SQLAlchemy 2 typed models. Every change to them comes with an Alembic migration.

Times are stored as ISO 8601 UTC strings ("2015-03-31T02:00:00Z"): the same text on every engine,
so the audit chain hashes identically on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import (
    Column,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column


class Base(DeclarativeBase):
    pass


units_table = Table(
    "units", Base.metadata,
    Column("code", String(12), primary_key=True),
    Column("name", String(64), nullable=False, index=True),
    Column("short_name", String(64), nullable=False, index=True),
    Column("level", String(10), nullable=False),
    Column("parent_code", String(12), index=True),
    Index("ix_units_level_parent", "level", "parent_code"),
)
"""The registry: a city, county or township (or a province in a national registry). A unit is the
registry's; its state in a campaign is `UnitState`'s."""


class UnitState(Base):
    """A unit's state in one campaign (`campaign_no`: 1 for the campaign `init` loaded, then one more for
    each `campaign add`), with the version that optimistic concurrency checks."""

    __tablename__ = "unit_states"

    campaign_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, server_default="1")
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    changed_at: Mapped[str | None] = mapped_column(String(32))
    changed_by: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (Index("ix_unit_states_unit_code", "unit_code"),)


class Unit(Base):
    """A unit of the registry as the campaign in scope sees it: the registry's columns and its state
    there (`store.scope` confines every ORM query to that campaign). Read through the ORM; its state is
    written to `unit_states` with the campaign's number."""

    __table__ = units_table.join(UnitState.__table__, units_table.c.code == UnitState.__table__.c.unit_code)
    code = column_property(units_table.c.code, UnitState.__table__.c.unit_code)
    campaign_no = UnitState.__table__.c.campaign_no
    __mapper_args__ = {"primary_key": [units_table.c.code]}

    if TYPE_CHECKING:
        name: Mapped[str]
        short_name: Mapped[str]
        level: Mapped[str]
        parent_code: Mapped[str | None]
        state: Mapped[str | None]
        version: Mapped[int]
        changed_at: Mapped[str | None]
        changed_by: Mapped[str | None]


class UnitCohort(Base):
    """A township's membership of one of a campaign's cohorts (key, county_demo, …)."""

    __tablename__ = "unit_cohorts"

    campaign_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, server_default="1")
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), primary_key=True)
    cohort: Mapped[str] = mapped_column(String(20), primary_key=True, index=True)

    __mapper_args__ = {"primary_key": ["unit_code", "cohort"]}  # within the campaign in scope


class ChecklistValue(Base):
    """The latest recorded value of one checklist item of one unit (the history is in the audit log)."""

    __tablename__ = "checklist_values"

    campaign_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, server_default="1")
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), primary_key=True)
    item: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[str] = mapped_column(String(32))
    recorded_by: Mapped[str] = mapped_column(String(128))

    __mapper_args__ = {"primary_key": ["unit_code", "item"]}  # within the campaign in scope


class AuditRow(Base):
    """One change, hash-chained to the row before it."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(32), index=True)
    actor: Mapped[str] = mapped_column(String(128), index=True)
    unit_code: Mapped[str | None] = mapped_column(String(12))
    action: Mapped[str] = mapped_column(String(40))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text, default="[]")
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The campaign whose state the row changed (NULL: the database's, such as an official or a contact).
    # Not hashed: the hashed detail names a campaign other than the first (`in_campaign`), and `audit
    # verify` checks that this column agrees with it.
    campaign_no: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (Index("ix_audit_unit_seq", "unit_code", "seq"), Index("ix_audit_campaign", "campaign_no"))


class EvidenceRow(Base):
    """One evidence file an audit row attaches: to a checklist item (`record`) or a trigger. Written with
    the audit row; `audit verify` rebuilds the table from the log and names the first disagreement."""

    __tablename__ = "evidence"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # the audit row's
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # in its list
    unit_code: Mapped[str | None] = mapped_column(String(12), index=True)
    subject: Mapped[str] = mapped_column(String(64))  # the checklist item, or the trigger
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64), index=True)


class Meta(Base):
    """Key/value facts about this database: the campaign in force, the registry loaded."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class CampaignRow(Base):
    """A campaign added beside the first (`anjian campaign add`): its number, id and file. The first
    campaign, the one `init` loads, lives in `meta` (campaign, campaign_sha256) as it always has."""

    __tablename__ = "campaigns"

    no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    added_at: Mapped[str] = mapped_column(String(32))
    added_by: Mapped[str] = mapped_column(String(128))


class Contact(Base):
    """Someone at a unit who receives its notices: an e-mail address, a group-robot webhook, or both."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254))
    webhook: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[str] = mapped_column(String(32))
    # The campaigns whose notices it takes (their ids, comma-separated, in the database's order); NULL:
    # those of every campaign that covers its unit.
    campaigns: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (UniqueConstraint("unit_code", "name", name="uq_contacts_unit_name"),)


class Notice(Base):
    """One message to one recipient over one channel, claimed before it is sent and marked after.

    `key` is the idempotency key (recipient, channel and every unit/milestone/rung it carries): the
    unique constraint makes a second claim of the same message fail instead of sending it twice.
    """

    __tablename__ = "notices"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    recipient: Mapped[str] = mapped_column(String(500))
    recipient_name: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    language: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str] = mapped_column(Text)
    # claimed | sending (handed to its sender) | sent | retry | failed | ambiguous (left `sending` by
    # another pass where this one cannot look: not sent again until settled)
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[str] = mapped_column(String(32), index=True)
    sent_at: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    ambiguous: Mapped[int] = mapped_column(Integer, default=0)
    owner: Mapped[str | None] = mapped_column(String(120))  # host:pid of the pass that claimed it
    # where it is written: file://host/folder, smtp:host:port, webhook (NULL: claimed before schema 0006)
    target: Mapped[str | None] = mapped_column(String(600))


class NoticeContent(Base):
    """What a notice says, written when it is claimed and never changed: the JSON its parts are rendered
    from (`notifications.render.content`), apart from `notices`, whose rows change as notices are sent.
    `body` and `html` hold the rendered text of a notice claimed before schema 0004, which has no content."""

    __tablename__ = "notice_contents"

    notice_id: Mapped[str] = mapped_column(ForeignKey("notices.id"), primary_key=True)
    content: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)


class NoticeItem(Base):
    """One (unit, milestone, rung) a notice tells its recipient about; each is told at most once, which
    is its primary key."""

    __tablename__ = "notice_items"

    campaign_no: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, server_default="1")
    recipient: Mapped[str] = mapped_column(String(500), primary_key=True)
    unit_code: Mapped[str] = mapped_column(String(12), primary_key=True)
    milestone: Mapped[str] = mapped_column(String(40), primary_key=True)
    rung: Mapped[str] = mapped_column(String(16), primary_key=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notices.id"), index=True)
    rung_date: Mapped[str] = mapped_column(String(10))

    __table_args__ = (PrimaryKeyConstraint("campaign_no", "recipient", "unit_code", "milestone", "rung",
                                         name="pk_notice_items"),)


class CalendarDay(Base):
    """An official working-day schedule entry loaded by the office (overrides the packaged calendar)."""

    __tablename__ = "calendar_days"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    workday: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(200))


class Official(Base):
    """A person who may act: a role, the unit whose jurisdiction they act in, their OS account."""

    __tablename__ = "officials"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    os_user: Mapped[str | None] = mapped_column(String(64), unique=True)
    active: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(64))


class Password(Base):
    """An official's sign-in password for the service: an argon2id hash, and whether it must change.

    Secrets, not campaign state: the audit log records that a password was set or changed, never it."""

    __tablename__ = "passwords"

    official: Mapped[str] = mapped_column(ForeignKey("officials.name"), primary_key=True)
    hash: Mapped[str] = mapped_column(String(200))
    must_change: Mapped[int] = mapped_column(Integer, default=1)
    set_at: Mapped[str] = mapped_column(String(32))
    set_by: Mapped[str] = mapped_column(String(64))


class Token(Base):
    """A bearer credential of one official: an API token for the CLI and scripts (kind `token`) or a
    browser's sign-in session (kind `session`, with its CSRF secret). Only the SHA-256 of the secret is
    kept; `id` is its public name, shown by `token list` and used to revoke it."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(24), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10), default="token")
    official: Mapped[str] = mapped_column(ForeignKey("officials.name"), index=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(100))
    csrf: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[str] = mapped_column(String(32))
    last_used_at: Mapped[str | None] = mapped_column(String(32))
    revoked_at: Mapped[str | None] = mapped_column(String(32))
    revoked_by: Mapped[str | None] = mapped_column(String(64))


class SigninFailure(Base):
    """One failed sign-in, by the name tried and the address it came from: what the limits count
    (shared by every `serve` process on the database)."""

    __tablename__ = "signin_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[str] = mapped_column(String(32), index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
