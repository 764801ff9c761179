"""Delivery channels: a file outbox (the default), SMTP and a group-robot webhook.

Each raises `Transient` for a failure worth retrying (a server down, a 4xx SMTP reply, HTTP 5xx/429)
and `Permanent` for one that retrying cannot fix (an address refused, HTTP 4xx, a bad robot key).
"""

from __future__ import annotations

import http.client
import json
import os
import smtplib
import ssl
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path

from . import faults


class Transient(Exception):
    """Delivery failed for now; try again later."""


class Permanent(Exception):
    """Delivery cannot succeed; mark the notice failed."""


@dataclass(frozen=True)
class Outgoing:
    """One rendered notice on its way to one recipient."""

    notice_id: str
    address: str
    recipient_name: str
    subject: str
    text: str
    html: str | None
    markdown: str
    sender: str
    sent_at: object  # datetime


def email_message(o: Outgoing) -> EmailMessage:
    """An RFC 5322 message, UTF-8, plain text with an HTML alternative."""
    msg = EmailMessage()
    msg["Subject"] = o.subject
    msg["From"] = o.sender
    msg["To"] = formataddr((o.recipient_name, o.address))
    msg["Date"] = format_datetime(o.sent_at)
    msg["Message-ID"] = f"<{o.notice_id}@anjian>"
    msg["X-Anjian-Notice"] = o.notice_id
    msg.set_content(o.text, charset="utf-8")
    if o.html:
        msg.add_alternative(o.html, subtype="html", charset="utf-8")
    return msg


class FileOutbox:
    """One `<notice id>.eml` file per message, written atomically: a file that exists is complete."""

    name = "file"

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, notice_id: str) -> Path:
        return self.folder / f"{notice_id}.eml"

    def delivered(self, notice_id: str) -> bool:
        return self.path(notice_id).exists()

    def send(self, o: Outgoing) -> None:
        target = self.path(o.notice_id)
        if target.exists():  # written by a pass that died before marking it: not again
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            data = email_message(o).as_bytes()
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{o.notice_id}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data[: len(data) // 2])
                    fh.flush()
                    faults.point("during_write")
                    fh.write(data[len(data) // 2 :])
                    fh.flush()
                    os.fsync(fh.fileno())
                faults.point("before_rename")
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dirfd = os.open(self.folder, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)
        except OSError as exc:
            raise Transient(f"outbox {self.folder}: {exc.strerror or exc}") from None


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 25
    security: str = "none"  # none | starttls | tls
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0


class SmtpChannel:
    name = "smtp"

    def __init__(self, config: SmtpConfig):
        self.config = config

    def send(self, o: Outgoing) -> None:
        c = self.config
        try:
            # smtplib's own default context verifies nothing; a verifying one keeps the password and
            # the notice away from a man in the middle.
            tls = ssl.create_default_context()
            if c.security == "tls":
                smtp = smtplib.SMTP_SSL(c.host, c.port, timeout=c.timeout, context=tls)
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout)
            try:
                if c.security == "starttls":
                    smtp.starttls(context=tls)
                if c.user:
                    smtp.login(c.user, c.password or "")
                smtp.send_message(email_message(o), to_addrs=[o.address])
            finally:
                _quit(smtp)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            if all(400 <= code < 500 for code in codes):
                raise Transient(f"SMTP {c.host}: recipient deferred {codes}") from None
            raise Permanent(f"SMTP {c.host}: recipient refused {exc.recipients}") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise Permanent(f"SMTP {c.host}: login refused ({exc.smtp_code})") from None
        except smtplib.SMTPResponseException as exc:
            kind = Transient if 400 <= exc.smtp_code < 500 else Permanent
            raise kind(f"SMTP {c.host}: {exc.smtp_code} {exc.smtp_error!r}") from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise Transient(f"SMTP {c.host}:{c.port}: {exc.__class__.__name__}: {exc}") from None


def _quit(smtp: smtplib.SMTP) -> None:
    """Say goodbye. The reply to DATA decided the message's fate: a QUIT answered with an error (which
    `with SMTP(...)` would raise) must not turn a delivered message into a failed or repeated one."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


class WebhookChannel:
    """A JSON POST in the style of the group robots of officials' chat tools (WeCom by default,
    DingTalk with style="dingtalk"): {"msgtype": "markdown", "markdown": {...}}."""

    name = "webhook"

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
