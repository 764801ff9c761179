"""The CLI as a client of `anjian serve` (ANJIAN_SERVER + ANJIAN_TOKEN, or the file `anjian login` writes):
the same output and exit codes as embedded mode, the token's official as the actor, no --as or --db,
and files going up and coming back."""

from __future__ import annotations

import json

import httpx
from support import audit_count, snapshot

YUERYA = "宽城峪耳崖镇"


def test_reads_print_the_same_bytes_as_embedded(remote, cli):
    """`status` and `show` through the server print exactly what they print on the database itself."""
    for args in (("status",), ("show", YUERYA), ("units", "--county", "130827", "--format", "csv")):
        r, e = remote(*args), cli(*args)
        assert (r.exit_code, r.stdout, r.stderr) == (e.exit_code, e.stdout, e.stderr), args


def test_a_write_is_done_as_the_tokens_official(remote, cli):
    """A remote `advance` acts as the official of the token, whatever the OS account; history says so."""
    r = remote("advance", YUERYA, "start", official="chief_yuerya", now="2015-01-05T09:00")
    assert r.exit_code == 0, r.output
    rows = json.loads(cli("history", YUERYA, "--format", "json", now="2015-01-06T09:00").stdout)
    assert rows[-1]["actor"] == "chief_yuerya"


def test_as_and_db_are_refused_with_a_server(remote, served):
    """--as and --db make no sense with a server: exit 2, naming the server, nothing written."""
    served.token("tester")  # issuing the token is audited itself
    before = audit_count(served.db)
    r = remote("--as", "chief", "status")
    assert r.exit_code == 2 and "--as" in r.stderr and served.url in r.stderr
    r = remote("--db", "x.db", "status")
    assert r.exit_code == 2 and "--db" in r.stderr
    assert audit_count(served.db) == before


def test_a_write_with_now_is_refused_and_a_read_with_now_works(remote, served):
    """--now reads as of a time through the server; a write refuses it (exit 2; HTTP 400 for a program)."""
    r = remote("--now", "2014-12-20T09:00", "show", YUERYA)
    assert r.exit_code == 0
    r = remote("--now", "2015-01-05T09:00", "advance", YUERYA, "start", official="chief_yuerya")
    assert r.exit_code == 2 and "--now" in r.stderr
    answer = httpx.post(served.url + "/api/v1/advance", json={"unit": YUERYA, "trigger": "start",
                                                              "now": "2015-01-05T09:00"},
                        headers={"Authorization": "Bearer " + served.token("chief_yuerya")})
    assert answer.status_code == 400 and answer.json()["error"]["exit"] == 2


def test_a_chief_cannot_accept(remote, served):
    """A township chief's token cannot give the verdict: exit 4 from the client, HTTP 403 for a program."""
    r = remote("advance", YUERYA, "accept", "--note", "合格", official="chief_yuerya")
    assert r.exit_code == 4, r.output
    answer = httpx.post(served.url + "/api/v1/advance", json={"unit": YUERYA, "trigger": "accept", "note": "合格"},
                        headers={"Authorization": "Bearer " + served.token("chief_yuerya")})
    assert answer.status_code == 403 and answer.json()["error"]["exit"] == 4


def test_an_unreachable_server_and_a_bad_token_are_told(remote, monkeypatch):
    """A server that does not answer is exit 2 naming it; a token it does not know is exit 4 saying to sign in."""
    from click.testing import CliRunner

    from anjian.workflow.cli import cli as group

    r = CliRunner().invoke(group, ["status"], env={"ANJIAN_SERVER": "http://127.0.0.1:9", "ANJIAN_TOKEN": "anj_x_y"})
    assert r.exit_code == 2 and "http://127.0.0.1:9" in r.stderr and "anjian login" in r.stderr
    r = CliRunner().invoke(group, ["status"], env={"ANJIAN_SERVER": remote.served.url, "ANJIAN_TOKEN": "anj_x_y"})
    assert r.exit_code == 4 and "anjian login" in r.stderr


def test_the_client_file_names_the_server(remote, tmp_path, monkeypatch):
    """Without ANJIAN_SERVER, the file `anjian login` writes sends commands to its server."""
    from click.testing import CliRunner

    from anjian.workflow.cli import cli as group

    config = tmp_path / "client.json"
    config.write_text(json.dumps({"server": remote.served.url, "token": remote.served.token("tester"),
                                  "user": "tester"}), encoding="utf-8")
    monkeypatch.setenv("ANJIAN_CLIENT_CONFIG", str(config))
    monkeypatch.setenv("ANJIAN_DB", "sqlite:///" + str(tmp_path / "nothing-here.db"))
    r = CliRunner().invoke(group, ["show", YUERYA])
    assert r.exit_code == 0 and "峪耳崖镇" in r.stdout


def test_an_output_file_comes_back_to_the_clients_path(remote, cli, tmp_path):
    """`status --out FILE` written by the service lands at the client's path, byte for byte as embedded."""
    r = remote("status", "--format", "csv", "--out", "progress.csv")
    assert r.exit_code == 0, r.output
    e = cli("status", "--format", "csv", "--out", str(tmp_path / "embedded.csv"))
    assert e.exit_code == 0
    assert (remote.folder / "progress.csv").read_bytes() == (tmp_path / "embedded.csv").read_bytes()
    assert "progress.csv" in r.stderr and "/requests/" not in r.stderr


def test_evidence_is_uploaded_and_recorded_under_the_clients_path(remote, cli, served):
    """`record --evidence FILE`: the file is uploaded, kept, and the audit log names the client's path."""
    proof = remote.folder / "车辆登记证.pdf"
    proof.write_bytes(b"%PDF-1.4 vehicle")
    r = remote("record", YUERYA, "six.vehicle", "是", "--evidence", "车辆登记证.pdf", official="tester")
    assert r.exit_code == 0, r.output
    rows = json.loads(cli("history", YUERYA, "--format", "json").stdout)
    assert str(proof.resolve()) in json.dumps(rows, ensure_ascii=False)
    assert "/uploads/" not in json.dumps(rows) and "/requests/" not in json.dumps(rows)


def test_a_sheets_evidence_goes_up_with_it(remote, cli):
    """`record --file SHEET`: the evidence files the sheet names (from its folder) are uploaded and recorded."""
    folder = remote.folder / "sheets"
    folder.mkdir()
    (folder / "证.pdf").write_bytes(b"%PDF-1.4 staff")
    (folder / "清单.csv").write_text(f"unit,item,value,evidence\n{YUERYA},staff.full_time,4,证.pdf\n",
                                      encoding="utf-8")
    r = remote("record", "--file", "sheets/清单.csv")
    assert r.exit_code == 0, r.output
    rows = json.loads(cli("history", YUERYA, "--format", "json").stdout)
    assert str((folder / "证.pdf").resolve()) in json.dumps(rows, ensure_ascii=False)


def test_the_service_reads_no_path_of_its_own(served):
    """A program naming a server path where a file is read is refused (exit 2), nothing read or written."""
    served.token("tester")  # issuing the token is audited itself
    before = audit_count(served.db)
    answer = httpx.post(served.url + "/api/v1/designate", json={"file": "/etc/passwd"},
                        headers={"Authorization": "Bearer " + served.token("tester")})
    assert answer.status_code == 400 and answer.json()["error"]["exit"] == 2
    answer = httpx.post(served.url + "/api/v1/record", json={"unit": YUERYA, "value": ["six.vehicle", "是"],
                                                             "evidence": ["/etc/hostname"]},
                        headers={"Authorization": "Bearer " + served.token("tester")})
    assert answer.status_code == 400 and answer.json()["error"]["exit"] == 2
    assert audit_count(served.db) == before


def test_a_server_side_path_is_refused_from_a_client(remote):
    """`audit checkpoint --key` names the server's own key: refused from a client with exit 2."""
    r = remote("audit", "checkpoint", "--key", "my.key")
    assert r.exit_code == 2 and "--key" in r.stderr


def test_an_upload_over_the_limit_writes_nothing(chengde, db_url, tmp_path, monkeypatch):
    """An evidence file over max_upload_bytes is refused (HTTP 413, exit 2), the partial upload removed,
    the database unchanged."""
    from click.testing import CliRunner
    from support_server import serving

    from anjian.workflow.cli import cli as group
    from anjian.workflow.settings import resolve

    home = tmp_path / "home"
    settings = resolve(db_url, env={"ANJIAN_HOME": str(home)})
    big = tmp_path / "big.pdf"
    big.write_bytes(b"x" * (3 << 20))  # megabytes the server refuses before reading them
    monkeypatch.chdir(tmp_path)
    with serving(chengde, settings, max_upload_bytes=1000) as s:
        s.token("tester")  # issuing the token is audited itself
        before = snapshot(chengde)
        env = {"ANJIAN_SERVER": s.url, "ANJIAN_TOKEN": s.token("tester"), "ANJIAN_DB": None}
        r = CliRunner().invoke(group, ["record", YUERYA, "six.vehicle", "是", "--evidence", str(big)], env=env)
        assert r.exit_code == 2 and "1000" in r.stderr, r.output
        answer = httpx.post(s.url + "/api/v1/uploads", content=iter([b"y" * 600, b"y" * 600]),
                            headers={"Authorization": "Bearer " + s.token("tester")})
        assert answer.status_code == 413 and answer.json()["error"]["exit"] == 2
        after = snapshot(chengde)
        after.pop("tokens"), before.pop("tokens")  # the token's use is noted (last used); nothing else changes
        assert after == before
        assert [p for p in (home / "uploads").iterdir() if not p.name.endswith(".json")] == []


def test_an_upload_whose_digest_differs_is_refused(served):
    """The client's SHA-256 is checked by the server: bytes that differ are refused (HTTP 400) and not kept."""
    answer = httpx.post(served.url + "/api/v1/uploads", content=b"hello",
                        headers={"Authorization": "Bearer " + served.token("tester"), "X-Anjian-SHA256": "0" * 64})
    assert answer.status_code == 400 and answer.json()["error"]["exit"] == 2
    answer = httpx.post(served.url + "/api/v1/uploads", content=b"hello",
                        headers={"Authorization": "Bearer " + served.token("tester"), "X-Anjian-Filename": "a%20b.txt"})
    assert answer.status_code == 201 and answer.json()["size"] == 5 and answer.json()["name"] == "a b.txt"


def test_every_file_parameter_is_in_the_table():
    """Each parameter that names a file (a click Path, or a FILE metavar) is an input, an output or a
    server-side path in cli/remote_files, and the table names no parameter that does not exist."""
    import click

    from anjian.workflow.cli.remote_files import INPUTS, OUTPUTS, SERVER_ONLY, api_name
    from anjian.workflow.server.openapi import commands

    every, files = set(), set()
    for path, cmd in commands():
        for p in cmd.params:
            key = (*path, api_name(p))
            every.add(key)
            if isinstance(p.type, click.Path) or "FILE" in (p.metavar or "") or p.name in ("outbox", "key"):
                files.add(key)
    table = INPUTS | OUTPUTS | SERVER_ONLY
    assert files - table == set()
    assert table - every == set()


def test_the_clients_language_is_the_servers_answer(remote, cli, monkeypatch):
    """An English client gets the command's English output from the server, as embedded mode prints it."""
    monkeypatch.setenv("ANJIAN_LANG", "en")
    r, e = remote("show", YUERYA), cli("show", YUERYA)
    assert r.exit_code == e.exit_code == 0
    assert r.stdout == e.stdout and "状态：" not in r.stdout
    r = remote("--as", "chief", "status")
    assert "--as is not used with a server" in r.stderr


def test_a_missing_file_is_told_as_embedded_tells_it(remote, cli):
    """Evidence or a sheet the client does not have: the same message and exit code as embedded mode."""
    for args in (("record", YUERYA, "six.vehicle", "是", "--evidence", "没有.pdf"),
                 ("designate", "--file", "没有.csv"), ("contact", "import", "没有.csv")):
        r, e = remote(*args), cli(*args)
        assert (r.exit_code, r.stderr) == (e.exit_code, e.stderr), args


def test_an_out_file_that_cannot_be_written_is_told_as_embedded(remote, cli):
    """`--out` into a folder the client does not have: exit 2 with embedded mode's message."""
    args = ("status", "--format", "csv", "--out", "no-such-folder/p.csv")
    r, e = remote(*args), cli(*args)
    assert (r.exit_code, r.stderr) == (e.exit_code, e.stderr) and r.exit_code == 2
