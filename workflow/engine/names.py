"""Resolving what an official types (a code, a name, a name with its county or city in front, full or
short, full-width or not) to exactly one unit. A name that fits several units is refused with the
candidates listed; it is never guessed."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from anjian.i18n import N_, _
from anjian.workflow.engine.tree import Node, tree_of
from anjian.workflow.errors import BadInput
from anjian.workflow.store.models import Unit

_ETHNIC = re.compile(r"^(.{2,}?)(?:[\u4e00-\u9fff]{1,3}族)+自治(?:县|旗|州|区)$")
_SUFFIXES = {
    "province": ("维吾尔自治区", "壮族自治区", "回族自治区", "自治区", "特别行政区", "省", "市"),
    "city": ("地区", "自治州", "盟", "市"),
    "county": ("矿区", "自治县", "自治旗", "新区", "县", "区", "市", "旗"),
    "township": ("街道办事处", "街道", "镇", "乡", "苏木"),
}
# Written after a short name to mean the county or city: 平泉县 for 平泉市 (renamed in 2017), 承德市.
_LOOSE_SUFFIXES = ("县", "市", "区")
MAX_LISTED = 20
UNIT = N_("unit")  # what a query names, in a refusal ("county" is the level's word)
_UPPER = ("province", "city", "county")
_MAX_PREFIXES = 3  # province, city, county in front of a township


def fold(text: str) -> str:
    """NFKC-folded, without white space: 'ｗｉｄｅ　名' and 'wide名' are the same name."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def short_name(name: str, level: str) -> str:
    """The short form officials write: 宽城 for 宽城满族自治县, 高寺台 for 高寺台镇."""
    m = _ETHNIC.match(name)
    if m and level in ("county", "city"):
        return m.group(1)
    if level == "township":
        m = re.match(r"^(.{2,}?)(?:[\u4e00-\u9fff]{1,3}族)+乡$", name)
        if m:
            return m.group(1)
    for suffix in _SUFFIXES.get(level, ()):
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return name


def _variants(token: str) -> set[str]:
    out = {token}
    if token.endswith(_LOOSE_SUFFIXES) and len(token) >= 3:
        out.add(token[:-1])
    return out


@dataclass(frozen=True)
class UnitRef:
    code: str
    name: str
    level: str
    parent_code: str | None
    state: str | None
    version: int


def _ref(u: Unit) -> UnitRef:
    return UnitRef(u.code, u.name, u.level, u.parent_code, u.state, u.version)


class Resolver:
    """Resolves names against one session, caching what it looked up."""

    def __init__(self, session: Session):
        self.session = session
        self._units: dict[str, Unit | None] = {}
        self._tokens: dict[str, list[Unit]] = {}
        self.tree = tree_of(session)

    def unit(self, code: str | None) -> Unit | None:
        if code is None:
            return None
        if code not in self._units:
            self._units[code] = self.session.get(Unit, code)
        return self._units[code]

    def preload(self, queries: list[str]) -> None:
        """Look up, in a few queries, the units that a batch's queries name (by code or by name)."""
        codes = sorted({q for q in map(fold, queries) if q.isascii() and q.isdigit()} - set(self._units))
        for i in range(0, len(codes), 900):
            part = codes[i:i + 900]
            found = {u.code: u for u in self.session.scalars(select(Unit).where(Unit.code.in_(part)))}
            for code in part:
                self._units[code] = found.get(code)
        # Names: every token resolving them could ask about, looked up a few hundred at a time rather
        # than in several queries per row (50,000 rows of names took minutes).
        tokens: set[str] = set()
        for q in map(fold, queries):
            if q and not (q.isascii() and q.isdigit()):
                splits = range(2, len(q) - 1)
                tokens |= {q} | {q[:i] for i in splits} | {q[i:] for i in splits}
        ordered = sorted(tokens - set(self._tokens))
        for i in range(0, len(ordered), 400):
            self._lookup(set(ordered[i:i + 400]))

    def _lookup(self, tokens: set[str]) -> dict[str, list[Unit]]:
        """The units each token names, looked up in one query for the tokens not seen before.

        A full or short name wins; only when neither fits does a 县/市/区 written after a short name
        count, and then only for a county or city (平泉县 for 平泉市), never for 平泉镇.
        """
        missing = {t for t in tokens if t not in self._tokens}
        if missing:
            keys = set().union(*(_variants(t) for t in missing))
            found = self.session.scalars(select(Unit).where(or_(Unit.name.in_(keys), Unit.short_name.in_(keys)))).all()
            for u in found:
                self._units[u.code] = u
            self.tree.add(found)
            for t in missing:
                exact = [u for u in found if t in (u.name, u.short_name)]
                loose = _variants(t) - {t}
                self._tokens[t] = exact or [u for u in found if u.level in _UPPER and u.short_name in loose]
        return {t: self._tokens[t] for t in tokens}

    def ancestors(self, unit: Unit) -> list[Node]:
        """The units above `unit`, nearest first (from the session's unit tree)."""
        self.tree.ensure([unit.code])
        return self.tree.ancestors(unit.code)

    def candidates(self, query: str) -> list[Unit]:
        """Every unit the query could mean (empty when none)."""
        q = fold(query)
        if not q:
            return []
        if q.isascii() and q.isdigit():
            u = self.unit(q)
            return [u] if u else []
        return _unique(self._named(q, _MAX_PREFIXES))

    def _named(self, q: str, prefixes: int) -> list[Unit]:
        """Units `q` names: a name alone, or one with up to `prefixes` enclosing units (full or short)
        written in front of it, each an ancestor of the next."""
        # One query for the whole text and for every prefix and suffix it could be split into.
        splits = range(2, len(q) - 1) if prefixes else range(0)
        by = self._lookup({q} | {q[:i] for i in splits} | {q[i:] for i in splits})
        if by[q] or not prefixes:
            return by[q]
        found: list[Unit] = []
        for i in splits:
            head_codes = {h.code for h in by[q[:i]] if h.level != "township"}
            if not head_codes:
                continue
            tails = self._named(q[i:], prefixes - 1)
            self.tree.ensure(t.code for t in tails)  # their ancestors for all of them at once
            for t in tails:
                if head_codes.intersection(a.code for a in self.ancestors(t)):
                    found.append(t)
        return found

    def path(self, unit: Unit, upto: Unit | None = None) -> str:
        """The unit's name with its ancestors in front (up to and including `upto`)."""
        self.tree.ensure([unit.code])
        return self.tree.path(unit.code, upto.code if upto is not None else None)

    def resolve(self, query: str, what: str = UNIT, levels: tuple[str, ...] | None = None,
                hint: bool = True) -> UnitRef:
        """Exactly one unit for the query, or BadInput naming the candidates (and, with `hint`, similar
        names: a scan of every unit's name, which a batch spares itself after its first few)."""
        if any(unicodedata.category(ch) == "Cs" for ch in query):
            # bytes that were not UTF-8 (a GBK terminal): the database cannot even be asked about them
            raise BadInput(_("{what} {query!r} is not valid text: the terminal sent bytes that are not UTF-8 "
                             "(set its encoding to UTF-8, or use the unit's code)").format(what=_(what), query=query))
        found = sorted(self.candidates(query), key=lambda u: u.code)
        if levels:
            found = [u for u in found if u.level in levels] or found
        if len(found) == 1:
            return _ref(found[0])
        if not found:
            self._outside_campaign(query, what)
            hint = self._similar(fold(query)) if hint else ""
            raise BadInput(_("{what} “{query}”: no such unit in the registry").format(what=_(what), query=query)
                           + (_("; did you mean: {hint}").format(hint=hint) if hint else ""))
        listed = [f"{u.code} {self.path(u)}" for u in found[:MAX_LISTED]]
        more = _("… and {count} more").format(count=len(found) - MAX_LISTED) if len(found) > MAX_LISTED else ""
        raise BadInput(
            _("{what} “{query}” fits {count} units; write its county or city in front, or use the code")
            .format(what=_(what), query=query, count=len(found)),
            listed + ([more] if more else []),
        )

    def _outside_campaign(self, query: str, what: str) -> None:
        """BadInput for a unit of the registry that the campaign in scope does not cover (another city's,
        where the database runs several campaigns): said as such, not as a unit that does not exist."""
        from anjian.workflow.store import scope
        from anjian.workflow.store.models import units_table

        if not scope.several(self.session):
            return
        units = units_table.c
        row = self.session.execute(select(units.code, units.name).where(
            (units.code == query) | (units.name == query) | (units.short_name == query)).limit(1)).first()
        if row is not None:
            raise BadInput(_("{what} “{query}”: {name} ({code}) is not covered by the campaign {campaign}; name its "
                             "campaign with --campaign (anjian campaign list)").format(
                what=_(what), query=query, name=row.name, code=row.code, campaign=scope.campaign_id(self.session)))

    def _similar(self, q: str) -> str:
        if not q or q.isdigit():
            return ""
        rows = self.session.scalars(select(Unit).where(Unit.name.contains(q[:4], autoescape=True)).limit(5)).all()
        more = ""
        if not rows:
            # 宽城县大阁镇: the township exists, but not under what is written in front of it
            tails = (q[i:] for i in range(2, len(q) - 2))
            tail, named = next(((t, units) for t in tails if (units := self._lookup({t})[t])), ("", []))
            rows = sorted(named, key=lambda u: u.code)[:5]
            more = " … " + _("{count} units are named {name}").format(count=len(named), name=tail) \
                if len(named) > len(rows) else ""
        return "、".join(f"{self.path(u)}（{u.code}）" for u in rows) + more


def _unique(units: list[Unit]) -> list[Unit]:
    return list({u.code: u for u in units}.values())
