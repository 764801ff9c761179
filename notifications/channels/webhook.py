"""The group-robot channel: a short markdown message POSTed to a contact's webhook, in the style of the
robots of officials' chat tools (WeCom by default, DingTalk with [webhook] style = "dingtalk")."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

from anjian.notifications.channels.spec import Channel, Setting, Values
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
    DingTalk with style="dingtalk"): {"msgtype": "markdown", "markdown": {...}}."""

    name = "webhook"
    target = "webhook"  # where it sends, as a claim records it: each notice's own URL

    def __init__(self, timeout: float = 10.0, style: str = "wecom"):
        self.timeout = timeout
        self.style = style

    def payload(self, o: Outgoing) -> dict:
        if self.style == "dingtalk":
            return {"msgtype": "markdown", "markdown": {"title": o.subject, "text": o.markdown}}
        return {"msgtype": "markdown", "markdown": {"content": o.markdown}}

    def send(self, o: Outgoing) -> None:
        body = json.dumps(self.payload(o), ensure_ascii=False).encode("utf-8")
        try:
            req = urllib.request.Request(o.address, data=body, method="POST", headers={
                "Content-Type": "application/json; charset=utf-8", "X-Anjian-Notice": o.notice_id})
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                reply = resp.read(65536)
        except urllib.error.HTTPError as exc:
            kind = Transient if exc.code >= 500 or exc.code == 429 else Permanent
            raise kind(f"webhook HTTP {exc.code}") from None
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            raise Transient(f"webhook: {getattr(exc, 'reason', exc)}") from None
        except (ValueError, http.client.InvalidURL) as exc:  # a URL that cannot go on the wire: retrying won't help
            raise Permanent(f"webhook URL cannot be requested: {exc}") from None
        try:
            answer = json.loads(reply or b"{}")
        except ValueError:
            return  # a 2xx with a non-JSON body: accepted
        code = answer.get("errcode", 0) if isinstance(answer, dict) else 0
        if code not in (0, None):
            kind = Transient if code in (45009, 130101, -1) else Permanent  # rate limits, busy
            raise kind(f"webhook errcode {code}: {answer.get('errmsg', '')}")


def _robot(values: Values, outbox: FileOutbox) -> Sender:
    return WebhookChannel(values.value("webhook_timeout"), values.value("webhook_style"))


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
    ),
    limit=WEBHOOK_LIMIT,
    fit=fit_markdown,
)
