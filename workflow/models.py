"""The tables, as SQLAlchemy 2 typed models. Every change to them comes with an Alembic migration.

Times are stored as ISO 8601 UTC strings ("2015-03-31T02:00:00Z"): the same text on every engine,
so the audit chain hashes identically on SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Unit(Base):
    """A city, county or township (or a province in a national registry) and its current state."""

    __tablename__ = "units"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    short_name: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[str] = mapped_column(String(10))
    parent_code: Mapped[str | None] = mapped_column(String(12), index=True)
    state: Mapped[str | None] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer, default=1)
    changed_at: Mapped[str | None] = mapped_column(String(32))
    changed_by: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (Index("ix_units_level_parent", "level", "parent_code"),)


class UnitCohort(Base):
    """A township's membership of a cohort (provincial_demo, county_demo, key, heavy_task)."""

    __tablename__ = "unit_cohorts"

    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), primary_key=True)
    cohort: Mapped[str] = mapped_column(String(20), primary_key=True, index=True)


class ChecklistValue(Base):
    """The latest recorded value of one checklist item of one unit (the history is in the audit log)."""

    __tablename__ = "checklist_values"

    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), primary_key=True)
    item: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[str] = mapped_column(String(32))
    recorded_by: Mapped[str] = mapped_column(String(128))


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

    __table_args__ = (Index("ix_audit_unit_seq", "unit_code", "seq"),)


class Meta(Base):
    """Key/value facts about this database: the campaign in force, the registry loaded."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
