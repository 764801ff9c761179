"""The middleware around every request of `anjian serve` (pure ASGI, cheap): a request id (a sane
incoming X-Request-ID, else a new one; echoed), one JSON log line per request, the metrics, the security
headers, and the body limit of a request that is not an upload.

Every answer says in `Server-Timing: app;dur=MS` how long the app took to start it (the route's
work, the page rendered), so that a client can tell the server's time from the network's.

The log line holds the method, the path without its query string (it may hold names), the status, the
time taken, the client's address and the official when known; never a token, password or cookie."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
import uuid
from contextvars import ContextVar

ACCESS = logging.getLogger("anjian.access")
REQUEST_ID: ContextVar[str | None] = ContextVar("anjian_request_id", default=None)
_SANE_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_EXIT = re.compile(rb'^\{"(?:error":\{")?exit":\s*(\d+)')
API = "/api/v1/"
_FIXED = {"signin", "signout", "me", "uploads", "openapi.json"}
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'"),
]
HSTS = (b"strict-transport-security", b"max-age=31536000")


class JsonFormatter(logging.Formatter):
    """A log record as one JSON object: ts, level, the request id when there is one, the message, and the
    fields a record carries in `fields` (the access log's)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name}
        rid = getattr(record, "request_id", None) or REQUEST_ID.get()
        if rid:
            line["request_id"] = rid
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        else:
            line["message"] = record.getMessage()
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def log_config(level: str = "INFO", log_file: str | None = None) -> dict:
    """The logging setup of `anjian serve` (given to uvicorn, which applies it): every logger as JSON
    lines on stderr (and `log_file`); uvicorn's own access log off (ours replaces it)."""
    handlers: dict = {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}}
    if log_file:
        handlers["file"] = {"class": "logging.FileHandler", "formatter": "json", "filename": log_file,
                            "encoding": "utf-8"}
    names = list(handlers)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": handlers,
        "root": {"handlers": names, "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "apscheduler": {"level": "WARNING"},
            "transitions": {"level": "WARNING"},
        },
    }


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-ID when it is sane (1–64 of A–Z a–z 0–9 -), else a new one."""
    for name, value in headers:
        if name == b"x-request-id":
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                break
            if _SANE_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


def route_of(path: str) -> str:
    """The path as a metrics label: a bounded set (a command's name, never a unit code or an id)."""
    if not path.startswith(API):
        return path if path in ("/", "/healthz", "/readyz", "/metrics", "/login", "/logout", "/password") else "other"
    rest = [p for p in path[len(API):].split("/") if p]
    if not rest:
        return "other"
    if rest[0] in _FIXED:
        return API + rest[0]
    if rest[0] == "downloads":
        return API + "downloads/{id}"
    from anjian.workflow.cli import COMMANDS

    if rest[0] not in COMMANDS:
        return API + "?"
    words = [rest[0]] + [w for w in rest[1:2] if re.fullmatch(r"[a-z][a-z-]{0,23}", w)]
    return API + "/".join(words)


class Observe:
    """The ASGI middleware. `app.state` of the wrapped Starlette app gives the service and its metrics."""

    def __init__(self, app, state, metrics, *, tls: bool = False):
        self.app = app
        self.state = state  # server.app.ServiceState
        self.metrics = metrics  # server.ops.Metrics
        self.tls = tls

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        rid = request_id(scope.get("headers", []))
        token = REQUEST_ID.set(rid)
        path = scope.get("path", "")
        route = route_of(path)
        seen = {"status": 500, "exit": None, "started": False, "logged": False}
        secure = self.tls or scope.get("scheme") == "https"
        self.metrics.in_flight.inc()

        async def send_wrapped(message):
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                seen["started"] = True
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                headers.append((b"x-request-id", rid.encode()))
                present = {h[0].lower() for h in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                # the app's own time to the answer's start, for a browser's devtools and benchmarks/pages.py
                took = (time.perf_counter() - started) * 1000
                headers.append((b"server-timing", f"app;dur={took:.1f}".encode()))
                if secure:
                    headers.append(HSTS)
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body" and seen["exit"] is None and route.startswith(API):
                match = _EXIT.match(message.get("body", b"")[:64])
                seen["exit"] = int(match.group(1)) if match else (0 if seen["status"] < 400 else -1)
            if message["type"] == "http.response.body" and not message.get("more_body", False) and not seen["logged"]:
                # logged before the last byte leaves: whoever has the answer can read its log line
                seen["logged"] = True
                self._account(scope, route, rid, seen, time.perf_counter() - started)
            await send(message)

        try:
            if scope.get("method") in ("POST", "PUT", "PATCH") and route != API + "uploads":
                receive = await self._limited(scope, receive, send_wrapped)
                if receive is None:
                    return
            await self.app(scope, receive, send_wrapped)
        except Exception:
            ACCESS.exception("unhandled error", extra={"request_id": rid})
            if not seen["started"]:
                await send_wrapped({"type": "http.response.start", "status": 500,
                                    "headers": [(b"content-type", b"application/json")]})
                await send_wrapped({"type": "http.response.body",
                                    "body": b'{"error": {"exit": 1, "message": "internal error", "details": []}}'})
        finally:
            self.metrics.in_flight.dec()
            if not seen["logged"]:
                self._account(scope, route, rid, seen, time.perf_counter() - started)
            REQUEST_ID.reset(token)

    async def _limited(self, scope, receive, send):
        """The body read up to config.max_body_bytes and replayed; over it, 413 and None."""
        limit = self.state.config.max_body_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _too_large(send)
                return None
        messages, size = [], 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > limit:
                await _too_large(send)
                return None
            if not message.get("more_body", False):
                break
        queue = list(messages)

        async def replay():
            return queue.pop(0) if queue else await receive()

        return replay

    def _account(self, scope, route, rid, seen, seconds) -> None:
        status = seen["status"]
        method = scope.get("method", "")
        m = self.metrics
        m.requests.labels(method=method, route=route, status=str(status)).inc()
        m.seconds.labels(route=route).observe(seconds)
        if route.startswith(API) and route[len(API):].split("/")[0] not in (_FIXED | {"downloads", "?"}) \
                and seen["exit"] is not None and status != 413:
            m.commands.labels(command=route[len(API):].replace("/", " "), exit=str(seen["exit"])).inc()
        if route == API + "signin" or (route == "/login" and method == "POST"):
            m.signins.labels(result="ok" if status < 400 else "refused").inc()
        client = scope.get("client")
        state = scope.get("state") or {}
        fields = {"request_id": rid, "method": method, "path": scope.get("path", ""), "status": status,
                  "ms": round(seconds * 1000, 1), "client": client[0] if client else None}
        official = state.get("official")
        if official:
            fields["official"] = str(getattr(official, "name", official))
        ACCESS.log(logging.ERROR if status >= 500 else logging.INFO, "request", extra={"fields": fields})
        if seen["exit"] == 1:
            ACCESS.error("a command failed unexpectedly (internal error; see anjian-error.log)",
                         extra={"request_id": rid})


async def _too_large(send) -> None:
    from anjian.i18n import _

    body = json.dumps({"error": {"exit": 2, "message": _("the request is too large"), "details": []}},
                      ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
