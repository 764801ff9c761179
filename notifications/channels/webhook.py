"""The group-robot channel: a short markdown message POSTed to a contact's webhook, in the style of the
robots of officials' chat tools (WeCom by default, DingTalk with [webhook] style = "dingtalk")."""

from __future__ import annotations

import http.client
import json
import socket
import ssl

from anjian.i18n import _
from anjian.notifications.channels.spec import Channel, Setting, Values
from anjian.notifications.netguard import GROUP_ROBOTS, Address, Policy, Refused, Target, Unresolved
from anjian.notifications.netguard import check_entries as checked_hosts
from anjian.notifications.outbox import FileOutbox
from anjian.notifications.outgoing import Outgoing, Permanent, Sender, Transient

WEBHOOK_LIMIT = 4000  # group robots refuse longer markdown (WeCom: 4096 bytes)


def fit_markdown(text: str, limit: int, language: str = "zh") -> str:
    """Cut a robot message to `limit` bytes at a line boundary, saying how many lines were left out;
    the full list goes out by e-mail and stays in `anjian notices`."""
    if len(text.encode("utf-8")) <= limit:
        return text
    lines = text.rstrip("\n").split("\n")
    footer = lines[-1]
    kept: list[str] = []
    budget = limit - len(footer.encode("utf-8")) - 200
    for line in lines[:-1]:
        size = len(line.encode("utf-8")) + 1
        if size > budget:
            break
        kept.append(line)
        budget -= size
    left = sum(1 for line in lines[len(kept):-1] if line.startswith(">"))
    note = (f"> ……另有 {left} 项未列出，详见邮件通知或 anjian notices" if language == "zh"
            else f"> … {left} more item(s) not listed; see the e-mail or anjian notices")
    return "\n".join([*kept, note, footer]) + "\n"


class WebhookChannel:
    """A JSON POST in the style of the group robots of officials' chat tools (WeCom by default,
    DingTalk with style="dingtalk"): {"msgtype": "markdown", "markdown": {...}}.

    Only where the policy allows (anjian.notifications.netguard): the host is vetted and resolved once,
    the post connects to a vetted address itself and never follows a redirect; what is kept of the
    answer is the HTTP status and the service's numeric errcode, never the body (it could carry a secret
    of whatever answered)."""

    name = "webhook"
    target = "webhook"  # where it sends, as a claim records it: each notice's own URL

    def __init__(self, timeout: float = 10.0, style: str = "wecom", policy: Policy | None = None,
                 tls: ssl.SSLContext | None = None):
        self.timeout = timeout
        self.style = style
        self.policy = policy or Policy()
        self.tls = tls or ssl.create_default_context()

    def payload(self, o: Outgoing) -> dict:
        if self.style == "dingtalk":
            return {"msgtype": "markdown", "markdown": {"title": o.subject, "text": o.markdown}}
        return {"msgtype": "markdown", "markdown": {"content": o.markdown}}

    def send(self, o: Outgoing) -> None:
        try:
            t, addresses = self.policy.vet(o.address)
        except Refused as exc:
            raise Permanent(_("webhook refused: {reason}").format(reason=exc)) from None
        except Unresolved as exc:
            raise Transient(str(exc)) from None
        except ValueError as exc:  # a URL that cannot go on the wire (stored before the checks): retrying won't help
            raise Permanent(_("webhook URL cannot be requested: {reason}").format(reason=exc)) from None
        body = json.dumps(self.payload(o), ensure_ascii=False).encode("utf-8")
        status, reply = self._post(t, addresses, body, {
            "Content-Type": "application/json; charset=utf-8", "X-Anjian-Notice": o.notice_id})
        if 300 <= status < 400:
            raise Permanent(_("webhook HTTP {status}: redirected, not followed").format(status=status))
        if status >= 500 or status == 429:
            raise Transient(_("webhook HTTP {status}").format(status=status))
        if not 200 <= status < 300:
            raise Permanent(_("webhook HTTP {status}").format(status=status))
        code = errcode(reply)
        if code is None:
            raise Permanent(_("the webhook's errcode is not a number we recognise"))
        if code != 0:
            kind = Transient if code in (45009, 130101, -1) else Permanent  # rate limits, busy
            raise kind(_("webhook errcode {code}").format(code=code))  # never errmsg: it is the server's text

    def _post(self, t: Target, addresses: list[Address], body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        """POST to the first vetted address that takes the connection: (status, at most 64 KiB of reply).
        Every failure to connect or to be answered reads the same, so that nothing tells an open port
        from a closed one."""
        for addr in addresses:
            if t.scheme == "https":
                conn: http.client.HTTPConnection = _PinnedHTTPS(t.host, t.port, str(addr), self.timeout, self.tls)
            else:
                conn = _PinnedHTTP(t.host, t.port, str(addr), self.timeout)
            try:
                conn.connect()
            except ssl.SSLCertVerificationError:
                conn.close()
                raise Permanent(_("the certificate of webhook host {host} did not verify").format(host=t.host)) from None
            except OSError:
                conn.close()
                continue
            try:
                conn.request("POST", t.path, body=body, headers=headers)
                with conn.getresponse() as resp:
                    return resp.status, resp.read(65536)
            except (OSError, http.client.HTTPException):
                raise Transient(_("cannot reach webhook host {host}").format(host=t.host)) from None
            finally:
                conn.close()
        raise Transient(_("cannot reach webhook host {host}").format(host=t.host))


def errcode(reply: bytes) -> int | None:
    """The service's errcode in a 2xx reply: 0 when there is none (a body that is not JSON, or JSON
    without errcode, is an acceptance); None when it is not a plain integer (not kept: it could be
    anything the server chose to say)."""
    try:
        answer = json.loads(reply or b"{}")
    except ValueError:
        return 0
    code = answer.get("errcode", 0) if isinstance(answer, dict) else 0
    if code is None:
        return 0
    if isinstance(code, bool) or not isinstance(code, int) or not -(2**31) <= code < 2**31:
        return None
    return code


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to one vetted address, sending the URL's host in the Host header."""

    def __init__(self, host: str, port: int, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to one vetted address; SNI and the certificate are checked against the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float, tls: ssl.SSLContext):
        super().__init__(host, port, timeout=timeout, context=tls)
        self.address = address
        self.tls = tls

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        try:
            self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _robot(values: Values, outbox: FileOutbox) -> Sender:
    return WebhookChannel(values.value("webhook_timeout"), values.value("webhook_style"),
                          Policy.of(values.value("webhook_hosts")))


CHANNEL = Channel(
    name="webhook",
    contact_field="webhook",
    templates={"subject": "subject.{}.txt.j2", "markdown": "webhook.{}.md.j2"},
    body="markdown",
    html=None,
    senders={WebhookChannel.name: _robot},
    transport=lambda values: WebhookChannel.name,
    settings=(
        Setting("webhook_style", "webhook", "style", "ANJIAN_WEBHOOK_STYLE", "wecom", allowed=("wecom", "dingtalk")),
        Setting("webhook_timeout", "webhook", "timeout", None, 10.0, float),
        # Where webhooks may go (anjian.notifications.netguard): host, host:port, or an internal IP:port.
        Setting("webhook_hosts", "webhook", "hosts", "ANJIAN_WEBHOOK_HOSTS", GROUP_ROBOTS, tuple, check=checked_hosts),
    ),
    limit=WEBHOOK_LIMIT,
    fit=fit_markdown,
)
