"""Delivery channels: a file outbox (the default), SMTP and a group-robot webhook.

Each raises `Transient` for a failure worth retrying (a server down, a 4xx SMTP reply, HTTP 5xx/429)
and `Permanent` for one that retrying cannot fix (an address refused, HTTP 4xx, a bad robot key).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import pickle
import queue
import secrets
import signal
import smtplib
import ssl
import subprocess
import sys
import tempfile
import threading
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from pathlib import Path

from anjian.notifications import faults


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


def email_outgoing(notice_id: str, address: str, recipient_name: str, subject: str, stored: str | None,
                   body: str | None, html: str | None, sender: str, sent_at: object) -> Outgoing:
    """The e-mail of a claimed notice, its text and HTML rendered from its stored content."""
    text, html = email_parts(stored, body, html)
    return Outgoing(notice_id, address, recipient_name, subject, text, html, text, sender, sent_at)


def email_parts(stored: str | None, body: str | None = None, html: str | None = None) -> tuple[str, str | None]:
    """An e-mail's text and HTML, rendered from a notice's stored content (a notice claimed before schema
    0004 has none: its stored `body` and `html` are used)."""
    if stored is None:
        return body or "", html
    from anjian.notifications.render import parts_of

    parts = parts_of(stored, ("text", "html"))
    return parts["text"], parts["html"]


LINE = 78  # columns a header line is folded to (RFC 5322's "should")


def _plain(text: str) -> bool:
    """Text that may stand in a header as it is: printable ASCII that no reader takes for an encoded word."""
    return text.isascii() and text.isprintable() and "=?" not in text


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


@lru_cache(maxsize=16)
def _sender(sender: str) -> tuple[str, str]:
    """The configured sender's display name and address (an unreadable one: both empty)."""
    display, address = parseaddr(sender)
    return (display, address) if address and address.isascii() else ("", "")


def _base64_body(text: str) -> str:
    """The text as the e-mail package sends it: its lines joined by LF with one at the end, base64 in
    lines of 76 columns."""
    return base64.encodebytes(b"\n".join(text.encode("utf-8").splitlines()) + b"\n").decode("ascii")


def _boundary(notice_id: str) -> str:
    """The same boundary for the same notice (a rewritten message is byte for byte the same), in the
    e-mail package's form; fifteen `=` in a row never occur in base64."""
    digits = int.from_bytes(hashlib.sha256(notice_id.encode("utf-8")).digest()[:8], "big") % 10**19
    return f"==============={digits:019d}=="


def message_bytes(o: Outgoing) -> bytes:
    """An RFC 5322 message, UTF-8, plain text with an HTML alternative, as bytes with LF line ends.

    Written out directly rather than through `email.message.EmailMessage`, whose header folding costs
    milliseconds a message (a national pass writes tens of thousands); the e-mail package reads it back
    to the same subject, addresses and parts (tests/test_channels.py checks that)."""
    display, address = _sender(o.sender)
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
    b = _boundary(o.notice_id)
    html = 'Content-Type: text/html; charset="utf-8"\nContent-Transfer-Encoding: base64\nMIME-Version: 1.0\n'
    return ("\n".join(head) + f'\nContent-Type: multipart/alternative;\n boundary="{b}"\n\n'
            f"--{b}\n{text}\n{_base64_body(o.text)}\n--{b}\n{html}\n{_base64_body(o.html)}\n--{b}--\n").encode("ascii")


def email_message(o: Outgoing) -> EmailMessage:
    """The message as the e-mail package reads it (what a mail client sees)."""
    return message_from_bytes(message_bytes(o), policy=policy.default)


class FileOutbox:
    """One `<notice id>.eml` file per message, written atomically: a file that exists is complete.

    `send_many` writes a chunk of messages with one flush to disk for all of them: each message goes to
    a temporary file, then one sync makes the data of all of them durable, then each is renamed to its
    name and the folder is synced once. So a name appears only over complete, durable data (also after
    a power cut), and the caller marks the notices sent only when `send_many` has returned.
    """

    name = "file"

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def path(self, notice_id: str) -> Path:
        return self.folder / f"{notice_id}.eml"

    def delivered(self, notice_id: str) -> bool:
        return self.path(notice_id).exists()

    def send(self, o: Outgoing) -> None:
        (problem,) = self.send_many([o])
        if problem is not None:
            raise problem

    def send_many(self, messages: list[Outgoing]) -> list[Transient | None]:
        """Write each message once (a finished file, left by a pass that died before marking it, is not
        written again); the outcome per message: None when its file is in place and durable, else the
        Transient to retry it with."""
        out: list[Transient | None] = [None] * len(messages)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return [self._problem(exc)] * len(messages)
        written: list[tuple[int, str, str]] = []
        for i, o in enumerate(messages):
            target = os.path.join(self.folder, f"{o.notice_id}.eml")
            if os.path.exists(target):  # written by a pass that died before marking it: not again
                continue
            try:
                written.append((i, self._temporary(o), target))
            except OSError as exc:
                out[i] = self._problem(exc)
            faults.point("before_rename")  # the message is complete in its temporary file, not yet named
        if not written:
            return out
        try:
            _sync_data(self.folder, [tmp for _, tmp, _ in written])
        except OSError as exc:
            for i, tmp, _ in written:
                Path(tmp).unlink(missing_ok=True)
                out[i] = self._problem(exc)
            return out
        named = []
        for i, tmp, target in written:
            try:
                os.replace(tmp, target)
            except OSError as exc:
                Path(tmp).unlink(missing_ok=True)
                out[i] = self._problem(exc)
                continue
            named.append(i)
            faults.point("after_send")  # delivered (the name is there), not yet marked
        try:
            _sync_folder(self.folder)
        except OSError as exc:  # the names may not be durable: retried, the finished files are then kept
            for i in named:
                out[i] = self._problem(exc)
        return out

    def _temporary(self, o: Outgoing) -> str:
        """The message in a new temporary file (`.<id>.<token>.tmp`, which readers of the outbox skip);
        its data is not yet synced."""
        data = message_bytes(o)
        tmp = os.path.join(self.folder, f".{o.notice_id}.{_TOKEN}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:  # left by a dead process that had this one's token: a name of its own
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=f".{o.notice_id}.", suffix=".tmp")
        try:
            try:
                _write_all(fd, data[: len(data) // 2])
                faults.point("during_write")
                _write_all(fd, data[len(data) // 2 :])
            finally:
                os.close(fd)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return tmp

    def _problem(self, exc: OSError) -> Transient:
        return Transient(f"outbox {self.folder}: {exc.strerror or exc}")


class OutboxWriter:
    """Rendering e-mails and `FileOutbox.send_many` in a helper process, so that a pass claims its next
    chunk while this one is rendered and the disk takes it. (A thread cannot do it: the GIL would pass
    to and fro at each of a chunk's thousands of system calls.) `submit` hands it a chunk of claimed
    notices (their stored content, see `email_outgoing`), `collect` waits for that chunk's outcomes.

    The chunks go to it on its stdin and the outcomes come back on its stdout, pickled, between the two
    processes of one pass only. A thread of its own takes chunks off the pipe as they come, so the pass
    can hand it the next ones (up to `DEPTH` not yet collected) without waiting for the one under way;
    it writes every chunk waiting with the one it takes (up to `GROUP_MAX`) under one sync. It ignores
    SIGINT and SIGTERM — the pass ends it by closing its stdin — and dies with the pass: PR_SET_PDEATHSIG
    on Linux, elsewhere when its stdin closes, after the chunks it holds (a file it then writes is the
    same, byte for byte, as the one the next pass would write). A fault point it reaches kills the pass
    too (ANJIAN_PASS_PID): the two are one pass."""

    DEPTH = 8  # chunks handed over and not yet collected, at most: a slow start of the disk is absorbed

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self._greeted: bool | None = None

    @classmethod
    def start(cls, outbox: FileOutbox) -> OutboxWriter | None:
        """The writer, or None where it cannot be started (the pass then writes its chunks itself)."""
        env = {**os.environ, "ANJIAN_PASS_PID": str(os.getpid())}
        try:
            proc = subprocess.Popen([sys.executable, "-c", "from anjian.notifications.channels import _serve; _serve()"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        except OSError:
            return None
        writer = cls(proc)
        try:
            writer._put((str(outbox.folder), os.getpid()))
        except RuntimeError:  # it ended already
            writer.close()
            return None
        return writer

    def _put(self, obj: object) -> None:
        try:
            pickle.dump(obj, self.proc.stdin, protocol=pickle.HIGHEST_PROTOCOL)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise RuntimeError(self._ended()) from None

    def usable(self) -> bool:
        """Whether the writer came up (it greets once its imports are done; a Python that cannot run it,
        as in a frozen build, ends at once): if not, the pass writes its chunks itself."""
        if self._greeted is None:
            try:
                self._greeted = pickle.load(self.proc.stdout) == ("ok", "ready")
            except Exception:  # noqa: BLE001 - it ended, or what it said is not ours: not usable
                self._greeted = False
        return self._greeted

    def submit(self, letters: list[tuple]) -> None:
        """Hand over a chunk of e-mails to render and write, each as the arguments of `email_outgoing`
        (tuples: a pickled dataclass costs several times as much)."""
        self._put(letters)

    def collect(self) -> list[Transient | None]:
        try:
            kind, value = pickle.load(self.proc.stdout)
        except EOFError:
            raise RuntimeError(self._ended()) from None
        if kind != "ok":
            raise RuntimeError(f"the outbox writer process failed:\n{value}")
        return [None if problem is None else Transient(problem) for problem in value]

    def _ended(self) -> str:
        return f"the outbox writer process ended (exit {self.proc.wait()}); the next pass finishes what it had claimed"

    def close(self) -> None:
        with suppress(OSError):
            self.proc.stdin.close()
        self.proc.wait()
        self.proc.stdout.close()


def _serve() -> None:
    """The writer process (see `OutboxWriter`): chunks in, outcomes out, until its stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print goes to stderr, not into the replies
    inp = sys.stdin.buffer
    try:
        folder, parent = pickle.load(inp)
    except EOFError:
        return
    if os.getppid() != parent:
        return  # the pass is gone already
    outbox = FileOutbox(Path(folder))
    from anjian.notifications import render

    render.template("text", "zh")  # the templates loaded (and compiled) while the pass plans its first chunk
    pickle.dump(("ok", "ready"), out)
    out.flush()
    chunks: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_read_chunks, args=(inp, chunks), daemon=True).start()
    done = False
    while not done:
        group = [chunks.get()]
        # The chunks waiting already are written with this one, under one sync: when the disk is slow the
        # writer falls behind, and then it syncs less often and catches up.
        while group[-1] is not None and len(group) < GROUP_MAX:
            try:
                group.append(chunks.get_nowait())
            except queue.Empty:
                break
        if group[-1] is None:
            done = True
            group.pop()
        if not group:
            break
        try:
            problems = outbox.send_many([email_outgoing(*row) for rows in group for row in rows])
            texts = [None if p is None else str(p) for p in problems]
            replies: list[tuple[str, object]] = []
            for rows in group:
                replies.append(("ok", texts[: len(rows)]))
                texts = texts[len(rows):]
        except Exception:  # noqa: BLE001 - a bug, reported to the pass, which raises it
            replies = [("error", traceback.format_exc(limit=-3))] * len(group)
        for reply in replies:
            pickle.dump(reply, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


GROUP_MAX = 8  # chunks the writer writes under one sync, at most


def _read_chunks(inp, chunks: queue.SimpleQueue) -> None:
    """The writer's reader thread: takes each chunk off the pipe as the pass sends it, so the pass does
    not wait, pipe-full, for the chunk before to be written (it sleeps in `read` while the writer works);
    None when the pass closes the pipe."""
    try:
        while True:
            chunks.put(pickle.load(inp))
    except Exception:  # noqa: BLE001 - EOF (the pass closed it), or a broken pipe: no more chunks
        chunks.put(None)


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when the pass that started it dies (PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


_TOKEN = secrets.token_hex(4)  # this process's part of its temporary files' names


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _load_syncfs() -> Callable[[int], int] | None:
    """syncfs(2): flush one file system (every file's data and metadata) in one call — on Linux."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        fn = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int

    def syncfs(fd: int) -> int:
        if fn(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return 0

    return syncfs


_syncfs = _load_syncfs()


def _sync_data(folder: Path, paths: list[str]) -> None:
    """Make the data of these files durable: one syncfs of the outbox's file system where there is one
    (per-file fsync costs a journal commit each), otherwise an fsync of each file."""
    if _syncfs is not None:
        fd = os.open(folder, os.O_RDONLY)
        try:
            _syncfs(fd)
        finally:
            os.close(fd)
        return
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
                # on the wire every line ends in CRLF (smtplib converts text, not bytes)
                smtp.sendmail(_sender(o.sender)[1], [o.address], message_bytes(o).replace(b"\n", b"\r\n"))
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
