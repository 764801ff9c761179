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

from anjian.workflow.server import files, openapi
from anjian.workflow.server.config import ServiceConfig

API = "/api/v1"
CLI_MEDIA = "application/vnd.anjian.cli+json"  # the CLI client's answer: stdout, stderr, exit code, files
from anjian.workflow.server.runner import HTTP_STATUS as STATUS  # noqa: E402 - the contract's exit codes as HTTP statuses


@dataclass
class ServiceState:
    """What every request shares: the settings, the one Database, the service's own settings."""

    settings: object  # workflow.settings.Settings
    db: object  # store.db.Database
    config: ServiceConfig
    proxy_networks: list = field(default_factory=list)
    drill: bool | None = None  # whether the database is a drill (`init --drill`), read on the first command
    campaign: object = None  # the campaign in force as last read (states.campaign.Campaign), for the pages' words
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
    from anjian.workflow.server import auth, files, runner

    state: ServiceState = request.app.state.service
    who = await auth.principal(request)
    if (refused := auth.refusal(request, who)) is not None:
        return refused
    path = [p for p in request.path_params["path"].split("/") if p]
    cmd = _command(request, path)
    if isinstance(cmd, Response):
        return cmd
    params = await _params(request, state)
    if isinstance(params, Response):
        return params
    wants_cli = CLI_MEDIA in request.headers.get("accept", "")
    if not wants_cli and "format" in {runner.api_name(p) for p in runner.api_params(cmd)}:
        params.setdefault("format", "json")
    page = None
    if not wants_cli:
        try:
            page = _page(request, params)
        except BadInput as exc:
            return error(2, exc.message, list(exc.details))
    if request.headers.get("if-match") and tuple(path) in IF_MATCH:
        stale = await run_in_threadpool(_stale, state.db, path, params, request.headers["if-match"])
        if stale is not None:
            return error(stale[0], stale[1])
    typed, sheet = params.pop("client_files", None) or {}, params.pop("sheet_evidence", None) or {}
    workspace = files.workspace(state)
    try:
        try:
            if not isinstance(typed, dict) or not isinstance(sheet, dict):
                raise BadInput(_("client_files and sheet_evidence are objects of upload ids"))
            params = files.prepare(state, who.actor.name, path, params, workspace, typed, sheet)
            argv = runner.argv_of(cmd, params)
        except BadInput as exc:
            return error(2, exc.message, list(exc.details))
        if state.drill is None:  # a database is a drill or not from its init on: asked once
            from anjian.workflow.services.registry import drill_of

            state.drill = bool(await run_in_threadpool(drill_of, state.db))
        call = runner.Call(state.settings, state.db, who.actor, state.drill)
        lang = _language(request)
        columns = request.headers.get("x-anjian-columns")
        width = int(columns) if columns and columns.isdigit() else None
        outcome = await run_in_threadpool(runner.run, path, argv, call, lang=lang, columns=width, workspace=workspace)
        made = await run_in_threadpool(files.publish, state, who.actor.name, workspace)
    finally:
        workspace.close()
    if wants_cli:
        return JSONResponse({"exit": outcome.exit, "stdout": outcome.stdout, "stderr": outcome.stderr, "files": made},
                            status_code=STATUS.get(outcome.exit, 500), media_type=CLI_MEDIA)
    return _json_answer(request, path, outcome, made, page)


def _command(request: Request, path: list[str]):
    """The click command a request names, or the error answer: not a command of the API (404), or a
    write asked for with a GET (405)."""
    from anjian.i18n import _
    from anjian.workflow.cli.remote import LOCAL_ONLY
    from anjian.workflow.server import runner

    # what runs on the server's own machine only; `user passwd` refuses itself (its own words, exit 2)
    local = " ".join(path) in LOCAL_ONLY - {"user passwd"}
    found = None if local else runner.find(path)
    if found is None:
        return error(2, _("no such command: {name}").format(name=" ".join(path)), status=404)
    if request.method != "POST" and not runner.reads_only(path):
        return error(2, _("{name} changes the campaign: send it as a POST").format(name=" ".join(path)), status=405)
    return found[0]


async def _params(request: Request, state: ServiceState) -> dict | Response:
    """The command's parameters: a POST's JSON object, or a GET's query string."""
    from anjian.i18n import _

    if request.method != "POST":
        return {k: (v if len(vs := request.query_params.getlist(k)) == 1 else vs)
                for k, v in request.query_params.items()}
    body = await request.body()
    if len(body) > state.config.max_body_bytes:
        return error(2, _("the request is too large"), status=413)
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return error(2, _("the request body is not JSON"))
    if not isinstance(params, dict):
        return error(2, _("the request body must be a JSON object of the command's parameters"))
    return params


def _json_answer(request: Request, path: list[str], outcome, made: list[dict], page) -> Response:
    """A program's answer: the command's JSON (paged when a list; `show` with its ETag), or its error."""
    if outcome.exit != 0:
        code, message, details = outcome.failure or (outcome.exit, outcome.stderr.strip(), [])
        return error(outcome.exit, message, details)
    try:
        body = json.loads(outcome.stdout) if outcome.stdout.strip() else None
    except ValueError:
        return JSONResponse({"output": outcome.stdout, "messages": outcome.stderr, "files": made})
    if body is None and (made or outcome.stderr):  # wrote a file (--out): what it said, and the download
        return JSONResponse({"output": "", "messages": outcome.stderr, "files": made})
    headers = {}
    if path == ["show"] and isinstance(body, dict) and "code" in body and "version" in body:
        headers["ETag"] = etag(body["code"], body["version"])
    if isinstance(body, list) and page is not None:
        limit, offset = page
        headers["X-Total-Count"] = str(len(body))
        if offset + limit < len(body):
            headers["Link"] = '<{url}>; rel="next"'.format(url=request.url.include_query_params(
                limit=limit, offset=offset + limit))
        body = body[offset:offset + limit]
    return JSONResponse(body, headers=headers)


# Commands whose answer is a list: paged on the API (`limit`, `offset`), never on the CLI.
PAGE_DEFAULT, PAGE_MOST = 100, 1000
# Writes that take `If-Match: W/"CODE-vN"` (the ETag of `show`): refused (409, exit 5) when the unit moved on.
IF_MATCH = {("advance",), ("record",), ("designate",)}


def etag(code: str, version: int) -> str:
    return f'W/"{code}-v{version}"'


def _page(request: Request, params: dict) -> tuple[int, int]:
    """`limit` (default 100, at most 1000) and `offset` from the query string (a GET's params lose them)."""
    from anjian.i18n import _
    from anjian.workflow.errors import BadInput

    values = []
    for name, default, most in (("limit", PAGE_DEFAULT, PAGE_MOST), ("offset", 0, None)):
        text = request.query_params.get(name)
        if request.method == "GET":
            params.pop(name, None)
        if text is None:
            values.append(default)
            continue
        if not text.isdigit() or (name == "limit" and int(text) == 0) or (most is not None and int(text) > most):
            raise BadInput(_("{name}={value}: give a whole number (limit 1 to {most}, offset 0 or more)")
                           .format(name=name, value=text, most=PAGE_MOST))
        values.append(int(text))
    return values[0], values[1]


def _stale(db, path: list[str], params: dict, header: str) -> tuple[int, str] | None:
    """(exit, message) when `If-Match` does not match the unit's ETag now; sets expect_version for the
    command itself to check again in its own transaction (advance, record)."""
    import re

    from anjian.i18n import _
    from anjian.workflow.engine.names import Resolver
    from anjian.workflow.errors import BadInput, Conflict
    from anjian.workflow.services.advance import conflict_message
    from anjian.workflow.store.models import Unit

    found = re.fullmatch(r'\s*(?:W/)?"([^"]+)-v(\d+)"\s*', header)
    if found is None:
        return 2, _('If-Match: {value} is not an ETag of `show` (W/"CODE-vN")').format(value=header)
    unit = params.get("unit")
    if not isinstance(unit, str) or not unit:
        return 2, _("If-Match goes with one UNIT, not with --file")
    try:
        with db.read() as session:
            ref = Resolver(session).resolve(unit)
            if ref.code != found.group(1) or ref.version != int(found.group(2)):
                if ref.code != found.group(1):
                    return 5, _("If-Match names {tagged}, but the request is for {unit} ({code})").format(
                        tagged=found.group(1), unit=ref.name, code=ref.code)
                raise Conflict(conflict_message(session.get(Unit, ref.code), int(found.group(2))))
    except Conflict as exc:
        return 5, exc.message
    except BadInput as exc:
        return 2, exc.message
    if path[0] in ("advance", "record"):
        params.setdefault("expect_version", int(found.group(2)))
    return None


def _language(request: Request) -> str:
    header = request.headers.get("accept-language", "").lower()
    return "en" if header.startswith("en") else "zh"


def create_app(state: ServiceState) -> Starlette:
    """The application over an opened database (the caller upgrades and checks it first)."""
    from anjian.workflow.server import ops, signin, web
    from anjian.workflow.server.observe import Observe
    from anjian.workflow.server.web.base import SecurityHeaders

    state.proxy_networks = state.config.proxy_networks()
    routes = [
        *ops.routes(),  # /healthz, /readyz, /metrics
        *signin.routes(),
        *web.routes(),
        Route(API + "/openapi.json", openapi.route, methods=["GET"]),
        Route(API + "/uploads", files.upload_route, methods=["POST"]),
        Route(API + "/downloads/{ident}", files.download_route, methods=["GET"]),
        Route(API + "/{path:path}", command_route, methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.service = state
    app.add_middleware(SecurityHeaders)
    app.add_middleware(Observe, state=state, metrics=ops.metrics_of(app), tls=bool(state.config.ssl_certfile))
    return app
