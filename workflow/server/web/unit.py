"""`/units/CODE`: a unit's page (GET shows it, POST acts on it, as the signed-in official).

A township's page is its checklist as one form, a fieldset per area, each input named by its item code
and each evidence input `evidence:ITEM` (saving runs `record` with the items that changed); then the
triggers its official may fire, buttons `name="trigger"` with a `note` (`advance`); its milestones and
the inspector's last opinion. A county's page adds its townships, designations and the plan it submitted;
the city's lists its counties. A GET runs `show` and `history` of the unit (a county or the city also
`units`; a county `status` too, for its early warning: 预警); what `show` refuses, the page refuses. A POST answers 303 back here with `?done=…`, or the page
again with the refusal: every reason, those naming an item beside that item."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from anjian.i18n import _
from anjian.workflow.server.web import base

VERDICTS = ("accept", "reject", "revoke")
FLAG_WORDS = {"是": True, "否": False}  # what a flag's radio buttons post (the commands' own words)
TEMPLATES = {"township": "unit_township", "county": "unit_county"}
# A reason naming a checklist item ends with its code in brackets (states.guards._describe_missing); a
# refused `record` row starts with "(UNIT ITEM):".
ENDS_WITH_ITEM = re.compile(r"[（(]([\w.]+)[)）]\s*$")
RECORD_ROW = re.compile(r"^(?:\S+ )?\(\S+ ([\w.]+)\):")


def routes() -> list[Route]:
    return [Route("/units/{code}", page, methods=["GET", "POST"])]


async def page(request: Request) -> Response:
    who, away = await base.signed_in(request)
    if who is None:
        return away
    code = request.path_params["code"]
    if request.method == "POST":
        return await act(request, who, code)
    return await shown_page(request, who, code, notice=done_notice(request.query_params.get("done", "")))


def done_notice(done: str) -> str | None:
    """The notice of `?done=…` after a successful POST."""
    from anjian.states.labels import TRIGGER_NAMES

    words = {"recorded": _("The checklist was saved."), "unchanged": _("Nothing had changed: nothing was recorded."),
             "designated": _("The designation was saved.")}
    if done in words:
        return words[done]
    return _("Done: {action}.").format(action=TRIGGER_NAMES[done]) if done in TRIGGER_NAMES else None


def not_shown(request: Request, who, answer: base.Answer) -> Response:
    """`show` refused the unit: not permitted (403), or no such unit (404)."""
    status = {4: 403, 2: 404}.get(answer.exit, 500)
    return base.refused_page(request, who, status, answer.message or _("this unit cannot be shown"))


async def shown_page(request: Request, who, code: str, status: int = 200, shown: base.Answer | None = None,
                     error: str | None = None, details: list[str] | None = None, posted: dict | None = None,
                     notice: str | None = None) -> Response:
    """The unit's page; after a refused POST, with the refusal (`details` sorted beside their items)
    and what the official typed (`posted`)."""
    if shown is None:
        shown = await base.run(request, who, ["show"], {"unit": code})
    if not shown.ok:
        return not_shown(request, who, shown)
    data = shown.data
    if data["code"] != code and request.method == "GET":  # a name: the page's address is the code
        return base.redirect(f"/units/{data['code']}" + (f"?{request.url.query}" if request.url.query else ""))
    rows, below = [], []
    if data["level"] in TEMPLATES:
        answer = await base.run(request, who, ["history"], {"unit": data["code"]})
        rows = answer.data if answer.ok and isinstance(answer.data, list) else []
    if data["level"] != "township":
        level = "township" if data["level"] == "county" else "county"
        answer = await base.run(request, who, ["units"], {"county": data["code"], "level": level})
        below = answer.data if answer.ok and isinstance(answer.data, list) else []
    forecast = []
    # only a milestone still pending can be forecast: after the campaign the page asks nothing more
    if data["level"] == "county" and any(m.get("status") == "pending" for m in data.get("milestones", [])):
        answer = await base.run(request, who, ["status"], {"county": data["code"]})
        own = [c for c in answer.data.get("counties") or [] if c.get("code") == data["code"]] if answer.ok else []
        forecast = forecast_rows(own[0].get("forecast") or [], data) if own else []
    beside, rest = sort_reasons(details or [], {c["item"] for c in data["checklist"]})
    context = unit_context(data, rows, below, beside, posted or {}) | {"forecast": forecast}
    return base.render(request, who, TEMPLATES.get(data["level"], "unit_city"), status, title=data["name"],
                       error=error, error_details=rest, notice=notice, **context)


def forecast_rows(forecast: list[dict], data: dict) -> list[dict]:
    """A county's forecasts (`status` JSON) in words, the warned first: the milestone's name, the chance in
    per cent, the expected day, the pace a week and what it comes from."""
    from anjian.workflow.reports import early_warning as ew  # the report's words for the same figures

    names = {m["id"]: m.get("name") or m["id"] for m in data.get("milestones", [])}
    rows = [dict(f, name=names.get(f["milestone"], f["milestone"]), chance=ew.percent_words(f["probability"]),
                 expected_words=f["expected"] or ew.expected_words(None), pace=ew.pace_words(f["per_week"]),
                 basis_words=ew.basis_words(f["basis"])) for f in forecast]
    return sorted(rows, key=lambda r: (not r["warning"], r["deadline"]))


def sort_reasons(details: list[str], items: set[str]) -> tuple[dict[str, list[str]], list[str]]:
    """The reasons that name a checklist item, by item (shown beside it), and the rest (shown on top)."""
    beside: dict[str, list[str]] = {}
    rest = []
    for reason in details:
        found = ENDS_WITH_ITEM.search(reason) or RECORD_ROW.search(reason)
        if found and found.group(1) in items:
            beside.setdefault(found.group(1), []).append(reason)
        else:
            rest.append(reason)
    return beside, rest


def unit_context(data: dict, rows: list[dict], below: list[dict], beside: dict[str, list[str]], posted: dict) -> dict:
    """What the templates show, from `show`, `history` and `units` JSON, in the official's words."""
    from anjian.states.labels import (
        COHORT_NAMES,
        LEVEL_NAMES,
        MILESTONE_SHORT,
        MILESTONE_STATUS,
        TRIGGER_NAMES,
        current_campaign,
        state_name,
    )

    items = [checklist_entry(c, data.get("evidence", {}).get(c["item"], []), beside.get(c["item"], []), posted)
             for c in data["checklist"]]
    areas = []
    for area, name in data.get("areas", {}).items():
        mine = [c for c in items if c["area"] == area]
        if mine:
            areas.append({"id": area, "name": name, "entries": mine, "ok": sum(c["ok"] for c in mine)})
    late = data.get("met_late", {})
    milestones = [{"name": m.get("name") or m["id"], "deadline": m["deadline"], "status": m["status"],
                   "word": MILESTONE_STATUS.get(m["status"], m["status"]), "days": m.get("days"),
                   "late": late.get(m["id"])} for m in data.get("milestones", [])]
    item_codes = {c["item"] for c in items}
    labels = {c["item"]: c["label"] for c in items}
    buttons = [{"name": t["name"], "word": TRIGGER_NAMES.get(t["name"], t["name"]), "allowed": t["allowed"],
                "danger": t["name"] in ("reject", "revoke"),
                "missing": sum(1 for r in t["unmet"] if (m := ENDS_WITH_ITEM.search(r)) and m.group(1) in item_codes),
                "reasons": [r for r in t["unmet"] if not ((m := ENDS_WITH_ITEM.search(r)) and m.group(1) in item_codes)]}
               for t in data["triggers"] if t.get("next") and t.get("permitted")]
    opinion = next((r for r in reversed(rows) if r["trigger"] in VERDICTS), None)
    # the county's plan (or report) documents: the files of each trigger whose guards ask for one
    documented = {t["name"] for t in data["triggers"] if "plan_document_attached" in current_campaign().conditions(data["level"], t["name"])}
    plans = [dict(r, when=when(r["at"]), files=files_of(r["evidence"])) for r in rows if r["trigger"] in documented]
    return {
        "unit": data, "code": data["code"], "version": data["version"],
        "level_name": LEVEL_NAMES.get(data["level"], data["level"]),
        "cohort_names": [COHORT_NAMES.get(c, c) for c in data["cohorts"]],
        "areas": areas, "missing": [c for c in items if not c["ok"]], "ok_count": sum(c["ok"] for c in items),
        "milestones": milestones, "buttons": buttons,
        "opinion": opinion and {"word": TRIGGER_NAMES.get(opinion["trigger"], opinion["trigger"]), "note": opinion["note"],
                                "actor": opinion["actor"], "when": when(opinion["at"])},
        "plans": plans, "note": posted.get("note", ""),
        "children": [{"state": state_name("township", s), "count": n} for s, n in data.get("children", {}).items()],
        "below": [dict(u, state_word=state_name(u["level"], u["state"]) if u.get("state") else "—",
                       cohort_words=[COHORT_NAMES.get(c, c) for c in u.get("cohorts", [])],
                       overdue_words=[MILESTONE_SHORT.get(m, m) for m in u.get("overdue") or []]) for u in below],
        "designable": [{"id": c, "name": COHORT_NAMES.get(c, c)} for c in data.get("designable", [])],
        "recent": [{"when": when(r["at"]), "actor": r["actor"], "what": action_words(r, labels), "note": r.get("note")}
                   for r in rows[-10:][::-1]],
    }


def checklist_entry(c: dict, evidence: list[dict], reasons: list[str], posted: dict) -> dict:
    """One checklist item as the form shows it: its input's value (what was typed, after a refusal),
    what it requires, its evidence now, and the reasons a refusal gave for it."""
    from anjian.states.labels import required_words, value_words

    value = posted.get(c["item"], as_text(c))
    return dict(c, input=value, needs=required_words(c["kind"], c["required"]), now=value_words(c["value"]),
                files=files_of(evidence), reasons=reasons)


def as_text(c: dict) -> str:
    """A recorded value as the form's input gives it back (是/否 for a flag)."""
    value = c["value"]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    return str(value)


def files_of(evidence: list[dict]) -> list[dict]:
    """Evidence files by the name they were recorded under (a client's path: its last part)."""
    return [{"name": re.split(r"[\\/]", f["path"])[-1], "sha256": f["sha256"]} for f in evidence]


def when(at: str) -> str:
    """A stored time as officials read it (Beijing time, to the minute)."""
    from anjian.workflow.clock import shown

    return shown(at)[:16]


def action_words(row: dict, labels: dict[str, str]) -> str:
    """What a history row did, in words (a checklist item by its label)."""
    from anjian.states.labels import COHORT_NAMES, TRIGGER_NAMES

    detail = row.get("detail") or {}
    if row["trigger"] in TRIGGER_NAMES:
        return TRIGGER_NAMES[row["trigger"]]
    if row["trigger"] == "record":
        item = detail.get("item", "")
        return _("recorded {item}: {value}").format(item=labels.get(item, item), value=detail.get("value", ""))
    if row["trigger"] in ("designate", "undesignate"):
        cohort = COHORT_NAMES.get(detail.get("cohort", ""), detail.get("cohort", ""))
        return (_("named {cohort}") if row["trigger"] == "designate" else _("taken out of {cohort}")).format(cohort=cohort)
    if row["trigger"] == "denied":
        return _("refusal recorded")
    return row["trigger"]


async def act(request: Request, who, code: str) -> Response:
    """A POST: a trigger button (`advance`), a designation (`designate`) or the checklist (`record`)."""
    got = await base.form(request, who, files=True)
    if got is None:
        return base.expired_form(request, who)
    fields, uploads = got
    version = fields.get("version", "")
    version = int(version) if version.isdigit() else None
    if fields.get("trigger"):
        return await fire(request, who, code, fields, uploads.get("evidence"), version)
    if fields.get("cohort"):
        return await designate(request, who, code, fields)
    return await record(request, who, code, fields, uploads, version)


async def fire(request: Request, who, code: str, fields: dict, upload, version: int | None) -> Response:
    """`advance CODE TRIGGER --note … [--evidence FILE] --expect-version N`."""
    from anjian.workflow.server import files

    trigger = fields["trigger"]
    params = {"unit": code, "trigger": trigger, "note": fields.get("note", "").strip() or None,
              "expect_version": version}
    ws = files.workspace(base.state(request))
    try:
        if upload is not None:
            path, _sha = await base.save_upload(request, ws, upload)
            params["evidence"] = [str(path)]
        answer = await base.run(request, who, ["advance"], params, workspace=ws)
    except base.UploadTooLarge as exc:
        return await shown_page(request, who, code, 413, error=str(exc), posted=fields)
    finally:
        ws.close()
    if answer.ok:
        return base.redirect(f"/units/{answer.data.get('code', code) if isinstance(answer.data, dict) else code}"
                             f"?done={trigger}")
    return await refused(request, who, code, answer, fields)


async def designate(request: Request, who, code: str, fields: dict) -> Response:
    """`designate TOWNSHIP COHORT [--remove]`, from a county's page."""
    params = {"unit": fields.get("township", ""), "cohort": fields["cohort"], "remove": fields.get("remove") == "1"}
    answer = await base.run(request, who, ["designate"], params)
    if answer.ok:
        return base.redirect(f"/units/{code}?done=designated")
    return await refused(request, who, code, answer, {})


async def record(request: Request, who, code: str, fields: dict, uploads: dict, version: int | None) -> Response:
    """`record CODE ITEM=VALUE … --evidence ITEM=FILE … --expect-version N` with the items whose value
    the form changed (compared with the unit now: a change made meanwhile is the version's to refuse)
    and those given evidence."""
    from anjian.workflow.server import files

    shown = await base.run(request, who, ["show"], {"unit": code})
    if not shown.ok:
        return not_shown(request, who, shown)
    items = {c["item"]: c for c in shown.data["checklist"]}
    values = {}
    for item, c in items.items():
        typed = fields.get(item, "").strip()
        if typed and not same(c, typed):
            values[item] = typed
    given = {name.removeprefix("evidence:"): up for name, up in uploads.items() if name.startswith("evidence:")}
    problems = []
    for item in given:
        if item not in items:
            problems.append(_("“{item}” is not an item of this checklist").format(item=item))
        elif item not in values:
            if items[item]["value"] is None:
                problems.append(_("{label}: give its value together with its evidence ({item})").format(
                    label=items[item]["label"], item=item))
            else:
                values[item] = as_text(items[item])
    if problems:
        return await shown_page(request, who, code, 400, shown=shown, error=_("Nothing was recorded."),
                                details=problems, posted=fields)
    if not values:
        return base.redirect(f"/units/{shown.data['code']}?done=unchanged")
    ws = files.workspace(base.state(request))
    try:
        evidence = []
        for item, upload in given.items():
            path, _sha = await base.save_upload(request, ws, upload)
            evidence.append(f"{item}={path}")
        answer = await base.run(request, who, ["record"], {
            "unit": shown.data["code"], "value": [f"{k}={v}" for k, v in values.items()], "evidence": evidence or None,
            "expect_version": version}, workspace=ws)
    except base.UploadTooLarge as exc:
        return await shown_page(request, who, code, 413, shown=shown, error=str(exc), posted=fields)
    finally:
        ws.close()
    if answer.ok:
        return base.redirect(f"/units/{shown.data['code']}?done=recorded")
    return await refused(request, who, code, answer, fields)


def same(c: dict, typed: str) -> bool:
    """Whether what the form posts for an item is the value recorded now."""
    if c["kind"] == "flag":
        return typed in FLAG_WORDS and FLAG_WORDS[typed] == c["value"]
    if c["kind"] == "count":
        return typed.isdigit() and c["value"] is not None and int(typed) == c["value"]
    return c["value"] is not None and typed == str(c["value"]).strip()


async def refused(request: Request, who, code: str, answer: base.Answer, fields: dict) -> Response:
    """The page again with a command's refusal; after a conflict (exit 5) with the unit as it is now,
    otherwise with what the official typed."""
    posted = {} if answer.exit == 5 else fields
    return await shown_page(request, who, code, answer.status, error=answer.message,
                            details=answer.details, posted=posted)
