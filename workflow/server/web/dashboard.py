"""`/dashboard` (全市概况): the progress report's figures live — the city's townships by state, the
share up to standard, the counties' table and their milestones, the overdue units, the stages and
milestones against today, the report's charts, and the exports (CSV, XLSX, the HTML report).

The page runs `status` (scoped to the campaign's city) and `units --overdue`: quick on the national
registry. The early warning (预警) is `status`'s own: its count of counties warned and each county's
forecasts, of which the page lists the warned. The charts are images of their own (`/dashboard/chart/NAME.svg`, drawn by `report progress
--format json --chart NAME`), and the downloads run their command when asked: the report replays the
audit log and may take longer. Township chiefs see their township on its own page, not the dashboard
(county officials see it, read only: the page has no form)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anjian.i18n import _
from anjian.workflow.server.web import base

CHARTS = ("stages", "counties", "trend")
NOT_SHOWN_TO = frozenset({"township_chief"})  # as the header's links (base.nav) offer it


def routes() -> list[Route]:
    return [
        Route("/dashboard", page, methods=["GET"]),
        Route("/dashboard/chart/{name}.svg", chart, methods=["GET"]),
        Route("/dashboard/export.csv", export_csv, methods=["GET"]),
        Route("/dashboard/townships.csv", townships_csv, methods=["GET"]),
        Route("/dashboard/export.xlsx", export_xlsx, methods=["GET"]),
        Route("/dashboard/report.html", report_html, methods=["GET"]),
    ]


# -- who, and which city ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """What the page's commands are scoped to (the campaign's city, or `?county=`) and its `status`."""

    code: str | None
    name: str
    data: dict = field(default_factory=dict)

    @property
    def query(self) -> str:
        return f"?{urlencode({'county': self.code})}" if self.code else ""


async def _enter(request: Request, status: bool = True):
    """(who, Scope, None), or (None, None, the answer: sign in first, or refused). Without `status` a
    `?county=` given is taken as it is (the command asked next checks it)."""
    who, away = await base.signed_in(request)
    if who is None:
        return None, None, away
    if who.actor.role in NOT_SHOWN_TO:
        return None, None, base.refused_page(request, who, 403, _(
            "The city dashboard is for county and city officials: your township's own page shows its progress."))
    asked = request.query_params.get("county") or None
    if asked and not status:
        return who, Scope(asked, asked), None
    answer, code = await _city_status(request, who, asked)
    if not answer.ok:
        return None, None, _refused(request, who, answer)
    return who, Scope(code, _name_of(answer.data, code), answer.data), None


async def _city_status(request: Request, who, asked: str | None) -> tuple[base.Answer, str | None]:
    """`status` of `asked`, else of the campaign's city: asked first for the official's own unit (a
    county's or the city's official: quick even on the national registry), then for the city the
    answer names (the campaign's, whatever the registry holds besides)."""
    if asked:
        return await base.run(request, who, ["status"], {"county": asked}), asked
    scope = who.actor.unit_code
    answer = await base.run(request, who, ["status"], {"county": scope})
    if not answer.ok:  # an admin posted at a township: the whole registry first
        scope = None
        answer = await base.run(request, who, ["status"])
    city = (answer.data or {}).get("city") or {} if answer.ok else {}
    if city.get("code") and city["code"] != scope:
        again = await base.run(request, who, ["status"], {"county": city["code"]})
        if again.ok:
            return again, city["code"]
    return answer, scope


def _name_of(data: dict, code: str | None) -> str:
    city = data.get("city") or {}
    if code and city.get("code") == code:
        return city["name"]
    rows = [r for r in data.get("counties") or [] if r.get("code") == code]
    return rows[0]["name"] if rows else (code or city.get("name") or data.get("title") or "")


def _refused(request: Request, who, answer: base.Answer) -> Response:
    return base.render(request, who, "refused", answer.status, title=_("Not shown"),
                       error=answer.message or _("the command failed"), error_details=answer.details)


# -- the page ---------------------------------------------------------------------------------------
async def page(request: Request) -> Response:
    who, scope, away = await _enter(request)
    if who is None:
        return away
    late = await base.run(request, who, ["units"], {"county": scope.code, "overdue": True})
    return base.render(request, who, "dashboard", title=_("City dashboard"),
                       **_context(scope, late.data if late.ok else []),
                       error=None if late.ok else late.message, error_details=late.details)


def _context(scope: Scope, overdue: list[dict]) -> dict:
    """What the template shows, in words: the figures, the tables, the milestones with today among them."""
    from anjian.states.labels import COHORT_SHORT, LEVEL_NAMES, STATE_NAMES

    data = scope.data
    totals = data["totals"]
    states = list(totals.get("states") or {})
    milestones = data.get("milestones") or []
    by_id = {m["id"]: m for m in milestones}

    def late_words(ids) -> list[str]:
        return [_("{name} ({days} days overdue)").format(name=by_id[i]["name"], days=-by_id[i]["days"])
                if i in by_id else i for i in ids or ()]

    counties = []
    for c in data.get("counties") or []:
        own = {m["id"]: m for m in c.get("milestones") or []}
        counties.append({**c, "pct": _pct(c["accepted"], c["townships"]), "late_words": late_words(c.get("overdue")),
                         "cells": [_cell(own.get(m["id"])) for m in milestones]})
    county_names = {c["code"]: c["name"] for c in counties}
    late_units = [{
        "code": u["code"], "name": u["name"], "level": LEVEL_NAMES.get(u["level"], u["level"]),
        "county": county_names.get(u.get("parent") or "", "") if u["level"] == "township" else "",
        "state": STATE_NAMES.get((u["level"], u.get("state")), u.get("state") or ""),
        "cohorts": _(", ").join(COHORT_SHORT.get(k, k) for k in u.get("cohorts") or []),
        "late": late_words(u.get("overdue")),
    } for u in overdue]
    timeline = [{**m, "today": False, "words": _days_words(m["days"])} for m in milestones]
    ahead = next((i for i, m in enumerate(milestones) if m["days"] >= 0), len(milestones))
    timeline.insert(ahead, {"today": True})
    return {
        "scope": scope, "data": data, "totals": totals, "pct": _pct(totals["accepted"], totals["townships"]),
        "states": states, "state_words": {s: STATE_NAMES.get(("township", s), s) for s in states},
        "counties": counties, "milestones": milestones, "timeline": timeline, "stages": data.get("stages") or [],
        "overdue": late_units, "charts": CHARTS, "warned": warned_rows(data),
        "chart_words": {"stages": _("The plan's stages, its milestones and today (the red line)"),
                        "counties": _("Townships per county: up to standard, building, not started"),
                        "trend": _("Townships up to standard per county over time")},
    }


def warned_rows(data: dict) -> list[dict]:
    """The county-milestones `status` warns of (its JSON's `forecast` rows), the nearest deadline and the
    least likely first, in words: the milestone's name, the chance in per cent, the expected day."""
    from anjian.workflow.reports import early_warning as ew  # the report's words for the same figures

    names = {m["id"]: m["name"] for m in data.get("milestones") or []}
    rows = [{"code": c["code"], "county": c["name"], "milestone": f["milestone"],
             "name": names.get(f["milestone"], f["milestone"]), "deadline": f["deadline"], "needed": f["needed"],
             "probability": f["probability"], "chance": ew.percent_words(f["probability"]),
             "expected": f["expected"] or ew.expected_words(None)}
            for c in data.get("counties") or [] for f in c.get("forecast") or [] if f.get("warning")]
    return sorted(rows, key=lambda r: (r["deadline"], r["probability"], r["code"]))


def _pct(done: int, total: int) -> float:
    return round(100 * done / total, 1) if total else 0.0


def _cell(m: dict | None) -> dict:
    """A county's standing on one milestone: met, overdue (days) or days left; "—" when it owes none."""
    if m is None:
        return {"words": "—", "cls": "muted"}
    if m["status"] == "met":
        return {"words": _("met"), "cls": "met"}
    if m["status"] == "overdue":
        return {"words": _("{days} days overdue").format(days=m["days"]), "cls": "overdue"}
    return {"words": _("{days} days left").format(days=m["days"]), "cls": "pending"}


def _days_words(days: int) -> str:
    if days > 0:
        return _("in {days} days").format(days=days)
    if days == 0:
        return _("today")
    return _("{days} days ago").format(days=-days)


# -- the charts -------------------------------------------------------------------------------------
async def chart(request: Request) -> Response:
    """One of the report's charts as an SVG image (the page shows it with <img>: the drawing's own
    styles stay inside the image, where the page's Content-Security-Policy does not reach)."""
    who, scope, away = await _enter(request, status=False)
    if who is None:
        return away
    name = request.path_params["name"]
    if name not in CHARTS:
        return base.refused_page(request, who, 404, _("no such chart: {name}").format(name=name))
    answer = await base.run(request, who, ["report", "progress"],
                            {"county": scope.code, "format": "json", "chart": [name]})
    drawn = (answer.data or {}).get("charts") or {} if answer.ok and isinstance(answer.data, dict) else {}
    if name not in drawn:
        return Response(answer.message or _("the chart could not be drawn"), status_code=answer.status,
                        media_type="text/plain; charset=utf-8")
    return Response(drawn[name], media_type="image/svg+xml", headers={
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"})


# -- the downloads ----------------------------------------------------------------------------------
def download(content: bytes, media_type: str, filename: str, fallback: str) -> Response:
    """The bytes as a file to save, named in Chinese (RFC 5987) with an ASCII name for old clients."""
    disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"
    return Response(content, media_type=media_type, headers={
        "Content-Disposition": disposition, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


def _file_names(scope: Scope, words: str, ascii_words: str, suffix: str) -> tuple[str, str]:
    """承德市进度-2015-01-05.csv, and anjian-progress-2015-01-05.csv (演练/drill from a drill database)."""
    today, drill = scope.data.get("today") or "", bool(scope.data.get("drill"))
    title = f"{scope.name}{words}-{today}"
    return (f"{_('drill {title}').format(title=title) if drill else title}.{suffix}",
            f"anjian-{'drill-' if drill else ''}{ascii_words}-{today}.{suffix}")


async def _printed(request: Request, path: list[str], params: dict, words: str, ascii_words: str) -> Response:
    """A command's CSV on stdout, as a download (with the BOM Excel needs to read Chinese)."""
    who, scope, away = await _enter(request)
    if who is None:
        return away
    answer = await base.run(request, who, path, {**params, "county": scope.code, "format": "csv"})
    if not answer.ok:
        return _refused(request, who, answer)
    shown, fallback = _file_names(scope, words, ascii_words, "csv")
    return download(answer.stdout.encode("utf-8-sig"), "text/csv; charset=utf-8", shown, fallback)


async def export_csv(request: Request) -> Response:
    """The counties' table (`status --format csv`)."""
    return await _printed(request, ["status"], {}, _("progress"), "progress")


async def townships_csv(request: Request) -> Response:
    """Every township of the city with its state and cohorts (`units --level township --format csv`)."""
    return await _printed(request, ["units"], {"level": "township"}, _("townships"), "townships")


async def _written(request: Request, fmt: str, media_type: str) -> Response:
    """`report progress --format FMT --out FILE`, written in the request's private folder, as a download."""
    from anjian.workflow.server import files

    who, scope, away = await _enter(request)
    if who is None:
        return away
    shown, fallback = _file_names(scope, _("progress report"), "progress-report", fmt)
    ws = files.workspace(base.state(request))
    try:
        target = ws.folder / "out" / fallback
        target.parent.mkdir(parents=True, exist_ok=True)
        ws.shown[str(target)] = shown
        answer = await base.run(request, who, ["report", "progress"],
                                {"county": scope.code, "format": fmt, "out": str(target)}, workspace=ws)
        content = target.read_bytes() if answer.ok and target.is_file() else None
    finally:
        ws.close()
    if content is None:
        return _refused(request, who, answer)
    return download(content, media_type, shown, fallback)


async def export_xlsx(request: Request) -> Response:
    """The progress report as a workbook: counties (with a chart), overdue units, trend, milestones met."""
    return await _written(request, "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


async def report_html(request: Request) -> Response:
    """The progress report as one self-contained page to save and open (inline charts, no script)."""
    return await _written(request, "html", "text/html; charset=utf-8")
