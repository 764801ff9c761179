"""A second campaign beside Chengde's: zhangjiakou-2015 (张家口市, other dates, a cohort of its own, 坝上地区乡镇),
loaded from the city's part of the national registry and walked through the CLI in its own database while
Chengde's runs in another. Everything an official reads comes from the campaign in force: its cohorts,
milestones, guards, reminder ladder and assessment; nothing of Chengde's shows in it, nor it in Chengde's.
On SQLite, or on PostgreSQL when ANJIAN_TEST_PG names a server."""

from __future__ import annotations

import email
import json
from email import policy

import pytest
from support import at, new_database_url, record_checklist, run_on

from anjian.workflow.services import contacts
from anjian.workflow.store.db import Database

CITY, ZHANGBEI = "130700", "130722"  # 张家口市, 张北县
DEMO, KEY, BASHANG = "130722100", "130722101", "130722102"  # 张北镇, 公会镇, 二台镇
OFFICIALS = {"zjk_office": ("city_office", CITY), "zjk_inspector": ("city_inspector", CITY),
             "zb_official": ("county_official", ZHANGBEI), "zb_chief": ("township_chief", DEMO)}
MILESTONES = ["plan_submission", "demonstration", "key_townships", "bashang", "all_townships"]
CHENGDE_WORDS = ("承德", "省示范", "任务重", "省定示范", "provincial_demo", "heavy_task")


@pytest.fixture
def zjk(tmp_path):
    """A database of 张家口市 (`--registry 1307`) running zhangjiakou-2015, with officials of the city and of
    张北县; `zjk.run(*args, now=, user=)` runs `anjian` on it, as that official."""
    from support import add_officials

    folder = tmp_path / "zjk"
    folder.mkdir()
    with new_database_url(folder) as url:
        home = tmp_path / "zjk-home"
        r = run_on(url, home, "init", "--registry", "1307", "--campaign", "zhangjiakou-2015", now="2015-03-20T09:00")
        assert r.exit_code == 0, r.output
        db = Database(url)
        add_officials(db, OFFICIALS)

        def run(*args: str, now: str, user: str | None = "zjk_office", code: int = 0):
            r = run_on(url, home, *(("--as", user) if user else ()), *args, now=now)
            assert r.exit_code == code, (args, r.output)
            return r

        yield type("Zjk", (), {"url": url, "db": db, "run": staticmethod(run), "home": home})
        db.dispose()


def as_json(r) -> dict | list:
    return json.loads(r.stdout)


def walk_to_demonstration(zjk, tmp_path) -> None:
    """张北县: the plan with its document, the cohorts named, 张北镇 accepted as its demonstration township, and
    the demonstration approved (refused first for what the campaign's own guard says is missing)."""
    run = zjk.run
    run("designate", DEMO, "key", now="2015-03-25T09:00")
    run("designate", KEY, "重点", now="2015-03-25T09:00")  # by the campaign's short name
    run("designate", DEMO, "示范", now="2015-03-25T09:00", user="zb_official")
    run("designate", BASHANG, "坝上", now="2015-03-25T09:00", user="zb_official")
    run("record", "张北县", "county.leadership_group", "组长：县长（张政办〔2015〕12号）", now="2015-04-01T09:00",
        user="zb_official")
    plan = tmp_path / "张北县实施方案.pdf"
    plan.write_bytes("实施方案".encode() * 40)
    run("advance", "张北县", "submit_plan", "--evidence", str(plan), now="2015-04-10T09:00", user="zb_official")
    r = run("advance", "张北县", "approve_demonstration", "--note", "示范验收总结", now="2015-09-01T09:00", code=3)
    assert "示范乡镇尚未全部通过验收：张北镇（未开展）" in r.output
    run("advance", DEMO, "start", now="2015-05-04T09:00", user="zb_chief")
    record_checklist(zjk.db, DEMO, frozenset({"key", "demo"}), actor="zb_chief", now=at("2015-05-20T09:00"))
    run("advance", DEMO, "apply", now="2015-06-01T09:00", user="zb_chief")
    run("advance", DEMO, "accept", "--note", "现场核查合格", now="2015-06-20T09:00", user="zjk_inspector")
    run("advance", "张北县", "approve_demonstration", "--note", "示范验收总结", now="2015-09-01T09:00")


def test_a_second_campaign_runs_on_its_own_words_rules_and_dates(zjk, tmp_path):
    """zhangjiakou-2015 loads with its city, and its status, units, show and refusals speak of its own
    cohorts (示范, 重点, 坝上), milestones and guards; its county walks to the demonstration's approval."""
    status = as_json(zjk.run("status", "--format", "json", now="2015-03-25T09:00"))
    counties = status["counties"]
    assert len(counties) == 19 and {c["code"][:4] for c in counties} == {"1307"}
    assert set(counties[0]["cohorts"]) == {"demo", "key", "bashang"}
    walk_to_demonstration(zjk, tmp_path)

    zb = as_json(zjk.run("show", ZHANGBEI, "--format", "json", now="2015-09-02T09:00"))
    assert zb["state"] == "key_compliance"
    assert [m["id"] for m in zb["milestones"]] == MILESTONES
    assert [m["status"] for m in zb["milestones"]][:2] == ["met", "met"]
    bashang = as_json(zjk.run("units", "--county", "张北", "--cohort", "坝上地区乡镇", "--format", "json",
                              now="2015-09-02T09:00"))
    assert [u["code"] for u in bashang] == [BASHANG]

    table = zjk.run("status", now="2015-09-02T09:00").output
    for word in ("示范", "重点", "坝上", "张北县"):
        assert word in table
    assert not any(w in table for w in CHENGDE_WORDS)

    r = zjk.run("advance", "张北县", "certify_key_compliance", now="2016-07-01T09:00", code=3)
    assert "安全生产重点乡镇尚未全部通过验收：公会镇（未开展）" in r.output
    assert "坝上地区乡镇尚未全部通过验收：二台镇（未开展）" in r.output
    late = as_json(zjk.run("status", "--county", "张北县", "--format", "json", now="2016-07-01T09:00"))
    (row,) = late["counties"]
    assert row["overdue"] == ["key_townships"]


def test_a_second_campaigns_reminders_assessment_and_report_are_its_own(zjk, tmp_path, monkeypatch):
    """Its reminder ladder (20, 10, 5, 1 days) sends its milestone's name to its county; its assessment deducts
    by its own rules; its progress report has its cohorts' columns and nothing of Chengde."""
    outbox = tmp_path / "outbox"
    monkeypatch.setenv("ANJIAN_OUTBOX", str(outbox))
    contacts.add(zjk.db, "张北县", "张北县安监局", "ab@zb.gov.cn", None, "admin", at("2015-03-21T09:00"))
    walk_to_demonstration(zjk, tmp_path)
    # 2016-06-20 is 10 days before key_townships (2016-06-30): a rung of this campaign's ladder, not Chengde's
    sent = as_json(zjk.run("remind", "--format", "json", now="2016-06-20T08:30", user=None))["sent"]
    # the d-10 reminder, and with it the early warning (公会镇 has not started): one notice, still a reminder
    assert [(s["recipient"], s["units"], s["milestones"], s["kind"]) for s in sent] == [
        ("ab@zb.gov.cn", [ZHANGBEI], ["key_townships"], "reminder")]
    (path,) = outbox.glob("*.eml")
    mail = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert mail["From"].addresses[0].display_name == "张家口市安全生产委员会办公室"  # its issuer, when none is set
    text = mail.get_body(("plain",)).get_content()
    assert "重点乡镇全部达到规范化标准" in text and "2016年6月30日" in text and "还剩 10 天" in text
    assert not any(w in text for w in CHENGDE_WORDS)
    # the next day: no rung of its ladder, and the week's warning has gone
    assert as_json(zjk.run("remind", "--format", "json", now="2016-06-21T08:30", user=None))["sent"] == []

    score = as_json(zjk.run("assessment", "--county", "张北县", "--format", "json", now="2016-07-05T09:00"))
    assert score["campaign"] == "zhangjiakou-2015"
    (county,) = score["counties"]
    # 公会镇 (key) has missed key_townships; every other milestone is met or not yet due
    assert {(d["milestone"], d["unit"], d["kind"], d["points"]) for d in county["deductions"]} == {
        ("key_townships", KEY, "missed", 2.0)}

    html = tmp_path / "进度.html"
    zjk.run("report", "progress", "--out", str(html), now="2016-07-05T09:00")
    page = html.read_text("utf-8")
    assert "张家口市乡镇安全监管规范化建设（示例）" in page and "坝上" in page and "重点达标" in page
    assert not any(w in page for w in CHENGDE_WORDS)


def test_two_campaigns_side_by_side_keep_to_their_own(zjk, chengde, cli):
    """Chengde's database and Zhangjiakou's, used in turn in one process, each answer in their campaign's
    words: neither's cohorts, milestones or city show in the other's output."""
    zjk_table = zjk.run("status", now="2015-04-01T09:00").output
    cd_table = cli("status", now="2015-04-01T09:00").output
    again = zjk.run("status", now="2015-04-01T09:00").output
    assert zjk_table == again
    assert "坝上" in zjk_table and "省示范" not in zjk_table and "宽城" not in zjk_table
    assert "省示范" in cd_table and "坝上" not in cd_table and "张北" not in cd_table
    cd = as_json(cli("show", "130827", "--format", "json", now="2015-04-01T09:00"))
    zb = as_json(zjk.run("show", ZHANGBEI, "--format", "json", now="2015-04-01T09:00"))
    assert [m["id"] for m in cd["milestones"]][:2] == ["plan_submission", "provincial_demo"]
    # no 坝上 township named yet: 张北县 does not owe that milestone (its rule's `when_has`)
    assert [m["id"] for m in zb["milestones"]] == [m for m in MILESTONES if m != "bashang"]
    assert [m["deadline"] for m in zb["milestones"]][0] == "2015-04-30"


def test_the_pages_of_a_second_campaign_speak_its_words(zjk, tmp_path):
    """Served, the second campaign's pages name its cohorts and milestones as its file does (坝上地区乡镇,
    坝上达标), not as the built-in campaign would."""
    from support_server import serving
    from support_web import browser

    from anjian.workflow.settings import resolve

    zjk.run("designate", BASHANG, "坝上", now="2015-03-25T09:00", user="zb_official")
    settings = resolve(zjk.url, env={"ANJIAN_HOME": str(zjk.home)})
    with serving(zjk.db, settings) as served:
        client = browser(served, "zb_official")
        county = client.get(f"/units/{ZHANGBEI}").text
        township = client.get(f"/units/{BASHANG}").text
    assert "坝上地区乡镇" in county and "坝上达标" in county and "各县区建成1-2个示范乡镇" in county
    assert "坝上地区乡镇" in township and "坝上地区乡镇全部达到规范化标准" in township
    assert not any(w in county + township for w in CHENGDE_WORDS)
