"""Delivery channels against real local peers: an aiosmtpd server, an HTTP group robot on 127.0.0.1,
and real files in the outbox; what each peer answers decides whether a notice is sent, retried or failed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import email.message
import email.utils
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections import Counter
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from support import T0

from anjian.notifications import outbox as channels  # the file outbox's module, whose syncs are patched below
from anjian.notifications.mail import message_bytes
from anjian.notifications.netguard import Policy
from anjian.notifications.outbox import FileOutbox
from anjian.notifications.outgoing import Outgoing, Transient
from anjian.workflow.clock import SHANGHAI
from anjian.workflow.reminders.delivery import BACKOFF_MINUTES, MAX_ATTEMPTS
from anjian.workflow.reminders.run import run_pass
from anjian.workflow.services import contacts
from anjian.workflow.settings import NotifySettings
from anjian.workflow.store.models import Contact, Notice

# plan_submission is due 2014-12-30; at 08:30 the next morning every county is one day late.
OVERDUE_NOW = dt.datetime(2014, 12, 31, 8, 30, tzinfo=SHANGHAI)
MILESTONE = "县区推进方案报市安委会办公室"
COUNTY_MAIL = "li@kc.gov.cn"
CITY_MAIL = "office@cd.gov.cn"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smtp_settings(port: int, **extra) -> NotifySettings:
    return NotifySettings(channel="smtp", smtp_host="127.0.0.1", smtp_port=port, **extra)


def add_contact(db, unit: str, name: str, email_address: str | None = None, webhook: str | None = None,
                hooks: Policy | None = None) -> None:
    contacts.add(db, unit, name, email_address, webhook, "admin", T0, hooks=hooks)


def stored_notices(db) -> dict[str, Notice]:
    with db.read() as s:
        return {n.id: n for n in s.scalars(select(Notice))}


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


class Collector:
    """An aiosmtpd handler that keeps every accepted envelope and answers RCPT as told per address."""

    def __init__(self, rcpt_replies: dict[str, str] | None = None, quit_reply: str = "221 Bye"):
        self.envelopes = []
        self.rcpt_replies = rcpt_replies or {}
        self.quit_reply = quit_reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    async def handle_QUIT(self, server, session, envelope):
        return self.quit_reply


@pytest.fixture
def smtp_server():
    """A factory: start a real SMTP server on 127.0.0.1 (a free port, or the one given); stopped after the test."""
    started = []

    def start(port: int | None = None, rcpt_replies: dict[str, str] | None = None, quit_reply: str = "221 Bye",
              **smtp_params) -> Controller:
        controller = Controller(Collector(rcpt_replies, quit_reply), hostname="127.0.0.1", port=port or free_port(),
                                **smtp_params)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def county_and_city(chengde):
    """The Chengde database with an e-mail contact at 宽城县 and one at the city's safety office."""
    add_contact(chengde, "宽城县", "李科长", COUNTY_MAIL)
    add_contact(chengde, "承德市", "市安委办", CITY_MAIL)
    return chengde


def test_smtp_delivers_one_chinese_overdue_notice_per_recipient(county_and_city, smtp_server, tmp_path):
    """Over real SMTP each recipient gets one message: its envelope and To name it, the subject and body are Chinese."""
    server = smtp_server()
    result = run_pass(county_and_city, OVERDUE_NOW, smtp_settings(server.port), tmp_path / "outbox")
    envelopes = server.handler.envelopes
    assert Counter(r for e in envelopes for r in e.rcpt_tos) == Counter({COUNTY_MAIL: 1, CITY_MAIL: 1})
    assert all(len(e.rcpt_tos) == 1 for e in envelopes)
    by_rcpt = {e.rcpt_tos[0]: parse(e.content) for e in envelopes}
    county = by_rcpt[COUNTY_MAIL]
    assert county["To"].addresses[0].addr_spec == COUNTY_MAIL
    assert county["To"].addresses[0].display_name == "李科长"
    assert county["Subject"] == "【逾期通知】承德市宽城满族自治县：乡镇安全监管规范化建设有 1 项节点已逾期"
    assert "承德市安全生产委员会办公室" in county["From"]
    text = county.get_body(("plain",)).get_content()
    assert f"承德市宽城满族自治县：{MILESTONE}，期限 2014年12月30日，已逾期 1 天。" in text
    assert county.get_body(("html",)).get_content().count(MILESTONE) == 1
    city = by_rcpt[CITY_MAIL]
    assert city["Subject"].startswith("【逾期通知】承德市：")
    assert city.get_body(("plain",)).get_content().count(f"{MILESTONE}，期限 2014年12月30日，已逾期 1 天") == 12
    assert {s.recipient for s in result.sent} == {COUNTY_MAIL, CITY_MAIL}
    assert {s.channel for s in result.sent} == {"smtp"}
    ids = {parse(e.content)["X-Anjian-Notice"] for e in envelopes}
    assert ids == set(stored_notices(county_and_city))
    assert {n.status for n in stored_notices(county_and_city).values()} == {"sent"}
    assert not (tmp_path / "outbox").exists()


def test_second_smtp_pass_at_the_same_time_sends_nothing(county_and_city, smtp_server, tmp_path):
    """A second pass at the same moment finds every notice already sent and sends no message."""
    server = smtp_server()
    settings = smtp_settings(server.port)
    run_pass(county_and_city, OVERDUE_NOW, settings, tmp_path / "outbox")
    again = run_pass(county_and_city, OVERDUE_NOW, settings, tmp_path / "outbox")
    assert again.sent == [] and again.deferred == [] and again.failed == []
    assert len(server.handler.envelopes) == 2
    assert len(stored_notices(county_and_city)) == 2


def test_smtp_server_down_is_retried_after_the_backoff_and_delivered_once(county_and_city, smtp_server, tmp_path):
    """With nothing listening the notices wait as `retry`; once the server is up, a pass after the backoff sends each once."""
    port = free_port()
    settings = smtp_settings(port)
    first = run_pass(county_and_city, OVERDUE_NOW, settings, tmp_path / "outbox")
    assert first.sent == [] and len(first.deferred) == 2
    retry_at = (OVERDUE_NOW + dt.timedelta(minutes=BACKOFF_MINUTES[0])).astimezone(dt.UTC)
    for n in stored_notices(county_and_city).values():
        assert (n.status, n.attempts) == ("retry", 1)
        assert n.next_attempt_at.startswith(retry_at.strftime("%Y-%m-%dT%H:%M:%S"))
        assert "127.0.0.1" in n.last_error
    server = smtp_server(port)
    early = run_pass(county_and_city, OVERDUE_NOW + dt.timedelta(minutes=1), settings, tmp_path / "outbox")
    assert early.sent == [] and server.handler.envelopes == []
    later = OVERDUE_NOW + dt.timedelta(minutes=BACKOFF_MINUTES[0] + 1)
    done = run_pass(county_and_city, later, settings, tmp_path / "outbox")
    assert {s.recipient for s in done.sent} == {COUNTY_MAIL, CITY_MAIL}
    run_pass(county_and_city, later + dt.timedelta(hours=1), settings, tmp_path / "outbox")
    assert sorted(r for e in server.handler.envelopes for r in e.rcpt_tos) == [COUNTY_MAIL, CITY_MAIL]
    assert {(n.status, n.attempts) for n in stored_notices(county_and_city).values()} == {("sent", 2)}


def test_smtp_server_down_at_every_attempt_ends_failed(chengde, tmp_path):
    """A server down through the whole backoff ladder leaves the notice `failed` after the last attempt."""
    add_contact(chengde, "宽城县", "李科长", COUNTY_MAIL)
    settings = smtp_settings(free_port())
    now = OVERDUE_NOW
    for attempt in range(1, MAX_ATTEMPTS + 1):
        run_pass(chengde, now, settings, tmp_path / "outbox")
        (n,) = stored_notices(chengde).values()
        assert n.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert n.status == "retry"
            now += dt.timedelta(minutes=BACKOFF_MINUTES[attempt - 1])
    assert (n.status, n.next_attempt_at) == ("failed", None)


def test_smtp_recipient_refused_with_550_is_failed_and_listed(chengde, smtp_server, cli, monkeypatch):
    """A 550 refusal at RCPT marks that notice failed (the others are sent), and `notices --status failed` shows it."""
    refused = "nobody@kc.gov.cn"
    add_contact(chengde, "宽城县", "李科长", refused)
    add_contact(chengde, "承德市", "市安委办", CITY_MAIL)
    server = smtp_server(rcpt_replies={refused: "550 5.1.1 <nobody@kc.gov.cn>: Recipient address rejected"})
    monkeypatch.setenv("ANJIAN_CHANNEL", "smtp")
    monkeypatch.setenv("ANJIAN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ANJIAN_SMTP_PORT", str(server.port))
    r = cli("remind", "--format", "json", now="2014-12-31T08:30")
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert [s["recipient"] for s in data["sent"]] == [CITY_MAIL]
    assert [(f["recipient"], f["status"]) for f in data["failed"]] == [(refused, "failed")]
    assert "550" in data["failed"][0]["error"]
    assert [r for e in server.handler.envelopes for r in e.rcpt_tos] == [CITY_MAIL]
    listed = cli("notices", "--status", "failed", "--format", "json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.output)
    assert [(n["recipient"], n["status"], n["attempts"]) for n in rows] == [(refused, "failed", 1)]
    assert "550" in rows[0]["last_error"]
    table = cli("notices", "--status", "failed")
    assert table.exit_code == 0
    assert refused in table.output and "失败" in table.output and CITY_MAIL not in table.output


def test_smtp_recipient_deferred_with_450_is_retried(chengde, smtp_server, tmp_path):
    """A 4xx answer at RCPT is temporary: the notice waits as `retry`, not `failed`."""
    add_contact(chengde, "宽城县", "李科长", COUNTY_MAIL)
    server = smtp_server(rcpt_replies={COUNTY_MAIL: "450 4.2.1 Mailbox busy, try later"})
    result = run_pass(chengde, OVERDUE_NOW, smtp_settings(server.port), tmp_path / "outbox")
    assert [(d.recipient, d.status) for d in result.deferred] == [(COUNTY_MAIL, "retry")]
    (n,) = stored_notices(chengde).values()
    assert (n.status, n.attempts) == ("retry", 1)


@pytest.mark.parametrize("quit_reply", ["421 4.3.2 Service shutting down", "500 5.5.1 Confused"])
def test_error_reply_to_quit_after_accepted_data_counts_as_sent(chengde, smtp_server, tmp_path, quit_reply):
    """Once DATA is accepted the message is delivered: an error answer to QUIT neither fails it nor sends it again."""
    add_contact(chengde, "宽城县", "李科长", COUNTY_MAIL)
    server = smtp_server(quit_reply=quit_reply)
    settings = smtp_settings(server.port)
    result = run_pass(chengde, OVERDUE_NOW, settings, tmp_path / "outbox")
    assert [s.recipient for s in result.sent] == [COUNTY_MAIL]
    run_pass(chengde, OVERDUE_NOW + dt.timedelta(hours=1), settings, tmp_path / "outbox")
    assert len(server.handler.envelopes) == 1
    (n,) = stored_notices(chengde).values()
    assert (n.status, n.attempts) == ("sent", 1)


@pytest.fixture
def self_signed(tmp_path):
    """A self-signed certificate for 127.0.0.1 made by the openssl tool, as (cert file, key file)."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl tool is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def starttls_server(smtp_server, cert, key) -> Controller:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return smtp_server(tls_context=context, require_starttls=True)


def test_starttls_refuses_a_certificate_nobody_vouches_for(chengde, smtp_server, self_signed, tmp_path, monkeypatch):
    """Over STARTTLS a certificate nobody vouches for stops the delivery (retried later): no notice goes to an unverified server."""
    add_contact(chengde, "宽城县", "李科长", COUNTY_MAIL)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    server = starttls_server(smtp_server, *self_signed)
    result = run_pass(chengde, OVERDUE_NOW, smtp_settings(server.port, smtp_security="starttls"), tmp_path / "outbox")
    assert result.sent == [] and server.handler.envelopes == []
    (n,) = stored_notices(chengde).values()
    assert n.status == "retry"
    assert n.last_error.endswith("：无法发送（服务器证书未通过校验）"), n.last_error


def test_starttls_delivers_to_a_trusted_server(chengde, smtp_server, self_signed, tmp_path, monkeypatch):
    """Over STARTTLS with the server's certificate trusted, the notice arrives."""
    add_contact(chengde, "宽城县", "李科长", COUNTY_MAIL)
    cert, key = self_signed
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    server = starttls_server(smtp_server, cert, key)
    result = run_pass(chengde, OVERDUE_NOW, smtp_settings(server.port, smtp_security="starttls"), tmp_path / "outbox")
    assert [s.recipient for s in result.sent] == [COUNTY_MAIL]
    (envelope,) = server.handler.envelopes
    assert parse(envelope.content)["Subject"].startswith("【逾期通知】")


class Robot(BaseHTTPRequestHandler):
    """A group robot: answers each path as REPLIES says and records what was posted."""

    REPLIES = {
        "/ok": (200, b'{"errcode":0,"errmsg":"ok"}'),
        "/plain": (200, b"ok"),
        "/busy": (500, b"internal error"),
        "/throttled": (429, b"slow down"),
        "/gone": (404, b"no such robot"),
        "/badkey": (200, b'{"errcode":93000,"errmsg":"invalid webhook url"}'),
        "/ratelimit": (200, b'{"errcode":45009,"errmsg":"api freq out of limit"}'),
    }

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), body))
        status, reply = self.REPLIES[self.path]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def robot():
    """A real HTTP server on 127.0.0.1 in a thread, playing a group robot; `.received` lists the posts.
    Its address and port are the administrator's explicit choice in `webhook_hosts` (`.hooks` for
    `contact add`, `.settings` for a pass): loopback is refused otherwise."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Robot)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    allowed = (f"127.0.0.1:{server.server_address[1]}",)
    server.hooks = Policy.of(allowed)
    server.settings = NotifySettings(extra=(("webhook_hosts", allowed),))
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_webhook_posts_wecom_markdown_in_chinese(chengde, robot, tmp_path):
    """The robot receives one UTF-8 JSON post {"msgtype": "markdown", "markdown": {"content": …}} in Chinese."""
    add_contact(chengde, "宽城县", "李科长", webhook=robot.url + "/ok", hooks=robot.hooks)
    result = run_pass(chengde, OVERDUE_NOW, robot.settings, tmp_path / "outbox")
    assert [(s.channel, s.status) for s in result.sent] == [("webhook", "sent")]
    ((path, headers, body),) = robot.received
    assert path == "/ok"
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert headers["X-Anjian-Notice"] == result.sent[0].notice_id
    assert MILESTONE.encode("utf-8") in body  # raw UTF-8, not \u escapes
    payload = json.loads(body.decode("utf-8"))
    assert set(payload) == {"msgtype", "markdown"} and payload["msgtype"] == "markdown"
    content = payload["markdown"]["content"]
    assert set(payload["markdown"]) == {"content"}
    assert content.startswith("### 关于乡镇安全监管规范化建设节点逾期的通知")
    assert f"承德市宽城满族自治县：{MILESTONE}（期限 2014年12月30日" in content and "已逾期 1 天" in content
    assert not (tmp_path / "outbox").exists()


def test_webhook_dingtalk_style_sends_title_and_text(chengde, robot, tmp_path):
    """In the DingTalk style the markdown carries the subject as `title` and the message as `text`."""
    add_contact(chengde, "宽城县", "李科长", webhook=robot.url + "/ok", hooks=robot.hooks)
    run_pass(chengde, OVERDUE_NOW, dataclasses.replace(robot.settings, webhook_style="dingtalk"), tmp_path / "outbox")
    ((_, _, body),) = robot.received
    payload = json.loads(body)
    assert payload["msgtype"] == "markdown" and set(payload["markdown"]) == {"title", "text"}
    assert payload["markdown"]["title"].startswith("【逾期通知】承德市宽城满族自治县")
    assert MILESTONE in payload["markdown"]["text"]


@pytest.mark.parametrize(("path", "status"), [
    ("/ok", "sent"),
    ("/plain", "sent"),
    ("/busy", "retry"),
    ("/throttled", "retry"),
    ("/ratelimit", "retry"),
    ("/gone", "failed"),
    ("/badkey", "failed"),
])
def test_webhook_answer_decides_sent_retry_or_failed(chengde, robot, tmp_path, path, status):
    """HTTP 5xx/429 and a rate-limit errcode are retried; HTTP 404 and errcode 93000 fail; a 2xx without errcode is sent."""
    add_contact(chengde, "宽城县", "李科长", webhook=robot.url + path, hooks=robot.hooks)
    run_pass(chengde, OVERDUE_NOW, robot.settings, tmp_path / "outbox")
    (n,) = stored_notices(chengde).values()
    assert (n.status, n.attempts) == (status, 1)
    assert (n.next_attempt_at is not None) == (status == "retry")
    assert len(robot.received) == 1


def test_contact_with_email_and_webhook_gets_one_of_each(chengde, robot, tmp_path):
    """A contact with both an address and a robot gets one file in the outbox and one robot post."""
    add_contact(chengde, "宽城县", "李科长", COUNTY_MAIL, robot.url + "/ok", hooks=robot.hooks)
    result = run_pass(chengde, OVERDUE_NOW, robot.settings, tmp_path / "outbox")
    assert sorted(s.channel for s in result.sent) == ["file", "webhook"]
    assert len(robot.received) == 1
    assert len(list((tmp_path / "outbox").iterdir())) == 1


def test_file_outbox_writes_one_parseable_utf8_eml_per_notice(county_and_city, tmp_path):
    """The outbox holds exactly `<notice id>.eml` per notice, UTF-8, parseable, with no temporary files left."""
    outbox = tmp_path / "outbox"
    result = run_pass(county_and_city, OVERDUE_NOW, NotifySettings(), outbox)
    notices = stored_notices(county_and_city)
    assert sorted(p.name for p in outbox.iterdir()) == sorted(f"{nid}.eml" for nid in notices)
    assert {s.notice_id for s in result.sent} == set(notices)
    for nid, n in notices.items():
        msg = parse((outbox / f"{nid}.eml").read_bytes())
        assert msg["X-Anjian-Notice"] == nid
        assert msg["To"].addresses[0].addr_spec == n.recipient
        assert msg["Subject"] == n.subject and msg["Subject"].startswith("【逾期通知】")
        plain = msg.get_body(("plain",))
        assert plain.get_content_charset() == "utf-8"
        assert MILESTONE in plain.get_content()
        assert n.status == "sent" and n.channel == "file"


def test_file_outbox_never_rewrites_a_finished_file(tmp_path):
    """Sending a notice whose file already exists leaves that file as it was."""
    outbox = FileOutbox(tmp_path / "outbox")
    first = Outgoing("20141231-aaaa", COUNTY_MAIL, "李科长", "【逾期通知】一", "正文一", None, "正文一",
                     "承德市安全生产委员会办公室 <anjian@localhost>", OVERDUE_NOW)
    outbox.send(first)
    before = outbox.path(first.notice_id).read_bytes()
    outbox.send(dataclasses.replace(first, subject="【逾期通知】二", text="正文二", markdown="正文二"))
    assert outbox.path(first.notice_id).read_bytes() == before
    assert outbox.delivered(first.notice_id)
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == ["20141231-aaaa.eml"]


def test_unwritable_outbox_is_retried_and_then_delivered(chengde, tmp_path):
    """An outbox that cannot be created defers the notice; after the backoff, with the folder possible, it is written once."""
    add_contact(chengde, "宽城县", "李科长", COUNTY_MAIL)
    blocker = tmp_path / "outbox"
    blocker.write_text("a file where the folder should be")
    first = run_pass(chengde, OVERDUE_NOW, NotifySettings(), blocker / "mail")
    assert [d.status for d in first.deferred] == ["retry"]
    (n,) = stored_notices(chengde).values()
    assert n.status == "retry" and "outbox" in n.last_error
    blocker.unlink()
    later = run_pass(chengde, OVERDUE_NOW + dt.timedelta(minutes=BACKOFF_MINUTES[0]), NotifySettings(), blocker / "mail")
    assert [s.notice_id for s in later.sent] == [n.id]
    assert [p.name for p in (blocker / "mail").iterdir()] == [f"{n.id}.eml"]


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/钩子", "http://127.0.0.1:9/a\tb", "http://[::1"])
def test_webhook_url_that_cannot_be_sent_fails_alone(chengde, tmp_path, url):
    """A stored webhook that cannot go on the wire (saved before the checks) fails its notice; the others still go out."""
    with chengde.write() as s:
        s.add(Contact(unit_code="130827", name="旧群", email=None, webhook=url, created_at="2014-12-01T00:00:00.000000Z"))
    add_contact(chengde, "宽城县", "李科长", COUNTY_MAIL)
    result = run_pass(chengde, OVERDUE_NOW, NotifySettings(), tmp_path / "outbox")
    assert [s.recipient for s in result.sent] == [COUNTY_MAIL]
    assert [(f.recipient, f.status) for f in result.failed] == [(url, "failed")]
    again = run_pass(chengde, OVERDUE_NOW + dt.timedelta(hours=1), NotifySettings(), tmp_path / "outbox")
    assert again.failed == [] and again.deferred == []


# -- the message as written, and the outbox a chunk at a time ---------------------------------------
def reference(o: Outgoing) -> email.message.EmailMessage:
    """The message as the e-mail package itself builds it (what anjian wrote before it wrote its own)."""
    msg = email.message.EmailMessage()
    msg["Subject"] = o.subject
    msg["From"] = o.sender
    msg["To"] = email.utils.formataddr((o.recipient_name, o.address))
    msg["Date"] = email.utils.format_datetime(o.sent_at)
    msg["Message-ID"] = f"<{o.notice_id}@anjian>"
    msg["X-Anjian-Notice"] = o.notice_id
    msg.set_content(o.text, charset="utf-8")
    if o.html:
        msg.add_alternative(o.html, subtype="html", charset="utf-8")
    return msg


LONG_CHINESE = "【逾期通知】承德市宽城满族自治县：乡镇安全监管规范化建设有 12 项节点已逾期，请立即组织整改并报市安委会办公室"
MESSAGES = {
    "chinese": ("20141231-0000000000000001", LONG_CHINESE, "李科长", "承德市安全生产委员会办公室 <anjian@localhost>"),
    "english": ("20141231-0000000000000002", "[Overdue] " + " ".join(["Chengde city county township"] * 5),
                "Li", "Office <office@cd.gov.cn>"),
    "address-syntax-name": ("20141231-0000000000000003", "=?utf-8?q?not_an_encoded_word?= 仅为文字",
                            '"Evil" <evil@z.cn>, x', "anjian@localhost"),
    "specials-and-astral": ("20141231-0000000000000004", "𠀀𠀁 生僻字与 emoji 😀 " * 4,
                            "Dr. Li (county), 𠀀" + "长" * 50, "Office 承德 <office@cd.gov.cn>"),
}


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_a_message_reads_back_as_the_e_mail_package_would_have_written_it(case):
    """Subject, From, To (display name and address), date and both parts read back as from the e-mail
    package's own message; no header line is longer than 78 columns; the same notice gives the same bytes."""
    nid, subject, name, sender = MESSAGES[case]
    text = "关于乡镇安全监管规范化建设节点逾期的通知\r\n\n第一行\n" + "长行" * 300 + "\n.\n末行"
    o = Outgoing(nid, COUNTY_MAIL, name, subject, text, "<p>" + text.replace("\n", "<br>") + "</p>", text, sender,
                 OVERDUE_NOW)
    raw = message_bytes(o)
    assert raw == message_bytes(o)
    head = raw.split(b"\n\n", 1)[0].decode("ascii")
    assert max(len(line) for line in head.split("\n")) <= 78
    ours, theirs = parse(raw), parse(reference(o).as_bytes())
    for field in ("From", "Date", "Message-ID", "X-Anjian-Notice"):
        assert str(ours[field]) == str(theirs[field]), field
    (to,) = ours["To"].addresses
    assert to.addr_spec == COUNTY_MAIL
    if len(name.encode("utf-8")) <= 40:  # one encoded word
        assert to.display_name == name == theirs["To"].addresses[0].display_name
    else:  # several: Python's reader puts a space where they join (a mail client does not)
        assert to.display_name.replace(" ", "") == name.replace(" ", "")
    # The subject as written, even where it looks like an encoded word (the e-mail package would decode that)
    assert ours["Subject"] == subject
    for kind in ("plain", "html"):
        mine, ref = ours.get_body((kind,)), theirs.get_body((kind,))
        assert mine.get_content() == ref.get_content()
        assert mine.get_content_charset() == "utf-8"
    assert ours.get_body(("plain",)).get_content().startswith("关于乡镇安全监管规范化建设节点逾期的通知\n\n第一行\n")


def test_a_message_without_html_is_plain_text():
    o = Outgoing("20141231-aaaa", COUNTY_MAIL, "李科长", "主题", "正文", None, "正文", "a <a@b.cn>", OVERDUE_NOW)
    msg = parse(message_bytes(o))
    assert not msg.is_multipart() and msg.get_content() == "正文\n"


def outgoing(n: int) -> list[Outgoing]:
    return [Outgoing(f"20141231-{i:016x}", COUNTY_MAIL, "李科长", f"【逾期通知】第{i}条", f"正文{i}", f"<p>正文{i}</p>",
                     f"正文{i}", "承德市安全生产委员会办公室 <anjian@localhost>", OVERDUE_NOW) for i in range(n)]


def test_the_outbox_syncs_a_chunk_once_before_any_file_has_its_name(tmp_path, monkeypatch):
    """send_many writes fifty messages with one data sync and one folder sync, not fifty; when the data
    is synced no message has its name yet, and after it each has, complete."""
    outbox = FileOutbox(tmp_path / "outbox")
    calls = []
    sync_data, sync_folder = channels._sync_data, channels._sync_folder

    def data(folder, paths):
        calls.append(("data", len(paths), sorted(p.name for p in folder.iterdir() if p.name.endswith(".eml"))))
        sync_data(folder, paths)

    def folder(path):
        calls.append(("folder", None, len(list(path.glob("*.eml")))))
        sync_folder(path)

    fsyncs = []
    real_fsync = os.fsync
    monkeypatch.setattr(channels, "_sync_data", data)
    monkeypatch.setattr(channels, "_sync_folder", folder)
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd) or real_fsync(fd))
    messages = outgoing(50)
    assert outbox.send_many(messages) == [None] * 50
    assert calls == [("data", 50, []), ("folder", None, 50)]
    if channels._syncfs is not None:  # one syncfs for the data, one fsync for the folder
        assert len(fsyncs) == 1
    for o in messages:
        assert parse(outbox.path(o.notice_id).read_bytes())["X-Anjian-Notice"] == o.notice_id
    assert sorted(p.name for p in outbox.folder.iterdir()) == sorted(f"{o.notice_id}.eml" for o in messages)


def test_without_syncfs_each_file_is_fsynced_before_it_is_named(tmp_path, monkeypatch):
    """Where there is no syncfs, each temporary file is fsynced (then the folder once) before any is renamed."""
    monkeypatch.setattr(channels, "_syncfs", None)
    folder = tmp_path / "outbox"
    seen = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: seen.append(len(list(folder.glob("*.eml")))) or real_fsync(fd))
    assert FileOutbox(folder).send_many(outgoing(5)) == [None] * 5
    assert seen == [0, 0, 0, 0, 0, 5]


def test_a_chunk_keeps_a_finished_file_and_writes_the_rest(tmp_path):
    """In a chunk whose first message a dead pass already wrote, that file stays as it was; the others are written."""
    outbox = FileOutbox(tmp_path / "outbox")
    first, *rest = outgoing(3)
    outbox.send(dataclasses.replace(first, subject="【逾期通知】先前写好的"))
    before = outbox.path(first.notice_id).read_bytes()
    assert outbox.send_many([first, *rest]) == [None, None, None]
    assert outbox.path(first.notice_id).read_bytes() == before
    assert sorted(p.name for p in outbox.folder.iterdir()) == sorted(f"{o.notice_id}.eml" for o in (first, *rest))


def test_an_outbox_that_cannot_be_made_defers_the_whole_chunk(tmp_path):
    (tmp_path / "outbox").write_text("a file where the folder should be")
    problems = FileOutbox(tmp_path / "outbox" / "mail").send_many(outgoing(3))
    assert [type(p) for p in problems] == [Transient] * 3
    assert "outbox" in str(problems[0])
