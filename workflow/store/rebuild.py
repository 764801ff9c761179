"""The tables the audit log determines, rebuilt from the log alone and compared with the stored ones.

Every change of a unit's state or version, a checklist value, a cohort, an official, a contact, a
setting (`meta`) or the office's calendar is an audit row carrying what it set. `Rebuild.feed` takes
the rows in order and names the first whose time is earlier than the row before it, or whose
transition does not follow from the unit's previous state by a trigger its machine has; `compare`
then reads each stored table beside what the log implies and names the first disagreement (its
table, key, both values and the row that last set it). Memory grows with the tables, not the log.

Rows written before a kind of detail was logged (designations without the unit's version, a calendar
without its days, a registry without the cohorts it seeded) leave part of a table undetermined: that
part is not compared, and `notes` says so.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from anjian.i18n import N_, _
from anjian.states.machines import SPECS, MachineSpec
from anjian.workflow.clock import shown
from anjian.workflow.store.audit import IN_CAMPAIGN
from anjian.workflow.store.models import (
    CalendarDay,
    CampaignRow,
    ChecklistValue,
    Contact,
    Meta,
    Official,
    UnitCohort,
    UnitState,
    units_table,
)


def moves_of(specs: dict[str, MachineSpec]) -> dict[str, tuple[str, dict[str, str]]]:
    """trigger -> (the machine's level, {from_state: to_state}); each trigger belongs to one machine."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    for level, spec in specs.items():
        for t in spec.transitions:
            sources = t["source"] if isinstance(t["source"], list | tuple) else [t["source"]]
            out.setdefault(t["trigger"], (level, {}))[1].update(dict.fromkeys(sources, t["dest"]))
    return out


MOVES = moves_of(SPECS)  # the engine's machines: a campaign's own file gives its own (`machines_of`)


def machines_of(session: Session) -> dict[int, dict[str, MachineSpec]]:
    """Each campaign's machines by its number, from the files the database keeps. A file that no longer
    loads is left out (its campaign is replayed on the engine's machines): the `meta` and `campaigns`
    tables are compared with the log, which names a file changed behind it."""
    from anjian.states.campaign import CampaignError, load

    texts = [(1, session.get(Meta, "campaign"))] + [(r.no, r) for r in session.scalars(select(CampaignRow))]
    out: dict[int, dict[str, MachineSpec]] = {}
    for no, row in texts:
        text = getattr(row, "value", None) or getattr(row, "text", None)
        if not text:
            continue
        try:
            out[no] = load(text, stored=True).machines
        except CampaignError:
            continue
    return out
ABSENT = N_("(no such row)")
COLUMNS = {"checklist_values": ("value", "recorded_at", "recorded_by"), "unit_cohorts": (),
           "campaigns": ("id", "title", "text", "sha256", "added_at", "added_by"),
           "officials": ("role", "unit_code", "os_user", "active", "created_at", "created_by"),
           "contacts": ("id", "email", "webhook", "created_at", "campaigns"), "meta": ("value",),
           "calendar_days": ("workday", "name", "source")}  # compared beside each table's key
UNKNOWN = object()  # a field the log does not determine (written before it was logged)


@dataclass(frozen=True)
class Problem:
    """The first thing wrong: its kind (time, continuity, state, table), the row it names (if any) and why."""

    kind: str
    seq: int | None
    words: str


class Digest(str):
    """A value the log keeps as the SHA-256 of its text (the campaign's TOML)."""


REGISTRY_COLUMNS = tuple(units_table.c[n] for n in ("code", "name", "short_name", "level", "parent_code"))



def units_digest(rows: Iterable[tuple]) -> str:
    """The SHA-256 of every unit's registry columns (code, name, short name, level, parent), in code
    order: what a registry load records, so that a unit renamed, moved to another county, added or
    removed behind the log is found (the units' states and versions are compared one by one)."""
    text = json.dumps(sorted(tuple(r) for r in rows), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stored_units_digest(session: Session) -> str:
    """`units_digest` of the units table as it is."""
    return units_digest(session.connection().execute(select(*REGISTRY_COLUMNS)))


def _instant(at: str) -> str:
    """A stored time in one fixed width (to the microsecond), so that times compare as text."""
    return at if len(at) == 27 or "." in at else at[:-1] + ".000000Z"


def _shown(at: str) -> str:
    try:
        return shown(_instant(at))
    except ValueError:
        return at


class Rebuild:
    """What the log implies, built one row at a time (rows in sequence order, the chain already checked)."""

    def __init__(self, machines: dict[int, dict[str, MachineSpec]] | None = None) -> None:
        # each campaign's machines (by number), and the moves of each: the engine's where none is given
        self.machines = machines or {}
        self.moves = {no: moves_of(specs) for no, specs in self.machines.items()}
        self.last_at: str | None = None
        self.last_seq = 0
        # keyed by campaign number first: (no, unit), (no, unit, item), (no, unit, cohort)
        self.state: dict[tuple[int, str], tuple[str, int, str]] = {}  # -> (state, seq, level)
        self.version: dict[tuple[int, str], tuple[object, int]] = {}  # -> (version or UNKNOWN, seq)
        self.values: dict[tuple[int, str, str], tuple[tuple, int]] = {}
        self.cohorts: dict[tuple[int, str, str], tuple[tuple | None, int]] = {}
        self.numbers: dict[str, int] = {}  # campaign id -> number, from the campaign_add rows
        self.campaigns: dict[int, tuple[tuple | None, int]] = {}
        self.officials: dict[str, tuple[tuple | None, int]] = {}
        self.contacts: dict[tuple[str, str], tuple[tuple | None, int]] = {}
        self.meta: dict[str, tuple[tuple | None, int]] = {}
        self.calendar: dict[str, tuple[tuple | None, int]] = {}
        self.unknown_years: dict[str, int] = {}  # year -> the calendar row that loaded it without its days
        self.unseeded = 0  # cohorts seeded by a registry row that does not list them
        self.registry: tuple[str | None, int] | None = None  # the last registry load's units digest, its row
        self.notes: dict[str, None] = {}

    # -- feeding -------------------------------------------------------------------------------------
    def feed(self, row: tuple) -> Problem | None:
        """Take one audit row (seq, at, actor, unit, action, from, to, note, evidence, detail, …)."""
        seq, at, action = row[0], row[1], row[4]
        last = self.last_at
        if last is not None and at != last and (at < last if len(at) == len(last) else _instant(at) < _instant(last)):
            return Problem("time", seq, _("time {at} is earlier than {last} of row {seq} (the audit log's time "
                                          "cannot go back)").format(at=_shown(at), last=_shown(last), seq=self.last_seq))
        self.last_at, self.last_seq = at, seq
        text = row[9]
        no = self._campaign_of(text) if text and IN_CAMPAIGN in text else 1
        move = self.moves.get(no, MOVES).get(action)
        if len(row) > 12 and row[12] is not None and row[12] != self._campaign_of(text):
            return Problem("table", seq, _("row {seq} is filed under campaign {stored} in audit_log.campaign_no, but its "
                                           "hashed detail says campaign {want} (changed outside the audit log)").format(
                seq=seq, stored=row[12], want=self._campaign_of(text)))
        if move is not None:
            return self._transition(row, move, no)
        handler = HANDLERS.get(action)
        if handler is None and '"meta"' not in text:
            return None
        detail = json.loads(text) if text and text != "{}" else {}
        if handler is not None:
            handler(self, row, detail)
        if isinstance(detail.get("meta"), dict):
            for key, value in detail["meta"].items():
                self.meta[key] = ((value,) if value is not None else None, seq)
        return None

    def _campaign_of(self, text: str | None, detail: dict | None = None) -> int:
        """The number of the campaign an audit row changed (1 unless its detail names another)."""
        if detail is None:
            if not text or IN_CAMPAIGN not in text:
                return 1
            detail = json.loads(text)
        named = detail.get(IN_CAMPAIGN)
        return 1 if named is None else self.numbers.get(named, -1)

    def _transition(self, row: tuple, move: tuple[str, dict[str, str]], no: int) -> Problem | None:
        seq, unit, action, frm, to = row[0], row[3], row[4], row[5], row[6]
        level, moves = move
        if unit is None:
            return Problem("continuity", seq, _("transition {action} names no unit").format(action=action))
        if moves.get(frm) != to:
            return Problem("continuity", seq, _("{unit}: the {level} machine has no transition from {frm!r} by {action} to {to!r}").format(
                unit=unit, level=level, frm=frm, action=action, to=to))
        before = self.state.get((no, unit))
        if before is not None and before[2] != level:
            return Problem("continuity", seq, _("{unit}: {action} is a trigger of the {level} machine, but row {seq} moved "
                                                "it by the {other} machine").format(unit=unit, action=action, level=level,
                                                                                    seq=before[1], other=before[2]))
        initial = self._specs(no)[level].initial
        state, why = (before[0], _("row {seq} left it in {state!r}").format(seq=before[1], state=before[0])) if before else \
            (initial, _("no row moved it before, so it should be in the initial state {state!r}").format(state=initial))
        if frm != state:
            return Problem("continuity", seq, _("{unit} goes from {frm!r} to {to!r}, but {why} (from_state does not "
                                                "follow the unit's previous row)").format(unit=unit, frm=frm, to=to, why=why))
        self.state[no, unit] = (to, seq, level)
        self._bump((no, unit), seq, None)
        return None

    def _specs(self, no: int) -> dict[str, MachineSpec]:
        return self.machines.get(no, SPECS)

    def _bump(self, key: tuple[int, str], seq: int, version: object) -> None:
        """One more change of the unit in its campaign (its version + 1), or the version the row says it reached."""
        if version is None:
            old = self.version.get(key, (1, 0))[0]
            version = old + 1 if old is not UNKNOWN else UNKNOWN
        self.version[key] = (version, seq)

    def note(self, words: str) -> None:
        self.notes[words] = None

    # -- comparing -----------------------------------------------------------------------------------
    def compare(self, session: Session) -> Problem | None:
        """The first table (units, then the others) that differs from what the log implies."""
        conn = session.connection()
        states = UnitState.__table__.c
        units = self._units(conn.execute(
            select(states.campaign_no, states.unit_code, units_table.c.level, states.state, states.version)
            .join_from(UnitState.__table__, units_table, units_table.c.code == states.unit_code))) \
            or self._registry_columns(session)
        if units:
            return units
        tables: list[tuple[str, Iterable, dict, Callable]] = [
            ("checklist_values", conn.execute(select(ChecklistValue.campaign_no, ChecklistValue.unit_code, ChecklistValue.item,
                                                     ChecklistValue.value, ChecklistValue.recorded_at,
                                                     ChecklistValue.recorded_by)),
             self.values, lambda r: ((r[0], r[1], r[2]), tuple(r[3:]))),
            ("unit_cohorts", conn.execute(select(UnitCohort.campaign_no, UnitCohort.unit_code, UnitCohort.cohort)),
             self.cohorts, lambda r: ((r[0], r[1], r[2]), ())),
            ("campaigns", conn.execute(select(CampaignRow.no, CampaignRow.id, CampaignRow.title, CampaignRow.text,
                                              CampaignRow.sha256, CampaignRow.added_at, CampaignRow.added_by)),
             self.campaigns, lambda r: (r[0], tuple(r[1:]))),
            ("officials", conn.execute(select(Official.name, Official.role, Official.unit_code, Official.os_user,
                                              Official.active, Official.created_at, Official.created_by)),
             self.officials, lambda r: (r[0], tuple(r[1:]))),
            ("contacts", conn.execute(select(Contact.unit_code, Contact.name, Contact.id, Contact.email, Contact.webhook,
                                             Contact.created_at, Contact.campaigns)),
             self.contacts, lambda r: ((r[0], r[1]), tuple(r[2:]))),
            ("meta", conn.execute(select(Meta.key, Meta.value)), self.meta, lambda r: (r[0], (r[1],))),
            ("calendar_days", (r for r in conn.execute(select(CalendarDay.day, CalendarDay.workday, CalendarDay.name,
                                                              CalendarDay.source)) if r[0][:4] not in self.unknown_years),
             self._known_days(), lambda r: (r[0], tuple(r[1:]))),
        ]
        for name, stored, implied, split in tables:
            bad = self._table(name, (split(r) for r in stored), implied, COLUMNS[name])
            if bad:
                return bad
        return None

    def _units(self, stored: Iterable[tuple]) -> Problem | None:
        """The first unit whose state or version is not the one the log leaves it in."""
        first = None
        for no, code, level, state, version in stored:
            key = (no, code)
            moved = self.state.pop(key, None)
            specs = self._specs(no)
            if level not in specs:
                continue
            want = moved[0] if moved else specs[level].initial
            if state != want:
                found = (key, "state", state, want, moved[1] if moved else None)
            else:
                v, seq = self.version.get(key, (1, None))
                if v is UNKNOWN or version == v:
                    continue
                found = (key, "version", version, v, seq)
            first = min(first, found) if first else found
        if self.state:  # moved by the log, but not in the table
            key = min(self.state)
            found = (key, "state", ABSENT, self.state[key][0], self.state[key][1])
            first = min(first, found) if first else found
        if first is None:
            return None
        (no, code), column, got, want, seq = first
        where = "" if no == 1 else _(" (campaign {no})").format(no=no)
        return Problem("state", None, _("unit {code}: {column} in the units table is {got}, the audit log implies {want} "
                                        "({setter}; changed outside the audit log)").format(
            code=code + where, column=column, got=_show(got), want=_show(want), setter=_setter(seq)))

    def _table(self, table: str, stored: Iterable[tuple], implied: dict, columns: tuple[str, ...]) -> Problem | None:
        """The smallest key at which the stored table and the implied one differ (extra, missing or changed)."""
        first = None
        for key, got in stored:
            entry = implied.pop(key, None)
            if entry is None and table == "unit_cohorts" and self.unseeded:
                continue  # may be one the old registry row seeded without listing it
            want, seq = entry or (None, None)
            if want is not None and _same(got, want):
                continue
            if first is None or key < first[0]:
                first = (key, got, want, seq)
        missing = [k for k, (want, _seq) in implied.items() if want is not None]
        if missing and (first is None or min(missing) < first[0]):
            key = min(missing)
            first = (key, None, implied[key][0], implied[key][1])
        if first is None:
            return None
        key, got, want, seq = first
        if table in ("checklist_values", "unit_cohorts"):
            key = key[1:] if key[0] == 1 else (_("campaign {no}").format(no=key[0]), *key[1:])
        shown_key = " / ".join(str(k) for k in key) if isinstance(key, tuple) else str(key)
        return Problem("table", None, _("table {table}, {key}: stored as {got}, the audit log implies {want} "
                                        "({setter}; changed outside the audit log)").format(
            table=table, key=shown_key, got=_row(got, columns), want=_row(want, columns), setter=_setter(seq)))

    def _registry_columns(self, session: Session) -> Problem | None:
        """Whether the units' registry columns are those the last registry load recorded."""
        if self.registry is None or self.registry[0] is None:
            return None
        want, seq = self.registry
        if stored_units_digest(session) == want:
            return None
        return Problem("table", None, _("the registry columns of the units table (name, short name, level, parent) do "
                                        "not match the digest registry load #{seq} recorded: units were renamed, moved, "
                                        "added or removed outside the audit log").format(seq=seq))

    def _known_days(self) -> dict:
        return {d: v for d, v in self.calendar.items() if d[:4] not in self.unknown_years}


def _same(got: tuple, want: tuple) -> bool:
    return all(w is UNKNOWN or (hashlib.sha256(str(g).encode()).hexdigest() == w if isinstance(w, Digest) else g == w)
               for g, w in zip(got, want, strict=True))


def _show(value: object) -> str:
    return _(ABSENT) if value is None or value == ABSENT else repr(value)


def _row(values: tuple | None, columns: tuple[str, ...]) -> str:
    if values is None:
        return _(ABSENT)
    shown = [f"{c}=" + ("?" if v is UNKNOWN else f"SHA-256 {v[:12]}…" if isinstance(v, Digest) else repr(v))
             for c, v in zip(columns, values, strict=True)]
    return "(" + ", ".join(shown) + ")" if shown else _("this row")


def _setter(seq: int | None) -> str:
    return _("last set by audit row #{seq}").format(seq=seq) if seq else _("no audit row sets it")


# -- what each kind of row sets -----------------------------------------------------------------------
def _record(rb: Rebuild, row: tuple, d: dict) -> None:
    seq, unit, no = row[0], row[3], rb._campaign_of(None, d)
    if "item" in d and unit:
        rb.values[no, unit, d["item"]] = ((d.get("value"), row[1], row[2]), seq)
        rb._bump((no, unit), seq, d.get("version"))


def _designate(rb: Rebuild, row: tuple, d: dict) -> None:
    seq, unit, no = row[0], row[3], rb._campaign_of(None, d)
    rb.cohorts[no, unit, d.get("cohort")] = (() if row[4] == "designate" else None, seq)
    if "version" not in d:
        rb.note(_("designations written by an older version do not record the unit's version: those units' "
                  "version is not checked"))
    rb._bump((no, unit), seq, d.get("version", UNKNOWN))


def _registry(rb: Rebuild, row: tuple, d: dict) -> None:
    seq = row[0]
    rb.meta["registry_name"] = ((d.get("source"),), seq)
    rb.meta["registry_sha256"] = ((d.get("sha256"),), seq)
    rb.registry = (d.get("units_sha256"), seq)
    if "units_sha256" not in d:
        rb.note(_("the registry load (#{seq}) does not record the units' digest: units' names and parents are not "
                  "checked").format(seq=seq))
    seeded = d.get("seeded")
    if isinstance(seeded, dict):
        for cohort, codes in seeded.items():
            for code in codes:
                rb.cohorts[1, code, cohort] = ((), seq)
    elif d.get("cohorts"):
        rb.unseeded += d["cohorts"]
        rb.note(_("the registry load (#{seq}) does not list the cohorts it brought in: unit_cohorts rows without a "
                  "designation are not checked").format(seq=seq))


def _campaign(rb: Rebuild, row: tuple, d: dict) -> None:
    rb.meta["campaign"] = ((Digest(d.get("sha256")),), row[0])
    rb.meta["campaign_sha256"] = ((d.get("sha256"),), row[0])


def _campaign_add(rb: Rebuild, row: tuple, d: dict) -> None:
    """A campaign added beside the first: its row in `campaigns`, and the cohorts its file brought in."""
    no, cid = d.get("no"), d.get("campaign")
    rb.numbers[cid] = no
    rb.campaigns[no] = ((cid, d.get("title"), Digest(d.get("sha256")), d.get("sha256"), row[1], row[2]), row[0])
    for cohort, codes in (d.get("seeded") or {}).items():
        for code in codes:
            rb.cohorts[no, code, cohort] = ((), row[0])


def _user_add(rb: Rebuild, row: tuple, d: dict) -> None:
    unit = row[3] or d.get("unit")
    rb.officials[d.get("name")] = ((d.get("role"), unit, d.get("os_user"), 1, row[1], row[2]), row[0])


def _user_active(rb: Rebuild, row: tuple, d: dict) -> None:
    old = rb.officials.get(d.get("name"), ((UNKNOWN,) * 6, 0))[0] or (UNKNOWN,) * 6
    rb.officials[d.get("name")] = ((*old[:3], int(row[4] == "user_enable"), *old[4:]), row[0])


def _user_edit(rb: Rebuild, row: tuple, d: dict) -> None:
    """An official changed in place (role, unit, OS account) and perhaps renamed: same row, new key."""
    name, new = d.get("name"), d.get("new_name", d.get("name"))
    old = rb.officials.get(name, ((UNKNOWN,) * 6, 0))[0] or (UNKNOWN,) * 6
    if new != name:
        rb.officials[name] = (None, row[0])
    rb.officials[new] = ((d.get("role", old[0]), d.get("unit", old[1]), d.get("os_user", old[2]), *old[3:]), row[0])


def _contact_add(rb: Rebuild, row: tuple, d: dict) -> None:
    if "id" not in d:
        rb.note(_("contacts added by an older version do not record their id: those contacts' id is not checked"))
    rb.contacts[row[3], d.get("name")] = ((d.get("id", UNKNOWN), d.get("email"), d.get("webhook"), row[1],
                                           d.get("campaigns")), row[0])


def _contact_update(rb: Rebuild, row: tuple, d: dict) -> None:
    """A contact's address, webhook or campaigns changed by a re-run import: same id, same creation time."""
    old = rb.contacts.get((row[3], d.get("name")), ((UNKNOWN,) * 5, 0))[0] or (UNKNOWN,) * 5
    rb.contacts[row[3], d.get("name")] = ((d.get("id", old[0]), d.get("email"), d.get("webhook"), old[3],
                                           d.get("campaigns")), row[0])


def _contact_remove(rb: Rebuild, row: tuple, d: dict) -> None:
    rb.contacts[row[3], d.get("name")] = (None, row[0])


def _calendar(rb: Rebuild, row: tuple, d: dict) -> None:
    seq, years = row[0], {str(y) for y in d.get("years", ())}
    for day in [day for day in rb.calendar if day[:4] in years]:
        rb.calendar[day] = (None, seq)
    if "rows" not in d:
        rb.unknown_years.update(dict.fromkeys(years, seq))
        rb.note(_("the calendar load (#{seq}) does not record its days: calendar_days of {years} are not checked").format(
            seq=seq, years=_(", ").join(sorted(years))))
        return
    for y in years:
        rb.unknown_years.pop(y, None)
    for day, workday, name in d["rows"]:
        rb.calendar[day] = ((workday, name, d.get("source")), seq)


HANDLERS: dict[str, Callable[[Rebuild, tuple, dict], None]] = {
    "record": _record, "designate": _designate, "undesignate": _designate, "registry_load": _registry,
    "campaign_load": _campaign, "campaign_add": _campaign_add, "user_add": _user_add, "user_enable": _user_active, "user_disable": _user_active,
    "user_edit": _user_edit, "contact_update": _contact_update,
    "contact_add": _contact_add, "contact_remove": _contact_remove, "calendar_load": _calendar,
}
