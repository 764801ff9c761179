"""What every page of the web shares: who is signed in, running a command as them, rendering a template,
reading a form (its CSRF token checked, its size limited), files an official uploads with a form, and the
security headers of every HTML answer.

A page decides nothing of the campaign. It runs the CLI's own commands (server/runner) as the signed-in
official, with `--format json`, and renders what they answer: the same services, permissions, refusals
and audit as `anjian …` on a terminal or through the API. A page's data is therefore also the JSON a
program gets from `/api/v1/COMMAND` (Datasette's rule: every page has its JSON)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from anjian.i18n import _

# Nothing from another origin, no inline script or style, no framing; forms post only here.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
MAX_FORM_FIELDS = 400  # a township's checklist is under 60 items; a bulk form a few hundred fields
MAX_FORM_BYTES = 64 * 1024  # the text of one form (files are counted against max_upload_bytes each)
MAX_FORM_FILES = 60


@dataclass
class Answer:
    """What a command said to a page: its JSON on success, or the refusal (exit code, message, details)."""

    exit: int
    data: object = None
    message: str = ""
    details: list[str] = field(default_factory=list)
    stdout: str = ""
    files: list[dict] = field(default_factory=list)  # downloads the command wrote (server/files.publish)

    @property
    def ok(self) -> bool:
        return self.exit == 0

    @property
    def status(self) -> int:
        """The page's HTTP status for this exit code (the API's table, server/runner.HTTP_STATUS)."""
        from anjian.workflow.server.runner import HTTP_STATUS

        return HTTP_STATUS.get(self.exit, 500)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def language(request: Request) -> str:
    """zh unless the browser asks for English first (or ?lang=en)."""
    if request.query_params.get("lang") in ("en", "zh"):
        return request.query_params["lang"]
    return "en" if request.headers.get("accept-language", "").lower().startswith("en") else "zh"


def state(request: Request):
    return request.app.state.service


async def signed_in(request: Request):
    """(principal, None) for a page's official, or (None, the redirect to /login or /password)."""
    from anjian.i18n import set_language
    from anjian.workflow.server import auth

    set_language(language(request))  # this request's task alone (a context variable): titles, messages
    who = await auth.principal(request)
    if who is None or who.kind not in ("session", "proxy"):
        asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = "/login" if asked == "/" else "/login?next=" + quote(asked, safe="/")
        return None, RedirectResponse(target, status_code=303)
    if who.must_change:
        return None, RedirectResponse("/password", status_code=303)
    await campaign_words(request)
    return who, None


CAMPAIGN_COOKIE = "anjian_campaign"
_CAMPAIGN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


async def campaign_words(request: Request) -> None:
    """Name cohorts and milestones in this request's pages as the campaign they show does (a context
    variable, like the language): the one the official chose (`?campaign=ID`, then kept in a cookie), or
    the database's first. Each campaign's file is re-read only when it changed."""
    from anjian.states.labels import use_campaign

    st = state(request)
    asked = request.query_params["campaign"] if "campaign" in request.query_params else \
        request.cookies.get(CAMPAIGN_COOKIE)
    asked = asked if asked and _CAMPAIGN_ID.match(asked) else None
    known = st.campaign if isinstance(st.campaign, dict) else {}
    campaign, listing, chosen = await run_in_threadpool(_campaign_in_force, st.db, known, asked)
    request.state.campaigns = listing
    request.state.campaign_id = chosen
    if campaign is not None:
        st.campaign = {**known, campaign.id: campaign}
        use_campaign(campaign)


def _campaign_in_force(db, known: dict, asked: str | None):
    """(the campaign, [(id, title)] of the database's campaigns, the id chosen or None for the first): the
    campaign from `known` while its SHA-256 is still the one the database holds (small reads). An id the
    database does not run is taken as no choice."""
    from anjian.workflow.services.registry import campaign_in_force, meta
    from anjian.workflow.store import scope
    from anjian.workflow.store.models import CampaignRow

    with db.read() as session:
        sha = meta(session, "campaign_sha256")
        if sha is None:
            return None, [], None
        ids = scope.campaigns(session)
        chosen = asked if any(cid == asked for _n, cid in ids[1:]) else None
        with scope.chosen(chosen):
            no = scope.number(session)
            if no != scope.FIRST:
                sha = session.get(CampaignRow, no).sha256
            ids_titles = [(cid, _title(session, n)) for n, cid in ids] if len(ids) > 1 else []
            current = next((c for c in known.values() if c.sha256 == sha), None)
            return (current or campaign_in_force(session)), ids_titles, chosen


def _title(session, no: int) -> str:
    from anjian.workflow.services.registry import _campaign_from_text, meta
    from anjian.workflow.store.models import CampaignRow

    return _campaign_from_text(meta(session, "campaign")).title if no == 1 else session.get(CampaignRow, no).title


async def run(request: Request, who, path: list[str], params: dict | None = None, workspace=None) -> Answer:
    """Run `anjian PATH --format json …` as `who`; its JSON, or its refusal, as an Answer."""
    from anjian.workflow.server import files, runner

    st = state(request)
    params = dict(params or {})
    if getattr(request.state, "campaign_id", None):
        params.setdefault("campaign", request.state.campaign_id)  # the campaign the official chose
    found = runner.find(path)
    if found is None:
        return Answer(2, message=_("no such command: {name}").format(name=" ".join(path)))
    cmd = found[0]
    if "format" in {runner.api_name(p) for p in runner.api_params(cmd)}:
        params.setdefault("format", "json")
    own = workspace is None
    ws = files.workspace(st) if own else workspace
    try:
        params.update(_outputs(st, who, path, params, ws))
        argv = runner.argv_of(cmd, params)
        if st.drill is None:
            from anjian.workflow.services.registry import drill_of

            st.drill = bool(await run_in_threadpool(drill_of, st.db))
        call = runner.Call(st.settings, st.db, who.actor, st.drill)
        outcome = await run_in_threadpool(runner.run, path, argv, call, lang=language(request), workspace=ws)
        made = await run_in_threadpool(files.publish, st, who.actor.name, ws)
    finally:
        if own:
            ws.close()
    if outcome.exit != 0:
        code, message, details = outcome.failure or (outcome.exit, outcome.stderr.strip(), [])
        return Answer(code, message=message, details=list(details), stdout=outcome.stdout, files=made)
    try:
        data = json.loads(outcome.stdout) if outcome.stdout.strip() else None
    except ValueError:
        data = None
    return Answer(0, data=data, message=outcome.stderr.strip(), stdout=outcome.stdout, files=made)


def _outputs(st, who, path: list[str], params: dict, ws) -> dict:
    """Output file params (`out`, `ics` …) pointed into the request's workspace, so that what the command
    writes comes back as a download (`Answer.files`); a path already there is left as it is."""
    from anjian.workflow.cli import remote_files
    from anjian.workflow.server import files

    wanted = {k: v for k, v in params.items() if v is not None and remote_files.kind(path, k) == "output"
              and not str(v).startswith(str(ws.parent))}
    return files.prepare(st, who.actor.name, path, wanted, ws, {}, {}) if wanted else {}


def nav(who) -> list[tuple[str, str]]:
    """The links of the page header, by role (what a role may not use is not offered; the services
    refuse it anyway)."""
    role = who.actor.role
    links = [("/", _("My tasks"))]
    if role in ("city_inspector", "county_official", "city_office", "admin"):
        links.append(("/queue", _("Inspection queue")))
    if role != "township_chief":
        links.append(("/dashboard", _("City dashboard")))
    links.append((f"/units/{who.actor.unit_code}", _("My unit")))
    links.append(("/history", _("Audit")))
    if role in ("admin", "city_office"):
        links.append(("/officials", _("Officials and contacts")))
    return links


def render(request: Request, who, template: str, status: int = 200, **context) -> HTMLResponse:
    """`templates/web/TEMPLATE.html.j2` in the request's language, with the header's links, the
    official, and the session's CSRF token for its forms."""
    from anjian.i18n import language as in_language
    from anjian.states.labels import ROLE_NAMES
    from anjian.workflow.reports.templating import environment

    values = {"who": who.actor if who else None, "role_name": ROLE_NAMES.get(who.actor.role, "") if who else "",
              "nav": nav(who) if who else [], "csrf": who.csrf if who else None, "path": request.url.path,
              "lang": "en" if language(request) == "en" else "zh-CN", "drill": bool(state(request).drill),
              "error": None, "error_details": [], "notice": None,
              "campaigns": getattr(request.state, "campaigns", []) if who else [],
              "campaign_id": getattr(request.state, "campaign_id", None)}
    values.update(context)
    with in_language(language(request)):
        html = environment().get_template(f"web/{template}.html.j2").render(values)
    response = HTMLResponse(html, status_code=status)
    asked = request.query_params.get("campaign")
    if who and asked is not None:  # the choice is kept for the pages that follow
        chosen = getattr(request.state, "campaign_id", None)
        response.set_cookie(CAMPAIGN_COOKIE, chosen or "", max_age=None if chosen else 0, httponly=True,
                            secure=state(request).config.cookie_secure, samesite="strict", path="/")
    return response


def refused_page(request: Request, who, status: int, message: str) -> HTMLResponse:
    """A page that says why it cannot be shown (not permitted, no such unit …)."""
    return render(request, who, "refused", status=status, title=_("Not shown"), error=message)


async def form(request: Request, who, files: bool = False):
    """The posted form as (fields, uploads), or None when it is too large or lacks the session's CSRF
    token. `uploads` are the non-empty file fields (name → starlette UploadFile)."""
    from anjian.workflow.server import auth

    length = request.headers.get("content-length")
    most = MAX_FORM_BYTES + (state(request).config.max_upload_bytes * MAX_FORM_FILES if files else 0)
    if length is not None and (not length.isdigit() or int(length) > most):
        return None
    try:
        data = await request.form(max_files=MAX_FORM_FILES if files else 0, max_fields=MAX_FORM_FIELDS)
    except Exception:  # a malformed or oversized multipart body: python-multipart's own errors
        return None
    fields = {k: v for k, v in data.multi_items() if isinstance(v, str)}
    uploads = {k: v for k, v in data.multi_items() if not isinstance(v, str) and getattr(v, "filename", "")}
    if not auth.csrf_ok(request, who, fields.get("csrf_token")):
        return None
    return fields, uploads


def expired_form(request: Request, who) -> HTMLResponse:
    return refused_page(request, who, 403, _("the form has expired or did not come from this site: open it again"))


class UploadTooLarge(Exception):
    """A file of a form is larger than [service] max_upload_bytes."""


async def save_upload(request: Request, workspace, upload) -> tuple[Path, str]:
    """A form's file streamed into the request's workspace under its own name (size limited);
    (path the command reads, SHA-256). The evidence is recorded under the name the official chose."""
    most = state(request).config.max_upload_bytes
    name = Path(upload.filename or "file").name[:200] or "file"
    target = workspace.folder / "in" / secrets.token_hex(4) / name
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        while chunk := await upload.read(1 << 16):
            size += len(chunk)
            if size > most:
                fh.close()
                target.unlink(missing_ok=True)
                raise UploadTooLarge(_("{file}: the file is larger than the service accepts ({most} bytes); "
                                       "nothing was written").format(file=name, most=most))
            digest.update(chunk)
            fh.write(chunk)
    workspace.shown[str(target)] = name
    workspace.recorded[str(target.resolve())] = name
    return target, digest.hexdigest()


class SecurityHeaders:
    """ASGI middleware: every HTML answer gets the Content-Security-Policy and its companions."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                kind = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if kind.startswith(b"text/html"):
                    have = {k.lower() for k, _v in headers}
                    headers += [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                                if k.lower().encode() not in have]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)
