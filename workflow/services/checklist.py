"""Services that record facts about a unit: checklist values and cohort designations."""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from anjian.i18n import _
from anjian.states.campaign import Campaign, Item
from anjian.states.guards import FLAG_FALSE, FLAG_TRUE
from anjian.states.labels import COHORT_NAMES, LEVEL_NAMES, cohort_ids
from anjian.workflow.clock import utc_text
from anjian.workflow.engine import authz
from anjian.workflow.engine.authz import Acting, name_of
from anjian.workflow.engine.names import Resolver, UnitRef
from anjian.workflow.errors import BadInput, NotPermitted
from anjian.workflow.formats.tables import Record
from anjian.workflow.services.advance import audit_batch_denials
from anjian.workflow.services.late import effective_detail
from anjian.workflow.services.registry import campaign_in_force
from anjian.workflow.store import audit, scope
from anjian.workflow.store.db import Database
from anjian.workflow.store.evidence import examine, keep
from anjian.workflow.store.models import ChecklistValue, Unit, UnitCohort, UnitState

TRUE_WORDS = {"是", "有", "已", "已落实", "已建立", "yes", "y", "true", "t", "1", "√", "✓", "✔", "ok"}
FALSE_WORDS = {"否", "无", "未", "未落实", "no", "n", "false", "f", "0", "×", "✗"}


@dataclass(frozen=True)
class Recorded:
    seq: int | None
    code: str
    name: str
    item: str
    label: str
    value: str
    previous: str | None
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return self.seq is not None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower()


def matching_items(items: tuple[Item, ...], text: str) -> list[Item]:
    """The items a name fits: its code (`-` or `_`, any case), its full label, the code's last part
    (`vehicle` for six.vehicle), or a part of the label (NFKC-folded). The most exact kind of fit wins."""
    key = _fold(text)
    code = key.replace("-", "_")
    if not key:
        return []
    for fits in (lambda i: i.id == code,
                 lambda i: _fold(i.label) == key,
                 lambda i: i.id.rsplit(".", 1)[-1] == code,
                 lambda i: key in _fold(i.label)):
        found = [i for i in items if fits(i)]
        if found:
            return found
    return []


def find_item(campaign: Campaign, level: str, text: str) -> Item:
    """A checklist item by its code, its label or a distinctive part of it; an ambiguous name is
    refused with the candidates, never guessed."""
    items = campaign.items(level)
    if not items:
        raise BadInput(_("a {level} has no checklist in campaign {campaign}").format(level=LEVEL_NAMES.get(level, level), campaign=campaign.id))
    found = matching_items(items, text)
    if len(found) == 1:
        return found[0]
    if found:
        names = "; ".join(f"{i.id}（{i.label}）" for i in found[:10])
        more = _(" and {count} more").format(count=len(found) - 10) if len(found) > 10 else ""
        raise BadInput(_("checklist item “{text}” fits {count} items; name one by its code: {names}{more}").format(
            text=text, count=len(found), names=names, more=more))
    ids = ", ".join(i.id for i in items)
    raise BadInput(_("checklist item “{text}” does not exist for a {level}; items: {ids}").format(
        text=text, level=LEVEL_NAMES.get(level, level), ids=ids))


def item_keys(db: Database, names: list[str]) -> dict[str, str]:
    """Each name's item code where it names exactly one item (at some level), else the name itself: so
    that `六有：有执法车辆` and `six.vehicle` are found to be one item (evidence is matched to its pair)."""
    with db.read() as session:
        campaign = campaign_in_force(session)
    keys = {}
    for name in names:
        codes = {i.id for lv in ("township", "county") for i in matching_items(campaign.items(lv), name)}
        keys[name] = codes.pop() if len(codes) == 1 else name
    return keys


def item_levels(campaign: Campaign, text: str) -> tuple[str, ...]:
    """The levels whose checklist has an item of this name: narrows a unit like 宽城 (county or town)."""
    return tuple(lv for lv in ("township", "county") if matching_items(campaign.items(lv), text))


def normalize_value(item: Item, raw: str) -> str:
    """The stored text of a value: 是/否 for a flag, a whole number for a count, trimmed text."""
    value = unicodedata.normalize("NFKC", raw).strip()  # folds full-width digits and letters
    if item.kind == "flag":
        low = value.lower()
        if low in TRUE_WORDS:
            return FLAG_TRUE
        if low in FALSE_WORDS:
            return FLAG_FALSE
        raise BadInput(_("{item} ({label}) is a yes/no item: write 是 or 否, not “{text}”").format(item=item.id, label=item.label, text=raw))
    if item.kind == "count":
        if not (value.isascii() and value.isdigit()):
            raise BadInput(_("{item} ({label}) is a count: write a whole number such as 4, not “{text}”").format(
                item=item.id, label=item.label, text=raw))
        return str(int(value))
    value = raw.strip()  # text keeps its Chinese punctuation as written
    if not value:
        raise BadInput(_("{item} ({label}) needs some text (e.g. the keeper's name)").format(item=item.id, label=item.label))
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise BadInput(_("{item}: the text contains control characters (line breaks are not allowed)").format(item=item.id))
    if len(value) > 500:
        raise BadInput(_("{item}: the text is longer than 500 characters").format(item=item.id))
    return value


def _bump(session: Session, ref: UnitRef, now: dt.datetime, actor: Acting) -> None:
    session.execute(update(UnitState).where(UnitState.campaign_no == scope.number(session), UnitState.unit_code == ref.code)
                    .values(version=UnitState.version + 1, changed_at=utc_text(now), changed_by=name_of(actor))
                    .execution_options(synchronize_session=False))


def record(db: Database, unit: str, item: str, value: str, actor: Acting | str, now: dt.datetime,
           evidence: tuple[str, ...] = (), evidence_dir=None, evidence_max: int | None = None,
           effective: dt.date | None = None, expect_version: int | None = None) -> Recorded:
    """Record one checklist fact (an unchanged value writes nothing). Evidence is hashed and copied into
    the store before the write lock is taken (see `keep`). With `effective`, a late entry (补录) of a
    paper record of that date (services/late.py). A stale `expect_version` is refused (Conflict), as
    `advance` refuses it."""
    actor = authz.acting(actor)
    files = examine(list(evidence), evidence_max)
    if files and evidence_dir is not None:
        keep(files, evidence_dir)
    with authz.refusals_audited(db, actor, now, f"record {item}"), db.write() as session:
        campaign = campaign_in_force(session)
        # an item named by its label narrows the unit as its id does (宽城 + a county item is the county)
        ref = Resolver(session).resolve(unit, levels=item_levels(campaign, item))
        _expect(session, ref, expect_version)
        it = find_item(campaign, ref.level, item)
        stored = normalize_value(it, value)
        # after the input is checked, as `advance` checks unit and trigger first: no item is bad input (2)
        authz.may_record(session, actor, ref.level, ref.code, ref.name)
        late = {} if effective is None else effective_detail(session, actor, ref.code, ref.name, effective, now)
        row = session.get(ChecklistValue, (ref.code, it.id))
        previous = row.value if row else None
        cohorts = frozenset(session.scalars(select(UnitCohort.cohort).where(UnitCohort.unit_code == ref.code)))
        warnings = []
        if not it.applies(cohorts):
            names = "、".join(COHORT_NAMES[c] for c in it.only_for)
            warnings.append(_("{label} is required only of {cohorts}; {unit} is not one, so the record is for reference only")
                            .format(label=it.label, cohorts=names, unit=ref.name))
        if previous == stored and not files:
            return Recorded(None, ref.code, ref.name, it.id, it.label, stored, previous, warnings)
        if row is None:
            session.add(ChecklistValue(unit_code=ref.code, item=it.id, value=stored, recorded_at=utc_text(audit.stamp(session, now)), recorded_by=name_of(actor)))
        else:
            row.value, row.recorded_at, row.recorded_by = stored, utc_text(audit.stamp(session, now)), name_of(actor)
        _bump(session, ref, now, actor)
        (seq,) = audit.append(session, [audit.Entry(now, actor, "record", ref.code, ref.state, ref.state, None,
                                                    tuple(f.as_json() for f in files),
                                                    {"item": it.id, "value": stored, "previous": previous,
                                                     "version": ref.version + 1} | late)])
        return Recorded(seq, ref.code, ref.name, it.id, it.label, stored, previous, warnings)


@dataclass(frozen=True)
class Designation:
    code: str
    name: str
    cohort: str
    removed: bool
    seq: int | None

    @property
    def changed(self) -> bool:
        return self.seq is not None


@dataclass(frozen=True)
class DesignateRow:
    line: int
    unit: str
    cohort: str
    remove: bool = False


def normalize_cohort(text: str) -> str:
    """A cohort by its identifier (`-` for `_`), its Chinese, English or short name (重点 = key)."""
    from anjian.states.labels import parse_cohort

    c = parse_cohort(text) or unicodedata.normalize("NFKC", text).strip().replace("-", "_").lower()
    if c not in cohort_ids():
        names = ", ".join(f"{k}（{v}）" for k, v in COHORT_NAMES.items())
        raise BadInput(_("cohort “{text}” does not exist; cohorts: {names}").format(text=text, names=names))
    return c


def _not_designable(ref: UnitRef, cohort: str, seen: dict[tuple[str, str], int]) -> str | None:
    """Why a row cannot designate: not a township, or the same township and cohort as an earlier line."""
    if ref.level != "township":
        return _("{unit} ({code}) is a {level}; only townships are designated").format(
            unit=ref.name, code=ref.code, level=LEVEL_NAMES.get(ref.level, ref.level))
    if (ref.code, cohort) in seen:
        return _("{unit} ({code}) {cohort}: the same township and cohort as line {line}").format(
            unit=ref.name, code=ref.code, cohort=COHORT_NAMES[cohort], line=seen[ref.code, cohort])
    return None


def designate(db: Database, rows: list[DesignateRow], actor: Acting | str, now: dt.datetime) -> list[Designation]:
    """Add or remove cohorts for townships; all rows or none, and the plan's limits hold afterwards."""
    actor = authz.acting(actor)
    problems: list[str] = []
    out: list[Designation] = []
    denials: list[str] = []
    seen: dict[tuple[str, str], int] = {}  # (township, cohort) -> the line that named it first
    denied_units: set[str] = set()
    with authz.refusals_audited(db, actor, now, "designate"), db.write() as session:
        resolver = Resolver(session)
        resolver.preload([r.unit for r in rows])
        campaign = campaign_in_force(session)
        entries: list[audit.Entry] = []
        touched: dict[str, UnitRef] = {}  # the townships changed, whose limits are checked after all rows
        for r in rows:
            where = _("line {line}: ").format(line=r.line) if r.line else ""
            try:
                ref = resolver.resolve(r.unit, hint=len(problems) < 50)  # a hint scans every name
                cohort = normalize_cohort(r.cohort)
            except BadInput as exc:
                problems.append(where + exc.message + ("; " + "; ".join(exc.details) if exc.details else ""))
                continue
            wrong = _not_designable(ref, cohort, seen)
            if wrong:
                problems.append(where + wrong)
                continue
            seen[ref.code, cohort] = r.line
            try:
                authz.may_designate(session, actor, cohort, ref.code, ref.name)
            except NotPermitted as exc:
                denials.append(where + exc.message)
                denied_units.add(ref.code)
                continue
            has = session.get(UnitCohort, (ref.code, cohort)) is not None
            if has != r.remove:  # already as asked: nothing to write
                out.append(Designation(ref.code, ref.name, cohort, r.remove, None))
                continue
            if r.remove:
                session.delete(session.get(UnitCohort, (ref.code, cohort)))
            else:
                session.add(UnitCohort(unit_code=ref.code, cohort=cohort))
            session.flush()
            touched[ref.code] = ref
            entries.append(audit.Entry(now, actor, "undesignate" if r.remove else "designate", ref.code, ref.state,
                                       ref.state, None, (), {"cohort": cohort, "version": ref.version + 1}))
            out.append(Designation(ref.code, ref.name, cohort, r.remove, -1))
        problems.extend(_limits(session, campaign, touched))
        if denials:
            raise authz.denied(_("designation refused: {count} row(s) not permitted; nothing was written").format(count=len(denials)),
                               next(iter(denied_units)) if len(denied_units) == 1 else None
                               ).with_details(denials + problems)
        if problems:
            raise BadInput(_("designation refused: {count} problem(s); nothing was written").format(count=len(problems)), problems)
        for ref in touched.values():
            _bump(session, ref, now, actor)
        seqs = iter(audit.append(session, entries))
        return [Designation(d.code, d.name, d.cohort, d.removed, next(seqs)) if d.seq == -1 else d for d in out]


def _limits(session: Session, campaign: Campaign, touched: dict[str, UnitRef]) -> list[str]:
    """The plan's rules on cohorts, checked on the state after all rows: 1–3 county demos per county
    at most, and a county demonstration township must also be a key township."""
    problems = []
    counties = {ref.parent_code for ref in touched.values() if ref.parent_code}
    for cid, cohort in campaign.cohorts.items():
        if cohort.per_county:
            most = cohort.per_county[1]
            for parent in sorted(counties):
                n = session.scalar(select(func.count()).select_from(UnitCohort).join(Unit, Unit.code == UnitCohort.unit_code)
                                   .where(Unit.parent_code == parent, UnitCohort.cohort == cid))
                if n > most:
                    name = session.get(Unit, parent).name
                    problems.append(_("{county} would have {count} {cohort}s; the plan allows at most {most}").format(
                        county=name, count=n, cohort=COHORT_NAMES[cid], most=most))
        for needed in cohort.requires:
            for ref in touched.values():
                has = {c for c in session.scalars(select(UnitCohort.cohort).where(UnitCohort.unit_code == ref.code))}
                if cid in has and needed not in has:
                    problems.append(_("{unit} ({code}): a {cohort} must also be a {needed}; designate it {needed_id} "
                                      "first or in the same file").format(unit=ref.name, code=ref.code, cohort=COHORT_NAMES[cid],
                                                                          needed=COHORT_NAMES[needed], needed_id=needed))
    return problems


REMOVE_WORDS = ("1", "yes", "y", "true", "是", "remove", "移出", "删除", "√", "✓")


def designation_rows(records: list[Record], remove: bool = False) -> list[DesignateRow]:
    """Rows of a designation file (`unit,cohort`, optional `remove`); `remove` (the command's --remove)
    takes every row's township out of its cohort."""
    return [DesignateRow(r.line, r.values["unit"], r.values["cohort"],
                         remove or unicodedata.normalize("NFKC", r.values.get("remove", "")).strip().lower() in REMOVE_WORDS)
            for r in records]


# -- many checklist facts at once: `record UNIT ITEM=VALUE …` and `record --file` -----------------------
@dataclass(frozen=True)
class RecordRow:
    line: int  # 0 for the command line
    unit: str
    item: str
    value: str
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordProblem:
    line: int
    unit: str
    item: str
    kind: str  # "bad_input" or "not_permitted"
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class RecordBatch:
    recorded: list[Recorded]  # every row that passed, written or already so (seq None)
    problems: list[RecordProblem]
    rows: int

    @property
    def written(self) -> int:
        return sum(r.changed for r in self.recorded)


def _expect(session: Session, ref: UnitRef, expect_version: int | None) -> None:
    from anjian.workflow.errors import Conflict
    from anjian.workflow.services.advance import conflict_message

    if expect_version is not None and ref.version != expect_version:
        raise Conflict(conflict_message(session.get(Unit, ref.code), expect_version))


def record_batch(db: Database, rows: list[RecordRow], actor: Acting | str, now: dt.datetime, partial: bool = False,
                 evidence_dir=None, evidence_max: int | None = None, effective: dt.date | None = None,
                 expect_version: int | None = None) -> RecordBatch:
    """Record many checklist facts in one transaction, every row checked first: all or nothing, or with
    `partial` the rows that pass. One audit row per written item, with the same detail keys as `record`;
    an unchanged value writes nothing."""
    actor = authz.acting(actor)
    problems: list[RecordProblem] = []
    files: dict[int, list] = {}
    for n, r in enumerate(rows):
        try:
            files[n] = examine(list(r.evidence), evidence_max)
        except BadInput as exc:
            problems.append(RecordProblem(r.line, r.unit, r.item, "bad_input", (exc.message, *exc.details)))
    kept = [f for fs in files.values() for f in fs]
    if kept and evidence_dir is not None:
        keep(kept, evidence_dir)
    with db.write() as session:
        good = _checked_rows(session, rows, files, actor, now, effective, problems)
        for ref, *_rest in good:  # the pairs of one unit (`record UNIT A=1 B=2 --expect-version N`)
            _expect(session, ref, expect_version)
        problems.sort(key=lambda p: p.line)
        recorded = _write_rows(session, [] if problems and not partial else good, actor, now)
    audit_batch_denials(db, actor, now, problems, "record", "item")
    return RecordBatch(recorded, problems, len(rows))


def _checked_rows(session: Session, rows: list[RecordRow], files: dict[int, list], actor: Acting, now: dt.datetime,
                  effective: dt.date | None, problems: list[RecordProblem]) -> list[tuple]:
    """The rows that pass every check, as (unit, item, stored value, evidence, late-entry detail); each
    problem is added to `problems`."""
    campaign = campaign_in_force(session)
    resolver = Resolver(session)
    resolver.preload([r.unit for r in rows])
    seen: dict[tuple[str, str], int] = {}
    late_of: dict[str, dict] = {}
    good = []
    for n, r in enumerate(rows):
        if n not in files:
            continue
        try:
            ref = resolver.resolve(r.unit, levels=item_levels(campaign, r.item), hint=len(problems) < 50)
            it = find_item(campaign, ref.level, r.item)
            stored = normalize_value(it, r.value)
            if (ref.code, it.id) in seen:
                raise BadInput(_("{unit} ({code}) {item}: the same unit and item as line {line}").format(
                    unit=ref.name, code=ref.code, item=it.id, line=seen[ref.code, it.id]))
            seen[ref.code, it.id] = r.line
            authz.may_record(session, actor, ref.level, ref.code, ref.name)
            if effective is not None and ref.code not in late_of:
                late_of[ref.code] = effective_detail(session, actor, ref.code, ref.name, effective, now)
        except (BadInput, NotPermitted) as exc:
            kind = "not_permitted" if isinstance(exc, NotPermitted) else "bad_input"
            problems.append(RecordProblem(r.line, r.unit, r.item, kind, (exc.message, *exc.details)))
            continue
        good.append((ref, it, stored, files[n], late_of.get(ref.code, {})))
    return good


def _write_rows(session: Session, good: list[tuple], actor: Acting, now: dt.datetime) -> list[Recorded]:
    """Write the checked rows whose value changes (or that bring evidence), one audit row each."""
    out: list[Recorded] = []
    entries: list[audit.Entry] = []
    versions: dict[str, int] = {}
    cohorts_of: dict[str, frozenset[str]] = {}
    for ref, it, stored, fs, late in good:
        row = session.get(ChecklistValue, (ref.code, it.id))
        previous = row.value if row else None
        if ref.code not in cohorts_of:
            cohorts_of[ref.code] = frozenset(session.scalars(select(UnitCohort.cohort).where(UnitCohort.unit_code == ref.code)))
        warnings = []
        if not it.applies(cohorts_of[ref.code]):
            names = "、".join(COHORT_NAMES[c] for c in it.only_for)
            warnings.append(_("{label} is required only of {cohorts}; {unit} is not one, so the record is for reference only")
                            .format(label=it.label, cohorts=names, unit=ref.name))
        if previous == stored and not fs:
            out.append(Recorded(None, ref.code, ref.name, it.id, it.label, stored, previous, warnings))
            continue
        at = utc_text(audit.stamp(session, now))
        if row is None:
            session.add(ChecklistValue(unit_code=ref.code, item=it.id, value=stored, recorded_at=at, recorded_by=name_of(actor)))
        else:
            row.value, row.recorded_at, row.recorded_by = stored, at, name_of(actor)
        versions[ref.code] = versions.get(ref.code, ref.version) + 1
        _bump(session, ref, now, actor)
        entries.append(audit.Entry(now, actor, "record", ref.code, ref.state, ref.state, None, tuple(f.as_json() for f in fs),
                                   {"item": it.id, "value": stored, "previous": previous, "version": versions[ref.code]} | late))
        out.append(Recorded(-1, ref.code, ref.name, it.id, it.label, stored, previous, warnings))
    session.flush()
    seqs = iter(audit.append(session, entries)) if entries else iter(())
    return [Recorded(next(seqs), *astuple_rest(d)) if d.seq == -1 else d for d in out]


def astuple_rest(d: Recorded) -> tuple:
    return (d.code, d.name, d.item, d.label, d.value, d.previous, d.warnings)


def template_rows(db: Database, unit: str) -> tuple[UnitRef, list[list[object]]]:
    """A unit's checklist as the rows of a sheet to fill in: item code, label, what it requires of this
    unit's cohorts, and the value recorded now (empty where none)."""
    from anjian.states.guards import parse_value
    from anjian.states.labels import required_words, value_words

    with db.read() as session:
        campaign = campaign_in_force(session)
        ref = Resolver(session).resolve(unit, levels=("township", "county"))
        cohorts = frozenset(session.scalars(select(UnitCohort.cohort).where(UnitCohort.unit_code == ref.code)))
        values = dict(session.execute(select(ChecklistValue.item, ChecklistValue.value)
                                      .where(ChecklistValue.unit_code == ref.code)).all())
    rows = []
    for item, required in campaign.applicable_items(ref.level, cohorts):
        raw = values.get(item.id)
        rows.append([item.id, item.label, required_words(item.kind, required),
                     value_words(parse_value(item.kind, raw)) if raw is not None else None])
    return ref, rows
