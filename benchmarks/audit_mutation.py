"""Tamper with a real audit table one row at a time and check that `verify` names the first changed row.

A fresh database (SQLite, and PostgreSQL with --pg) is upgraded and filled through `audit.append` with
realistic rows; the units' states are left as the log implies. Then, for each kind of change, one random
mutation at a time is applied inside a transaction, `verify` runs (with a signed checkpoint for
truncation and re-hashing), and the transaction is rolled back. The expected answer is not taken from
the mutation's intent but from a diff against the pristine rows: the smallest seq whose stored row
differs, or the first missing seq. A clean table of 100,000 rows measures false alarms and speed,
beside two anchors taken in the same run: reading the rows with a raw DBAPI cursor, and hashing them.

Example:
    python benchmarks/audit_mutation.py --rows 3000 --mutations 1000
    python benchmarks/audit_mutation.py --pg postgresql+psycopg://postgres@127.0.0.1:5432
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import platform
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from anjian.workflow.clock import SHANGHAI, utc_text
from anjian.workflow.store import audit
from anjian.workflow.store.audit import GENESIS, Entry, canonical, row_hash
from anjian.workflow.store.checkpoints import Checkpoint, load_key, make_checkpoint, read_checkpoint
from anjian.workflow.store.db import Database
from anjian.workflow.store.integrity import verify
from anjian.workflow.store.models import ChecklistValue, Contact, UnitCohort, UnitState, units_table

T0 = dt.datetime(2014, 12, 15, 9, 0, tzinfo=SHANGHAI)
COLUMNS = ("seq", "at", "actor", "unit_code", "action", "from_state", "to_state", "note", "evidence", "detail",
           "prev_hash", "hash")
SELECT_ALL = f"SELECT {', '.join(COLUMNS)} FROM audit_log ORDER BY seq"
CONTENT = COLUMNS[1:10]  # what a row says; prev_hash and hash are its links
# kind -> the verdict kind that names it; the two checkpointed kinds run verify with the checkpoint
KINDS = {"edit": "modified", "delete": "deleted", "insert": "inserted", "swap": "reordered",
         "truncate": "truncated", "rehash": "rewritten",
         # rows re-chained with valid hashes (no checkpoint): only the log's own sense can tell
         "time": "time", "continuity": "continuity"}
CHECKPOINTED = frozenset({"truncate", "rehash"})

ACTORS = ("张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏", "chief", "inspector", "county", "office")
NOTES = ("申请验收", "台账不全：缺少2014年第四季度隐患排查记录", "合格", "安监站人员已到位，办公场所已落实",
         "整改完毕，请复查", "通报：发现瞒报事故，撤销验收", "资料齐全\n现场检查无异议", "“重点乡镇”按要求完成",
         "{{ config }} {% if 1 %}x{% endif %}", "备注\u3000全角空格；引号\"和反斜杠\\", "附件见县安监局文件（承安〔2014〕12号）")
ITEMS = (("staff.villages", "12"), ("county.leadership_group", "组长 张三"), ("ledger.inspections", "是"),
         ("staff.officers", "3"), ("office.space", "是"), ("equipment.vehicle", "是"), ("ledger.hazards", "是"))
TRANSITIONS = {"not_started": (("start", "building"),), "building": (("apply", "applied"),),
               "applied": (("accept", "accepted"), ("reject", "rectifying")),
               "rectifying": (("resubmit", "applied"),), "accepted": (("revoke", "rectifying"),)}


# -- a realistic log ---------------------------------------------------------------------------------
@cache
def townships() -> list[tuple[str, str, str]]:
    """(code, name, county) of every township in the built-in Chengde registry."""
    raw = (resources.files("anjian.states") / "registries" / "chengde.csv").read_text("utf-8-sig")
    return [(r["code"], r["name"], r["parent_code"]) for r in csv.DictReader(io.StringIO(raw)) if r["level"] == "township"]


class LogWriter:
    """Invents a plausible history: townships started, checklists recorded, applications accepted or sent back."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.units = townships()
        self.state = {code: "not_started" for code, _, _ in self.units}
        self.now = T0
        # the tables the log determines, kept as the services would keep them
        self.version = {code: 1 for code, _, _ in self.units}
        self.values: dict[tuple[str, str], tuple[str, str, str]] = {}
        self.cohorts: set[tuple[str, str]] = set()
        self.contacts: dict[tuple[str, str], tuple[int, str, str]] = {}

    def entries(self, n: int) -> list[Entry]:
        return [self.entry() for _ in range(n)]

    def entry(self) -> Entry:
        rng = self.rng
        self.now += dt.timedelta(seconds=rng.randint(1, 5400))
        code = rng.choice(self.units)[0]
        state = self.state[code]
        actor = rng.choice(ACTORS)
        roll = rng.random()
        at = utc_text(self.now)
        if roll < 0.05:
            name, email = rng.choice(ACTORS), f"aj{rng.randrange(999)}@chengde.gov.cn"
            cid = self.contacts.get((code, name), (len(self.contacts) + 1,))[0]
            self.contacts[code, name] = (cid, email, at)
            return Entry(self.now, actor, "contact_add", code, detail={"name": name, "email": email, "id": cid})
        if roll < 0.09:
            return Entry(self.now, actor, "denied", code, detail={"trigger": "accept", "reasons": ["不能验收本人申请的乡镇"]})
        if roll < 0.12:
            cohort = rng.choice(("key", "heavy_task"))
            self.cohorts.add((code, cohort))
            self.version[code] += 1
            return Entry(self.now, actor, "designate", code, state, state, detail={"cohort": cohort, "version": self.version[code]})
        self.version[code] += 1
        if roll < 0.35 or state in ("applied", "not_started", "accepted"):
            trigger, after = rng.choice(TRANSITIONS[state])
            self.state[code] = after
            by = {"by": "admin"} if rng.random() < 0.05 else {}
            return Entry(self.now, actor, trigger, code, state, after, self.note(), self.evidence(code, 0.3), by)
        item, value = rng.choice(ITEMS)
        self.values[code, item] = (value, at, actor)
        return Entry(self.now, actor, "record", code, state, state, None, self.evidence(code, 0.2),
                     {"item": item, "value": value, "previous": rng.choice((None, "否", "0")), "version": self.version[code]})

    def note(self) -> str | None:
        return self.rng.choice(NOTES) if self.rng.random() < 0.5 else None

    def evidence(self, code: str, chance: float) -> tuple[dict, ...]:
        rng = self.rng
        return tuple({"path": f"evidence/{code}/{rng.choice(('台账', '照片', '文件'))}-{rng.randrange(10**6)}.pdf",
                      "sha256": f"{rng.getrandbits(256):064x}", "size": rng.randint(1_000, 5_000_000)}
                     for _ in range(rng.randint(1, 3))) if rng.random() < chance else ()

    def forged(self, seq: int, prev_hash: str, at: str) -> dict:
        """A row an attacker who knows the hash scheme would write at `seq`, linked to `prev_hash`."""
        e = self.entry()
        row = {"seq": seq, "at": at, "actor": str(e.actor), "unit_code": e.unit_code, "action": e.action,
               "from_state": e.from_state, "to_state": e.to_state, "note": e.note,
               "evidence": canonical(list(e.evidence)), "detail": canonical(e.detail), "prev_hash": prev_hash}
        row["hash"] = row_hash(prev_hash, *(row[c] for c in COLUMNS[:10]))
        return row


def unguard(db: Database) -> None:
    """Drop the append-only triggers as the database's owner could (the same as tests' drop_audit_guards)."""
    with db.engine.begin() as conn:
        if db.dialect == "sqlite":
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_update"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_delete"))
        else:
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log"))
            conn.execute(text("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log"))


def fill(db: Database, rows: int, rng: random.Random, batch: int | None = None) -> None:
    """Upgrade the schema, append `rows` audit rows through `audit.append` (in write transactions of
    1–40 rows, or all in one of executemany batches of `batch`), and leave each township, its checklist,
    cohorts and contacts as its log implies."""
    db.upgrade()
    writer, done = LogWriter(rng), 0
    if batch:
        with db.write() as session:
            while done < rows:
                done += len(audit.append(session, writer.entries(min(batch, rows - done))))
    while done < rows:
        with db.write() as session:
            done += len(audit.append(session, writer.entries(min(rng.randint(1, 40), rows - done))))
    with db.write() as session:
        session.execute(insert(units_table), [{"code": code, "name": name, "short_name": name, "level": "township",
                                               "parent_code": county} for code, name, county in writer.units])
        session.execute(insert(UnitState), [{"campaign_no": 1, "unit_code": code, "state": writer.state[code],
                                             "version": writer.version[code]} for code, _name, _county in writer.units])
        if writer.values:
            session.execute(insert(ChecklistValue), [{"unit_code": u, "item": i, "value": v, "recorded_at": at, "recorded_by": by}
                                                     for (u, i), (v, at, by) in writer.values.items()])
        if writer.cohorts:
            session.execute(insert(UnitCohort), [{"unit_code": u, "cohort": c} for u, c in writer.cohorts])
        if writer.contacts:
            session.execute(insert(Contact), [{"id": cid, "unit_code": u, "name": n, "email": e, "webhook": None, "created_at": at}
                                              for (u, n), (cid, e, at) in writer.contacts.items()])


@dataclass
class Table:
    """A filled audit table, its rows as written, and a checkpoint over all of them."""

    db: Database
    pristine: list[tuple]
    checkpoint: Checkpoint
    writer: LogWriter


def prepare(db: Database, rows: int, seed: int, key_dir: Path) -> Table:
    """Fill a table, drop its guards and sign a checkpoint (written to a file and read back)."""
    rng = random.Random(seed)
    fill(db, rows, rng)
    unguard(db)
    key = load_key(key_dir / "audit.key", create=True)
    with db.read() as session:
        cp = make_checkpoint(session, key, T0)
    (key_dir / "checkpoint.json").write_text(cp.to_json(), "utf-8")
    with db.engine.begin() as conn:
        keep_pristine(conn)
        pristine = [tuple(r) for r in conn.exec_driver_sql(SELECT_ALL)]
    return Table(db, pristine, read_checkpoint(key_dir / "checkpoint.json", key), LogWriter(random.Random(seed + 1)))


# -- the mutations ------------------------------------------------------------------------------------
def changed(rng: random.Random, column: str, old):
    """A different, plausible value for one column of a row."""
    for _ in range(100):
        if column == "at":
            new = (dt.datetime.strptime(old, "%Y-%m-%dT%H:%M:%S.%fZ") + dt.timedelta(seconds=rng.randint(1, 86400))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        elif column == "actor":
            new = rng.choice(ACTORS)
        elif column == "unit_code":
            new = rng.choice((None, *(c for c, _, _ in townships()[:20])))
        elif column == "action":
            new = rng.choice(("start", "apply", "accept", "reject", "record", "designate"))
        elif column in ("from_state", "to_state"):
            new = rng.choice((None, "building", "applied", "accepted", "rectifying"))
        elif column == "note":
            new = rng.choice((None, *NOTES, (old or "") + "。"))
        elif column == "evidence":
            items = json.loads(old) or [{"path": "evidence/补.pdf", "sha256": "0" * 64, "size": 1}]
            items[-1]["size"] += rng.randint(1, 99)
            new = canonical(items)
        elif column == "detail":
            new = canonical({**json.loads(old), "value": rng.choice(("否", "0", "11", "是"))})
        else:  # prev_hash, hash: one hex digit flipped
            i = rng.randrange(64)
            new = old[:i] + format(int(old[i], 16) ^ rng.randint(1, 15), "x") + old[i + 1:]
        if new != old:
            return new
    raise AssertionError(f"no different value found for {column}")


def shift(conn: Connection, start: int, delta: int) -> None:
    """Renumber every row from `start` on by `delta` (through negative seqs: the key is checked per row)."""
    conn.execute(text("UPDATE audit_log SET seq = -(seq + :d) WHERE seq >= :s"), {"d": delta, "s": start})
    conn.execute(text("UPDATE audit_log SET seq = -seq WHERE seq < 0"))


def set_column(conn: Connection, seq: int, column: str, value) -> None:
    conn.execute(text(f"UPDATE audit_log SET {column} = :v WHERE seq = :s"), {"v": value, "s": seq})


def exchange(conn: Connection, a: int, b: int) -> None:
    """Two rows trade places: each keeps its content and hashes, and takes the other's seq."""
    conn.execute(text("UPDATE audit_log SET seq = :t WHERE seq = :a"), {"t": -a, "a": a})
    conn.execute(text("UPDATE audit_log SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
    conn.execute(text("UPDATE audit_log SET seq = :b WHERE seq = :t"), {"b": b, "t": -a})


def mutate(kind: str, conn: Connection, table: Table, rng: random.Random) -> tuple[str, str]:
    """Apply one random mutation of `kind`; return its variant and what was done. Deleting or inserting
    after the last row is not chosen here: without a checkpoint nothing can tell it from the log's own
    end (that is what `truncate` with a checkpoint covers)."""
    rows, n = table.pristine, len(table.pristine)
    if kind == "edit":
        s, column = rng.randint(1, n), rng.choice(COLUMNS[1:])
        set_column(conn, s, column, changed(rng, column, rows[s - 1][COLUMNS.index(column)]))
        return column, f"row {s}: {column} changed"
    if kind == "delete":
        s, renumber = rng.randint(1, n - 1), rng.random() < 0.5
        conn.execute(text("DELETE FROM audit_log WHERE seq = :s"), {"s": s})
        if renumber:
            shift(conn, s + 1, -1)
        return ("renumbered", f"row {s} deleted, later rows renumbered") if renumber else ("gap", f"row {s} deleted")
    if kind == "insert":
        s = rng.randint(1, n)
        shift(conn, s, 1)
        prev = rows[s - 2][11] if s > 1 else GENESIS
        conn.execute(text(f"INSERT INTO audit_log ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"),
                     table.writer.forged(s, prev, rows[s - 1][1]))
        return "forged", f"forged row inserted at {s}, later rows renumbered"
    if kind == "swap":  # whole rows trade seqs: two anywhere, or two neighbours
        neighbours = rng.random() < 0.5
        if neighbours:
            a = rng.randint(1, n - 1)
            b = a + 1
        else:
            a, b = sorted(rng.sample(range(1, n + 1), 2))
        exchange(conn, a, b)
        return "neighbours" if neighbours else "any two", f"rows {a} and {b} swapped"
    if kind == "truncate":
        k = rng.randint(1, n)
        conn.execute(text("DELETE FROM audit_log WHERE seq > :s"), {"s": n - k})
        return "tail", f"last {k} rows cut off"
    if kind == "rehash":  # the attacker edits one row and re-chains everything after it
        s, column = rng.randint(1, n), rng.choice(CONTENT)
        value = changed(rng, column, rows[s - 1][COLUMNS.index(column)])
        prev, updates = rows[s - 2][11] if s > 1 else GENESIS, []
        for row in rows[s - 1:]:
            fields = dict(zip(COLUMNS[:10], row, strict=False))
            if row[0] == s:
                fields[column] = value
            h = row_hash(prev, *fields.values())
            updates.append({"p": prev, "h": h, "s": row[0]})
            prev = h
        set_column(conn, s, column, value)
        conn.execute(text("UPDATE audit_log SET prev_hash = :p, hash = :h WHERE seq = :s"), updates)
        return column, f"row {s}: {column} changed and rows {s}–{n} re-hashed"
    if kind in ("time", "continuity"):
        return rewrite(kind, conn, table, rng)
    raise ValueError(kind)


def rewrite(kind: str, conn: Connection, table: Table, rng: random.Random) -> tuple[str, str]:
    """A row made earlier than the one before it, or a transition that does not follow from its unit's
    previous row (a from_state or to_state changed, or a forged transition inserted), with every row
    from there on re-chained so that each hash is valid."""
    rows = [dict(zip(COLUMNS[:10], r, strict=False)) for r in table.pristine]
    if kind == "time":
        s = rng.randint(2, len(rows))
        before = dt.datetime.strptime(rows[s - 2]["at"], "%Y-%m-%dT%H:%M:%S.%fZ")
        rows[s - 1]["at"] = (before - dt.timedelta(seconds=rng.randint(1, 86400))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rechain(conn, rows, s)
        return "earlier", f"row {s}: at earlier than row {s - 1}'s, rows re-chained"
    moves = [r["seq"] for r in rows if r["action"] in TRIGGERS]
    variant = rng.choice(("from", "to", "forged"))
    if variant == "forged":
        s = rng.randint(1, len(rows))
        state = replayed(rows[:s - 1])
        code = rng.choice(townships())[0]
        frm, (trigger, to) = next((f, rng.choice(TRANSITIONS[f])) for f in rng.sample(sorted(TRANSITIONS), len(TRANSITIONS))
                                  if f != state.get(code, "not_started"))
        forged = {**rows[s - 1], "actor": rng.choice(ACTORS), "unit_code": code, "action": trigger, "from_state": frm,
                  "to_state": to, "note": None, "evidence": "[]", "detail": "{}"}
        rows.insert(s - 1, forged)
        for i, r in enumerate(rows[s:], start=s + 1):
            r["seq"] = i
        rechain(conn, rows, s)
        return variant, f"a transition of {code} from {frm} inserted at {s}, rows re-chained"
    s = rng.choice(moves)
    column = f"{variant}_state"
    old = rows[s - 1][column]
    rows[s - 1][column] = rng.choice([st for st in TRANSITIONS if st != old])
    rechain(conn, rows, s)
    return variant, f"row {s}: {column} {old} -> {rows[s - 1][column]}, rows re-chained"


TRIGGERS = frozenset(t for moves in TRANSITIONS.values() for t, _ in moves)


def replayed(rows: list[dict]) -> dict[str, str]:
    return {r["unit_code"]: r["to_state"] for r in rows if r["action"] in TRIGGERS}


def rechain(conn: Connection, rows: list[dict], start: int) -> None:
    """Write `rows` from seq `start` on in place of the stored ones, each hash computed anew."""
    prev = GENESIS if start == 1 else _hash_before(conn, start)
    out = []
    for r in rows[start - 1:]:
        h = row_hash(prev, *(r[c] for c in COLUMNS[:10]))
        out.append({**r, "prev_hash": prev, "hash": h})
        prev = h
    conn.execute(text("DELETE FROM audit_log WHERE seq >= :s"), {"s": start})
    conn.execute(text(f"INSERT INTO audit_log ({', '.join(COLUMNS)}) VALUES ({', '.join(':' + c for c in COLUMNS)})"), out)


def _hash_before(conn: Connection, seq: int) -> str:
    return conn.execute(text("SELECT hash FROM audit_log WHERE seq = :s"), {"s": seq - 1}).scalar()


def keep_pristine(conn: Connection) -> None:
    """A copy of the table as written, which each mutated table is compared with."""
    conn.execute(text("DROP TABLE IF EXISTS audit_pristine"))
    conn.execute(text("CREATE TABLE audit_pristine AS SELECT * FROM audit_log"))


def first_difference(conn: Connection, rows: int) -> int | None:
    """The smallest seq whose stored row differs from the one written there (a missing seq included),
    found by comparing every column with the pristine copy."""
    distinct = "IS NOT" if conn.dialect.name == "sqlite" else "IS DISTINCT FROM"
    differs = " OR ".join(f"a.{c} {distinct} p.{c}" for c in COLUMNS[1:])
    changed = conn.execute(text(f"SELECT min(p.seq) FROM audit_pristine p LEFT JOIN audit_log a ON a.seq = p.seq "
                                f"WHERE a.seq IS NULL OR {differs}")).scalar()
    extra = conn.execute(text("SELECT min(seq) FROM audit_log WHERE seq < 1 OR seq > :n"), {"n": rows}).scalar()
    found = [s for s in (changed, extra) if s is not None]
    return min(found) if found else None


# -- running -------------------------------------------------------------------------------------------
@dataclass
class Tally:
    """What the mutations of one kind came to."""

    kind: str
    mutations: int = 0
    caught: int = 0
    named: int = 0
    kind_right: int = 0
    clean_checks: int = 0
    false_alarms: int = 0
    seconds: float = 0.0
    variants: dict[str, int] = field(default_factory=dict)
    caught_without_checkpoint: int | None = None  # for the checkpointed kinds: what the chain alone catches
    misses: list[str] = field(default_factory=list)  # the first few cases not caught, misnamed or mislabelled


def tidy(db: Database) -> None:
    """On PostgreSQL, vacuum the dead rows each rolled-back renumbering leaves (thousands a time), which
    would otherwise slow every later mutation and verify; SQLite's rollback leaves nothing behind."""
    if db.dialect == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM audit_log"))


@contextmanager
def rolled_back(table: Table) -> Iterator[tuple[Connection, Session]]:
    """A connection in a transaction that is always rolled back, and a session inside it."""
    with table.db.engine.connect() as conn:
        trans = conn.begin()
        try:
            with Session(bind=conn) as session:
                yield conn, session
        finally:
            trans.rollback()


def run_kind(table: Table, kind: str, count: int, rng: random.Random, clean_every: int = 100,
             blind: bool = False) -> Tally:
    """`count` mutations of one kind, each verified and rolled back; every `clean_every`-th time the
    restored table is verified too (with the checkpoint), and any complaint there is a false alarm.
    With `blind`, a checkpointed kind is also verified without its checkpoint (not timed)."""
    tally, started, untimed = Tally(kind), time.perf_counter(), 0.0
    if blind and kind in CHECKPOINTED:
        tally.caught_without_checkpoint = 0
    for i in range(count):
        with rolled_back(table) as (conn, session):
            variant, what = mutate(kind, conn, table, rng)
            expected = first_difference(conn, len(table.pristine))
            assert expected is not None, f"{kind}: {what} changed nothing"
            v = verify(session, table.checkpoint if kind in CHECKPOINTED else None)
            if tally.caught_without_checkpoint is not None:
                t = time.perf_counter()
                tally.caught_without_checkpoint += not verify(session).ok
                untimed += time.perf_counter() - t
        tally.mutations += 1
        if (i + 1) % 20 == 0:
            tidy(table.db)
        tally.variants[variant] = tally.variants.get(variant, 0) + 1
        tally.caught += not v.ok
        tally.named += v.bad_seq == expected
        tally.kind_right += v.kind == KINDS[kind]
        if (v.ok or v.bad_seq != expected or v.kind != KINDS[kind]) and len(tally.misses) < 5:
            tally.misses.append(f"{what}: expected {expected}/{KINDS[kind]}, got {v.bad_seq}/{v.kind} ({v.reason})")
        if (i + 1) % clean_every == 0 or i + 1 == count:
            tally.clean_checks += 1
            with table.db.read() as session:
                tally.false_alarms += not verify(session, table.checkpoint).ok
    tally.seconds = time.perf_counter() - started - untimed
    return tally


def clean_figure(db: Database, rows: int, seed: int, key_dir: Path) -> dict:
    """Fill a clean table of `rows` rows in one transaction; time verify (with and without a checkpoint)
    beside reading the same rows with a raw DBAPI cursor and hashing them with `row_hash`."""
    started = time.perf_counter()
    fill(db, rows, random.Random(seed), batch=5000)
    built = time.perf_counter() - started
    key = load_key(key_dir / "audit.key", create=True)
    with db.read() as session:
        cp = make_checkpoint(session, key, T0)

    def timed(fn: Callable[[], object]) -> tuple[float, object]:
        best, out = float("inf"), None
        for _ in range(3):
            t = time.perf_counter()
            out = fn()
            best = min(best, time.perf_counter() - t)
        return best, out

    def plain() -> list[tuple]:
        raw = db.engine.raw_connection()
        try:
            cur = raw.cursor()
            cur.execute(SELECT_ALL)
            return cur.fetchall()
        finally:
            raw.close()

    def checked(checkpoint: Checkpoint | None):
        with db.read() as session:
            return verify(session, checkpoint)

    select_s, fetched = timed(plain)
    hash_s, _ = timed(lambda: [row_hash(r[10], *r[:10]) for r in fetched])
    verify_s, v = timed(lambda: checked(None))
    verify_cp_s, v_cp = timed(lambda: checked(cp))
    return {"rows": v.rows, "built_seconds": round(built, 3), "false_alarms": int(not v.ok) + int(not v_cp.ok),
            "verify_seconds": round(verify_s, 4), "verify_rows_per_s": round(v.rows / verify_s),
            "verify_checkpoint_seconds": round(verify_cp_s, 4),
            "anchor_select_seconds": round(select_s, 4), "anchor_select_rows_per_s": round(len(fetched) / select_s),
            "anchor_hash_seconds": round(hash_s, 4), "anchor_hash_rows_per_s": round(len(fetched) / hash_s),
            "verdicts": [v.reason, v_cp.reason]}


def run(db: Database, rows: int, mutations: int, seed: int, work: Path) -> dict:
    """Every kind of mutation, `mutations` of each, on a table of `rows` rows filled in `db`."""
    table = prepare(db, rows, seed, work)
    tallies = [run_kind(table, kind, mutations, random.Random(f"{seed}:{kind}"), blind=True) for kind in KINDS]
    return {"dialect": db.dialect, "rows": rows, "tallies": [asdict(t) for t in tallies]}


@contextmanager
def database(kind: str, work: Path, server: str | None, label: str) -> Iterator[Database]:
    if kind == "sqlite":
        db = Database(f"sqlite:///{work / f'{label}.db'}")
        yield db
        db.dispose()
        return
    if not __package__:  # run as `python benchmarks/audit_mutation.py`: its sibling is imported as part of the package
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.pg import scratch_database

    with scratch_database(server) as url:
        db = Database(url)
        yield db
        db.dispose()


def render(result: dict) -> str:
    out = []
    for section in result["runs"]:
        out.append(f"\n{section['dialect']}: {section['rows']} audit rows, one mutation at a time")
        out.append(f"{'kind':<18} {'mutations':>9} {'caught':>7} {'named':>7} {'kind ok':>8} {'false alarms':>12} {'s':>7}")
        for t in section["tallies"]:
            alarms = f"{t['false_alarms']}/{t['clean_checks']}"
            out.append(f"{t['kind']:<18} {t['mutations']:>9} {t['caught']:>7} {t['named']:>7} {t['kind_right']:>8} "
                       f"{alarms:>12} {t['seconds']:>7.1f}")
            out.extend(f"    miss: {m}" for m in t["misses"])
        for t in section["tallies"]:
            out.append(f"  {t['kind']}: " + ", ".join(f"{k} {v}" for k, v in sorted(t["variants"].items())))
            if t["caught_without_checkpoint"] is not None:
                out.append(f"    verified without the checkpoint: {t['caught_without_checkpoint']}/{t['mutations']} raise an alarm "
                           "(only the unit-state replay can, naming no row)")
        c = section["clean"]
        out.append(f"clean table: {c['rows']} rows, false alarms {c['false_alarms']}/2 (built in {c['built_seconds']:.1f} s)")
        out.append(f"  verify             {c['verify_seconds']:>8.3f} s  {c['verify_rows_per_s']:>9} rows/s"
                   f"   (with checkpoint {c['verify_checkpoint_seconds']:.3f} s)")
        out.append(f"  anchor: SELECT     {c['anchor_select_seconds']:>8.3f} s  {c['anchor_select_rows_per_s']:>9} rows/s  (raw DBAPI cursor)")
        out.append(f"  anchor: row_hash   {c['anchor_hash_seconds']:>8.3f} s  {c['anchor_hash_rows_per_s']:>9} rows/s  (SHA-256 of each row, no database)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=3000, help="rows in the table that is mutated (default 3000)")
    p.add_argument("--mutations", type=int, default=1000, help="mutations of each kind (default 1000)")
    p.add_argument("--clean-rows", type=int, default=100_000, help="rows in the clean table (default 100000)")
    p.add_argument("--seed", type=int, default=20141215)
    p.add_argument("--pg", help="also run on this PostgreSQL server, e.g. postgresql+psycopg://postgres@127.0.0.1:5432")
    p.add_argument("--pg-mutations", type=int, help="mutations of each kind on PostgreSQL (default: --mutations)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "audit_mutation.json")
    args = p.parse_args(argv)
    result = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "python": platform.python_version(),
              "sqlite": sqlite3.sqlite_version, "seed": args.seed, "runs": []}
    engines = ["sqlite"] + (["postgresql"] if args.pg else [])
    for engine in engines:
        count = (args.pg_mutations or args.mutations) if engine == "postgresql" else args.mutations
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            with database(engine, work, args.pg, "mutated") as db:
                section = run(db, args.rows, count, args.seed, work)
            (work / "clean").mkdir()
            with database(engine, work, args.pg, "clean") as db:
                section["clean"] = clean_figure(db, args.clean_rows, args.seed, work / "clean")
        result["runs"].append(section)
        print(render({"runs": [section]}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), "utf-8")
    print(f"\nwritten to {args.out}")
    bad = any(t["caught"] != t["mutations"] or t["named"] != t["mutations"] or t["false_alarms"]
              for s in result["runs"] for t in s["tallies"]) or any(s["clean"]["false_alarms"] for s in result["runs"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
