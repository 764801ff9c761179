"""The audit log's own operations: verify it (chain, signed checkpoint, replayed states, evidence
table), and write or read signed checkpoints of it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from anjian.i18n import _
from anjian.workflow.engine.authz import Acting, acting, may, refusals_audited
from anjian.workflow.errors import AuditBroken, BadInput
from anjian.workflow.store import audit
from anjian.workflow.store.checkpoints import (
    Checkpoint,
    load_key,
    load_public_key,
    make_checkpoint,
    public_path,
    read_checkpoint,
    write_public,
)
from anjian.workflow.store.db import Database
from anjian.workflow.store.integrity import Verdict
from anjian.workflow.store.integrity import verify as check


@dataclass(frozen=True)
class CheckpointWritten:
    """A signed checkpoint as written: where, up to which row, that row's hash, and the public key to
    verify it with (written beside the signing key)."""

    path: Path
    seq: int
    head_hash: str
    public_key: Path | None = None


def read(path: Path, public_key_path: Path) -> Checkpoint:
    """A checkpoint file, its signature checked with the public key at `public_key_path` alone (no
    private key is read: whoever verifies need not be able to sign)."""
    if not Path(public_key_path).exists() and not Path(public_key_path).is_symlink():
        raise BadInput(_("no audit public key {path}: give the signer's public key file with --public-key (the signer's "
                         "every anjian audit checkpoint writes it beside the private key, its name ending in .pub)").format(
            path=public_key_path))
    return read_checkpoint(path, load_public_key(public_key_path))


def verify(db: Database, cp: Checkpoint | None = None, replay: bool = True) -> Verdict:
    """Verify the log (against a signed checkpoint when one is given); AuditBroken names the first bad row."""
    with db.read() as session:
        v = check(session, cp, replay=replay)
    if not v.ok:
        where = _("audit row {seq}: ").format(seq=v.bad_seq) if v.bad_seq is not None else ""
        raise AuditBroken(f"{where}{v.reason}", [_("kind: {kind}").format(kind=v.kind),
                                                _("{count} row(s) read").format(count=v.rows)])
    return v


def write_checkpoint(db: Database, actor: Acting, now: dt.datetime, key_path: Path, out: Path | None,
                     folder: Path) -> CheckpointWritten:
    """Sign the log's head and every row's hash (making the key on first use; refusing one others may
    read or write), write it to `out` (or `folder`/checkpoint-SEQ.json) with the public key beside the
    private one, and audit that it was written; only who may `checkpoint` may."""
    actor = acting(actor)
    with refusals_audited(db, actor, now, "audit checkpoint"), db.write() as session:
        may(session, actor, "checkpoint")
        key = load_key(key_path, create=True)
        public = write_public(key, public_path(key_path))
        cp = make_checkpoint(session, key, now)
        path = Path(out) if out else folder / f"checkpoint-{cp.seq}.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(cp.to_json(), "utf-8")
        except OSError as exc:
            raise BadInput(_("cannot write the checkpoint to {path}: {why}").format(path=path, why=exc.strerror)) from None
        audit.append(session, [audit.Entry(now, actor, "checkpoint", None,
                                           detail={"seq": cp.seq, "head_hash": cp.head_hash, "file": str(path)})])
    return CheckpointWritten(path, cp.seq, cp.head_hash, public)
