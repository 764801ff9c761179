"""The audit log under attack: a thousand random single-row changes of each kind to a real audit table,
every one caught by `verify` and named at the first changed row; and no false alarm on clean tables.

The harness (a realistic log, the mutations, the diff that says which row really changed first) is
`benchmarks/audit_mutation.py`, which prints the same figures standalone.
"""

from __future__ import annotations

import random

import pytest
from support import PG

from anjian.workflow.store.checkpoints import load_key, make_checkpoint
from anjian.workflow.store.db import Database
from anjian.workflow.store.integrity import verify
from benchmarks import audit_mutation as harness

pytestmark = pytest.mark.slow  # thousands of mutations, each verified
SEED = 20141215
ROWS = 1000  # every verify hashes up to the changed row: 1,000 rows keep 6,000 verifies near a minute
PER_KIND = 1000


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A real SQLite audit table of ROWS rows written through `audit.append`, its append-only guards
    dropped (as the owner could), with a signed checkpoint over every row."""
    work = tmp_path_factory.mktemp("mutation")
    db = Database(f"sqlite:///{work / 'audit.db'}")
    yield harness.prepare(db, ROWS, SEED, work)
    db.dispose()


def assert_all_named(tally, count: int) -> None:
    assert tally.mutations == count
    assert tally.caught == count, tally.misses
    assert tally.named == count, tally.misses
    assert tally.kind_right == count, tally.misses
    assert tally.false_alarms == 0


@pytest.mark.parametrize("kind", list(harness.KINDS))
def test_every_random_single_row_mutation_is_caught_and_named(table, kind):
    """Each of 1,000 random mutations of this kind is caught, named at the first changed row, and given its kind."""
    tally = harness.run_kind(table, kind, PER_KIND, random.Random(f"{SEED}:{kind}"))
    assert_all_named(tally, PER_KIND)
    if kind in ("delete", "swap"):  # both variants (renumbered or not; neighbours or any two) were tried
        assert len(tally.variants) == 2 and min(tally.variants.values()) > PER_KIND // 3


def test_the_clean_table_raises_no_alarm(table):
    """The table the mutations were rolled back from verifies, with its checkpoint and without, states replayed."""
    with table.db.read() as session:
        plain, checked = verify(session), verify(session, table.checkpoint)
    assert plain.ok and checked.ok, (plain.reason, checked.reason)
    assert plain.rows == checked.rows == checked.checkpoint_seq == ROWS


def test_a_100000_row_clean_table_raises_no_alarm(tmp_path):
    """A clean log of 100,000 rows, written in one transaction, verifies with and without a checkpoint."""
    db = Database(f"sqlite:///{tmp_path / 'clean.db'}")
    try:
        harness.fill(db, 100_000, random.Random(SEED), batch=5000)
        key = load_key(tmp_path / "audit.key", create=True)
        with db.read() as session:
            cp = make_checkpoint(session, key, harness.T0)
            plain, checked = verify(session), verify(session, cp)
    finally:
        db.dispose()
    assert plain.ok and checked.ok, (plain.reason, checked.reason)
    assert plain.rows == plain.head_seq == cp.seq == 100_000


@pytest.mark.skipif(not PG, reason="set ANJIAN_TEST_PG to a PostgreSQL server URL")
def test_postgresql_mutations_are_caught_and_named(db_url, tmp_path):
    """On PostgreSQL, 100 random mutations of each kind are caught and named, and the clean table verifies."""
    db = Database(db_url)
    try:
        table = harness.prepare(db, ROWS, SEED, tmp_path)
        tallies = [harness.run_kind(table, kind, 100, random.Random(f"{SEED}:pg:{kind}"), clean_every=50)
                   for kind in harness.KINDS]
        with db.read() as session:
            clean = verify(session, table.checkpoint)
    finally:
        db.dispose()
    for tally in tallies:
        assert_all_named(tally, 100)
    assert clean.ok and clean.rows == ROWS, clean.reason
