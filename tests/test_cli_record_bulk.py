"""`anjian record` in bulk (issue 13 "the checklist in one go"): several ITEM=VALUE pairs, `--file` CSV or
.xlsx (all or nothing, or --partial), `--template` and its filled sheet read back, items named by label."""

from __future__ import annotations

import json

from openpyxl import load_workbook
from sqlalchemy import select
from support import audit_count, snapshot

from anjian.workflow.store.models import AuditRow, ChecklistValue, Unit

YUERYA = "130827102"  # 宽城峪耳崖镇
LONGXUMEN = "130827101"


def stored(db, code: str) -> dict[str, str]:
    with db.read() as s:
        return dict(s.execute(select(ChecklistValue.item, ChecklistValue.value).where(ChecklistValue.unit_code == code)).all())


def test_pairs_are_recorded_in_one_go_one_audit_row_each(chengde, cli):
    """`record UNIT a=1 b=是` writes each item, one `record` audit row per item with the usual detail keys."""
    n0 = audit_count(chengde)
    with chengde.read() as s:
        v0 = s.get(Unit, YUERYA).version
    r = cli("record", "宽城峪耳崖镇", "staff.part_time=3", "six.vehicle=是", "ledger.documents=张三")
    assert r.exit_code == 0, r.output
    assert stored(chengde, YUERYA) == {"staff.part_time": "3", "six.vehicle": "是", "ledger.documents": "张三"}
    assert audit_count(chengde) == n0 + 3
    with chengde.read() as s:
        rows = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(3)).all()
        assert s.get(Unit, YUERYA).version == v0 + 3
    details = [json.loads(a.detail) for a in reversed(rows)]
    assert [d["item"] for d in details] == ["staff.part_time", "six.vehicle", "ledger.documents"]
    assert [d["version"] for d in details] == [v0 + 1, v0 + 2, v0 + 3]
    assert all({"item", "value", "previous", "version"} <= set(d) for d in details)


def test_one_bad_pair_writes_nothing_and_lists_every_problem(chengde, cli):
    """Any bad pair: exit 2, each problem named, nothing written."""
    before = snapshot(chengde)
    r = cli("record", YUERYA, "staff.part_time=x", "six.vehicle=maybe", "no.such=1", "ledger.documents=张三")
    assert r.exit_code == 2
    assert "staff.part_time" in r.output and "six.vehicle" in r.output and "no.such" in r.output
    assert "整批未写入" in r.output
    assert snapshot(chengde) == before


def test_items_by_label_part_and_short_code_and_ambiguity_refused(chengde, cli):
    """An item by a distinctive part of its label or the code's last part; an ambiguous name lists candidates."""
    r = cli("record", YUERYA, "执法车辆=是", "part_time=2")
    assert r.exit_code == 0, r.output
    assert stored(chengde, YUERYA) == {"six.vehicle": "是", "staff.part_time": "2"}
    before = snapshot(chengde)
    r = cli("record", YUERYA, "六有=是")
    assert r.exit_code == 2
    assert "six.vehicle" in r.output and "six.office_space" in r.output
    assert snapshot(chengde) == before


def test_evidence_per_item(chengde, cli, tmp_path):
    """`--evidence ITEM=FILE` attaches the file to that item's audit row only."""
    f = tmp_path / "车辆行驶证.pdf"
    f.write_bytes(b"%PDF")
    r = cli("record", YUERYA, "six.vehicle=是", "staff.part_time=2", "--evidence", f"six.vehicle={f}")
    assert r.exit_code == 0, r.output
    with chengde.read() as s:
        rows = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(2)).all()
    ev = {json.loads(a.detail)["item"]: json.loads(a.evidence or "[]") for a in rows}
    assert len(ev["six.vehicle"]) == 1 and ev["staff.part_time"] == []


def test_evidence_finds_its_item_named_by_label_in_the_pair_and_by_code_in_evidence(chengde, cli, tmp_path):
    """`六有：有执法车辆=是 --evidence six.vehicle=FILE` is one item named two ways: the file goes with it;
    evidence for an item not recorded here is still refused, nothing written."""
    f = tmp_path / "车辆行驶证.pdf"
    f.write_bytes(b"%PDF")
    r = cli("record", YUERYA, "六有：有执法车辆=是", "--evidence", f"six.vehicle={f}")
    assert r.exit_code == 0, r.output
    with chengde.read() as s:
        last = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).one()
    assert json.loads(last.detail)["item"] == "six.vehicle" and len(json.loads(last.evidence)) == 1
    before = audit_count(chengde)
    r = cli("record", YUERYA, "六有：有执法车辆=否", "--evidence", f"six.office_space={f}")
    assert r.exit_code == 2 and "six.office_space" in r.output and audit_count(chengde) == before


def test_the_old_one_fact_form_still_works(chengde, cli):
    """`record UNIT ITEM VALUE` (contract line 35) is unchanged."""
    r = cli("record", YUERYA, "staff.part_time", "2")
    assert r.exit_code == 0, r.output
    assert stored(chengde, YUERYA) == {"staff.part_time": "2"}


def test_file_csv_for_two_townships_with_chinese_headers(chengde, cli, tmp_path):
    """`record --file` (单位,清单项,值,证明材料) records many townships; evidence is taken from the file's folder."""
    (tmp_path / "v.pdf").write_bytes(b"%PDF")
    p = tmp_path / "c.csv"
    p.write_text("单位,清单项,值,证明材料\n峪耳崖镇,six.vehicle,是,v.pdf\n龙须门镇,staff.part_time,3,\n龙须门镇,six.gear,,\n",
                 encoding="gbk")
    r = cli("record", "--file", str(p))
    assert r.exit_code == 0, r.output
    assert stored(chengde, YUERYA) == {"six.vehicle": "是"}
    assert stored(chengde, LONGXUMEN) == {"staff.part_time": "3"}


def test_file_all_or_nothing_and_partial(chengde, cli, tmp_path):
    """A bad row refuses the whole file (exit 2); with --partial the rest is written, exit 0, problems listed
    on stderr and in --errors FILE (issue 13 point 9)."""
    p = tmp_path / "c.csv"
    p.write_text("unit,item,value\n峪耳崖镇,staff.part_time,3\n峪耳崖镇,six.vehicle,maybe\n", encoding="utf-8")
    before = snapshot(chengde)
    r = cli("record", "--file", str(p))
    assert r.exit_code == 2 and "第 3 行" in r.output
    assert snapshot(chengde) == before
    errors = tmp_path / "e.csv"
    r = cli("record", "--file", str(p), "--partial", "--errors", str(errors))
    assert r.exit_code == 0, r.output
    assert "第 3 行" in r.stderr and "1 行未记录" in r.stderr
    assert stored(chengde, YUERYA) == {"staff.part_time": "3"}
    assert "six.vehicle" in errors.read_text("utf-8-sig")


def test_many_problems_print_the_first_50_and_a_count(chengde, cli, tmp_path):
    """A file of 120 bad rows prints 50 problems and says how many more."""
    p = tmp_path / "c.csv"
    p.write_text("unit,item,value\n" + "".join(f"没有{i}镇,six.vehicle,是\n" for i in range(120)), encoding="utf-8")
    r = cli("record", "--file", str(p))
    assert r.exit_code == 2
    assert r.output.count("  - 第 ") == 50
    assert "另有 70 条未列出" in r.output


def test_template_written_and_read_back(chengde, cli, tmp_path):
    """`--template` writes this township's items to fill (not 专职 ≥ 0); the filled sheet records only filled values."""
    out = tmp_path / "t.xlsx"
    assert cli("record", YUERYA, "staff.part_time=2").exit_code == 0
    r = cli("record", YUERYA, "--template", str(out))
    assert r.exit_code == 0, r.output
    wb = load_workbook(out)
    ws = wb.active
    header = [c.value for c in ws[1]]
    assert header[:3] == ["单位代码", "单位", "清单项"] and "填报值" in header and "证明材料" in header
    items = {row[2]: row for row in ws.iter_rows(min_row=2, values_only=True)}
    assert "staff.full_time" not in items  # ≥ 0 for an ordinary township: not an item to fill
    assert items["staff.part_time"][header.index("现值")] == "2"
    col = header.index("填报值") + 1
    for n, row in enumerate(ws.iter_rows(min_row=2, values_only=True), 2):
        if row[2] == "six.vehicle":
            ws.cell(row=n, column=col, value="是")
        if row[2] == "staff.part_time":
            ws.cell(row=n, column=col, value=2)  # unchanged: not re-recorded
    wb.save(out)
    n0 = audit_count(chengde)
    r = cli("record", "--file", str(out))
    assert r.exit_code == 0, r.output
    assert audit_count(chengde) == n0 + 1
    assert stored(chengde, YUERYA) == {"staff.part_time": "2", "six.vehicle": "是"}


def test_an_xlsx_past_the_batch_rows_is_refused_before_anything(chengde, cli, tmp_path, monkeypatch):
    """The batch limits hold for a spreadsheet as for a CSV: 3 rows over a limit of 2 exit 2, nothing written."""
    from openpyxl import Workbook

    monkeypatch.setenv("ANJIAN_BATCH_MAX_ROWS", "2")
    wb = Workbook()
    wb.active.append(["unit", "item", "value"])
    for item in ("six.vehicle", "six.gear", "six.office_space"):
        wb.active.append([YUERYA, item, "是"])
    wb.save(tmp_path / "c.xlsx")
    before = snapshot(chengde)
    r = cli("record", "--file", str(tmp_path / "c.xlsx"))
    assert r.exit_code == 2 and "batch_max_rows" in r.output
    assert snapshot(chengde) == before


def test_messages_in_english_on_request(chengde, cli, monkeypatch):
    """With ANJIAN_LANG=en the bulk record speaks English; JSON keeps the identifiers."""
    monkeypatch.setenv("ANJIAN_LANG", "en")
    r = cli("record", YUERYA, "six.vehicle=maybe")
    assert r.exit_code == 2 and "is a yes/no item" in r.output and "nothing was written" in r.output
    r = cli("record", YUERYA, "six.vehicle=是", "staff.part_time=2")
    assert r.exit_code == 0 and "2 recorded, 0 unchanged, 2 in all" in r.output
    r = cli("designate", YUERYA, "重点", "--format", "json")
    assert json.loads(r.stdout)[0]["cohort"] == "key"
