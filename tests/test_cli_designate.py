"""`anjian designate`: cohorts of townships, one at a time or from a CSV file, all or nothing, with
the plan's limits (1–3 county demonstration townships per county, each also a key township)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from support import snapshot

from anjian.workflow.services.officials import os_login
from anjian.workflow.store.models import AuditRow, Unit, UnitCohort

KUANCHENG = "130827"
TOWN = "130827100"  # 宽城镇
LONGXUMEN = "130827101"
BANCHENG = "130827103"
TANGDAOHE = "130827104"
YUERYA = "130827102"  # provincial_demo in the registry
GAOSITAI = "130821106"  # 承德县高寺台镇


def cohorts(db, code: str) -> set[str]:
    with db.read() as s:
        return set(s.scalars(select(UnitCohort.cohort).where(UnitCohort.unit_code == code)))


def write_csv(tmp_path, text: str):
    p = tmp_path / "cohorts.csv"
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_designate_one_township(chengde, cli):
    """`designate UNIT key` adds the cohort, bumps the version and audits it (the admin acting as tester in `by`)."""
    with chengde.read() as s:
        v0 = s.get(Unit, TOWN).version
    r = cli("designate", "宽城镇", "key")
    assert r.exit_code == 0, r.output
    assert "宽城镇（130827100）列为安全生产重点乡镇" in r.output
    assert "更改 1 项" in r.output
    assert cohorts(chengde, TOWN) == {"key"}
    with chengde.read() as s:
        assert s.get(Unit, TOWN).version == v0 + 1
        row = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).one()
    assert (row.action, row.unit_code, row.actor, json.loads(row.detail)) == ("designate", TOWN, "tester", {"cohort": "key", "version": v0 + 1, "by": os_login()})


def test_designating_twice_is_a_no_op(chengde, cli):
    """Designating a township already in the cohort writes nothing and says so."""
    assert cli("designate", TOWN, "key").exit_code == 0
    before = snapshot(chengde)
    r = cli("designate", TOWN, "key")
    assert r.exit_code == 0
    assert "无变化" in r.output and "更改 0 项" in r.output
    assert snapshot(chengde) == before


def test_cohort_with_dash_and_full_width(chengde, cli):
    """Cohort names accept `-` for `_` and full-width letters."""
    assert cli("designate", TOWN, "heavy-task").exit_code == 0
    assert cli("designate", LONGXUMEN, "ｋｅｙ").exit_code == 0
    assert cohorts(chengde, TOWN) == {"heavy_task"}
    assert cohorts(chengde, LONGXUMEN) == {"key"}


def test_remove(chengde, cli):
    """--remove takes the township out of the cohort and audits `undesignate`."""
    assert cli("designate", TOWN, "heavy_task").exit_code == 0
    r = cli("designate", TOWN, "heavy_task", "--remove")
    assert r.exit_code == 0
    assert "移出安全监管任务较重的乡镇" in r.output
    assert cohorts(chengde, TOWN) == set()
    with chengde.read() as s:
        row = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).one()
    assert row.action == "undesignate"


def test_removing_what_is_not_there_is_a_no_op(chengde, cli):
    """--remove of a cohort the township does not have writes nothing."""
    before = snapshot(chengde)
    r = cli("designate", TOWN, "key", "--remove")
    assert r.exit_code == 0
    assert "无变化" in r.output
    assert snapshot(chengde) == before


def test_county_demo_requires_key(chengde, cli):
    """A county demonstration township must be a key township: otherwise exit 2, nothing written."""
    before = snapshot(chengde)
    r = cli("designate", TOWN, "county_demo")
    assert r.exit_code == 2
    assert "须为安全生产重点乡镇" in r.output
    assert snapshot(chengde) == before


def test_county_demo_of_a_key_township(chengde, cli):
    """After key, county_demo is accepted."""
    assert cli("designate", TOWN, "key").exit_code == 0
    r = cli("designate", TOWN, "county_demo")
    assert r.exit_code == 0, r.output
    assert cohorts(chengde, TOWN) == {"key", "county_demo"}


def test_removing_key_from_a_county_demo_is_refused(chengde, cli):
    """The limits hold after a removal too: a county demo cannot lose its key flag."""
    assert cli("designate", TOWN, "key").exit_code == 0
    assert cli("designate", TOWN, "county_demo").exit_code == 0
    before = snapshot(chengde)
    r = cli("designate", TOWN, "key", "--remove")
    assert r.exit_code == 2
    assert "须为安全生产重点乡镇" in r.output
    assert snapshot(chengde) == before


def test_fourth_county_demo_in_a_county_is_refused(chengde, cli):
    """At most 3 county demonstration townships per county: the fourth exits 2, nothing written."""
    for code in (TOWN, LONGXUMEN, BANCHENG, TANGDAOHE):
        assert cli("designate", code, "key").exit_code == 0
    for code in (TOWN, LONGXUMEN, BANCHENG):
        assert cli("designate", code, "county_demo").exit_code == 0
    before = snapshot(chengde)
    r = cli("designate", TANGDAOHE, "county_demo")
    assert r.exit_code == 2
    assert "宽城满族自治县将有 4 个县区示范重点乡镇" in r.output and "至多 3 个" in r.output
    assert snapshot(chengde) == before


def test_three_county_demos_in_two_counties_are_fine(chengde, cli, tmp_path):
    """The limit counts per county: 3 in 宽城 and 1 in 承德县 is allowed."""
    rows = [f"{c},key\n{c},county_demo\n" for c in (TOWN, LONGXUMEN, BANCHENG, GAOSITAI)]
    r = cli("designate", "--file", write_csv(tmp_path, "unit,cohort\n" + "".join(rows)))
    assert r.exit_code == 0, r.output
    assert "更改 8 项" in r.output


def test_a_county_cannot_be_designated(chengde, cli):
    """Only townships carry cohorts: designating a county exits 2."""
    before = snapshot(chengde)
    r = cli("designate", KUANCHENG, "key")
    assert r.exit_code == 2
    assert "只有乡镇才能列入类别" in r.output
    assert snapshot(chengde) == before


def test_unknown_cohort_lists_the_cohorts(chengde, cli):
    """An unknown cohort exits 2 and lists the cohorts there are."""
    r = cli("designate", TOWN, "vip")
    assert r.exit_code == 2
    for c in ("provincial_demo", "county_demo", "key", "heavy_task"):
        assert c in r.output


def test_unknown_unit_is_bad_input(chengde, cli):
    """An unknown unit exits 2."""
    r = cli("designate", "没有这个镇", "key")
    assert r.exit_code == 2
    assert "名录中没有这个单位" in r.output


def test_missing_cohort_is_usage_error(chengde, cli):
    """UNIT without COHORT exits 2 with an example."""
    r = cli("designate", TOWN)
    assert r.exit_code == 2
    assert "单位 类别" in r.output


def test_file_applies_every_row(chengde, cli, tmp_path):
    """A file is applied in one go; a county_demo row may come before the same township's key row."""
    f = write_csv(tmp_path, f"unit,cohort\n{TOWN},county_demo\n{TOWN},key\n宽城龙须门镇,key\n{BANCHENG},heavy_task\n")
    r = cli("designate", "--file", f, "--format", "json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert [(d["code"], d["cohort"], d["changed"]) for d in data] == [
        (TOWN, "county_demo", True), (TOWN, "key", True), (LONGXUMEN, "key", True), (BANCHENG, "heavy_task", True)]
    assert cohorts(chengde, TOWN) == {"key", "county_demo"}
    assert cohorts(chengde, LONGXUMEN) == {"key"}


def test_file_with_bad_rows_writes_nothing_and_names_each_line(chengde, cli, tmp_path):
    """One bad unit and one bad cohort: exit 2, both lines named, the good rows not applied."""
    before = snapshot(chengde)
    f = write_csv(tmp_path, f"unit,cohort\n{TOWN},key\n没有这个镇,key\n{LONGXUMEN},vip\n{KUANCHENG},key\n")
    r = cli("designate", "--file", f)
    assert r.exit_code == 2
    assert "第 3 行" in r.output and "第 4 行" in r.output and "第 5 行" in r.output
    assert "第 2 行" not in r.output
    assert snapshot(chengde) == before


def test_file_over_the_limit_writes_nothing(chengde, cli, tmp_path):
    """Four county demos of one county in one file: refused as a whole."""
    before = snapshot(chengde)
    rows = "".join(f"{c},key\n{c},county_demo\n" for c in (TOWN, LONGXUMEN, BANCHENG, TANGDAOHE))
    r = cli("designate", "--file", write_csv(tmp_path, "unit,cohort\n" + rows))
    assert r.exit_code == 2
    assert "至多 3 个" in r.output
    assert snapshot(chengde) == before


def test_file_remove_column(chengde, cli, tmp_path):
    """A `remove` column takes townships out of a cohort."""
    assert cli("designate", TOWN, "heavy_task").exit_code == 0
    f = write_csv(tmp_path, f"unit,cohort,remove\n{TOWN},heavy_task,是\n{LONGXUMEN},heavy_task,\n")
    r = cli("designate", "--file", f)
    assert r.exit_code == 0, r.output
    assert cohorts(chengde, TOWN) == set()
    assert cohorts(chengde, LONGXUMEN) == {"heavy_task"}


def test_file_with_a_bad_header_is_bad_input(chengde, cli, tmp_path):
    """A file without the `cohort` column exits 2 naming line 1."""
    r = cli("designate", "--file", write_csv(tmp_path, f"unit,group\n{TOWN},key\n"))
    assert r.exit_code == 2
    assert "第 1 行：缺少列 cohort（类别）" in r.output
    assert cohorts(chengde, TOWN) == set()


def test_file_and_unit_together_is_usage_error(chengde, cli, tmp_path):
    """Either UNIT COHORT or --file, not both."""
    r = cli("designate", TOWN, "key", "--file", write_csv(tmp_path, f"unit,cohort\n{TOWN},key\n"))
    assert r.exit_code == 2
    assert cohorts(chengde, TOWN) == set()


@pytest.mark.parametrize("name", ["宽城峪耳崖镇", "峪耳崖镇", YUERYA])
def test_registry_cohorts_are_already_there(chengde, cli, name):
    """The registry's provincial demonstration townships carry the cohort from the start."""
    r = cli("designate", name, "provincial_demo")
    assert r.exit_code == 0
    assert "无变化" in r.output
