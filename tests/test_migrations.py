"""The Alembic migrations and the models agree, on SQLite and on PostgreSQL; migration 0004 moves what a
notice says to its own table and re-keys notice items without losing a notice, and back."""

from __future__ import annotations

from importlib import resources

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect as sa_inspect
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


def test_the_schema_head_is_read_from_the_migration_scripts(fresh_db):
    """The head the commands check against, read from the scripts without Alembic, is Alembic's own head."""
    from alembic.script import ScriptDirectory

    from anjian.workflow.store.db import SCHEMA_HEAD, schema_head

    assert schema_head() == SCHEMA_HEAD == ScriptDirectory.from_config(config(fresh_db)).get_current_head()


AUDIT_0004 = "INSERT INTO audit_log (seq, at, actor, unit_code, action, from_state, to_state, note, evidence, detail, " \
             "prev_hash, hash) VALUES (:seq, '2015-01-05T01:00:00.000000Z', 'chief', :unit, :action, NULL, NULL, NULL, " \
             ":evidence, :detail, :prev, :hash)"


def test_0005_fills_the_evidence_table_from_the_log_then_back(fresh_db):
    """A log written at 0004 with evidence inside its rows: at 0005 each file is a row of `evidence`, attached
    to the recorded item or the fired trigger; a row without evidence adds none; back at 0004 the table is gone."""
    import json

    migrate(fresh_db, "0004")
    files = [{"path": "/srv/台账.pdf", "sha256": "a" * 64, "size": 3}, {"path": "/srv/照片.jpg", "sha256": "b" * 64, "size": 4}]
    rows = [(1, "130827102", "record", files, {"item": "ledger.inspections", "value": "是"}),
            (2, "130827102", "start", [], {}),
            (3, "130827", "submit_plan", files[:1], {})]
    with fresh_db.engine.begin() as conn:
        for seq, unit, action, evidence, detail in rows:
            conn.execute(text(AUDIT_0004), {"seq": seq, "unit": unit, "action": action, "evidence": json.dumps(evidence),
                                            "detail": json.dumps(detail), "prev": str(seq - 1), "hash": str(seq)})
    migrate(fresh_db, "0005")
    with fresh_db.engine.begin() as conn:
        got = conn.execute(text("SELECT seq, position, unit_code, subject, path, sha256 FROM evidence "
                                "ORDER BY seq, position")).all()
    assert got == [(1, 0, "130827102", "ledger.inspections", "/srv/台账.pdf", "a" * 64),
                   (1, 1, "130827102", "ledger.inspections", "/srv/照片.jpg", "b" * 64),
                   (3, 0, "130827", "submit_plan", "/srv/台账.pdf", "a" * 64)]
    migrate(fresh_db, "0004", down=True)
    with fresh_db.engine.connect() as conn:
        assert "evidence" not in sa_inspect(conn).get_table_names()


def test_0008_gives_the_states_to_the_first_campaign_and_verify_says_the_same_before_and_after(chengde, tmp_path):
    """A database of one campaign, written at 0007 (states in `units`, cohorts, checklist values, notice
    items): at 0008 every state, version, value, cohort and item is campaign 1's, nothing is lost, and
    `audit verify` is intact before and after, and back at 0007 again. A database running several
    campaigns refuses to go back below 0008 (their rows would be lost)."""
    from support import T0, record_checklist

    from anjian.workflow.services import campaigns
    from anjian.workflow.services.advance import advance
    from anjian.workflow.services.checklist import DesignateRow, designate
    from anjian.workflow.store.integrity import verify

    designate(chengde, [DesignateRow(1, "130827102", "key")], "office", T0)
    advance(chengde, "130827102", "start", "chief_yuerya", T0)
    record_checklist(chengde, "130827102", frozenset({"key", "provincial_demo"}), actor="chief_yuerya", now=T0)
    with chengde.engine.begin() as conn:
        conn.execute(text("INSERT INTO notices (id, key, recipient, recipient_name, channel, kind, language, subject, "
                          "status, attempts, ambiguous, created_at) VALUES ('n1', :k, 'wang@kc.gov.cn', '王站长', 'file', "
                          "'reminder', 'zh', '提醒', 'sent', 1, 0, '2015-03-24T00:30:00Z')"), {"k": "k" * 64})
        conn.execute(text("INSERT INTO notice_items (notice_id, recipient, unit_code, milestone, rung, rung_date) "
                          "VALUES ('n1', 'wang@kc.gov.cn', '130827102', 'provincial_demo', 'd-7', '2015-03-24')"))

    def snapshot(states_sql: str) -> dict:
        with chengde.engine.connect() as conn:
            return {"states": conn.execute(text(states_sql)).all(),
                    "values": conn.execute(text("SELECT unit_code, item, value, recorded_at, recorded_by FROM "
                                                "checklist_values ORDER BY unit_code, item")).all(),
                    "cohorts": conn.execute(text("SELECT unit_code, cohort FROM unit_cohorts ORDER BY 1, 2")).all(),
                    "items": conn.execute(text("SELECT notice_id, recipient, unit_code, milestone, rung, rung_date "
                                               "FROM notice_items")).all()}

    def intact() -> None:
        with chengde.read() as session:
            v = verify(session)
        assert v.ok and v.reason is None, v.reason

    at_0008 = "SELECT unit_code, state, version, changed_at, changed_by FROM unit_states ORDER BY unit_code"
    at_0007 = "SELECT code, state, version, changed_at, changed_by FROM units ORDER BY code"
    intact()
    before = snapshot(at_0008)
    migrate(chengde, "0007", down=True)
    assert snapshot(at_0007) == before
    migrate(chengde, "0008")
    assert snapshot(at_0008) == before
    with chengde.engine.connect() as conn:
        assert conn.execute(text("SELECT DISTINCT campaign_no FROM unit_states")).scalars().all() == [1]
        assert conn.execute(text("SELECT DISTINCT campaign_no FROM checklist_values")).scalars().all() == [1]
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE unit_code IS NOT NULL "
                                 "AND campaign_no IS NULL")).scalar() == 0
    intact()

    # a second round on the same city (回头看), from a copy of the campaign's file under an id of its own
    from anjian.states.campaign import builtin_text

    again = tmp_path / "chengde-2017.toml"
    again.write_text(builtin_text("chengde-2014").replace('id = "chengde-2014"', 'id = "chengde-2017"'), "utf-8")
    campaigns.add(chengde, str(again), "admin", T0)
    intact()
    with pytest.raises(RuntimeError, match="several campaigns"):
        migrate(chengde, "0007", down=True)
