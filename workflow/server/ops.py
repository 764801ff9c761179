"""The service's own health: `/healthz` (ready to serve), `/readyz` (the database answers and its schema
is this anjian's), `/metrics` (Prometheus text, from loopback and the `metrics_from` networks only).

The counters live in one Metrics object per application (its own CollectorRegistry, so that two services
in one test process never share a number); observe.py counts requests and commands, the reminder
scheduler its passes and notices."""

from __future__ import annotations

import ipaddress

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class Metrics:
    """The counters of one service process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("anjian_requests", "HTTP requests answered", ["method", "route", "status"], registry=r)
        self.in_flight = Gauge("anjian_requests_in_flight", "Requests being answered now", registry=r)
        self.seconds = Histogram("anjian_request_seconds", "Time to answer a request", ["route"], registry=r)
        self.commands = Counter("anjian_commands", "Commands run through the API", ["command", "exit"], registry=r)
        self.passes = Counter("anjian_reminder_passes", "Reminder passes run by the scheduler", registry=r)
        self.notices = Counter("anjian_notices", "Notices handled by reminder passes", ["kind", "channel", "status"],
                               registry=r)
        self.signins = Counter("anjian_signins", "Sign-in attempts by result", ["result"], registry=r)

    def reminder_pass(self, result, retry_only: bool) -> None:
        """Count one pass of the scheduler (daemon.Daemon's on_pass)."""
        if not retry_only:
            self.passes.inc()
        for status, sent in (("sent", result.sent), ("deferred", result.deferred), ("failed", result.failed)):
            for s in sent:
                self.notices.labels(kind=str(s.kind), channel=str(s.channel), status=status).inc()


def metrics_of(app) -> Metrics:
    """The application's Metrics (made on first use)."""
    found = getattr(app.state, "metrics", None)
    if found is None:
        found = app.state.metrics = Metrics()
    return found


def metrics_allowed(address: str, networks) -> bool:
    """Whether `address` may read /metrics without signing in: loopback, or inside one of `networks`."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_loopback or any(ip in n for n in networks)


def metrics_networks(config) -> list:
    return [ipaddress.ip_network(n, strict=False) for n in getattr(config, "metrics_from", ()) or ()]


async def healthz(request: Request) -> Response:
    """200 {"ok": true} once the service is ready; 503 while it starts or stops (the contract)."""
    state = request.app.state.service
    ready = state.ready and not state.stopping
    return JSONResponse({"ok": ready}, status_code=200 if ready else 503)


def _database_ready(db) -> str | None:
    """None when the database answers a SELECT and its schema is current, else why not."""
    from sqlalchemy import text

    from anjian.workflow.store.db import SCHEMA_HEAD

    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = db.current_revision()
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready", named for the operator
        return f"database: {exc.__class__.__name__}"
    if revision != SCHEMA_HEAD:
        return f"schema {revision}, needs {SCHEMA_HEAD}"
    return None


async def readyz(request: Request) -> Response:
    state = request.app.state.service
    problem = await run_in_threadpool(_database_ready, state.db)
    if problem is None and not state.stopping:
        return JSONResponse({"ok": True})
    return JSONResponse({"ok": False, "problem": problem or "stopping"}, status_code=503)


async def metrics(request: Request) -> Response:
    state = request.app.state.service
    address = request.client.host if request.client else ""
    check = state.metrics_check or (
        lambda a: metrics_allowed(a, metrics_networks(state.config)))
    if not check(address):
        from anjian.i18n import _

        body = {"error": {"exit": 4, "message": _("metrics are served only to loopback and [service] metrics_from"),
                          "details": []}}
        return JSONResponse(body, status_code=403)
    return Response(generate_latest(metrics_of(request.app).registry), media_type=CONTENT_TYPE_LATEST)


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
