"""`/queue`: the inspection queue — the applied townships of the official's jurisdiction (`units --state
applied --county MY_UNIT`), the longest waiting first, each with its county, cohorts, when and by whom it
applied, its dossier a click away, and a form to accept or reject it with an opinion.

`POST /queue` (fields unit, trigger = accept|reject, note, version, csrf_token) runs `advance UNIT TRIGGER
--note NOTE [--expect-version N]` as the official: the page asks for an opinion first (nothing is sent
without one); every other refusal is the service's, shown with each of its reasons (separation of duties:
exit 4; a guard: exit 3; someone changed the township meanwhile: exit 5). A township the official applied
for is shown without the buttons: `units` names its applicants.

`GET /queue/dossier/CODE`: the township's printable dossier (`report dossier CODE --format html`), as a
download of the official's own."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anjian.i18n import _
from anjian.workflow.server.web import base
from anjian.workflow.server.web.todo import oldest_first, speak, words

VERDICTS = ("accept", "reject")


def routes() -> list[Route]:
    return [Route("/queue", queue, methods=["GET", "POST"]),
            Route("/queue/dossier/{code}", dossier, methods=["GET"])]


def judges(who) -> bool:
    """Whether the official's role gives verdicts on applications (the permissions' data: the city office
    follows the queue, county officials and city inspectors judge)."""
    from anjian.states.permissions import TRIGGERS

    return all(who.actor.role in TRIGGERS.get(("township", t), ()) for t in VERDICTS)


def not_for(who) -> bool:
    """A township's chief has no queue: their township's applications are judged by others."""
    return who.actor.role == "township_chief"


def refused(request: Request, who) -> Response:
    return base.refused_page(request, who, 403, _("the inspection queue is for the officials who follow or judge "
                                                  "applications: county officials, city inspectors and the city office"))


async def page(request: Request, who, status: int = 200, error: str | None = None, details=(),
               notice: str | None = None, drafts: dict | None = None) -> Response:
    listed = await base.run(request, who, ["units"], {"county": who.actor.unit_code, "level": "township",
                                                        "state": "applied"})
    if not listed.ok and error is None:
        error, details = listed.message, listed.details
    return base.render(request, who, "queue", status, title=_("Inspection queue"), error=error,
                       error_details=list(details), notice=notice, rows=oldest_first(listed.data or []) if listed.ok else [],
                       judges=judges(who), drafts=drafts or {}, **words())


async def queue(request: Request) -> Response:
    speak(request)
    who, away = await base.signed_in(request)
    if who is None:
        return away
    if not_for(who):
        return refused(request, who)
    if request.method == "POST":
        return await decide(request, who)
    return await page(request, who, notice=await done_notice(request, who))


async def done_notice(request: Request, who) -> str | None:
    """After a verdict (?done=TRIGGER&unit=CODE): the township by its full name and the state it is in
    now, as `show` says (nothing of the address is echoed)."""
    trigger, code = request.query_params.get("done"), request.query_params.get("unit")
    if trigger not in VERDICTS or not code:
        return None
    from anjian.states.labels import TRIGGER_NAMES

    shown = await base.run(request, who, ["show"], {"unit": code})
    if not shown.ok:
        return None
    return _("{unit}: “{trigger}” done; it is now “{state}”").format(
        unit=shown.data["path"], trigger=TRIGGER_NAMES[trigger], state=shown.data["state_name"])


async def decide(request: Request, who) -> Response:
    got = await base.form(request, who)
    if got is None:
        return base.expired_form(request, who)
    fields, _uploads = got
    unit = fields.get("unit", "").strip()
    trigger = fields.get("trigger", "").strip()
    note = fields.get("note", "").strip()
    version = fields.get("version", "").strip()
    if not unit or trigger not in VERDICTS:
        return await page(request, who, 400, error=_("choose a township and “accept” or “reject”; nothing was written"))
    if not note:
        return await page(request, who, 400, error=_("an opinion is required to accept or to reject: write it in "
                                                     "the box; nothing was written"), drafts={unit: ""})
    params: dict = {"unit": unit, "trigger": trigger, "note": note}
    if version.isdigit():
        params["expect_version"] = int(version)
    answer = await base.run(request, who, ["advance"], params)
    if not answer.ok:
        return await page(request, who, answer.status, error=answer.message,
                          details=answer.details, drafts={unit: note})
    code = answer.data.get("code", unit) if isinstance(answer.data, dict) else unit
    return base.redirect("/queue?" + urlencode({"done": trigger, "unit": code}))


async def dossier(request: Request) -> Response:
    """The township's dossier as a printable HTML file (`report dossier`), then its download."""
    speak(request)
    who, away = await base.signed_in(request)
    if who is None:
        return away
    code = request.path_params["code"]
    answer = await base.run(request, who, ["report", "dossier"],
                            {"unit": code, "format": "html", "out": _("dossier-{code}.html").format(code=code)})
    if not answer.ok or not answer.files:
        return base.refused_page(request, who, answer.status if not answer.ok else 500,
                                 answer.message or _("the dossier was not written"))
    return base.redirect(answer.files[0]["download"])
