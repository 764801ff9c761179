"""A campaign's file shapes its machines: chengde-2017-review (承德市's 回头看, added beside chengde-2014) has
three stages where the first campaign has four, and a county machine of its own — its states, its triggers,
their guards and the roles that may fire each (`[machines.county]`). The city moves through its stages on
their dates, a county only by the triggers of its campaign and only by the roles the file names; `audit
verify` replays each campaign on its own machines. A file that shapes a machine wrongly is refused with its
line; a running campaign's machines cannot be changed under its units.
On SQLite, or on PostgreSQL when ANJIAN_TEST_PG names a server."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import text
from support import add_officials, at, campaign_runner, new_database_url, record_checklist, run_on, snapshot

from anjian.states.campaign import CampaignError, builtin_text, load
from anjian.workflow.store import scope
from anjian.workflow.store.db import Database

CD, REVIEW = "chengde-2014", "chengde-2017-review"
KUANCHENG, YUERYA, CHENGDE = "130827", "130827102", "130800"  # 宽城满族自治县, 峪耳崖镇, 承德市
OFFICIALS = {"cd_office": ("city_office", CHENGDE), "cd_inspector": ("city_inspector", CHENGDE),
             "kc_official": ("county_official", KUANCHENG), "yy_chief": ("township_chief", YUERYA)}


@pytest.fixture
def chengde(tmp_path):
    """承德市 running its first campaign and, added beside it in 2017, its 回头看; `chengde.run(campaign,
    *args, now=, user=, code=)` runs `anjian --campaign CAMPAIGN …` as that official."""
    folder = tmp_path / "db"
    folder.mkdir()
    with new_database_url(folder) as url:
        home = tmp_path / "home"
        r = run_on(url, home, "init", now="2014-12-12T09:00")
        assert r.exit_code == 0, r.output
        r = run_on(url, home, "campaign", "add", REVIEW, now="2017-02-20T09:00")
        assert r.exit_code == 0, r.output
        db = Database(url)
        add_officials(db, OFFICIALS)

        run = campaign_runner(url, home)
        yield type("Chengde", (), {"url": url, "db": db, "run": staticmethod(run), "home": home, "folder": folder})
        db.dispose()


def as_json(r):
    return json.loads(r.stdout)


def test_the_city_machine_is_the_campaign_s_own_stages(chengde):
    from anjian.workflow.reminders.daemon import Daemon
    from anjian.workflow.services.stages import city_state
    from anjian.workflow.settings import NotifySettings

    review = load(builtin_text(REVIEW))
    assert review.machines["city"].states == ("self_inspection", "spot_check", "consolidation", "closed")
    assert review.machines["city"].triggers == ("begin_spot_check", "begin_consolidation", "close")
    assert load(builtin_text(CD)).machines["city"].states[:-1] == ("mobilization", "demonstration", "key_compliance",
                                                                   "full_coverage")
    run = chengde.run
    status = run(REVIEW, "status", now="2017-03-01T09:00").output
    assert "承德市：自查自纠阶段" in status  # the stage as the file names it, in the campaign's own words
    # the first campaign's stage triggers are not this one's: named as such, with this campaign's own
    r = run(REVIEW, "advance", CHENGDE, "begin_demonstration", now="2017-03-01T09:00", code=2)
    assert "begin_spot_check" in r.output and "进入督导抽查阶段" in r.output
    # a stage is not entered before its date, by hand or otherwise
    r = run(REVIEW, "advance", CHENGDE, "进入督导抽查阶段", now="2017-05-01T09:00", code=3)
    assert "2017-06-01" in r.output
    # the daemon moves each campaign's city through its own stages on their dates
    for day, first, second in (("2017-06-01T08:30", "closed", "spot_check"),
                               ("2017-10-09T08:30", "closed", "consolidation"),
                               ("2018-01-02T08:30", "closed", "closed")):
        Daemon(chengde.db, NotifySettings(), chengde.folder / "outbox", lambda d=day: at(d)).tick()
        with scope.chosen(CD):
            assert city_state(chengde.db) == first
        with scope.chosen(REVIEW):
            assert city_state(chengde.db) == second
    rows = as_json(run(REVIEW, "history", CHENGDE, "--format", "json", now="2018-01-03T09:00"))
    assert [(r["trigger"], r["to_state"]) for r in rows] == [
        ("begin_spot_check", "spot_check"), ("begin_consolidation", "consolidation"), ("close", "closed")]
    assert run(None, "audit", "verify", now="2018-01-03T09:00").exit_code == 0


def test_a_county_moves_by_its_campaign_s_own_triggers_and_roles(chengde):
    run = chengde.run
    shown = as_json(run(REVIEW, "show", KUANCHENG, "--format", "json", now="2017-03-01T09:00"))
    assert shown["state"] == "self_inspection"
    assert [t["name"] for t in shown["triggers"]] == ["report_self_inspection", "pass_spot_check",
                                                      "return_for_rectification", "confirm_consolidation"]
    # the first campaign's county is untouched by all this, and keeps its own machine
    assert as_json(run(CD, "show", KUANCHENG, "--format", "json", now="2017-03-01T09:00"))["state"] == "mobilization"
    run(REVIEW, "advance", KUANCHENG, "submit_plan", now="2017-03-01T09:00", user="kc_official", code=2)

    # the guards the file names for the trigger, every unmet one listed, nothing written
    before = snapshot(chengde.db)
    r = run(REVIEW, "advance", KUANCHENG, "报送自查报告", now="2017-03-01T09:00", user="kc_official", code=3)
    assert "county.review_group" in r.output and "--evidence" in r.output
    assert snapshot(chengde.db) == before
    run(REVIEW, "record", KUANCHENG, "county.review_group=王局长 承宽安委〔2017〕3号",
        "county.townships_inspected=18", now="2017-03-02T09:00", user="kc_official")
    report = chengde.folder / "自查报告.pdf"
    report.write_bytes(b"%PDF-1.4 self-inspection")
    # only the roles the file names: a city office may not report for a county, nor a chief for anyone
    r = run(REVIEW, "advance", KUANCHENG, "report_self_inspection", "--evidence", str(report),
            now="2017-03-03T09:00", user="cd_office", code=4)
    assert "县区工作人员（county_official）" in r.output
    run(REVIEW, "advance", KUANCHENG, "report_self_inspection", "--evidence", str(report),
        now="2017-03-03T09:00", user="kc_official")
    shown = as_json(run(REVIEW, "show", KUANCHENG, "--format", "json", now="2017-03-03T10:00"))
    assert shown["state"] == "reported" and shown["state_name"] == "自查报告已报送"
    assert next(m for m in shown["milestones"] if m["id"] == "self_inspection")["status"] == "met"

    # the spot check is the city inspectors' alone, and needs a sampled township re-accepted
    run(REVIEW, "advance", KUANCHENG, "pass_spot_check", "--note", "抽查合格", now="2017-06-05T09:00",
        user="cd_office", code=4)
    r = run(REVIEW, "advance", KUANCHENG, "pass_spot_check", "--note", "抽查合格", now="2017-06-05T09:00",
            user="cd_inspector", code=3)
    assert "市级抽查乡镇" in r.output
    run(REVIEW, "advance", KUANCHENG, "return_for_rectification", "--note", "台账不全", now="2017-06-05T09:00",
        user="cd_inspector")
    assert as_json(run(REVIEW, "show", KUANCHENG, "--format", "json", now="2017-06-05T10:00"))["state"] == "self_inspection"
    run(REVIEW, "advance", KUANCHENG, "report_self_inspection", "--evidence", str(report),
        now="2017-06-06T09:00", user="kc_official")
    run(REVIEW, "designate", YUERYA, "抽查", now="2017-06-06T09:00", user="cd_inspector")
    run(REVIEW, "advance", YUERYA, "start", now="2017-06-07T09:00", user="yy_chief")
    with scope.chosen(REVIEW):
        record_checklist(chengde.db, YUERYA, frozenset(), actor="yy_chief", now=at("2017-06-08T09:00"))
    run(REVIEW, "advance", YUERYA, "apply", now="2017-06-09T09:00", user="yy_chief")
    run(REVIEW, "advance", YUERYA, "accept", "--note", "复核合格", now="2017-06-12T09:00", user="cd_inspector")
    run(REVIEW, "advance", KUANCHENG, "通过抽查", "--note", "抽查峪耳崖镇合格", now="2017-06-13T09:00", user="cd_inspector")
    shown = as_json(run(REVIEW, "show", KUANCHENG, "--format", "json", now="2017-06-13T10:00"))
    assert shown["state"] == "spot_checked" and shown["state_name"] == "通过市级抽查"
    # the township's acceptance in this campaign is not its state in the first
    assert as_json(run(CD, "show", YUERYA, "--format", "json", now="2017-06-13T10:00"))["state"] == "not_started"
    units = as_json(run(REVIEW, "units", "--level", "county", "--state", "spot_checked", "--format", "json",
                        now="2017-06-13T10:00"))
    assert [u["code"] for u in units] == [KUANCHENG]
    run(CD, "units", "--state", "spot_checked", now="2017-06-13T10:00", code=2)  # not a state of the first campaign

    # the log replays each campaign on its own machines; a state changed behind it is named
    assert run(None, "audit", "verify", now="2017-06-14T09:00").exit_code == 0
    with chengde.db.engine.begin() as conn:
        conn.execute(text(f"UPDATE unit_states SET state = 'consolidated' WHERE campaign_no = 2 "
                          f"AND unit_code = '{KUANCHENG}'"))
    r = run(None, "audit", "verify", now="2017-06-14T09:00", code=6)
    assert KUANCHENG in r.output and "consolidated" in r.output and "spot_checked" in r.output


def test_the_county_s_words_and_diagram_come_from_the_file(chengde, monkeypatch):
    run = chengde.run
    r = run(REVIEW, "diagram", "county", now="2017-03-01T09:00")
    assert "自查报告已报送 reported" in r.output
    assert "reported --> self_inspection: 抽查未通过退回整改 return_for_rectification [review_note_given]" in r.output
    assert "demonstration" not in r.output
    assert "demonstration" in run(CD, "diagram", "county", now="2017-03-01T09:00").output
    monkeypatch.setenv("ANJIAN_LANG", "en")
    r = run(REVIEW, "show", KUANCHENG, now="2017-03-01T09:00")
    assert "inspecting itself" in r.output and "report the self-inspection" in r.output


def test_a_running_campaign_s_machines_cannot_change_under_its_units(chengde, tmp_path):
    """init with a file that keeps the machines may change dates and words; one that reshapes them is
    refused (exit 2), the database unchanged."""
    text_ = builtin_text(CD)
    stage = '[[stages]]\nid = "consolidation"\nname = "巩固提升阶段"\nstarts = 2017-01-01\nends = 2017-06-30\n\n'
    five = text_.replace("[cohorts.provincial_demo]", stage + "[cohorts.provincial_demo]", 1)
    assert load(five).machines["city"].states[-2:] == ("consolidation", "closed")  # a good file on its own
    path = tmp_path / "five.toml"
    path.write_text(five, "utf-8")
    before = snapshot(chengde.db)
    r = run_on(chengde.url, chengde.home, "init", "--campaign", str(path), now="2017-03-01T09:00")
    assert r.exit_code == 2, r.output
    assert "chengde-2014" in r.output and "campaign add" in r.output
    assert snapshot(chengde.db) == before
    # dates may change under a running campaign (its machines are the same)
    later = text_.replace("ends = 2016-12-31", "ends = 2017-03-31", 1)
    assert later != text_
    path.write_text(later, "utf-8")
    r = run_on(chengde.url, chengde.home, "init", "--campaign", str(path), now="2017-03-01T09:00")
    assert r.exit_code == 0, r.output


BAD = [
    ('[machines.county]\nstates = [{ id = "a", name = "甲" }, { id = "b", name = "乙" }]\n\n'
     '[[machines.county.transitions]]\ntrigger = "go"\nname = "走"\nsource = "a"\ndest = "c"\nby = ["county_official"]\n',
     "machines.county.transitions[0].dest: unknown county state 'c'"),
    ('[machines.county]\nstates = [{ id = "a", name = "甲" }, { id = "b", name = "乙" }]\n\n'
     '[[machines.county.transitions]]\ntrigger = "go"\nname = "走"\nsource = "a"\ndest = "b"\nby = ["admin"]\n',
     "machines.county.transitions[0].by: a role that may not act on a county 'admin'"),
    ('[machines.county]\nstates = [{ id = "a", name = "甲" }, { id = "b", name = "乙" }]\n\n'
     '[[machines.county.transitions]]\ntrigger = "go"\nname = "走"\nsource = "a"\ndest = "b"\n',
     "machines.county.transitions[0].by: is required"),
    ('[machines.county]\nstates = [{ id = "a", name = "甲" }, { id = "b", name = "乙" }, { id = "z", name = "丙" }]\n\n'
     '[[machines.county.transitions]]\ntrigger = "go"\nname = "走"\nsource = "a"\ndest = "b"\nby = ["city_office"]\n',
     "state 'z' is the destination of no transition"),
    ('[machines.county]\nstates = [{ id = "a", name = "甲" }, { id = "b", name = "乙" }]\n\n'
     '[[machines.county.transitions]]\ntrigger = "record"\nname = "走"\nsource = "a"\ndest = "b"\nby = ["city_office"]\n',
     "neither an audit action nor another machine's trigger, not 'record'"),
    ('[machines.county]\nstates = [{ id = "a", name = "甲" }, { id = "b", name = "乙" }]\n\n'
     '[[machines.county.transitions]]\ntrigger = "apply"\nname = "走"\nsource = "a"\ndest = "b"\nby = ["city_office"]\n',
     "not 'apply'"),
    ('[machines.city]\nstates = ["a"]\n\n[machines.county]\nstates = [{ id = "a", name = "甲" }, { id = "b", name = "乙" }]\n\n'
     '[[machines.county.transitions]]\ntrigger = "go"\nname = "走"\nsource = "a"\ndest = "b"\nby = ["city_office"]\n',
     "only [machines.county] may be declared (the city machine is the campaign's [[stages]])"),
    ('[machines.county]\nstates = [{ id = "a", name = "甲" }, { id = "b", name = "乙" }]\n\n'
     '[[machines.county.transitions]]\ntrigger = "go"\nname = "走"\nsource = "a"\ndest = "b"\nby = ["city_office"]\n'
     'guards = ["checklist_complete"]\n',
     "unknown county guard 'checklist_complete'"),
]


@pytest.mark.parametrize(("extra", "problem"), BAD)
def test_a_machine_shaped_wrongly_is_refused_with_its_line(extra, problem):
    base = builtin_text(REVIEW)
    cut = base.index("[machines.county]")
    end = base.index("[[milestones]]")
    milestones = base[end:].replace('states = ["reported", "spot_checked", "consolidated"]', 'states = ["b"]') \
        .replace('{ level = "county", states = ["spot_checked", "consolidated"] }', '{ level = "county", states = ["b"] }') \
        .replace('{ level = "county", states = ["consolidated"] }', '{ level = "county", states = ["b"] }')
    text_ = base[:cut] + extra + "\n" + milestones
    with pytest.raises(CampaignError) as caught:
        load(text_)
    found = [p for p in caught.value.problems if problem in p]
    assert found and len(caught.value.problems) == 1, caught.value.problems  # the one mistake, nothing in its wake
    line = int(found[0].split(",")[0].removeprefix("line "))
    assert 1 <= line <= text_.count("\n") + 1


def test_stages_are_the_file_s_and_checked():
    base = builtin_text(REVIEW)
    closed = base.replace('id = "consolidation"\nname = "巩固提升阶段"', 'id = "closed"\nname = "巩固提升阶段"', 1)
    with pytest.raises(CampaignError) as caught:
        load(closed)
    assert any("stages[2].id" in p and "'closed'" in p for p in caught.value.problems), caught.value.problems
    twice = base.replace('id = "spot_check"\nname = "督导抽查阶段"', 'id = "self_inspection"\nname = "督导抽查阶段"', 1)
    with pytest.raises(CampaignError) as caught:
        load(twice)
    assert any("stages[1].id: duplicate stage 'self_inspection'" in p for p in caught.value.problems), caught.value.problems


def test_the_county_page_offers_its_campaign_s_own_steps_to_the_roles_that_may_take_them(chengde):
    """Served: the county's page in the 回头看 shows its own state and, to its county official, its own
    button (报送自查报告, with the report to upload); fired from the page, the county moves and the report is
    listed. The city inspector sees the spot check, not the report."""
    from support_server import serving
    from support_web import browser, csrf_of

    from anjian.workflow.settings import resolve

    chengde.run(REVIEW, "record", KUANCHENG, "county.review_group=王局长", "county.townships_inspected=18",
                now="2017-03-02T09:00", user="kc_official")
    settings = resolve(chengde.url, env={"ANJIAN_HOME": str(chengde.home)})
    with serving(chengde.db, settings) as served:
        county = browser(served, "kc_official")
        page = county.get(f"/units/{KUANCHENG}", params={"campaign": REVIEW})
        assert page.status_code == 200 and "自查自纠" in page.text
        assert 'value="report_self_inspection"' in page.text and "报送自查报告" in page.text
        assert 'value="pass_spot_check"' not in page.text and 'value="submit_plan"' not in page.text
        version = re.search(r'name="version" value="(\d+)"', page.text)[1]
        done = county.post(f"/units/{KUANCHENG}", data={"csrf_token": csrf_of(page.text), "trigger": "report_self_inspection",
                                                        "version": version},
                           files={"evidence": ("自查报告.pdf", b"%PDF-1.4 self-inspection", "application/pdf")})
        assert done.status_code == 303, done.text
        after = county.get(f"/units/{KUANCHENG}")
        assert "自查报告已报送" in after.text and "自查报告.pdf" in after.text
        inspector = browser(served, "cd_inspector")
        seen = inspector.get(f"/units/{KUANCHENG}", params={"campaign": REVIEW})
        assert 'value="pass_spot_check"' in seen.text and 'value="report_self_inspection"' not in seen.text
    assert as_json(chengde.run(CD, "show", KUANCHENG, "--format", "json", now="2017-03-03T09:00"))["state"] == "mobilization"


def test_notices_and_circulars_cite_the_campaign_s_own_document(chengde, monkeypatch):
    """The 回头看 names its document (`[campaign] document`): its reminders and circulars cite it, where
    the first campaign's keep citing 《…推进方案》."""
    import email
    from email import policy

    from anjian.workflow.services import contacts

    outbox = chengde.folder / "outbox"
    monkeypatch.setenv("ANJIAN_OUTBOX", str(outbox))
    with scope.chosen(REVIEW):
        contacts.add(chengde.db, "宽城满族自治县", "宽城县安监局", "ab@kc.gov.cn", None, "admin", at("2017-02-21T09:00"))
    day = "2017-05-17T08:30"  # 14 days before the self-inspection report is due
    sent = as_json(chengde.run(REVIEW, "remind", "--format", "json", now=day, user=None))["sent"]
    assert [s["milestones"] for s in sent] == [["self_inspection"]]
    msg = email.message_from_bytes((outbox / f"{sent[0]['notice_id']}.eml").read_bytes(), policy=policy.default)
    text_ = msg.get_body(("plain",)).get_content()
    assert "根据《承德市乡镇安全监管规范化建设“回头看”工作方案（示例）》的时间安排" in text_
    r = chengde.run(REVIEW, "report", "circular", "--milestone", "self_inspection", now="2017-06-05T09:00")
    assert "按照《承德市乡镇安全监管规范化建设“回头看”工作方案（示例）》要求，2017年5月31日前应完成" in r.output
    r = chengde.run(CD, "report", "circular", "--milestone", "plan_submission", now="2017-06-05T09:00")
    assert "按照《承德市乡镇安全监管规范化建设推进方案》要求" in r.output
