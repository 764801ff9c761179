"""The target assessment (考核) and the circular (通报): what the plan does to counties that fall short.

Both read the campaign as replayed from the audit log (`timeline`), so every figure can be traced:
a late unit carries the audit row that met its milestone; a missed one, the row of the last step it
took. Deductions follow the campaign file's `[assessment]` rules. Issuing a circular writes an audit
row holding the text's SHA-256, so the one sent out can later be matched to what the data said.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from anjian.i18n import _, is_english, pgettext
from anjian.states.campaign import Campaign
from anjian.workflow.engine.authz import Actor, may, refusals_audited
from anjian.workflow.engine.names import Resolver
from anjian.workflow.errors import BadInput
from anjian.workflow.services.registry import DRILL_BANNER, campaign_in_force, drill_in
from anjian.workflow.services.stages import parse_milestone
from anjian.workflow.store import audit
from anjian.workflow.store.db import Database
from anjian.workflow.views.timeline import Outcome, Replay, replay


@dataclass(frozen=True)
class Deducted:
    """One deduction: whose, for which milestone, why, how many points, and the audit row behind it."""

    county: str
    county_name: str
    milestone: str
    milestone_name: str
    deadline: str
    unit: str
    unit_name: str
    level: str
    kind: str  # late | missed
    days: int
    points: float
    audit_seq: int | None  # late: the row that met the milestone; missed: the unit's last step (if any)
    attested: bool = False  # late: met by a late entry (补录), counted from the date it attests


@dataclass
class CountyScore:
    code: str
    name: str
    base: float
    deducted: float = 0.0
    items: list[Deducted] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(self.base - self.deducted, 2)


@dataclass(frozen=True)
class AssessmentResult:
    now: dt.datetime
    today: dt.date
    campaign: str
    base: float
    counties: list[CountyScore]
    drill: bool = False  # from a drill (演练) database

    def as_json(self) -> dict:
        return {"now": self.now, "today": self.today, "campaign": self.campaign, "base": self.base, "drill": self.drill,
                "counties": [{"code": c.code, "name": c.name, "base": c.base, "deducted": round(c.deducted, 2),
                              "score": c.score, "deductions": [asdict(d) for d in c.items]} for c in self.counties]}


def _deductions(r: Replay, campaign: Campaign, outcomes: list[Outcome]) -> list[Deducted]:
    names = {m.id: m.name for m in campaign.milestones}
    out = []
    for o in outcomes:
        rule = campaign.assessment.rule(o.milestone, o.level)
        if rule is None or o.status in ("on_time", "pending") or o.county_code is None:
            continue
        kind = "late" if o.status == "late" else "missed"
        points = rule.late if kind == "late" else rule.missed
        if points <= 0:
            continue
        seq = o.met_seq if kind == "late" else r.last_seq.get(o.unit_code)
        out.append(Deducted(o.county_code, r.tree[o.county_code].name, o.milestone, names[o.milestone],
                            o.deadline.isoformat(), o.unit_code, o.unit_name, o.level, kind, o.days, points, seq,
                            o.attested))
    return out


def _counties(r: Replay, scope: str | None) -> list[str]:
    """County-level units: every county, and every city that holds townships itself."""
    rows = [u.code for u in r.tree if u.level == "county" or (u.level == "city" and r.children.get(u.code))]
    if scope is not None:
        rows = [c for c in rows if c == scope or r.tree[c].parent == scope]
    return sorted(rows)


def assess(db: Database, now: dt.datetime, county: str | None = None) -> AssessmentResult:
    """Each county's running score as of `now`: the base less every deduction, each with its reason."""
    with db.read() as session:
        campaign = campaign_in_force(session)
        scope = None
        if county:
            ref = Resolver(session).resolve(county, "county", levels=("county", "city"))
            scope = ref.code
        r = replay(session, campaign, now)
        drill = drill_in(session)
    base = campaign.assessment.base
    scores = {c: CountyScore(c, r.tree[c].name, base) for c in _counties(r, scope)}
    for d in _deductions(r, campaign, r.outcomes()):
        s = scores.get(d.county)
        if s is not None:
            s.items.append(d)
            s.deducted += d.points
    return AssessmentResult(now, r.today, campaign.id, base, list(scores.values()), drill)


# -- the circular ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CircularLine:
    county: str
    county_name: str
    unit: str
    unit_name: str
    level: str
    status: str  # on_time | late | overdue | pending
    days: int
    met_at: str | None
    audit_seq: int | None
    attested: bool = False  # met by a late entry (补录): the circular says so


@dataclass(frozen=True)
class Circular:
    milestone: str
    milestone_name: str
    deadline: str
    today: str
    now: str
    title: str
    issuer: str
    campaign_title: str
    level: str  # whose milestone the circular lists: township, county or mixed
    on_time: list[CircularLine]
    late: list[CircularLine]
    missed: list[CircularLine]
    pending: list[CircularLine]
    deductions: list[dict]  # per county: code, name, points, items
    text: str = ""
    sha256: str = ""
    issued_seq: int | None = None
    drill: str = ""  # from a drill (演练) database: the banner its text starts with
    campaign_document: str = ""  # the plan's document as the circular cites it, where its campaign names one

    def as_json(self) -> dict:
        return asdict(self)


def circular(db: Database, now: dt.datetime, milestone: str, language: str = "zh", fmt: str = "md") -> Circular:
    """Draft the circular on one milestone as of `now`: who was on time, who late by how many days,
    who has still not done it, and what each county loses for it."""
    with db.read() as session:
        campaign = campaign_in_force(session)
        m = campaign.milestone(parse_milestone(campaign, milestone) or milestone)
        if m is None:
            raise BadInput(_("no milestone “{milestone}” in campaign {campaign}; milestones: {choices}").format(
                milestone=milestone, campaign=campaign.id, choices="、".join(f"{x.id}（{x.name}）" for x in campaign.milestones)))
        milestone = m.id
        r = replay(session, campaign, now)
        drill = DRILL_BANNER if drill_in(session) else ""
    outcomes = r.outcomes(milestone)
    # List the level the campaign charges for this milestone, so every county charged is named; with no
    # rule, the townships when they owe it, else the counties.
    present = {o.level for o in outcomes}
    levels = {d.level for d in campaign.assessment.deductions if d.milestone == m.id} & present
    levels = levels or ({"township"} if "township" in present else {"county"})
    level = levels.pop() if len(levels) == 1 else "mixed"
    lines = [CircularLine(o.county_code or "", r.tree[o.county_code].name if o.county_code else "", o.unit_code, o.unit_name,
                          o.level, o.status, o.days, o.met_at.isoformat() if o.met_at else None,
                          o.met_seq if o.status in ("late", "on_time") else r.last_seq.get(o.unit_code), o.attested)
             for o in outcomes if level in (o.level, "mixed")]
    per: dict[str, dict] = defaultdict(lambda: {"points": 0.0, "items": []})
    for d in _deductions(r, campaign, outcomes):
        p = per[d.county]
        p["code"], p["name"] = d.county, d.county_name
        p["points"] += d.points
        p["items"].append(asdict(d))
    deductions = [dict(per[c], points=round(per[c]["points"], 2)) for c in sorted(per)]
    title = _("Circular on the completion of “{milestone}” in the township safety supervision standardization").format(
        milestone=m.name)
    draft = Circular(m.id, m.name, m.deadline.isoformat(), r.today.isoformat(), now.isoformat(), title,
                     campaign.issuer or _("Office of the city work safety committee"), campaign.title, level,
                     [x for x in lines if x.status == "on_time"], [x for x in lines if x.status == "late"],
                     [x for x in lines if x.status == "overdue"], [x for x in lines if x.status == "pending"], deductions,
                     drill=drill, campaign_document=campaign.document)
    text = render_circular(draft, fmt)
    return Circular(**{**asdict_shallow(draft), "text": text, "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()})


def asdict_shallow(c: Circular) -> dict:
    return {f: getattr(c, f) for f in c.__dataclass_fields__}


def render_circular(c: Circular, fmt: str) -> str:
    from anjian.workflow.reports.templating import render_template

    level_words = {"township": pgettext("circular", "townships"), "county": pgettext("circular", "counties")}
    return render_template(f"circular.{'html' if fmt == 'html' else 'md'}.j2", c=c, by_county=_by_county, cn_date=_cn_date,
                           level_words=level_words.get(c.level) or pgettext("circular", "units"),
                           lang="en" if is_english() else "zh-CN")


def _by_county(lines: list[CircularLine]) -> list[tuple[str, list[CircularLine]]]:
    """Lines grouped for the circular: a county on its own line, townships under theirs ("承德县：…")."""
    groups: dict[tuple[str, str], list[CircularLine]] = defaultdict(list)
    for x in lines:
        prefix = "" if x.level == "county" else pgettext("circular", "{county}: ").format(county=x.county_name)
        groups[(x.county, prefix)].append(x)
    return [(prefix, group) for (_, prefix), group in sorted(groups.items())]


def _cn_date(iso: str) -> str:
    d = dt.date.fromisoformat(iso[:10])
    return f"{d.year}年{d.month}月{d.day}日" if not is_english() else d.strftime("%d %B %Y").lstrip("0")


def issue(db: Database, draft: Circular, actor: str | Actor, now: dt.datetime) -> Circular:
    """Record that this circular was issued: an audit row with its milestone, figures and SHA-256."""
    with refusals_audited(db, actor, now, "circular"), db.write() as session:
        may(session, actor, "circular")
        (seq,) = audit.append(session, [audit.Entry(now, actor, "circular", None, detail={
            "milestone": draft.milestone, "sha256": draft.sha256, "title": draft.title, "as_of": draft.today,
            "on_time": len(draft.on_time), "late": len(draft.late), "missed": len(draft.missed),
            "deductions": {d["code"]: d["points"] for d in draft.deductions}})])
    return Circular(**{**asdict_shallow(draft), "issued_seq": seq})
