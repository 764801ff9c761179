"""`/officials` (人员与联系人): the officials and the units' contacts, with the forms that change them.

Every read and write is the CLI's own command run as the signed-in official (`user list|add|disable|
enable`, `contact list|add|remove`): what the services refuse, the page refuses, in their words and with
the status of their exit code. The one write no command serves over the network is a password (`anjian
user passwd` runs on the service's machine only): the web's form gives an official a *first* password
through credentials.set_first_password, whose admin check and audit are the service's. The forms a role
may not use are not offered (engine.authz.role_may); whatever is posted, the service checks in full."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anjian.i18n import _
from anjian.workflow.server.web import base

PAGE_SIZE = 50  # rows of each table per page

# form action -> (the command it runs, the form's fields it passes by their API names, the notice after it)
COMMANDS: dict[str, tuple[list[str], tuple[str, ...], str]] = {
    "add_user": (["user", "add"], ("name", "role", "unit", "os_user"), "user_added"),
    "deactivate": (["user", "disable"], ("name",), "user_disabled"),
    "reactivate": (["user", "enable"], ("name",), "user_enabled"),
    "add_contact": (["contact", "add"], ("unit", "name", "email", "webhook"), "contact_added"),
    "remove_contact": (["contact", "remove"], ("unit", "name"), "contact_removed"),
}
SECRET_FIELDS = ("password", "again", "csrf_token")  # never written back into a re-rendered form


def routes() -> list[Route]:
    return [Route("/officials", officials, methods=["GET", "POST"])]


async def officials(request: Request) -> Response:
    """GET: the officials and contacts (filtered by `unit`, a page of each). POST: one form's `action`."""
    from anjian.i18n import language

    who, away = await base.signed_in(request)
    if who is None:
        return away
    with language(base.language(request)):
        if request.method == "POST":
            return await _post(request, who)
        params = request.query_params
        return await _show(request, who, params.get("unit", ""), notice=_notice(params.get("done"), params.get("name")))


def _notice(done: str | None, name: str | None) -> str | None:
    """The line shown after a form went through (Post/Redirect/Get: `?done=…&name=…`)."""
    words = {
        "user_added": _("Official {name} registered"),
        "user_disabled": _("{name} is disabled: they can no longer act (their history stays)"),
        "user_enabled": _("{name} is enabled again"),
        "password_set": _("First password of {name} set: they must change it at their first sign-in"),
        "contact_added": _("Contact {name} added"),
        "contact_removed": _("Contact {name} removed"),
    }
    return words[done].format(name=(name or "")[:64]) if done in words else None


async def _post(request: Request, who) -> Response:
    got = await base.form(request, who)
    if got is None:
        return base.expired_form(request, who)
    fields, _uploads = got
    action = fields.get("action", "")
    shown_unit = fields.get("shown_unit", "")
    if action == "set_password":
        answer, done = await _first_password(request, who, fields), "password_set"
    elif action in COMMANDS:
        path, names, done = COMMANDS[action]
        answer = await base.run(request, who, path, {k: fields.get(k, "").strip() or None for k in names})
    else:
        answer = base.Answer(2, message=_("unknown form action {action!r}").format(action=action[:40]))
    if not answer.ok:
        kept = {k: v for k, v in fields.items() if k not in SECRET_FIELDS}
        return await _show(request, who, shown_unit, answer.status, error=answer.message,
                           error_details=answer.details, given=kept, failed=action)
    query = {"unit": shown_unit.strip()} if shown_unit.strip() else {}
    return base.redirect("/officials?" + urlencode(query | {"done": done, "name": fields.get("name", "").strip()}))


async def _first_password(request: Request, who, fields: dict[str, str]) -> base.Answer:
    """An official's first password, by the credentials service (the admin check and the audit are its own)."""
    from anjian.workflow.cli.common import EXIT_CODES
    from anjian.workflow.errors import AnjianError
    from anjian.workflow.services import credentials

    password = fields.get("password", "")
    if password != fields.get("again", ""):
        return base.Answer(2, message=_("the two passwords differ"))
    try:
        await run_in_threadpool(credentials.set_first_password, base.state(request).db, who.actor,
                                fields.get("name", "").strip(), password, base.now())
    except AnjianError as exc:
        code = next((EXIT_CODES[c.__name__] for c in type(exc).__mro__ if c.__name__ in EXIT_CODES), 1)
        return base.Answer(code, message=exc.message, details=exc.details)
    return base.Answer(0)


async def _show(request: Request, who, unit_text: str, status: int = 200, *, error: str | None = None,
                error_details: list[str] | None = None, notice: str | None = None, given: dict | None = None,
                failed: str | None = None) -> Response:
    """The page: both lists (as `user list` and `contact list` give them), the filter, and the forms."""
    from anjian.states.labels import ROLE_NAMES
    from anjian.workflow.engine.authz import role_may

    users = await base.run(request, who, ["user", "list"])
    contacts = await base.run(request, who, ["contact", "list"]) if users.ok else users
    if not contacts.ok:
        return base.render(request, who, "refused", contacts.status, title=_("Not shown"),
                           error=contacts.message, error_details=contacts.details)
    unit_text = unit_text.strip()[:100]
    codes, unit, refused = await _within(request, who, unit_text)
    if refused is not None and error is None:
        status, error, error_details = refused.status, refused.message, refused.details
    people = [o for o in users.data or [] if codes is None or o["unit"] in codes]
    reached = [c for c in contacts.data or [] if codes is None or c["unit"] in codes]
    query = request.query_params if request.method == "GET" else {}
    people_page = _paged(people, query.get("page"))
    contacts_page = _paged(reached, query.get("cpage"))
    keep = {"unit": unit_text} if unit_text else {}
    return base.render(
        request, who, "officials", status, title=_("Officials and contacts"), error=error,
        error_details=error_details or [], notice=notice, role_names=ROLE_NAMES, roles=list(ROLE_NAMES),
        people=people_page["rows"], people_pages=_links(people_page, "page", keep | {"cpage": contacts_page["number"]}),
        people_total=len(people), contacts=contacts_page["rows"],
        contacts_pages=_links(contacts_page, "cpage", keep | {"page": people_page["number"]}),
        contacts_total=len(reached), unit_text=unit_text, unit=unit,
        without_password=[o["name"] for o in people if o["active"] and not o.get("has_password")],
        may_users=role_may(who.actor, "users"), may_contacts=role_may(who.actor, "contact"),
        given=given or {}, failed=failed or "")


async def _within(request: Request, who, unit_text: str):
    """The unit codes the filter keeps (the unit, and a county's townships), the unit as `show` gives it,
    and the refusal of an unknown or ambiguous unit; (None, None, None) without a filter."""
    if not unit_text:
        return None, None, None
    shown = await base.run(request, who, ["show"], {"unit": unit_text})
    if not shown.ok:
        return None, None, shown
    codes = {shown.data["code"]}
    if shown.data["level"] == "county":
        below = await base.run(request, who, ["units"], {"county": shown.data["code"]})
        codes |= {u["code"] for u in (below.data or [])} if below.ok else set()
    return codes, shown.data, None


def _paged(rows: list, asked: str | None) -> dict:
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    number = min(max(int(asked), 1), pages) if asked and asked.isdigit() else 1
    return {"rows": rows[(number - 1) * PAGE_SIZE:number * PAGE_SIZE], "number": number, "pages": pages}


def _links(page: dict, key: str, keep: dict) -> dict:
    """Where the previous and next pages of a table are (None at either end), and which page this is."""
    def url(n: int) -> str:
        return "/officials?" + urlencode(keep | {key: n})

    n = page["number"]
    return {"number": n, "pages": page["pages"], "previous": url(n - 1) if n > 1 else None,
            "next": url(n + 1) if n < page["pages"] else None}
