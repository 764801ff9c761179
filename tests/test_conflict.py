"""Stale writes: a change based on a version someone else has since moved is refused (exit 5) naming
who changed the unit and when; nothing of the loser is written, and the winner's change is audited once."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import func, select, update
from support import T0

from anjian.workflow.clock import utc_text
from anjian.workflow.errors import Conflict, Refused
from anjian.workflow.services.advance import Advancer, advance
from anjian.workflow.services.checklist import record
from anjian.workflow.store.models import AuditRow, Unit, UnitState

YUERYA = "130827102"  # 宽城峪耳崖镇


def unit(db, code: str = YUERYA) -> Unit:
    with db.read() as s:
        return s.get(Unit, code)


def audit_count(db, action: str | None = None) -> int:
    q = select(func.count()).select_from(AuditRow)
    if action:
        q = q.where(AuditRow.unit_code == YUERYA, AuditRow.action == action)
    with db.read() as s:
        return s.scalar(q)


def test_cli_stale_expect_version_exits_5(chengde, cli):
    """`advance --expect-version N` after someone else changed the unit exits 5 naming them and when."""
    seen = json.loads(cli("show", YUERYA, "--format", "json").stdout)["version"]
    assert cli("record", YUERYA, "six.vehicle", "是", user="chief_yuerya", now="2014-12-16T10:30").exit_code == 0
    before = audit_count(chengde)
    r = cli("advance", YUERYA, "start", "--expect-version", str(seen), user="li", now="2014-12-16T11:00")
    assert r.exit_code == 5, r.output
    assert "chief_yuerya" in r.output and "2014-12-16 10:30:00" in r.output
    assert f"您看到的是版本 {seen}" in r.output and "未写入任何内容" in r.output
    assert audit_count(chengde) == before
    assert unit(chengde).state == "not_started"


def test_cli_current_expect_version_proceeds(chengde, cli):
    """With the version still current the trigger fires and the new version is one more."""
    seen = json.loads(cli("show", YUERYA, "--format", "json").stdout)["version"]
    r = cli("advance", YUERYA, "start", "--expect-version", str(seen), "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["version"] == seen + 1


def test_cli_conflict_after_another_transition(chengde, cli):
    """Two officials read version 1; the first starts the township, the second's start exits 5, not 3."""
    assert cli("advance", YUERYA, "start", "--expect-version", "1", user="zhang").exit_code == 0
    r = cli("advance", YUERYA, "start", "--expect-version", "1", user="zhao")
    assert r.exit_code == 5
    assert "zhang" in r.output
    assert audit_count(chengde, "start") == 1


def test_service_stale_expect_version_raises_conflict(chengde):
    """actions.advance with a stale expect_version raises Conflict; only the winner is audited."""
    v = unit(chengde).version
    advance(chengde, YUERYA, "start", "alice", T0, expect_version=v)
    later = T0 + dt.timedelta(minutes=5)
    with pytest.raises(Conflict) as exc:
        advance(chengde, YUERYA, "start", "bob", later, expect_version=v)
    assert "alice" in exc.value.message and "2014-12-15 09:00:00" in exc.value.message
    assert audit_count(chengde, "start") == 1
    u = unit(chengde)
    assert (u.state, u.version, u.changed_by) == ("building", v + 1, "alice")


def test_service_conflict_after_a_record(chengde):
    """A checklist record moves the version too, so a decision based on the old checklist is refused."""
    v = unit(chengde).version
    record(chengde, YUERYA, "six.vehicle", "是", "wang", T0)
    with pytest.raises(Conflict):
        advance(chengde, YUERYA, "start", "li", T0, expect_version=v)
    assert unit(chengde).state == "not_started"


def test_version_changed_between_read_and_write(chengde):
    """An Advancer whose unit's version moves after it read it refuses at commit; the transaction leaves nothing."""
    before = audit_count(chengde)
    moved_at = T0 + dt.timedelta(hours=1)
    with pytest.raises(Conflict) as exc, chengde.write() as s:
        adv = Advancer(s, T0, "alice")
        ref = adv.resolver.resolve(YUERYA)
        adv.prepare(ref, "start", None, [])
        # someone else's write lands between this Advancer's read and its write
        s.execute(update(UnitState).where(UnitState.unit_code == YUERYA)
                  .values(version=UnitState.version + 1, changed_by="bob", changed_at=utc_text(moved_at))
                  .execution_options(synchronize_session=False))
        adv.commit()
    assert "bob" in exc.value.message and "2014-12-15 10:00:00" in exc.value.message
    u = unit(chengde)
    assert (u.state, u.version) == ("not_started", 1)
    assert audit_count(chengde) == before


def race(db, actors: list[str], expect_version: int | None) -> list[object]:
    """Fire `start` for the same township from several threads at once; each thread's outcome."""
    barrier = threading.Barrier(len(actors))
    outcomes: list[object] = [None] * len(actors)

    def run(i: int, actor: str) -> None:
        barrier.wait()
        try:
            outcomes[i] = advance(db, YUERYA, "start", actor, T0, expect_version=expect_version)
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test inspects
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actors)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes


def test_two_writers_racing_with_the_same_version(chengde):
    """Writers racing from the same read: exactly one wins, the others get Conflict, one audit row."""
    actors = ["a", "b", "c"]
    outcomes = race(chengde, actors, expect_version=1)
    winners = [a for a, o in zip(actors, outcomes, strict=True) if not isinstance(o, Exception)]
    assert len(winners) == 1
    assert sum(isinstance(o, Conflict) for o in outcomes) == 2
    assert audit_count(chengde, "start") == 1
    u = unit(chengde)
    assert (u.state, u.version, u.changed_by) == ("building", 2, winners[0])


def test_two_writers_racing_without_a_version(chengde):
    """Without --expect-version the loser is refused by the state it finds (start from building)."""
    outcomes = race(chengde, ["a", "b"], expect_version=None)
    assert sum(not isinstance(o, Exception) for o in outcomes) == 1
    assert sum(isinstance(o, Refused) for o in outcomes) == 1
    assert audit_count(chengde, "start") == 1
