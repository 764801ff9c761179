"""A unit's dossier (验收材料): what an inspector brings to an acceptance visit — who the unit is, where
it stands, its checklist item by item, every evidence file with its SHA-256 and whether the copy in
the evidence store still matches, the full history from the audit log, and a block to sign.

`build` gathers the data (a frozen Dossier); `markdown` and `html` render it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from anjian.i18n import N_, _, is_english, pgettext
from anjian.states.guards import ItemStatus
from anjian.states.labels import (
    COHORT_NAMES,
    LEVEL_NAMES,
    MILESTONE_STATUS,
    TRIGGER_NAMES,
    required_words,
    state_name,
    value_words,
)
from anjian.states.milestones import MilestoneStatus
from anjian.workflow.clock import SHANGHAI, shown
from anjian.workflow.errors import BadInput
from anjian.workflow.store.db import Database
from anjian.workflow.views.show import ShowResult
from anjian.workflow.views.units import UnitRow

# The audit log's own actions, beside the triggers (translated when shown, see `action_name`).
LOG_ACTIONS = {
    "record": N_("checklist filled in"), "designate": N_("put in a cohort"), "undesignate": N_("taken out of a cohort"),
    "denied": N_("operation refused"), "contact_add": N_("contact added"), "contact_update": N_("contact updated"),
    "contact_remove": N_("contact removed"), "user_add": N_("official added"), "user_edit": N_("official changed"),
    "user_enable": N_("official enabled"), "user_disable": N_("official disabled"), "registry_load": N_("registry loaded"),
    "campaign_load": N_("campaign loaded"), "campaign_add": N_("campaign added"), "calendar_load": N_("calendar loaded"), "checkpoint": N_("checkpoint written"),
    "notice_settle": N_("notices settled"), "circular": N_("circular printed and issued"),
}
STORED_WORDS = {"ok": N_("stored copy intact, hash matches"), "altered": N_("stored copy altered, hash differs"),
                "missing": N_("no copy in the evidence store"), "invalid": N_("the recorded hash is invalid")}


def action_name(action: str) -> str:
    """A trigger's name or one of the log's own actions, in words; an unknown action as it is."""
    if action in TRIGGER_NAMES:
        return TRIGGER_NAMES[action]
    return _(LOG_ACTIONS[action]) if action in LOG_ACTIONS else action
_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class EvidenceCheck:
    """One evidence file named in the audit log, and the state of its stored copy."""

    seq: int
    at: str
    action: str
    path: str
    sha256: str
    size: int | None
    stored: str  # ok | altered | missing | invalid

    @property
    def name(self) -> str:
        return Path(self.path).name or self.path

    @property
    def words(self) -> str:
        return _(STORED_WORDS[self.stored])


@dataclass(frozen=True)
class Event:
    """One audit row of the unit, as an official reads it."""

    seq: int
    at: str  # Asia/Shanghai, to the second
    actor: str
    action: str
    action_name: str
    from_state: str
    to_state: str
    note: str
    detail: str
    evidence: int


@dataclass(frozen=True)
class Dossier:
    unit: ShowResult
    title: str
    campaign: str
    issuer: str
    now: dt.datetime
    areas: list[tuple[str, list[ItemStatus]]]  # area name, its checklist items (from `show`)
    evidence: list[EvidenceCheck]
    history: list[Event]
    children: list[UnitRow]
    store: str
    drill: bool = False  # from a drill (演练) database: the page says so

    @property
    def missing(self) -> list[ItemStatus]:
        return [i for _, items in self.areas for i in items if not i.ok]

    @property
    def checked(self) -> int:
        return sum(len(items) for _, items in self.areas)


def stored_state(store: Path | None, sha256: str) -> str:
    """Whether the evidence store holds the file under its hash, and whether its bytes still hash so."""
    if not _SHA.fullmatch(sha256 or ""):
        return "invalid"
    target = store / sha256[:2] / sha256 if store is not None else None
    if target is None or not target.is_file():
        return "missing"
    digest = hashlib.sha256()
    with target.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return "ok" if digest.hexdigest() == sha256 else "altered"


def build(db: Database, unit: str, now: dt.datetime, evidence_dir: Path | None = None, viewer=None) -> Dossier:
    """The dossier of one township or county (its checklist, evidence, history) as of `now`; refused to
    a `viewer` who may not open the unit in full (as `show`)."""
    from anjian.workflow.services.registry import campaign_in_force, drill_in
    from anjian.workflow.store import audit
    from anjian.workflow.views.show import show
    from anjian.workflow.views.units import units

    res = show(db, unit, now, viewer=viewer)
    if res.level not in ("township", "county"):
        raise BadInput(_("{name} ({code}) is a {level}: a dossier is of a township or a county "
                         "(for the whole city: anjian report progress)").format(
            name=res.name, code=res.code, level=LEVEL_NAMES.get(res.level, res.level)))
    with db.read() as session:
        campaign = campaign_in_force(session)
        rows = audit.history(session, [res.code])
        drill = drill_in(session)
    labels = {i.id: i.label for lvl in ("township", "county") for i in campaign.items(lvl)}
    areas: dict[str, list[ItemStatus]] = {}
    for item in res.checklist:
        areas.setdefault(campaign.areas.get(item.area, item.area), []).append(item)
    checked: dict[str, str] = {}
    evidence, history = [], []
    for r in rows:
        for f in r.evidence:
            sha = str(f.get("sha256", ""))
            if sha not in checked:
                checked[sha] = stored_state(evidence_dir, sha)
            evidence.append(EvidenceCheck(r.seq, shown(r.at), action_name(r.trigger), str(f.get("path", "")),
                                          sha, f.get("size"), checked[sha]))
        by = r.detail.get("by")
        actor = _("{actor} (done by {by} for them)").format(actor=r.actor, by=by) if by else r.actor
        history.append(Event(r.seq, shown(r.effective_at), actor, r.trigger, action_name(r.trigger), _state(res.level, r.from_state),
                             _state(res.level, r.to_state), r.note or "", _detail(r, labels), len(r.evidence)))
    children = units(db, now, level="township", county=res.code) if res.level != "township" else []
    title = (_("{name}: acceptance papers of the safety supervision standardization") if res.level == "township"
             else _("{name}: work file of the township safety supervision standardization")).format(name=res.name)
    return Dossier(res, title, campaign.title, campaign.issuer, now,
                   list(areas.items()), evidence, history, children, str(evidence_dir or ""), drill)


def _state(level: str, state: str | None) -> str:
    return state_name(level, state) if state else ""


def _detail(r, labels: dict[str, str]) -> str:
    late = _("entered late (a paper record of {effective}, entered {at})").format(
        effective=r.detail["effective"], at=shown(r.at)) if r.detail.get("effective") else ""
    return _("; ").join(x for x in (late, _what(r, labels)) if x)


def _what(r, labels: dict[str, str]) -> str:
    d = r.detail
    if r.trigger == "record":
        item = d.get("item", "")
        words = pgettext("dossier", "{item}: {value}").format(item=labels.get(item, item), value=d.get("value"))
        return words + (_(" (was {previous})").format(previous=d["previous"]) if d.get("previous") else "")
    if r.trigger in ("designate", "undesignate"):
        return COHORT_NAMES.get(d.get("cohort", ""), d.get("cohort", ""))
    if r.trigger == "denied":
        return pgettext("dossier", "{item}: {value}").format(item=d.get("attempted", ""), value=d.get("reason", ""))
    return ""


# -- words -------------------------------------------------------------------------------------------
def milestone_words(m: MilestoneStatus) -> str:
    days = {"pending": lambda: _(", {days} days left").format(days=m.days),
            "overdue": lambda: _(", {days} days overdue").format(days=m.days)}.get(m.status, str)()
    return MILESTONE_STATUS[m.status] + days


def _identity(d: Dossier) -> list[tuple[str, str]]:
    u = d.unit
    rows = [(pgettext("column", "Unit"), pgettext("dossier", "{name} ({code})").format(name=u.name, code=u.code)),
            (_("Belongs to"), u.path), (pgettext("column", "Level"), LEVEL_NAMES.get(u.level, u.level)),
            (_("Current state"), _("{state} (version {version})").format(state=u.state_name, version=u.version))]
    if u.level == "township":
        rows.append((pgettext("column", "Cohorts"), _(", ").join(COHORT_NAMES[c] for c in u.cohorts) or _("ordinary township")))
    rows.append((_("Papers made"), _("{time} (Beijing time)").format(time=f"{d.now.astimezone(SHANGHAI):%Y-%m-%d %H:%M}")))
    return rows


# -- Markdown ----------------------------------------------------------------------------------------
def _cell(v: object) -> str:
    text = "—" if v is None or v == "" else str(v)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|",
            *("| " + " | ".join(_cell(v) for v in r) + " |" for r in rows)]


def markdown(d: Dossier) -> str:
    """The dossier as Markdown, in the order of the visit: who, what is in place, proof, history, signatures."""
    from anjian.workflow.reports.progress import _drill_banner

    u = d.unit
    sep = _(", ")
    out = [f"> **{_drill_banner(True)}**", ""] if d.drill else []
    out += [f"# {d.title}", "", f"{d.campaign} · {d.issuer}", ""]
    out += _table([pgettext("dossier", "Item"), pgettext("dossier", "Content")], [[k, v] for k, v in _identity(d)])
    if u.milestones:
        out += ["", "## " + _("Milestones"), ""]
        out += _table([pgettext("column", "Milestone"), pgettext("column", "Deadline"), pgettext("column", "Status")],
                      [[m.name, m.deadline.isoformat(), milestone_words(m)] for m in u.milestones])
    if d.areas:
        out += ["", "## " + _("Standardization checklist ({ok}/{all} items up to standard)").format(
            ok=d.checked - len(d.missing), all=d.checked), ""]
        for area, items in d.areas:
            out += [f"### {area}", ""]
            out += _table(["", pgettext("dossier", "Item"), pgettext("dossier", "Required"), pgettext("dossier", "Now"),
                           pgettext("column", "Code")], [
                ["✓" if i.ok else _("✗ missing"), i.label, required_words(i.kind, i.required), value_words(i.value), i.item]
                for i in items])
            out.append("")
        if d.missing:
            out += [f"**{_('Still missing:')}** " + _("; ").join(i.label for i in d.missing), ""]
    if d.children:
        out += ["", "## " + _("Its townships ({n})").format(n=len(d.children)), "", _children_summary(u), ""]
        out += _table([pgettext("column", "Code"), pgettext("dossier", "Township"), pgettext("column", "Status"),
                       pgettext("column", "Cohorts"), pgettext("column", "Overdue milestones")], [
            [c.code, c.name, state_name("township", c.state), sep.join(COHORT_NAMES[x] for x in c.cohorts),
             sep.join(c.overdue or [])] for c in d.children])
    out += ["", "## " + _("Evidence files ({n})").format(n=len(d.evidence)), ""]
    if d.evidence:
        out += _table([_("Audit No."), pgettext("dossier", "Time"), pgettext("dossier", "Matter"), pgettext("dossier", "File"),
                       "SHA-256", _("Size (bytes)"), _("Stored copy checked")], [
            [e.seq, e.at, e.action, e.name, f"`{e.sha256}`", e.size, e.words] for e in d.evidence])
        out += ["", _("Evidence store: {store}").format(store=d.store or _("not set"))]
    else:
        out.append(_("(none)"))
    out += ["", "## " + _("Record of the work (audit log, {n} rows)").format(n=len(d.history)), ""]
    out += _table([pgettext("dossier", "No."), pgettext("dossier", "Time"), pgettext("dossier", "By"),
                   pgettext("dossier", "Action"), _("Change of state"), pgettext("dossier", "Details")], [
        [e.seq, e.at, e.actor, pgettext("dossier", "{name} ({code})").format(name=e.action_name, code=e.action), _change(e),
         _("; ").join(x for x in (e.detail, e.note, _("{n} attachments").format(n=e.evidence) if e.evidence else "") if x)]
        for e in d.history])
    town = u.level == "township"
    line = "____________________"
    out += ["", "## " + (_("Inspection opinion and signatures") if town else _("Review opinion and signatures")), "",
            _("Inspection opinion:") if town else _("Review opinion:"), "", "　", "",
            (_("Inspection team members") if town else _("Reviewers")) + _(" (signatures): ") + line
            + "　" + _("　Date: ______ year ____ month ____ day"), "",
            (_("Head of the inspected unit") if town else _("Head of the county")) + _(" (signatures): ") + line
            + "　" + _("　Date: ______ year ____ month ____ day"), ""]
    return "\n".join(out)


def _children_summary(u: ShowResult) -> str:
    """How many of a county's townships are in each state: 创建中 3、已达标 2."""
    return _(", ").join(_("{state} {n}").format(state=state_name("township", k), n=v) for k, v in sorted(u.children.items()))


def _change(e: Event) -> str:
    if e.from_state and e.to_state and e.from_state != e.to_state:
        return f"{e.from_state} → {e.to_state}"
    return e.to_state or ""


# -- HTML ----------------------------------------------------------------------------------------------
def html(d: Dossier) -> str:
    """The dossier as one printable page (inline CSS, no script, no external reference)."""
    from anjian.workflow.reports.progress import _drill_banner, render_template

    u = d.unit
    return render_template(
        "dossier.html.j2", title=d.title, campaign=d.campaign, issuer=d.issuer, identity=_identity(d), level=u.level,
        milestones=[{"name": m.name, "deadline": m.deadline.isoformat(), "words": milestone_words(m), "status": m.status}
                    for m in u.milestones],
        areas=[{"name": a, "rows": [{"ok": i.ok, "label": i.label, "required": required_words(i.kind, i.required),
                                      "value": value_words(i.value), "item": i.item} for i in items]} for a, items in d.areas],
        checked=d.checked, missing=[i.label for i in d.missing],
        children_summary=_children_summary(u),
        children=[{"code": c.code, "name": c.name, "state": state_name("township", c.state),
                   "cohorts": _(", ").join(COHORT_NAMES[x] for x in c.cohorts), "overdue": _(", ").join(c.overdue or [])}
                  for c in d.children],
        evidence=[{"seq": e.seq, "at": e.at, "action": e.action, "name": e.name, "path": e.path, "sha256": e.sha256,
                   "size": e.size, "stored": e.stored, "words": e.words} for e in d.evidence],
        store=d.store,
        history=[{"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "action_name": e.action_name,
                  "change": _change(e), "note": e.note, "detail": e.detail, "evidence": e.evidence} for e in d.history],
        now=f"{d.now.astimezone(SHANGHAI):%Y-%m-%d %H:%M}", drill=_drill_banner(d.drill), lang="en" if is_english() else "zh-CN",
    )
