"""The commands of signing in: `user passwd` (embedded, admins), `token create|list|revoke`, and
`anjian login` / `anjian logout` end to end against a real service on loopback."""

from __future__ import annotations

import json
import os
import stat

import httpx
import pytest
from click.testing import CliRunner
from sqlalchemy import select
from support import audit_count

from anjian.workflow.services import credentials
from anjian.workflow.store.models import AuditRow, Password

FIRST = "first-password-1"
SECOND = "second-password-2"


def _actions(db) -> list[str]:
    with db.read() as session:
        return list(session.scalars(select(AuditRow.action).order_by(AuditRow.seq)))


def test_user_passwd_sets_an_argon2id_password_that_must_change(cli, chengde):
    """An admin sets a password from stdin: stored as argon2id, to be changed at first sign-in, audited."""
    r = cli("user", "passwd", "inspector", "--password-stdin", user=None, input=FIRST + "\n")
    assert r.exit_code == 0, r.output
    assert "首次登录时须修改" in r.output
    with chengde.read() as session:
        row = session.get(Password, "inspector")
    assert row.hash.startswith("$argon2id$") and row.must_change == 1
    assert _actions(chengde)[-1] == "password_set"
    history = cli("history", "--format", "table", user=None)
    assert "设置密码" in history.output and "inspector" in history.output


def test_user_passwd_prompts_twice_without_stdin(cli, chengde):
    """Without --password-stdin the password is asked twice, hidden; two different answers are asked again."""
    r = cli("user", "passwd", "inspector", user=None, input=f"{FIRST}\n{FIRST}x\n{FIRST}\n{FIRST}\n")
    assert r.exit_code == 0, r.output
    assert FIRST not in r.output  # never echoed
    assert credentials.must_change(chengde, "inspector")


def test_user_passwd_is_for_admins_only(cli, chengde):
    """A city office official (not an admin) is refused with exit 4: the refusal audited, no password written."""
    before = audit_count(chengde)
    r = cli("user", "passwd", "inspector", "--password-stdin", user="tester", input=FIRST + "\n")
    assert r.exit_code == 4, r.output
    assert audit_count(chengde) == before + 1 and _actions(chengde)[-1] == "denied"
    with chengde.read() as session:
        assert session.get(Password, "inspector") is None


@pytest.mark.parametrize(("given", "words"), [("short", "太短"), ("", "太短"), ("x" * 1100, "太长")])
def test_user_passwd_refuses_an_unfit_password(cli, chengde, given, words):
    """A password too short or too long exits 2 with the reason in Chinese, nothing written."""
    before = audit_count(chengde)
    r = cli("user", "passwd", "inspector", "--password-stdin", user=None, input=given + "\n")
    assert r.exit_code == 2 and words in r.output, r.output
    assert audit_count(chengde) == before


def test_user_passwd_names_an_unknown_official(cli, chengde):
    """An unknown official is bad input naming them (exit 2)."""
    r = cli("user", "passwd", "无此人", "--password-stdin", user=None, input=FIRST + "\n")
    assert r.exit_code == 2 and "无此人" in r.output


def test_token_create_prints_the_token_alone_and_list_and_revoke_it(cli, chengde):
    """`token create` prints only the token on stdout; `token list` shows it; `token revoke` ends it."""
    r = cli("token", "create", "tester", "--label", "报表脚本", "--days", "30")
    assert r.exit_code == 0, r.output
    secret = r.stdout.strip()
    assert secret.startswith("anj_t") and "\n" not in secret
    assert credentials.authenticate(chengde, secret, credentials.dt.datetime(2014, 12, 16, tzinfo=credentials.dt.UTC))
    listed = json.loads(cli("token", "list", "--format", "json").stdout)
    assert [(t["official"], t["label"], t["kind"]) for t in listed] == [("tester", "报表脚本", "token")]
    table = cli("token", "list").stdout
    assert "报表脚本" in table and "令牌" in table
    tid = listed[0]["id"]
    r = cli("token", "revoke", tid)
    assert r.exit_code == 0 and tid in r.output
    assert json.loads(cli("token", "list", "--format", "json").stdout) == []
    assert _actions(chengde)[-2:] == ["token_create", "token_revoke"]


def test_token_permissions(cli, chengde):
    """An official makes tokens for themselves only, lists only their own, revokes only their own; an admin all."""
    before = audit_count(chengde)
    assert cli("token", "create", "inspector", user="tester").exit_code == 4
    assert cli("token", "list", "--all", user="tester").exit_code == 4
    assert _actions(chengde)[before:] == ["denied", "denied"]
    theirs = cli("token", "create", "inspector", user=None)
    assert theirs.exit_code == 0
    tid = json.loads(cli("token", "list", "--all", "--format", "json", user=None).stdout)[0]["id"]
    refused = cli("token", "revoke", tid, user="tester")
    assert refused.exit_code == 2 and tid in refused.output
    assert cli("token", "revoke", tid, user=None).exit_code == 0


def test_token_create_refuses_days_out_of_range(cli, chengde):
    """--days 0 or more than ten years is bad input, nothing written."""
    before = audit_count(chengde)
    for days in ("0", "5000"):
        r = cli("token", "create", "tester", "--days", days)
        assert r.exit_code == 2 and "3650" in r.output
    assert audit_count(chengde) == before


@pytest.fixture
def client_file(tmp_path, monkeypatch):
    """Where `anjian login` keeps the server and token in this test (ANJIAN_CLIENT_CONFIG)."""
    path = tmp_path / "config" / "anjian" / "client.json"
    monkeypatch.setenv("ANJIAN_CLIENT_CONFIG", str(path))
    return path


def _anjian(*args: str, input: str | None = None):
    from anjian.workflow.cli import cli

    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_login_end_to_end_changes_the_first_password_and_keeps_a_private_token(served, client_file):
    """`login --password-stdin` with an admin's password sets the new one, writes a 0600 file in a 0700
    folder with server, token, id and user, and the token is the official's; `logout` revokes and deletes it."""
    from anjian.workflow.engine.authz import Actor
    from anjian.workflow.services.officials import os_login

    credentials.set_password(served.db, Actor(os_login(), "admin", "130800"), "inspector", FIRST,
                             credentials.dt.datetime.now(credentials.dt.UTC))
    r = _anjian("login", "--server", served.url + "/", "--user", "inspector", "--password-stdin",
                input=f"{FIRST}\n{SECOND}\n")
    assert r.exit_code == 0, r.output
    assert "已以 inspector（市局验收人员）身份登录" in r.stdout
    assert stat.S_IMODE(client_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(client_file.parent.stat().st_mode) == 0o700
    config = json.loads(client_file.read_text(encoding="utf-8"))
    assert config["server"] == served.url and config["user"] == "inspector" and config["token_id"].startswith("t")
    me = httpx.get(f"{served.url}/api/v1/me", headers={"Authorization": f"Bearer {config['token']}"}).json()
    assert me["name"] == "inspector" and me["credential"] == config["token_id"]
    assert not credentials.must_change(served.db, "inspector")

    r = _anjian("logout")
    assert r.exit_code == 0, r.output
    assert not client_file.exists()
    assert httpx.get(f"{served.url}/api/v1/me", headers={"Authorization": f"Bearer {config['token']}"}).status_code == 401
    again = _anjian("logout")
    assert again.exit_code == 2 and "尚未登录" in again.output


def test_login_with_a_wrong_password_exits_4_and_writes_nothing(served, client_file):
    """A wrong password is refused (exit 4) with the service's Chinese reason; no file is written."""
    r = _anjian("login", "--server", served.url, "--user", "inspector", "--password-stdin", input="wrong-password\n")
    assert r.exit_code == 4 and "用户名或密码错误" in r.output
    assert not client_file.exists()


@pytest.mark.parametrize("server", ["ftp://127.0.0.1/", "127.0.0.1:8130", "http://"])
def test_login_refuses_a_server_that_is_not_http(client_file, server):
    """A server address that is not http(s)://HOST is bad input (exit 2), before any password is asked."""
    r = _anjian("login", "--server", server, "--password-stdin", input="x\n")
    assert r.exit_code == 2 and "https://" in r.output


def test_login_to_an_unreachable_server_exits_2(client_file):
    """Nothing listening at the address: exit 2 naming the server (a closed loopback port)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    r = _anjian("login", "--server", f"http://127.0.0.1:{port}", "--password-stdin", input="x\n")
    assert r.exit_code == 2 and f"127.0.0.1:{port}" in r.output and "无法连接" in r.output
    assert not client_file.exists()


def test_plain_http_to_another_machine_is_warned_about():
    """Plain HTTP beyond loopback is accepted with a warning; loopback and HTTPS are not warned about."""
    from anjian.workflow.cli.signin import _loopback, _server_url

    assert _loopback("127.0.0.1") and _loopback("localhost") and _loopback("::1") and not _loopback("10.0.0.1")
    runner = CliRunner()
    import click

    @click.command()
    def probe():
        for url in ("http://anjian.example.gov.cn", "http://127.0.0.1:8130", "https://anjian.example.gov.cn"):
            click.echo(_server_url(url))

    r = runner.invoke(probe)
    assert r.stderr.count("警告") == 1 and "http://anjian.example.gov.cn" in r.stderr


def test_client_file_is_private_even_under_a_lax_umask(tmp_path, monkeypatch):
    """The client file is 0600 whatever the umask (it holds a bearer token)."""
    from anjian.workflow.cli.signin import write_client_config

    path = tmp_path / "c" / "client.json"
    monkeypatch.setenv("ANJIAN_CLIENT_CONFIG", str(path))
    old = os.umask(0)
    try:
        write_client_config({"server": "http://127.0.0.1:1", "token": "anj_x"})
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_login_asks_the_passwords_hidden_and_the_new_one_twice(served, client_file):
    """Without --password-stdin the password is asked without echo, the new one twice, and none is shown."""
    from anjian.workflow.engine.authz import Actor
    from anjian.workflow.services.officials import os_login

    credentials.set_password(served.db, Actor(os_login(), "admin", "130800"), "inspector", FIRST,
                             credentials.dt.datetime.now(credentials.dt.UTC))
    r = _anjian("login", "--server", served.url, "--user", "inspector", input=f"{FIRST}\n{SECOND}\n{SECOND}\n")
    assert r.exit_code == 0, r.output
    assert FIRST not in r.output and SECOND not in r.output
    assert "inspector 的密码" in r.stderr and "再输入一次" in r.stderr
    assert client_file.exists()


def test_token_commands_run_on_the_service_and_user_passwd_does_not(served):
    """Through the service an official creates and lists their own tokens; `user passwd` is refused (exit 2)."""
    from anjian.workflow.services.officials import os_login

    headers = {"Authorization": f"Bearer {served.token('inspector')}"}
    made = httpx.post(f"{served.url}/api/v1/token/create", json={"name": "inspector", "label": "脚本"}, headers=headers)
    assert made.status_code == 200, made.text
    assert made.json()["output"].strip().startswith("anj_t")
    listed = httpx.get(f"{served.url}/api/v1/token/list", headers=headers).json()
    assert sorted(t["label"] or "" for t in listed) == ["", "脚本"]
    other = httpx.post(f"{served.url}/api/v1/token/create", json={"name": "chief"}, headers=headers)
    assert other.status_code == 403 and other.json()["error"]["exit"] == 4
    admin = {"Authorization": f"Bearer {served.token(os_login())}"}
    r = httpx.post(f"{served.url}/api/v1/user/passwd", json={"name": "inspector", "password_stdin": True},
                   headers=admin)
    assert r.status_code == 400 and "user passwd" in r.json()["error"]["message"]
    assert not credentials.must_change(served.db, "inspector")
