"""Exactly once across outboxes: a claim records who claimed it and where it writes; a pass that finds
another pass's unfinished sends where it cannot look holds them as ambiguous instead of sending them
again, sends what provably never began, and finishes what its own outbox shows; officials settle what
is held; outbox files are the owner's alone and killed writers' temporary files are removed."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from support import T0, at
from test_faults import NOW, killed_pass, notices_of, three_contacts  # noqa: F401 - a fixture
from test_migrations import migrate

from anjian.notifications.faults import POINTS
from anjian.notifications.outbox import FileOutbox
from anjian.notifications.outgoing import Outgoing
from anjian.workflow.reminders.run import run_pass
from anjian.workflow.settings import NotifySettings
from anjian.workflow.store.models import AuditRow, Notice


def files_by_notice(*outboxes: Path) -> Counter[str]:
    """How many finished files each notice id has, across the outboxes."""
    return Counter(p.name.removesuffix(".eml") for o in outboxes if o.exists() for p in o.glob("*.eml"))


def remind_into(cli, monkeypatch, outbox: Path) -> dict:
    monkeypatch.setenv("ANJIAN_OUTBOX", str(outbox))
    r = cli("remind", "--format", "json", now=NOW)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


@pytest.mark.slow  # a real pass killed in a child process
@pytest.mark.parametrize("fault", POINTS)
def test_a_pass_killed_writing_to_outbox_a_is_never_repeated_by_outbox_b(three_contacts, cli, db_url, tmp_path,  # noqa: F811
                                                                        monkeypatch, fault):
    """Killed at each point while writing to outbox A, the pass writing to outbox B sends what A never
    began and holds the rest as ambiguous; the next pass of outbox A finishes those from what its folder
    shows; every notice ends in exactly one file across both outboxes."""
    a, b = tmp_path / "outbox-a", tmp_path / "outbox-b"
    child = killed_pass(db_url, tmp_path, a, fault)
    assert child.returncode == -signal.SIGKILL, child.stderr
    left = notices_of(three_contacts)
    assert {n.target for n in left.values()} == {FileOutbox(a).target}
    assert all(n.owner.startswith(socket.gethostname() + ":") for n in left.values())

    by_b = remind_into(cli, monkeypatch, b)
    began = fault != "after_claim"
    assert len(by_b["ambiguous"]) == (3 if began else 0) and by_b["unsettled"] == len(by_b["ambiguous"])
    assert len(by_b["sent"]) == (0 if began else 3)
    assert max(files_by_notice(a, b).values(), default=1) == 1

    by_a = remind_into(cli, monkeypatch, a)
    assert by_a["unsettled"] == 0 and by_a["ambiguous"] == []
    notices = notices_of(three_contacts)
    assert {n.status for n in notices.values()} == {"sent"}
    assert files_by_notice(a, b) == Counter({nid: 1 for nid in notices})
    assert not list(a.glob(".*.tmp"))  # the killed writer's, removed


def _sent_by_a_pass(db, outbox: Path) -> list[str]:
    """Three notices sent by an in-process pass into `outbox`; their ids."""
    res = run_pass(db, at(NOW), NotifySettings(), outbox)
    assert len(res.sent) == 3
    return sorted(s.notice_id for s in res.sent)


def _left_as(db, ids: list[str], **values) -> None:
    with db.write() as s:
        s.execute(update(Notice).where(Notice.id.in_(ids)).values(**values))


def test_what_a_live_pass_on_another_machine_is_sending_is_left_to_it_until_its_lease_ends(three_contacts, tmp_path):  # noqa: F811
    """Notices another machine's pass is sending are not touched while its lease runs; after it they are
    held as ambiguous (that machine's outbox cannot be seen from here) and not written here."""
    ids = _sent_by_a_pass(three_contacts, tmp_path / "a")
    elsewhere = "file://other-host/srv/outbox"
    _left_as(three_contacts, ids, status="sending", owner="other-host:4242", target=elsewhere,
             created_at="2014-12-31T00:29:00.000000Z", sent_at=None)
    here = tmp_path / "b"
    fresh = run_pass(three_contacts, at(NOW), NotifySettings(), here)
    assert (fresh.sent, fresh.ambiguous) == ([], [])
    late = run_pass(three_contacts, at("2014-12-31T09:00"), NotifySettings(), here)
    assert sorted(s.notice_id for s in late.ambiguous) == ids and late.unsettled == 3 and late.sent == []
    assert files_by_notice(here) == Counter()
    notices = notices_of(three_contacts)
    assert {(n.status, n.owner, n.target) for n in notices.values()} == {("ambiguous", "other-host:4242", elsewhere)}


def test_claims_that_never_began_are_sent_by_any_outbox_and_older_claims_count_as_begun(three_contacts, tmp_path):  # noqa: F811
    """A notice still `claimed` by a gone pass was never handed to a writer: another outbox sends it. One
    claimed before schema 0006 (no target) may have been: held, unless this outbox has its file."""
    ids = _sent_by_a_pass(three_contacts, tmp_path / "a")
    _left_as(three_contacts, ids[:1], status="claimed", owner="other-host:1", created_at="2014-12-30T00:00:00.000000Z")
    _left_as(three_contacts, ids[1:], status="claimed", owner="other-host:1", target=None,
             created_at="2014-12-30T00:00:00.000000Z")
    here = tmp_path / "b"
    here.mkdir()
    (here / f"{ids[2]}.eml").write_bytes((tmp_path / "a" / f"{ids[2]}.eml").read_bytes())
    res = run_pass(three_contacts, at(NOW), NotifySettings(), here)
    assert sorted(s.notice_id for s in res.sent) == [ids[0], ids[2]]
    assert [s.notice_id for s in res.ambiguous] == [ids[1]]
    assert files_by_notice(here) == Counter({ids[0]: 1, ids[2]: 1})


def test_held_notices_are_listed_explained_and_settled_by_the_city_office(three_contacts, cli, tmp_path, monkeypatch):  # noqa: F811
    """`notices --status ambiguous` lists held notices with who left them and where, in Chinese;
    `notices settle` marks them sent, resends them (flagged) or decides from the other outbox's folder,
    in one audit row; a township chief may not, and a notice not held is refused with nothing changed."""
    a = tmp_path / "a"
    ids = _sent_by_a_pass(three_contacts, a)
    _left_as(three_contacts, ids, status="ambiguous", owner="m1:77", target="file://m1/srv/outbox", sent_at=None)
    listed = cli("notices", "--status", "ambiguous")
    assert listed.exit_code == 0 and listed.output.count("待核实") == 3 and "m1:77 向 file://m1/srv/outbox" in listed.output
    assert "未重发" in listed.output and f"anjian notices settle {ids[0]} --sent" in listed.output

    refused = cli("notices", "settle", ids[0], "--sent", user="chief_yuerya")
    assert refused.exit_code == 4
    bad = cli("notices", "settle", ids[0], "nonesuch", "--sent")
    assert bad.exit_code == 2 and "nonesuch" in bad.output
    assert cli("notices", "settle", ids[0]).exit_code == 2  # no decision given
    assert {n.status for n in notices_of(three_contacts).values()} == {"ambiguous"}

    assert cli("notices", "settle", ids[0], "--sent").exit_code == 0
    (a / f"{ids[2]}.eml").unlink()  # the other outbox has ids[1] only
    r = cli("notices", "settle", "--all", "--outbox", str(a))
    assert r.exit_code == 0 and "1 条记为已发送，1 条将由下一次发送过程重发" in r.output
    notices = notices_of(three_contacts)
    assert [notices[i].status for i in ids] == ["sent", "sent", "retry"]
    with three_contacts.read() as s:
        rows = s.scalars(select(AuditRow).where(AuditRow.action == "notice_settle").order_by(AuditRow.seq)).all()
    assert [{k: v for k, v in json.loads(r.detail).items() if k != "by"} for r in rows] == [{"sent": [ids[0]], "resend": []},
                                                     {"sent": [ids[1]], "resend": [ids[2]], "outbox": str(a)}]
    again = remind_into(cli, monkeypatch, tmp_path / "b")
    assert [s["notice_id"] for s in again["sent"]] == [ids[2]]
    table = cli("notices")
    assert table.output.count("可能重复发送") == 1
    assert cli("audit", "verify").exit_code == 0


def _message(nid: str) -> Outgoing:
    return Outgoing(nid, "li@kc.gov.cn", "李科长", "提醒", "正文", None, "正文", "anjian <anjian@localhost>", T0)


def test_outbox_files_are_the_owners_alone(tmp_path):
    """A new outbox folder is 0700 and each message in it 0600, whatever the umask lets others have."""
    old = os.umask(0o002)
    try:
        FileOutbox(tmp_path / "new" / "outbox").send(_message("20141231-00aa"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new" / "outbox").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "new" / "outbox" / "20141231-00aa.eml").stat().st_mode) == 0o600


def test_sweep_removes_temporaries_of_gone_writers_only(tmp_path):
    """The next pass removes a temporary file whose writer on this machine is gone (or ended, unreaped), and any old one; a live
    writer's and another machine's recent one are kept, as are finished messages."""
    outbox = FileOutbox(tmp_path)
    outbox.send(_message("20141231-00aa"))
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # ended, not yet reaped: as a killed pass's writer is
    os.waitid(os.P_PID, zombie.pid, os.WEXITED | os.WNOWAIT)
    host = socket.gethostname()
    names = {"dead": f".20141231-00bb.{host}-{gone.pid}-abcd1234.tmp", "live": f".20141231-00cc.{host}-{os.getpid()}-abcd1234.tmp",
             "zombie": f".20141231-00ff.{host}-{zombie.pid}-abcd1234.tmp",
             "remote": ".20141231-00dd.far-away-host-12-abcd1234.tmp", "old": ".20141231-00ee.far-away-host-13-abcd1234.tmp"}
    for name in names.values():
        (tmp_path / name).write_bytes(b"half a message")
    hour_ago = time.time() - 3600
    os.utime(tmp_path / names["old"], (hour_ago, hour_ago))
    assert sorted(outbox.sweep(15 * 60)) == sorted([names["dead"], names["zombie"], names["old"]])
    zombie.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["20141231-00aa.eml", names["live"], names["remote"]])


def test_0006_adds_an_unknown_target_and_goes_back_with_begun_sends_flagged(fresh_db):
    """At 0006 a notice claimed before has no target (unknown); back at 0005 a notice that was sending or
    held is `claimed` and flagged, as the passes of 0005 marked a send that had begun."""
    from test_migrations import NOTICE

    migrate(fresh_db, "0005")
    row = {k: v for k, v in NOTICE.items() if k not in ("body", "html")}
    insert = "INSERT INTO notices (" + ", ".join(row) + ") VALUES (" + ", ".join(f":{k}" for k in row) + ")"
    with fresh_db.engine.begin() as conn:
        conn.execute(text(insert), row)
    migrate(fresh_db, "0006")
    with fresh_db.engine.begin() as conn:
        assert conn.execute(text("SELECT status, target FROM notices")).all() == [("sent", None)]
        conn.execute(text("UPDATE notices SET status = 'sending', ambiguous = 0, target = 'smtp:mail:25'"))
    migrate(fresh_db, "0005", down=True)
    with fresh_db.engine.begin() as conn:
        assert conn.execute(text("SELECT status, ambiguous FROM notices")).all() == [("claimed", 1)]
    migrate(fresh_db, "head")


@pytest.mark.slow  # passes killed and finished, ten times over
def test_passes_killed_on_two_outboxes_at_random_moments_never_send_a_notice_twice(db_url, tmp_path):
    """Ten seeded random kills of passes writing to one outbox folder, each finished by a pass writing to
    the other and then by its own: no notice is written twice across the two folders, none is lost,
    and nothing is left held once the killed outbox's own pass has looked in its folder."""
    from benchmarks.outboxes import cross_sweep, report

    result = cross_sweep(db_url, tmp_path / "home", kills=10, seed=2014)
    print(report(result))
    summary = result["summary"]
    assert summary["kills"] == 10 and summary["killed"] >= 5 and summary["at_points"] >= 1
    assert (summary["duplicated"], summary["lost"], summary["held_after_own"], summary["broken"]) == (0, 0, 0, 0), result["rounds"]
    assert summary["audit_verify"] == "ok"


@pytest.mark.slow  # passes killed and finished, against two real SMTP servers
def test_passes_killed_on_two_smtp_servers_never_send_a_notice_twice(db_url, tmp_path):
    """Over two real SMTP servers (aiosmtpd), passes killed at seeded random moments and finished by a pass
    sending to the other server: no message reaches a recipient twice and none is lost; what a kill left
    begun stays held as ambiguous, for an official to settle."""
    from benchmarks.outboxes import cross_sweep

    result = cross_sweep(db_url, tmp_path / "home", kills=4, seed=2015, channel="smtp")
    summary = result["summary"]
    assert (summary["duplicated"], summary["lost"], summary["broken"]) == (0, 0, 0), result["rounds"]
    assert summary["held_after_own"] == summary["held"]
