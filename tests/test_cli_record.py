"""`anjian record`: one checklist fact — flags, counts and texts as officials write them, bad values
refused with exit 2, and each real change versioned and audited."""

from __future__ import annotations

import hashlib
import json

import pytest
from sqlalchemy import select
from support import audit_count, snapshot

from anjian.workflow.services.officials import os_login
from anjian.workflow.store.models import AuditRow, ChecklistValue, Unit

YUERYA = "130827102"  # 宽城峪耳崖镇
KUANCHENG = "130827"  # 宽城满族自治县


def stored(db, code: str, item: str) -> str | None:
    with db.read() as s:
        row = s.get(ChecklistValue, (code, item))
        return row.value if row else None


def audits_and_version(db, code: str) -> tuple[int, int]:
    """The audit row count and the unit's version."""
    with db.read() as s:
        version = s.get(Unit, code).version
    return audit_count(db), version


@pytest.mark.parametrize(("word", "value"), [
    ("是", "是"), ("否", "否"), ("yes", "是"), ("no", "否"), ("1", "是"), ("0", "否"),
    ("YES", "是"), ("ｙｅｓ", "是"), (" 有 ", "是"), ("无", "否"), ("√", "是"),
])
def test_flag_words_are_stored_as_shi_or_fou(chengde, cli, word, value):
    """Each yes/no word an official writes is stored as 是 or 否."""
    r = cli("record", YUERYA, "six.vehicle", word)
    assert r.exit_code == 0, r.output
    assert f"六有：有执法车辆：{value}" in r.output
    assert stored(chengde, YUERYA, "six.vehicle") == value


@pytest.mark.parametrize("word", ["maybe", "是的吧", "2", ""])
def test_unknown_flag_word_is_bad_input(chengde, cli, word):
    """A flag value that is neither yes nor no exits 2, says how to write it, and stores nothing."""
    before = snapshot(chengde)
    r = cli("record", YUERYA, "six.vehicle", word)
    assert r.exit_code == 2
    assert "是 or 否" in r.output
    assert snapshot(chengde) == before


@pytest.mark.parametrize(("text", "value"), [("4", "4"), ("４", "4"), ("１２", "12"), (" 7 ", "7"), ("007", "7"), ("0", "0")])
def test_counts_fold_full_width_digits(chengde, cli, text, value):
    """A count is a whole number; full-width digits are folded, leading zeros dropped."""
    r = cli("record", YUERYA, "staff.full_time", text)
    assert r.exit_code == 0, r.output
    assert stored(chengde, YUERYA, "staff.full_time") == value


@pytest.mark.parametrize("text", ["-1", "４.5", "four", "四", "1e3", "+3", "٣", ""])
def test_bad_counts_are_refused(chengde, cli, text):
    """A negative, fractional, spelled-out or non-ASCII-script number exits 2 and stores nothing."""
    before = snapshot(chengde)
    r = cli("record", YUERYA, "staff.full_time", "--", text)  # `--`: "-1" is a value, not an option
    assert r.exit_code == 2
    assert "whole number" in r.output
    assert snapshot(chengde) == before


def test_text_is_kept_as_written(chengde, cli):
    """A text item keeps its Chinese punctuation and full-width characters, trimmed at the ends."""
    r = cli("record", YUERYA, "ledger.documents", "  王五（党政办，电话：１３８）  ")
    assert r.exit_code == 0, r.output
    assert stored(chengde, YUERYA, "ledger.documents") == "王五（党政办，电话：１３８）"


@pytest.mark.parametrize(("text", "words"), [("   ", "needs some text"), ("甲\n乙", "control characters"),
                                             ("长" * 501, "longer than 500")])
def test_bad_text_is_refused(chengde, cli, text, words):
    """Blank text, a line break or more than 500 characters exit 2."""
    before = snapshot(chengde)
    r = cli("record", YUERYA, "ledger.documents", text)
    assert r.exit_code == 2
    assert words in r.output
    assert snapshot(chengde) == before


def test_unknown_item_lists_the_items(chengde, cli):
    """An unknown item exits 2 and lists the items of that level."""
    before = snapshot(chengde)
    r = cli("record", YUERYA, "six.helicopter", "是")
    assert r.exit_code == 2
    assert "six.helicopter" in r.output
    assert "six.vehicle" in r.output and "staff.full_time" in r.output and "innovation.model" in r.output
    assert snapshot(chengde) == before


def test_county_item_on_a_township_is_unknown(chengde, cli):
    """A county's item is not a township's: exit 2."""
    r = cli("record", YUERYA, "county.leadership_group", "张三")
    assert r.exit_code == 2
    assert "does not exist for a township" in r.output


def test_item_by_label_and_with_dashes(chengde, cli):
    """An item may be named by its exact label, or with `-` for `_`."""
    assert cli("record", YUERYA, "六有：有执法车辆", "是").exit_code == 0
    assert cli("record", YUERYA, "six.office-space", "是").exit_code == 0
    assert stored(chengde, YUERYA, "six.vehicle") == "是"
    assert stored(chengde, YUERYA, "six.office_space") == "是"


def test_unknown_unit_is_bad_input(chengde, cli):
    """An unknown unit exits 2."""
    r = cli("record", "没有这个镇", "six.vehicle", "是")
    assert r.exit_code == 2
    assert "名录中没有这个单位" in r.output


def test_kuancheng_with_a_county_item_means_the_county(chengde, cli):
    """宽城 with a county item is narrowed to the county."""
    r = cli("record", "宽城", "county.leadership_group", "组长 张三")
    assert r.exit_code == 0, r.output
    assert "宽城满族自治县" in r.output
    assert stored(chengde, KUANCHENG, "county.leadership_group") == "组长 张三"


def test_kuancheng_with_a_county_item_label_means_the_county(chengde, cli):
    """Naming the county item by its label narrows 宽城 to the county just as its id does."""
    r = cli("record", "宽城", "成立乡镇安全监管规范化建设领导组织（组长及成立文件）", "组长 张三")
    assert r.exit_code == 0, r.output
    assert stored(chengde, KUANCHENG, "county.leadership_group") == "组长 张三"


def test_unchanged_value_writes_nothing(chengde, cli):
    """Recording the value already stored (even in another spelling) writes no row and keeps the version."""
    assert cli("record", YUERYA, "staff.full_time", "4").exit_code == 0
    before = snapshot(chengde)
    r = cli("record", YUERYA, "staff.full_time", "４")
    assert r.exit_code == 0
    assert "无变化" in r.output
    assert snapshot(chengde) == before


def test_record_bumps_version_and_audits_item_value_previous(chengde, cli):
    """Each change bumps the unit's version and writes one audit row with item, value and previous (and,
    as the CLI's admin acts --as an official, the admin in `by`)."""
    with chengde.read() as s:
        v0 = s.get(Unit, YUERYA).version
    assert cli("record", YUERYA, "staff.full_time", "3").exit_code == 0
    r = cli("record", YUERYA, "staff.full_time", "5", user="chief", now="2015-01-05T10:00")
    assert r.exit_code == 0
    assert "原为 3" in r.output
    with chengde.read() as s:
        assert s.get(Unit, YUERYA).version == v0 + 2
        assert s.get(Unit, YUERYA).changed_by == "chief"
        rows = s.scalars(select(AuditRow).where(AuditRow.unit_code == YUERYA).order_by(AuditRow.seq)).all()
    assert [r.action for r in rows] == ["record", "record"]
    assert json.loads(rows[0].detail) == {"item": "staff.full_time", "value": "3", "previous": None, "version": v0 + 1,
                                          "by": os_login()}
    assert json.loads(rows[1].detail) == {"item": "staff.full_time", "value": "5", "previous": "3", "version": v0 + 2,
                                          "by": os_login()}
    assert rows[1].actor == "chief"
    assert rows[1].from_state == rows[1].to_state == "not_started"


def test_json_output(chengde, cli):
    """`--format json` says what was stored, what it replaced and whether anything changed."""
    r = cli("record", YUERYA, "staff.villages", "１５", "--format", "json")
    assert r.exit_code == 0
    data = json.loads(r.stdout)
    assert (data["code"], data["item"], data["value"], data["previous"], data["changed"]) == \
        (YUERYA, "staff.villages", "15", None, True)
    again = json.loads(cli("record", YUERYA, "staff.villages", "15", "--format", "json").stdout)
    assert again["changed"] is False and again["seq"] is None


def test_item_for_another_cohort_is_recorded_with_a_warning(chengde, cli):
    """An item only key townships need is still recorded for another township, with a warning."""
    r = cli("record", YUERYA, "org.separate_station", "是")
    assert r.exit_code == 0
    assert "⚠" in r.output
    assert stored(chengde, YUERYA, "org.separate_station") == "是"


def test_same_value_with_evidence_is_recorded(chengde, cli, tmp_path):
    """Attaching evidence to a value already stored is a change worth an audit row."""
    photo = tmp_path / "car.jpg"
    photo.write_bytes(b"car")
    assert cli("record", YUERYA, "six.vehicle", "是").exit_code == 0
    before = audits_and_version(chengde, YUERYA)
    r = cli("record", YUERYA, "six.vehicle", "是", "--evidence", str(photo))
    assert r.exit_code == 0
    after = audits_and_version(chengde, YUERYA)
    assert after[0] == before[0] + 1 and after[1] == before[1] + 1
    h = json.loads(cli("history", YUERYA, "--format", "json").stdout)
    assert h[-1]["evidence"][0]["sha256"] == hashlib.sha256(b"car").hexdigest()


def test_missing_evidence_is_bad_input(chengde, cli, tmp_path):
    """A missing evidence file exits 2 and records nothing."""
    before = snapshot(chengde)
    r = cli("record", YUERYA, "six.vehicle", "是", "--evidence", str(tmp_path / "none.jpg"))
    assert r.exit_code == 2
    assert snapshot(chengde) == before


def test_city_has_no_checklist(chengde, cli):
    """The city has no checklist: exit 2."""
    r = cli("record", "130800", "six.vehicle", "是")
    assert r.exit_code == 2
    assert "no checklist" in r.output
