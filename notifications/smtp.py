"""Sending e-mail over SMTP (plain, STARTTLS or TLS, verifying the server's certificate)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email import policy

from anjian.i18n import _
from anjian.notifications.mail import build_message, sender_address
from anjian.notifications.outgoing import Outgoing, Permanent, Transient


@dataclass(frozen=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 25
    security: str = "none"  # none | starttls | tls
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0


class SmtpChannel:
    """Sends each message in a connection of its own (a pass sends few by SMTP: the outbox is the bulk)."""

    name = "smtp"

    def __init__(self, config: SmtpConfig):
        self.config = config

    @property
    def target(self) -> str:
        """Where it sends, as a claim records it."""
        return f"smtp:{self.config.host}:{self.config.port}"

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
                # as bytes with CRLF line ends, the envelope sender the configured address
                smtp.sendmail(sender_address(o.sender)[1], [o.address], build_message(o).as_bytes(policy=policy.SMTP))
            finally:
                _quit(smtp)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _reply in exc.recipients.values()]
            if all(400 <= code < 500 for code in codes):
                raise Transient(_("SMTP {host}: recipient deferred {codes}").format(host=c.host, codes=codes)) from None
            raise Permanent(_("SMTP {host}: recipient refused {recipients}").format(
                host=c.host, recipients=exc.recipients)) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise Permanent(_("SMTP {host}: login refused ({code})").format(host=c.host, code=exc.smtp_code)) from None
        except smtplib.SMTPResponseException as exc:
            kind = Transient if 400 <= exc.smtp_code < 500 else Permanent
            raise kind(_("SMTP {host}: the server answered {code} {reply!r}").format(
                host=c.host, code=exc.smtp_code, reply=exc.smtp_error)) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise Transient(_("SMTP {host}:{port}: cannot send ({reason})").format(
                host=c.host, port=c.port, reason=_reason(exc))) from None


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in words where we know the failure; the system's text beside its class."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _("the server's certificate did not verify")
    if isinstance(exc, TimeoutError):
        return _("no answer in time")
    if isinstance(exc, ConnectionRefusedError):
        return _("the connection was refused")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return _("the server hung up")
    if isinstance(exc, OSError) and exc.__class__.__name__ == "gaierror":
        return _("the host name does not resolve")
    return f"{exc.__class__.__name__}: {exc}"


def _quit(smtp: smtplib.SMTP) -> None:
    """Say goodbye. The reply to DATA decided the message's fate: a QUIT answered with an error (which
    `with SMTP(...)` would raise) must not turn a delivered message into a failed or repeated one."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
