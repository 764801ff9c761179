"""Uploads and downloads of the service: private to the official, kept under the data folder (0700),
gone after an hour; a server path is never read in their place."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys

import httpx
from support import clock_at

YUERYA = "宽城峪耳崖镇"


def _auth(served, official: str = "tester") -> dict:
    return {"Authorization": "Bearer " + served.token(official)}


def test_an_upload_is_private_and_lives_under_the_data_folder(served):
    """An upload is kept in the data folder's uploads/ (mode 0700), and another official cannot use it."""
    with clock_at("2014-12-15T09:00"):
        body = b"unit,cohort\n130827103,key\n"
        answer = httpx.post(served.url + "/api/v1/uploads", content=body, headers={
            **_auth(served), "X-Anjian-SHA256": hashlib.sha256(body).hexdigest(), "X-Anjian-Filename": "k.csv"})
        assert answer.status_code == 201
        ident = answer.json()["id"]
        folder = served.state.settings.data_dir / "uploads"
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert (folder / ident).read_bytes() == body
        other = httpx.post(served.url + "/api/v1/designate", json={"file": "upload:" + ident},
                           headers=_auth(served, "city_office"))
        assert other.status_code == 400 and ident in other.json()["error"]["message"]
        mine = httpx.post(served.url + "/api/v1/designate", json={"file": "upload:" + ident}, headers=_auth(served))
        assert mine.status_code == 200, mine.text


def test_an_upload_expires_after_an_hour(served):
    """An upload named more than an hour after it was sent is refused (exit 2): upload it again."""
    body = b"unit,cohort\n130827103,key\n"
    with clock_at("2014-12-15T09:00"):
        ident = httpx.post(served.url + "/api/v1/uploads", content=body, headers=_auth(served)).json()["id"]
    with clock_at("2014-12-15T10:01"):
        answer = httpx.post(served.url + "/api/v1/designate", json={"file": "upload:" + ident}, headers=_auth(served))
    assert answer.status_code == 400 and answer.json()["error"]["exit"] == 2


def test_a_download_is_for_its_official_only_and_expires(served):
    """A file a command wrote downloads for the official who ran it, not another, and not after an hour."""
    cli_media = {"Accept": "application/vnd.anjian.cli+json"}
    with clock_at("2014-12-15T09:00"):
        answer = httpx.post(served.url + "/api/v1/status", json={"format": "csv", "out": "p.csv"},
                            headers={**_auth(served), **cli_media})
        assert answer.status_code == 200, answer.text
        [made] = answer.json()["files"]
        assert made["param"] == "out" and made["name"] == "p.csv"
        mine = httpx.get(served.url + made["download"], headers=_auth(served))
        assert mine.status_code == 200 and hashlib.sha256(mine.content).hexdigest() == made["sha256"]
        other = httpx.get(served.url + made["download"], headers=_auth(served, "city_office"))
        assert other.status_code == 404
    with clock_at("2014-12-15T10:01"):
        assert httpx.get(served.url + made["download"], headers=_auth(served)).status_code == 404


def test_a_content_length_over_the_limit_is_refused_before_reading(served):
    """A declared size over max_upload_bytes is refused at once (HTTP 413, exit 2)."""
    import json
    import socket
    from urllib.parse import urlsplit

    most = served.state.config.max_upload_bytes
    where = urlsplit(served.url)
    head = (f"POST /api/v1/uploads HTTP/1.1\r\nHost: {where.netloc}\r\nAuthorization: Bearer {served.token('tester')}"
            f"\r\nContent-Length: {most + 1}\r\nConnection: close\r\n\r\n")
    with socket.create_connection((where.hostname, where.port), timeout=30) as sock:
        sock.sendall(head.encode())  # and no body: the answer comes before it is read
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _sep, rest = answer.partition(b"\r\n")
    assert b" 413 " in status_line
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]["exit"] == 2


def test_help_imports_neither_httpx_nor_sqlalchemy():
    """`anjian --help` stays light: the client's HTTP library is imported only when a command is sent."""
    code = ("import sys; from anjian.workflow.cli import cli\n"
            "try:\n    cli.main(['--help'], prog_name='anjian')\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('httpx', 'sqlalchemy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "ANJIAN_SERVER": "http://127.0.0.1:9"}).stdout
    assert out.strip().endswith("[]")


def test_local_commands_stay_local_with_a_server(tmp_path):
    """With a server configured, `init` still makes a database here (it is one of the local commands)."""
    from click.testing import CliRunner

    from anjian.workflow.cli import cli as group

    db = tmp_path / "local.db"
    r = CliRunner().invoke(group, ["--db", str(db), "init"], env={
        "ANJIAN_SERVER": "http://127.0.0.1:9", "ANJIAN_TOKEN": "anj_x_y", "ANJIAN_HOME": str(tmp_path / "h")})
    assert r.exit_code == 0, r.output
    assert db.exists()
