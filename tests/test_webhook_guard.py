"""Webhooks go only where they should (issue 12, item 5): the attacks a township chief tried — webhooks
to 127.0.0.1:18081, 169.254.169.254 and 127.0.0.1:5432 — are refused at `contact add` and again at send
time after DNS resolution; no redirect is followed; no reply body reaches `anjian notices` or the
database; an open port and a closed one leave the same error. Real loopback servers play the robots;
names are given their addresses by a resolver of ours (netguard.Policy's `resolve`)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, text
from support import T0, snapshot

from anjian.notifications.channels.webhook import WebhookChannel
from anjian.notifications.netguard import GROUP_ROBOTS, Allowlist, Policy, forbidden
from anjian.notifications.outgoing import Outgoing, Permanent, Transient
from anjian.workflow.clock import SHANGHAI
from anjian.workflow.reminders.run import run_pass
from anjian.workflow.services import contacts
from anjian.workflow.settings import NotifySettings
from anjian.workflow.store.models import Contact, Notice

OVERDUE = "2014-12-31T08:30"  # plan_submission (2014-12-30) one day late for every county
OVERDUE_NOW = dt.datetime(2014, 12, 31, 8, 30, tzinfo=SHANGHAI)
SECRET = "internal-secret-token=7f3a9c"
ATTACKS = ["http://127.0.0.1:18081/admin/token", "http://169.254.169.254/latest/meta-data/iam/", "http://127.0.0.1:5432/"]


class Inside(BaseHTTPRequestHandler):
    """A service inside the network that answers with a secret (and a robot on other paths)."""

    def do_POST(self) -> None:
        self.server.received.append((self.path, dict(self.headers)))
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, body, extra = {
            "/ok": (200, b'{"errcode":0,"errmsg":"ok"}', {}),
            "/secret-500": (500, SECRET.encode(), {}),
            "/secret-404": (404, SECRET.encode(), {}),
            "/secret-errmsg": (200, json.dumps({"errcode": 93000, "errmsg": SECRET}).encode(), {}),
            "/secret-errcode": (200, json.dumps({"errcode": SECRET}).encode(), {}),
            "/moved": (302, b"", {"Location": self.server.elsewhere}),
        }[self.path]
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def inside():
    """A factory: a real HTTP server on 127.0.0.1 in a thread; `.port`, `.url`, `.received`."""
    servers = []

    def start(tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Inside)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        server.received, server.elsewhere = [], "http://127.0.0.1:9/"
        server.port = server.server_address[1]
        server.url = f"{'https' if tls else 'http'}://127.0.0.1:{server.port}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
        return server

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def outgoing(url: str) -> Outgoing:
    return Outgoing("20141231-0000000000000001", url, "李科长", "【逾期通知】", "正文", None, "### 正文",
                    "承德市安全生产委员会办公室 <anjian@localhost>", OVERDUE_NOW)


def stored_before_the_rule(db, *urls: str) -> None:
    """Contacts written straight into the table, as a database from before the allowlist holds them."""
    with db.write() as s:
        for i, url in enumerate(urls):
            s.add(Contact(unit_code="130827", name=f"旧群{i}", email=None, webhook=url, created_at="2014-12-01T00:00:00.000000Z"))


def notices(db) -> dict[str, Notice]:
    with db.read() as s:
        return {n.recipient: n for n in s.scalars(select(Notice))}


def resolver(table: dict[str, list[str]], calls: list[str] | None = None):
    """A resolver of ours: each name's addresses from `table` (an unknown name does not resolve)."""
    def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return table[host]
    return resolve


# -- the address policy ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("address", "why"), [
    ("127.0.0.1", "本机回环地址"), ("::1", "本机回环地址"), ("10.1.2.3", "内网地址"), ("172.16.0.1", "内网地址"),
    ("192.168.1.1", "内网地址"), ("fd12::1", "内网地址"), ("100.64.0.1", "内网地址"), ("169.254.1.1", "链路本地地址"),
    ("fe80::1", "链路本地地址"), ("0.0.0.0", "未指定地址"), ("::", "未指定地址"), ("224.0.1.1", "组播地址"),
    ("ff0e::1", "组播地址"), ("240.0.0.1", "保留地址"), ("169.254.169.254", "云服务器元数据地址"),
    ("fd00:ec2::254", "云服务器元数据地址"), ("100.100.100.200", "云服务器元数据地址"), ("168.63.129.16", "云服务器元数据地址"),
    ("::ffff:127.0.0.1", "本机回环地址"), ("::ffff:169.254.169.254", "云服务器元数据地址"), ("2002:a9fe:a9fe::", "云服务器元数据地址"),
    ("64:ff9b::7f00:1", "本机回环地址"), ("::127.0.0.1", "本机回环地址"),
])
def test_inside_and_metadata_addresses_are_forbidden(address, why):
    """Loopback, private, CGNAT, link-local, unspecified, multicast, reserved and metadata addresses (also hidden in IPv6) are refused, each with its reason."""
    assert forbidden(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize("address", ["8.8.8.8", "101.226.4.6", "2001:4860:4860::8888", "2002:808:808::"])
def test_public_addresses_are_allowed(address):
    """A public address (IPv4, IPv6, or 6to4 around a public IPv4) has no reason against it."""
    assert forbidden(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(("entry", "words"), [
    ("169.254.169.254:80", "永远不能"), ("[fd00:ec2::254]:80", "永远不能"), ("169.254.10.1:8080", "永远不能"),
    ("metadata.google.internal", "元数据服务"), ("127.0.0.1", "写明端口"), ("10.0.0.8", "写明端口"), ("fd00::8", "写明端口"),
    ("robot.example:99999", "端口"), ("http://robot.example", "不是主机名"), ("robot example", "不是主机名"), ("[fd00::8", "不是主机名"),
])
def test_a_bad_allowlist_entry_is_refused(entry, words):
    """Metadata and link-local entries are never accepted, an internal IP needs an explicit port, and a malformed entry is named."""
    with pytest.raises(ValueError, match=words):
        Allowlist.parse([entry])


def test_an_entry_permits_its_host_on_the_default_port_or_the_port_given():
    """`host` permits the scheme's default port alone; `host:port` that port; an internal `IP:port` exactly that address and port."""
    policy = Policy.of(["qyapi.weixin.qq.com", "robot.gov.cn:8443", "127.0.0.1:18081"], resolve=resolver({
        "qyapi.weixin.qq.com": ["101.226.4.6"], "robot.gov.cn": ["202.106.0.20"]}))
    assert policy.vet("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=1")[1] == [ipaddress.ip_address("101.226.4.6")]
    assert policy.vet("http://127.0.0.1:18081/hook")[1] == [ipaddress.ip_address("127.0.0.1")]
    policy.vet("https://robot.gov.cn:8443/hook")
    for url in ["https://qyapi.weixin.qq.com:8443/", "https://robot.gov.cn/hook", "http://127.0.0.1:18082/", "http://localhost:18081/"]:
        with pytest.raises(ValueError):
            policy.vet(url)


# -- refused at `contact add` (exit 2, nothing written) -----------------------------------------------------
@pytest.mark.parametrize("url", ATTACKS)
def test_the_issues_attacks_are_refused_at_contact_add(chengde, cli, url):
    """Each webhook the chief added in the issue now exits 2 with a Chinese reason naming it; nothing is written."""
    before = snapshot(chengde)
    r = cli("contact", "add", "宽城县", "--name", "安监群", "--webhook", url)
    assert r.exit_code == 2, r.output
    assert url in r.output and "不接受 webhook" in r.output
    assert ("云服务器元数据地址" if "169.254" in url else "本机回环地址") in r.output
    assert snapshot(chengde) == before


@pytest.mark.parametrize(("url", "words"), [
    ("https://robot.example/hook", "不在允许的 webhook 主机列表中"),
    ("http://2130706433:18081/", "不在允许的 webhook 主机列表中"),  # 127.0.0.1 written as one number
    ("http://qyapi.weixin.qq.com@127.0.0.1:18081/", "用户名或密码"),
    ("https://qyapi.weixin.qq.com:8443/cgi-bin/webhook/send?key=1", "qyapi.weixin.qq.com:8443"),
    ("http://[::ffff:127.0.0.1]:18081/", "本机回环地址"),
    ("http://metadata.google.internal/computeMetadata/v1/", "不在允许"),
])
def test_a_host_off_the_allowlist_is_refused_at_contact_add(chengde, cli, url, words):
    """A host that is not on the allowlist, or written to look like one that is, exits 2 naming why; nothing is written."""
    before = snapshot(chengde)
    r = cli("contact", "add", "宽城县", "--name", "安监群", "--webhook", url)
    assert r.exit_code == 2, r.output
    assert words in r.output
    assert snapshot(chengde) == before


def test_an_allowed_name_that_resolves_inside_is_refused_at_contact_add(chengde, cli, monkeypatch):
    """A host on the allowlist whose name resolves to loopback (localhost, by the system's resolver) exits 2."""
    monkeypatch.setenv("ANJIAN_WEBHOOK_HOSTS", "localhost:18081")
    before = snapshot(chengde)
    r = cli("contact", "add", "宽城县", "--name", "安监群", "--webhook", "http://localhost:18081/hook")
    assert r.exit_code == 2, r.output
    assert "localhost 解析到本机回环地址" in r.output
    assert snapshot(chengde) == before


def test_one_bad_row_refuses_the_whole_import(chengde, cli, tmp_path):
    """`contact import` with one attack among good rows exits 2 naming its line; no row is written."""
    path = tmp_path / "contacts.csv"
    path.write_text("unit,name,email,webhook\n宽城县,李科长,li@kc.gov.cn,\n"
                    f"宽城县,安监群,,{ATTACKS[1]}\n丰宁县,赵科长,,https://oapi.dingtalk.com/robot/send?access_token=1\n",
                    encoding="utf-8")
    before = snapshot(chengde)
    r = cli("contact", "import", str(path))
    assert r.exit_code == 2, r.output
    assert "第 3 行" in r.output and "云服务器元数据地址" in r.output
    assert snapshot(chengde) == before


def test_the_group_robots_are_allowed_by_default(chengde, cli):
    """WeCom, DingTalk and Feishu robots are accepted with no setting (a name that does not resolve now is checked at send)."""
    assert GROUP_ROBOTS == ("qyapi.weixin.qq.com", "oapi.dingtalk.com", "open.feishu.cn")
    for i, url in enumerate(["https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=1",
                             "https://oapi.dingtalk.com/robot/send?access_token=1",
                             "https://open.feishu.cn/open-apis/bot/v2/hook/1"]):
        r = cli("contact", "add", "宽城县", "--name", f"群{i}", "--webhook", url)
        assert r.exit_code == 0, r.output


def test_the_allowlist_comes_from_the_config_file_or_the_environment(chengde, cli, tmp_path, monkeypatch):
    """`[webhook] hosts` in the config file, or ANJIAN_WEBHOOK_HOSTS (comma-separated, which wins), is the list `contact add` checks."""
    config = tmp_path / "config.toml"
    config.write_text('[webhook]\nhosts = ["127.0.0.1:18081"]\n', encoding="utf-8")
    monkeypatch.setenv("ANJIAN_CONFIG", str(config))
    assert cli("contact", "add", "宽城县", "--name", "内网群", "--webhook", "http://127.0.0.1:18081/hook").exit_code == 0
    refused = cli("contact", "add", "宽城县", "--name", "钉钉群", "--webhook", "https://oapi.dingtalk.com/robot/send?access_token=1")
    assert refused.exit_code == 2 and "不在允许" in refused.output
    monkeypatch.setenv("ANJIAN_WEBHOOK_HOSTS", "oapi.dingtalk.com, 127.0.0.1:18082")
    assert cli("contact", "add", "宽城县", "--name", "钉钉群", "--webhook", "https://oapi.dingtalk.com/robot/send?access_token=1").exit_code == 0
    assert cli("contact", "add", "宽城县", "--name", "内网群2", "--webhook", "http://127.0.0.1:18081/hook").exit_code == 2


@pytest.mark.parametrize("value", ["169.254.169.254:80", "127.0.0.1", "metadata.google.internal"])
def test_a_bad_allowlist_setting_exits_2(chengde, cli, monkeypatch, value):
    """A metadata address or an internal IP without a port in ANJIAN_WEBHOOK_HOSTS exits 2 naming the setting; nothing is written."""
    monkeypatch.setenv("ANJIAN_WEBHOOK_HOSTS", value)
    before = snapshot(chengde)
    r = cli("contact", "add", "宽城县", "--name", "安监群", "--webhook", "https://qyapi.weixin.qq.com/x")
    assert r.exit_code == 2, r.output
    assert "设置 webhook_hosts 有误" in r.output and value in r.output
    assert snapshot(chengde) == before


# -- refused again at send time ------------------------------------------------------------------------------
def test_webhooks_stored_before_the_rule_are_refused_at_send_without_a_connection(chengde, inside, tmp_path):
    """The issue's three webhooks, already in the table, each fail with a Chinese reason; the service inside receives nothing."""
    service = inside()
    urls = [f"{service.url}/secret-500", *ATTACKS[1:]]
    stored_before_the_rule(chengde, *urls)
    result = run_pass(chengde, OVERDUE_NOW, NotifySettings(), tmp_path / "outbox")
    assert sorted(f.recipient for f in result.failed) == sorted(urls)
    assert service.received == []
    stored = notices(chengde)
    assert stored[urls[0]].last_error == "webhook 被拒绝：webhook 主机 127.0.0.1 是本机回环地址"
    assert "云服务器元数据地址" in stored[urls[1]].last_error
    assert {n.status for n in stored.values()} == {"failed"}


def test_an_open_port_and_a_closed_port_leave_the_same_error(chengde, inside, tmp_path):
    """Refused or allowed, a listening port and a closed one are told apart by nothing the pass stores."""
    service, closed = inside(), closed_port()
    refused = [f"http://127.0.0.1:{service.port}/ok", f"http://127.0.0.1:{closed}/ok"]
    stored_before_the_rule(chengde, *refused)
    run_pass(chengde, OVERDUE_NOW, NotifySettings(), tmp_path / "outbox")
    first, second = (notices(chengde)[u] for u in refused)
    assert (first.status, first.attempts, first.last_error) == (second.status, second.attempts, second.last_error)
    assert service.received == []


def test_a_connection_failure_reads_the_same_whatever_answered(inside):
    """Allowed hosts too: a closed port, a port that hangs up and one that speaks no HTTP all read "无法连接 webhook 主机"."""
    closed = closed_port()
    hangup, garbage = socket.create_server(("127.0.0.1", 0)), socket.create_server(("127.0.0.1", 0))

    def serve(listener: socket.socket, reply: bytes) -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(reply)
        conn.close()

    ports = [closed, hangup.getsockname()[1], garbage.getsockname()[1]]
    threads = [threading.Thread(target=serve, args=(hangup, b"")), threading.Thread(target=serve, args=(garbage, b"SSH-2.0-x\r\n"))]
    for t in threads:
        t.start()
    channel = WebhookChannel(timeout=5, policy=Policy.of([f"127.0.0.1:{p}" for p in ports]))
    errors = []
    for port in ports:
        with pytest.raises(Transient) as caught:
            channel.send(outgoing(f"http://127.0.0.1:{port}/hook"))
        errors.append(str(caught.value))
    for t in threads:
        t.join()
    hangup.close()
    garbage.close()
    assert errors == ["无法连接 webhook 主机 127.0.0.1"] * 3


@pytest.mark.parametrize("addresses", [["127.0.0.1"], ["101.226.4.6", "127.0.0.1"], ["::ffff:127.0.0.1"], ["10.8.0.2"]])
def test_an_allowed_name_that_resolves_inside_is_refused_at_send(inside, addresses):
    """A host on the allowlist whose DNS answer holds ANY internal address is refused before any connection."""
    service = inside()
    channel = WebhookChannel(policy=Policy.of([f"robot.test:{service.port}"], resolve=resolver({"robot.test": addresses})))
    with pytest.raises(Permanent, match="robot.test 解析到"):
        channel.send(outgoing(f"http://robot.test:{service.port}/ok"))
    assert service.received == []


def test_a_name_rebound_after_contact_add_is_refused_at_send(chengde, inside):
    """DNS rebinding: a name public when the contact was added and loopback when the pass runs is refused at send."""
    service = inside()
    answers = iter([["101.226.4.6"], ["127.0.0.1"]])
    policy = Policy.of([f"robot.test:{service.port}"], resolve=lambda host, port: next(answers))
    contacts.add(chengde, "宽城县", "安监群", None, f"http://robot.test:{service.port}/ok", "admin", T0, hooks=policy)
    with pytest.raises(Permanent, match="本机回环地址"):
        WebhookChannel(policy=policy).send(outgoing(f"http://robot.test:{service.port}/ok"))
    assert service.received == []


def test_the_post_goes_to_the_vetted_address_with_the_name_in_host(inside):
    """The name is resolved once, the post connects to that vetted address, and Host carries the name."""
    service, calls = inside(), []
    policy = Policy.of([f"robot.test:{service.port}", f"127.0.0.1:{service.port}"],
                       resolve=resolver({"robot.test": ["127.0.0.1"]}, calls))
    WebhookChannel(policy=policy).send(outgoing(f"http://robot.test:{service.port}/ok"))
    ((path, headers),) = service.received
    assert (path, headers["Host"], calls) == ("/ok", f"robot.test:{service.port}", ["robot.test"])


def test_a_redirect_is_not_followed(inside):
    """A 302 fails the notice for good ("被重定向，未跟随"); the address it points to receives nothing."""
    robot, elsewhere = inside(), inside()
    robot.elsewhere = f"{elsewhere.url}/ok"
    channel = WebhookChannel(policy=Policy.of([f"127.0.0.1:{robot.port}", f"127.0.0.1:{elsewhere.port}"]))
    with pytest.raises(Permanent, match="HTTP 302：被重定向，未跟随"):
        channel.send(outgoing(f"{robot.url}/moved"))
    assert [p for p, _ in robot.received] == ["/moved"] and elsewhere.received == []


# -- what is kept of an answer ------------------------------------------------------------------------------
def test_no_reply_body_reaches_notices_or_the_database(chengde, cli, inside, monkeypatch):
    """Only the HTTP status and a numeric errcode are kept: the secret in a 500, a 404, an errmsg or an errcode is shown and stored nowhere."""
    service = inside()
    allowed = f"127.0.0.1:{service.port}"
    monkeypatch.setenv("ANJIAN_WEBHOOK_HOSTS", allowed)
    for i, path in enumerate(("/secret-500", "/secret-404", "/secret-errmsg", "/secret-errcode")):
        contacts.add(chengde, "宽城县", f"群{i}", None, f"{service.url}{path}", "admin", T0, hooks=Policy.of([allowed]))
    assert cli("remind", now=OVERDUE).exit_code == 0
    assert len(service.received) == 4
    errors = {n.recipient.rsplit("/", 1)[1]: n.last_error for n in notices(chengde).values()}
    assert errors == {"secret-500": "webhook 答复 HTTP 500", "secret-404": "webhook 答复 HTTP 404",
                      "secret-errmsg": "webhook 答复 errcode 93000", "secret-errcode": "webhook 答复的 errcode 不是可识别的数"}
    for args in (("notices",), ("notices", "--format", "json"), ("notices", "--format", "csv")):
        shown = cli(*args)
        assert shown.exit_code == 0 and "webhook 答复 HTTP 500" in shown.output
        assert "internal-secret-token" not in shown.output and "7f3a9c" not in shown.output
    with chengde.read() as s:
        for table in ("notices", "audit_log"):
            assert SECRET not in repr(s.execute(text(f"SELECT * FROM {table}")).all())


# -- https: SNI and the certificate are checked against the name, not the address ---------------------------
@pytest.fixture(scope="module")
def robot_cert(tmp_path_factory):
    """A self-signed certificate for the name robot.test (made by the openssl tool), as (cert file, key file)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "2", "-subj", "/CN=robot.test", "-addext", "subjectAltName=DNS:robot.test",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_https_checks_sni_and_the_certificate_against_the_host_name(inside, robot_cert):
    """Over https the vetted address is dialled with SNI robot.test and the certificate is checked for robot.test; by bare address it fails."""
    cert, key = robot_cert
    server_side, names = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), []
    server_side.load_cert_chain(cert, key)
    server_side.sni_callback = lambda sock, name, ctx: names.append(name)
    service = inside(server_side)
    trusting = ssl.create_default_context(cafile=str(cert))
    policy = Policy.of([f"robot.test:{service.port}", f"127.0.0.1:{service.port}"], resolve=resolver({"robot.test": ["127.0.0.1"]}))
    channel = WebhookChannel(policy=policy, tls=trusting)
    channel.send(outgoing(f"https://robot.test:{service.port}/ok"))
    assert names == ["robot.test"] and service.received[0][1]["Host"] == f"robot.test:{service.port}"
    with pytest.raises(Permanent, match="证书未通过校验"):
        channel.send(outgoing(f"https://127.0.0.1:{service.port}/ok"))
    with pytest.raises(Permanent, match="证书未通过校验"):
        WebhookChannel(policy=policy).send(outgoing(f"https://robot.test:{service.port}/ok"))  # nobody vouches for it
    assert len(service.received) == 1
