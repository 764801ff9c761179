"""The one table renderer: CJK counted double, long cells wrapped, columns left out by priority to fit."""

from __future__ import annotations

import pytest

from anjian.i18n import language
from anjian.workflow.formats.output import table, terminal_width, width_of, wrap

HEADERS = ["代码", "县区", "阶段", "逾期节点"]
ROWS = [["130827", "宽城满族自治县", "准备发动", "方案报送、省定示范、县区示范、示范验收"],
        ["130802", "双桥区", "示范创建", None]]


def test_cjk_characters_take_two_columns():
    """A Chinese character is two terminal columns, an ASCII one is one."""
    assert width_of("宽城ab") == 6


def test_a_table_that_fits_is_left_as_it_is():
    """With room enough, each row is one line and nothing is left out."""
    text = table(HEADERS, ROWS, width=200)
    assert len(text.splitlines()) == 4 and "未显示" not in text


def test_long_cells_wrap_to_fit():
    """A table wider than its width wraps its widest cells onto more lines, breaking after 、."""
    text = table(HEADERS, ROWS, width=50)
    assert max(width_of(line) for line in text.splitlines()) <= 50
    assert len(text.splitlines()) > 4
    assert any(line.rstrip().endswith("、") for line in text.splitlines())


def test_columns_go_in_the_declared_order_and_are_named():
    """When wrapping is not enough, the `drop` columns go first-listed first, and a last line names them."""
    text = table(HEADERS, ROWS, drop=(0, 2), width=34)
    assert max(width_of(line) for line in text.splitlines()) <= 34
    assert "130827" not in text and "准备发动" in text  # the code went first; the stage was not needed
    assert "（终端过窄，未显示：代码；" in text.replace("\n", "")
    narrower = table(HEADERS, ROWS, drop=(0, 2), width=24)
    assert "准备发动" not in narrower and "未显示：代码、阶段" in narrower.replace("\n", "")


def test_the_note_on_left_out_columns_is_english_on_request():
    """The line naming the left-out columns follows the language."""
    with language("en"):
        text = table(HEADERS, ROWS, drop=(0, 2), width=34)
    assert "too narrow: 代码 left out" in text.replace("\n", " ")


@pytest.mark.parametrize(("columns", "expected"), [("72", 72), (None, None)])
def test_the_width_is_the_terminals_or_none(monkeypatch, columns, expected):
    """COLUMNS is honoured; with no terminal and no COLUMNS there is no limit (a pipe gets whole rows)."""
    if columns:
        monkeypatch.setenv("COLUMNS", columns)
    else:
        monkeypatch.delenv("COLUMNS", raising=False)
    assert terminal_width() == expected


def test_wrap_keeps_every_character():
    """Wrapping a long Chinese cell keeps each line within the width and loses nothing."""
    text = "成立乡镇安全生产委员会，主任由政府主要负责同志担任"
    lines = wrap(text, 12)
    assert all(width_of(line) <= 12 for line in lines)
    assert "".join(lines) == text
