"""The clock belongs to the system: a write on a live database is stamped with the real clock and
refuses --now / ANJIAN_NOW; reads take --now as "as of"; a drill (`init --drill`) may set its time,
never backwards, and says 演练 in everything it prints; the log's times never decrease; a paper record
entered late (`--effective`, 补录) is attested by the city alone and counted from its date."""

from __future__ import annotations

import datetime as dt
import email
import json
from email import policy

import pytest
from sqlalchemy import select
from support import T0, TEST_OFFICIALS, add_officials, at, record_checklist, snapshot

from anjian.workflow.services.advance import advance
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import AuditRow, Meta, Unit

YUERYA = "宽城峪耳崖镇"  # 130827102, a provincial demonstration township
YUERYA_CODE = "130827102"
REAL = "2026-12-06T10:00"  # the real clock of the attack
PROVINCIAL = frozenset({"provincial_demo"})


@pytest.fixture
def files(tmp_path):
    """The input files the write commands read."""
    paths = {
        "batch": tmp_path / "batch.csv", "contacts": tmp_path / "contacts.csv", "calendar": tmp_path / "2027.csv",
    }
    paths["batch"].write_text(f"unit,trigger\n{YUERYA},start\n", encoding="utf-8")
    paths["contacts"].write_text(f"unit,name,email\n{YUERYA},王站长,wang@example.gov.cn\n", encoding="utf-8")
    paths["calendar"].write_text("date,workday\n2027-01-01,0\n", encoding="utf-8")
    return paths


def stored_times(db) -> list[str]:
    with db.read() as s:
        return list(s.scalars(select(AuditRow.at).order_by(AuditRow.seq)))


def last_row(db) -> AuditRow:
    with db.read() as s:
        return s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).one()


# -- a live database: writes at the real clock only ---------------------------------------------------
def test_the_backdating_attack_is_refused_and_writes_nothing(chengde, cli, tmp_path, monkeypatch):
    """`ANJIAN_NOW=2014-12-15T10:00 anjian advance 宽城峪耳崖镇 start` by the township's chief on 2026-12-06
    exits 2 naming ANJIAN_NOW, and no table changes (no audit row, not even a denial)."""
    monkeypatch.setenv("ANJIAN_NOW", "2014-12-15T10:00")
    before = snapshot(chengde, tmp_path / "home")
    r = cli("advance", YUERYA, "start", now=REAL, user="chief_yuerya")
    assert r.exit_code == 2, r.output
    assert "ANJIAN_NOW" in r.output and "init --drill" in r.output
    assert snapshot(chengde, tmp_path / "home") == before


WRITES = {
    "advance": ["advance", YUERYA, "start"],
    "advance --file": ["advance", "--file", "{batch}"],
    "record": ["record", YUERYA, "staff.full_time", "4"],
    "designate": ["designate", YUERYA, "heavy_task"],
    "contact add": ["contact", "add", YUERYA, "--name", "王站长", "--email", "wang@example.gov.cn"],
    "contact remove": ["contact", "remove", YUERYA, "--name", "王站长"],
    "contact import": ["contact", "import", "{contacts}"],
    "user add": ["user", "add", "新人", "--role", "city_office", "--unit", "承德市"],
    "user disable": ["user", "disable", "zhao"],
    "user enable": ["user", "enable", "zhao"],
    "calendar load": ["calendar", "load", "{calendar}"],
    "audit checkpoint": ["audit", "checkpoint", "--out", "{tmp}/cp.json"],
    "remind": ["remind"],
    "daemon": ["daemon"],
    "init": ["init"],
    "report circular --issue": ["report", "circular", "--milestone", "plan_submission", "--issue"],
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_now_on_every_write_is_refused(chengde, cli, files, tmp_path, write):
    """Every command that writes exits 2 when --now is given on a live database, before any work."""
    args = [a.format(tmp=tmp_path, **files) for a in write]
    before = snapshot(chengde, tmp_path / "home")
    r = cli("--now", "2015-01-05T09:00", *args, now="2015-01-06T09:00")
    assert r.exit_code == 2, r.output
    assert "--now" in r.output
    assert snapshot(chengde, tmp_path / "home") == before
    assert not (tmp_path / "cp.json").exists()


READS = {
    "status": ["status"], "status json": ["status", "--format", "json"], "units": ["units", "--overdue"],
    "show": ["show", YUERYA], "history": ["history"], "deadlines": ["deadlines", YUERYA],
    "assessment": ["assessment"], "report progress": ["report", "progress", "--format", "md"],
    "report dossier": ["report", "dossier", YUERYA], "report circular": ["report", "circular", "--milestone", "plan_submission"],
    "remind --dry-run": ["remind", "--dry-run"],
}


@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_reads_take_now_as_of_and_write_nothing(chengde, cli, tmp_path, read):
    """Reads accept --now (as of that time) on a live database and change nothing."""
    before = snapshot(chengde, tmp_path / "home")
    r = cli("--now", "2015-04-01", *read, now=REAL)
    assert r.exit_code == 0, r.output
    assert "演练" not in r.output
    assert snapshot(chengde, tmp_path / "home") == before


def test_status_as_of_counts_days_from_now(chengde, cli):
    """`status --now` replays the day: on 2015-01-10 the plan is 11 days overdue, though the clock says 2026."""
    r = cli("--now", "2015-01-10", "status", "--format", "json", now=REAL)
    data = json.loads(r.output)
    assert data["drill"] is False
    assert data["today"] == "2015-01-10"


def test_a_flipped_meta_row_does_not_make_a_drill(chengde, cli):
    """Setting meta drill=1 behind anjian's back (sqlite3) does not let a write set its time: the
    hash-chained registry_load row must say drill too."""
    with chengde.write() as s:
        s.add(Meta(key="drill", value="1"))
    before = snapshot(chengde)
    r = cli("--now", "2014-12-15T10:00", "advance", YUERYA, "start", now=REAL)
    assert r.exit_code == 2, r.output
    assert snapshot(chengde) == before


# -- the log's times never decrease --------------------------------------------------------------------
def test_log_times_never_decrease_when_the_clock_steps_back(chengde, cli):
    """A system clock stepped back a month (time-machine) stamps the next row at the last row's time."""
    assert cli("advance", YUERYA, "start", now="2015-03-01T10:00").exit_code == 0
    assert cli("record", YUERYA, "staff.full_time", "4", now="2015-02-01T10:00").exit_code == 0
    times = stored_times(chengde)
    assert times == sorted(times)
    assert last_row(chengde).at == "2015-03-01T02:00:00.000000Z"


def test_services_given_an_earlier_time_are_stamped_no_earlier(chengde):
    """The floor holds for any caller of audit.append, not only the CLI."""
    advance(chengde, YUERYA, "start", "chief", at("2015-03-01T10:00"))
    record_checklist(chengde, YUERYA, PROVINCIAL, now=at("2015-01-01T10:00"))
    times = stored_times(chengde)
    assert times == sorted(times)


# -- drills ------------------------------------------------------------------------------------------
@pytest.fixture
def drill(cli, db_url):
    """A drill database of the built-in registry, made at 2014-12-15 09:00."""
    r = cli("init", "--drill", user=None)
    assert r.exit_code == 0, r.output
    assert "演练" in r.output
    db = Database(db_url)
    add_officials(db, TEST_OFFICIALS)
    yield db
    db.dispose()


def test_a_drill_takes_now_on_writes_and_says_so(drill, cli):
    """In a drill `advance --now` is stamped at --now; status JSON says drill; tables start with 演练."""
    r = cli("--now", "2015-01-10T09:00", "advance", YUERYA, "start", now=REAL)
    assert r.exit_code == 0, r.output
    assert r.output.startswith("【演练】")
    assert last_row(drill).at == "2015-01-10T01:00:00.000000Z"
    status = cli("--now", "2015-01-10T09:00", "status", "--format", "json", now=REAL)
    assert json.loads(status.stdout)["drill"] is True
    for table in (["status"], ["units"], ["history"], ["show", YUERYA], ["assessment"], ["notices"]):
        out = cli(*table, now=REAL)
        assert out.exit_code == 0, out.output
        assert out.stdout.startswith("【演练】"), table


def test_a_drill_refuses_to_go_back(drill, cli):
    """A write in a drill at a time before the log's last row exits 2 and writes nothing."""
    assert cli("--now", "2015-03-01T09:00", "advance", YUERYA, "start").exit_code == 0
    before = snapshot(drill)
    r = cli("--now", "2015-02-01T09:00", "record", YUERYA, "staff.full_time", "4")
    assert r.exit_code == 2, r.output
    assert "不能倒退" in r.output
    assert snapshot(drill) == before


def test_drill_is_refused_on_a_live_database(chengde, cli):
    """`init --drill` on a live database exits 2 and changes nothing."""
    before = snapshot(chengde)
    r = cli("init", "--drill", user=None)
    assert r.exit_code == 2, r.output
    assert "正式数据库" in r.output
    assert snapshot(chengde) == before


def test_a_drill_stays_a_drill(drill, cli):
    """`init` again on a drill keeps it a drill."""
    assert cli("init", user=None).exit_code == 0
    assert json.loads(cli("status", "--format", "json").stdout)["drill"] is True


def test_drill_reports_carry_a_banner(drill, cli, tmp_path):
    """Progress (md, html), dossier (md, html), circular (md, html) and the assessment say 演练."""
    for args in (["report", "progress", "--format", "md"], ["report", "dossier", YUERYA],
                 ["report", "circular", "--milestone", "plan_submission"], ["assessment"]):
        r = cli(*args, now="2015-01-05T09:00")
        assert r.exit_code == 0, r.output
        assert "【演练】" in r.stdout.splitlines()[0], args
    r = cli("report", "circular", "--milestone", "plan_submission", "--format", "html", now="2015-01-05T09:00")
    assert 'id="drill"' in r.stdout and "【演练】" in r.stdout
    for args in (["report", "progress", "--format", "html"], ["report", "dossier", YUERYA, "--format", "html"]):
        out = tmp_path / "r.html"
        assert cli(*args, "--out", str(out), now="2015-01-05T09:00").exit_code == 0
        assert 'id="drill"' in out.read_text("utf-8") and "【演练】" in out.read_text("utf-8"), args
    assert json.loads(cli("assessment", "--format", "json").stdout)["drill"] is True


def test_drill_notices_say_drill_in_subject_and_body(drill, cli, tmp_path, monkeypatch):
    """A drill's reminder pass writes notices whose subject starts 【演练】 and whose body says so first."""
    outbox = tmp_path / "outbox"
    monkeypatch.setenv("ANJIAN_OUTBOX", str(outbox))
    assert cli("--now", "2014-12-20T09:00", "contact", "add", "宽城县", "--name", "李科长",
               "--email", "li@example.gov.cn").exit_code == 0
    r = cli("--now", "2014-12-31T08:30", "remind")
    assert r.exit_code == 0, r.output
    (eml,) = outbox.glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert msg["Subject"].startswith("【演练】")
    text = msg.get_body(("plain",)).get_content()
    assert text.startswith("【演练】")
    assert "演练" in msg.get_body(("html",)).get_content()


def test_a_live_pass_says_nothing_of_drills(chengde, cli, tmp_path, monkeypatch):
    """The same pass on a live database: no 演练 anywhere in the notice."""
    outbox = tmp_path / "outbox"
    monkeypatch.setenv("ANJIAN_OUTBOX", str(outbox))
    assert cli("contact", "add", "宽城县", "--name", "李科长", "--email", "li@example.gov.cn").exit_code == 0
    assert cli("remind", now="2014-12-31T08:30").exit_code == 0
    (eml,) = outbox.glob("*.eml")
    assert "演练" not in email.message_from_bytes(eml.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()


# -- late entries (补录) ----------------------------------------------------------------------------
@pytest.fixture
def applied(chengde):
    """峪耳崖镇 started, its checklist complete, applied on 2015-03-20."""
    advance(chengde, YUERYA, "start", "chief", at("2015-01-10T09:00"))
    record_checklist(chengde, YUERYA, PROVINCIAL, now=at("2015-01-11T09:00"))
    advance(chengde, YUERYA, "apply", "chief", at("2015-03-20T09:00"))
    return chengde


@pytest.mark.parametrize(("user", "code"), [("inspector", 0), ("county_official", 4)])
def test_effective_is_for_city_inspectors_and_office(applied, cli, user, code):
    """An acceptance entered late is allowed to a city inspector; a county official, who may accept,
    may not attest a late entry (exit 4) and the township stays applied."""
    r = cli("advance", YUERYA, "accept", "--note", "纸质验收记录", "--effective", "2015-03-28", now="2015-04-10T11:00", user=user)
    assert r.exit_code == code, r.output
    with applied.read() as s:
        state = s.get(Unit, YUERYA_CODE).state
    assert state == ("accepted" if code == 0 else "applied")


def test_effective_record_is_for_the_city_office(applied, cli):
    """`record --effective` by the city office is stored with its date; by a township chief it exits 4."""
    assert cli("record", YUERYA, "staff.full_time", "9", "--effective", "2015-03-25", now="2015-04-10T11:00",
               user="chief_yuerya").exit_code == 4
    r = cli("record", YUERYA, "staff.full_time", "9", "--effective", "2015-03-25", now="2015-04-10T11:00", user="office")
    assert r.exit_code == 0, r.output
    row = last_row(applied)
    assert json.loads(row.detail)["effective"] == "2015-03-25"
    assert row.at == "2015-04-10T03:00:00.000000Z"


@pytest.mark.parametrize(("effective", "why"), [("2015-04-11", "晚于今天"), ("2015-03-19", "不能早于")])
def test_effective_neither_future_nor_before_the_previous_change(applied, cli, effective, why):
    """A late entry dated after today, or before the unit's previous transition (apply, 2015-03-20), exits 2."""
    before = snapshot(applied)
    r = cli("advance", YUERYA, "accept", "--note", "纸质验收记录", "--effective", effective, now="2015-04-10T11:00",
            user="inspector")
    assert r.exit_code == 2, r.output
    assert why in r.output
    assert snapshot(applied) == before


def test_a_late_entry_in_history_has_both_times(applied, cli):
    """history JSON: `at` is 00:00 Shanghai of the effective date, `recorded_at` the real clock; the
    table says 补录; an ordinary row has both times equal."""
    assert cli("advance", YUERYA, "accept", "--note", "纸质验收记录", "--effective", "2015-03-28",
               now="2015-04-10T11:00", user="inspector").exit_code == 0
    rows = json.loads(cli("history", YUERYA, "--format", "json").stdout)
    late, apply = rows[-1], rows[-2]
    assert (late["at"], late["recorded_at"]) == ("2015-03-27T16:00:00.000000Z", "2015-04-10T03:00:00.000000Z")
    assert late["effective"] == "2015-03-28"
    assert apply["at"] == apply["recorded_at"] and apply["effective"] is None
    table = cli("history", YUERYA).stdout
    assert "补录" in table and "2015-03-28 00:00:00" in table


def test_a_late_acceptance_counts_from_its_date(applied, cli):
    """Accepted on paper on 2015-03-28, entered on 2015-04-10: the provincial_demo milestone (2015-03-31)
    was met on time in the assessment and circular, marked 补录; entered without --effective it is late."""
    assert cli("advance", YUERYA, "accept", "--note", "纸质验收记录", "--effective", "2015-03-28",
               now="2015-04-10T11:00", user="inspector").exit_code == 0
    circular = cli("report", "circular", "--milestone", "provincial_demo", now="2015-04-15T09:00").stdout
    on_time = circular.split("### 一、")[1].split("### 二、")[0]
    assert "峪耳崖镇（补录）" in on_time
    data = json.loads(cli("report", "circular", "--milestone", "provincial_demo", "--format", "json",
                          now="2015-04-15T09:00").stdout)
    (mine,) = [x for x in data["on_time"] if x["unit"] == YUERYA_CODE]
    assert mine["attested"] is True
    assert dt.datetime.fromisoformat(mine["met_at"]) == dt.datetime(2015, 3, 28, tzinfo=T0.tzinfo)
    assessed = json.loads(cli("assessment", "--county", "宽城", "--format", "json", now="2015-04-15T09:00").stdout)
    charged = [d for c in assessed["counties"] for d in c["deductions"] if d["unit"] == YUERYA_CODE]
    assert charged == []
    dossier = cli("report", "dossier", YUERYA, now="2015-04-15T09:00").stdout
    assert "补录（2015-03-28 的纸质记录" in dossier


def test_the_same_acceptance_without_effective_is_late(applied, cli):
    """The control: accepted on 2015-04-10 with no late entry, 峪耳崖镇 is late by 10 days, not 补录."""
    assert cli("advance", YUERYA, "accept", "--note", "验收", now="2015-04-10T11:00", user="inspector").exit_code == 0
    data = json.loads(cli("report", "circular", "--milestone", "provincial_demo", "--format", "json",
                          now="2015-04-15T09:00").stdout)
    (mine,) = [x for x in data["late"] if x["unit"] == YUERYA_CODE]
    assert (mine["days"], mine["attested"]) == (10, False)


def test_the_timeline_uses_the_effective_date(applied, cli):
    """The replay counts the accept row from 2015-03-28 00:00 Shanghai and flags it attested."""
    from anjian.workflow.services.registry import campaign_in_force
    from anjian.workflow.views.timeline import replay

    assert cli("advance", YUERYA, "accept", "--note", "纸质验收记录", "--effective", "2015-03-28",
               now="2015-04-10T11:00", user="inspector").exit_code == 0
    with applied.read() as s:
        out = {o.unit_code: o for o in replay(s, campaign_in_force(s), at("2015-04-15T09:00")).outcomes("provincial_demo")}
    assert out[YUERYA_CODE].met_at == dt.datetime(2015, 3, 28, tzinfo=T0.tzinfo)
    assert out[YUERYA_CODE].attested and out[YUERYA_CODE].status == "on_time"
