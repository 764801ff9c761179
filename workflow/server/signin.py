"""Signing in to the service: the API's /signin, /signout and /me, and the web's /login, /password,
/logout the style sheet; the pages behind sign-in are server/web.

Each route only translates: the credentials service decides (passwords, limits, tokens, audit). The
pages are server-rendered from templates/web (autoescaped, no script, nothing from another origin),
their words from the catalog. Every form that changes something carries a CSRF token: a session's own,
or, for the login form (no session yet), a double-submit cookie, so that a page of another site cannot
sign someone in as its author either."""

from __future__ import annotations

import datetime as dt
import hmac
import json
import secrets
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from anjian.i18n import _
from anjian.workflow.server import auth

API = "/api/v1"
LOGIN_CSRF_COOKIE = "anjian_login_csrf"
TOKEN_LABEL = "anjian login"
MAX_FORM_BYTES = 16 * 1024  # a sign-in form or JSON body is a few hundred bytes


def routes() -> list[Route]:
    return [
        Route(API + "/signin", api_signin, methods=["POST"]),
        Route(API + "/signout", api_signout, methods=["POST"]),
        Route(API + "/me", api_me, methods=["GET"]),
        Route("/login", login_page, methods=["GET", "POST"]),
        Route("/password", password_page, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/static/site.css", stylesheet, methods=["GET"]),
        Route("/static/icon.svg", icon, methods=["GET"]),
        Route("/favicon.ico", icon, methods=["GET"]),
    ]


def _state(request: Request):
    return request.app.state.service


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _language(request: Request) -> str:
    """The pages' rule (web/base.language): ?lang=en|zh, else the browser's first language."""
    from anjian.workflow.server.web.base import language

    return language(request)


def _error(status: int, exit_code: int, message: str, **extra) -> JSONResponse:
    return JSONResponse({"error": {"exit": exit_code, "message": message, "details": [], **extra}}, status_code=status)


def _too_large(request: Request) -> bool:
    length = request.headers.get("content-length")
    return length is not None and (not length.isdigit() or int(length) > MAX_FORM_BYTES)


# -- the API -------------------------------------------------------------------------------------------

async def api_signin(request: Request) -> Response:
    """`POST /api/v1/signin` {username, password, new_password?, label?} → a token for the CLI."""
    from anjian.i18n import language
    from anjian.workflow.errors import AnjianError, BadInput
    from anjian.workflow.services import credentials

    state = _state(request)
    with language(_language(request)):
        if _too_large(request):
            return _error(413, 2, _("the request is too large"))
        body = await request.body()
        try:
            given = json.loads(body or b"{}")
        except ValueError:
            given = None
        fields = ("username", "password", "new_password", "label")
        if not isinstance(given, dict) or not all(isinstance(given.get(k), str | None) for k in fields) \
                or not given.get("username") or given.get("password") is None:
            return _error(400, 2, _("give username and password as text in a JSON object"))
        try:
            issued, _must = await run_in_threadpool(
                credentials.sign_in, state.db, given["username"], given["password"], auth.client_address(request),
                _now(), kind="token", label=given.get("label") or TOKEN_LABEL, limits=state.config.credential_limits(),
                new_password=given.get("new_password"))
        except credentials.PasswordMustChange as exc:
            return _error(403, 4, exc.message, must_change=True)
        except BadInput as exc:
            return _error(400, 2, exc.message)
        except AnjianError as exc:
            return _error(401, 4, exc.message)
        who = await run_in_threadpool(credentials.official_of, state.db, issued.official)
    return JSONResponse({"token": issued.secret, "id": issued.id, "official": issued.official, "role": who.role,
                         "unit": who.unit_code, "expires_at": issued.expires_at.isoformat()})


async def api_signout(request: Request) -> Response:
    """`POST /api/v1/signout`: revoke the credential this request came with."""
    from anjian.i18n import language
    from anjian.workflow.services import credentials

    with language(_language(request)):
        who = await auth.principal(request)
        if who is None or who.kind == "proxy" or not auth.csrf_ok(request, who):
            return auth.refusal(request, who) or _error(400, 2, _("a proxy's user has no token to sign out"))
        await run_in_threadpool(credentials.revoke, _state(request).db, who.actor, who.credential, _now(),
                                action="signout")
    return JSONResponse({"revoked": who.credential})


async def api_me(request: Request) -> Response:
    """`GET /api/v1/me`: who this request is."""
    from anjian.i18n import language
    from anjian.workflow.services import credentials

    with language(_language(request)):
        who = await auth.principal(request)
        if who is None:
            return auth.refusal(request, who)
    must = await run_in_threadpool(credentials.must_change, _state(request).db, who.actor.name)
    return JSONResponse({"name": who.actor.name, "role": who.actor.role, "unit": who.actor.unit_code,
                         "credential": who.credential, "kind": who.kind, "must_change": must})


# -- the web -------------------------------------------------------------------------------------------

def _page(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    from anjian.i18n import language
    from anjian.workflow.server.web import base

    with language(_language(request)):
        words = _words()
    who = context.pop("who", None)
    return base.render(request, None, template, status, words=words, official=who, **context)


def _words() -> dict[str, str]:
    from anjian.i18n import is_english

    return {"lang": "en" if is_english() else "zh-CN", "site": _("anjian (安监): township safety supervision"),
            "login_title": _("Sign in"), "username": _("Name"), "password": _("Password"),
            "submit_login": _("Sign in"), "password_title": _("Change the password"),
            "old": _("Current password"), "new": _("New password"), "again": _("New password again"),
            "submit_password": _("Change it"), "must_change": _("The password was set by an admin: change it now."),
            "home_title": _("Signed in"), "logout": _("Sign out"), "change_link": _("Change the password"),
            "signed_in_as": _("Signed in as"), "role": _("Role"), "unit": _("Unit")}


def _cookie(response: Response, request: Request, name: str, value: str) -> None:
    response.set_cookie(name, value, httponly=True, secure=_state(request).config.cookie_secure, samesite="strict",
                        path="/")


def _forget(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path="/", httponly=True, secure=_state(request).config.cookie_secure,
                           samesite="strict")


def _login_form(request: Request, error: str | None = None, status: int = 200, username: str = "") -> Response:
    token = secrets.token_urlsafe(32)
    target = _next(request)
    action = "/login" if target == "/" else "/login?next=" + quote(target, safe="/")
    response = _page(request, "login", status, csrf=token, error=error, username=username, action=action)
    _cookie(response, request, LOGIN_CSRF_COOKIE, token)
    return response


async def _form(request: Request) -> dict[str, str] | None:
    if _too_large(request):
        return None
    form = await request.form(max_files=0, max_fields=10)
    return {k: v for k, v in form.items() if isinstance(v, str)}


async def login_page(request: Request) -> Response:
    """GET: the form. POST: sign in and set the session cookie (the form's own CSRF cookie must match)."""
    from anjian.i18n import language
    from anjian.workflow.errors import AnjianError
    from anjian.workflow.services import credentials

    if request.method == "GET":
        return _login_form(request)
    with language(_language(request)):
        form = await _form(request)
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        given = (form or {}).get("csrf_token", "")
        if form is None or not cookie or not hmac.compare_digest(cookie.encode(), given.encode()):
            return _login_form(request, _("the form has expired or did not come from this site: sign in again"), 403)
        state = _state(request)
        try:
            issued, must = await run_in_threadpool(
                credentials.sign_in, state.db, form.get("username", ""), form.get("password", ""),
                auth.client_address(request), _now(), kind="session", limits=state.config.credential_limits())
        except AnjianError as exc:
            return _login_form(request, exc.message, 403, username=form.get("username", "")[:64])
    response = RedirectResponse("/password" if must else _next(request), status_code=303)
    _cookie(response, request, auth.SESSION_COOKIE, issued.secret)
    _forget(response, request, LOGIN_CSRF_COOKIE)
    return response


def _next(request: Request) -> str:
    """Where the login form was asked from (`/login?next=/units/…`): a path of this site only."""
    target = request.query_params.get("next", "/")
    ok = target.startswith("/") and not target.startswith("//") and "\\" not in target and len(target) < 512
    return target if ok else "/"


async def _session(request: Request):
    """The signed-in official of a page, or None (then the page sends them to /login)."""
    who = await auth.principal(request)
    return who if who is not None and who.kind in ("session", "proxy") else None


async def password_page(request: Request) -> Response:
    """GET: the form. POST: change one's own password (the session's CSRF token must come with it)."""
    from anjian.i18n import language
    from anjian.workflow.errors import AnjianError
    from anjian.workflow.services import credentials

    who = await _session(request)
    if who is None or who.kind != "session":
        return RedirectResponse("/login", status_code=303)
    if request.method == "GET":
        return _page(request, "password", who=who.actor, csrf=who.csrf, must_change=who.must_change, error=None)
    with language(_language(request)):
        form = await _form(request)
        if form is None or not auth.csrf_ok(request, who, form.get("csrf_token")):
            return _page(request, "password", 403, who=who.actor, csrf=who.csrf, must_change=who.must_change,
                         error=_("the form has expired or did not come from this site: open it again"))
        error = None
        if form.get("new", "") != form.get("again", ""):
            error = _("the two new passwords differ")
        else:
            try:
                await run_in_threadpool(credentials.change_password, _state(request).db, who.actor.name,
                                        form.get("old", ""), form.get("new", ""), _now(),
                                        auth.client_address(request), keep=who.credential)
            except AnjianError as exc:
                error = exc.message
        if error is not None:
            return _page(request, "password", 400, who=who.actor, csrf=who.csrf, must_change=who.must_change,
                         error=error)
    return RedirectResponse("/", status_code=303)


async def logout(request: Request) -> Response:
    """POST: end this browser's session (its CSRF token must come with it)."""
    from anjian.i18n import language
    from anjian.workflow.services import credentials

    who = await _session(request)
    if who is None or who.kind != "session":
        return RedirectResponse("/login", status_code=303)
    form = await _form(request)
    if form is None or not auth.csrf_ok(request, who, form.get("csrf_token")):
        with language(_language(request)):
            return HTMLResponse(_("the form has expired or did not come from this site: open it again"), 403)
    await run_in_threadpool(credentials.revoke, _state(request).db, who.actor, who.credential, _now(),
                            action="signout")
    response = RedirectResponse("/login", status_code=303)
    _forget(response, request, auth.SESSION_COOKIE)
    return response


async def stylesheet(request: Request) -> Response:
    """The pages' style sheet, from this origin (no inline style: the Content-Security-Policy is 'self')."""
    from anjian.workflow.reports.templating import environment

    css = environment().get_template("web/site.css.j2").render()
    return Response(css, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"})


# A shield with a tick in the header's blue: the tab's icon. Served here, so that a browser asking for
# /favicon.ico (they all do) gets an answer rather than a 404 in its console.
ICON = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><path fill="#0b3d73" '
        'd="M16 1 3 6v9c0 8 5.6 13.7 13 16 7.4-2.3 13-8 13-16V6z"/><path fill="none" stroke="#fff" '
        'stroke-width="3.2" stroke-linecap="round" stroke-linejoin="round" d="m9.5 16.5 4.5 4.5 8.5-9"/></svg>')


async def icon(request: Request) -> Response:
    """The site's icon (SVG), for the pages' <link rel="icon"> and for /favicon.ico."""
    return Response(ICON, media_type="image/svg+xml", headers={"Cache-Control": "public, max-age=86400"})
