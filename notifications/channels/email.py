"""The e-mail channel: subject, plain text and HTML, to a contact's e-mail address, written to the file
outbox or sent by SMTP (settings [notify] channel)."""

from __future__ import annotations

from anjian.notifications.channels.spec import Channel, Setting, Values
from anjian.notifications.outbox import FileOutbox
from anjian.notifications.outgoing import Sender


def _smtp(values: Values, outbox: FileOutbox) -> Sender:
    from anjian.notifications.smtp import SmtpChannel, SmtpConfig  # smtplib and ssl only where SMTP is made

    return SmtpChannel(SmtpConfig(values.value("smtp_host"), values.value("smtp_port"), values.value("smtp_security"),
                                  values.value("smtp_user"), values.value("smtp_password")))


def _outbox(values: Values, outbox: FileOutbox) -> Sender:
    return outbox


CHANNEL = Channel(
    name="email",
    contact_field="email",
    templates={"subject": "subject.{}.txt.j2", "text": "notice.{}.txt.j2", "html": "notice.{}.html.j2"},
    body="text",
    html="html",
    senders={FileOutbox.name: _outbox, "smtp": _smtp},
    transport=lambda values: str(values.value("channel")),
    settings=(
        Setting("channel", "notify", "channel", "ANJIAN_CHANNEL", "file", allowed=(FileOutbox.name, "smtp")),
        Setting("sender", "notify", "sender", "ANJIAN_MAIL_FROM", ""),  # "": the campaign's issuer
        Setting("smtp_host", "smtp", "host", "ANJIAN_SMTP_HOST", "localhost"),
        Setting("smtp_port", "smtp", "port", "ANJIAN_SMTP_PORT", 25, int),
        Setting("smtp_security", "smtp", "security", "ANJIAN_SMTP_SECURITY", "none", allowed=("none", "starttls", "tls")),
        Setting("smtp_user", "smtp", "user", "ANJIAN_SMTP_USER"),
        Setting("smtp_password", "smtp", "password", "ANJIAN_SMTP_PASSWORD"),
    ),
)
