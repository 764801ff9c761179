"""Two campaigns in one database: 河北省's registry (`init --registry 13 --cover city`) running Chengde's campaign
on 承德市 and, added beside it, zhangjiakou-2015 on 张家口市. Each command names its campaign (`--campaign`)
and sees only that campaign's states, checklist values, cohorts, notices, assessment and reports; the audit
log stays one chain that `audit verify` checks across both; a database of one campaign migrated to the
schema of several keeps everything and verifies the same before and after.
On SQLite, or on PostgreSQL when ANJIAN_TEST_PG names a server."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from support import at, campaign_runner, drop_audit_guards, new_database_url, record_checklist, run_on

from anjian.workflow.services import contacts
from anjian.workflow.store import scope
from anjian.workflow.store.db import Database

CD, ZJK = "chengde-2014", "zhangjiakou-2015"
KUANCHENG, YUERYA = "130827", "130827102"  # 宽城满族自治县, 峪耳崖镇
ZHANGBEI, ZB_DEMO, ZB_KEY = "130722", "130722100", "130722101"  # 张北县, 张北镇, 公会镇
OFFICIALS = {"cd_office": ("city_office", "130800"), "kc_official": ("county_official", KUANCHENG),
             "yy_chief": ("township_chief", YUERYA), "cd_inspector": ("city_inspector", "130800"),
             "zjk_office": ("city_office", "130700"), "zb_official": ("county_official", ZHANGBEI),
             "zb_chief": ("township_chief", ZB_DEMO), "zjk_inspector": ("city_inspector", "130700")}


@pytest.fixture
def hebei(tmp_path):
    """A database of 河北省 running chengde-2014 (on 承德市) and zhangjiakou-2015 (on 张家口市);
    `hebei.run(campaign, *args, now=, user=, code=)` runs `anjian --campaign CAMPAIGN …` as that official."""
    from support import add_officials

    folder = tmp_path / "hebei"
    folder.mkdir()
    with new_database_url(folder) as url:
        home = tmp_path / "home"
        r = run_on(url, home, "init", "--registry", "13", "--cover", "city", now="2014-12-12T09:00")
        assert r.exit_code == 0, r.output
        r = run_on(url, home, "campaign", "add", ZJK, now="2014-12-12T09:05")
        assert r.exit_code == 0, r.output
        db = Database(url)
        add_officials(db, OFFICIALS)

        run = campaign_runner(url, home)
        yield type("Hebei", (), {"url": url, "db": db, "run": staticmethod(run), "home": home})
        db.dispose()


def raw(db: Database, sql: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(sql))


def as_json(r):
    return json.loads(r.stdout)


def walk(hebei, tmp_path) -> None:
    """Chengde's 峪耳崖镇 and Zhangjiakou's 张北镇 each started, recorded, applied and accepted, in their own
    campaigns, by their own officials."""
    run = hebei.run
    run(CD, "designate", YUERYA, "key", now="2015-01-05T09:00")
    run(CD, "advance", YUERYA, "start", now="2015-01-06T09:00", user="yy_chief")
    with scope.chosen(CD):
        record_checklist(hebei.db, YUERYA, frozenset({"key"}), actor="yy_chief", now=at("2015-01-20T09:00"))
    run(CD, "advance", YUERYA, "apply", now="2015-02-01T09:00", user="yy_chief")
    run(CD, "advance", YUERYA, "accept", "--note", "合格", now="2015-02-10T09:00", user="cd_inspector")

    run(ZJK, "designate", ZB_DEMO, "key", now="2015-03-25T09:00", user="zjk_office")
    run(ZJK, "designate", ZB_DEMO, "示范", now="2015-03-25T09:00", user="zb_official")
    run(ZJK, "advance", ZB_DEMO, "start", now="2015-05-04T09:00", user="zb_chief")
    with scope.chosen(ZJK):
        record_checklist(hebei.db, ZB_DEMO, frozenset({"key", "demo"}), actor="zb_chief", now=at("2015-05-20T09:00"))
    run(ZJK, "advance", ZB_DEMO, "apply", now="2015-06-01T09:00", user="zb_chief")
    run(ZJK, "advance", ZB_DEMO, "accept", "--note", "现场核查合格", now="2015-06-20T09:00", user="zjk_inspector")


def test_a_database_lists_its_campaigns_and_each_command_works_on_the_one_named(hebei):
    listed = as_json(hebei.run(None, "campaign", "list", "--format", "json", now="2015-01-02T09:00"))["campaigns"]
    assert [(c["no"], c["id"], c["city"]) for c in listed] == [(1, CD, "130800"), (2, ZJK, "130700")]
    # each covers its city, everything under it, and 河北省 above it
    assert listed[0]["units"] == 1 + 1 + 12 + 219 and listed[1]["units"] == 1 + 1 + 19 + 246
    assert as_json(hebei.run(None, "status", "--campaigns", "--format", "json", now="2015-01-02T09:00"))["campaigns"] \
        == listed
    assert as_json(hebei.run(None, "status", "--format", "json", now="2015-01-02T09:00"))["campaign"] == CD
    cd = as_json(hebei.run(CD, "status", "--format", "json", now="2015-01-02T09:00"))
    zjk = as_json(hebei.run(ZJK, "status", "--format", "json", now="2015-01-02T09:00"))
    assert {c["code"][:4] for c in cd["counties"]} == {"1308"} and len(cd["counties"]) == 12
    assert {c["code"][:4] for c in zjk["counties"]} == {"1307"} and len(zjk["counties"]) == 19
    assert zjk["campaign"] == ZJK and "bashang" in zjk["counties"][0]["cohorts"]
    # a unit of one campaign is not one of the other's; an unknown campaign is named as such
    r = hebei.run(CD, "show", "张北镇", now="2015-01-02T09:00", code=2)
    assert f"张北镇（{ZB_DEMO}）不在工作方案 {CD} 的范围内" in r.output and "--campaign" in r.output
    assert "名录中没有" in hebei.run(CD, "show", "不存在镇", now="2015-01-02T09:00", code=2).output
    # an official of one campaign's city does not act in the other's, and is told so (refused, audited)
    r = hebei.run(ZJK, "advance", ZB_DEMO, "start", now="2015-01-02T09:00", user="yy_chief", code=4)
    assert f"任职于峪耳崖镇（{YUERYA}），不在工作方案 {ZJK} 的范围内" in r.output
    assert as_json(hebei.run(ZJK, "show", ZB_DEMO, "--format", "json", now="2015-01-02T09:00"))["state"] == "not_started"
    r = hebei.run("baoding-2015", "status", now="2015-01-02T09:00", code=2)
    assert "baoding-2015" in r.output and CD in r.output and ZJK in r.output
    # adding it again changes nothing; another file under its id is refused
    before = as_json(hebei.run(None, "history", "--format", "json", now="2015-01-02T09:00"))
    assert "已在运行" in hebei.run(None, "campaign", "add", ZJK, now="2015-01-02T09:00", user=None).output
    assert as_json(hebei.run(None, "history", "--format", "json", now="2015-01-02T09:00")) == before
    hebei.run(None, "campaign", "add", ZJK, now="2015-01-02T09:00", user="zjk_office", code=4)


def test_states_checklists_and_cohorts_are_each_campaigns_own(hebei, tmp_path):
    walk(hebei, tmp_path)
    yy = as_json(hebei.run(CD, "show", YUERYA, "--format", "json", now="2015-07-01T09:00"))
    zb = as_json(hebei.run(ZJK, "show", ZB_DEMO, "--format", "json", now="2015-07-01T09:00"))
    assert yy["state"] == "accepted" and zb["state"] == "accepted"
    assert set(yy["cohorts"]) == {"key"} and set(zb["cohorts"]) == {"key", "demo"}
    # the versions count each campaign's own changes (designation, start, 45 or so items, apply, accept)
    assert yy["version"] != zb["version"] or yy["version"] > 1
    applied = as_json(hebei.run(ZJK, "units", "--state", "accepted", "--format", "json", now="2015-07-01T09:00"))
    assert [u["code"] for u in applied] == [ZB_DEMO]
    applied = as_json(hebei.run(CD, "units", "--state", "accepted", "--format", "json", now="2015-07-01T09:00"))
    assert [u["code"] for u in applied] == [YUERYA]
    # the history of a campaign is its own rows (and the database's); with no campaign named, the whole log
    cd_rows = as_json(hebei.run(CD, "history", "--format", "json", now="2015-07-01T09:00"))
    zjk_rows = as_json(hebei.run(ZJK, "history", "--format", "json", now="2015-07-01T09:00"))
    every = as_json(hebei.run(None, "history", "--format", "json", now="2015-07-01T09:00"))
    assert not {r["unit"] for r in cd_rows if r["unit"]} & {ZB_DEMO, ZHANGBEI}
    assert not {r["unit"] for r in zjk_rows if r["unit"]} & {YUERYA, KUANCHENG}
    assert {r["seq"] for r in cd_rows} | {r["seq"] for r in zjk_rows} == {r["seq"] for r in every}
    assert all(r["detail"].get("in_campaign") == ZJK for r in zjk_rows if r["unit"])
    # one chain across both
    assert "完整" in hebei.run(None, "audit", "verify", now="2015-07-01T09:00", user=None).output


def test_reminders_assessment_and_reports_keep_to_their_campaign(hebei, tmp_path, monkeypatch):
    outbox = tmp_path / "outbox"
    monkeypatch.setenv("ANJIAN_OUTBOX", str(outbox))
    contacts.add(hebei.db, "宽城满族自治县", "宽城县安监局", "ab@kc.gov.cn", None, "admin", at("2014-12-13T09:00"))
    with scope.chosen(ZJK):
        contacts.add(hebei.db, "张北县", "张北县安监局", "ab@zb.gov.cn", None, "admin", at("2014-12-13T09:00"))
    walk(hebei, tmp_path)
    # 2015-12-21: 10 days before Chengde's key_townships (2015-12-31) and Zhangjiakou's demonstration
    day = "2015-12-21T08:30"
    cd = as_json(hebei.run(CD, "remind", "--dry-run", "--format", "json", now=day, user=None))["sent"]
    zjk = as_json(hebei.run(ZJK, "remind", "--dry-run", "--format", "json", now=day, user=None))["sent"]
    assert {s["recipient"] for s in cd} == {"ab@kc.gov.cn"} and {s["recipient"] for s in zjk} == {"ab@zb.gov.cn"}
    assert all(u.startswith("1308") for s in cd for u in s["units"])
    assert all(u.startswith("1307") for s in zjk for u in s["units"])
    # `remind` with no campaign named runs each campaign's pass in turn, as the daemon does (`run_passes`),
    # and a second pass sends nothing again
    from anjian.workflow.reminders.run import run_passes
    from anjian.workflow.settings import resolve

    both = as_json(hebei.run(None, "remind", "--format", "json", now=day, user=None))
    assert both["campaigns"] == [CD, ZJK]
    assert {s["recipient"] for s in both["sent"]} == {"ab@kc.gov.cn", "ab@zb.gov.cn"}
    assert len(list(outbox.glob("*.eml"))) == len(both["sent"])
    assert "chengde-2014、zhangjiakou-2015" in hebei.run(None, "remind", now=day, user=None).output
    settings = resolve(hebei.url, env={"ANJIAN_HOME": str(hebei.home), "ANJIAN_OUTBOX": str(outbox)})
    again = run_passes(hebei.db, at(day), settings.notify, outbox)
    assert [cid for cid, _r in again] == [CD, ZJK]
    assert [s for _c, r in again for s in r.sent] == []
    zb_notices = as_json(hebei.run(ZJK, "notices", "--unit", ZHANGBEI, "--format", "json", now=day))
    assert zb_notices and all(n["recipient"] == "ab@zb.gov.cn" for n in zb_notices)

    score = as_json(hebei.run(ZJK, "assessment", "--format", "json", now="2016-01-05T09:00"))
    assert score["campaign"] == ZJK and {c["code"][:4] for c in score["counties"]} == {"1307"}
    score = as_json(hebei.run(CD, "assessment", "--format", "json", now="2016-01-05T09:00"))
    assert score["campaign"] == CD and {c["code"][:4] for c in score["counties"]} == {"1308"}
    html = tmp_path / "进度.html"
    hebei.run(ZJK, "report", "progress", "--out", str(html), now="2016-01-05T09:00")
    page = html.read_text("utf-8")
    assert "张家口市乡镇安全监管规范化建设（示例）" in page and "坝上" in page and "宽城" not in page
    assert "完整" in hebei.run(None, "audit", "verify", now="2016-01-05T09:00", user=None).output


def test_verify_finds_a_campaigns_state_or_row_changed_behind_the_log(hebei, tmp_path):
    walk(hebei, tmp_path)
    raw(hebei.db, f"UPDATE unit_states SET state = 'building' WHERE unit_code = '{ZB_DEMO}' AND campaign_no = 2")
    r = hebei.run(None, "audit", "verify", now="2015-07-01T09:00", user=None, code=6)
    assert ZB_DEMO in r.output and "building" in r.output
    raw(hebei.db, f"UPDATE unit_states SET state = 'accepted' WHERE unit_code = '{ZB_DEMO}' AND campaign_no = 2")
    assert "完整" in hebei.run(None, "audit", "verify", now="2015-07-01T09:00", user=None).output
    # an accepted row of Zhangjiakou's filed under Chengde's campaign, to show it in Chengde's history (by
    # the database's owner, who can lift the log's append-only guards)
    drop_audit_guards(hebei.db)
    raw(hebei.db, f"UPDATE audit_log SET campaign_no = 1 WHERE unit_code = '{ZB_DEMO}' AND action = 'accept'")
    r = hebei.run(None, "audit", "verify", now="2015-07-01T09:00", user=None, code=6)
    assert "campaign_no" in r.output


def test_the_pages_show_the_campaign_the_official_chose(hebei, tmp_path):
    """Served, the pages show the database's first campaign until an official picks another in the header
    (`?campaign=ID`, kept in a cookie for the pages that follow); the forms act on the campaign shown."""
    from support_server import serving
    from support_web import browser, csrf_of

    from anjian.workflow.settings import resolve

    settings = resolve(hebei.url, env={"ANJIAN_HOME": str(hebei.home)})
    with serving(hebei.db, settings) as served:
        client = browser(served, "zb_official")
        first = client.get("/")
        assert first.status_code == 200
        assert "张家口市乡镇安全监管规范化建设（示例）" in first.text and 'name="campaign"' in first.text
        assert client.get(f"/units/{ZHANGBEI}").status_code == 404  # not a unit of Chengde's campaign
        county = client.get(f"/units/{ZHANGBEI}", params={"campaign": ZJK})
        assert county.status_code == 200 and "坝上" in county.text and "省示范" not in county.text
        again = client.get(f"/units/{ZHANGBEI}")  # the choice is kept
        assert again.status_code == 200 and "坝上" in again.text
        # a designation posted from the page lands in the campaign shown
        done = client.post(f"/units/{ZHANGBEI}", data={"csrf_token": csrf_of(again.text), "township": ZB_KEY,
                                                         "cohort": "bashang"})
        assert done.status_code == 303 and "designated" in done.headers["location"]
        back = client.get("/", params={"campaign": ""})  # back to the first: the cookie is cleared
        assert client.get(f"/units/{ZHANGBEI}").status_code == 404 and back.status_code == 200
    zb = as_json(hebei.run(ZJK, "units", "--cohort", "bashang", "--format", "json", now="2015-01-02T09:00"))
    assert [u["code"] for u in zb] == [ZB_KEY]
    assert ZB_KEY not in {u["code"] for u in as_json(hebei.run(CD, "units", "--format", "json", now="2015-01-02T09:00"))}


def test_a_second_round_on_the_same_city_tells_each_contact_what_it_takes(hebei, tmp_path, monkeypatch):
    """A follow-up round on 承德市 (回头看: a copy of the campaign's file under an id of its own) covers the same
    units: the same milestone and rung are told once in each campaign, and a contact that takes only one
    campaign's notices gets only those."""
    from anjian.states.campaign import builtin_text
    from anjian.workflow.reminders.run import run_passes
    from anjian.workflow.settings import resolve

    again = tmp_path / "chengde-2017.toml"
    again.write_text(builtin_text(CD).replace(f'id = "{CD}"', 'id = "chengde-2017"'), "utf-8")
    hebei.run(None, "campaign", "add", str(again), now="2014-12-12T09:10", user=None)
    outbox = tmp_path / "outbox"
    hebei.run(None, "contact", "add", "宽城满族自治县", "--name", "安监局", "--email", "all@kc.gov.cn",
              now="2014-12-13T09:00", user=None)
    hebei.run(None, "contact", "add", "宽城满族自治县", "--name", "李科长", "--email", "li@kc.gov.cn",
              "--campaigns", CD, now="2014-12-13T09:00", user=None)
    r = hebei.run(None, "contact", "add", "宽城满族自治县", "--name", "王科长", "--email", "w@kc.gov.cn",
                  "--campaigns", "baoding-2015", now="2014-12-13T09:00", user=None, code=2)
    assert "baoding-2015" in r.output
    listed = as_json(hebei.run(None, "contact", "list", "宽城满族自治县", "--format", "json", now="2014-12-13T09:00"))
    assert {c["name"]: c["campaigns"] for c in listed} == {"安监局": None, "李科长": CD}

    settings = resolve(hebei.url, env={"ANJIAN_HOME": str(hebei.home), "ANJIAN_OUTBOX": str(outbox)})
    day = "2014-12-25T08:30"  # 5 days before the plans are due (2014-12-30), in both rounds
    passes = dict(run_passes(hebei.db, at(day), settings.notify, outbox))
    told = {cid: sorted(s.recipient for s in r.sent) for cid, r in passes.items()}
    assert told == {CD: ["all@kc.gov.cn", "li@kc.gov.cn"], ZJK: [], "chengde-2017": ["all@kc.gov.cn"]}
    assert [s for r in dict(run_passes(hebei.db, at(day), settings.notify, outbox)).values() for s in r.sent] == []
    assert "完整" in hebei.run(None, "audit", "verify", now=day, user=None).output
