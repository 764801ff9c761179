"""The registry of units (national division codes) and the campaign in force: reading, validating,
loading them into a database, once. `init` is safe to run again: it changes nothing and says so."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from anjian.i18n import _
from anjian.states import campaign as campaigns
from anjian.states.campaign import Campaign, CampaignError
from anjian.states.labels import campaign_words, cohort_ids, parse_cohort, parse_level, use_campaign
from anjian.states.machines import shape
from anjian.workflow.clock import utc_text
from anjian.workflow.engine.authz import Acting, acting, may, name_of, refusals_audited
from anjian.workflow.engine.names import fold, short_name
from anjian.workflow.errors import BadInput, NotInitialized
from anjian.workflow.formats.tables import decode, parse_csv, read_bytes, refuse_if
from anjian.workflow.store import audit, scope
from anjian.workflow.store.db import Database
from anjian.workflow.store.models import CampaignRow, Meta, Unit, UnitCohort, UnitState, units_table
from anjian.workflow.store.rebuild import units_digest
from anjian.workflow.store.scope import FIRST

LEVELS = ("province", "city", "county", "township")
# What everything a drill (演练, `init --drill`) database prints starts with: never taken for the real thing.
DRILL_BANNER = "【演练】这是演练数据库，不是正式数据：所列内容仅供练习"
BUILTIN_REGISTRIES = ("chengde", "china")
# The national registry ships compressed (states/registries/china.csv.gz: every province, prefecture, county
# and township of mainland China, 统计用区划代码 as of 2022-10-31); a province is loaded by its two digits.
NATIONAL = "china"


@dataclass(frozen=True)
class Source:
    """A registry or campaign as text, with where it came from and its digest."""

    name: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def registry_source(spec: str) -> Source:
    """The registry named `spec`: a built-in one (chengde, china), a province or a city of the national
    one by its two- or four-digit code (13 = 河北省, 1307 = 张家口市), or a CSV file."""
    if spec == NATIONAL:
        return Source(spec, national_text())
    if len(spec) in (2, 4) and spec.isascii() and spec.isdigit():
        return province_source(spec)
    if spec in BUILTIN_REGISTRIES:
        text = resources.files("anjian.states").joinpath("registries", f"{spec}.csv").read_text("utf-8")
        return Source(spec, text)
    return Source(str(Path(spec)), decode(read_bytes(spec, "registry file"), spec))


def national_text() -> str:
    """The national registry's CSV, from the compressed file shipped with anjian."""
    import gzip

    packed = resources.files("anjian.states").joinpath("registries", f"{NATIONAL}.csv.gz").read_bytes()
    return gzip.decompress(packed).decode("utf-8")


def province_source(prefix: str) -> Source:
    """One province (two digits) or one city (four) of the national registry: its row and every unit
    whose code starts with those digits, named `china:NN` or `china:NNNN`; an unknown code is bad input
    naming the provinces there are, or the cities of the province it names."""
    header, *lines = national_text().splitlines()
    level = "province" if len(prefix) == 2 else "city"
    found = {line[:len(prefix)]: line.split(",")[1] for line in lines
             if line.split(",")[2] == level and (level == "province" or line.startswith(prefix[:2]))}
    if prefix not in found and level == "city":
        raise BadInput(_("--registry {code}: no city has the code {code}; the cities of {province} are: {known}").format(
            code=prefix, province=prefix[:2], known=", ".join(f"{k} {v}" for k, v in sorted(found.items())) or "—"))
    if prefix not in found:
        raise BadInput(_("--registry {code}: no province has the code {code}; the provinces are: {known}").format(
            code=prefix, known=", ".join(f"{k} {v}" for k, v in sorted(found.items()))))
    chosen = [line for line in lines if line.startswith(prefix)]
    return Source(f"{NATIONAL}:{prefix}", "\n".join([header, *chosen]) + "\n")


def campaign_source(spec: str) -> Source:
    if spec in campaigns.BUILTIN:
        return Source(spec, campaigns.builtin_text(spec))
    return Source(str(Path(spec)), decode(read_bytes(spec, "campaign file"), spec))


def parse_registry(source: Source) -> list[dict]:
    """Validated unit rows of a registry CSV; every bad row is reported with its line, none loaded."""
    records, problems = parse_csv(source.text, source.name, ("code", "name", "level", "parent_code"), ("cohorts",))
    seen: dict[str, int] = {}
    rows = []
    for r in records:
        v = r.values
        code, name, parent = v["code"], v["name"], v["parent_code"] or None
        level = parse_level(v["level"]) or v["level"].lower()  # city, 市, City …
        bad = []
        if not (code.isascii() and code.isdigit() and len(code) in (6, 9, 12)):
            bad.append(_("code {code!r} is not a 6-, 9- or 12-digit division code").format(code=code))
        elif code in seen:
            bad.append(_("code {code} also on line {line}").format(code=code, line=seen[code]))
        if not name:
            bad.append(_("name is empty"))
        elif len(name) > 64:
            bad.append(_("name is longer than 64 characters"))
        elif any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
            bad.append(_("name {name!r} contains a line break or control character").format(name=name))
        if level not in LEVELS:
            bad.append(_("level {level!r} is not one of {levels}").format(level=v["level"], levels=", ".join(LEVELS)))
        if parent is not None and not (parent.isascii() and parent.isdigit()):
            bad.append(_("parent_code {parent!r} is not a division code").format(parent=parent))
        cohorts = [parse_cohort(c.strip()) or c.strip()  # key, 重点 …
                   for c in v.get("cohorts", "").replace(";", " ").replace("|", " ").replace("、", " ").split() if c.strip()]
        for c in cohorts:
            if c not in cohort_ids():
                bad.append(_("cohort {cohort!r} is not one of {cohorts}").format(cohort=c, cohorts=", ".join(cohort_ids())))
        if cohorts and level != "township":
            bad.append(_("only townships carry cohorts"))
        problems.extend(_("line {line}: {problem}").format(line=r.line, problem=b) for b in bad)
        seen.setdefault(code, r.line)
        if not bad:
            rows.append({"line": r.line, "code": code, "name": name, "level": level, "parent_code": parent, "cohorts": cohorts})
    by_code = {row["code"]: row for row in rows}
    top = min((LEVELS.index(row["level"]) for row in rows), default=0)
    for row in rows:
        parent = by_code.get(row["parent_code"] or "")
        if parent is None:
            if row["parent_code"] in seen or LEVELS.index(row["level"]) == top:
                continue  # a parent on a bad line is reported there
            problems.append(_("line {line}: {problem}").format(line=row["line"], problem=(
                _("parent_code {parent} is not in the file").format(parent=row["parent_code"]) if row["parent_code"]
                else _("a {level} needs a parent_code").format(level=row["level"]))))
        elif LEVELS.index(parent["level"]) >= LEVELS.index(row["level"]):
            problems.append(_("line {line}: {problem}").format(line=row["line"], problem=_(
                "parent {parent} is a {parent_level}, not above a {level}").format(
                parent=parent["code"], parent_level=parent["level"], level=row["level"])))
    if not rows and not problems:
        problems.append(_("the file has no units"))
    refuse_if(sorted(problems, key=_line_key), source.name)
    return rows


def _line_key(problem: str) -> int:
    import re

    m = re.match(r"^\D{0,6}?(\d+)\D", problem)  # "line 7: …" or "第 7 行：…"
    return int(m.group(1)) if m else 0


def parse_campaign(source: Source) -> Campaign:
    try:
        return campaigns.load(source.text, source.name)
    except CampaignError as exc:
        raise BadInput(_("campaign {name} cannot be used").format(name=source.name), exc.problems) from None


@lru_cache(maxsize=8)
def _campaign_from_text(text: str) -> Campaign:
    return campaigns.load(text, stored=True)


def campaign_in_force(session: Session) -> Campaign:
    """The campaign this command works on: the database's only one, or the one chosen (`--campaign`)
    among several (`store.scope`)."""
    text = session.get(Meta, "campaign")
    if text is None:
        raise NotInitialized("this database has no campaign yet: run `anjian init` first")
    no = scope.number(session)
    if no != FIRST:
        text = session.get(CampaignRow, no)
        if text is None:
            raise NotInitialized(f"campaign {no} of this database has no file")
        return _in_use(_campaign_from_text(text.text))
    return _in_use(_campaign_from_text(text.value))


def _load_campaign(session: Session, old: str | None, new: Campaign, source: Source, now: dt.datetime,
                   actor: Acting) -> tuple[bool, str]:
    """The first campaign's file in `meta`, audited, unless it is already the one loaded: (changed, message)."""
    if old == new.sha256:
        return False, _("Campaign {id} already loaded, unchanged").format(id=new.id)
    if old is not None:
        _same_machines(_campaign_from_text(meta(session, "campaign")), new, source.name)
    _set_meta(session, "campaign", source.text)
    _set_meta(session, "campaign_sha256", new.sha256)
    audit.append(session, [audit.Entry(now, actor, "campaign_load", detail={
        "campaign": new.id, "source": source.name, "sha256": new.sha256, "replaced": old})])
    return True, _("Campaign {id} loaded ({title})").format(id=new.id, title=new.title)


def _same_machines(was: Campaign, new: Campaign, source: str) -> None:
    """A file replacing the campaign a database runs may change its dates, guards and words, not its
    machines: its units have states in them, and its log is replayed on them."""
    if shape(was) != shape(new):
        raise BadInput(_("{source}: its machines (stages, states or transitions) differ from those of the "
                         "campaign {id} this database runs, whose units already have states in them; a file may "
                         "change dates, guards and words, not the machines: add it as a campaign of its own "
                         "(anjian campaign add)").format(source=source, id=was.id))


def _in_use(campaign: Campaign) -> Campaign:
    use_campaign(campaign)  # what this command or request prints names the campaign's cohorts as it does
    return campaign


def meta(session: Session, key: str) -> str | None:
    row = session.get(Meta, key)
    return row.value if row else None


def _set_meta(session: Session, key: str, value: str) -> None:
    row = session.get(Meta, key)
    if row is None:
        session.add(Meta(key=key, value=value))
    else:
        row.value = value


@dataclass(frozen=True)
class InitResult:
    database: str
    migrations: list[str]
    registry: str
    units: dict[str, int]
    campaign: str
    changed: bool
    messages: list[str]


def drill_of(db: Database) -> bool | None:
    """True for a drill (a practice database, `init --drill`), False for a live one, None for one not
    initialized yet (no schema, or no registry loaded)."""
    if db.current_revision() is None:
        return None
    with db.read() as session:
        if meta(session, "registry_sha256") is None:
            return None
        return drill_in(session)


def drill_in(session: Session) -> bool:
    """Whether the database of this session is a drill. Both the meta row and the hash-chained
    registry_load row must say so: flipping the meta row with sqlite3 (to backdate writes in a live
    database) does not make a drill."""
    from anjian.workflow.store.models import AuditRow

    if meta(session, "drill") != "1":
        return False
    load = session.scalar(select(AuditRow.detail).where(AuditRow.action == "registry_load")
                          .order_by(AuditRow.seq).limit(1).execution_options(**{scope.EVERY_CAMPAIGN: True}))
    return load is not None and json.loads(load).get("drill") is True


def _schema_words(migrations: list[str]) -> str:
    if migrations:
        return _("The database schema is upgraded to {revision}").format(revision=migrations[-1])
    return _("The database schema is up to date")


def initialize(db: Database, registry: str | None, campaign: str | None, now: dt.datetime, actor: Acting | str,
               login: str | None = None, as_user: str | None = None, drill: bool = False,
               cover: str = "registry") -> InitResult:
    """Create or upgrade the schema, then load the registry and campaign unless already there; with
    `drill` a new database is made a drill (`_mark_drill`). Both files are read and validated before
    the database is touched, so bad input changes nothing. On a database with no officials the current
    OS account (`login`, by default this process's) becomes its admin; once there are officials, only an
    admin may run init (the CLI's case: `login` given, `actor` is `Actor.system(login)` until then)."""
    from anjian.workflow.services.officials import ensure_admin, identify, os_login

    actor = acting(actor)
    new_campaign = parse_campaign(camp_source := campaign_source(campaign or "chengde-2014"))
    with campaign_words(new_campaign):  # a registry's cohorts are the campaign's
        rows = parse_registry(reg_source := registry_source(registry or "chengde"))
    if drill and drill_of(db) is False:
        raise BadInput(_("the database {url} is a live database and cannot become a drill: make a new database for drills (--db NEW-FILE init --drill)").format(url=db.url))
    migrations = db.upgrade()
    messages = [_schema_words(migrations)]
    changed = bool(migrations)
    with refusals_audited(db, login or actor, now, "init"), db.write() as session:
        from anjian.workflow.store.models import Official

        if login is not None and session.scalar(select(func.count()).select_from(Official)):
            actor = identify(session, login, as_user)
            may(session, actor, "init")
        loaded_sha = meta(session, "registry_sha256")
        if loaded_sha is None:
            messages += _mark_drill(session) if drill else []
            covered = _cover(cover, rows, new_campaign.city, reg_source.name)
            _load_units(session, rows, reg_source, now, actor, drill, covered, new_campaign)
            messages.append(_("Registry {name} loaded: {count} unit(s)").format(name=reg_source.name, count=len(rows)))
            changed = True
        elif loaded_sha != reg_source.sha256 and registry is not None:
            raise BadInput(
                _("this database already holds the registry {loaded}; {name} differs. Use a new database (--db) for "
                  "another registry").format(loaded=meta(session, "registry_name"), name=reg_source.name)
            )
        else:
            messages.append(_("Registry {name} already loaded, unchanged").format(name=meta(session, "registry_name")))
        old = meta(session, "campaign_sha256")
        if old is not None and campaign is None:
            new_campaign = _campaign_from_text(meta(session, "campaign"))  # a plain re-run keeps the first campaign
        loaded = _load_campaign(session, old, new_campaign, camp_source, now, actor)
        messages.append(loaded[1])
        changed = changed or loaded[0]
        admin = ensure_admin(session, login or os_login(), now)
        if admin:
            messages.append(_("Operating-system account {login} is now the admin of this database").format(login=admin))
            changed = True
        counts = dict(session.execute(select(Unit.level, func.count()).group_by(Unit.level)).all())
    if not changed:
        messages.append(_("init changed nothing"))
    return InitResult(db.url, migrations, meta_name(db), counts, new_campaign.id, changed, messages)


def _mark_drill(session: Session) -> list[str]:
    """Make the database being created a drill, for practice: its writes may set their time and all it
    prints says 演练 (the registry_load row says so too: `drill_in`). A live database never becomes one."""
    _set_meta(session, "drill", "1")
    return [_("This is a drill database: writes may set their time (--now), and all output says 演练 (drill)")]


def meta_name(db: Database) -> str:
    with db.read() as session:
        return meta(session, "registry_name") or ""


def _cover(cover: str, rows: list[dict], city: str, name: str) -> set[str] | None:
    """The units the first campaign covers: all (None), or those of its city (`subtree`) for --cover city."""
    if cover != "city":
        return None
    if not any(r["code"] == city for r in rows):
        raise BadInput(_("--cover city: the campaign's city {city} is not in the registry {name}").format(
            city=city, name=name))
    return set(subtree([(r["code"], r["parent_code"]) for r in rows], city))


def subtree(pairs: list[tuple[str, str | None]], city: str) -> list[str]:
    """The codes a campaign of `city` covers, from (code, parent) pairs: the city, every unit under it,
    and the units above it up to the registry's root (a province, for its officials' jurisdiction)."""
    parent = dict(pairs)
    children: dict[str | None, list[str]] = {}
    for code, p in pairs:
        children.setdefault(p, []).append(code)
    out, todo = [], [city]
    while todo:
        code = todo.pop()
        out.append(code)
        todo += children.get(code, [])
    up = parent.get(city)
    while up is not None and up in parent:
        out.append(up)
        up = parent[up]
    return sorted(out)


def _load_units(session: Session, rows: list[dict], source: Source, now: dt.datetime, actor: Acting,
                drill: bool = False, covered: set[str] | None = None, campaign: Campaign | None = None) -> None:
    """The registry's units, and their states in the first campaign: every unit's, or (`covered`, init
    --cover city) those of the campaign's city alone."""
    stamp = utc_text(now)
    conn = session.connection()  # Core executemany: the ORM's bulk path costs more than the insert itself
    units = [
        {"code": r["code"], "name": r["name"], "short_name": short_name(fold(r["name"]), r["level"]),
         "level": r["level"], "parent_code": r["parent_code"]}
        for r in rows
    ]
    conn.execute(insert(units_table), units)
    mine = rows if covered is None else [r for r in rows if r["code"] in covered]
    machines = (campaign or campaigns.builtin()).machines
    conn.execute(insert(UnitState.__table__), [
        {"campaign_no": FIRST, "unit_code": r["code"], "state": machines[r["level"]].initial if r["level"] in machines else None,
         "version": 1, "changed_at": stamp, "changed_by": name_of(actor)} for r in mine])
    cohorts = [{"unit_code": r["code"], "cohort": c} for r in mine for c in r["cohorts"]]
    if cohorts:
        conn.execute(insert(UnitCohort.__table__), [c | {"campaign_no": FIRST} for c in cohorts])
    levels = Counter(r["level"] for r in rows)
    _set_meta(session, "registry_name", source.name)
    _set_meta(session, "registry_sha256", source.sha256)
    audit.append(session, [audit.Entry(now, actor, "registry_load", detail={
        "source": source.name, "sha256": source.sha256, "units": len(rows), "levels": dict(levels),
        "cohorts": len(cohorts), "seeded": _seeded(cohorts), "units_sha256": units_digest(registry_columns(units))}
        | ({"covered": len(mine)} if covered is not None else {})
        | ({"drill": True, "meta": {"drill": "1"}} if drill else {}))])


def registry_columns(units: list[dict]) -> list[tuple]:
    """The registry columns of the units a load inserts (the units table holds no others: a registry
    is loaded once, into an empty table), as `units_digest` reads them from the table."""
    return [(u["code"], u["name"], u["short_name"], u["level"], u["parent_code"]) for u in units]


def _seeded(cohorts: list[dict]) -> dict[str, list[str]]:
    """The cohorts a registry seeds, as the audit row lists them: cohort -> unit codes."""
    out: dict[str, list[str]] = {}
    for c in cohorts:
        out.setdefault(c["cohort"], []).append(c["unit_code"])
    return out
