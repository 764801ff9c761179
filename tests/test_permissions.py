"""Who may do what: every role × level of post × every trigger × level of unit and in/out of jurisdiction,
the same for checklist records, cohort designations and the other actions, through the services with
`Actor`s (the expected answer computed from `states.permissions`, the contract's posts and the jurisdiction
rule); a handful through the CLI (exit 4 and the reason); separation of duties (tests/test_roles.py has its
matrix); and every refusal audited as one `denied` row and nothing else."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import func, select, update
from support import T0, add_officials, new_database_url

from anjian.states import permissions as P
from anjian.states.campaign import builtin_text, load
from anjian.states.machines import SPECS
from anjian.workflow.engine.authz import Actor
from anjian.workflow.errors import AnjianError, NotPermitted, Refused
from anjian.workflow.services.advance import advance
from anjian.workflow.services.checklist import DesignateRow, designate, record
from anjian.workflow.services.officials import os_login
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import AuditRow, Unit, UnitState

CHENGDE = load(builtin_text("chengde-2014"))
DESIGNATE = {c.id: frozenset(c.designated_by) for c in CHENGDE.cohorts.values()}  # the campaign's to say
COHORTS = tuple(CHENGDE.cohorts)

CITY = "130800"  # 承德市
KUANCHENG = "130827"  # 宽城满族自治县
YUERYA = "130827102"  # 宽城峪耳崖镇
TOWN = "130827100"  # 宽城镇
CHENGDE_XIAN = "130821"  # 承德县
GAOSITAI = "130821106"  # 承德县高寺台镇

# The part of the registry the matrix uses, written out here so that "within" is not computed by the
# code under test: each unit's parent.
PARENT = {YUERYA: KUANCHENG, KUANCHENG: CITY, GAOSITAI: CHENGDE_XIAN, CHENGDE_XIAN: CITY, CITY: None}
# Where an official may be posted, relative to the targets below (峪耳崖镇, 宽城县, the city).
HOMES = {"city": CITY, "county": KUANCHENG, "other_county": CHENGDE_XIAN, "township": YUERYA,
         "other_township": GAOSITAI}
TARGETS = {"township": YUERYA, "county": KUANCHENG, "city": CITY}
LEVEL = {CITY: "city", KUANCHENG: "county", CHENGDE_XIAN: "county", YUERYA: "township", GAOSITAI: "township"}
# The contract's posts, written out: township roles at townships, county roles at counties, city roles at
# the city, an admin anywhere (the registries have no level below the township or above the province).
POSTS = {"township_chief": {"township"}, "county_official": {"county"}, "city_office": {"city"},
         "city_inspector": {"city"}, "admin": {"province", "city", "county", "township"}}
ITEMS = {"township": "six.vehicle", "county": "county.plan_meeting"}  # a yes/no item of each level

ROLES = sorted(P.ROLES)
TRIGGERS = [(level, t) for level, spec in SPECS.items() for t in spec.triggers]


def within(home: str, target: str | None) -> bool:
    """The jurisdiction rule: the official's own unit and every unit below it."""
    while target is not None:
        if target == home:
            return True
        target = PARENT[target]
    return False


@pytest.fixture(scope="module")
def matrix_db(tmp_path_factory) -> Iterator[Database]:
    """One Chengde database for the whole matrix: each case puts its unit in the state it needs."""
    from anjian.workflow.services.registry import initialize

    with new_database_url(tmp_path_factory.mktemp("matrix")) as url:
        db = Database(url)
        initialize(db, None, None, T0, "admin")
        yield db
        db.dispose()


def put_in_state(db: Database, code: str, state: str) -> None:
    with db.write() as s:
        s.execute(update(UnitState).where(UnitState.unit_code == code).values(state=state))


def last_seq(db: Database) -> int:
    with db.read() as s:
        return s.scalar(select(func.max(AuditRow.seq))) or 0


def attempt(db: Database, call: Callable[[], object]) -> tuple[AnjianError | None, list[AuditRow]]:
    """Run a service call; return the domain error it raised (if any) and the audit rows it wrote."""
    before = last_seq(db)
    error = None
    try:
        call()
    except AnjianError as exc:
        error = exc
    with db.read() as s:
        rows = list(s.scalars(select(AuditRow).where(AuditRow.seq > before).order_by(AuditRow.seq)))
    return error, rows


def posted_ok(role: str, home: str) -> bool:
    """Whether an official of `role` may be posted at `home` (the contract's posts, not the code's table)."""
    return LEVEL[home] in POSTS[role]


def assert_decided(error, rows, actor: Actor, attempted: str, unit: str, role_ok: bool, inside: bool,
                   what: str) -> None:
    """Permitted: anything but NotPermitted, and no `denied` row. Otherwise NotPermitted naming the right
    reason (a post that does not fit the role, then role, then jurisdiction), and exactly one `denied` row
    with actor, action and reason."""
    posted = posted_ok(actor.role, actor.unit_code)
    if posted and role_ok and inside:
        assert not isinstance(error, NotPermitted), error.message
        assert "denied" not in {r.action for r in rows}
        return
    assert isinstance(error, NotPermitted), error
    why = " ".join([error.message, *error.details])
    if not posted:
        assert "须由管理员改正其角色或单位" in why and f"（{actor.unit_code}）是" in why
    elif not role_ok:
        assert "：无权" in why and "可以操作的角色：" in why
    else:
        assert "不在其管辖范围内" in why and f"的管辖单位是 {actor.unit_code}" in why
    assert len(rows) == 1
    row = rows[0]
    assert (row.action, row.actor, row.unit_code) == ("denied", actor.name, unit)
    assert (row.from_state, row.to_state, row.note) == (None, None, None)
    detail = json.loads(row.detail)
    assert (detail["attempted"], detail["reason"]) == (attempted, error.message)
    assert detail.get("details", []) == error.details


def test_every_role_is_posted_at_the_levels_of_the_contract():
    """ROLE_LEVELS says what the contract says: each role at its own level, an admin anywhere."""
    assert {role: set(levels) for role, levels in P.ROLE_LEVELS.items()} == POSTS
    assert all(P.fits(role, level) == (level in POSTS[role]) for role in POSTS for level in POSTS["admin"])
    assert not P.fits("nobody", "city") and not P.fits("admin", None)


def test_verdicts_come_from_above_the_township_and_are_all_separated():
    """Accept, reject and revoke are given only to roles posted above the township, and each of their
    transitions names the guard that keeps the applicants from judging their own application."""
    assert {"accept", "reject", "revoke"} == P.INSPECTION_TRIGGERS
    for trigger in P.INSPECTION_TRIGGERS:
        roles = P.TRIGGERS[("township", trigger)]
        assert roles == {"county_official", "city_inspector"}
        assert all("township" not in P.ROLE_LEVELS[r] for r in roles)
        assert "inspector_is_not_applicant" in SPECS["township"].transition(trigger)["conditions"]


def test_the_table_names_every_trigger_of_every_machine_and_known_roles_only():
    """The permission table covers exactly the machines' triggers, so the matrix below covers them all."""
    assert set(P.TRIGGERS) == set(TRIGGERS)
    assert len(TRIGGERS) == 14
    for table in (P.TRIGGERS, P.RECORD, DESIGNATE, P.ACTIONS):
        assert all(roles <= set(P.ROLES) for roles in table.values())
    assert not any("admin" in roles for roles in (*P.TRIGGERS.values(), *P.RECORD.values(), *DESIGNATE.values()))


@pytest.mark.parametrize("home", HOMES)
@pytest.mark.parametrize(("level", "trigger"), TRIGGERS, ids=[f"{lv}.{t}" for lv, t in TRIGGERS])
@pytest.mark.parametrize("role", ROLES)
def test_fire_matrix(matrix_db, role, level, trigger, home):
    """A role fires a trigger only if the table lists it and the unit is within the official's
    jurisdiction; the unit sits in the trigger's source state, so only a guard could refuse otherwise."""
    target, unit_home = TARGETS[level], HOMES[home]
    put_in_state(matrix_db, target, SPECS[level].transition(trigger)["source"])
    actor = Actor(f"{role}@{unit_home}", role, unit_home)
    error, rows = attempt(matrix_db, lambda: advance(matrix_db, target, trigger, actor, T0))
    role_ok, inside = role in P.TRIGGERS[(level, trigger)], within(unit_home, target)
    assert_decided(error, rows, actor, f"advance {trigger}", target, role_ok, inside, f"fire {trigger} on a {level}")
    if posted_ok(role, unit_home) and role_ok and inside and error is not None:
        assert isinstance(error, Refused)
        assert not any("只能在" in d for d in error.details)  # never the state: a guard decided


@pytest.mark.parametrize("home", HOMES)
@pytest.mark.parametrize("level", ["township", "county"])
@pytest.mark.parametrize("role", ROLES)
def test_record_matrix(matrix_db, role, level, home):
    """A role records a checklist fact of a township or county only if RECORD lists it for that level and
    the unit is within the official's jurisdiction."""
    target, unit_home = TARGETS[level], HOMES[home]
    actor = Actor(f"{role}@{unit_home}", role, unit_home)
    error, rows = attempt(matrix_db, lambda: record(matrix_db, target, ITEMS[level], "是", actor, T0))
    role_ok, inside = role in P.RECORD[level], within(unit_home, target)
    assert_decided(error, rows, actor, f"record {ITEMS[level]}", target, role_ok, inside,
                   f"record a {level}'s checklist")
    if posted_ok(role, unit_home) and role_ok and inside:
        assert error is None


@pytest.mark.parametrize("role", ROLES)
def test_the_city_has_no_checklist_whoever_asks(matrix_db, role):
    """Recording on the city is bad input (exit 2) for every role, before any permission is weighed."""
    from anjian.workflow.errors import BadInput

    actor = Actor(f"{role}@{CITY}", role, CITY)
    error, rows = attempt(matrix_db, lambda: record(matrix_db, CITY, "six.vehicle", "是", actor, T0))
    assert isinstance(error, BadInput) and "没有市清单" in error.message
    assert rows == []


@pytest.mark.parametrize("remove", [False, True], ids=["add", "remove"])
@pytest.mark.parametrize("home", HOMES)
@pytest.mark.parametrize("cohort", sorted(COHORTS))
@pytest.mark.parametrize("role", ROLES)
def test_designate_matrix(matrix_db, role, cohort, home, remove):
    """A role puts a township into a cohort (or takes it out) only if the campaign's `designated_by` lists it for that cohort
    and the township is within the official's jurisdiction (the plan's limits may still refuse: exit 2)."""
    from anjian.workflow.errors import BadInput

    unit_home = HOMES[home]
    actor = Actor(f"{role}@{unit_home}", role, unit_home)
    rows_in = [DesignateRow(0, YUERYA, cohort, remove)]
    error, rows = attempt(matrix_db, lambda: designate(matrix_db, rows_in, actor, T0))
    role_ok, inside = role in DESIGNATE[cohort], within(unit_home, YUERYA)
    assert_decided(error, rows, actor, "designate", YUERYA, role_ok, inside, f"designate {cohort}")
    if posted_ok(role, unit_home) and role_ok and inside:
        assert error is None or isinstance(error, BadInput)


@pytest.mark.parametrize("action", sorted(P.ACTIONS))
@pytest.mark.parametrize("role", ROLES)
def test_action_matrix(matrix_db, role, action):
    """Every other action (contacts, calendar, users, init, checkpoints, circulars, …) is allowed, from each
    post and on no unit or a unit of each level, only to an official posted at a level fitting the role,
    listed in ACTIONS, and within jurisdiction when the action names a unit."""
    from anjian.workflow.engine.authz import may

    with matrix_db.read() as session:
        for unit_home in HOMES.values():
            actor = Actor(f"{role}@{unit_home}", role, unit_home)
            for code in (None, *TARGETS.values()):
                error = None
                try:
                    may(session, actor, action, code, None)
                except NotPermitted as exc:
                    error = exc
                role_ok, inside = role in P.ACTIONS[action], code is None or within(unit_home, code)
                case = (role, unit_home, action, code)
                if posted_ok(role, unit_home) and role_ok and inside:
                    assert error is None, (case, error.message)
                    continue
                assert error is not None, case
                if not posted_ok(role, unit_home):
                    assert "须由管理员改正其角色或单位" in error.message, case
                elif not role_ok:
                    assert f"无权使用 `{action}`" in error.message, case
                else:
                    assert "不在其管辖范围内" in error.message, case


def test_a_plain_name_is_a_trusted_caller(matrix_db):
    """Services called with a plain name (the scheduler, tests) are not checked: even `nobody` may act."""
    put_in_state(matrix_db, GAOSITAI, "not_started")
    t = advance(matrix_db, GAOSITAI, "start", "nobody", T0)
    assert (t.from_state, t.to_state) == ("not_started", "building")


# -- separation of duties, through the services --------------------------------------------------
def applied_by(db, fill_checklist, code: str, applicant: Actor) -> None:
    """A township started and applied for by `applicant` (an Actor, checked like the CLI's)."""
    advance(db, code, "start", applicant, T0)
    fill_checklist(db, code)
    advance(db, code, "apply", applicant, T0)


def test_the_applicant_may_not_give_the_verdict_even_with_the_role(chengde, fill_checklist):
    """A county official who applied has the role to accept and reject, but not for his own application:
    NotPermitted naming separation of duties along with every other unmet reason."""
    li = Actor("li", "county_official", KUANCHENG)
    applied_by(chengde, fill_checklist, TOWN, li)
    for trigger in ("accept", "reject"):
        error, rows = attempt(chengde, lambda t=trigger: advance(chengde, TOWN, t, li, T0))
        assert isinstance(error, NotPermitted)
        assert any("申请人以外" in d and "li" in d for d in error.details)
        assert any("--note" in d for d in error.details)  # the other reason is listed too
        assert [r.action for r in rows] == ["denied"]
        assert any("申请人以外" in d for d in json.loads(rows[0].detail)["details"])


def test_a_colleague_of_the_same_body_may_not_accept(chengde, fill_checklist):
    """Another official of the same unit in the same role may not accept or reject what a colleague applied for."""
    applied_by(chengde, fill_checklist, TOWN, Actor("li", "county_official", KUANCHENG))
    add_officials(chengde, {"li2": ("county_official", KUANCHENG)})
    colleague = Actor("li2", "county_official", KUANCHENG)
    for trigger in ("accept", "reject"):
        error, rows = attempt(chengde, lambda t=trigger: advance(chengde, TOWN, t, colleague, T0, note="合格"))
        assert isinstance(error, NotPermitted)
        assert "申请单位以外" in error.message and "申请人 li 同为 130827 的县区工作人员" in error.message
        assert [r.action for r in rows] == ["denied"]


@pytest.mark.parametrize(("applicant", "inspector"), [
    (Actor("chief_yuerya", "township_chief", YUERYA), Actor("li", "county_official", KUANCHENG)),
    (Actor("office", "city_office", CITY), Actor("inspector", "city_inspector", CITY)),
    (Actor("li", "county_official", KUANCHENG), Actor("inspector", "city_inspector", CITY)),
], ids=["chief-then-county", "city_office-then-city_inspector", "county-then-city_inspector"])
def test_an_official_of_another_body_accepts(chengde, fill_checklist, applicant, inspector):
    """A verdict from another body (another role, even in the same unit) is accepted."""
    applied_by(chengde, fill_checklist, YUERYA, applicant)
    t = advance(chengde, YUERYA, "accept", inspector, T0, note="资料齐全，现场核查合格")
    assert (t.from_state, t.to_state) == ("applied", "accepted")


# -- through the CLI: exit 4, the reason, and one `denied` row --------------------------------------
def audit_rows_after(db, seq: int) -> list[AuditRow]:
    with db.read() as s:
        return list(s.scalars(select(AuditRow).where(AuditRow.seq > seq).order_by(AuditRow.seq)))


def units_snapshot(db) -> list[tuple]:
    with db.read() as s:
        return list(s.execute(select(Unit.code, Unit.state, Unit.version).order_by(Unit.code)).all())


@pytest.mark.parametrize(("user", "args", "reason", "unit"), [
    ("chief_yuerya", ["advance", "宽城峪耳崖镇", "accept", "--note", "合格"], "无权对乡镇执行“验收通过”（accept）", YUERYA),
    ("chief_yuerya", ["advance", "宽城满族自治县", "submit_plan"], "无权对县区执行“报送推进方案”（submit_plan）", KUANCHENG),
    ("li", ["advance", "承德县高寺台镇", "start"], "不在其管辖范围内", GAOSITAI),
    ("li", ["advance", CITY, "begin_demonstration"], "无权对市执行“进入示范乡镇创建阶段”（begin_demonstration）", CITY),
    ("inspector", ["record", YUERYA, "six.vehicle", "是"], "无权登记乡镇的检查清单", YUERYA),
    ("chief_yuerya", ["record", "宽城镇", "six.vehicle", "是"], "不在其管辖范围内", TOWN),
    ("li", ["designate", "宽城镇", "key"], "无权把乡镇列为安全生产重点乡镇（key）", TOWN),
    ("li", ["designate", "承德县高寺台镇", "heavy_task"], "不在其管辖范围内", GAOSITAI),
    ("inspector", ["contact", "add", "宽城县", "--name", "李科长", "--email", "li@kc.gov.cn"], "无权使用 `contact`", None),
], ids=["role-accept", "role-submit_plan", "jurisdiction-start", "role-city", "role-record", "jurisdiction-record",
        "role-designate", "jurisdiction-designate", "role-contact"])
def test_cli_refusal_exits_4_with_the_reason(chengde, cli, user, args, reason, unit):
    """Through the CLI a refused action exits 4, prints who tried (the admin acting as them) and why,
    changes no unit and writes one `denied` audit row."""
    before, units = last_seq(chengde), units_snapshot(chengde)
    r = cli(*args, user=user)
    assert r.exit_code == 4, r.output
    assert r.output.startswith("无权操作: ")
    assert reason in r.output and f"{os_login()}（代 {user} 操作）" in r.output
    assert units_snapshot(chengde) == units
    [row] = audit_rows_after(chengde, before)
    assert (row.action, row.actor) == ("denied", user)
    assert row.unit_code == unit
    detail = json.loads(row.detail)
    assert detail["by"] == os_login()
    assert reason in " ".join([detail["reason"], *detail.get("details", [])])


def test_cli_batch_row_out_of_jurisdiction_exits_4_and_is_audited(chengde, cli, tmp_path):
    """A batch with a row outside the official's jurisdiction applies nothing, exits 4 naming the line,
    and audits that row's refusal."""
    f = tmp_path / "batch.csv"
    f.write_text(f"unit,trigger,note\n{YUERYA},start,\n{GAOSITAI},start,\n", encoding="utf-8")
    before, units = last_seq(chengde), units_snapshot(chengde)
    r = cli("advance", "--file", str(f), user="li")
    assert r.exit_code == 4, r.output
    assert "第 3 行" in r.output and "不在其管辖范围内" in r.output
    assert units_snapshot(chengde) == units
    [row] = audit_rows_after(chengde, before)
    detail = json.loads(row.detail)
    assert (row.action, row.actor, detail["attempted"], detail["line"]) == ("denied", "li", "advance start", 3)
    assert "不在其管辖范围内" in detail["reason"]


# -- separation of duties, through the CLI -----------------------------------------------------------
@pytest.fixture
def applied_by_li(chengde, cli, fill_checklist):
    """宽城镇 started and applied for by `li` (a county official of 宽城) through the CLI."""
    assert cli("advance", TOWN, "start", user="li").exit_code == 0
    fill_checklist(chengde, TOWN)
    r = cli("advance", TOWN, "apply", user="li")
    assert r.exit_code == 0, r.output
    return chengde


@pytest.mark.parametrize("trigger", ["accept", "reject"])
def test_cli_the_applicant_cannot_give_the_verdict(applied_by_li, cli, trigger):
    """The applicant's own accept or reject exits 4 (separation of duties); only the refusal is audited."""
    before, units = last_seq(applied_by_li), units_snapshot(applied_by_li)
    r = cli("advance", TOWN, trigger, "--note", "合格", user="li")
    assert r.exit_code == 4, r.output
    assert "申请人以外" in r.output and "li 提出" in r.output
    assert units_snapshot(applied_by_li) == units
    assert [row.action for row in audit_rows_after(applied_by_li, before)] == ["denied"]


def test_cli_a_colleague_cannot_accept_but_an_inspector_can(applied_by_li, cli):
    """Another county official of 宽城 cannot accept what li applied for (exit 4); a city inspector can."""
    add_officials(applied_by_li, {"li2": ("county_official", KUANCHENG)})
    r = cli("advance", TOWN, "accept", "--note", "合格", user="li2")
    assert r.exit_code == 4, r.output
    assert "申请单位以外" in r.output and "申请人 li" in r.output
    ok = cli("advance", TOWN, "accept", "--note", "资料齐全，现场核查合格", user="inspector")
    assert ok.exit_code == 0, ok.output
    assert "已申请验收 → 已达标" in ok.output
