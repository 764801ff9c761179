"""The audit log: the hash chain over every change, `anjian audit verify` naming the first tampered row
(exit 6), and `anjian history` with its filters and JSON shape."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text
from support import at, drop_audit_guards

from anjian.workflow.services.advance import advance
from anjian.workflow.services.checklist import DesignateRow, designate, record
from anjian.workflow.store import audit, integrity
from anjian.workflow.store.models import AuditRow

KUANCHENG = "130827"
YUERYA = "130827102"
TOWN = "130827100"
GAOSITAI = "130821106"  # 承德县高寺台镇


@pytest.fixture
def english(monkeypatch):
    """The findings of this test are asserted in English (ANJIAN_LANG=en)."""
    monkeypatch.setenv("ANJIAN_LANG", "en")


@pytest.fixture
def busy(chengde, fill_checklist, tmp_path):
    """A database with a few dozen changes by several officials over several days."""
    plan = tmp_path / "plan.pdf"
    plan.write_bytes(b"plan")
    record(chengde, KUANCHENG, "county.leadership_group", "组长 张三", "county", at("2014-12-20T09:00"))
    advance(chengde, KUANCHENG, "submit_plan", "county", at("2014-12-20T10:00"), evidence=(str(plan),))
    designate(chengde, [DesignateRow(0, TOWN, "key")], "county", at("2014-12-21T09:00"))
    advance(chengde, YUERYA, "start", "chief", at("2014-12-22T09:00"))
    fill_checklist(chengde, YUERYA, frozenset({"provincial_demo"}), now=at("2014-12-23T09:00"))
    advance(chengde, YUERYA, "apply", "chief", at("2015-01-05T09:00"), note="申请验收")
    advance(chengde, YUERYA, "reject", "inspector", at("2015-01-10T09:00"), note="台账不全")
    advance(chengde, YUERYA, "resubmit", "chief", at("2015-01-20T09:00"))
    advance(chengde, YUERYA, "accept", "inspector", at("2015-02-01T07:00"), note="合格")
    advance(chengde, GAOSITAI, "start", "other", at("2015-02-02T09:00"))
    drop_audit_guards(chengde)  # the tests below tamper as the database's owner would
    return chengde


def verify_cli(cli):
    return cli("audit", "verify")


def rows(db) -> list[AuditRow]:
    with db.read() as s:
        return list(s.scalars(select(AuditRow).order_by(AuditRow.seq)))


def test_the_database_refuses_to_change_or_remove_audit_rows(chengde):
    """With its triggers in place, the database itself refuses UPDATE and DELETE on audit_log."""
    from sqlalchemy.exc import DBAPIError

    for sql in ("UPDATE audit_log SET note = 'x' WHERE seq = 1", "DELETE FROM audit_log WHERE seq = 1"):
        with pytest.raises(DBAPIError, match="append-only"):
            raw(chengde, sql)
    assert len(rows(chengde)) >= 2


def raw(db, sql: str, **params) -> None:
    """Tamper with the table behind the application's back."""
    with db.engine.begin() as conn:
        conn.execute(text(sql), params)


# -- the chain ---------------------------------------------------------------------------------------
def test_chain_verifies_after_many_actions(busy, cli):
    """After records, designations and transitions by several officials the chain verifies: exit 0."""
    n = len(rows(busy))
    assert n > 50
    r = verify_cli(cli)
    assert r.exit_code == 0, r.output
    assert f"{n} 条记录" in r.output and f"#{n}" in r.output


def test_each_row_links_to_the_one_before(busy):
    """Sequence numbers run from 1 without gaps and each row names its predecessor's hash."""
    all_rows = rows(busy)
    assert [r.seq for r in all_rows] == list(range(1, len(all_rows) + 1))
    assert all_rows[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(all_rows, all_rows[1:], strict=False))
    with busy.read() as s:
        assert integrity.verify(s).ok


def test_empty_log_verifies(fresh_db):
    """A log with no rows is a valid (empty) chain."""
    fresh_db.upgrade()
    with fresh_db.read() as s:
        v = integrity.verify(s)
    assert v.ok and v.rows == 0 and v.head_hash == audit.GENESIS


@pytest.mark.usefixtures("english")
def test_edited_note_is_named(busy, cli):
    """UPDATE of one row's note makes verify exit 6 naming that row."""
    seq = next(r.seq for r in rows(busy) if r.note == "台账不全")
    raw(busy, "UPDATE audit_log SET note = :n WHERE seq = :s", n="资料齐全", s=seq)
    r = verify_cli(cli)
    assert r.exit_code == 6
    assert f"audit row {seq}:" in r.output and "modified" in r.output


@pytest.mark.usefixtures("english")
def test_edited_actor_of_the_first_row_is_named(busy, cli):
    """Even the first row (the registry load) is covered."""
    raw(busy, "UPDATE audit_log SET actor = 'someone' WHERE seq = 1")
    r = verify_cli(cli)
    assert r.exit_code == 6
    assert "audit row 1:" in r.output


@pytest.mark.usefixtures("english")
def test_rehashed_edit_breaks_the_next_link(busy, cli):
    """Editing a row and recomputing its own hash still fails: the next row's link names it."""
    target = next(r for r in rows(busy) if r.action == "accept")
    forged = audit.row_hash(target.prev_hash, target.seq, target.at, "boss", target.unit_code, target.action,
                            target.from_state, target.to_state, target.note, target.evidence, target.detail)
    raw(busy, "UPDATE audit_log SET actor = 'boss', hash = :h WHERE seq = :s", h=forged, s=target.seq)
    r = verify_cli(cli)
    assert r.exit_code == 6
    assert f"audit row {target.seq + 1}:" in r.output


@pytest.mark.usefixtures("english")
def test_deleted_row_is_named(busy, cli):
    """DELETE of a row in the middle makes verify exit 6 naming the missing seq."""
    seq = next(r.seq for r in rows(busy) if r.action == "reject")
    raw(busy, "DELETE FROM audit_log WHERE seq = :s", s=seq)
    r = verify_cli(cli)
    assert r.exit_code == 6
    assert f"audit row {seq}:" in r.output and "missing" in r.output


@pytest.mark.usefixtures("english")
def test_swapped_contents_are_named(busy, cli):
    """Swapping two rows' contents (keeping seq and hashes) names the earlier row."""
    all_rows = rows(busy)
    a, b = all_rows[10], all_rows[20]
    cols = ("at", "actor", "unit_code", "action", "from_state", "to_state", "note", "evidence", "detail")
    sets = ", ".join(f"{c} = :{c}" for c in cols)
    with busy.engine.begin() as conn:
        for src, dst in ((b, a), (a, b)):
            conn.execute(text(f"UPDATE audit_log SET {sets} WHERE seq = :seq"),
                         {**{c: getattr(src, c) for c in cols}, "seq": dst.seq})
    r = verify_cli(cli)
    assert r.exit_code == 6
    assert f"audit row {a.seq}:" in r.output


@pytest.mark.usefixtures("english")
def test_reordered_rows_are_named(busy, cli):
    """Swapping two neighbouring rows whole (their seq exchanged) names the first position touched."""
    all_rows = rows(busy)
    a, b = all_rows[5].seq, all_rows[6].seq
    with busy.engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET seq = -1 WHERE seq = :a"), {"a": a})
        conn.execute(text("UPDATE audit_log SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
        conn.execute(text("UPDATE audit_log SET seq = :b WHERE seq = -1"), {"b": b})
    r = verify_cli(cli)
    assert r.exit_code == 6
    assert f"audit row {a}:" in r.output and "link" in r.output


@pytest.mark.usefixtures("english")
def test_inserted_row_is_named(busy, cli):
    """A row appended by hand with a made-up hash is named."""
    last = rows(busy)[-1]
    raw(busy, "INSERT INTO audit_log (seq, at, actor, unit_code, action, from_state, to_state, note, evidence, "
              "detail, prev_hash, hash) VALUES (:s, :at, 'x', :u, 'accept', 'applied', 'accepted', 'ok', '[]', '{}', "
              ":p, :h)", s=last.seq + 1, at=last.at, u=TOWN, p=last.hash, h="f" * 64)
    r = verify_cli(cli)
    assert r.exit_code == 6
    assert f"audit row {last.seq + 1}:" in r.output


def test_verify_service_names_the_first_of_two_edits(busy):
    """With two rows edited, the first is the one named."""
    raw(busy, "UPDATE audit_log SET note = 'x' WHERE seq IN (7, 30)")
    with busy.read() as s:
        v = integrity.verify(s)
    assert (v.ok, v.bad_seq) == (False, 7)


# -- history ---------------------------------------------------------------------------------------
def history_json(cli, *args, **kw) -> list[dict]:
    r = cli("history", *args, "--format", "json", **kw)
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_history_json_shape(busy, cli):
    """Each history row has the contract's keys; transitions carry from/to state and note."""
    data = history_json(cli, YUERYA)
    for h in data:
        assert {"seq", "at", "actor", "unit", "trigger", "from_state", "to_state", "note", "evidence"} <= set(h)
        assert all({"path", "sha256"} <= set(e) for e in h["evidence"])
    moves = [(h["trigger"], h["from_state"], h["to_state"], h["actor"], h["note"])
             for h in data if h["trigger"] != "record"]
    assert moves == [
        ("start", "not_started", "building", "chief", None),
        ("apply", "building", "applied", "chief", "申请验收"),
        ("reject", "applied", "rectifying", "inspector", "台账不全"),
        ("resubmit", "rectifying", "applied", "chief", None),
        ("accept", "applied", "accepted", "inspector", "合格"),
    ]
    assert {h["unit"] for h in data} == {YUERYA}
    assert [h["seq"] for h in data] == sorted(h["seq"] for h in data)


def test_history_of_a_unit_by_name(busy, cli):
    """UNIT may be a name; a county's own history holds its record and plan."""
    data = history_json(cli, "宽城满族自治县")
    assert [h["trigger"] for h in data] == ["record", "submit_plan"]
    assert data[1]["evidence"][0]["path"].endswith("plan.pdf")


def test_history_children_of_a_county(busy, cli):
    """--children adds the county's townships, not other counties'."""
    data = history_json(cli, KUANCHENG, "--children")
    units = {h["unit"] for h in data}
    assert {KUANCHENG, YUERYA, TOWN} <= units
    assert GAOSITAI not in units


def test_history_by_actor(busy, cli):
    """--actor keeps only that official's rows."""
    data = history_json(cli, "--actor", "inspector")
    assert [h["trigger"] for h in data] == ["reject", "accept"]


def test_history_since_is_a_shanghai_date(busy, cli):
    """--since 2015-02-01 starts at midnight in Shanghai: the accept at 07:00 (23:00 UTC the day before) is in."""
    data = history_json(cli, "--since", "2015-02-01")
    assert [(h["unit"], h["trigger"]) for h in data] == [(YUERYA, "accept"), (GAOSITAI, "start")]


def test_history_filters_combine(busy, cli):
    """UNIT, --since and --actor together narrow to their intersection."""
    data = history_json(cli, YUERYA, "--since", "2015-01-06", "--actor", "chief")
    assert [h["trigger"] for h in data] == ["resubmit"]


def test_history_of_everything_starts_with_the_loads(busy, cli):
    """Without filters the first rows are the registry and campaign loads, unit null."""
    data = history_json(cli)
    assert [(h["trigger"], h["unit"]) for h in data[:2]] == [("registry_load", None), ("campaign_load", None)]
    assert len(data) == len(rows(busy))


def test_history_table(busy, cli):
    """The table shows each row with its official and a short description, and a count."""
    r = cli("history", YUERYA, "--actor", "inspector")
    assert r.exit_code == 0
    assert "台账不全" in r.output and "合格" in r.output
    assert "共 2 条" in r.output


@pytest.mark.parametrize(("args", "words"), [
    (("没有这个镇",), "名录中没有这个单位"),
    (("宽城",), "对应 2 个单位"),
    (("--since", "2015-02-30"), "--since"),
])
def test_history_bad_input(busy, cli, args, words):
    """An unknown or ambiguous unit, or a bad --since, exits 2."""
    r = cli("history", *args)
    assert r.exit_code == 2
    assert words in r.output


def test_history_with_no_match_is_empty(busy, cli):
    """A filter that matches nothing gives an empty list, exit 0."""
    assert history_json(cli, "--actor", "nobody") == []


def test_refusal_writes_no_audit_row(chengde, cli):
    """A refused transition leaves the chain untouched (same head)."""
    with chengde.read() as s:
        before = audit.head(s)
    assert cli("advance", YUERYA, "apply").exit_code == 3
    with chengde.read() as s:
        assert audit.head(s) == before


def test_audit_times_are_utc(busy):
    """Rows store UTC: the accept at 07:00 Shanghai on 2015-02-01 is 23:00 UTC on 2015-01-31."""
    accept = next(r for r in rows(busy) if r.action == "accept")
    assert accept.at == "2015-01-31T23:00:00.000000Z"


def evidence_rows(db) -> list[tuple]:
    with db.engine.connect() as conn:
        return conn.execute(text("SELECT seq, position, unit_code, subject, path, sha256 FROM evidence ORDER BY seq")).all()


def test_evidence_is_kept_in_its_own_table_beside_the_log(busy):
    """Each attached file is a row of `evidence` naming its audit row, unit and trigger; the log agrees."""
    (row,) = [r for r in rows(busy) if r.evidence != "[]"]
    (file,) = json.loads(row.evidence)
    assert evidence_rows(busy) == [(row.seq, 0, KUANCHENG, "submit_plan", file["path"], file["sha256"])]


@pytest.mark.parametrize("sql, words", [
    ("UPDATE evidence SET sha256 = '{}'".format("f" * 64), "sha256"),
    ("DELETE FROM evidence", "lacks it"),
    ("INSERT INTO evidence (seq, position, unit_code, subject, path, sha256) "
     "SELECT seq, 1, unit_code, subject, path || '.bak', sha256 FROM evidence", "no such file"),
])
@pytest.mark.usefixtures("english")
def test_an_evidence_table_changed_behind_the_log_is_named(busy, cli, sql, words):
    """`audit verify` rebuilds the evidence table from the log and names the audit row where they first disagree."""
    (seq,) = {r[0] for r in evidence_rows(busy)}
    raw(busy, sql)
    r = verify_cli(cli)
    assert r.exit_code == 6, r.output
    assert f"audit row {seq}:" in r.output and words in r.output and "kind: evidence" in r.output
