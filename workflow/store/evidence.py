"""Evidence files: hashed when given, kept in a content-addressed store beside the database so the
record cannot lose what it points to; and the `evidence` table's rows an audit row implies."""

from __future__ import annotations

import hashlib
import os
import tempfile
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from anjian.i18n import N_, _
from anjian.workflow.errors import BadInput
from anjian.workflow.formats.tables import size_text
from anjian.workflow.settings import Limits


@dataclass(frozen=True)
class EvidenceFile:
    path: str  # as recorded: the file's absolute path where the official has it
    sha256: str
    size: int
    source: str = field(default="", compare=False)  # where the bytes are read, when not `path` (the service)

    def as_json(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


def attached(seq: int, unit_code: str | None, action: str, evidence: list[dict], detail: dict) -> list[dict]:
    """The `evidence` rows an audit row implies, one per file: attached to the checklist item of a
    `record`, else to the action (a trigger). The one rule both the writer and `audit verify` use."""
    subject = (detail.get("item") if action == "record" else None) or action
    return [{"seq": seq, "position": i, "unit_code": unit_code, "subject": subject, "path": f["path"],
             "sha256": f["sha256"]} for i, f in enumerate(evidence)]


# Pseudo-filesystems: their "regular" files (/proc/self/environ) report size 0 and hold the process's
# secrets or endless bytes; they are no record of anything.
PSEUDO_ROOTS = ("/proc", "/sys", "/dev")
LIMIT_HELP = N_("the config file's [limits] evidence_max_bytes, or the environment variable ANJIAN_EVIDENCE_MAX_BYTES")


# Run by the service: the files a command may read as evidence (the request's uploads, by resolved path)
# and the path each is recorded as, the client's own (as embedded mode records it); None on a terminal.
UPLOADED: ContextVar[dict[str, str] | None] = ContextVar("anjian_uploaded_evidence", default=None)


def examine(paths: list[str] | tuple[str, ...], max_bytes: int | None = None) -> list[EvidenceFile]:
    """Hash each evidence file; a missing, unreadable or directory path, a pseudo-file (/proc, /sys,
    /dev) or a file over `max_bytes` (settings `evidence_max_bytes`) is bad input, the size refused by
    stat before reading."""
    most = Limits().evidence_max_bytes if max_bytes is None else max_bytes
    uploaded = UPLOADED.get()
    out = []
    for raw in paths:
        if not raw.strip():
            raise BadInput(_("evidence: the path is empty; give a file"))
        p = Path(raw).expanduser()
        if uploaded is not None and os.path.realpath(p) not in uploaded:
            raise BadInput(_("evidence {path}: with a server, evidence is a file uploaded from the client; the service "
                             "reads no path on its own machine").format(path=raw))
        if p.is_dir():
            raise BadInput(_("evidence {path}: is a directory; give a file").format(path=raw))
        if p.exists() and not p.is_file():
            # a pipe would block, or be used up by hashing before `keep` copies it; a device is no record
            raise BadInput(_("evidence {path}: is not a regular file (a device, pipe or socket); give a file").format(path=raw))
        if p.exists():
            _refuse_pseudo(raw, p)
            _refuse_big(raw, p.stat().st_size, most)
        try:
            digest, size = hashlib.sha256(), 0
            with p.open("rb") as fh:
                stated = os.fstat(fh.fileno()).st_size
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
                    _refuse_big(raw, size, most)  # a file growing while it is read
        except FileNotFoundError:
            raise BadInput(_("evidence {path}: no such file").format(path=raw)) from None
        except OSError as exc:
            raise BadInput(_("evidence {path}: cannot be read ({why})").format(path=raw, why=exc.strerror)) from None
        if size != stated:
            raise BadInput(_("evidence {path}: {size} bytes read where the file says {stated} (changed while read, or a "
                             "pseudo-file); give a regular file that no longer changes").format(path=raw, size=size, stated=stated))
        recorded = str(p.resolve()) if uploaded is None else uploaded[os.path.realpath(p)]
        out.append(EvidenceFile(recorded, digest.hexdigest(), size, str(p.resolve())))
    return out


def _refuse_pseudo(raw: str, p: Path) -> None:
    real = os.path.realpath(p)
    dev = os.stat(real).st_dev
    for root in PSEUDO_ROOTS:
        try:  # a bind mount of procfs elsewhere is the same filesystem; a /dev that is a plain folder is not one
            same_fs = os.path.ismount(root) and os.stat(root).st_dev == dev
        except OSError:
            same_fs = False
        if same_fs or real == root or real.startswith(root + "/"):
            raise BadInput(_("evidence {path}: {real} is a system pseudo-file ({root}), nothing to archive; give a regular "
                             "file on disk").format(path=raw, real=real, root=root))


def _refuse_big(raw: str, size: int, most: int) -> None:
    if size > most:
        raise BadInput(_("evidence {path} is {size}, over the limit of {most} (evidence_max_bytes); nothing was done. "
                         "Compress or split it, or raise the limit: {where}").format(
            path=raw, size=size_text(size), most=size_text(most), where=_(LIMIT_HELP)))


def keep(files: list[EvidenceFile], store: Path) -> None:
    """Copy each file into the store under its hash (atomically; a copy already there is kept),
    checking that what is copied is what was hashed. Callers keep files BEFORE their write transaction,
    so a big file never holds the write lock; a copy kept for a change then refused is harmless, since
    the store is addressed by content: it is one more file nothing points to, and the same file given
    again finds it there."""
    for f in files:
        target = store / f.sha256[:2] / f.sha256
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out, open(f.source or f.path, "rb") as src:
                digest = hashlib.sha256()
                while chunk := src.read(min(1 << 20, f.size + 1 - out.tell())):
                    digest.update(chunk)
                    out.write(chunk)
                if digest.hexdigest() != f.sha256:
                    raise BadInput(_("evidence {path} changed after it was checked; nothing was done, try again").format(path=f.path))
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
