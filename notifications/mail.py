"""E-mail messages: built with the standard library's `email` package, and, for the file outbox alone,
written out directly (the fast path below: a national pass writes tens of thousands).

Both give the same message as a mail client reads it: subject, sender, recipient, date, Message-ID and
a UTF-8 plain-text part with an HTML alternative (tests/test_channels.py parses them).
"""

from __future__ import annotations

import base64
import hashlib
from email import policy
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache

from anjian.notifications.outgoing import Outgoing

LINE = 78  # columns a header line is folded to (RFC 5322's "should")


@lru_cache(maxsize=16)
def sender_address(sender: str) -> tuple[str, str]:
    """The configured sender's display name and address (an unreadable one: both empty)."""
    display, address = parseaddr(sender)
    return (display, address) if address and address.isascii() else ("", "")


def boundary(notice_id: str) -> str:
    """The same boundary for the same notice (a rewritten message is byte for byte the same), in the
    e-mail package's form; fifteen `=` in a row never occur in base64."""
    digits = int.from_bytes(hashlib.sha256(notice_id.encode("utf-8")).digest()[:8], "big") % 10**19
    return f"==============={digits:019d}=="


def _plain(text: str) -> bool:
    """Text that may stand in a header as it is: printable ASCII that no reader takes for an encoded word."""
    return text.isascii() and text.isprintable() and "=?" not in text


def build_message(o: Outgoing) -> EmailMessage:
    """The message, built by the e-mail package (what SMTP sends)."""
    msg = EmailMessage(policy=policy.default)
    if _plain(o.subject):
        msg["Subject"] = o.subject
    else:
        # Stored as encoded words: the e-mail package would decode text that only looks like one
        # (=?utf-8?q?...?=) when the header is set, and would write such text back unprotected.
        msg.set_raw("Subject", Header(o.subject, "utf-8", header_name="Subject").encode(linesep="\n"))
    display, address = sender_address(o.sender)
    msg["From"] = Address(display, addr_spec=address) if address else o.sender
    msg["To"] = Address(o.recipient_name, addr_spec=o.address)
    msg["Date"] = o.sent_at
    msg["Message-ID"] = f"<{o.notice_id}@anjian>"
    msg["X-Anjian-Notice"] = o.notice_id
    msg.set_content(o.text, charset="utf-8", cte="base64")
    if o.html:
        msg.add_alternative(o.html, subtype="html", charset="utf-8", cte="base64")
        msg.set_boundary(boundary(o.notice_id))
    return msg


# -- the fast path, for the file outbox only ---------------------------------------------------------
# Measured (benchmarks/notices.py, typical notices, on the shared 2-core test machine): the fast path
# 53 µs a message, 2.3 s for 44,000; `build_message(o).as_bytes()` 4.2 ms a message (7.2 ms under load),
# so about 184 s for 44,000 (timed on 4,000). A national pass must finish in under 10 s, so the outbox
# writes its files with `message_bytes`; SMTP, a message at a time over the network, uses the e-mail
# package.


def _encoded_words(text: str, first: int, rest: int = LINE - 1) -> list[str]:
    """RFC 2047 words (UTF-8, base64) carrying `text`, the first fitting in `first` columns and each later
    one on a line of its own; a word never splits a character. A reader joins them without spaces."""
    data, out, start, room = text.encode("utf-8"), [], 0, first
    while start < len(data):
        end = min(start + max((room - 12) // 4 * 3, 6), len(data))
        while end < len(data) and 0x80 <= data[end] < 0xC0:  # a continuation byte: cut before its character
            end -= 1
        out.append("=?utf-8?b?" + base64.b64encode(data[start:end]).decode("ascii") + "?=")
        start, room = end, rest
    return out or [""]


def _header(name: str, value: str) -> str:
    """`Name: value`, folded at 78 columns: plain ASCII at its spaces, anything else as encoded words."""
    if not _plain(value):
        return f"{name}: " + "\n ".join(_encoded_words(value, LINE - len(name) - 2))
    words = value.split(" ")
    lines, line = [], f"{name}: {words[0]}"
    for word in words[1:]:
        if word and len(line) + 1 + len(word) > LINE:
            lines.append(line)
            line = " " + word  # the fold keeps the space: unfolding gives the value back exactly
        else:
            line += " " + word
    return "\n".join([*lines, line])


@lru_cache(maxsize=4096)  # the sender on every message, a county's contact on hundreds
def _address_header(name: str, display: str, address: str) -> str:
    """`Name: display <address>`: a display name that is not plain ASCII travels as encoded words, so no
    character in it (quotes, <, commas) can add a recipient; a plain one is quoted where it needs it."""
    if not display:
        return f"{name}: {address}"
    if _plain(display):
        phrase = formataddr((display, address)).rsplit(" <", 1)[0]
        lines = [f"{name}: {phrase}"]
    else:
        lines = (f"{name}: " + "\n ".join(_encoded_words(display, LINE - len(name) - 2))).split("\n")
    tail = f" <{address}>"
    if len(lines[-1]) + len(tail) > LINE:
        lines.append(tail)
    else:
        lines[-1] += tail
    return "\n".join(lines)


def _base64_body(text: str) -> str:
    """The text as the e-mail package sends it: its lines joined by LF with one at the end, base64 in
    lines of 76 columns."""
    return base64.encodebytes(b"\n".join(text.encode("utf-8").splitlines()) + b"\n").decode("ascii")


def message_bytes(o: Outgoing) -> bytes:
    """The message as the outbox writes it: RFC 5322, UTF-8, plain text with an HTML alternative, LF line
    ends; the e-mail package reads it back as it reads `build_message` (see the figures above)."""
    display, address = sender_address(o.sender)
    head = [
        _header("Subject", o.subject),
        _address_header("From", display, address) if address else _header("From", o.sender),
        _address_header("To", o.recipient_name, o.address),
        f"Date: {format_datetime(o.sent_at)}",
        f"Message-ID: <{o.notice_id}@anjian>",
        f"X-Anjian-Notice: {o.notice_id}",
        "MIME-Version: 1.0",
    ]
    text = 'Content-Type: text/plain; charset="utf-8"\nContent-Transfer-Encoding: base64\n'
    if not o.html:
        return ("\n".join(head) + "\n" + text + "\n" + _base64_body(o.text)).encode("ascii")
    b = boundary(o.notice_id)
    html = 'Content-Type: text/html; charset="utf-8"\nContent-Transfer-Encoding: base64\nMIME-Version: 1.0\n'
    return ("\n".join(head) + f'\nContent-Type: multipart/alternative;\n boundary="{b}"\n\n'
            f"--{b}\n{text}\n{_base64_body(o.text)}\n--{b}\n{html}\n{_base64_body(o.html)}\n--{b}--\n").encode("ascii")
