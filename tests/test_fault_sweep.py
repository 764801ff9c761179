"""The fault sweep, run small: `anjian remind` killed with SIGKILL at every named fault point and at
seeded random moments, then restarted; the file outbox loses and repeats nothing, SMTP (a real
aiosmtpd server) loses and repeats nothing and holds as ambiguous at most the one message in flight.
The measurement is benchmarks/faults.py; this runs it with one contact per county (14 notices a pass)."""

from __future__ import annotations

from pathlib import Path

import pytest

from anjian.notifications.faults import POINTS
from benchmarks import faults

pytestmark = pytest.mark.slow  # real processes killed and restarted, dozens of times

RANDOM_KILLS = 5  # per channel: ten random kill times in all


def sweep(db_url: str, tmp_path: Path, channel: str, random_kills: int = 0, points=POINTS) -> dict:
    result = faults.sweep(db_url, tmp_path / "home", random_kills, per_county=1, seed=2014, channels=(channel,),
                          points=tuple(points), references=1)
    print(faults.table(result["rows"]))
    return result


def rows_by_kill(result: dict) -> dict[str, dict]:
    return {row["kill"]: row for row in result["rows"]}


def assert_store_sound(result: dict) -> None:
    for run in result["runs"]:
        assert run["restart_exit"] == 0, run["problems"]
        assert run["integrity"] in ("ok", "n/a") and run["audit_verify"] == "ok", run
        assert run["unfinished"] == 0 and run["extra"] == 0, run


def test_file_outbox_killed_at_every_fault_point_loses_and_repeats_nothing(db_url, tmp_path):
    """Killed at each named point, the restarted pass leaves every notice delivered exactly once, nothing flagged."""
    result = sweep(db_url, tmp_path, "file")
    assert result["notices_per_pass"] == {"file": 14}
    rows = rows_by_kill(result)
    assert set(rows) == set(POINTS)
    for point, row in rows.items():
        assert row["killed"] == 1, point
        assert (row["lost"], row["duplicated"], row["flagged"], row["broken"]) == (0, 0, 0, 0), row
    assert_store_sound(result)


def test_smtp_killed_at_every_fault_point_holds_only_the_message_in_flight(db_url, tmp_path):
    """Over SMTP nothing is lost or repeated; a kill after a message was marked sending holds that one
    message as ambiguous, listed by `anjian notices --status ambiguous`; the file-only points are never reached."""
    result = sweep(db_url, tmp_path, "smtp")
    rows = rows_by_kill(result)
    assert rows["after_claim"]["killed"] == 1
    assert (rows["after_claim"]["lost"], rows["after_claim"]["duplicated"], rows["after_claim"]["flagged"]) == (0, 0, 0)
    for point in ("after_begin", "after_send"):
        assert rows[point]["killed"] == 1
        assert (rows[point]["lost"], rows[point]["duplicated"], rows[point]["flagged"]) == (0, 0, 1)
    (run,) = [r for r in result["runs"] if r["kill"] == "after_send"]
    assert run["duplicate_ids"] == [] and run["flagged_ids"] == run["listed_flagged"]
    assert run["shown_flagged"] == 1
    for point in ("during_write", "before_rename"):
        assert rows[point]["killed"] == 0
        assert (rows[point]["lost"], rows[point]["duplicated"], rows[point]["flagged"]) == (0, 0, 0)
    assert all(row["broken"] == 0 for row in rows.values())
    assert_store_sound(result)


def test_file_outbox_killed_at_random_moments_loses_and_repeats_nothing(db_url, tmp_path):
    """Killed at seeded random moments within a normal pass's run time, the file outbox ends with every
    notice exactly once and nothing flagged."""
    result = sweep(db_url, tmp_path, "file", RANDOM_KILLS, points=())
    (row,) = result["rows"]
    assert row["runs"] == RANDOM_KILLS and row["killed"] >= 1
    assert (row["lost"], row["duplicated"], row["flagged"], row["broken"]) == (0, 0, 0, 0), result["runs"]
    assert_store_sound(result)


def test_smtp_killed_at_random_moments_repeats_nothing_and_holds_at_most_one_message_per_kill(db_url, tmp_path):
    """Killed at seeded random moments, SMTP loses and repeats nothing; a kill holds at most one message
    as ambiguous."""
    result = sweep(db_url, tmp_path, "smtp", RANDOM_KILLS, points=())
    (row,) = result["rows"]
    assert row["runs"] == RANDOM_KILLS and row["killed"] >= 1
    assert row["lost"] == 0 and row["duplicated"] == 0
    assert all(run["flagged"] <= 1 for run in result["runs"])
    assert row["broken"] == 0, result["runs"]
    assert_store_sound(result)
