"""Sending e-mail over SMTP (plain, STARTTLS or TLS, verifying the server's certificate)."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email import policy

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
