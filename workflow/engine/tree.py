"""The unit tree (province, city, county, township): one walk up and one walk down, from rows loaded
a set at a time. Names, jurisdiction, the views and the reminder pass all walk it here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from anjian.workflow.store.db import among, pieces
from anjian.workflow.store.models import Unit

_SESSION_KEY = "anjian_tree"


class Node(NamedTuple):
    """One unit as the tree knows it: what never changes while a command runs (not its state)."""

    code: str
    name: str
    level: str
    parent: str | None


class UnitTree:
    """Units by code with their parents, walked without a query per unit.

    Built from rows already at hand, or filled from a session with `ensure`, which loads the codes it
    lacks and then their missing ancestors, one query per level (a township is four levels down).
    """

    def __init__(self, rows: Iterable[tuple[str, str, str, str | None]] = (), session: Session | None = None):
        self.session = session
        self._nodes: dict[str, Node] = {}
        self._children: dict[str | None, list[str]] | None = None
        self._paths: dict[str, str] = {}
        self._up: dict[tuple[str | None, str], str | None] = {}
        self.add(rows)

    @classmethod
    def upper(cls, session: Session) -> UnitTree:
        """Every unit above the townships, in one query (a few thousand rows nationally)."""
        rows = session.execute(select(Unit.code, Unit.name, Unit.level, Unit.parent_code).where(Unit.level != "township"))
        return cls(rows, session)

    def add(self, rows: Iterable[tuple[str, str, str, str | None]]) -> None:
        """Add units given as (code, name, level, parent) tuples, or rows and objects with `parent_code`."""
        for r in rows:
            node = Node(r.code, r.name, r.level, r.parent_code) if hasattr(r, "parent_code") else Node(*r)
            self._nodes[node.code] = node
        self._children = None
        self._up.clear()  # a unit added may complete a walk that stopped short

    def ensure(self, codes: Iterable[str]) -> None:
        """Load the units among `codes` not known yet, and every ancestor of theirs, set-based."""
        todo = sorted({m for c in codes if (m := self._first_missing(c)) is not None})
        while todo and self.session is not None:
            found = []
            for part in pieces(self.session, todo):
                found += self.session.execute(select(Unit.code, Unit.name, Unit.level, Unit.parent_code)
                                              .where(among(self.session, Unit.code, part))).all()
            self.add(tuple(r) for r in found)
            todo = sorted({m for r in found if (m := self._first_missing(r[3])) is not None})

    def _first_missing(self, code: str | None) -> str | None:
        """The first unit on the way up from `code` (itself included) that the tree lacks."""
        seen: set[str] = set()
        while code is not None and code in self._nodes and code not in seen:
            seen.add(code)
            code = self._nodes[code].parent
        return None if code in seen else code

    # -- lookups -----------------------------------------------------------------------------------
    def __contains__(self, code: object) -> bool:
        return code in self._nodes

    def __iter__(self) -> Iterator[Node]:
        return iter(self._nodes.values())

    def get(self, code: str | None) -> Node | None:
        return self._nodes.get(code) if code is not None else None

    def __getitem__(self, code: str) -> Node:
        return self._nodes[code]

    def at_level(self, level: str) -> list[Node]:
        return [n for n in self._nodes.values() if n.level == level]

    def parent_of(self, code: str) -> str | None:
        node = self._nodes.get(code)
        return node.parent if node else None

    # -- walking up --------------------------------------------------------------------------------
    def ancestors(self, code: str) -> list[Node]:
        """The units above `code`, nearest first, as far up as the tree knows (a cycle stops the walk)."""
        chain: list[Node] = []
        seen = {code}
        parent = self.parent_of(code)
        while parent is not None and parent in self._nodes and parent not in seen:
            seen.add(parent)
            chain.append(self._nodes[parent])
            parent = self._nodes[parent].parent
        return chain

    def ancestor_at(self, code: str | None, level: str) -> str | None:
        """The unit of `level` at or above `code` (itself when it is of that level)."""
        key = (code, level)
        if key not in self._up:  # asked once per township's parent: 41,000 townships, 3,000 parents
            self._up[key] = self._walk_to(code, level)
        return self._up[key]

    def _walk_to(self, code: str | None, level: str) -> str | None:
        seen: set[str] = set()
        while code is not None and code in self._nodes and code not in seen:
            seen.add(code)
            node = self._nodes[code]
            if node.level == level:
                return code
            code = node.parent
        return None

    def within(self, code: str, top: str) -> bool:
        """Whether `code` is `top` or lies under it."""
        return code == top or any(a.code == top for a in self.ancestors(code))

    def county_of(self, code: str) -> str | None:
        """The county-level unit a unit is counted under: a county itself, a township's parent (a county,
        or a city holding townships directly); None above the counties."""
        node = self._nodes[code]
        if node.level == "county":
            return code
        return node.parent if node.level == "township" else None

    def path(self, code: str, upto: str | None = None) -> str:
        """The unit's name with its ancestors' in front, up to and including `upto` (else the top)."""
        if upto is None and code in self._paths:
            return self._paths[code]
        names = [self._nodes[code].name]
        for a in self.ancestors(code):
            names.append(a.name)
            if a.code == upto:
                break
        text = "".join(reversed(names))
        if upto is None:
            self._paths[code] = text
        return text

    # -- walking down ------------------------------------------------------------------------------
    def children(self, code: str) -> list[str]:
        if self._children is None:
            self._children = {}
            for n in self._nodes.values():
                self._children.setdefault(n.parent, []).append(n.code)
        return self._children.get(code, [])

    def descendants(self, code: str) -> set[str]:
        """`code` and every unit the tree knows under it."""
        found, frontier = {code}, [code]
        while frontier:
            frontier = [k for c in frontier for k in self.children(c) if k not in found]
            found.update(frontier)
        return found


def tree_of(session: Session) -> UnitTree:
    """The session's one tree, filled as units are loaded (the registry does not change under a command)."""
    tree = session.info.get(_SESSION_KEY)
    if tree is None:
        tree = session.info[_SESSION_KEY] = UnitTree(session=session)
    return tree


def descendants(session: Session, code: str) -> set[str]:
    """`code` and everything under it, in one recursive query (UNION, so a cycle cannot loop)."""
    down = select(Unit.code).where(Unit.code == code).cte("down", recursive=True)
    down = down.union(select(Unit.code).where(Unit.parent_code == down.c.code))
    return set(session.scalars(select(down.c.code)))
