"""The whole registry at once, set-based: every unit above the townships, and the townships counted by
(parent, state, cohorts) in one GROUP BY — what `status` and `units` read, without a query or a
machine per row. Also what they share: the scope a `--county` names and the levels `--by` groups by."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.orm import Session

from anjian.i18n import _
from anjian.states.campaign import Campaign
from anjian.states.guards import Facts
from anjian.states.milestones import MilestoneStatus, milestones
from anjian.workflow.clock import local_date
from anjian.workflow.engine.facts import FactsLoader, Part, facts_of
from anjian.workflow.engine.names import Resolver
from anjian.workflow.engine.tree import UnitTree
from anjian.workflow.errors import BadInput
from anjian.workflow.store.models import ChecklistValue, Unit, UnitCohort

if TYPE_CHECKING:
    from anjian.workflow.views.timeline import Replay

BY_LEVELS = ("county", "city", "province")


def bits(campaign: Campaign) -> dict[str, int]:
    """A bit for each of the campaign's cohorts, in its order."""
    return {c: 1 << i for i, c in enumerate(campaign.cohort_ids)}


def cohorts_of(mask: int, campaign: Campaign) -> frozenset[str]:
    return frozenset(c for c, bit in bits(campaign).items() if mask & bit)


def mask_query(campaign: Campaign):
    """Per unit, its cohorts as one integer (a bit each): lets SQL group townships by what they owe."""
    bit = case(bits(campaign), value=UnitCohort.cohort, else_=0) if campaign.cohorts else literal_column("0")
    mask = func.sum(bit)
    return select(UnitCohort.unit_code, mask.label("mask")).group_by(UnitCohort.unit_code).subquery()


def _state_only(campaign: Campaign, level: str) -> bool:
    """Whether every milestone rule for this level is decided by the state and cohorts alone."""
    return all(not r.guards for m in campaign.milestones for r in m.rules if r.level == level)


class Upper(NamedTuple):
    """A unit above the townships, with its state."""

    code: str
    name: str
    level: str
    parent: str | None
    state: str | None


class Group(NamedTuple):
    """Townships of one parent in one state with the same cohorts (as a bit mask), and how many."""

    state: str
    mask: int
    count: int


class Snapshot:
    """Every unit above the townships (`upper`, walked through `tree`), and the townships counted by
    (parent, state, cohorts) in one GROUP BY (`groups`).

    A township's milestones depend on its state and cohorts only (the campaign says so; checked), so
    they are worked out once per distinct pair. A county's come from its townships' counts.
    """

    def __init__(self, session: Session, campaign: Campaign, now: dt.datetime, replayed: Replay | None = None):
        self.session, self.campaign, self.now = session, campaign, now
        self.bits = bits(campaign)
        self.today = local_date(now)
        self._town: dict[tuple[str, int], list[MilestoneStatus]] = {}
        self._county: dict[str, list[MilestoneStatus]] = {}
        self.exact = _state_only(campaign, "township")
        self._loader: FactsLoader | None = None
        self._values: dict[str, dict[str, str]] | None = None
        self.upper: dict[str, Upper] = {}
        self.groups: dict[str, list[Group]] = defaultdict(list)  # parent -> its townships, grouped
        if replayed is not None:
            self._from_replay(replayed)
        else:
            self._from_tables()
        self.tree = UnitTree((u.code, u.name, u.level, u.parent) for u in self.upper.values())

    def _from_tables(self) -> None:
        for row in self.session.execute(select(Unit.code, Unit.name, Unit.level, Unit.parent_code, Unit.state)
                                        .where(Unit.level != "township")):
            self.upper[row.code] = Upper(*row)
        masks = mask_query(self.campaign)
        mask = func.coalesce(masks.c.mask, literal_column("0"))  # a literal: PostgreSQL must see one expression
        q = (select(Unit.parent_code, Unit.state, mask, func.count())
             .select_from(Unit).outerjoin(masks, masks.c.unit_code == Unit.code)
             .where(Unit.level == "township").group_by(Unit.parent_code, Unit.state, mask))
        for parent, state, mask, n in self.session.execute(q):
            self.groups[parent].append(Group(state, int(mask), n))

    def _from_replay(self, r: Replay) -> None:
        """The same counts from a campaign replayed to `now` (timeline.Replay): states and cohorts as
        they stood then, not as they stand today."""
        counts: dict[tuple[str, str, int], int] = defaultdict(int)
        for u in r.tree:
            state = r.state.get(u.code)
            if u.level != "township":
                self.upper[u.code] = Upper(u.code, u.name, u.level, u.parent, state)
                continue
            mask = sum(self.bits[c] for c in r.cohorts.get(u.code, ()) if c in self.bits)
            counts[(u.parent, state, mask)] += 1
        for (parent, state, mask), n in sorted(counts.items()):
            self.groups[parent].append(Group(state, mask, n))
        self._values = r.values

    def loader(self) -> FactsLoader:
        if self._loader is None:
            self._loader = FactsLoader(self.session, self.campaign, self.now)
        return self._loader

    def township(self, state: str, mask: int, code: str | None = None) -> list[MilestoneStatus]:
        """A township's milestones; by (state, cohorts) when the campaign allows, else from its own facts."""
        if not self.exact:
            return milestones(self.loader().facts(code), self.campaign, self.today)
        key = (state, mask)
        if key not in self._town:
            facts = facts_of(Part("", "", "township", state, cohorts_of(mask, self.campaign)), self.campaign, self.now)
            self._town[key] = milestones(facts, self.campaign, self.today)
        return self._town[key]

    def knowing(self, counties: Mapping[str, list[MilestoneStatus]]) -> Snapshot:
        """Take the milestone statuses of these counties as already worked out at the same moment (the
        reminder pass has them from its own facts): each costs a guard's evaluation, twice nationally."""
        self._county.update(counties)
        return self

    def county(self, code: str) -> list[MilestoneStatus]:
        if code not in self._county:
            self._county[code] = milestones(self.county_facts(code), self.campaign, self.today)
        return self._county[code]

    def county_facts(self, code: str) -> Facts:
        u = self.upper[code]
        # one Part per group, repeated: facts_of then builds one Child per group, not per township
        kids = [k for g in self.groups.get(code, ()) for k in (Part("", "", "township", g.state, cohorts_of(g.mask, self.campaign)),) * g.count]
        if self._values is None:  # the counties' own checklists, for a guard that reads them: one query
            self._values = defaultdict(dict)
            for unit, item, value in self.session.execute(
                    select(ChecklistValue.unit_code, ChecklistValue.item, ChecklistValue.value)
                    .join(Unit, Unit.code == ChecklistValue.unit_code).where(Unit.level != "township")):
                self._values[unit][item] = value
        return facts_of(Part(code, u.name, u.level, u.state), self.campaign, self.now,
                        checklist=self._values.get(code), children=kids)

    def group_of(self, parent: str, by: str) -> str | None:
        """Where a township under `parent` is counted when grouping by `by`: its county — or, for the
        townships a city holds directly (东莞市, 中山市…), that city — its city, or its province."""
        if by == "county":
            return parent
        return self.tree.ancestor_at(parent, by)

    def within(self, scope: Unit) -> set[str]:
        """The units above the townships that lie in `scope` (itself included)."""
        return {scope.code} | {u.code for u in self.upper.values()
                               if self.tree.ancestor_at(u.parent, scope.level) == scope.code}


def scope_unit(session: Session, where: str) -> Unit:
    """The county, city or province a `--county` option names."""
    ref = Resolver(session).resolve(where, "county", levels=("county", "city", "province"))
    return session.get(Unit, ref.code)


def check_by(by: str) -> None:
    if by not in BY_LEVELS:
        raise BadInput(_("--by {by}: group by one of {levels}").format(by=by, levels=", ".join(BY_LEVELS)))


def no_level(by: str) -> BadInput:
    from anjian.states.labels import LEVEL_NAMES

    return BadInput(_("--by {by}: this registry has no unit of the level “{level}” (it starts lower down); "
                      "group by a level it has, e.g. --by county").format(by=by, level=LEVEL_NAMES.get(by, by)))
