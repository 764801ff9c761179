"""`/`: the signed-in official's page (我的待办) — what is due for them, from a few commands scoped to
their unit, never one per township (the page stays fast on the national registry):

- a township (its chief): `show` — its state, milestones, the checklist items not yet ok, its next steps;
- a county: `show` of the county and `units --county C --level township` — its townships with their
  states and lateness, the applied ones waiting for a verdict, the county's own next steps (the plan);
- a city or province: `show`, `status --county X` (its counties), `units --state applied` (the
  inspection queue) and `deadlines` (the campaign's dates)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anjian.i18n import _
from anjian.workflow.server.web import base

FIRST = 5  # the oldest applications shown on the page; the rest are in /queue


def routes() -> list[Route]:
    return [Route("/", home, methods=["GET"])]


def words() -> dict:
    """The identifiers' words and a stored time as officials read it, for the templates (translated when
    the template looks them up)."""
    from anjian.states.labels import (
        COHORT_SHORT,
        MILESTONE_SHORT,
        MILESTONE_STATUS,
        TRIGGER_NAMES,
        state_name,
    )
    from anjian.workflow.clock import shown

    return {"state_word": state_name, "cohort_word": COHORT_SHORT, "milestone_word": MILESTONE_SHORT,
            "status_word": MILESTONE_STATUS, "trigger_word": TRIGGER_NAMES,
            "when": lambda text: shown(text)[:16] if text else "—"}


def oldest_first(rows: list[dict]) -> list[dict]:
    """Applied townships, the longest waiting first (those never moved, if any, last)."""
    return sorted(rows, key=lambda r: (r.get("since") is None, r.get("since") or "", r["code"]))


def next_steps(who, unit: dict) -> list[dict]:
    """The unit's triggers from its present state that the official's role may fire (allowed now, or the
    reasons it is not), as `show` judged them; the machine and the permissions are the states' data. A
    city's stages move on their dates, by the scheduler: no one's decision."""
    from anjian.states.machines import of
    from anjian.states.permissions import trigger_roles

    spec = of(unit["level"])
    if spec is None or unit["level"] == "city":
        return []
    return [t for t in unit.get("triggers", [])
            if (spec.transition(t["name"]) or {}).get("source") == unit["state"]
            and who.actor.role in trigger_roles(unit["level"], t["name"])]


def speak(request: Request) -> None:
    """This request's words (its title, the page's own messages) in the language its page is shown in."""
    from anjian.i18n import set_language

    set_language(base.language(request))  # a context variable: this request's task alone


async def home(request: Request) -> Response:
    speak(request)
    who, away = await base.signed_in(request)
    if who is None:
        return away
    code = who.actor.unit_code
    mine = await base.run(request, who, ["show"], {"unit": code})
    if not mine.ok:
        return base.render(request, who, "home", title=_("My tasks"), error=mine.message,
                           error_details=mine.details, unit=None, **words())
    unit = mine.data
    level = unit["level"]
    ctx: dict = {"unit": unit, "level": level, "steps": next_steps(who, unit),
                 "missing": [c for c in unit.get("checklist", []) if not c["ok"]],
                 "milestones": unit.get("milestones", []), "townships": [], "applied": [], "applied_count": 0,
                 "counties": [], "late_counties": [], "totals": {}, "campaign_dates": [], "today": unit.get("now", "")[:10],
                 "problems": []}
    if level == "county":
        towns = await base.run(request, who, ["units"], {"county": code, "level": "township"})
        if towns.ok:
            ctx["townships"] = towns.data
            applied = oldest_first([t for t in towns.data if t["state"] == "applied"])
            ctx["applied"], ctx["applied_count"] = applied[:FIRST], len(applied)
        else:
            ctx["problems"].append(towns.message)
    elif level in ("city", "province"):
        status = await base.run(request, who, ["status"], {"county": code})
        if status.ok:
            ctx["counties"], ctx["totals"] = status.data.get("counties", []), status.data.get("totals", {})
            ctx["late_counties"] = [c for c in ctx["counties"] if c.get("overdue") or c.get("overdue_townships")]
        else:
            ctx["problems"].append(status.message)
        applied = await base.run(request, who, ["units"], {"county": code, "level": "township", "state": "applied"})
        if applied.ok:
            rows = oldest_first(applied.data)
            ctx["applied"], ctx["applied_count"] = rows[:FIRST], len(rows)
        else:
            ctx["problems"].append(applied.message)
        dates = await base.run(request, who, ["deadlines"])
        if dates.ok:
            ctx["campaign_dates"] = dates.data.get("milestones", [])
            ctx["today"] = dates.data.get("today", ctx["today"])
        else:
            ctx["problems"].append(dates.message)
    return base.render(request, who, "home", title=_("My tasks"), **ctx, **words())
