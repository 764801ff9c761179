"""Evidence files: hashed when given, kept in a content-addressed store beside the database so the
record cannot lose what it points to; and the `evidence` table's rows an audit row implies."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from anjian.workflow.errors import BadInput


@dataclass(frozen=True)
class EvidenceFile:
    path: str
    sha256: str
    size: int

    def as_json(self) -> dict:
        return {"path": self.path, "sha256": self.sha256, "size": self.size}


def attached(seq: int, unit_code: str | None, action: str, evidence: list[dict], detail: dict) -> list[dict]:
    """The `evidence` rows an audit row implies, one per file: attached to the checklist item of a
    `record`, else to the action (a trigger). The one rule both the writer and `audit verify` use."""
    subject = (detail.get("item") if action == "record" else None) or action
    return [{"seq": seq, "position": i, "unit_code": unit_code, "subject": subject, "path": f["path"],
             "sha256": f["sha256"]} for i, f in enumerate(evidence)]


def examine(paths: list[str] | tuple[str, ...]) -> list[EvidenceFile]:
    """Hash each evidence file; a missing, unreadable or directory path is bad input."""
    out = []
    for raw in paths:
        if not raw.strip():
            raise BadInput("evidence: the path is empty; give a file")
        p = Path(raw).expanduser()
        if p.is_dir():
            raise BadInput(f"evidence {raw}: is a directory; give a file")
        if p.exists() and not p.is_file():
            # a pipe would block, or be used up by hashing before `keep` copies it; a device is no record
            raise BadInput(f"evidence {raw}: is not a regular file (a device, pipe or socket); give a file")
        try:
            digest, size = hashlib.sha256(), 0
            with p.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            raise BadInput(f"evidence {raw}: no such file") from None
        except OSError as exc:
            raise BadInput(f"evidence {raw}: cannot be read ({exc.strerror})") from None
        out.append(EvidenceFile(str(p.resolve()), digest.hexdigest(), size))
    return out


def keep(files: list[EvidenceFile], store: Path) -> None:
    """Copy each file into the store under its hash (atomically; a copy already there is kept)."""
    for f in files:
        target = store / f.sha256[:2] / f.sha256
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out, open(f.path, "rb") as src:
                shutil.copyfileobj(src, out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
