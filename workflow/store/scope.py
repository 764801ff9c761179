"""Which campaign a command works on, and every ORM query confined to it.

A database runs one campaign or several side by side (`anjian campaign add`). The units are the
registry's; a unit's state, its checklist values, its cohorts and the notices told about it belong to a
campaign, by its number (`campaign_no`: 1 for the campaign `init` loaded, 2, 3, … for those added).

The command line (`--campaign ID`), a web page or the scheduler chooses the campaign with `chosen`;
`number` resolves the choice once per session, and every ORM statement of that session that touches a
campaign's tables is confined to it (`with_loader_criteria`, SQLAlchemy's pattern for one tenant among
many), as is every such row it adds, and the audit rows it reads (those of the campaign and the
database's own). With no choice a command works on the database's first campaign, the one `init`
loaded, and reads the whole audit log. Core statements (bulk inserts and updates) name the number
themselves.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache

from sqlalchemy import event, or_, select
from sqlalchemy.orm import Session, with_loader_criteria

from anjian.i18n import _
from anjian.workflow.errors import BadInput
from anjian.workflow.store.models import (
    AuditRow,
    CampaignRow,
    ChecklistValue,
    Meta,
    NoticeItem,
    Unit,
    UnitCohort,
    UnitState,
)

FIRST = 1
SCOPED = (Unit, UnitState, UnitCohort, ChecklistValue, NoticeItem)
_chosen: ContextVar[str | None] = ContextVar("anjian_campaign", default=None)
CONFINED = (*SCOPED, AuditRow)  # an audit row of another campaign is not this one's history
# Execution options: a statement that reads across campaigns, though it names a campaign's table (the
# registry's load); and one that reads the audit rows of the campaign alone (a replay, a unit's last
# change), which a statement naming a campaign's table does without asking.
EVERY_CAMPAIGN = "anjian_every_campaign"
ITS_ROWS = "anjian_campaign_rows"
its_rows = {ITS_ROWS: True}
_KEY = "anjian.campaign_no"
_SEVERAL = "anjian.several_campaigns"


@contextmanager
def chosen(campaign_id: str | None) -> Iterator[None]:
    """Work on the campaign `campaign_id` (None: the database's only campaign) inside the block."""
    token = _chosen.set(campaign_id or None)
    try:
        yield
    finally:
        _chosen.reset(token)


def choose(campaign_id: str | None):
    """Work on `campaign_id` from now on in this context (the CLI's `--campaign`, once per command);
    give the token back to `unchoose` when the command ends."""
    return _chosen.set(campaign_id or None)


def unchoose(token) -> None:
    _chosen.reset(token)


def choice() -> str | None:
    return _chosen.get()


@lru_cache(maxsize=16)
def first_id(text: str) -> str:
    """The id of the first campaign, from its file as `meta` keeps it."""
    try:
        return str(tomllib.loads(text)["campaign"]["id"])
    except (tomllib.TOMLDecodeError, KeyError, TypeError):
        return ""


def campaigns(session: Session) -> list[tuple[int, str]]:
    """Every campaign of the database as (number, id), the first one first (none before `init`)."""
    text = session.get(Meta, "campaign")
    out = [(FIRST, first_id(text.value))] if text is not None else []
    return out + [tuple(r) for r in session.execute(select(CampaignRow.no, CampaignRow.id).order_by(CampaignRow.no))]


def number(session: Session) -> int:
    """The number of the chosen campaign in this session's database (resolved once per session)."""
    wanted = _chosen.get()
    cached = session.info.get(_KEY)
    if cached is not None and cached[0] == wanted:
        return cached[1]
    session.info[_KEY] = (wanted, FIRST)  # the lookups below are not confined: no recursion
    try:
        no = _resolve(session, wanted)
    except BaseException:
        session.info.pop(_KEY, None)
        raise
    session.info[_KEY] = (wanted, no)
    return no


def _resolve(session: Session, wanted: str | None) -> int:
    several = session.scalar(select(CampaignRow.no).limit(1)) is not None
    session.info[_SEVERAL] = several
    if wanted is None:
        return FIRST
    known = campaigns(session)
    for no, cid in known:
        if cid == wanted:
            return no
    raise BadInput(_("this database has no campaign {id}; it runs: {ids}").format(
        id=wanted, ids=_(", ").join(i for _n, i in known) or _("none yet (run `anjian init`)")))


def several(session: Session) -> bool:
    """Whether this session's database runs more than one campaign."""
    number(session)
    return bool(session.info.get(_SEVERAL))


def resolved(session: Session) -> int | None:
    """The number this session has already resolved, without resolving it (None: not yet)."""
    cached = session.info.get(_KEY)
    return cached[1] if cached is not None and cached[0] == _chosen.get() else None


def campaign_id(session: Session) -> str:
    """The id of the campaign this session works on."""
    no = number(session)
    return dict(campaigns(session)).get(no, "")


@event.listens_for(Session, "do_orm_execute")
def _confine(state) -> None:
    if not (state.is_select or state.is_update or state.is_delete) or state.is_column_load or state.is_relationship_load:
        return
    classes = {m.class_ for m in state.all_mappers}
    if state.execution_options.get(EVERY_CAMPAIGN) or not classes & set(CONFINED):
        return
    if not classes & set(SCOPED) and not state.execution_options.get(ITS_ROWS):
        return  # the audit log read as the one chain it is (its head, a checkpoint, the whole history)
    no = number(state.session)
    if not state.session.info.get(_SEVERAL):
        return  # the database's only campaign: nothing to confine
    state.statement = state.statement.options(
        *(with_loader_criteria(cls, lambda c: c.campaign_no == no, track_closure_variables=True) for cls in SCOPED),
        with_loader_criteria(AuditRow, lambda c: or_(c.campaign_no.is_(None), c.campaign_no == no),
                             track_closure_variables=True))


@event.listens_for(Session, "before_flush")
def _stamp(session: Session, _context, _instances) -> None:
    for obj in session.new:
        if isinstance(obj, (UnitCohort, ChecklistValue, NoticeItem, UnitState)) and obj.campaign_no is None:
            obj.campaign_no = number(session)
