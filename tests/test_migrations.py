"""The Alembic migrations and the models agree, on SQLite and on PostgreSQL; migration 0004 moves what a
notice says to its own table and re-keys notice items without losing a notice, and back."""

from __future__ import annotations

from importlib import resources

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from anjian.workflow.store.db import Database
from anjian.workflow.store.models import Base


def config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("anjian.workflow.store") / "migrations"))
    return cfg


def migrate(db: Database, target: str, down: bool = False) -> None:
    cfg = config(db)
    with db.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, target)
        conn.commit()


def test_the_models_are_what_the_migrations_build(fresh_db):
    """Autogenerate finds nothing to change between the migrated schema and the models: no column,
    index, key or type that one has and the other lacks."""
    fresh_db.upgrade()
    with fresh_db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


NOTICE = {"id": "20150324-00aa", "key": "k" * 64, "recipient": "wang@kc.gov.cn", "recipient_name": "王站长",
          "channel": "file", "kind": "reminder", "language": "zh", "subject": "提醒", "body": "正文：峪耳崖镇",
          "html": "<p>峪耳崖镇</p>", "status": "sent", "attempts": 1, "next_attempt_at": None,
          "created_at": "2015-03-24T00:30:00Z", "sent_at": "2015-03-24T00:30:01Z", "last_error": None,
          "ambiguous": 0, "owner": "host:1"}
ITEMS = [("wang@kc.gov.cn", "130827102", "provincial_demo", "d-7"), ("wang@kc.gov.cn", "130827102", "plan_submission", "overdue-1")]


def insert_0003(conn) -> None:
    conn.execute(text("INSERT INTO notices (" + ", ".join(NOTICE) + ") VALUES (" + ", ".join(f":{k}" for k in NOTICE) + ")"),
                 NOTICE)
    for recipient, unit, milestone, rung in ITEMS:
        conn.execute(text("INSERT INTO notice_items (notice_id, recipient, unit_code, milestone, rung, rung_date) "
                          "VALUES (:n, :r, :u, :m, :g, '2015-03-24')"),
                     {"n": NOTICE["id"], "r": recipient, "u": unit, "m": milestone, "g": rung})


def test_0004_moves_bodies_and_keeps_every_item_then_back(fresh_db):
    """A database at 0003 with a notice: at 0004 its text and HTML are kept in notice_contents (it has no
    content to render them from), its items are all there under their new key, and an item told twice
    is still refused; back at 0003, as it was."""
    migrate(fresh_db, "0003")
    with fresh_db.engine.begin() as conn:
        insert_0003(conn)
    migrate(fresh_db, "0004")
    with fresh_db.engine.begin() as conn:
        assert conn.execute(text("SELECT notice_id, content, body, html FROM notice_contents")).all() == [
            (NOTICE["id"], None, NOTICE["body"], NOTICE["html"])]
        assert conn.execute(text("SELECT subject, status FROM notices")).all() == [("提醒", "sent")]
        assert sorted(conn.execute(text("SELECT recipient, unit_code, milestone, rung FROM notice_items")).all()) == sorted(ITEMS)
    with pytest.raises(IntegrityError), fresh_db.engine.begin() as conn:
        conn.execute(text("INSERT INTO notices (" + ", ".join(k for k in NOTICE if k not in ("body", "html")) + ") VALUES ("
                          + ", ".join(f":{k}" for k in NOTICE if k not in ("body", "html")) + ")"),
                     {**NOTICE, "id": "20150325-00bb", "key": "j" * 64})
        conn.execute(text("INSERT INTO notice_items (notice_id, recipient, unit_code, milestone, rung, rung_date) "
                          "VALUES ('20150325-00bb', :r, :u, :m, :g, '2015-03-25')"),
                     dict(zip("rumg", ITEMS[0], strict=True)))
    migrate(fresh_db, "0003", down=True)
    with fresh_db.engine.begin() as conn:
        assert conn.execute(text("SELECT body, html FROM notices")).all() == [(NOTICE["body"], NOTICE["html"])]
        assert sorted(conn.execute(text("SELECT recipient, unit_code, milestone, rung FROM notice_items")).all()) == sorted(ITEMS)
    migrate(fresh_db, "head")
    with fresh_db.engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM notice_contents")).scalar() == 1
