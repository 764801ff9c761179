"""`anjian advance`: one trigger, or a CSV batch; every exit code of the contract, and nothing written
on any refusal (but, for an exit 4, the audit row that records the refusal itself)."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select
from support import T0, audit_count, snapshot

from anjian.workflow.store.models import AuditRow, Unit

KUANCHENG = "130827"  # 宽城满族自治县
YUERYA = "130827102"  # 宽城峪耳崖镇, a provincial demonstration township
TOWN = "130827100"  # 宽城镇
LONGXUMEN = "130827101"  # 龙须门镇


@pytest.fixture
def english(monkeypatch):
    """The messages of this test are asserted in English (ANJIAN_LANG=en)."""
    monkeypatch.setenv("ANJIAN_LANG", "en")


def only_denials_since(db, before: dict) -> list[AuditRow]:
    """After an exit 4 (`before` a snapshot): nothing but the audit log changed, and its only new rows are
    `denied` ones."""
    after = snapshot(db)
    assert {k: v for k, v in after.items() if k != "audit_log"} == {k: v for k, v in before.items() if k != "audit_log"}
    with db.read() as s:
        rows = list(s.scalars(select(AuditRow).where(AuditRow.seq > before["audit_log"][0]).order_by(AuditRow.seq)))
    assert rows and {r.action for r in rows} == {"denied"}
    return rows


def state_of(db, code: str) -> str:
    with db.read() as s:
        return s.get(Unit, code).state


@pytest.fixture
def applied(chengde, fill_checklist):
    """宽城镇 started, its checklist complete, and applied for acceptance by `li`, a county official of
    宽城 — a role that may also accept, so only separation of duties stops him accepting his own."""
    from anjian.workflow.services.advance import advance

    advance(chengde, TOWN, "start", "li", T0)
    fill_checklist(chengde, TOWN)
    advance(chengde, TOWN, "apply", "li", T0)
    return chengde


# -- exit 0 ----------------------------------------------------------------------------------------
def test_start_moves_the_township_and_reports_it(chengde, cli):
    """`advance UNIT start` exits 0, names the unit and both states, and bumps the version."""
    r = cli("advance", "宽城峪耳崖镇", "start")
    assert r.exit_code == 0, r.output
    assert "峪耳崖镇（130827102）" in r.output
    assert "未开展 → 创建中" in r.output
    assert "版本 2" in r.output
    assert state_of(chengde, YUERYA) == "building"


def test_json_output_carries_the_transition(chengde, cli):
    """`--format json` gives the unit, trigger, both states, the audit seq and the new version."""
    before = audit_count(chengde)
    r = cli("advance", YUERYA, "start", "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["code"] == YUERYA
    assert (data["trigger"], data["from_state"], data["to_state"]) == ("start", "not_started", "building")
    assert data["seq"] == before + 1
    assert data["version"] == 2


def test_dash_in_a_trigger_name_is_accepted(chengde, cli, tmp_path):
    """The CLI accepts `-` for `_` in identifiers: `submit-plan` is `submit_plan`."""
    plan = tmp_path / "plan.pdf"
    plan.write_bytes(b"%PDF plan")
    assert cli("record", KUANCHENG, "county.leadership_group", "组长 张三").exit_code == 0
    r = cli("advance", KUANCHENG, "submit-plan", "--evidence", str(plan), user="li")
    assert r.exit_code == 0, r.output
    assert state_of(chengde, KUANCHENG) == "demonstration"


def test_kuancheng_with_a_township_trigger_means_the_town(chengde, cli):
    """宽城 names both the county and 宽城镇; only a township has `start`, so the name is narrowed to 宽城镇."""
    r = cli("advance", "宽城", "start")
    assert r.exit_code == 0, r.output
    assert "宽城镇（130827100）" in r.output
    assert state_of(chengde, TOWN) == "building"
    assert state_of(chengde, KUANCHENG) == "mobilization"


# -- exit 2 ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("unit", "trigger", "words"), [
    ("不存在镇", "start", "名录中没有这个单位"),
    ("承德", "start", "对应 2 个单位"),  # 承德市 and 承德县; neither has `start`, so nothing narrows it
    ("宽城", "no_such_trigger", "对应 2 个单位"),  # an unknown trigger narrows nothing
    (YUERYA, "no_such_trigger", "乡镇没有"),
    (YUERYA, "submit_plan", "乡镇没有"),
    (KUANCHENG, "start", "县区没有"),
])
def test_bad_unit_or_trigger_is_bad_input(chengde, cli, unit, trigger, words):
    """An unknown or ambiguous unit, an unknown trigger or one of another level exits 2 and writes nothing."""
    before = snapshot(chengde)
    r = cli("advance", unit, trigger)
    assert r.exit_code == 2, r.output
    assert words in r.output
    assert snapshot(chengde) == before


def test_ambiguous_unit_lists_the_candidates(chengde, cli):
    """An ambiguous name is never guessed: each candidate is listed with its code."""
    r = cli("advance", "承德", "start")
    assert r.exit_code == 2
    assert "130800" in r.output and "130821" in r.output


def test_wrong_level_lists_the_valid_triggers(chengde, cli):
    """A county trigger on a township names the township triggers that do exist."""
    r = cli("advance", YUERYA, "certify_full_coverage")
    assert r.exit_code == 2
    for t in ("start", "apply", "accept", "reject", "resubmit", "revoke"):
        assert t in r.output


@pytest.mark.parametrize("now", [
    "2015-02-29",  # not a leap year
    "2015-13-01",
    "2015-01-01T24:30",
    "２０１５-01-01",  # full-width digits: refused, never read as a number
    "2015-1-1",
    "tomorrow",
])
def test_malformed_now_is_bad_input(chengde, cli, now):
    """A --now that is not a real ISO 8601 time exits 2, names the option, and writes nothing."""
    before = snapshot(chengde)
    r = cli("--now", now, "advance", YUERYA, "start", now=None)
    assert r.exit_code == 2, r.output
    assert "--now" in r.output
    assert snapshot(chengde) == before


def test_malformed_anjian_now_is_bad_input(chengde, cli, monkeypatch):
    """ANJIAN_NOW is checked like --now."""
    monkeypatch.setenv("ANJIAN_NOW", "2015-02-30")
    r = cli("advance", YUERYA, "start", now=None)
    assert r.exit_code == 2
    assert "ANJIAN_NOW" in r.output
    assert state_of(chengde, YUERYA) == "not_started"


@pytest.mark.usefixtures("english")
def test_missing_evidence_file_is_bad_input(chengde, cli, tmp_path):
    """An --evidence path that does not exist exits 2 naming it, before anything is written."""
    before = snapshot(chengde)
    missing = tmp_path / "nowhere.pdf"
    r = cli("advance", YUERYA, "start", "--evidence", str(missing))
    assert r.exit_code == 2
    assert "nowhere.pdf" in r.output and "no such file" in r.output
    assert snapshot(chengde) == before


@pytest.mark.usefixtures("english")
def test_evidence_directory_is_bad_input(chengde, cli, tmp_path):
    """An --evidence path that is a directory exits 2 saying so."""
    before = snapshot(chengde)
    r = cli("advance", YUERYA, "start", "--evidence", str(tmp_path))
    assert r.exit_code == 2
    assert "is a directory" in r.output
    assert snapshot(chengde) == before


def test_no_unit_and_no_file_is_usage_error(chengde, cli):
    """`advance` with neither UNIT TRIGGER nor --file exits 2 with an example."""
    r = cli("advance")
    assert r.exit_code == 2
    assert "单位 操作" in r.output


# -- exit 3 ----------------------------------------------------------------------------------------
def test_apply_with_incomplete_checklist_lists_every_missing_item(chengde, cli, fill_checklist):
    """A refused apply exits 3 and prints each missing item id, and only those."""
    skipped = ("six.vehicle", "staff.part_time", "ledger.meetings", "innovation.model")
    assert cli("advance", YUERYA, "start").exit_code == 0
    fill_checklist(chengde, YUERYA, skip=skipped)
    before = snapshot(chengde)
    r = cli("advance", YUERYA, "apply")
    assert r.exit_code == 3, r.output
    for item in skipped:
        assert f"（{item}）" in r.output
    assert r.output.count("  - ") == len(skipped)
    assert snapshot(chengde) == before


def test_trigger_from_the_wrong_state_is_refused(chengde, cli):
    """`accept` on a township that has not applied exits 3 naming the current and required state."""
    before = snapshot(chengde)
    r = cli("advance", YUERYA, "accept", "--note", "合格", user="inspector")
    assert r.exit_code == 3, r.output
    assert "未开展" in r.output and "已申请验收" in r.output
    assert snapshot(chengde) == before


def test_accept_without_note_is_refused(applied, cli):
    """An inspector's acceptance needs an opinion: without --note it exits 3 asking for it."""
    before = snapshot(applied)
    r = cli("advance", TOWN, "accept", user="inspector")
    assert r.exit_code == 3
    assert "验收意见" in r.output and "--note" in r.output
    assert snapshot(applied) == before


def test_blank_note_counts_as_no_note(applied, cli):
    """A note of white space alone is no note."""
    r = cli("advance", TOWN, "accept", "--note", "   ", user="inspector")
    assert r.exit_code == 3
    assert state_of(applied, TOWN) == "applied"


def test_submit_plan_lists_every_unmet_reason(chengde, cli):
    """A county with neither plan file nor leadership group is told both reasons at once."""
    before = snapshot(chengde)
    r = cli("advance", KUANCHENG, "submit_plan", user="li")
    assert r.exit_code == 3, r.output
    assert "--evidence" in r.output
    assert "county.leadership_group" in r.output
    assert snapshot(chengde) == before


# -- exit 4: separation of duties --------------------------------------------------------------------
def test_applicant_cannot_accept_own_application(applied, cli):
    """The official who applied may not accept: exit 4 (separation of duties); only the refusal is audited."""
    before = snapshot(applied)
    r = cli("advance", TOWN, "accept", "--note", "合格", user="li")
    assert r.exit_code == 4, r.output
    assert "申请人以外" in r.output and "li 提出" in r.output
    assert len(only_denials_since(applied, before)) == 1


def test_applicant_cannot_reject_own_application(applied, cli):
    """Rejection is an inspection outcome too: the applicant may not give it (exit 4); only the refusal is audited."""
    before = snapshot(applied)
    r = cli("advance", TOWN, "reject", "--note", "台账不全", user="li")
    assert r.exit_code == 4, r.output
    assert "申请人以外" in r.output
    assert len(only_denials_since(applied, before)) == 1
    ok = cli("advance", TOWN, "reject", "--note", "台账不全", user="inspector")
    assert ok.exit_code == 0, ok.output


def test_applicant_without_note_hears_every_reason(applied, cli):
    """Refused for two reasons at once (separation of duties and no note), both are printed."""
    r = cli("advance", TOWN, "accept", user="li")
    assert r.exit_code == 4, r.output
    assert "申请人以外" in r.output
    assert "验收意见" in r.output


def test_another_official_accepts(applied, cli):
    """Someone other than the applicant, with a note, accepts: exit 0 and the township is accepted."""
    r = cli("advance", TOWN, "accept", "--note", "资料齐全，现场核查合格", user="inspector")
    assert r.exit_code == 0, r.output
    assert "已申请验收 → 已达标" in r.output
    assert state_of(applied, TOWN) == "accepted"


# -- evidence --------------------------------------------------------------------------------------
def test_evidence_is_hashed_into_history_and_kept_in_the_store(chengde, cli, tmp_path):
    """The plan file's sha256 lands in the history JSON, and a copy sits in the evidence store."""
    from anjian.workflow.settings import resolve

    plan = tmp_path / "宽城县推进方案.pdf"
    body = "宽城满族自治县乡镇安全监管规范化建设推进方案".encode() * 100
    plan.write_bytes(body)
    digest = hashlib.sha256(body).hexdigest()
    assert cli("record", KUANCHENG, "county.leadership_group", "组长 张三").exit_code == 0
    r = cli("advance", KUANCHENG, "submit_plan", "--evidence", str(plan), user="li")
    assert r.exit_code == 0, r.output

    h = cli("history", KUANCHENG, "--format", "json")
    assert h.exit_code == 0
    last = json.loads(h.stdout)[-1]
    assert last["trigger"] == "submit_plan"
    assert [(e["path"], e["sha256"]) for e in last["evidence"]] == [(str(plan.resolve()), digest)]

    kept = resolve().evidence_dir / digest[:2] / digest
    assert kept.read_bytes() == body


def test_evidence_store_location(chengde, cli, tmp_path, db_url):
    """The store is `evidence` beside an SQLite file, and under ANJIAN_HOME for a server database."""
    from anjian.workflow.settings import resolve

    home = tmp_path if db_url.startswith("sqlite:///") else tmp_path / "home"
    assert resolve().evidence_dir == home / "evidence"


def test_refused_transition_records_no_evidence(chengde, cli, tmp_path):
    """A refused submit_plan records nothing: the database is as it was. Its file was copied into the
    store before the write lock (issue 12) and stays there, pointed to by no row: harmless in a store
    addressed by content, and not removed, since another command may meanwhile have found it there."""
    plan = tmp_path / "plan.pdf"
    plan.write_bytes(b"draft")
    before = snapshot(chengde)
    r = cli("advance", KUANCHENG, "submit_plan", "--evidence", str(plan), user="li")
    assert r.exit_code == 3, r.output
    assert snapshot(chengde) == before


def test_several_evidence_files_are_all_recorded(chengde, cli, tmp_path):
    """--evidence is repeatable; each file is recorded with its own hash."""
    files = []
    for i in range(3):
        f = tmp_path / f"photo{i}.jpg"
        f.write_bytes(f"photo {i}".encode())
        files += ["--evidence", str(f)]
    r = cli("advance", YUERYA, "start", *files)
    assert r.exit_code == 0
    h = json.loads(cli("history", YUERYA, "--format", "json").stdout)
    assert [e["sha256"] for e in h[-1]["evidence"]] == [
        hashlib.sha256(f"photo {i}".encode()).hexdigest() for i in range(3)]


# -- batch -----------------------------------------------------------------------------------------
def write_csv(tmp_path, text: str, name: str = "batch.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_batch_applies_every_row(chengde, cli, tmp_path):
    """A batch of good rows applies them all in one go and says how many."""
    f = write_csv(tmp_path, f"unit,trigger,note\n{YUERYA},start,\n{TOWN},start,开始\n{LONGXUMEN},start,\n")
    r = cli("advance", "--file", f)
    assert r.exit_code == 0, r.output
    assert "已执行 3 / 3 行" in r.output
    assert {state_of(chengde, c) for c in (YUERYA, TOWN, LONGXUMEN)} == {"building"}


def test_batch_with_bad_rows_writes_nothing_and_names_each_line(chengde, cli, tmp_path):
    """All or nothing: a bad unit on one line and an unknown trigger on another exit 2, every bad
    line is named, and the good rows are not applied either."""
    before = snapshot(chengde)
    f = write_csv(tmp_path, f"unit,trigger,note\n{YUERYA},start,\n没有这个镇,start,\n{TOWN},fly,\n")
    r = cli("advance", "--file", f)
    assert r.exit_code == 2, r.output
    assert "第 3 行" in r.output and "没有这个镇" in r.output
    assert "第 4 行" in r.output and "fly" in r.output
    assert "第 2 行" not in r.output
    assert snapshot(chengde) == before


def test_batch_with_only_refusals_exits_3(chengde, cli, tmp_path):
    """Rows that are well formed but refused make the batch exit 3, each with its reasons (by a county
    official of 宽城, who may fire every one of them there)."""
    before = snapshot(chengde)
    f = write_csv(tmp_path, f"unit,trigger,note\n{YUERYA},start,\n{TOWN},apply,\n{LONGXUMEN},accept,\n")
    r = cli("advance", "--file", f, user="li")
    assert r.exit_code == 3, r.output
    assert "第 3 行" in r.output and "第 4 行" in r.output
    assert "整批未写入" in r.output
    assert snapshot(chengde) == before


def test_batch_partial_applies_passing_rows_and_reports_the_rest(chengde, cli, tmp_path):
    """With --partial the good rows are written and the bad ones reported with their lines and count; exit 0
    since rows were written (issue 13 point 9)."""
    f = write_csv(tmp_path, f"unit,trigger,note\n{YUERYA},start,\n{TOWN},apply,\n{LONGXUMEN},start,\n没有这个镇,start,\n")
    r = cli("advance", "--file", f, "--partial")
    assert r.exit_code == 0, r.output
    assert "2 行未执行" in r.stderr
    assert "已执行 2 / 4 行" in r.output
    assert "第 3 行" in r.output and "第 5 行" in r.output
    assert state_of(chengde, YUERYA) == "building"
    assert state_of(chengde, LONGXUMEN) == "building"
    assert state_of(chengde, TOWN) == "not_started"


def test_batch_partial_with_nothing_applied_exits_with_the_refusals_code(chengde, cli, tmp_path):
    """--partial where no row passes exits 3 (refused), as nothing was written."""
    f = write_csv(tmp_path, f"unit,trigger,note\n{TOWN},apply,\n")
    r = cli("advance", "--file", f, "--partial")
    assert r.exit_code == 3, r.output
    assert "第 2 行" in r.output


def test_batch_partial_with_some_refusals_exits_0(chengde, cli, tmp_path):
    """--partial with refused rows (no bad input) exits 0 after applying the rest, the problems still in JSON."""
    f = write_csv(tmp_path, f"unit,trigger,note\n{YUERYA},start,\n{TOWN},apply,\n")
    r = cli("advance", "--file", f, "--partial", "--format", "json")
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert [t["code"] for t in out["applied"]] == [YUERYA]
    assert [(p["line"], p["kind"]) for p in out["problems"]] == [(3, "refused")]


def test_batch_later_row_sees_earlier_row(chengde, cli, tmp_path, fill_checklist):
    """start then apply of the same township in one batch works: the second row sees the first."""
    fill_checklist(chengde, YUERYA)
    f = write_csv(tmp_path, f"unit,trigger,note\n{YUERYA},start,\n{YUERYA},apply,申请验收\n")
    r = cli("advance", "--file", f)
    assert r.exit_code == 0, r.output
    assert state_of(chengde, YUERYA) == "applied"
    h = json.loads(cli("history", YUERYA, "--format", "json").stdout)
    assert [(x["trigger"], x["to_state"]) for x in h[-2:]] == [("start", "building"), ("apply", "applied")]


def test_batch_same_actor_cannot_apply_and_accept(chengde, cli, tmp_path, fill_checklist):
    """Separation of duties holds inside one batch: applying and accepting in one file is refused (exit 4)."""
    fill_checklist(chengde, YUERYA)
    before = snapshot(chengde)
    f = write_csv(tmp_path, f"unit,trigger,note\n{YUERYA},start,\n{YUERYA},apply,\n{YUERYA},accept,合格\n")
    r = cli("advance", "--file", f, user="li")  # a county official may apply and accept, never both
    assert r.exit_code == 4, r.output
    assert "第 4 行" in r.output and "申请人以外" in r.output
    assert len(only_denials_since(chengde, before)) == 1


def test_batch_with_a_bad_header_is_bad_input(chengde, cli, tmp_path):
    """A file without the `trigger` column exits 2 naming the header problem."""
    f = write_csv(tmp_path, f"unit,action\n{YUERYA},start\n")
    r = cli("advance", "--file", f)
    assert r.exit_code == 2
    assert "第 1 行：缺少列 trigger（操作）" in r.output
    assert state_of(chengde, YUERYA) == "not_started"


def test_batch_file_and_unit_together_is_usage_error(chengde, cli, tmp_path):
    """--file takes everything from the file; a UNIT beside it is refused."""
    f = write_csv(tmp_path, f"unit,trigger,note\n{YUERYA},start,\n")
    r = cli("advance", YUERYA, "start", "--file", f)
    assert r.exit_code == 2
    assert state_of(chengde, YUERYA) == "not_started"


def test_batch_expect_version_is_refused(chengde, cli, tmp_path):
    """--expect-version does not apply to a batch: giving it with --file is a usage error, not ignored."""
    f = write_csv(tmp_path, f"unit,trigger,note\n{YUERYA},start,\n")
    r = cli("advance", "--file", f, "--expect-version", "7")
    assert r.exit_code == 2
    assert "--expect-version" in r.output
    assert state_of(chengde, YUERYA) == "not_started"


def test_partial_without_file_is_usage_error(chengde, cli):
    """--partial belongs to --file: with UNIT TRIGGER it is refused rather than ignored."""
    r = cli("advance", YUERYA, "start", "--partial")
    assert r.exit_code == 2
    assert "--partial" in r.output
    assert state_of(chengde, YUERYA) == "not_started"


def test_empty_batch_applies_nothing(chengde, cli, tmp_path):
    """A file with only its header applies nothing, exit 0, and says 0 of 0 rather than blaming rows."""
    before = snapshot(chengde)
    r = cli("advance", "--file", write_csv(tmp_path, "unit,trigger,note\n"))
    assert r.exit_code == 0
    assert "已执行 0 / 0 行" in r.output
    assert snapshot(chengde) == before


def test_batch_gbk_file_is_read(chengde, cli, tmp_path):
    """A CSV saved by Excel in GBK is read like UTF-8."""
    p = tmp_path / "gbk.csv"
    p.write_bytes("unit,trigger,note\n宽城峪耳崖镇,start,开始创建\n".encode("gbk"))
    r = cli("advance", "--file", str(p))
    assert r.exit_code == 0, r.output
    assert state_of(chengde, YUERYA) == "building"
    h = json.loads(cli("history", YUERYA, "--format", "json").stdout)
    assert h[-1]["note"] == "开始创建"
