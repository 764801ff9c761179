"""Services that change units: fire a trigger (one or a batch), record a checklist fact, designate a
cohort. Each change and its audit row are written in one transaction; nothing is written on refusal."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from anjian.i18n import _
from anjian.states.guards import Evidence, Facts, unmet
from anjian.states.labels import LEVEL_NAMES, TRIGGER_NAMES
from anjian.states.machines import of, specs
from anjian.workflow.clock import utc_text
from anjian.workflow.engine import authz, machine
from anjian.workflow.engine.authz import Acting, name_of
from anjian.workflow.engine.facts import APPLY_ACTIONS, FactsLoader
from anjian.workflow.engine.names import Resolver, UnitRef
from anjian.workflow.errors import BadInput, Conflict, NotPermitted, Refused
from anjian.workflow.services.late import effective_detail
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.store import audit, scope
from anjian.workflow.store.db import Database, among, pieces
from anjian.workflow.store.evidence import EvidenceFile, examine, keep
from anjian.workflow.store.models import Unit, UnitState


@dataclass(frozen=True)
class Transition:
    """One fired trigger as written: its audit sequence number and the unit's new version."""

    seq: int
    code: str
    name: str
    level: str
    trigger: str
    from_state: str
    to_state: str
    version: int


@dataclass(frozen=True)
class RowProblem:
    line: int
    unit: str
    trigger: str
    kind: str  # "bad_input", "not_permitted" or "refused"
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class BatchResult:
    applied: list[Transition]
    problems: list[RowProblem]
    rows: int

    @property
    def complete(self) -> bool:
        return not self.problems


def normalize_trigger(name: str) -> str:
    """A trigger by its identifier (`-` for `_`), its Chinese or English name (申请验收 = apply)."""
    from anjian.states.labels import parse_trigger

    return parse_trigger(name) or name.strip().replace("-", "_").lower()


def trigger_for(unit: UnitRef, trigger: str) -> str:
    """The trigger name checked against the unit's machine; BadInput lists the valid ones."""
    t = normalize_trigger(trigger)
    spec = of(unit.level)
    if spec is None:
        raise BadInput(_("{unit} ({code}) is a {level}: it has no state machine in this campaign").format(
            unit=unit.name, code=unit.code, level=LEVEL_NAMES.get(unit.level, unit.level)))
    if t not in spec.triggers:
        valid = "、".join(f"{x}（{TRIGGER_NAMES.get(x, x)}）" for x in spec.triggers)
        raise BadInput(_("trigger “{text}” does not exist for a {level}; {level} triggers: {valid}").format(
            text=trigger, level=LEVEL_NAMES.get(unit.level, unit.level), valid=valid))
    return t


def levels_for(trigger: str) -> tuple[str, ...]:
    """The unit levels whose machine has this trigger: narrows a name like 宽城 (county or town)."""
    t = normalize_trigger(trigger)
    return tuple(level for level, spec in specs().items() if t in spec.triggers)


# Guards that say who may act rather than what must be true: the contract's exit 4, not 3.
PERMISSION_GUARDS = ("inspector_is_not_applicant",)


def _not_permitted(facts: Facts, trigger: str) -> bool:
    t = facts.campaign.machines[facts.level].transition(trigger)
    return facts.state == t["source"] and any(
        g in facts.campaign.conditions(facts.level, trigger) and unmet(facts, g) for g in PERMISSION_GUARDS)


def conflict_message(u: Unit, expected: int) -> str:
    from anjian.workflow.clock import shown

    when = shown(u.changed_at) if u.changed_at else "?"
    return _("{unit} ({code}) was changed meanwhile by {who} at {when} (version {version}, you had {expected}); "
             "nothing was written — look again and retry").format(unit=u.name, code=u.code, who=u.changed_by, when=when,
                                                                 version=u.version, expected=expected)


class Advancer:
    """Fires triggers inside one write transaction, keeping later rows aware of earlier ones."""

    def __init__(self, session: Session, now: dt.datetime, actor: Acting | str, effective: dt.date | None = None):
        self.session = session
        self.now = now
        self.effective = effective  # a late entry (补录): the date its paper record says
        self.actor = authz.acting(actor)
        self.resolver = Resolver(session)
        self.loader = FactsLoader(session, campaign_in_force(session), now)
        self.versions: dict[str, int] = {}
        self.entries: list[audit.Entry] = []
        self.pending: list[tuple[UnitRef, str, str, str]] = []

    def prepare(self, unit: UnitRef, trigger: str, note: str | None, evidence: list[EvidenceFile]) -> tuple[str, str]:
        """Check and fire one trigger in memory; return (from, to) or raise Refused."""
        self.loader.prefetch([unit.code])
        authz.may_fire(self.session, self.actor, unit.level, trigger, unit.code, unit.name)
        authz.not_own_unit(self.session, self.actor, unit.code, self.loader.applicants.get(unit.code, ()), trigger)
        late = {} if self.effective is None else effective_detail(self.session, self.actor, unit.code, unit.name,
                                                                   self.effective, self.now)
        facts = self.loader.facts(unit.code, name_of(self.actor), note, tuple(Evidence(e.path, e.sha256) for e in evidence))
        verdict = machine.check(facts, trigger)
        if not verdict.allowed:
            names = {"unit": unit.name, "code": unit.code, "trigger": TRIGGER_NAMES.get(trigger, trigger), "id": trigger}
            if _not_permitted(facts, trigger):  # every reason is still listed, not only the permission
                raise authz.denied(_("{unit} ({code}): {actor} may not “{trigger}” ({id}) here").format(
                    actor=name_of(self.actor), **names), unit.code).with_details(verdict.unmet)
            reasons = list(verdict.unmet)
            u = self.loader.units[unit.code]
            if facts.state != facts.campaign.machines[unit.level].transition(trigger)["source"] and u.changed_by and u.changed_at:
                from anjian.workflow.clock import (
                    shown,  # the race's losers learn who moved the unit, and when
                )

                reasons.append(_("last changed by {who}, {when} (version {version})").format(
                    who=u.changed_by, when=shown(u.changed_at), version=u.version))
            raise Refused(_("{unit} ({code}): “{trigger}” ({id}) cannot be done now").format(**names), reasons)
        before = facts.state
        after = machine.fire(facts, trigger)
        self.loader.overlay[unit.code] = after
        if trigger in APPLY_ACTIONS:
            self.loader.applicants[unit.code].append(name_of(self.actor))
        self.versions.setdefault(unit.code, self.loader.units[unit.code].version)
        self.entries.append(audit.Entry(self.now, self.actor, trigger, unit.code, before, after, note,
                                        tuple(e.as_json() for e in evidence), late))
        self.pending.append((unit, trigger, before, after))
        return before, after

    def commit(self) -> list[Transition]:
        """Write the new states (refusing stale versions) and the audit rows, in one statement each."""
        final: dict[str, str] = {}
        steps: Counter[str] = Counter()
        for unit, _t, _n, after in self.pending:
            final[unit.code] = after
            steps[unit.code] += 1
        stamp, by = utc_text(self.now), name_of(self.actor)
        params = [{"c": code, "v": self.versions[code], "state": state, "nv": self.versions[code] + steps[code]}
                  for code, state in final.items()]
        if params:
            self._refuse_stale(list(final))
            states = UnitState.__table__.c
            stmt = (update(UnitState.__table__)
                    .where(states.campaign_no == scope.number(self.session), states.unit_code == bindparam("c"),
                           states.version == bindparam("v"))
                    .values(state=bindparam("state"), version=bindparam("nv"), changed_at=stamp, changed_by=by))
            conn = self.session.connection()
            changed = conn.execute(stmt, params).rowcount
            if conn.dialect.supports_sane_multi_rowcount and changed != len(params):
                self._refuse_stale(list(final))  # cannot happen under the write lock; never write over a change
        seqs = audit.append(self.session, self.entries)
        out, seen = [], dict.fromkeys(final, 0)
        for seq, (unit, trigger, before, after) in zip(seqs, self.pending, strict=True):
            seen[unit.code] += 1
            out.append(Transition(seq, unit.code, unit.name, unit.level, trigger, before, after,
                                  self.versions[unit.code] + seen[unit.code]))
        return out

    def _refuse_stale(self, codes: list[str]) -> None:
        """Raise Conflict for the first unit whose stored version is not the one this batch read."""
        self.session.flush()
        for part in pieces(self.session, codes):
            stored = dict(self.session.execute(select(Unit.code, Unit.version).where(among(self.session, Unit.code, part))).all())
            for code in part:
                if stored.get(code) != self.versions[code]:
                    self.session.expire_all()
                    raise Conflict(conflict_message(self.session.get(Unit, code), self.versions[code]))


def advance(db: Database, unit: str, trigger: str, actor: Acting | str, now: dt.datetime, note: str | None = None,
            evidence: tuple[str, ...] = (), expect_version: int | None = None, evidence_dir=None,
            evidence_max: int | None = None, effective: dt.date | None = None) -> Transition:
    """Fire one trigger for one unit, with its guards; refuse a stale `expect_version` (Conflict).
    Evidence is hashed and copied into the store before the write lock is taken (see `keep`). With
    `effective`, a late entry (补录) of a paper record of that date (services/late.py)."""
    actor = authz.acting(actor)
    files = examine(list(evidence), evidence_max)
    if files and evidence_dir is not None:
        keep(files, evidence_dir)
    note = note.strip() if note and note.strip() else None
    with authz.refusals_audited(db, actor, now, f"advance {trigger}"), db.write() as session:
        adv = Advancer(session, now, actor, effective)
        ref = adv.resolver.resolve(unit, levels=levels_for(trigger))
        t = trigger_for(ref, trigger)
        if expect_version is not None and ref.version != expect_version:
            raise Conflict(conflict_message(session.get(Unit, ref.code), expect_version))
        adv.prepare(ref, t, note, files)
        return adv.commit()[0]


@dataclass(frozen=True)
class BatchRow:
    line: int
    unit: str
    trigger: str
    note: str | None = None


HINTED = 50  # unknown units of a batch given "did you mean" names: each is a scan of every unit's name


def advance_batch(db: Database, rows: list[BatchRow], actor: Acting | str, now: dt.datetime, partial: bool = False,
                  effective: dt.date | None = None) -> BatchResult:
    """Fire many triggers in one transaction: all or nothing, or with `partial` the rows that pass
    (with `effective`, all late entries of that date)."""
    actor = authz.acting(actor)
    problems: list[RowProblem] = []
    with db.write() as session:
        adv = Advancer(session, now, actor, effective)
        refs: dict[int, UnitRef] = {}
        adv.resolver.preload([r.unit for r in rows])
        for r in rows:
            try:
                refs[r.line] = adv.resolver.resolve(r.unit, levels=levels_for(r.trigger), hint=len(problems) < HINTED)
            except BadInput as exc:
                problems.append(RowProblem(r.line, r.unit, r.trigger, "bad_input", (exc.message, *exc.details)))
        adv.loader.prefetch(ref.code for ref in refs.values())
        for r in rows:
            ref = refs.get(r.line)
            if ref is None:
                continue
            try:
                adv.prepare(ref, trigger_for(ref, r.trigger), r.note or None, [])
            except BadInput as exc:
                problems.append(RowProblem(r.line, r.unit, r.trigger, "bad_input", (exc.message,)))
            except NotPermitted as exc:
                problems.append(RowProblem(r.line, r.unit, r.trigger, "not_permitted", (exc.message, *exc.details)))
            except Refused as exc:
                problems.append(RowProblem(r.line, r.unit, r.trigger, "refused", tuple(exc.details)))
        problems.sort(key=lambda p: p.line)
        applied = [] if problems and not partial else adv.commit()  # all or nothing: nothing written yet
    audit_batch_denials(db, actor, now, problems, "advance", "trigger")
    return BatchResult(applied, problems, len(rows))


DENIALS_KEPT = 5  # the refused rows a batch's one `denied` audit row quotes; the rest are counted


def audit_batch_denials(db: Database, actor: Acting, now: dt.datetime, problems: list, verb: str, what: str) -> None:
    """One `denied` row for a batch's refused rows, however many: the first one's attempt, unit, line and
    reason (as a single refusal has them), the count, and the first few rows. A file of 100,000 rows
    out of jurisdiction is one attempt, and one row per line would only swell the log. `verb` and `what`
    name the batch's action and the field each row attempts (advance/trigger, record/item)."""
    denials = [p for p in problems if p.kind == "not_permitted"]
    if not denials:
        return
    first = denials[0]
    detail = {"attempted": f"{verb} {getattr(first, what)}", "unit": first.unit, "line": first.line,
              "reason": first.reasons[0], "count": len(denials),
              "rows": [{"line": p.line, "unit": p.unit, what: getattr(p, what), "reason": p.reasons[0]}
                       for p in denials[:DENIALS_KEPT]]}
    if len(first.reasons) > 1:
        detail["details"] = list(first.reasons[1:])
    with db.write() as session:
        audit.append(session, [audit.Entry(now, actor, "denied", None, detail=detail)])
