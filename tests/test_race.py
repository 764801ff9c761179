"""Races between real processes: eight officials firing the same trigger on the same township at the
same instant get one winner and refused or conflicting losers, with one audit row; concurrent writers
on different townships all succeed. The measurement is benchmarks/race.py, run here smaller."""

from __future__ import annotations

import pytest

from benchmarks import race

pytestmark = pytest.mark.slow  # rounds of eight real processes
PROCS = 8
ROUNDS = 10
WRITER_ROUNDS = 3


def test_eight_processes_firing_the_same_trigger_get_one_winner_per_round(db_url, tmp_path):
    """Of eight processes firing `start` at once on one township, exactly one exits 0, the rest exit 3 or 5
    without "database is locked", the township moved once with one audit row, and `audit verify` is clean."""
    report = race.race(db_url, tmp_path / "home", ROUNDS, PROCS)
    assert report.failures == []
    assert report.one_winner == ROUNDS
    assert report.exits.get("0") == ROUNDS
    assert report.exits.get("3", 0) + report.exits.get("5", 0) == ROUNDS * (PROCS - 1)
    assert report.unexpected_exits == 0
    assert report.locked_messages == 0
    assert report.one_audit_row == report.state_ok == ROUNDS
    assert report.audit_verify == "ok"
    assert report.ok


def test_concurrent_writers_on_different_townships_all_succeed(db_url, tmp_path):
    """Eight processes recording on eight townships at once all exit 0, none sees "database is locked",
    and each writes its audit row."""
    report = race.race(db_url, tmp_path / "home", 0, PROCS, writer_rounds=WRITER_ROUNDS)
    w = report.writers
    assert w["failures"] == []
    assert w["exit0"] == w["processes"] == WRITER_ROUNDS * PROCS
    assert w["locked_messages"] == 0
    assert w["audit_rows_ok"] == WRITER_ROUNDS
    assert report.audit_verify == "ok"


def test_different_commands_writing_at_once_all_succeed(db_url, tmp_path):
    """Eight processes running different writing commands at the same instant (advance, record, designate,
    contact add, remind) all exit 0 and none sees "database is locked"; the audit log verifies."""
    env = race.child_env(db_url, tmp_path / "home")
    towns = race.setup(env, PROCS)
    for r in range(3):
        a, b, c, d, e, f = towns[6 * r:6 * r + 6]
        outs = race.fire_together(env, [
            ["--as", "racer1", "advance", a, "start"],
            ["--as", "racer2", "advance", b, "start"],
            ["--as", "racer3", "record", c, race.ITEM, "是"],
            ["--as", "racer4", "record", d, race.ITEM, "是"],
            ["--as", "racer5", "designate", e, "heavy_task"],
            ["--as", "racer6", "contact", "add", f, "--name", f"站长{r}", "--email", f"z{r}@example.gov.cn"],
            ["--as", "racer7", "advance", f, "start"],
            ["remind"],
        ])
        assert [(o.argv, o.code) for o in outs if o.code != 0] == [], [o.err for o in outs if o.code != 0]
        assert not any(o.locked for o in outs)
    assert race.anjian(env, "audit", "verify").returncode == 0
