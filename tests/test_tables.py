"""Reading officials' CSV files: encodings, headers, blank lines, multi-line fields and their line numbers."""

from __future__ import annotations

import pytest

from anjian.workflow.errors import BadInput
from anjian.workflow.formats.tables import Record, decode, parse_csv, read_bytes, read_csv, refuse_if

COLUMNS = ("unit", "trigger")
OPTIONAL = ("note",)


@pytest.fixture(autouse=True)
def english(monkeypatch):
    """The reader's problems are asserted in English here (ANJIAN_LANG=en); the Chinese ones at the end."""
    monkeypatch.setenv("ANJIAN_LANG", "en")


def parse(text: str, required: tuple[str, ...] = COLUMNS, optional: tuple[str, ...] = OPTIONAL):
    return parse_csv(text, "batch.csv", required, optional)


def test_decode_utf8():
    """Plain UTF-8 bytes decode as they are."""
    assert decode("unit,trigger\n高寺台镇,start\n".encode(), "f.csv") == "unit,trigger\n高寺台镇,start\n"


def test_decode_drops_the_utf8_bom():
    """A UTF-8 byte-order mark (as Excel writes it) is dropped."""
    assert decode(b"\xef\xbb\xbf" + "unit\n高寺台镇\n".encode(), "f.csv") == "unit\n高寺台镇\n"


def test_decode_gbk():
    """Bytes that are not UTF-8 but are GBK (Excel on Chinese Windows) decode as GBK."""
    text = "unit,trigger\r\n宽城峪耳崖镇,start\r\n"
    assert decode(text.encode("gbk"), "f.csv") == text


def test_decode_gb18030_beyond_gbk():
    """Characters only GB18030 has (e.g. 𠀀) decode too."""
    text = "名称\n𠀀镇\n"
    assert decode(text.encode("gb18030"), "f.csv") == text


def test_decode_refuses_bytes_that_are_neither_with_the_line():
    """Bytes neither UTF-8 nor GBK are refused, naming the file and the line of the first bad byte."""
    with pytest.raises(BadInput) as info:
        decode(b"unit,trigger\nok,start\n\xff\xff,start\n", "f.csv")
    assert info.value.message.startswith("f.csv: line 3: not UTF-8 or GBK text")


def test_read_bytes_refuses_a_directory(tmp_path):
    """A directory given as a file is refused as bad input, naming it."""
    with pytest.raises(BadInput, match="is a directory"):
        read_bytes(tmp_path, "registry file")


def test_read_bytes_refuses_a_missing_file(tmp_path):
    """A missing file is refused as bad input, naming it."""
    with pytest.raises(BadInput, match=r"registry file .*nope\.csv does not exist"):
        read_bytes(tmp_path / "nope.csv", "registry file")


def test_records_carry_values_and_line_numbers():
    """Each record maps the header's names to its stripped values and knows the line it starts on."""
    records, problems = parse("unit,trigger,note\n 高寺台镇 , start ,开工\n大阁镇,apply,\n")
    assert problems == []
    assert records == [
        Record(2, {"unit": "高寺台镇", "trigger": "start", "note": "开工"}),
        Record(3, {"unit": "大阁镇", "trigger": "apply", "note": ""}),
    ]


def test_optional_columns_may_be_left_out():
    """A header naming only the required columns is fine."""
    records, problems = parse("unit,trigger\n高寺台镇,start\n")
    assert problems == []
    assert records[0].values == {"unit": "高寺台镇", "trigger": "start"}


def test_header_names_are_folded_and_case_insensitive():
    """Header names are NFKC-folded, stripped and lower-cased: 'ＵＮＩＴ ' is 'unit'."""
    records, problems = parse("ＵＮＩＴ , Trigger\n高寺台镇,start\n")
    assert problems == []
    assert records[0].values == {"unit": "高寺台镇", "trigger": "start"}


def test_header_columns_in_any_order():
    """Columns may come in any order; values follow their header names."""
    records, _ = parse("note,trigger,unit\n说明,start,高寺台镇\n")
    assert records[0].values == {"unit": "高寺台镇", "trigger": "start", "note": "说明"}


def test_duplicate_header_names_are_refused():
    """A column named twice is a bad header, naming the column."""
    with pytest.raises(BadInput) as info:
        parse("unit,trigger,UNIT\n高寺台镇,start,大阁镇\n")
    assert info.value.message == "batch.csv: bad header"
    assert info.value.details == ["line 1: column(s) named twice: unit"]


def test_missing_header_column_is_refused():
    """A header without a required column is refused, naming the column and the header expected."""
    with pytest.raises(BadInput) as info:
        parse("unit,note\n高寺台镇,x\n")
    assert info.value.details == ["line 1: missing column(s) trigger (the header must name unit,trigger)"]


def test_unknown_header_column_is_refused():
    """A header with a column neither required nor optional is refused, listing the allowed ones."""
    with pytest.raises(BadInput) as info:
        parse("unit,trigger,colour\n高寺台镇,start,red\n")
    assert info.value.details == ["line 1: unknown column(s) colour (allowed: unit, trigger, note)"]


def test_every_header_problem_is_reported_at_once():
    """Missing, unknown and doubled columns are all listed in one refusal."""
    with pytest.raises(BadInput) as info:
        parse("unit,unit,colour\n")
    assert len(info.value.details) == 3


def test_empty_text_is_refused():
    """An empty file is refused, saying which columns the first line must name."""
    with pytest.raises(BadInput, match="batch.csv: the file is empty; the first line must name the columns unit,trigger"):
        parse("")


def test_header_only_gives_no_records():
    """A file with only the header has no records and no problems (the caller decides if that is bad)."""
    assert parse("unit,trigger\n") == ([], [])


def test_blank_lines_are_skipped_and_lines_still_count():
    """Blank lines and lines of bare commas (as Excel leaves) are skipped; later records keep their true line."""
    records, problems = parse("unit,trigger\n\n高寺台镇,start\n,\n  , \n\n大阁镇,apply\n")
    assert problems == []
    assert [(r.line, r.values["unit"]) for r in records] == [(3, "高寺台镇"), (7, "大阁镇")]


def test_multi_line_quoted_field_keeps_its_start_line_and_the_next_ones_are_right():
    """A quoted note spanning three lines is one record at its first line; the next record has its true line."""
    text = 'unit,trigger,note\n高寺台镇,start,"第一行\n第二行\n第三行"\n大阁镇,apply,\nbad-row\n'
    records, problems = parse(text)
    assert [(r.line, r.values["unit"]) for r in records] == [(2, "高寺台镇"), (5, "大阁镇")]
    assert records[0].values["note"] == "第一行\n第二行\n第三行"
    assert problems == ["line 6: 1 fields where the header has 3"]


def test_crlf_line_endings_count_like_lf():
    """CRLF files (Excel) number lines the same, including inside quoted fields."""
    text = 'unit,trigger,note\r\n\r\n高寺台镇,start,"a\r\nb"\r\n大阁镇,apply,x\r\n'
    records, problems = parse(text)
    assert problems == []
    assert [r.line for r in records] == [3, 5]


def test_wrong_field_count_is_reported_and_other_rows_kept():
    """A row with too many or too few fields is a problem on its line; the good rows are still returned."""
    records, problems = parse("unit,trigger\n高寺台镇,start\n大阁镇\n卧龙镇,start,extra\n峪耳崖镇,start\n")
    assert [r.line for r in records] == [2, 5]
    assert problems == ["line 3: 1 fields where the header has 2", "line 4: 3 fields where the header has 2"]


def test_unclosed_quote_is_reported_instead_of_swallowing_the_rest():
    """A quote never closed is reported on the line it opens; the rows after it are not silently eaten."""
    records, problems = parse('unit,trigger,note\n高寺台镇,start,ok\n大阁镇,apply,"oops\n卧龙镇,start,x\n')
    assert [r.line for r in records] == [2]
    assert problems == ["line 3: a quoted field opened on this line is never closed"]


def test_text_after_a_closing_quote_is_reported_and_reading_goes_on():
    """A field like "a"b is a problem on its line; the rows after it are still read."""
    records, problems = parse('unit,trigger\n"高寺台"镇,start\n大阁镇,apply\n')
    assert [(r.line, r.values["unit"]) for r in records] == [(3, "大阁镇")]
    assert len(problems) == 1
    assert problems[0].startswith("line 2: ")


def test_read_csv_reads_a_utf8_bom_file(tmp_path):
    """read_csv() reads a UTF-8 file with BOM: the first header name is not spoiled by the BOM."""
    path = tmp_path / "bom.csv"
    path.write_bytes("\ufeffunit,trigger\n高寺台镇,start\n".encode())
    records, problems = read_csv(path, COLUMNS, OPTIONAL)
    assert problems == []
    assert records == [Record(2, {"unit": "高寺台镇", "trigger": "start"})]


def test_read_csv_reads_a_gbk_file(tmp_path):
    """read_csv() reads a GBK file saved by Excel on Chinese Windows (CRLF, no BOM)."""
    path = tmp_path / "gbk.csv"
    path.write_bytes("unit,trigger,note\r\n宽城峪耳崖镇,start,开始创建\r\n".encode("gbk"))
    records, problems = read_csv(path, COLUMNS, OPTIONAL)
    assert problems == []
    assert records[0].values == {"unit": "宽城峪耳崖镇", "trigger": "start", "note": "开始创建"}


def test_read_csv_names_the_file_in_header_errors(tmp_path):
    """A bad header read from a file is refused naming that file."""
    path = tmp_path / "batch.csv"
    path.write_text("who,what\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"batch\.csv: bad header"):
        read_csv(path, COLUMNS)


def test_read_csv_refuses_a_directory(tmp_path):
    """read_csv() on a directory is bad input, not a crash."""
    with pytest.raises(BadInput, match="is a directory"):
        read_csv(tmp_path, COLUMNS)


def test_refuse_if_passes_when_there_are_no_problems():
    """No problems: refuse_if() returns quietly."""
    assert refuse_if([], "f.csv") is None


def test_refuse_if_reports_every_problem():
    """Problems: refuse_if() raises one BadInput counting them, saying nothing was written, listing each."""
    with pytest.raises(BadInput) as info:
        refuse_if(["line 2: a", "line 9: b"], "f.csv")
    assert info.value.message == "f.csv: 2 bad row(s); nothing was written"
    assert info.value.details == ["line 2: a", "line 9: b"]


@pytest.mark.parametrize(("text", "message", "details"), [
    pytest.param("unit,colour\n高寺台镇,red\n", "batch.csv：表头有误",
                 ["第 1 行：缺少列 trigger（操作）；表头须有 unit（单位）、trigger（操作）",
                  "第 1 行：无法识别的列 colour；可用的列：unit（单位）、trigger（操作）、note（备注）"], id="header"),
    pytest.param("", "batch.csv：文件是空的；第一行须写明各列：unit（单位）、trigger（操作）", [], id="empty"),
])
def test_header_problems_are_said_in_chinese_by_default(monkeypatch, text, message, details):
    """Without ANJIAN_LANG the header's problems are Chinese: 第 N 行, the columns with their Chinese words."""
    monkeypatch.setenv("ANJIAN_LANG", "zh")
    with pytest.raises(BadInput) as info:
        parse(text)
    assert info.value.message == message
    assert list(info.value.details or []) == details


def test_row_problems_are_said_in_chinese_by_default(monkeypatch):
    """Without ANJIAN_LANG a ragged row, an unclosed quote and the refusal of the batch read in Chinese."""
    monkeypatch.setenv("ANJIAN_LANG", "zh")
    records, problems = parse('unit,trigger\n高寺台镇,start,x\n"大阁镇,start\n')
    assert records == []
    assert problems == ["第 2 行：有 3 个字段，而表头有 2 列", "第 3 行：本行开始的引号字段没有闭合"]
    with pytest.raises(BadInput) as info:
        refuse_if(problems, "batch.csv")
    assert info.value.message == "batch.csv：2 行有问题，整批未写入"
