"""Limits with clear refusals: batch files past their rows or bytes are refused before any work (exit 2,
nothing written), refusals show the first 50 and a count with the whole list in a file or JSON, a batch's
denials are one audit row, and evidence is bounded, real, and copied before the write lock."""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import select
from support import T0, audit_count, snapshot

from anjian.workflow.errors import BadInput
from anjian.workflow.formats import tables
from anjian.workflow.settings import Limits, limits_settings
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import AuditRow

YUERYA = "130827102"  # 宽城峪耳崖镇
GAOSITAI = "130821106"  # 承德县高寺台镇, outside li's county
SHANGGU = "130821100"  # 承德县下板城镇, outside li's county too


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """The evidence store of the commands run by `cli`, in a folder of this test."""
    folder = tmp_path / "evidence-store"
    monkeypatch.setenv("ANJIAN_EVIDENCE", str(folder))
    return folder


def batch(tmp_path: Path, header: str, rows: list[str], name: str = "batch.csv") -> str:
    f = tmp_path / name
    f.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return str(f)


# -- batch files: rows and bytes, refused before any work ------------------------------------------
FILE_COMMANDS = {
    "advance": (("advance", "--file"), "unit,trigger", "{unit},start"),
    "designate": (("designate", "--file"), "unit,cohort", "{unit},key"),
    "contact import": (("contact", "import"), "unit,name,email", "{unit},张{i},z{i}@kc.gov.cn"),
    "calendar load": (("calendar", "load"), "date,workday", "2027-01-{day:02d},1"),
}


@pytest.mark.parametrize("command", FILE_COMMANDS)
def test_a_batch_past_its_rows_is_refused_before_any_work(chengde, cli, tmp_path, monkeypatch, command):
    """Every --file reader refuses a file of one row more than batch_max_rows (exit 2), naming the file,
    the limit and the setting, and writes nothing — not even the refusals its rows would have met."""
    args, header, row = FILE_COMMANDS[command]
    monkeypatch.setenv("ANJIAN_BATCH_MAX_ROWS", "10")
    f = batch(tmp_path, header, [row.format(unit=YUERYA, i=i, day=i + 1) for i in range(11)])
    before = snapshot(chengde)
    r = cli(*args, f, user="li")  # li may not designate nor load a calendar: the limit comes first
    assert r.exit_code == 2, r.output
    assert f in r.output and "超过 10 行" in r.output
    assert "batch_max_rows" in r.output and "ANJIAN_BATCH_MAX_ROWS" in r.output
    assert snapshot(chengde) == before


def test_a_batch_at_its_rows_passes_the_check(chengde, cli, tmp_path, monkeypatch):
    """A file of exactly batch_max_rows rows (blank lines not counted) is read and applied."""
    monkeypatch.setenv("ANJIAN_BATCH_MAX_ROWS", "2")
    f = batch(tmp_path, "unit,trigger", [f"{YUERYA},start", "", "130827100,start", ""])
    r = cli("advance", "--file", f)
    assert r.exit_code == 0, r.output
    assert "已执行 2 / 2 行" in r.output


def test_a_batch_past_its_bytes_is_refused_by_its_size(chengde, cli, tmp_path, monkeypatch):
    """A file larger than batch_max_bytes is refused by its size alone (exit 2): its unknown units are
    never looked up, and nothing is written."""
    monkeypatch.setenv("ANJIAN_BATCH_MAX_BYTES", "100")
    f = batch(tmp_path, "unit,trigger", [f"无此镇{i},start" for i in range(10)])
    assert Path(f).stat().st_size > 100
    before = snapshot(chengde)
    r = cli("advance", "--file", f)
    assert r.exit_code == 2, r.output
    assert f in r.output and "超过上限 100 字节" in r.output and "batch_max_bytes" in r.output
    assert "ANJIAN_BATCH_MAX_BYTES" in r.output and "无此镇" not in r.output
    assert snapshot(chengde) == before


def fifo_with(tmp_path: Path, data: bytes):
    """A named pipe in tmp_path and the thread writing `data` into it once a reader opens it."""
    import contextlib
    import os
    import threading

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as out:
            out.write(data)

    writer = threading.Thread(target=feed)
    writer.start()
    return fifo, writer


def test_a_stream_without_a_size_is_cut_at_the_byte_limit(tmp_path):
    """A file whose size no stat tells (a FIFO here, /dev/zero alike) is read no further than the limit."""
    fifo, writer = fifo_with(tmp_path, b"unit,trigger\n" + b"x" * 5000)
    try:
        with pytest.raises(BadInput, match="超过上限 1 KiB"):
            tables.read_csv(fifo, ("unit", "trigger"), (), Limits(batch_max_bytes=1024))
    finally:
        writer.join()


@pytest.mark.parametrize(("most", "refused"), [(2, True), (3, False)])
def test_a_pipe_is_read_once_and_its_rows_counted(tmp_path, most, refused):
    """A pipe (`--file <(iconv …)`) is read once: its rows are counted in memory, refused past the
    limit, and read whole within it."""
    fifo, writer = fifo_with(tmp_path, f"unit,trigger\n{YUERYA},start\n{YUERYA},apply\n{GAOSITAI},start\n".encode())
    try:
        if refused:
            with pytest.raises(BadInput, match="超过 2 行"):
                tables.read_csv(fifo, ("unit", "trigger"), (), Limits(batch_max_rows=most))
        else:
            records, _ = tables.read_csv(fifo, ("unit", "trigger"), (), Limits(batch_max_rows=most))
            assert [r.values["trigger"] for r in records] == ["start", "apply", "start"]
    finally:
        writer.join()


@pytest.mark.slow
def test_the_national_townships_fit_the_default_limits(tmp_path):
    """A file of 41,352 rows (the national registry's townships), each naming its township by a long
    full name (24 characters, longer than any in the registry) and a 60-character note, passes the
    default limits and is read whole."""
    note = "已按方案完成站所建设、人员配备与制度上墙，请县级验收。" * 2
    rows = [f"河北省承德市宽城满族自治县第{i:05d}号乡镇街道,start,{note}" for i in range(41_352)]
    f = batch(tmp_path, "unit,trigger,note", rows)
    limits = Limits()
    assert Path(f).stat().st_size < limits.batch_max_bytes
    records, problems = tables.read_csv(f, ("unit", "trigger"), ("note",), limits)
    assert (len(records), problems) == (41_352, [])


def test_rows_are_counted_as_records_not_lines(tmp_path):
    """A quoted note spanning lines is one row, in UTF-8 and in GBK alike: the count splits records as
    the reading does."""
    rows = [f'{YUERYA},start,"第一行\n第二行{i}"' for i in range(3)]
    for encoding in ("utf-8", "gbk"):
        f = tmp_path / f"notes-{encoding}.csv"
        f.write_bytes(("unit,trigger,note\n" + "\n".join(rows) + "\n").encode(encoding))
        tables.check_batch(f, Limits(batch_max_rows=3))
        with pytest.raises(BadInput, match="超过 2 行"):
            tables.check_batch(f, Limits(batch_max_rows=2))


# -- the settings -----------------------------------------------------------------------------------
def test_limits_come_from_the_config_file_then_the_environment(tmp_path):
    """The [limits] table of the config file sets a limit (sizes may carry a unit); ANJIAN_* overrides it."""
    config = tmp_path / "config.toml"
    config.write_text('[limits]\nbatch_max_rows = 7\nbatch_max_bytes = "2 MiB"\nevidence_max_bytes = "1G"\n')
    env = {"ANJIAN_CONFIG": str(config)}
    assert limits_settings(tmp_path, env) == Limits(7, 2 * 2**20, 2**30)
    env["ANJIAN_BATCH_MAX_ROWS"] = "9"
    assert limits_settings(tmp_path, env).batch_max_rows == 9
    assert limits_settings(tmp_path / "nowhere", {}) == Limits(50_000, 16 * 2**20, 100 * 2**20)


@pytest.mark.parametrize("value", ["0", "-3", "many", "1.5M"])
def test_a_bad_limit_is_refused_naming_its_source(tmp_path, value):
    """A limit that is not a positive whole number is refused, naming the variable that gave it."""
    with pytest.raises(BadInput, match="ANJIAN_EVIDENCE_MAX_BYTES"):
        limits_settings(tmp_path, {"ANJIAN_EVIDENCE_MAX_BYTES": value})


# -- refusals: the first 50 and a count; the whole list in a file or JSON -----------------------------
def unknown_rows(n: int) -> list[str]:
    return [f"无此镇{i:03d},start" for i in range(n)]


def test_the_terminal_shows_the_first_50_problems_and_a_count(chengde, cli, tmp_path):
    """A batch of 120 bad rows prints 50 of them and says how many more there are and where to find them."""
    f = batch(tmp_path, "unit,trigger", unknown_rows(120))
    r = cli("advance", "--file", f)
    assert r.exit_code == 2, r.output
    listed = [line for line in r.output.splitlines() if line.startswith("  - 第 ")]
    assert len(listed) == 50 and "无此镇049" in listed[-1]
    assert "另有 70 条未列出；全部问题见 --errors FILE 或 --format json" in r.output
    assert "无此镇050" not in r.output


def test_errors_file_holds_every_problem(chengde, cli, tmp_path):
    """--errors FILE writes every problem row as CSV (UTF-8 with BOM): line,unit,trigger,kind,reason."""
    f = batch(tmp_path, "unit,trigger", unknown_rows(120))
    out = tmp_path / "问题.csv"
    r = cli("advance", "--file", f, "--errors", str(out))
    assert r.exit_code == 2, r.output
    assert f"全部问题已写入 {out}" in r.output
    data = out.read_bytes()
    assert data.startswith(codecs.BOM_UTF8)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["line", "unit", "trigger", "kind", "reason"]
    assert len(rows) == 121
    assert rows[1][:4] == ["2", "无此镇000", "start", "bad_input"] and "无此镇000" in rows[1][4]
    assert rows[-1][:2] == ["121", "无此镇119"]


def test_json_carries_every_problem(chengde, cli, tmp_path):
    """--format json gives all 120 problems on stdout while the terminal's list stays short."""
    f = batch(tmp_path, "unit,trigger", unknown_rows(120))
    r = cli("advance", "--file", f, "--format", "json")
    assert r.exit_code == 2
    problems = json.loads(r.stdout)["problems"]
    assert [p["line"] for p in problems] == list(range(2, 122))


def test_other_long_refusals_are_cut_at_50_too(chengde, cli, tmp_path):
    """A refusal with many details from any command (bad contact rows here) shows 50 and a count."""
    f = batch(tmp_path, "unit,name,email", [f"{YUERYA},张{i},not-an-address" for i in range(80)])
    r = cli("contact", "import", f)
    assert r.exit_code == 2, r.output
    assert len([line for line in r.output.splitlines() if line.startswith("  - 第 ")]) == 50
    assert "另有 30 条未列出" in r.output


# -- denials: one audit row for a batch -----------------------------------------------------------
@pytest.mark.slow
def test_a_batch_of_1000_denials_is_one_audit_row_with_a_count(chengde, cli, tmp_path):
    """1,000 rows outside li's county exit 4 and add ONE `denied` row: the count, the first row's reason
    and the first five rows — not a thousand rows."""
    f = batch(tmp_path, "unit,trigger", [f"{(GAOSITAI, SHANGGU)[i % 2]},start" for i in range(1000)])
    before, count = snapshot(chengde), audit_count(chengde)
    r = cli("advance", "--file", f, user="li")
    assert r.exit_code == 4, r.output
    assert audit_count(chengde) == count + 1
    with chengde.read() as s:
        row = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc())).first()
    detail = json.loads(row.detail)
    assert (row.action, row.actor, detail["count"], detail["line"]) == ("denied", "li", 1000, 2)
    assert "不在其管辖范围内" in detail["reason"]
    assert [d["line"] for d in detail["rows"]] == [2, 3, 4, 5, 6]
    assert {k: v for k, v in snapshot(chengde).items() if k != "audit_log"} == \
        {k: v for k, v in before.items() if k != "audit_log"}


def test_a_designation_batch_of_denials_keeps_a_few_reasons(chengde, cli, tmp_path):
    """A designation file refused row by row is audited as one row quoting 20 reasons and the total."""
    from anjian.workflow.store.models import Unit

    with chengde.read() as s:
        outside = list(s.scalars(select(Unit.code).where(Unit.level == "township", Unit.parent_code != "130827")
                                 .order_by(Unit.code).limit(60)))
    assert len(outside) == 60
    f = batch(tmp_path, "unit,cohort", [f"{c},key" for c in outside])
    count = audit_count(chengde)
    r = cli("designate", "--file", f, user="li")
    assert r.exit_code == 4, r.output
    assert audit_count(chengde) == count + 1
    with chengde.read() as s:
        detail = json.loads(s.scalars(select(AuditRow).order_by(AuditRow.seq.desc())).first().detail)
    assert len(detail["details"]) == 20 and detail["details_total"] == 60


# -- evidence --------------------------------------------------------------------------------------
def test_proc_self_environ_is_refused_as_evidence(chengde, cli, tmp_path, store):
    """/proc/self/environ (a "regular" file of size 0 full of secrets) is refused, directly or through a
    link, with exit 2 and nothing written or kept."""
    link = tmp_path / "环境.txt"
    link.symlink_to("/proc/self/environ")
    before = snapshot(chengde, store)
    for path in ("/proc/self/environ", str(link)):
        r = cli("record", YUERYA, "six.vehicle", "是", "--evidence", path)
        assert r.exit_code == 2, r.output
        assert "伪文件" in r.output and "/proc" in r.output
        assert snapshot(chengde, store) == before


def test_evidence_past_its_limit_is_refused_before_it_is_read(chengde, cli, tmp_path, store):
    """A 2 GiB evidence file (sparse) over the default 100 MiB is refused by its size (exit 2), naming
    the setting; it is never read: with its read permission gone the answer is the same."""
    big = tmp_path / "录像.mp4"
    with big.open("wb") as fh:
        fh.truncate(2 * 2**30)
    before = snapshot(chengde, store)
    r = cli("advance", "宽城县", "submit_plan", "--evidence", str(big))
    assert r.exit_code == 2, r.output
    assert "有 2 GiB，超过上限 100 MiB（evidence_max_bytes）" in r.output and "ANJIAN_EVIDENCE_MAX_BYTES" in r.output
    assert snapshot(chengde, store) == before


def test_evidence_limit_is_a_setting(chengde, cli, tmp_path, store, monkeypatch):
    """ANJIAN_EVIDENCE_MAX_BYTES lowers the limit: a 2 KiB photo is refused at 1 KiB and kept at 4 KiB."""
    photo = tmp_path / "车辆.jpg"
    photo.write_bytes(b"x" * 2048)
    monkeypatch.setenv("ANJIAN_EVIDENCE_MAX_BYTES", "1KiB")
    r = cli("record", YUERYA, "six.vehicle", "是", "--evidence", str(photo))
    assert r.exit_code == 2 and "超过上限 1 KiB" in r.output
    monkeypatch.setenv("ANJIAN_EVIDENCE_MAX_BYTES", "4KiB")
    assert cli("record", YUERYA, "six.vehicle", "是", "--evidence", str(photo)).exit_code == 0
    assert len([p for p in store.rglob("*") if p.is_file()]) == 1


class WatchedDatabase(Database):
    """A Database of ours that notes, each time a write transaction begins, which files the evidence
    store holds: the observable that evidence is copied before the lock, not while holding it."""

    def __init__(self, url: str, store: Path):
        super().__init__(url)
        self.store, self.seen = store, []

    def write(self):
        self.seen.append(sorted(p.name for p in self.store.rglob("*") if p.is_file()))
        return super().write()


@pytest.mark.parametrize("service", ["advance", "record"])
def test_evidence_is_in_the_store_before_the_write_transaction_begins(chengde, tmp_path, service):
    """`advance` and `record` hash and copy evidence into the store before their write transaction: the
    file is already there when the transaction (and its lock) begins."""
    import hashlib

    from anjian.workflow.services.advance import advance
    from anjian.workflow.services.checklist import record

    store = tmp_path / "store"
    photo = tmp_path / "方案.pdf"
    photo.write_bytes(b"plan" * 1000)
    digest = hashlib.sha256(photo.read_bytes()).hexdigest()
    db = WatchedDatabase(chengde.url, store)
    try:
        if service == "advance":
            advance(db, YUERYA, "start", "chief", T0, evidence=(str(photo),), evidence_dir=store)
        else:
            record(db, YUERYA, "six.vehicle", "是", "chief", T0, (str(photo),), store)
    finally:
        db.dispose()
    assert db.seen and db.seen[0] == [digest]


def test_a_copy_kept_for_a_refused_change_is_harmless(chengde, cli, tmp_path, store):
    """A change refused after its evidence was kept leaves the copy in the store, addressed by its hash,
    pointed to by no audit row; the same file given again is not copied twice."""
    photo = tmp_path / "车辆.jpg"
    photo.write_bytes(b"car")
    r = cli("record", GAOSITAI, "six.vehicle", "是", "--evidence", str(photo), user="li")
    assert r.exit_code == 4, r.output
    kept = [p for p in store.rglob("*") if p.is_file()]
    assert len(kept) == 1
    assert cli("record", YUERYA, "six.vehicle", "是", "--evidence", str(photo), user="li").exit_code == 0
    assert [p for p in store.rglob("*") if p.is_file()] == kept


def test_only_the_first_unknown_units_of_a_batch_get_similar_names(chengde, tmp_path):
    """A batch's first 50 unknown units are told similar names; the rest only that they do not exist
    (each hint is a scan of every unit's name: 50,000 of them took minutes)."""
    from anjian.workflow.services.advance import HINTED, BatchRow, advance_batch

    rows = [BatchRow(i + 2, "峪耳崖镇镇", "start") for i in range(HINTED + 10)]
    res = advance_batch(chengde, rows, "chief", T0)
    hinted = ["是否指" in p.reasons[0] and "峪耳崖镇" in p.reasons[0] for p in res.problems]
    assert hinted == [True] * HINTED + [False] * 10
