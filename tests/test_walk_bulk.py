"""宽城满族自治县 (18 townships) walked from 2014-12 to 2016-12 with the bulk forms only (issue 13, "Done when"):
every step is a CLI command, counted; the files are as officials make them (Chinese headers and words,
GBK, UTF-16 TAB text, .xlsx, a filled-in --template sheet)."""

from __future__ import annotations

import json

from openpyxl import Workbook, load_workbook
from support import checklist_values

COUNTY = "宽城满族自治县"
CODE = "130827"
YUERYA = "130827102"  # provincial demonstration township (the province named it)
DEMOS = ["130827100", "130827101"]  # 宽城镇, 龙须门镇: county demonstration, also key
KEYS = ["130827103", "130827104"]  # 板城镇, 汤道河镇: key only
HEAVY = "130827109"  # 松岭镇: heavy task
MILESTONES = ["plan_submission", "provincial_demo", "county_demo", "demo_review", "key_compliance", "full_coverage"]
LIMIT = 60  # the target for the whole county (about 940 commands one fact at a time)


class Walk:
    """Runs CLI commands, insisting on their exit codes, and counts them."""

    def __init__(self, cli):
        self.cli, self.count = cli, 0

    def __call__(self, *args: str, now: str, user: str = "county_official", code: int = 0):
        self.count += 1
        r = self.cli(*args, now=now, user=user)
        assert r.exit_code == code, (args, r.output)
        return r

    def json(self, *args: str, now: str):
        return json.loads(self(*args, "--format", "json", now=now).stdout)


def cohorts_of(code: str) -> frozenset[str]:
    if code == YUERYA:
        return frozenset({"provincial_demo"})
    if code in DEMOS:
        return frozenset({"key", "county_demo"})
    if code in KEYS:
        return frozenset({"key"})
    return frozenset({"heavy_task"}) if code == HEAVY else frozenset()


def test_walk_kuancheng_with_the_bulk_forms_in_under_60_commands(chengde, cli, tmp_path, capsys):
    """The county reaches standardized with every milestone met in fewer than 60 commands (about 940 before)."""
    walk = Walk(cli)
    towns = [u["code"] for u in walk.json("units", "--county", CODE, "--level", "township", now="2014-12-15")]
    assert len(towns) == 18 and YUERYA in towns
    others = [c for c in towns if c not in [YUERYA, *DEMOS, *KEYS]]

    # Mobilization: the county's own checklist in one command, then the plan with its document.
    now = "2014-12-20T09:00"
    walk("record", COUNTY, "county.leadership_group=组长：县长 李四（宽政办〔2014〕88号）", "专题会议=是", now=now)
    plan = tmp_path / "宽城县乡镇安全监管规范化建设推进方案.pdf"
    plan.write_bytes("推进方案".encode() * 50)
    walk("advance", COUNTY, "submit_plan", "--evidence", str(plan), now=now)

    # Cohorts: the city office enters the key townships (GBK CSV, Chinese header and words), the county its
    # demonstration townships and the heavy-task one (an .xlsx).
    keys = tmp_path / "重点乡镇.csv"
    keys.write_bytes(("单位,类别\r\n" + "".join(f"{c},重点\r\n" for c in DEMOS + KEYS)).encode("gbk"))
    walk("designate", "--file", str(keys), now="2014-12-22T09:00", user="city_office")
    wb = Workbook()
    wb.active.append(["单位代码", "类别", None])
    for c in DEMOS:
        wb.active.append([c, "县区示范重点乡镇", None])
    wb.active.append([HEAVY, "任务重", None])
    wb.save(tmp_path / "示范.xlsx")
    walk("designate", "--file", str(tmp_path / "示范.xlsx"), now="2014-12-22T09:00")

    # Every township starts at once (Excel "Unicode text": UTF-16, TAB-separated, 开展创建).
    start = tmp_path / "开展创建.txt"
    start.write_bytes(("单位\t操作\t备注\r\n" + "".join(f"{c}\t开展创建\t\r\n" for c in towns)).encode("utf-16"))
    walk("advance", "--file", str(start), now="2015-01-05T09:00")

    # 峪耳崖镇 fills the sheet `record --template` wrote; the other 17 townships' checklists are one CSV.
    sheet = tmp_path / "峪耳崖镇清单.xlsx"
    walk("record", "宽城峪耳崖镇", "--template", str(sheet), now="2015-01-20T09:00", user="chief_yuerya")
    wb = load_workbook(sheet)
    ws = wb.active
    header = [c.value for c in ws[1]]
    values = checklist_values(cohorts_of(YUERYA))
    for n, row in enumerate(ws.iter_rows(min_row=2, values_only=True), 2):
        ws.cell(row=n, column=header.index("填报值") + 1, value=values[row[header.index("清单项")]])
    wb.save(sheet)
    walk("record", "--file", str(sheet), now="2015-01-20T09:00", user="chief_yuerya")
    rows = [f"{c},{item},{value},\n" for c in towns if c != YUERYA for item, value in checklist_values(cohorts_of(c)).items()]
    checklists = tmp_path / "各乡镇清单.csv"
    checklists.write_text("单位,清单项,填报值,证明材料\n" + "".join(rows), encoding="utf-8-sig")
    walk("record", "--file", str(checklists), now="2015-01-25T09:00")

    # Demonstration stage: the provincial demo township by 2015-03-31, the county demos by 2015-06-30.
    walk("advance", "宽城峪耳崖镇", "申请验收", now="2015-02-10T09:00", user="chief_yuerya")
    walk("advance", "宽城峪耳崖镇", "accept", "--note", "省级验收合格", now="2015-03-20T09:00", user="city_inspector")
    batch = tmp_path / "batch.csv"

    def fire(trigger: str, codes: list[str], now: str, user: str, note: str = "") -> None:
        batch.write_text("unit,trigger,note\n" + "".join(f"{c},{trigger},{note}\n" for c in codes), encoding="utf-8")
        walk("advance", "--file", str(batch), now=now, user=user)

    fire("申请验收", DEMOS, "2015-04-20T09:00", "county_official")
    fire("accept", DEMOS, "2015-04-30T09:00", "city_inspector", "资料齐全，现场核查合格")
    walk("advance", COUNTY, "approve_demonstration", "--note", "示范创建验收合格", now="2015-07-10T09:00", user="city_office")

    # Key compliance by 2015-12-31.
    fire("apply", KEYS, "2015-08-10T09:00", "county_official")
    fire("accept", KEYS, "2015-08-20T09:00", "city_inspector", "验收合格")
    walk("advance", COUNTY, "certify_key_compliance", now="2015-12-20T09:00", user="city_office")

    # Full coverage by 2016-12-31; one township fails its first inspection and comes back.
    fire("apply", others, "2016-04-01T09:00", "county_official")
    walk("advance", others[0], "reject", "--note", "台账不全", now="2016-05-01T09:00", user="city_inspector")
    walk("advance", others[0], "整改后重新申请", now="2016-05-20T09:00")
    fire("accept", others, "2016-06-01T09:00", "city_inspector", "验收合格")
    walk("advance", COUNTY, "certify_full_coverage", now="2016-10-01T09:00", user="city_office")

    # The end: standardized, every milestone met, all 18 accepted, the audit chain intact.
    end = "2016-12-31T18:00"
    county = walk.json("show", CODE, now=end)
    assert county["state"] == "standardized"
    assert [(m["id"], m["status"]) for m in county["milestones"]] == [(m, "met") for m in MILESTONES]
    k = walk.json("status", "--county", CODE, now=end)["counties"][0]
    assert (k["state"], k["accepted"], k["townships"], k["overdue"]) == ("standardized", 18, 18, [])
    assert walk.json("units", "--county", CODE, "--overdue", now=end) == []
    assert "审计日志完整" in walk("audit", "verify", now=end).output

    with capsys.disabled():
        print(f"\n宽城满族自治县 walked with the bulk forms in {walk.count} commands (target < {LIMIT})")
    assert walk.count < LIMIT
