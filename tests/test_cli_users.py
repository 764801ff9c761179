"""`anjian user …` and who is acting: the official mapped to this process's OS account, `--as` and
ANJIAN_USER for an admin only (recorded as "X acting as Y"), disabled officials, the last admin, and
the first `init` making the current account the admin. Another OS account is played by replacing
our own `users.os_login`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select, text
from support import T0

from anjian.workflow.services import officials as users
from anjian.workflow.store.models import AuditRow, Official, Unit

YUERYA = "130827102"  # 宽城峪耳崖镇
TOWN = "130827100"  # 宽城镇
ADMIN = users.os_login()  # this process's account: the admin of every `chengde` database


@pytest.fixture
def english(monkeypatch):
    """The messages of this test are asserted in English (ANJIAN_LANG=en)."""
    monkeypatch.setenv("ANJIAN_LANG", "en")


@pytest.fixture
def login(monkeypatch):
    """A factory: from now on this process runs as that OS account."""

    def become(name: str) -> None:
        monkeypatch.setattr(users, "os_login", lambda: name)

    return become


@pytest.fixture
def wang(chengde):
    """王站长, the township chief of 峪耳崖镇, mapped to the OS account `wangzz` (registered by the admin)."""
    users.add(chengde, "王站长", "township_chief", "宽城峪耳崖镇", "wangzz", ADMIN, T0)
    return chengde


def last_seq(db) -> int:
    with db.read() as s:
        return s.scalar(select(func.max(AuditRow.seq))) or 0


def rows_after(db, seq: int) -> list[AuditRow]:
    with db.read() as s:
        return list(s.scalars(select(AuditRow).where(AuditRow.seq > seq).order_by(AuditRow.seq)))


def officials(db) -> list[tuple]:
    with db.read() as s:
        return list(s.execute(select(Official.name, Official.role, Official.unit_code, Official.os_user,
                                     Official.active).order_by(Official.name)).all())


def state_of(db, code: str) -> str:
    with db.read() as s:
        return s.get(Unit, code).state


def user_list(cli) -> dict[str, dict]:
    r = cli("user", "list", "--format", "json", user=None)
    assert r.exit_code == 0, r.output
    return {o["name"]: o for o in json.loads(r.stdout)}


def assert_one_denial(db, before: int, actor: str, attempted: str, reason: str) -> dict:
    """Exactly one audit row was written since `before`: a `denied` one by `actor`, with its reason."""
    [row] = rows_after(db, before)
    detail = json.loads(row.detail)
    assert (row.action, row.actor, detail["attempted"]) == ("denied", actor, attempted)
    assert reason in detail["reason"]
    return detail


# -- the first init --------------------------------------------------------------------------------
def test_first_init_makes_this_account_the_admin(cli):
    """On a database with no officials, `init` makes the current OS account its admin, listed by `user list`."""
    r = cli("init", user=None)
    assert r.exit_code == 0, r.output
    assert f"已将操作系统账户 {ADMIN} 设为本数据库的管理员（admin）" in r.output
    assert user_list(cli) == {ADMIN: {"name": ADMIN, "role": "admin", "unit": "130800", "unit_name": "承德市",
                                      "os_user": ADMIN, "active": True, "has_password": False, "must_change": False}}
    table = cli("user", "list", user=None)
    assert table.exit_code == 0 and ADMIN in table.output and "系统管理员" in table.output


def test_first_init_by_another_account_makes_that_account_the_admin(cli, login):
    """Whoever runs the first init becomes the admin — the account from the user id, whatever $USER says."""
    login("zhangke")
    r = cli("init", user=None)
    assert r.exit_code == 0, r.output
    assert list(user_list(cli)) == ["zhangke"]


def test_user_env_variable_does_not_pick_the_account(chengde, cli, monkeypatch):
    """$USER and $LOGNAME are not trusted: the acting account comes from the process's user id."""
    monkeypatch.setenv("USER", "wangzz")
    monkeypatch.setenv("LOGNAME", "wangzz")
    r = cli("advance", YUERYA, "start", user="chief_yuerya")
    assert r.exit_code == 0, r.output
    with chengde.read() as s:
        row = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).one()
    assert json.loads(row.detail)["by"] == ADMIN


@pytest.mark.usefixtures("english")
def test_a_second_init_makes_no_second_admin(cli, login):
    """Once there are officials, another account's init is refused (exit 4) and no admin is added."""
    assert cli("init", user=None).exit_code == 0
    login("stranger")
    r = cli("init", user=None)
    assert r.exit_code == 4, r.output
    assert "stranger is not mapped" in r.output
    login(ADMIN)
    assert list(user_list(cli)) == [ADMIN]


@pytest.mark.usefixtures("english")
def test_a_database_whose_officials_are_gone_gets_its_admin_from_the_next_init(chengde, cli):
    """A database without officials (one made before officials existed) refuses to act and says to run
    init; init then makes the current account its admin."""
    with chengde.engine.begin() as conn:
        conn.execute(text("DELETE FROM officials"))
    r = cli("advance", YUERYA, "start", user=None)
    assert r.exit_code == 4, r.output
    assert "no officials yet" in r.output and "anjian init" in r.output
    assert state_of(chengde, YUERYA) == "not_started"
    r = cli("init", user=None)
    assert r.exit_code == 0, r.output
    assert "is now the admin of this database" in r.output and "changed nothing" not in r.output
    assert list(user_list(cli)) == [ADMIN]


# -- who is acting ---------------------------------------------------------------------------------
@pytest.mark.usefixtures("english")
def test_an_unmapped_account_is_refused_with_the_user_add_hint(chengde, cli, login):
    """An OS account no official is mapped to exits 4 with the exact `user add … --os-user LOGIN` to run;
    the refusal is audited and nothing else is written."""
    login("stranger")
    before = last_seq(chengde)
    r = cli("advance", YUERYA, "start", user=None)
    assert r.exit_code == 4, r.output
    assert "operating-system account stranger is not mapped to any official" in r.output
    assert "anjian user add NAME --role ROLE --unit UNIT --os-user stranger" in r.output
    assert state_of(chengde, YUERYA) == "not_started"
    assert_one_denial(chengde, before, "stranger", "identify", "not mapped")


def test_an_unmapped_account_cannot_use_as_either(chengde, cli, login):
    """--as does not help an account that is no official at all."""
    login("stranger")
    r = cli("advance", YUERYA, "start", user="tester")
    assert r.exit_code == 4
    assert "--os-user stranger" in r.output
    assert state_of(chengde, YUERYA) == "not_started"


def test_a_mapped_official_acts_as_themselves(wang, cli, login):
    """The account mapped to 王站长 acts as 王站长: the audit row names him, with no `by`."""
    login("wangzz")
    r = cli("advance", YUERYA, "start", user=None)
    assert r.exit_code == 0, r.output
    with wang.read() as s:
        row = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).one()
    assert (row.action, row.actor, row.unit_code) == ("start", "王站长", YUERYA)
    assert "by" not in json.loads(row.detail)
    assert cli("advance", YUERYA, "apply", user="王站长").exit_code == 3  # --as oneself is no acting-as


def test_a_mapped_official_keeps_to_their_jurisdiction(wang, cli, login):
    """王站长 may start his own township, not his neighbour 宽城镇 (exit 4)."""
    login("wangzz")
    r = cli("advance", TOWN, "start", user=None)
    assert r.exit_code == 4, r.output
    assert "王站长 的管辖单位是 130827102" in r.output and "不在其管辖范围内" in r.output
    assert state_of(wang, TOWN) == "not_started"


@pytest.mark.parametrize("how", ["--as", "ANJIAN_USER"])
@pytest.mark.usefixtures("english")
def test_a_non_admin_may_not_act_as_someone_else(wang, cli, login, monkeypatch, how):
    """--as and ANJIAN_USER are honoured only for an admin: 王站长 using either exits 4; nothing but the
    refusal is written."""
    login("wangzz")
    before = last_seq(wang)
    if how == "ANJIAN_USER":
        monkeypatch.setenv("ANJIAN_USER", "li")
        r = cli("advance", TOWN, "start", user=None)
    else:
        r = cli("advance", TOWN, "start", user="li")
    assert r.exit_code == 4, r.output
    assert "王站长 is not an admin: --as/ANJIAN_USER is only honoured for admin accounts" in r.output
    assert state_of(wang, TOWN) == "not_started"
    assert_one_denial(wang, before, "wangzz", "identify", "not an admin")


@pytest.mark.parametrize("how", ["--as", "ANJIAN_USER"])
def test_an_admin_acting_as_is_recorded(chengde, cli, monkeypatch, how):
    """The admin's --as (or ANJIAN_USER) is honoured and recorded: the row's actor is the official, `by`
    the admin, and `history` shows "admin acting as official"."""
    if how == "ANJIAN_USER":
        monkeypatch.setenv("ANJIAN_USER", "chief_yuerya")
        r = cli("advance", YUERYA, "start", user=None)
    else:
        r = cli("advance", YUERYA, "start", user="chief_yuerya")
    assert r.exit_code == 0, r.output
    h = cli("history", YUERYA, "--format", "json", user=None)
    last = json.loads(h.stdout)[-1]
    assert (last["trigger"], last["actor"], last["by"]) == ("start", "chief_yuerya", ADMIN)
    table = cli("history", YUERYA, user=None)
    assert f"{ADMIN}（代 chief_yuerya 操作）" in table.output


@pytest.mark.usefixtures("english")
def test_an_admin_may_not_act_as_an_unknown_official(chengde, cli):
    """--as a name that is no official exits 4 pointing at `user list`."""
    r = cli("advance", YUERYA, "start", user="nobody")
    assert r.exit_code == 4
    assert "--as nobody: no active official" in r.output and "anjian user list" in r.output
    assert state_of(chengde, YUERYA) == "not_started"


def test_the_admin_alone_may_fire_no_trigger(chengde, cli):
    """The admin manages officials; to fire a trigger it must act as an official who may (exit 4 otherwise)."""
    r = cli("advance", YUERYA, "start", user=None)
    assert r.exit_code == 4, r.output
    assert f"{ADMIN} 是系统管理员（admin）：无权对乡镇执行“开展创建”（start）" in r.output


# -- disabled officials and the last admin ----------------------------------------------------------
def test_a_disabled_official_cannot_act_until_enabled(chengde, cli):
    """After `user disable` the admin cannot act as them (exit 4); `user enable` lets them act again."""
    r = cli("user", "disable", "chief_yuerya", user=None)
    assert r.exit_code == 0, r.output
    assert "已停用 chief_yuerya" in r.output
    assert user_list(cli)["chief_yuerya"]["active"] is False
    r = cli("advance", YUERYA, "start", user="chief_yuerya")
    assert r.exit_code == 4
    assert "没有这个名字的在用人员" in r.output
    assert state_of(chengde, YUERYA) == "not_started"
    assert cli("user", "enable", "chief_yuerya", user=None).exit_code == 0
    assert cli("advance", YUERYA, "start", user="chief_yuerya").exit_code == 0
    with chengde.read() as s:
        actions = list(s.scalars(select(AuditRow.action).where(AuditRow.action.like("user_%")).order_by(AuditRow.seq)))
    assert actions[-3:] == ["user_add", "user_disable", "user_enable"]


@pytest.mark.usefixtures("english")
def test_a_disabled_account_cannot_act(wang, cli, login):
    """The OS account of a disabled official is refused (exit 4) saying it is disabled."""
    assert cli("user", "disable", "王站长", user=None).exit_code == 0
    login("wangzz")
    r = cli("advance", YUERYA, "start", user=None)
    assert r.exit_code == 4, r.output
    assert "wangzz is disabled" in r.output
    assert state_of(wang, YUERYA) == "not_started"


@pytest.mark.usefixtures("english")
def test_the_last_admin_cannot_be_disabled(chengde, cli):
    """Disabling the only active admin is refused (exit 2) and changes nothing; with a second admin it works."""
    before = officials(chengde)
    r = cli("user", "disable", ADMIN, user=None)
    assert r.exit_code == 2, r.output
    assert f"{ADMIN} is the last active admin" in r.output
    assert officials(chengde) == before
    assert cli("user", "add", "second_admin", "--role", "admin", "--unit", "承德市", user=None).exit_code == 0
    r = cli("user", "disable", ADMIN, user=None)
    assert r.exit_code == 0, r.output
    assert {name: active for name, _role, _unit, _os, active in officials(chengde)}[ADMIN] in (False, 0)


# -- only an admin manages officials and runs init ---------------------------------------------------
def test_admin_adds_an_official_who_then_acts(chengde, cli, login):
    """`user add` registers an official with a role, a unit and an OS account (audited); that account
    then acts as them."""
    before = last_seq(chengde)
    r = cli("user", "add", "王站长", "--role", "township_chief", "--unit", "宽城峪耳崖镇", "--os-user", "wangzz",
            user=None)
    assert r.exit_code == 0, r.output
    assert "已登记 王站长：乡镇安监站长，峪耳崖镇（130827102），操作系统账户 wangzz" in r.output
    [row] = rows_after(chengde, before)
    assert (row.action, row.actor, row.unit_code) == ("user_add", ADMIN, YUERYA)
    assert json.loads(row.detail) == {"name": "王站长", "role": "township_chief", "os_user": "wangzz"}
    assert user_list(cli)["王站长"]["os_user"] == "wangzz"
    login("wangzz")
    assert cli("advance", YUERYA, "start", user=None).exit_code == 0


@pytest.mark.parametrize(("args", "words"), [
    (["chief_yuerya", "--role", "township_chief", "--unit", "宽城峪耳崖镇"], "already exists"),
    (["新人", "--role", "township_chief", "--unit", "宽城峪耳崖镇", "--os-user", ADMIN], "already mapped"),
    (["新人", "--role", "township_chief", "--unit", "不存在镇"], "no such unit"),
    (["新人", "--role", "mayor", "--unit", "宽城峪耳崖镇"], "mayor"),
    (["新人 acting as chief", "--role", "township_chief", "--unit", "宽城峪耳崖镇"], "acting as"),
], ids=["same-name", "os-account-taken", "unknown-unit", "unknown-role", "acting-as-in-name"])
@pytest.mark.usefixtures("english")
def test_user_add_bad_input_exits_2(chengde, cli, args, words):
    """A duplicate name or OS account, an unknown unit or role, a name that would read as "acting as":
    exit 2 naming it, nothing written."""
    before, people = last_seq(chengde), officials(chengde)
    r = cli("user", "add", *args, user=None)
    assert r.exit_code == 2, r.output
    assert words in r.output
    assert (last_seq(chengde), officials(chengde)) == (before, people)


@pytest.mark.parametrize(("args", "attempted", "action", "actor"), [
    (["init"], "init", "init", "wangzz"),  # init identifies inside its own transaction: the account is named
    (["user", "add", "新人", "--role", "township_chief", "--unit", "宽城镇"], "user add", "users", "王站长"),
    (["user", "disable", "chief_yuerya"], "user disable", "users", "王站长"),
    (["user", "enable", "chief_yuerya"], "user enable", "users", "王站长"),
], ids=["init", "user-add", "user-disable", "user-enable"])
def test_a_non_admin_cannot_run_init_or_manage_officials(wang, cli, login, args, attempted, action, actor):
    """王站长 (a township chief) running init or a `user` change exits 4; the refusal is audited and no
    official or unit changes."""
    login("wangzz")
    before, people = last_seq(wang), officials(wang)
    r = cli(*args, user=None)
    assert r.exit_code == 4, r.output
    assert f"王站长 是乡镇安监站长（township_chief）：无权使用 `{action}`；可以操作的角色：系统管理员（admin）" in r.output
    assert officials(wang) == people
    assert_one_denial(wang, before, actor, attempted, f"无权使用 `{action}`")


def test_an_admin_acting_as_an_official_has_only_their_rights(chengde, cli):
    """Acting --as a city office official, the admin cannot add officials: the acted role decides (exit 4)."""
    before = officials(chengde)
    r = cli("user", "add", "新人", "--role", "township_chief", "--unit", "宽城镇", user="office")
    assert r.exit_code == 4, r.output
    assert f"{ADMIN}（代 office 操作）" in r.output and "无权使用 `users`" in r.output
    assert officials(chengde) == before


# -- roles as typed, and `user edit` (issue 13, point 6) ----------------------------------------------
@pytest.mark.parametrize("role", ["county-official", "county_official", "县区工作人员", "County Official"])
def test_user_add_takes_the_role_as_an_official_types_it(chengde, cli, role):
    """`--role` takes `-` for `_`, the Chinese name and the English name of a role."""
    r = cli("user", "add", "李科长", "--role", role, "--unit", "宽城县", user=None)
    assert r.exit_code == 0, r.output
    assert user_list(cli)["李科长"]["role"] == "county_official"


def test_user_edit_links_an_existing_official_to_an_os_account(chengde, cli, login):
    """`user edit NAME --login` maps an official registered without an account; that account then acts as them."""
    assert cli("user", "add", "王站长", "--role", "township_chief", "--unit", "宽城峪耳崖镇", user=None).exit_code == 0
    before = last_seq(chengde)
    r = cli("user", "edit", "王站长", "--login", "wangzz", user=None)
    assert r.exit_code == 0, r.output
    assert "wangzz" in r.output
    [row] = rows_after(chengde, before)
    assert (row.action, row.actor) == ("user_edit", ADMIN)
    assert json.loads(row.detail)["changed"] == ["os_user"]
    login("wangzz")
    assert cli("advance", YUERYA, "start", user=None).exit_code == 0


def test_user_edit_changes_role_unit_and_name_and_verify_stays_clean(chengde, cli):
    """An edit of role, unit and name is replayed by the log rebuild: `audit verify` exits 0 afterwards."""
    assert cli("user", "add", "王站长", "--role", "township_chief", "--unit", "宽城峪耳崖镇", "--os-user", "wangzz",
               user=None).exit_code == 0
    r = cli("user", "edit", "王站长", "--role", "县区工作人员", "--unit", "宽城县", "--name", "王科长", user=None)
    assert r.exit_code == 0, r.output
    people = user_list(cli)
    assert "王站长" not in people
    assert (people["王科长"]["role"], people["王科长"]["unit"], people["王科长"]["os_user"]) == (
        "county_official", "130827", "wangzz")
    r = cli("audit", "verify", user=None)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(("args", "words"), [
    (["王站长", "--role", "county_official"], "县"),  # a county role at a township
    (["王站长", "--login", ADMIN], ADMIN),  # the account is someone else's
    (["王站长", "--name", "chief_yuerya"], "chief_yuerya"),  # the name is taken
    (["无此人", "--login", "x"], "无此人"),
    (["王站长"], "--login"),  # nothing to change
    ([ADMIN, "--role", "city_office"], ADMIN),  # the last admin stays an admin
], ids=["role-misfits-unit", "login-taken", "name-taken", "unknown-official", "nothing", "last-admin"])
def test_user_edit_keeps_the_rules_of_user_add(chengde, cli, args, words):
    """An edit that breaks a rule of `user add` exits 2 naming it, and writes nothing."""
    assert cli("user", "add", "王站长", "--role", "township_chief", "--unit", "宽城峪耳崖镇", user=None).exit_code == 0
    before, people = last_seq(chengde), officials(chengde)
    r = cli("user", "edit", *args, user=None)
    assert r.exit_code == 2, r.output
    assert words in r.output
    assert officials(chengde) == people
    assert last_seq(chengde) in (before, before + 1)  # at most the audited refusal


def test_only_an_admin_edits_officials(wang, cli, login):
    """A township chief running `user edit` exits 4 and changes nothing."""
    login("wangzz")
    people = officials(wang)
    r = cli("user", "edit", "王站长", "--login", "other", user=None)
    assert r.exit_code == 4, r.output
    assert officials(wang) == people


def test_user_list_speaks_chinese_by_default_and_english_on_request(chengde, cli, monkeypatch):
    """`user list` shows Chinese headers and role names by default, English ones with ANJIAN_LANG=en; JSON keeps ids."""
    zh = cli("user", "list", user=None)
    assert zh.exit_code == 0 and "角色" in zh.output and "乡镇安监站长" in zh.output and "township_chief" not in zh.output
    monkeypatch.setenv("ANJIAN_LANG", "en")
    en = cli("user", "list", user=None)
    assert en.exit_code == 0 and "Role" in en.output and "township station chief" in en.output, en.output
    assert "角色" not in en.output
    assert user_list(cli)["chief_yuerya"]["role"] == "township_chief"


def test_history_names_the_officials_rows_in_words(chengde, cli):
    """`history` shows an official's add and edit as 添加用户 / 修改用户 with the name, role and account, not as ids."""
    assert cli("user", "add", "王站长", "--role", "township_chief", "--unit", "宽城峪耳崖镇", user=None).exit_code == 0
    assert cli("user", "edit", "王站长", "--login", "wangzz", user=None).exit_code == 0
    r = cli("history", YUERYA, user=None)
    assert r.exit_code == 0, r.output
    assert "添加用户" in r.output and "修改用户" in r.output and "user_edit" not in r.output
    assert "王站长 乡镇安监站长 wangzz" in r.output
