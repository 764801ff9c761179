"""One county walked through the whole campaign under a fixed clock: 宽城满族自治县, with its provincial
demonstration township 峪耳崖镇 and all its other townships, from mobilization to standardized.

Bulk steps (checklists, most townships' transitions) go through the services to stay fast; the key
transitions go through the CLI, refused first where the plan says they must be."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from support import at

from anjian.workflow.services.advance import advance

COUNTY = "宽城满族自治县"
CODE = "130827"
YUERYA = "130827102"  # provincial demonstration township (the province named it)
DEMOS = ["130827100", "130827101"]  # 宽城镇, 龙须门镇: county demonstration, also key
KEYS = ["130827103", "130827104"]  # 板城镇, 汤道河镇: key only
HEAVY = "130827109"  # 松岭镇: heavy task
MILESTONES = ["plan_submission", "provincial_demo", "county_demo", "demo_review", "key_compliance", "full_coverage"]


def step(cli, *args: str, code: int = 0, now: str, user: str = "county_official"):
    """Run one CLI step and insist on its exit code."""
    r = cli(*args, now=now, user=user)
    assert r.exit_code == code, (args, r.output)
    return r


def show(cli, unit: str, now: str) -> dict:
    return json.loads(step(cli, "show", unit, "--format", "json", now=now).stdout)


def townships(cli) -> list[str]:
    rows = json.loads(step(cli, "units", "--county", CODE, "--level", "township", "--format", "json",
                           now="2014-12-15").stdout)
    return [u["code"] for u in rows]


def accept_by_service(db, fill_checklist, code: str, cohorts: frozenset[str], day: str) -> None:
    """A township's whole path, as its chief and a city inspector would walk it."""
    when = at(day)
    advance(db, code, "start", "chief", when)
    fill_checklist(db, code, cohorts, actor="chief", now=when)
    advance(db, code, "apply", "chief", when + dt.timedelta(days=10))
    advance(db, code, "accept", "city_inspector", when + dt.timedelta(days=20), note="资料齐全，现场核查合格")


def write(tmp_path, name: str, text: str) -> str:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return str(p)


@pytest.mark.slow  # the whole campaign through the CLI, step by step
def test_walk_kuancheng_from_mobilization_to_standardized(chengde, cli, fill_checklist, tmp_path):
    """宽城 walks every stage of the plan; each county transition is refused until the plan's condition
    holds, every milestone ends met, and the audit chain verifies."""
    all_towns = townships(cli)
    assert len(all_towns) == 18 and YUERYA in all_towns
    others = [c for c in all_towns if c not in [YUERYA, *DEMOS, *KEYS]]

    # Stage 1 — mobilization: a leadership group and the plan, with the plan document attached.
    now = "2014-12-20T09:00"
    r = step(cli, "advance", COUNTY, "submit_plan", code=3, now=now)
    assert "county.leadership_group" in r.output and "--evidence" in r.output
    step(cli, "record", COUNTY, "county.leadership_group", "组长：县长 李四（宽政办〔2014〕88号）", now=now)
    step(cli, "record", COUNTY, "county.plan_meeting", "是", now=now)
    plan = tmp_path / "宽城县乡镇安全监管规范化建设推进方案.pdf"
    plan.write_bytes("推进方案".encode() * 50)
    r = step(cli, "advance", COUNTY, "submit_plan", "--evidence", str(plan), now=now)
    assert "准备发动 → 示范创建" in r.output
    ms = {m["id"]: m["status"] for m in show(cli, CODE, now)["milestones"]}
    assert ms["plan_submission"] == "met"

    # The city office enters the key townships (the province's list); the county then picks its
    # demonstration townships among them and marks a heavy-task one.
    keys = [f"{c},key" for c in DEMOS + KEYS]
    step(cli, "designate", "--file", write(tmp_path, "keys.csv", "unit,cohort\n" + "\n".join(keys) + "\n"),
         now="2014-12-22T09:00", user="city_office")
    rows = [f"{c},county_demo" for c in DEMOS] + [f"{HEAVY},heavy_task"]
    step(cli, "designate", "--file", write(tmp_path, "cohorts.csv", "unit,cohort\n" + "\n".join(rows) + "\n"),
         now="2014-12-22T09:00")
    assert {u["code"] for u in json.loads(step(cli, "units", "--county", CODE, "--cohort", "county_demo",
                                                "--format", "json", now=now).stdout)} == set(DEMOS)

    # Stage 2 — the provincial demonstration township, by the CLI: start, checklist, apply, accept.
    step(cli, "advance", "宽城峪耳崖镇", "start", now="2015-01-05T09:00", user="chief_yuerya")
    fill_checklist(chengde, YUERYA, frozenset({"provincial_demo"}), actor="chief_yuerya", now=at("2015-01-20T09:00"))
    step(cli, "advance", "宽城峪耳崖镇", "apply", now="2015-02-10T09:00", user="chief_yuerya")
    r = step(cli, "advance", "宽城峪耳崖镇", "accept", code=3, now="2015-03-20T09:00", user="city_inspector")
    assert "验收意见" in r.output
    r = step(cli, "advance", "宽城峪耳崖镇", "accept", "--note", "合格", code=4, now="2015-03-20T09:00", user="chief_yuerya")
    assert "无权对乡镇执行“验收通过”（accept）" in r.output  # a township chief never gives the verdict, least of all on his own
    step(cli, "advance", "宽城峪耳崖镇", "accept", "--note", "省级验收合格", now="2015-03-20T09:00", user="city_inspector")
    ms = {m["id"]: m["status"] for m in show(cli, CODE, "2015-04-01")["milestones"]}
    assert ms["provincial_demo"] == "met"
    assert ms["county_demo"] == "pending"

    # The demonstration stage cannot be approved while the county demonstration townships are not accepted.
    r = step(cli, "advance", COUNTY, "approve_demonstration", "--note", "示范创建总结", code=3, now="2015-04-01T09:00",
             user="city_office")
    assert "县区示范重点乡镇尚未全部通过验收" in r.output
    assert "宽城镇" in r.output and "龙须门镇" in r.output

    for code in DEMOS:
        accept_by_service(chengde, fill_checklist, code, frozenset({"key", "county_demo"}), "2015-04-10T09:00")
    r = step(cli, "advance", COUNTY, "approve_demonstration", code=3, now="2015-07-10T09:00", user="city_office")
    assert "验收总结意见" in r.output and "县区示范" not in r.output
    step(cli, "advance", COUNTY, "approve_demonstration", "--note", "示范创建验收合格，召开现场观摩会",
         now="2015-07-10T09:00", user="city_office")
    ms = {m["id"]: m["status"] for m in show(cli, CODE, "2015-07-10")["milestones"]}
    assert [ms[m] for m in MILESTONES[:4]] == ["met"] * 4

    # Stage 3 — key compliance: refused while key townships are not accepted and others not started.
    r = step(cli, "advance", COUNTY, "certify_key_compliance", code=3, now="2015-07-15T09:00", user="city_office")
    assert "安全生产重点乡镇尚未全部通过验收" in r.output and "其他乡镇尚未全面开展" in r.output
    for code in KEYS:
        accept_by_service(chengde, fill_checklist, code, frozenset({"key"}), "2015-08-01T09:00")
    r = step(cli, "advance", COUNTY, "certify_key_compliance", code=3, now="2015-09-01T09:00", user="city_office")
    assert "重点乡镇尚未" not in r.output and "其他乡镇尚未全面开展" in r.output

    starts = "unit,trigger,note\n" + "".join(f"{c},start,\n" for c in others)
    r = step(cli, "advance", "--file", write(tmp_path, "start.csv", starts), now="2015-09-10T09:00", user="chief")
    assert f"已执行 {len(others)} / {len(others)} 行" in r.output
    step(cli, "advance", COUNTY, "certify_key_compliance", now="2015-12-20T09:00", user="city_office")
    ms = {m["id"]: m["status"] for m in show(cli, CODE, "2016-01-01")["milestones"]}
    assert ms["key_compliance"] == "met"

    # Stage 4 — full coverage: refused until every township is accepted.
    r = step(cli, "advance", COUNTY, "certify_full_coverage", code=3, now="2016-01-10T09:00", user="city_office")
    assert "尚有乡镇未达标" in r.output
    for code in others:
        cohorts = frozenset({"heavy_task"}) if code == HEAVY else frozenset()
        fill_checklist(chengde, code, cohorts, actor="chief", now=at("2016-03-01T09:00"))
    applies = "unit,trigger,note\n" + "".join(f"{c},apply,\n" for c in others)
    step(cli, "advance", "--file", write(tmp_path, "apply.csv", applies), now="2016-04-01T09:00", user="chief")
    # one township fails its first inspection and comes back
    step(cli, "advance", others[0], "reject", "--note", "台账不全", now="2016-05-01T09:00", user="city_inspector")
    step(cli, "advance", others[0], "resubmit", now="2016-05-20T09:00", user="chief")
    accepts = "unit,trigger,note\n" + "".join(f"{c},accept,验收合格\n" for c in others)
    step(cli, "advance", "--file", write(tmp_path, "accept.csv", accepts), now="2016-06-01T09:00", user="city_inspector")
    step(cli, "advance", COUNTY, "certify_full_coverage", now="2016-10-01T09:00", user="city_office")

    # The end: standardized, every milestone met for the county and each township, the chain intact.
    end = "2016-12-31T18:00"
    county = show(cli, CODE, end)
    assert county["state"] == "standardized"
    assert [(m["id"], m["status"]) for m in county["milestones"]] == [(m, "met") for m in MILESTONES]
    assert all(not t["allowed"] for t in county["triggers"])
    for code in all_towns:
        town = show(cli, code, end)
        assert town["state"] == "accepted"
        assert {m["status"] for m in town["milestones"]} == {"met"}
    k = json.loads(step(cli, "status", "--county", CODE, "--format", "json", now=end).stdout)["counties"][0]
    assert (k["state"], k["accepted"], k["townships"], k["overdue"], k["next_milestone"]) == \
        ("standardized", 18, 18, [], None)
    assert k["cohorts"]["county_demo"] == [2, 2] and k["cohorts"]["key"] == [4, 4]
    assert json.loads(step(cli, "units", "--county", CODE, "--overdue", "--format", "json", now=end).stdout) == []

    moves = [(h["trigger"], h["from_state"], h["to_state"])
             for h in json.loads(step(cli, "history", CODE, "--format", "json", now=end).stdout)
             if h["trigger"] not in ("record",)]
    assert moves == [("submit_plan", "mobilization", "demonstration"),
                     ("approve_demonstration", "demonstration", "key_compliance"),
                     ("certify_key_compliance", "key_compliance", "full_coverage"),
                     ("certify_full_coverage", "full_coverage", "standardized")]
    r = step(cli, "audit", "verify", now=end)
    assert "审计日志完整" in r.output
