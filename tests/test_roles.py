"""Roles fit levels, and verdicts are separated by person and by line: the posts `user add` refuses, an
official stored at a wrong post refused whenever they act, the verdict matrix (every applicant × every
verdict × every official who might give it), and the attacks of issue 12 through the CLI."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, update
from support import T0, add_officials, new_database_url, snapshot

from anjian.workflow.engine.authz import Actor
from anjian.workflow.errors import NotPermitted
from anjian.workflow.services.advance import advance
from anjian.workflow.store import audit
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import AuditRow, Official, Unit, UnitState

CITY = "130800"  # 承德市
KUANCHENG = "130827"  # 宽城满族自治县
YUERYA = "130827102"  # 宽城峪耳崖镇
GAOSITAI = "130821106"  # 承德县高寺台镇

APPLICANTS = ("township_chief", "county_official", "city_office")  # the roles that may apply for a township
# Who might give the verdict, by where they are posted relative to the township: each fitting post once.
GIVERS = ("self", "township_chief", "county_official", "other_county_official", "city_office", "city_inspector",
          "admin")
VERDICTS = ("accept", "reject", "revoke")  # written out: the matrix must not shrink with the table
CASES = [(a, t, g) for a in APPLICANTS for t in VERDICTS for g in GIVERS]
SOURCE = {"accept": "applied", "reject": "applied", "revoke": "accepted"}


def last_seq(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.max(AuditRow.seq))) or 0


# -- the verdict matrix -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def verdict_db(tmp_path_factory):
    """One Chengde database; each case gets a township of its own (applicants accumulate per township)."""
    from anjian.workflow.services.registry import initialize

    with new_database_url(tmp_path_factory.mktemp("verdicts")) as url:
        db = Database(url)
        initialize(db, None, None, T0, "admin")
        with db.read() as s:
            towns = list(s.execute(select(Unit.code, Unit.parent_code).where(Unit.level == "township")
                                   .order_by(Unit.code)))
        yield db, towns
        db.dispose()


def post_of(who: str, town: str, county: str) -> tuple[str, str]:
    """(role, unit) of an official described relative to a township and its county."""
    other = "130821" if county != "130821" else "130827"
    return {"township_chief": ("township_chief", town), "county_official": ("county_official", county),
            "other_county_official": ("county_official", other), "city_office": ("city_office", CITY),
            "city_inspector": ("city_inspector", CITY), "admin": ("admin", CITY)}[who]


def expected(applicant: tuple[str, str], giver: tuple[str, str], same_person: bool, trigger: str,
             town: str, county: str) -> str | None:
    """The rule, written out: the role must be given the verdict, the township within the giver's unit, and
    the giver neither an applicant (by person) nor of an applicant's body, one role at one unit (by line)."""
    role, unit = giver
    if role not in {"county_official", "city_inspector"}:
        return "role"
    if unit not in (town, county, CITY):
        return "jurisdiction"
    if same_person:
        return "person"
    if giver == applicant:
        return "line"
    return None


@pytest.mark.parametrize(("applicant", "trigger", "giver"), CASES, ids=["-".join(c) for c in CASES])
def test_verdict_matrix(verdict_db, applicant, trigger, giver):
    """Accept, reject and revoke succeed only from a role above the township that has the verdict, within
    jurisdiction, and from neither the applicant nor the applicant's body; otherwise exit 4 naming why."""
    db, towns = verdict_db
    town, county = towns[CASES.index((applicant, trigger, giver))]
    applied_as = post_of(applicant, town, county)
    name = f"applicant-{town}"
    add_officials(db, {name: applied_as})
    with db.write() as s:  # the application as the log holds it: what the verdict is checked against
        audit.append(s, [audit.Entry(T0, name, "apply", town, "building", "applied")])
        s.execute(update(UnitState).where(UnitState.unit_code == town).values(state=SOURCE[trigger]))
    giving = applied_as if giver == "self" else post_of(giver, town, county)
    actor = Actor(name if giver == "self" else f"{giver}-{town}", *giving)
    want = expected(applied_as, giving, giver == "self", trigger, town, county)
    before = last_seq(db)
    try:
        t = advance(db, town, trigger, actor, T0, note="现场核查意见")
    except NotPermitted as exc:
        why = " ".join([exc.message, *exc.details])
        assert want is not None, why
        assert {"role": f"”（{trigger}）；可以操作的角色", "jurisdiction": "不在其管辖范围内",
                "person": f"{name} 提出了本次验收申请", "line": f"与申请人 {name} 同为"}[want] in why
        with db.read() as s:
            assert [r.action for r in s.scalars(select(AuditRow).where(AuditRow.seq > before))] == ["denied"]
        return
    assert want is None, f"expected a refusal by {want}"
    assert (t.from_state, t.trigger) == (SOURCE[trigger], trigger)


def test_an_earlier_applicant_and_his_line_stay_out_after_a_resubmission(chengde, fill_checklist):
    """li (宽城县) applied, the city rejected, the township's chief resubmitted: li still may not accept (he
    applied for it), nor may his colleague li2 (li's body), while a city inspector may."""
    add_officials(chengde, {"li2": ("county_official", KUANCHENG)})
    li, li2 = Actor("li", "county_official", KUANCHENG), Actor("li2", "county_official", KUANCHENG)
    chief = Actor("chief_yuerya", "township_chief", YUERYA)
    advance(chengde, YUERYA, "start", chief, T0)
    fill_checklist(chengde, YUERYA)
    advance(chengde, YUERYA, "apply", li, T0)
    advance(chengde, YUERYA, "reject", Actor("inspector", "city_inspector", CITY), T0, note="台账不全")
    advance(chengde, YUERYA, "resubmit", chief, T0)
    with pytest.raises(NotPermitted) as own:
        advance(chengde, YUERYA, "accept", li, T0, note="合格")
    assert any("li 提出了本次验收申请" in d for d in own.value.details)
    with pytest.raises(NotPermitted) as line:
        advance(chengde, YUERYA, "accept", li2, T0, note="合格")
    assert "与申请人 li 同为 130827 的县区工作人员" in line.value.message
    ok = advance(chengde, YUERYA, "accept", Actor("wang", "city_inspector", CITY), T0, note="合格")
    assert ok.to_state == "accepted"
    for who in (li, li2):  # nor may they revoke what they applied for
        with pytest.raises(NotPermitted):
            advance(chengde, YUERYA, "revoke", who, T0, note="复查不合格")
    assert advance(chengde, YUERYA, "revoke", Actor("inspector", "city_inspector", CITY), T0,
                   note="复查不合格").to_state == "rectifying"


# -- roles fit levels, through the CLI -----------------------------------------------------------
@pytest.mark.parametrize(("role", "unit", "level"), [
    ("county_official", "宽城峪耳崖镇", "乡镇级"),
    ("township_chief", "承德市", "市级"),
    ("township_chief", "宽城满族自治县", "县区级"),
    ("city_office", "宽城满族自治县", "县区级"),
    ("city_inspector", "宽城峪耳崖镇", "乡镇级"),
    ("county_official", "承德市", "市级"),
], ids=lambda v: v if v.isascii() else None)
def test_user_add_refuses_a_role_at_another_level(chengde, cli, role, unit, level):
    """`user add` refuses a role posted at a unit of another level: exit 2, naming role, unit and level, and
    nothing written (no official, no audit row)."""
    before = snapshot(chengde)
    r = cli("user", "add", "X", "--role", role, "--unit", unit, user=None)
    assert r.exit_code == 2, r.output
    assert f"（{role}）只能设在" in r.output and f"是{level}单位" in r.output
    assert snapshot(chengde) == before


def test_user_add_takes_the_unit_at_the_role_s_level(chengde, cli):
    """A name that could be a county or a township (宽城) is taken at the level the role is posted at."""
    r = cli("user", "add", "新科长", "--role", "county_official", "--unit", "宽城", user=None)
    assert r.exit_code == 0, r.output
    with chengde.read() as s:
        assert s.get(Official, "新科长").unit_code == KUANCHENG


def stored_at_wrong_post(db: Database, name: str, role: str, unit: str) -> None:
    """An official as an older version could store them (no check of the post's level)."""
    add_officials(db, {name: (role, unit)})


def test_a_county_official_stored_at_a_township_may_not_accept_his_chief_s_application(chengde, cli, fill_checklist):
    """The attack: a county official registered at 峪耳崖镇 (an older database) tries to accept what the
    township's own chief applied for; he is refused (exit 4) with what an admin must fix, and audited."""
    stored_at_wrong_post(chengde, "假科长", "county_official", YUERYA)
    assert cli("advance", YUERYA, "start", user="chief_yuerya").exit_code == 0
    fill_checklist(chengde, YUERYA)
    assert cli("advance", YUERYA, "apply", user="chief_yuerya").exit_code == 0
    before = last_seq(chengde)
    r = cli("advance", YUERYA, "accept", "--note", "合格", user="假科长")
    assert r.exit_code == 4, r.output
    assert "县区工作人员（county_official）只能设在县区级单位" in r.output and "须由管理员改正" in r.output
    with chengde.read() as s:
        assert s.get(Unit, YUERYA).state == "applied"
        rows = list(s.scalars(select(AuditRow).where(AuditRow.seq > before)))
    assert [(r.action, r.actor) for r in rows] == [("denied", "假科长")]
    assert "须由管理员改正" in json.loads(rows[0].detail)["reason"]


def test_a_township_chief_stored_at_the_city_may_not_start_a_township(chengde, cli):
    """The attack: a township chief registered at 承德市 (an older database) tries to start a township in
    another county; refused (exit 4), nothing changed."""
    stored_at_wrong_post(chengde, "假站长", "township_chief", CITY)
    r = cli("advance", GAOSITAI, "start", user="假站长")
    assert r.exit_code == 4, r.output
    assert "只能设在乡镇级单位" in r.output and "承德市（130800）是市级单位" in r.output
    with chengde.read() as s:
        assert s.get(Unit, GAOSITAI).state == "not_started"


def test_an_official_at_a_fitting_post_still_acts(chengde, cli):
    """The check refuses only the wrong posts: a township chief at his township starts it."""
    r = cli("advance", YUERYA, "start", user="chief_yuerya")
    assert r.exit_code == 0, r.output
