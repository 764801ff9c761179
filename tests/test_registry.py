"""The registry: the built-in 承德市 units, custom registry CSVs, validation (all or nothing), and `initialize`."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from support import T0

from anjian.states.campaign import builtin_text
from anjian.workflow.errors import BadInput
from anjian.workflow.services.officials import os_login
from anjian.workflow.services.registry import Source, initialize, parse_registry
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import AuditRow, Meta, Unit, UnitCohort

HEADER = "code,name,level,parent_code,cohorts\n"
SMALL = (
    HEADER
    + "130800,承德市,city,130000,\n"
    + "130821,承德县,county,130800,\n"
    + "130827,宽城满族自治县,county,130800,\n"
    + "130821106,高寺台镇,township,130821,provincial_demo\n"
    + "130821100,下板城镇,township,130821,key;heavy_task\n"
    + "130827102,峪耳崖镇,township,130827,\n"
)
PROVINCIAL_DEMOS = {"130821106", "130826100", "130827102", "130824106", "130881107"}


@pytest.fixture(autouse=True)
def english(monkeypatch):
    """The registry's problems are asserted in English here (ANJIAN_LANG=en); test_cli_init checks the Chinese."""
    monkeypatch.setenv("ANJIAN_LANG", "en")


@pytest.fixture
def write_registry(tmp_path) -> Callable[..., Path]:
    """A factory: write registry text to a CSV file in tmp_path (in the given encoding) and return its path."""

    def write(text: str, name: str = "registry.csv", encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return path

    return write


def levels(db: Database) -> dict[str, int]:
    with db.read() as session:
        return dict(session.execute(select(Unit.level, func.count()).group_by(Unit.level)).all())


def audit_actions(db: Database) -> list[str]:
    with db.read() as session:
        return list(session.scalars(select(AuditRow.action).order_by(AuditRow.seq)))


def problems_of(text: str) -> list[str]:
    with pytest.raises(BadInput) as info:
        parse_registry(Source("reg.csv", text))
    assert info.value.message.startswith("reg.csv: ")
    return info.value.details


def test_builtin_registry_has_one_city_twelve_counties_219_townships(chengde):
    """The built-in registry loads 承德市, its 12 county-level units and 219 township-level units."""
    assert levels(chengde) == {"city": 1, "county": 12, "township": 219}


def test_builtin_registry_has_exactly_the_five_provincial_demo_townships(chengde):
    """Exactly the plan's five provincially designated townships are in provincial_demo."""
    with chengde.read() as session:
        codes = set(session.scalars(select(UnitCohort.unit_code).where(UnitCohort.cohort == "provincial_demo")))
        names = set(session.scalars(select(Unit.name).where(Unit.code.in_(codes))))
    assert codes == PROVINCIAL_DEMOS
    assert names == {"高寺台镇", "大阁镇", "峪耳崖镇", "张百湾镇", "卧龙镇"}


def test_builtin_registry_has_no_other_cohorts(chengde):
    """The key townships are not public, so the built-in registry designates nothing but provincial_demo."""
    with chengde.read() as session:
        assert set(session.scalars(select(UnitCohort.cohort))) == {"provincial_demo"}


def test_builtin_registry_starts_every_machine_at_its_initial_state(chengde):
    """Townships start not_started, counties and the city mobilization, all at version 1 stamped by the loader."""
    with chengde.read() as session:
        states = set(session.execute(select(Unit.level, Unit.state, Unit.version, Unit.changed_by)).all())
    assert states == {("township", "not_started", 1, "admin"), ("county", "mobilization", 1, "admin"),
                      ("city", "mobilization", 1, "admin")}


def test_builtin_registry_keeps_the_renamed_and_new_units(chengde):
    """平泉市 has its current code 130881 and the 高新区 development zone is a county-level unit."""
    with chengde.read() as session:
        assert session.get(Unit, "130881").name == "平泉市"
        assert session.get(Unit, "130871").level == "county"
        assert session.get(Unit, "130881107").parent_code == "130881"


def test_builtin_load_writes_one_registry_load_and_one_campaign_load_row(chengde):
    """Loading the built-in data writes one registry_load and one campaign_load audit row, by the loader,
    then one user_add for the first admin (this OS account, acting for the city)."""
    assert audit_actions(chengde)[:3] == ["registry_load", "campaign_load", "user_add"]  # then the test officials
    with chengde.read() as session:
        row = session.scalars(select(AuditRow).where(AuditRow.action == "registry_load")).one()
        assert row.actor == "admin"
        assert '"units":232' in row.detail.replace(" ", "")
        assert session.get(Meta, "registry_name").value == "chengde"
        first = session.scalars(select(AuditRow).where(AuditRow.action == "user_add").order_by(AuditRow.seq)).first()
        assert (first.actor, first.unit_code) == (os_login(), None)
        assert json.loads(first.detail) == {"name": os_login(), "role": "admin", "os_user": os_login(),
                                            "unit": "130800", "first_admin": True}


def test_custom_registry_loads_with_initial_states(fresh_db, write_registry):
    """A valid custom registry loads every row, townships not_started, counties and city mobilization."""
    result = initialize(fresh_db, str(write_registry(SMALL)), None, T0, "admin")
    assert result.changed
    assert result.units == {"city": 1, "county": 2, "township": 3}
    with fresh_db.read() as session:
        got = {u.code: (u.name, u.level, u.parent_code, u.state) for u in session.scalars(select(Unit))}
    assert got == {
        "130800": ("承德市", "city", "130000", "mobilization"),
        "130821": ("承德县", "county", "130800", "mobilization"),
        "130827": ("宽城满族自治县", "county", "130800", "mobilization"),
        "130821106": ("高寺台镇", "township", "130821", "not_started"),
        "130821100": ("下板城镇", "township", "130821", "not_started"),
        "130827102": ("峪耳崖镇", "township", "130827", "not_started"),
    }


def test_custom_registry_loads_cohorts(fresh_db, write_registry):
    """The cohorts column loads each cohort of a township; several may be separated by ';'."""
    initialize(fresh_db, str(write_registry(SMALL)), None, T0, "admin")
    with fresh_db.read() as session:
        pairs = set(session.execute(select(UnitCohort.unit_code, UnitCohort.cohort)).all())
    assert pairs == {("130821106", "provincial_demo"), ("130821100", "key"), ("130821100", "heavy_task")}


def test_custom_registry_writes_exactly_one_registry_load_row(fresh_db, write_registry):
    """A custom registry load is one registry_load audit row naming the file, by the acting official."""
    path = write_registry(SMALL)
    initialize(fresh_db, str(path), None, T0, "chief")
    with fresh_db.read() as session:
        rows = session.scalars(select(AuditRow).where(AuditRow.action == "registry_load")).all()
        assert len(rows) == 1
        assert rows[0].actor == "chief"
        assert str(path) in rows[0].detail
        assert session.get(Meta, "registry_name").value == str(path)


def test_custom_registry_without_cohorts_column_loads(fresh_db, write_registry):
    """The cohorts column is optional."""
    text = "code,name,level,parent_code\n130800,承德市,city,130000\n130821,承德县,county,130800\n"
    initialize(fresh_db, str(write_registry(text)), None, T0, "admin")
    assert levels(fresh_db) == {"city": 1, "county": 1}


def test_short_names_are_stored_for_resolution(fresh_db, write_registry):
    """Each unit is stored with its short name (宽城 for 宽城满族自治县)."""
    initialize(fresh_db, str(write_registry(SMALL)), None, T0, "admin")
    with fresh_db.read() as session:
        assert session.get(Unit, "130827").short_name == "宽城"
        assert session.get(Unit, "130821106").short_name == "高寺台"


def test_utf8_bom_registry_loads(fresh_db, write_registry):
    """A registry saved as UTF-8 with BOM loads, its first column recognised as `code`."""
    initialize(fresh_db, str(write_registry("\ufeff" + SMALL)), None, T0, "admin")
    assert levels(fresh_db) == {"city": 1, "county": 2, "township": 3}


def test_gbk_registry_loads_with_correct_names(fresh_db, write_registry):
    """A registry saved by Excel on Chinese Windows (GBK, CRLF) loads with its Chinese names intact."""
    path = write_registry(SMALL.replace("\n", "\r\n"), encoding="gbk")
    initialize(fresh_db, str(path), None, T0, "admin")
    with fresh_db.read() as session:
        assert session.get(Unit, "130827").name == "宽城满族自治县"
        assert session.get(Unit, "130821106").name == "高寺台镇"


def test_level_is_case_insensitive(fresh_db, write_registry):
    """'City' and 'TOWNSHIP' are read as city and township."""
    text = HEADER + "130800,承德市,City,130000,\n130821,承德县,county,130800,\n130821106,高寺台镇,TOWNSHIP,130821,\n"
    initialize(fresh_db, str(write_registry(text)), None, T0, "admin")
    assert levels(fresh_db) == {"city": 1, "county": 1, "township": 1}


def test_generated_10000_row_registry_loads(fresh_db, write_registry):
    """A generated registry of 10,000 units loads completely."""
    path = write_registry(generated_registry())
    result = initialize(fresh_db, str(path), None, T0, "admin")
    assert sum(result.units.values()) == 10_000


def generated_registry(bad_line: int | None = None) -> str:
    """10,000 data rows: the city, 10 counties and 9,989 townships; the row on `bad_line` gets a bad code."""
    rows = ["130800,承德市,city,130000"]
    counties = [f"1308{n:02d}" for n in range(21, 31)]
    rows += [f"{c},县{i},county,130800" for i, c in enumerate(counties)]
    towns = [(c, n) for c in counties for n in range(1, 1000)][: 10_000 - len(rows)]
    rows += [f"{c}{n:03d},镇{c}{n:03d},township,{c}" for c, n in towns]
    assert len(rows) == 10_000
    if bad_line is not None:
        rows[bad_line - 2] = "13082X999,坏镇,township,130821"  # line 1 is the header
    return "code,name,level,parent_code\n" + "\n".join(rows) + "\n"


def test_bad_row_deep_in_a_large_file_is_named_by_line(fresh_db, write_registry):
    """A bad code on line 9,999 of a 10,000-row file is reported on line 9999, and nothing is loaded."""
    path = write_registry(generated_registry(bad_line=9999))
    with pytest.raises(BadInput) as info:
        initialize(fresh_db, str(path), None, T0, "admin")
    assert info.value.details == ["line 9999: code '13082X999' is not a 6-, 9- or 12-digit division code"]
    assert inspect(fresh_db.engine).get_table_names() == []


def test_every_bad_row_is_reported_in_line_order():
    """All bad rows of a file are reported together, each with its line, in line order."""
    text = (HEADER + "130800,承德市,city,130000,\n"
            + "13082X,坏县,county,130800,\n"
            + "130821,承德县,district,130800,\n"
            + "130822,兴隆县,county,130800,county_demo\n"
            + "130899100,某镇,township,130899,\n")
    assert problems_of(text) == [
        "line 3: code '13082X' is not a 6-, 9- or 12-digit division code",
        "line 4: level 'district' is not one of province, city, county, township",
        "line 5: only townships carry cohorts",
        "line 6: parent_code 130899 is not in the file",
    ]


def test_duplicate_code_names_both_lines():
    """A code given twice is refused on its second line, naming the first."""
    text = HEADER + "130800,承德市,city,130000,\n130821,承德县,county,130800,\n130821,承德县二,county,130800,\n"
    assert problems_of(text) == ["line 4: code 130821 also on line 3"]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("1308211060,高寺台镇,township,130821,", "code '1308211060' is not a 6-, 9- or 12-digit division code"),
        ("１３０８２１１０６,高寺台镇,township,130821,", "is not a 6-, 9- or 12-digit division code"),
        ("130821106,,township,130821,", "name is empty"),
        ("130821106," + "镇" * 65 + ",township,130821,", "name is longer than 64 characters"),
        ("130821106,高寺台镇,village,130821,", "level 'village' is not one of province, city, county, township"),
        ("130821106,高寺台镇,township,13082A,", "parent_code '13082A' is not a division code"),
        ("130821106,高寺台镇,township,130821,heroic", "cohort 'heroic' is not one of provincial_demo, county_demo, key, heavy_task"),
        ("130821106,高寺台镇,township,130821,key;demo", "cohort 'demo' is not one of"),
        ("130821106,高寺台镇,township,130821,,extra", "6 fields where the header has 5"),
        ("130821106,高寺台镇,township", "3 fields where the header has 5"),
    ],
)
def test_bad_row_is_refused_with_its_line(row, problem):
    """Each kind of bad row is reported on its own line (line 4, after the city and the county)."""
    text = HEADER + "130800,承德市,city,130000,\n130821,承德县,county,130800,\n" + row + "\n"
    problems = problems_of(text)
    assert len(problems) == 1
    assert problems[0].startswith("line 4: ")
    assert problem in problems[0]


def test_cohort_on_a_county_is_refused():
    """Only townships carry cohorts: a county with one is refused on its line."""
    text = HEADER + "130800,承德市,city,130000,\n130821,承德县,county,130800,provincial_demo\n"
    assert problems_of(text) == ["line 3: only townships carry cohorts"]


def test_parent_missing_from_the_file_is_refused():
    """A township whose parent is not in the file is refused, naming the parent code."""
    text = HEADER + "130800,承德市,city,130000,\n130821,承德县,county,130800,\n130899100,某镇,township,130899,\n"
    assert problems_of(text) == ["line 4: parent_code 130899 is not in the file"]


def test_a_missing_parent_is_allowed_only_at_the_top_level():
    """The top level (here the city) may name a parent outside the file; lower levels may not lack one."""
    text = HEADER + "130800,承德市,city,130000,\n130821,承德县,county,,\n"
    assert problems_of(text) == ["line 3: a county needs a parent_code"]


def test_children_of_a_bad_row_are_not_blamed_for_it():
    """A township under a county whose own line is bad is not reported as having a parent missing from the file."""
    text = (HEADER + "130800,承德市,city,130000,\n130821,承德县,district,130800,\n"
            + "130821106,高寺台镇,township,130821,\n")
    assert problems_of(text) == ["line 3: level 'district' is not one of province, city, county, township"]


def test_parent_of_a_lower_level_is_refused():
    """A county under a township is refused, saying what the parent is."""
    text = (HEADER + "130800,承德市,city,130000,\n130821,承德县,county,130800,\n"
            + "130821106,高寺台镇,township,130821,\n130822,兴隆县,county,130821106,\n")
    assert problems_of(text) == ["line 5: parent 130821106 is a township, not above a county"]


def test_parent_of_the_same_level_is_refused():
    """A township under a township is refused."""
    text = (HEADER + "130800,承德市,city,130000,\n130821,承德县,county,130800,\n"
            + "130821106,高寺台镇,township,130821,\n130821107,某镇,township,130821106,\n")
    assert problems_of(text) == ["line 5: parent 130821106 is a township, not above a township"]


def test_header_only_file_is_refused():
    """A registry with a header but no rows is refused: it has no units."""
    assert problems_of(HEADER) == ["the file has no units"]


def test_name_with_a_line_break_is_refused_on_the_line_it_starts(write_registry):
    """A quoted name spanning two lines is refused on its first line; later rows keep their true lines."""
    text = (HEADER + "130800,承德市,city,130000,\n"
            + '130821,"承德\n县",county,130800,\n'
            + "13082X,坏县,county,130800,\n")
    assert problems_of(text) == [
        "line 3: name '承德\\n县' contains a line break or control character",
        "line 5: code '13082X' is not a 6-, 9- or 12-digit division code",
    ]


def test_unclosed_quote_is_refused():
    """A quote opened in a name and never closed is reported on its line instead of eating the file."""
    text = HEADER + "130800,承德市,city,130000,\n" + '130821,"承德县,county,130800,\n130822,兴隆县,county,130800,\n'
    assert problems_of(text) == ["line 3: a quoted field opened on this line is never closed"]


def test_bad_registry_leaves_a_fresh_database_untouched(fresh_db, write_registry):
    """A bad registry is refused before the database is touched: no tables are created."""
    path = write_registry(SMALL + "130821,重复,county,130800,\n")
    with pytest.raises(BadInput, match="nothing was written"):
        initialize(fresh_db, str(path), None, T0, "admin")
    assert inspect(fresh_db.engine).get_table_names() == []


def test_second_initialize_changes_nothing(chengde):
    """Initializing again with defaults changes nothing, says so, and writes no audit row."""
    before = audit_actions(chengde)
    result = initialize(chengde, None, None, T0, "admin")
    assert not result.changed
    assert result.migrations == []
    assert "init changed nothing" in result.messages
    assert any("unchanged" in m for m in result.messages)
    assert audit_actions(chengde) == before


def test_same_custom_registry_again_changes_nothing(fresh_db, write_registry):
    """Giving the same registry file again changes nothing and adds no audit row."""
    path = str(write_registry(SMALL))
    initialize(fresh_db, path, None, T0, "admin")
    before = audit_actions(fresh_db)
    assert not initialize(fresh_db, path, None, T0, "admin").changed
    assert audit_actions(fresh_db) == before


def test_plain_rerun_keeps_a_custom_registry(fresh_db, write_registry):
    """After a custom registry, `init` without --registry keeps it and changes nothing."""
    initialize(fresh_db, str(write_registry(SMALL)), None, T0, "admin")
    result = initialize(fresh_db, None, None, T0, "admin")
    assert not result.changed
    assert levels(fresh_db) == {"city": 1, "county": 2, "township": 3}


def test_different_registry_on_a_loaded_database_is_refused(chengde, write_registry):
    """A different registry on an initialized database is refused naming the one loaded; nothing changes."""
    before = audit_actions(chengde)
    with pytest.raises(BadInput, match="already holds the registry chengde"):
        initialize(chengde, str(write_registry(SMALL)), None, T0, "admin")
    assert levels(chengde) == {"city": 1, "county": 12, "township": 219}
    assert audit_actions(chengde) == before


def out_of_order_campaign() -> tuple[str, int]:
    """The built-in campaign with demo_review's deadline moved before county_demo's, and that line."""
    text = builtin_text("chengde-2014")
    bad = text.replace("deadline = 2015-07-31", "deadline = 2015-01-31", 1)
    assert bad != text
    line = bad.splitlines().index("deadline = 2015-01-31") + 1
    return bad, line


def test_bad_campaign_is_refused_with_its_line_and_changes_nothing(chengde, tmp_path):
    """A campaign with out-of-order dates is refused naming the line; the campaign in force stays."""
    text, line = out_of_order_campaign()
    path = tmp_path / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    with chengde.read() as session:
        sha = session.get(Meta, "campaign_sha256").value
    before = audit_actions(chengde)
    with pytest.raises(BadInput) as info:
        initialize(chengde, None, str(path), T0, "admin")
    assert any(d.startswith(f"line {line},") and "out of order" in d for d in info.value.details)
    with chengde.read() as session:
        assert session.get(Meta, "campaign_sha256").value == sha
    assert audit_actions(chengde) == before


# -- the national registry shipped with anjian ---------------------------------------------------------
def test_a_province_of_the_shipped_national_registry_loads_by_its_code(fresh_db):
    """`--registry 13` loads 河北省 from the national registry inside the package (no file beside the
    install): the province, its 11 prefecture-level cities, counties and townships, 承德 among them."""
    result = initialize(fresh_db, "13", None, T0, "admin")
    assert result.changed
    assert result.units["province"] == 1 and result.units["city"] == 11
    assert result.units["county"] > 150 and result.units["township"] > 2000
    with fresh_db.read() as session:
        assert session.get(Unit, "130000").name == "河北省"
        assert session.get(Unit, "130827102").name == "峪耳崖镇"
        assert session.scalar(select(func.count()).select_from(Unit).where(~Unit.code.startswith("13"))) == 0
        assert session.get(Meta, "registry_name").value == "china:13"


def test_an_unknown_province_is_refused_naming_the_provinces(fresh_db):
    """A two-digit code no province has is bad input that lists the provinces; nothing is loaded."""
    with pytest.raises(BadInput) as refused:
        initialize(fresh_db, "99", None, T0, "admin")
    assert "99" in refused.value.message
    assert "13 河北省" in refused.value.message and "65 新疆维吾尔自治区" in refused.value.message
    assert inspect(fresh_db.engine).get_table_names() == [] or levels(fresh_db) == {}


def test_a_city_of_the_shipped_national_registry_loads_by_its_code(fresh_db):
    """`--registry 1307` loads 张家口市 alone: the city, its counties and townships, no province above it."""
    result = initialize(fresh_db, "1307", None, T0, "admin")
    assert result.units["city"] == 1 and "province" not in result.units
    with fresh_db.read() as session:
        assert session.get(Unit, "130722").name == "张北县"
        assert session.scalar(select(func.count()).select_from(Unit).where(~Unit.code.startswith("1307"))) == 0
        assert session.get(Meta, "registry_name").value == "china:1307"


def test_an_unknown_city_is_refused_naming_the_cities_of_its_province(fresh_db):
    """A four-digit code no city has is bad input that lists its province's cities; nothing is loaded."""
    with pytest.raises(BadInput) as refused:
        initialize(fresh_db, "1399", None, T0, "admin")
    assert "1399" in refused.value.message and "1307 张家口市" in refused.value.message
    assert inspect(fresh_db.engine).get_table_names() == [] or levels(fresh_db) == {}


@pytest.mark.slow  # 44,700 units
def test_the_whole_national_registry_ships_with_anjian(fresh_db):
    """`--registry china` loads the 44,700 units of mainland China from the package, with the counts of
    its source (31 provinces, 342 prefecture-level units, 2,975 counties, 41,352 townships)."""
    result = initialize(fresh_db, "china", None, T0, "admin")
    assert result.units == {"province": 31, "city": 342, "county": 2975, "township": 41352}
