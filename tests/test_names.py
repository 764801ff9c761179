"""Name resolution: codes, full and short names, county/city prefixes, NFKC folding, ambiguity refusal."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from support import T0

from anjian.i18n import language
from anjian.workflow.engine.names import Resolver, UnitRef, fold, short_name
from anjian.workflow.errors import BadInput
from anjian.workflow.services.registry import initialize
from anjian.workflow.store.db import Database

GAOSITAI = "130821106"  # 承德县高寺台镇


@pytest.fixture(autouse=True)
def english():
    """The resolver's refusals are asserted by their English message ids; the Chinese is tested below."""
    with language("en"):
        yield


@pytest.fixture
def resolve(chengde) -> Callable[..., UnitRef]:
    """resolve(query, levels=None): resolve against the loaded Chengde registry in a fresh read session."""

    def run(query: str, levels: tuple[str, ...] | None = None) -> UnitRef:
        with chengde.read() as session:
            return Resolver(session).resolve(query, levels=levels)

    return run


@pytest.fixture
def twin_towns(fresh_db, tmp_path) -> Database:
    """A database whose small registry has two townships named 城关镇, one under 东山县 and one under 西山县."""
    path = tmp_path / "twins.csv"
    path.write_text(
        "code,name,level,parent_code\n"
        "130800,承德市,city,130000\n"
        "130891,东山县,county,130800\n"
        "130892,西山县,county,130800\n"
        "130891100,城关镇,township,130891\n"
        "130892100,城关镇,township,130892\n"
        "130892101,南关乡,township,130892\n",
        encoding="utf-8",
    )
    initialize(fresh_db, str(path), None, T0, "admin")
    return fresh_db


def refusal(resolve: Callable[..., UnitRef], query: str, **kwargs) -> BadInput:
    with pytest.raises(BadInput) as info:
        resolve(query, **kwargs)
    return info.value


def test_code_resolves_to_its_unit(resolve):
    """A 9-digit division code resolves to exactly that township."""
    ref = resolve(GAOSITAI)
    assert (ref.code, ref.name, ref.level, ref.parent_code) == (GAOSITAI, "高寺台镇", "township", "130821")


def test_six_digit_code_resolves_to_a_county(resolve):
    """A 6-digit code resolves to the county it names."""
    assert resolve("130827").name == "宽城满族自治县"


def test_unknown_code_is_refused(resolve):
    """A well-formed code that is not in the registry is refused as unknown, not guessed."""
    err = refusal(resolve, "130821999")
    assert "130821999" in err.message
    assert "no such unit" in err.message


def test_full_name_resolves(resolve):
    """A township's full name resolves when it is unique in the registry."""
    assert resolve("高寺台镇").code == GAOSITAI


def test_short_township_name_resolves(resolve):
    """A township written without 镇 resolves when that short form is unique."""
    assert resolve("高寺台").code == GAOSITAI


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("承德县高寺台镇", "130821106"),
        ("宽城满族自治县峪耳崖镇", "130827102"),
        ("宽城峪耳崖镇", "130827102"),
        ("丰宁满族自治县大阁镇", "130826100"),
        ("丰宁大阁镇", "130826100"),
        ("滦平县张百湾镇", "130824106"),
        ("滦平张百湾镇", "130824106"),
        ("平泉市卧龙镇", "130881107"),
        ("平泉县卧龙镇", "130881107"),
        ("平泉卧龙镇", "130881107"),
    ],
)
def test_county_in_front_full_or_short(resolve, query, code):
    """A township with its county in front, full or short (or the plan's old 平泉县), resolves to it."""
    assert resolve(query).code == code


def test_city_in_front(resolve):
    """A township with the city in front, full or short, resolves to it."""
    assert resolve("承德市高寺台镇").code == GAOSITAI
    assert resolve("承德高寺台镇").code == GAOSITAI


def test_three_levels_written_out(resolve):
    """City, county and township written out in full resolve to the township."""
    assert resolve("承德市承德县高寺台镇").code == GAOSITAI
    assert resolve("承德市宽城满族自治县峪耳崖镇").code == "130827102"


def test_three_levels_with_short_forms(resolve):
    """City and county in front may each be short: 承德市宽城峪耳崖镇, 承德宽城峪耳崖镇, 承德市平泉县卧龙镇."""
    assert resolve("承德市宽城峪耳崖镇").code == "130827102"
    assert resolve("承德宽城峪耳崖镇").code == "130827102"
    assert resolve("承德市平泉县卧龙镇").code == "130881107"


def test_prefix_must_be_an_ancestor(resolve):
    """A county in front that does not contain the township makes the name unknown, not another township."""
    err = refusal(resolve, "宽城高寺台镇")
    assert "no such unit" in err.message


def test_a_unit_is_not_its_own_prefix(resolve):
    """A county written twice does not resolve to the county."""
    err = refusal(resolve, "承德县承德县")
    assert "no such unit" in err.message


def test_full_width_digits_are_folded(resolve):
    """Full-width digits in a code are folded (NFKC) to the ASCII code."""
    assert resolve("１３０８２１１０６").code == GAOSITAI


def test_ideographic_and_ascii_spaces_are_ignored(resolve):
    """Ideographic and ordinary spaces inside or around a name are dropped before matching."""
    assert resolve("承德县\u3000高寺台镇").code == GAOSITAI
    assert resolve(" 高寺台 镇 ").code == GAOSITAI
    assert resolve("130821 106").code == GAOSITAI


def test_fold_normalizes_and_strips_white_space():
    """fold() applies NFKC and removes every kind of white space."""
    assert fold("ｗｉｄｅ\u3000名 \t") == "wide名"
    assert fold("１３０８００") == "130800"


def test_exact_full_names_of_city_and_counties_resolve(resolve):
    """承德市 and 承德县 each resolve by full name, although both shorten to 承德."""
    assert resolve("承德市").code == "130800"
    assert resolve("承德县").code == "130821"


def test_exact_full_name_wins_over_a_township_of_the_same_short_name(resolve):
    """平泉市 is the county, not 平泉镇 (whose short form is also 平泉)."""
    assert resolve("平泉市").code == "130881"


def test_old_county_name_resolves_to_the_renamed_county(resolve):
    """The plan's 平泉县 (renamed 平泉市 in 2017) and 宽城县 mean the counties, never a township."""
    assert resolve("平泉县").code == "130881"
    assert resolve("宽城县").code == "130827"
    assert resolve("丰宁县").code == "130826"


@pytest.mark.parametrize(
    ("query", "code"),
    [("宽城", "130827"), ("丰宁", "130826"), ("滦平", "130824"), ("围场", "130828"), ("平泉", "130881"),
     ("承德", "130821"), ("双桥", "130802"), ("鹰手营子", "130804")],
)
def test_county_by_short_name_with_county_level(resolve, query, code):
    """With levels=("county",) a short county name resolves to the county even where a township shares it."""
    ref = resolve(query, levels=("county",))
    assert (ref.code, ref.level) == (code, "county")


def test_unique_short_county_name_resolves_without_a_level(resolve):
    """丰宁 fits only the county 丰宁满族自治县, so no level is needed."""
    assert resolve("丰宁").code == "130826"


def test_ambiguous_short_name_is_refused_listing_both(resolve):
    """'宽城' fits the county 宽城满族自治县 and the town 宽城镇: refused, both listed with their codes."""
    err = refusal(resolve, "宽城")
    assert "fits 2 units" in err.message
    assert "宽城" in err.message
    assert err.details == ["130827 承德市宽城满族自治县", "130827100 承德市宽城满族自治县宽城镇"]


def test_ambiguous_city_and_county_short_name_is_refused(resolve):
    """'承德' alone fits the city and 承德县: refused with both candidates."""
    err = refusal(resolve, "承德")
    assert [d.split()[0] for d in err.details] == ["130800", "130821"]


def test_ambiguous_name_is_refused_through_the_cli(cli, db_url):
    """`anjian show 宽城` exits 2 and lists both candidates with their codes."""
    assert cli("init").exit_code == 0
    result = cli("show", "宽城")
    assert result.exit_code == 2
    assert "130827 承德市宽城满族自治县" in result.output
    assert "130827100 承德市宽城满族自治县宽城镇" in result.output


def test_unknown_name_is_refused_with_a_clear_message(resolve):
    """A name in no unit is refused, quoting what was typed."""
    err = refusal(resolve, "不存在镇")
    assert err.message.startswith("unit “不存在镇”: no such unit in the registry")


def test_unknown_name_suggests_similar_units(resolve):
    """An unknown name that starts like a known one suggests it with its code."""
    err = refusal(resolve, "承德高新区")
    assert "did you mean" in err.message
    assert "承德高新技术产业开发区（130871）" in err.message


def test_empty_query_is_unknown(resolve):
    """An empty or blank query is refused as unknown."""
    assert "no such unit" in refusal(resolve, "\u3000 ").message


def test_refusal_names_what_was_asked_for(chengde):
    """The `what` argument names the role of the query in the message (e.g. --county)."""
    with chengde.read() as session, pytest.raises(BadInput, match="^--county “虚构县”"):
        Resolver(session).resolve("虚构县", what="--county")


def test_levels_that_fit_nothing_fall_back_to_the_match(resolve):
    """A level filter that excludes the only match still returns it (the caller checks the level)."""
    assert resolve("高寺台镇", levels=("county",)).code == GAOSITAI


def test_path_names_ancestors_in_front(chengde):
    """Resolver.path() writes the city and county in front of a township."""
    with chengde.read() as session:
        resolver = Resolver(session)
        town = resolver.unit(GAOSITAI)
        assert resolver.path(town) == "承德市承德县高寺台镇"
        assert resolver.path(town, upto=resolver.unit("130821")) == "承德县高寺台镇"


def test_duplicate_township_name_is_refused_listing_both(twin_towns):
    """城关镇 alone fits a township in each of two counties: refused, both listed with codes and counties."""
    with twin_towns.read() as session, pytest.raises(BadInput) as info:
        Resolver(session).resolve("城关镇")
    assert "fits 2 units" in info.value.message
    assert info.value.details == ["130891100 承德市东山县城关镇", "130892100 承德市西山县城关镇"]


def test_duplicate_township_name_resolves_with_its_county(twin_towns):
    """东山县城关镇, 东山城关镇 and 西山县城关镇 each resolve to the township of that county."""
    with twin_towns.read() as session:
        resolver = Resolver(session)
        assert resolver.resolve("东山县城关镇").code == "130891100"
        assert resolver.resolve("东山城关镇").code == "130891100"
        assert resolver.resolve("西山县城关镇").code == "130892100"
        assert resolver.resolve("承德市西山城关镇").code == "130892100"


def test_candidates_lists_every_fit(twin_towns):
    """candidates() returns every unit a name could mean, and nothing for an unknown one."""
    with twin_towns.read() as session:
        resolver = Resolver(session)
        assert sorted(u.code for u in resolver.candidates("城关")) == ["130891100", "130892100"]
        assert resolver.candidates("北关镇") == []


@pytest.mark.parametrize(
    ("name", "level", "short"),
    [
        ("宽城满族自治县", "county", "宽城"),
        ("丰宁满族自治县", "county", "丰宁"),
        ("围场满族蒙古族自治县", "county", "围场"),
        ("承德县", "county", "承德"),
        ("平泉市", "county", "平泉"),
        ("鹰手营子矿区", "county", "鹰手营子"),
        ("双桥区", "county", "双桥"),
        ("高寺台镇", "township", "高寺台"),
        ("西大街街道", "township", "西大街"),
        ("两间房乡", "township", "两间房"),
        ("承德市", "city", "承德"),
        ("内蒙古自治区", "province", "内蒙古"),
        ("新疆维吾尔自治区", "province", "新疆"),
        ("河北省", "province", "河北"),
    ],
)
def test_short_name(name, level, short):
    """short_name() drops the level suffix and any ethnic-autonomy words, as officials write them."""
    assert short_name(name, level) == short


def test_short_name_keeps_at_least_two_characters():
    """A suffix is not dropped when it would leave fewer than two characters (e.g. 沙县 stays 沙县)."""
    assert short_name("沙县", "county") == "沙县"
    assert short_name("城镇", "township") == "城镇"


def test_refusals_are_chinese_by_default(resolve):
    """In Chinese (the default) an unknown or ambiguous unit is refused in Chinese, naming what was typed."""
    with language("zh"):
        assert refusal(resolve, "不存在镇").message.startswith("单位“不存在镇”：名录中没有这个单位")
        assert "“承德”对应 2 个单位" in refusal(resolve, "承德").message
