"""Signed checkpoints of the audit log, and the two keys: the private one that signs, the public one that
verifies.

Signing needs the private key (Ed25519, PEM), made on first use with mode 0600 (in a folder made 0700)
and refused when its group or others may read or write it. Every signing writes the public key beside it
(`audit-signing-key.pub`), to be given to whoever verifies: verifying needs nothing else. A checkpoint is
checked against the public key the verifier holds; the key the file names is compared with it, never
trusted on its own.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from anjian.i18n import _
from anjian.workflow.clock import utc_text
from anjian.workflow.errors import BadInput
from anjian.workflow.store.audit import head
from anjian.workflow.store.models import AuditRow

PREFIX = 8  # bytes of each row hash a checkpoint keeps
LOOSE = stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH  # what nobody but the owner may do to a private key


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head_hash: str
    at: str
    prefixes: bytes
    public_key: str
    signature: str

    def payload(self) -> bytes:
        return json.dumps({"seq": self.seq, "head_hash": self.head_hash, "at": self.at,
                           "prefixes": base64.b64encode(self.prefixes).decode()}, sort_keys=True).encode()

    def to_json(self) -> str:
        return json.dumps({"anjian_checkpoint": 1, "seq": self.seq, "head_hash": self.head_hash, "at": self.at,
                           "public_key": self.public_key, "signature": self.signature,
                           "prefixes": base64.b64encode(self.prefixes).decode()}, indent=1)


def public_path(private: Path) -> Path:
    """Where signing writes the public key: beside the private one (audit-signing-key.pem → .pub)."""
    return Path(private).with_suffix(".pub")


def _read(path: Path, what: str) -> bytes:
    """A key file's bytes, or BadInput saying in Chinese why it cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise BadInput(_("{what} {path} does not exist").format(what=what, path=path)) from None
    except PermissionError:
        raise BadInput(_("{what} {path} may not be read (this account has no read permission)").format(what=what, path=path)) from None
    except IsADirectoryError:
        raise BadInput(_("{what} {path} is a folder, not a key file").format(what=what, path=path)) from None
    except OSError as exc:
        raise BadInput(_("{what} {path} cannot be read: {why}").format(what=what, path=path, why=exc.strerror)) from None


def _create(path: Path):
    """A new signing key at `path`: the file 0600, its folder (when made here) 0700."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, mode=0o700)
            os.chmod(path.parent, 0o700)  # whatever the umask: only the owner may list or replace the key
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    except OSError as exc:
        raise BadInput(_("cannot create the audit signing key {path}: {why}").format(path=path, why=exc.strerror)) from None
    return key


def load_key(path: Path, create: bool):
    """The private signing key (Ed25519, PEM) kept outside the database; made on first use when `create`.
    Refused (BadInput) when group or others may read or write it, or when it cannot be read or parsed."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path)
    if create and not path.exists() and not path.is_symlink():
        return _create(path)
    if not path.exists():
        raise BadInput(_("the audit signing key {path} does not exist: write a checkpoint first (anjian audit checkpoint)").format(path=path))
    mode = path.stat().st_mode
    if stat.S_ISREG(mode) and mode & LOOSE:
        raise BadInput(_("the audit signing key {path} has mode {mode}: its group or others may read or write it, so it is not used: run chmod 600 {path} first (and check whether someone copied it)").format(path=path, mode=stat.filemode(mode)))
    data = _read(path, _("audit signing key"))
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BadInput(_("the audit signing key {path} is not a usable PEM private key (damaged, protected by a passphrase, or another format)").format(path=path)) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadInput(_("the audit signing key {path} is not an Ed25519 key").format(path=path))
    return key


def write_public(key, path: Path) -> Path:
    """Write the signing key's public half to `path` (PEM, 0644: it is meant to be handed out), unless it
    already holds exactly that; return `path`."""
    from cryptography.hazmat.primitives import serialization

    pem = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    path = Path(path)
    try:
        if path.is_file() and path.read_bytes() == pem:
            return path
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise BadInput(_("cannot write the audit public key {path}: {why}").format(path=path, why=exc.strerror)) from None
    return path


def load_public_key(path: Path):
    """The public key checkpoints are verified with (Ed25519, PEM), as `audit checkpoint` writes it."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    data = _read(path, _("audit public key"))
    if b"PRIVATE KEY" in data:
        raise BadInput(_("{path} is a private key: checking needs only the public key (the .pub file written beside the private key when signing); the private key should not be given to the checker").format(path=path))
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise BadInput(_("the audit public key {path} is not a usable PEM public key (damaged or another format)").format(path=path)) from None
    if not isinstance(key, Ed25519PublicKey):
        raise BadInput(_("the audit public key {path} is not an Ed25519 public key").format(path=path))
    return key


def _verifier(key):
    """The public key of `key`, which may be the private key (the signer's own tools hold that)."""
    return key.public_key() if hasattr(key, "private_bytes") else key


def _public(key) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = _verifier(key).public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def make_checkpoint(session: Session, key, now: dt.datetime) -> Checkpoint:
    """Sign the current head and every row hash up to it."""
    seq, h = head(session)
    prefixes = bytearray()
    for (rh,) in session.execute(select(AuditRow.hash).order_by(AuditRow.seq)):
        prefixes += bytes.fromhex(rh[: PREFIX * 2])
    unsigned = Checkpoint(seq, h, utc_text(now), bytes(prefixes), _public(key), "")
    signature = base64.b64encode(key.sign(unsigned.payload())).decode()
    return Checkpoint(seq, h, unsigned.at, bytes(prefixes), unsigned.public_key, signature)


def read_checkpoint(path: Path, key) -> Checkpoint:
    """A checkpoint file, its signature checked with the verifier's public key `key` (or the signer's
    private key): the key the file names must be that one, and the signature must hold under it."""
    from cryptography.exceptions import InvalidSignature

    try:
        data = json.loads(Path(path).read_text("utf-8"))
        cp = Checkpoint(int(data["seq"]), data["head_hash"], data["at"], base64.b64decode(data["prefixes"]),
                        data["public_key"], data["signature"])
    except FileNotFoundError:
        raise BadInput(_("the checkpoint file {path} does not exist").format(path=path)) from None
    except PermissionError:
        raise BadInput(_("the checkpoint file {path} may not be read").format(path=path)) from None
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise BadInput(_("{path} is not a checkpoint file: {why}").format(path=path, why=exc)) from None
    public = _verifier(key)
    if cp.public_key != _public(public):
        raise BadInput(_("the checkpoint {path} was signed with another key than the public key given: it is not trusted").format(path=path))
    try:
        public.verify(base64.b64decode(cp.signature), cp.payload())
    except (InvalidSignature, ValueError):
        raise BadInput(_("the checkpoint {path}'s signature does not match its content: the file was changed").format(path=path)) from None
    if len(cp.prefixes) != cp.seq * PREFIX:
        raise BadInput(_("the checkpoint {path} contradicts itself: {rows} rows but {hashes} row hashes").format(path=path, rows=cp.seq, hashes=len(cp.prefixes) // PREFIX))
    return cp
