"""Hard kills: `anjian remind` runs in a child process that ANJIAN_FAULT kills with SIGKILL at a named point;
the next ordinary pass at the same moment finishes the work, with every notice delivered exactly once."""

from __future__ import annotations

import email
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select
from support import CHILD_AT, T0

from anjian.notifications.faults import POINTS
from anjian.notifications.netguard import Policy
from anjian.workflow.services import contacts
from anjian.workflow.store.models import Notice, NoticeItem

NOW = "2014-12-31T08:30"  # plan_submission (2014-12-30) is one day overdue for every county
RECIPIENTS = {"li@kc.gov.cn", "office@cd.gov.cn", "zhao@fn.gov.cn"}


@pytest.fixture
def three_contacts(chengde):
    """Chengde with e-mail contacts at 宽城县, 丰宁县 and the city office: three notices fall due at NOW."""
    contacts.add(chengde, "宽城县", "李科长", "li@kc.gov.cn", None, "admin", T0)
    contacts.add(chengde, "丰宁县", "赵科长", "zhao@fn.gov.cn", None, "admin", T0)
    contacts.add(chengde, "承德市", "市安委办", "office@cd.gov.cn", None, "admin", T0)
    return chengde


@pytest.fixture
def outbox(tmp_path, monkeypatch):
    """The outbox folder, given to this process's CLI (and to the child) through ANJIAN_OUTBOX."""
    folder = tmp_path / "outbox"
    monkeypatch.setenv("ANJIAN_OUTBOX", str(folder))
    return folder


def killed_pass(db_url: str, tmp_path, outbox, fault: str) -> subprocess.CompletedProcess:
    """`anjian remind` at NOW (the child's clock) in a child process with ANJIAN_FAULT set."""
    env = {**os.environ, "ANJIAN_DB": db_url, "ANJIAN_HOME": str(tmp_path / "home"), "ANJIAN_OUTBOX": str(outbox),
           "ANJIAN_USER": "daemon", "ANJIAN_FAULT": fault}
    env.pop("ANJIAN_NOW", None)
    return subprocess.run([sys.executable, "-c", CHILD_AT, NOW, "remind"], env=env, capture_output=True, text=True)


def notices_of(db) -> dict[str, Notice]:
    with db.read() as s:
        return {n.id: n for n in s.scalars(select(Notice))}


def messages(outbox) -> list[str]:
    return sorted(p.name for p in outbox.iterdir() if p.name.endswith(".eml")) if outbox.exists() else []


def temporaries(outbox) -> list[str]:
    return sorted(p.name for p in outbox.iterdir() if not p.name.endswith(".eml")) if outbox.exists() else []


def assert_each_notice_delivered_once(db, outbox) -> None:
    notices = notices_of(db)
    assert {n.recipient for n in notices.values()} == RECIPIENTS
    assert {n.status for n in notices.values()} == {"sent"}
    assert messages(outbox) == sorted(f"{nid}.eml" for nid in notices)
    for nid, n in notices.items():
        msg = email.message_from_bytes((outbox / f"{nid}.eml").read_bytes(), policy=policy.default)
        assert msg["X-Anjian-Notice"] == nid
        assert msg["To"].addresses[0].addr_spec == n.recipient
        assert "县区推进方案报市安委会办公室" in msg.get_body(("plain",)).get_content()
    assert temporaries(outbox) == []  # a killed writer's temporary file was removed by the next pass
    with db.read() as s:
        items = s.execute(select(NoticeItem.recipient, NoticeItem.unit_code, NoticeItem.milestone)).all()
    assert len(items) == len(set(items))


def assert_store_sound(cli, db_url: str) -> None:
    r = cli("audit", "verify")
    assert r.exit_code == 0, r.output
    if db_url.startswith("sqlite:///"):
        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def what_the_kill_left(db, outbox, fault: str) -> None:
    """The kill happened where its name says: nothing sent yet, a partial or full temp file, or one file unmarked;
    the notices are `claimed` before they were handed to the outbox and `sending` after."""
    notices = notices_of(db)
    assert len(notices) == 3
    assert {n.status for n in notices.values()} == {"claimed" if fault == "after_claim" else "sending"}
    if fault in ("after_claim", "after_begin"):
        assert messages(outbox) == [] and temporaries(outbox) == []
    elif fault in ("during_write", "before_rename"):
        assert messages(outbox) == []
        assert len(temporaries(outbox)) == 1
    else:  # after_send: the file is complete, the notice not yet marked
        assert len(messages(outbox)) == 1


@pytest.mark.parametrize("fault", POINTS)
def test_a_pass_killed_at_a_fault_point_is_finished_by_the_next(three_contacts, cli, db_url, tmp_path, outbox, fault):
    """Killed with SIGKILL at the point, the next pass at the same time delivers every notice exactly once."""
    child = killed_pass(db_url, tmp_path, outbox, fault)
    assert child.returncode == -signal.SIGKILL, child.stderr
    what_the_kill_left(three_contacts, outbox, fault)

    r = cli("remind", "--format", "json", now=NOW)
    assert r.exit_code == 0, r.output
    finished = json.loads(r.output)
    assert {s["recipient"] for s in finished["sent"]} == RECIPIENTS
    assert_each_notice_delivered_once(three_contacts, outbox)
    assert all(not n.ambiguous and n.attempts == 1 for n in notices_of(three_contacts).values())

    again = cli("remind", "--format", "json", now=NOW)
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["sent"] == []
    assert_each_notice_delivered_once(three_contacts, outbox)
    assert_store_sound(cli, db_url)


class Robot(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.server.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        reply = b'{"errcode":0,"errmsg":"ok"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


def test_a_webhook_pass_killed_after_sending_is_held_as_ambiguous(chengde, cli, db_url, tmp_path, outbox, monkeypatch):
    """A robot post whose pass died before marking it cannot be known sent: it is not sent again but held as
    ambiguous, listed by `notices --status ambiguous` and counted by `remind`."""
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Robot)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    allowed = f"127.0.0.1:{server.server_address[1]}"  # the loopback robot: the administrator's explicit choice
    monkeypatch.setenv("ANJIAN_WEBHOOK_HOSTS", allowed)
    try:
        contacts.add(chengde, "宽城县", "李科长", None, f"http://{allowed}/hook", "admin", T0, hooks=Policy.of([allowed]))
        child = killed_pass(db_url, tmp_path, outbox, "after_send")
        assert child.returncode == -signal.SIGKILL, child.stderr
        assert len(server.received) == 1
        r = cli("remind", now=NOW)
        assert r.exit_code == 0, r.output
        assert "1 条通知待核实" in r.output
        again = cli("remind", "--format", "json", now=NOW)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert len(server.received) == 1
    assert json.loads(again.output)["unsettled"] == 1 and json.loads(again.output)["sent"] == []
    (n,) = notices_of(chengde).values()
    assert n.status == "ambiguous" and n.target == "webhook"
    listed = cli("notices", "--status", "ambiguous", "--format", "json")
    assert listed.exit_code == 0, listed.output
    assert [x["id"] for x in json.loads(listed.output)] == [n.id]
    table = cli("notices", "--status", "ambiguous")
    assert table.exit_code == 0 and "待核实" in table.output and "未重发" in table.output
    assert_store_sound(cli, db_url)
