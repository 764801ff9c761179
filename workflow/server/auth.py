"""Who a request is. Deny by default: a route that is not public needs a principal, found from
  - `Authorization: Bearer anj_…` — an API token (`anjian login`, `anjian token create`);
  - the `anjian_session` cookie — a browser's sign-in session (state-changing requests also need its
    CSRF token, in the `X-CSRF-Token` header or the form's `csrf_token` field);
  - the trusted proxy's user header (settings [service] proxy_header), only from trusted_proxies.
An unknown, expired or revoked credential is refused (401); a bad bearer token is audited and counts
against the caller's address like a failed password (credentials.token_refused)."""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import ipaddress

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from anjian.workflow.services.credentials import Principal

SESSION_COOKIE = "anjian_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def client_address(request: Request) -> str:
    """The caller's address: the socket's peer, or (from a trusted proxy, when configured) the first
    address of X-Forwarded-For."""
    state = request.app.state.service
    peer = request.client.host if request.client else ""
    if state.config.forwarded_for and _trusted(state, peer):
        forwarded = request.headers.get("x-forwarded-for", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first[:64]
    return peer


def _trusted(state, address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in state.proxy_networks)


async def principal(request: Request) -> Principal | None:
    """The signed-in official of this request, or None (also when a credential was given but is bad:
    `request.state.bad_credential` then says which kind). The access log names the official found."""
    found = await _principal(request)
    if found is not None:
        request.state.official = found.actor.name
    return found


async def _principal(request: Request) -> Principal | None:
    from anjian.workflow.services import credentials

    state = request.app.state.service
    now = dt.datetime.now(dt.UTC)
    header = request.headers.get("authorization", "")
    request.state.bad_credential = None
    if header:
        scheme, _sep, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            request.state.bad_credential = "token"
            return None
        found = await run_in_threadpool(credentials.authenticate, state.db, secret.strip(), now, kind="token")
        if found is None:
            request.state.bad_credential = "token"
            await run_in_threadpool(credentials.token_refused, state.db, client_address(request), now,
                                    state.config.credential_limits())
        else:
            await _touch(state, found, now)
        return found
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        found = await run_in_threadpool(credentials.authenticate, state.db, cookie, now, kind="session")
        if found is None:
            request.state.bad_credential = "session"
        else:
            await _touch(state, found, now)
        return found
    user = request.headers.get(state.config.proxy_header)
    if user and _trusted(state, request.client.host if request.client else ""):
        return await run_in_threadpool(_proxied, state, user.strip())
    return None


TOUCH_SECONDS = 60  # last use is noted (and a session's expiry slid) at most once a minute: not a write per request


async def _touch(state, who: Principal, now: dt.datetime) -> None:
    from anjian.workflow.clock import from_utc_text
    from anjian.workflow.services import credentials

    if who.last_used_at is not None and (now - from_utc_text(who.last_used_at)).total_seconds() < TOUCH_SECONDS:
        return
    minutes = state.config.session_minutes if who.kind == "session" else None
    # a note of use (on a busy database, say) never fails the request it notes
    with contextlib.suppress(Exception):
        await run_in_threadpool(credentials.touch, state.db, who.credential, now, extend_minutes=minutes)


def refusal(request: Request, who: Principal | None):
    """The answer to a command request this principal may not make, or None when it may: no valid
    credential (401), a session's state-changing request without its CSRF token (403), a session
    whose password must change first (403)."""
    from starlette.responses import JSONResponse

    from anjian.i18n import _

    def error(status: int, message: str, **extra) -> JSONResponse:
        return JSONResponse({"error": {"exit": 4, "message": message, "details": [], **extra}}, status_code=status)

    if who is None:
        return error(401, _("sign in first: no valid token or session (anjian login --server URL)"))
    if not csrf_ok(request, who):
        return error(403, _("the request lacks the session's CSRF token (X-CSRF-Token): refused"))
    if who.must_change:
        return error(403, _("change the password an admin set first (/password)"), must_change=True)
    return None


def _proxied(state, name: str) -> Principal | None:
    from anjian.workflow.errors import BadInput, NotPermitted
    from anjian.workflow.services.credentials import official_of

    try:
        actor = official_of(state.db, name)
    except (BadInput, NotPermitted):
        return None
    return Principal(actor, "proxy", "proxy")


def same_site(request: Request) -> bool:
    """Whether a browser says the request comes from a page of this site: `Sec-Fetch-Site` same-origin
    (or none: typed by the official), else an `Origin` of this host. A browser sends one of them with
    every cross-site POST, so a form on another site cannot borrow the proxy's sign-in."""
    from urllib.parse import urlsplit

    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser's cross-site request (browsers send Origin with every POST)
    return urlsplit(origin).netloc.lower() == request.headers.get("host", "").lower()


def csrf_ok(request: Request, who: Principal, form_token: str | None = None) -> bool:
    """Whether a state-changing request carries its session's CSRF token (tokens and proxy users are
    not sent by a browser on its own, so they need none)."""
    if request.method in SAFE_METHODS or who.kind == "token":
        return True
    if who.kind == "proxy":  # a single sign-on's browser has no session token: it must come from this site
        return same_site(request)
    given = request.headers.get(CSRF_HEADER) or form_token or ""
    return bool(who.csrf) and hmac.compare_digest(given.encode(), who.csrf.encode())
