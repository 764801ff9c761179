"""The ASGI application of `anjian serve` (Starlette): the command API under /api/v1, sign-in, health.

Every route only translates: it finds the principal, turns the request into a command's parameters,
runs the command body the CLI runs (server/runner), and turns its outcome into an HTTP answer. No rule
of the campaign is decided here."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from anjian.workflow.server.config import ServiceConfig

API = "/api/v1"
CLI_MEDIA = "application/vnd.anjian.cli+json"  # the CLI client's answer: stdout, stderr, exit code, files
# The contract's exit codes as HTTP statuses.
STATUS = {0: 200, 1: 500, 2: 400, 3: 409, 4: 403, 5: 409, 6: 409}


@dataclass
class ServiceState:
    """What every request shares: the settings, the one Database, the service's own settings."""

    settings: object  # workflow.settings.Settings
    db: object  # store.db.Database
    config: ServiceConfig
    proxy_networks: list = field(default_factory=list)
    ready: bool = False
    stopping: bool = False  # SIGTERM came: /healthz and /readyz answer 503 while requests in flight finish
    metrics_check: object = None  # who may read /metrics (an address -> bool); None: loopback and metrics_from


def error(exit_code: int, message: str, details: list[str] | None = None, status: int | None = None) -> JSONResponse:
    """An error as the API answers it: the contract's exit code beside the HTTP status."""
    body = {"error": {"exit": exit_code, "message": message, "details": details or []}}
    return JSONResponse(body, status_code=status or STATUS.get(exit_code, 500))


async def command_route(request: Request) -> Response:
    """`GET|POST /api/v1/COMMAND[/SUB]`: run one command as the signed-in official."""
    from anjian.i18n import _
    from anjian.workflow.errors import BadInput
    from anjian.workflow.server import auth, runner

    state: ServiceState = request.app.state.service
    who = await auth.principal(request)
    if (refused := auth.refusal(request, who)) is not None:
        return refused
    path = [p for p in request.path_params["path"].split("/") if p]
    found = runner.find(path)
    if found is None:
        return error(2, _("no such command: {name}").format(name=" ".join(path)), status=404)
    cmd, _names = found
    if request.method == "POST":
        body = await request.body()
        if len(body) > state.config.max_body_bytes:
            return error(2, _("the request is too large"), status=413)
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            return error(2, _("the request body is not JSON"))
        if not isinstance(params, dict):
            return error(2, _("the request body must be a JSON object of the command's parameters"))
    else:
        params = {k: (v if len(vs := request.query_params.getlist(k)) == 1 else vs)
                  for k, v in request.query_params.items()}
    wants_cli = CLI_MEDIA in request.headers.get("accept", "")
    if not wants_cli and "format" in {runner.api_name(p) for p in runner.api_params(cmd)}:
        params.setdefault("format", "json")
    try:
        argv = runner.argv_of(cmd, params)
    except BadInput as exc:
        return error(2, exc.message, list(exc.details))
    call = runner.Call(state.settings, state.db, who.actor)
    lang = _language(request)
    columns = request.headers.get("x-anjian-columns")
    width = int(columns) if columns and columns.isdigit() else None
    outcome = await run_in_threadpool(runner.run, path, argv, call, lang=lang, columns=width)
    status = STATUS.get(outcome.exit, 500)
    if wants_cli:
        return JSONResponse({"exit": outcome.exit, "stdout": outcome.stdout, "stderr": outcome.stderr},
                            status_code=status, media_type=CLI_MEDIA)
    if outcome.exit != 0:
        code, message, details = outcome.failure or (outcome.exit, outcome.stderr.strip(), [])
        return error(outcome.exit, message, details)
    try:
        return JSONResponse(json.loads(outcome.stdout) if outcome.stdout.strip() else None)
    except ValueError:
        return JSONResponse({"output": outcome.stdout, "messages": outcome.stderr})


def _language(request: Request) -> str:
    header = request.headers.get("accept-language", "").lower()
    return "en" if header.startswith("en") else "zh"


def create_app(state: ServiceState) -> Starlette:
    """The application over an opened database (the caller upgrades and checks it first)."""
    from anjian.workflow.server import ops, signin
    from anjian.workflow.server.observe import Observe

    state.proxy_networks = state.config.proxy_networks()
    routes = [
        *ops.routes(),  # /healthz, /readyz, /metrics
        *signin.routes(),
        Route(API + "/{path:path}", command_route, methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.service = state
    app.add_middleware(Observe, state=state, metrics=ops.metrics_of(app), tls=bool(state.config.ssl_certfile))
    return app
