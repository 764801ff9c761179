"""Late entries (补录): a paper record entered after the fact with `--effective DATE`.

The audit row is written at the real clock like every other; its detail carries the date the paper
says (`"effective": "YYYY-MM-DD"`), which timelines, assessments and circulars count from. Only the
city office and city inspectors may attest one, within their jurisdiction; the date may not be in the
future, nor before the unit's previous transition (a late entry cannot reorder a unit's history).
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from anjian.i18n import _
from anjian.states.machines import every_trigger
from anjian.workflow.clock import from_utc_text, local_date
from anjian.workflow.engine import authz
from anjian.workflow.engine.authz import Acting
from anjian.workflow.errors import BadInput
from anjian.workflow.store import scope
from anjian.workflow.store.models import AuditRow


def effective_detail(session: Session, actor: Acting, unit_code: str, unit_name: str, effective: dt.date,
                     now: dt.datetime) -> dict:
    """The audit detail of a late entry on this unit, or NotPermitted (role) / BadInput (date)."""
    authz.may(session, actor, "effective", unit_code, unit_name)
    if effective > local_date(now):
        raise BadInput(_("--effective {date}: a late entry's date cannot be after today ({today})").format(
            date=effective, today=local_date(now)))
    last = session.execute(select(AuditRow.at, AuditRow.detail)
                           .where(AuditRow.unit_code == unit_code, AuditRow.action.in_(every_trigger()))
                           .order_by(AuditRow.seq.desc()).limit(1).execution_options(**scope.its_rows)).first()
    if last is not None:
        before = json.loads(last.detail or "{}").get("effective") or local_date(from_utc_text(last.at)).isoformat()
        if effective.isoformat() < before:
            raise BadInput(_("--effective {date}: the last change of state of {unit}（{code}）is dated {before}; "
                             "a late entry's date cannot be before it").format(
                date=effective, unit=unit_name, code=unit_code, before=before))
    return {"effective": effective.isoformat()}
