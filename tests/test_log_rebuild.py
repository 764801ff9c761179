"""The whole state is in the log: `audit verify` rebuilds every table the log determines and names the
first disagreement; it refuses rows, even validly chained ones, that break a unit's continuity or go
back in time.

Each tampering below is what the database's owner could do with `sqlite3` or `psql`: the audit log is
left intact (or extended through `audit.append`, so every hash is valid), and only the log's own sense
can tell.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from support import at, drop_audit_guards

from anjian.workflow.engine.authz import Actor
from anjian.workflow.reminders.workdays import load_schedule
from anjian.workflow.services import contacts, officials
from anjian.workflow.services.advance import advance
from anjian.workflow.services.checklist import DesignateRow, designate, record
from anjian.workflow.store import audit
from anjian.workflow.store.integrity import verify

YUERYA = "130827102"  # 峪耳崖镇
TOWN = "130827100"  # 宽城镇
KUANCHENG = "130827"


@pytest.fixture
def kept(chengde, tmp_path):
    """A database where every kind of table the log determines was written through its service."""
    admin = Actor(officials.os_login(), "admin", "130800")
    record(chengde, YUERYA, "staff.full_time", "3", "chief", at("2014-12-16T09:00"))
    record(chengde, YUERYA, "staff.full_time", "4", "chief", at("2014-12-16T10:00"))
    designate(chengde, [DesignateRow(0, TOWN, "key"), DesignateRow(0, TOWN, "heavy_task")], "tester", at("2014-12-17T09:00"))
    designate(chengde, [DesignateRow(0, TOWN, "heavy_task", remove=True)], "tester", at("2014-12-17T10:00"))
    contacts.add(chengde, YUERYA, "王站长", "wang@example.gov.cn", None, "tester", at("2014-12-18T09:00"))
    contacts.add(chengde, YUERYA, "李干事", "li@example.gov.cn", None, "tester", at("2014-12-18T09:30"))
    contacts.remove(chengde, YUERYA, "李干事", "tester", at("2014-12-18T10:00"))
    officials.add(chengde, "chief_kc", "township_chief", TOWN, None, admin, at("2014-12-19T09:00"))
    officials.set_active(chengde, "chief_kc", False, admin, at("2014-12-19T10:00"))
    schedule = tmp_path / "2015.csv"
    schedule.write_text("date,workday,name\n2015-01-01,0,元旦\n2015-01-04,1,元旦调休\n2015-02-18,0,春节\n", "utf-8")
    load_schedule(chengde, str(schedule), Actor("tester", "city_office", "130800"), at("2014-12-20T09:00"))
    advance(chengde, YUERYA, "start", "chief", at("2014-12-21T09:00"))
    drop_audit_guards(chengde)
    return chengde


def raw(db, sql: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(sql))


def test_a_database_written_through_the_services_verifies(kept, cli):
    """Every table as the services left it is the one the log implies: exit 0, nothing undetermined."""
    r = cli("audit", "verify")
    assert r.exit_code == 0, r.output
    assert "注意" not in r.output
    with kept.read() as s:
        assert verify(s).notes == ()


TAMPERING = [
    # the attack of the issue: a checklist "completed" with sqlite3 and no audit row
    ("INSERT INTO checklist_values (unit_code, item, value, recorded_at, recorded_by) "
     f"VALUES ('{YUERYA}', 'ledger.inspections', '是', '2014-12-22T01:00:00.000000Z', 'chief')",
     f"checklist_values 表 {YUERYA} / ledger.inspections", "没有审计记录设定它"),
    (f"UPDATE checklist_values SET value = '9' WHERE unit_code = '{YUERYA}'",
     f"checklist_values 表 {YUERYA} / staff.full_time", "'9'"),
    (f"UPDATE checklist_values SET recorded_by = 'inspector' WHERE unit_code = '{YUERYA}'",
     f"checklist_values 表 {YUERYA} / staff.full_time", "'inspector'"),
    ("DELETE FROM checklist_values", f"checklist_values 表 {YUERYA} / staff.full_time", "（无此行）"),
    (f"INSERT INTO unit_cohorts (unit_code, cohort) VALUES ('{YUERYA}', 'county_demo')",
     f"unit_cohorts 表 {YUERYA} / county_demo", "没有审计记录设定它"),
    (f"INSERT INTO unit_cohorts (unit_code, cohort) VALUES ('{TOWN}', 'heavy_task')",
     f"unit_cohorts 表 {TOWN} / heavy_task", "最后由审计记录 #"),
    (f"DELETE FROM unit_cohorts WHERE unit_code = '{TOWN}'", f"unit_cohorts 表 {TOWN} / key", "（无此行）"),
    (f"DELETE FROM unit_cohorts WHERE unit_code = '{YUERYA}'", f"unit_cohorts 表 {YUERYA} / provincial_demo", "最后由审计记录 #1"),
    # a chief makes himself admin
    ("UPDATE officials SET role = 'admin' WHERE name = 'chief_yuerya'", "officials 表 chief_yuerya", "'admin'"),
    ("UPDATE officials SET active = 1 WHERE name = 'chief_kc'", "officials 表 chief_kc", "最后由审计记录 #"),
    ("UPDATE officials SET os_user = 'mallory' WHERE name = 'inspector'", "officials 表 inspector", "'mallory'"),
    ("INSERT INTO officials (name, role, unit_code, os_user, active, created_at, created_by) "
     "VALUES ('mallory', 'admin', '130800', 'mallory', 1, '2014-12-22T01:00:00.000000Z', 'admin')",
     "officials 表 mallory", "没有审计记录设定它"),
    ("DELETE FROM officials WHERE name = 'wang'", "officials 表 wang", "（无此行）"),
    ("UPDATE contacts SET webhook = 'http://169.254.169.254/x'", f"contacts 表 {YUERYA} / 王站长", "169.254.169.254"),
    (f"INSERT INTO contacts (unit_code, name, email, created_at) VALUES ('{YUERYA}', '李干事', 'x@example.com', "
     "'2014-12-22T01:00:00.000000Z')", f"contacts 表 {YUERYA} / 李干事", "最后由审计记录 #"),
    ("DELETE FROM contacts", f"contacts 表 {YUERYA} / 王站长", "（无此行）"),
    ("UPDATE contacts SET id = id + 100", f"contacts 表 {YUERYA} / 王站长", "审计日志推出"),
    ("UPDATE meta SET value = value || '\n# 改过' WHERE key = 'campaign'", "meta 表 campaign", "SHA-256"),
    ("UPDATE meta SET value = 'other' WHERE key = 'registry_name'", "meta 表 registry_name", "'other'"),
    ("INSERT INTO meta (key, value) VALUES ('drill', '1')", "meta 表 drill", "没有审计记录设定它"),
    ("DELETE FROM meta WHERE key = 'campaign_sha256'", "meta 表 campaign_sha256", "（无此行）"),
    ("UPDATE calendar_days SET workday = 1 WHERE day = '2015-02-18'", "calendar_days 表 2015-02-18", "(workday=1, "),
    ("INSERT INTO calendar_days (day, workday, name, source) VALUES ('2015-05-01', 1, NULL, 'x')",
     "calendar_days 表 2015-05-01", "没有审计记录设定它"),
    ("DELETE FROM calendar_days WHERE day = '2015-01-04'", "calendar_days 表 2015-01-04", "（无此行）"),
    (f"UPDATE unit_states SET state = 'applied' WHERE unit_code = '{YUERYA}'", f"unit {YUERYA}：units 表中的 state", "'building'"),
    (f"UPDATE unit_states SET state = 'building' WHERE unit_code = '{TOWN}'", f"unit {TOWN}：units 表中的 state", "'not_started'"),
    (f"UPDATE unit_states SET version = version + 1 WHERE unit_code = '{YUERYA}'", f"unit {YUERYA}：units 表中的 version", "4"),
    # a township moved into another county (whose officials then act for it), renamed, added, removed
    (f"UPDATE units SET parent_code = '130821' WHERE code = '{YUERYA}'", "units 表的登记字段", "改隶属"),
    (f"UPDATE units SET name = '假镇' WHERE code = '{TOWN}'", "units 表的登记字段", "改名"),
    ("INSERT INTO units (code, name, short_name, level, parent_code) "
     "VALUES ('130827999', '新镇', '新镇', 'township', '130827')", "units 表的登记字段", "增加"),
]


@pytest.mark.parametrize(("sql", "named", "words"), TAMPERING, ids=[t[1].split(" ")[0] + f"-{i}" for i, t in enumerate(TAMPERING)])
def test_a_table_changed_behind_the_log_is_named(kept, cli, sql, named, words):
    """A row of a table the log determines, inserted, changed or deleted directly, is named with its key and both values."""
    raw(kept, sql)
    r = cli("audit", "verify")
    assert r.exit_code == 6, r.output
    assert named in r.output and words in r.output, r.output


def append(db, *entries: audit.Entry) -> int:
    """Rows chained as `audit.append` chains them, every hash valid, as an attacker who knows the scheme
    would write them — but inserted directly, so that `append`'s own rule (a time never before the last
    row's) does not hold them back."""
    from sqlalchemy import insert

    from anjian.workflow.clock import utc_text
    from anjian.workflow.store.models import AuditRow

    with db.write() as s:
        seq, prev = audit.head(s)
        first = seq + 1
        for e in entries:
            seq += 1
            fields = (utc_text(e.at), str(e.actor), e.unit_code, e.action, e.from_state, e.to_state, e.note,
                      audit.canonical(list(e.evidence)), audit.canonical(e.detail))
            h = audit.row_hash(prev, seq, *fields)
            s.execute(insert(AuditRow).values(dict(zip(
                ("seq", "at", "actor", "unit_code", "action", "from_state", "to_state", "note", "evidence", "detail",
                 "prev_hash", "hash"), (seq, *fields, prev, h), strict=True))))
            prev = h
        return first


LATE = at("2015-01-01T09:00")


@pytest.mark.parametrize(("entry", "kind", "words"), [
    (audit.Entry(LATE, "inspector", "accept", YUERYA, "applied", "accepted", "合格"), "continuity", "第 "),
    (audit.Entry(LATE, "inspector", "accept", TOWN, "applied", "accepted", "合格"), "continuity", "初始状态 'not_started'"),
    (audit.Entry(LATE, "chief", "start", YUERYA, "building", "applied"), "continuity", "状态机没有从 'building' 经 start"),
    (audit.Entry(LATE, "chief", "submit_plan", YUERYA, "building", "demonstration"), "continuity", "状态机没有"),
    (audit.Entry(LATE, "chief", "apply", None, "building", "applied"), "continuity", "没有指明单位"),
    (audit.Entry(at("2014-12-21T08:59"), "chief", "record", YUERYA, "building", "building",
                 detail={"item": "staff.full_time", "value": "5", "previous": "4"}), "time", "时间不能倒退"),
])
def test_a_validly_chained_row_that_makes_no_sense_is_named(kept, cli, entry, kind, words):
    """A row appended with a valid hash whose transition does not follow, or whose time goes back, is named by its seq."""
    seq = append(kept, entry)
    r = cli("audit", "verify")
    assert r.exit_code == 6, r.output
    assert f"审计记录第 {seq} 条：" in r.output and f"类型：{kind}" in r.output and words in r.output, r.output


def test_a_move_by_the_other_machine_is_named(kept, cli):
    """A unit moved by a township trigger and then by a county one is named at the second."""
    append(kept, audit.Entry(LATE, "chief", "apply", YUERYA, "building", "applied"))
    seq = append(kept, audit.Entry(LATE, "chief", "submit_plan", YUERYA, "mobilization", "demonstration"))
    r = cli("audit", "verify")
    assert r.exit_code == 6 and f"审计记录第 {seq} 条：" in r.output and "township" in r.output, r.output


def test_the_first_of_two_nonsense_rows_is_named(kept):
    """With a continuity break and a later time break, the earlier row is the one named."""
    first = append(kept, audit.Entry(LATE, "inspector", "accept", YUERYA, "applied", "accepted"))
    append(kept, audit.Entry(LATE - dt.timedelta(days=30), "chief", "record", YUERYA, detail={"item": "x", "value": "1"}))
    with kept.read() as s:
        v = verify(s)
    assert (v.bad_seq, v.kind) == (first, "continuity")


def test_a_follow_up_row_with_its_table_change_verifies(kept, cli):
    """A transition that follows from the unit's last row, with the unit's state and version set as the service would, verifies."""
    append(kept, audit.Entry(LATE, "chief", "apply", YUERYA, "building", "applied"))
    raw(kept, f"UPDATE unit_states SET state = 'applied', version = version + 1 WHERE unit_code = '{YUERYA}'")
    assert cli("audit", "verify").exit_code == 0


def test_rows_of_older_versions_are_taken_leniently_and_said_so(kept, cli, tmp_path):
    """A calendar load and a designation without the detail this version logs: not compared, and verify says so."""
    append(kept, audit.Entry(LATE, "tester", "calendar_load", detail={"source": "old.csv", "years": [2016], "days": 1}),
           audit.Entry(LATE, "tester", "designate", YUERYA, "building", "building", detail={"cohort": "key"}))
    raw(kept, "INSERT INTO calendar_days (day, workday, name, source) VALUES ('2016-01-01', 0, '元旦', 'old.csv')")
    raw(kept, f"INSERT INTO unit_cohorts (unit_code, cohort) VALUES ('{YUERYA}', 'key')")
    raw(kept, f"UPDATE unit_states SET version = version + 1 WHERE unit_code = '{YUERYA}'")
    r = cli("audit", "verify")
    assert r.exit_code == 0, r.output
    assert "注意：日历载入记录" in r.output and "2016" in r.output and "version 未核对" in r.output
    raw(kept, "UPDATE calendar_days SET workday = 1 WHERE day = '2015-01-01'")  # a year the log does determine
    assert cli("audit", "verify").exit_code == 6


def test_no_replay_skips_the_tables_but_not_continuity(kept, cli):
    """`--no-replay` leaves the tables alone, but a row that does not follow is still named."""
    raw(kept, "UPDATE officials SET role = 'admin' WHERE name = 'chief_yuerya'")
    assert cli("audit", "verify", "--no-replay").exit_code == 0
    seq = append(kept, audit.Entry(LATE, "inspector", "accept", YUERYA, "applied", "accepted"))
    r = cli("audit", "verify", "--no-replay")
    assert r.exit_code == 6 and f"审计记录第 {seq} 条：" in r.output


def test_a_clock_stepping_back_leaves_the_tables_agreeing_with_the_log(chengde, cli):
    """When the system clock steps back, a checklist value, a contact and an official are stamped at the
    log's last time, as their audit rows are, and `verify` still finds the log and the tables in agreement."""
    admin = Actor(officials.os_login(), "admin", "130800")
    record(chengde, YUERYA, "staff.full_time", "3", "chief", at("2015-02-01T09:00"))
    record(chengde, YUERYA, "staff.full_time", "4", "chief", at("2015-01-01T09:00"))  # the clock went back
    contacts.add(chengde, YUERYA, "王站长", "w@example.gov.cn", None, admin, at("2014-12-20T09:00"))
    officials.add(chengde, "李科长", "county_official", KUANCHENG, None, admin, at("2014-12-19T09:00"))
    r = cli("audit", "verify")
    assert r.exit_code == 0, r.output
