"""The audit keys: signing needs the private key (made 0600 in a 0700 folder, refused when others may read
or write it); `audit verify --checkpoint` needs only the public key, written beside the private one, and
trusts a checkpoint only when the public key it is given verifies it; bad key files exit 2 in Chinese."""

from __future__ import annotations

import base64
import json
import stat

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from support import T0, audit_count

from anjian.workflow.services.advance import advance


@pytest.fixture
def keys(tmp_path, monkeypatch):
    """The signing key's path, in a folder that does not exist yet (anjian makes it)."""
    path = tmp_path / "secret" / "audit-signing-key.pem"
    monkeypatch.setenv("ANJIAN_AUDIT_KEY", str(path))
    monkeypatch.delenv("ANJIAN_AUDIT_PUBLIC_KEY", raising=False)
    return path


@pytest.fixture
def signed(chengde, cli, keys, tmp_path):
    """A log of a few rows and a checkpoint of it, signed by the city office: the checkpoint's path."""
    for code in ("130821106", "130881107"):
        advance(chengde, code, "start", "tester", T0)
    out = tmp_path / "cp.json"
    r = cli("audit", "checkpoint", "--out", str(out), user="city_office")
    assert r.exit_code == 0, r.output
    return out


def public_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def test_signing_makes_the_key_private_and_writes_its_public_half(signed, keys, cli):
    """The private key is 0600 in a folder made 0700; the public key is written beside it, readable by all,
    and the output tells where it is and how an auditor uses it."""
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.parent.stat().st_mode) == 0o700
    pub = keys.with_suffix(".pub")
    assert stat.S_IMODE(pub.stat().st_mode) == 0o644
    private = serialization.load_pem_private_key(keys.read_bytes(), password=None)
    assert pub.read_bytes() == public_pem(private)
    r = cli("audit", "checkpoint", "--out", str(signed.parent / "again.json"), user="city_office")
    assert r.exit_code == 0 and f"--public-key {pub}" in r.output


def test_an_auditor_verifies_with_the_public_key_alone(signed, keys, cli, tmp_path):
    """With the private key gone (and then a garbage file in its place: it is never read), the checkpoint
    verifies with the public key given — by --public-key, by ANJIAN_AUDIT_PUBLIC_KEY, or by the default
    beside the signing key's path."""
    given = tmp_path / "auditor" / "office.pub"
    given.parent.mkdir()
    given.write_bytes(keys.with_suffix(".pub").read_bytes())
    keys.unlink()
    r = cli("audit", "verify", "--checkpoint", str(signed), "--public-key", str(given), user=None)
    assert r.exit_code == 0, r.output
    assert "与签名检查点" in r.output and "一致" in r.output
    keys.write_bytes(b"not a key at all")
    keys.chmod(0o644)
    assert cli("audit", "verify", "--checkpoint", str(signed), user=None).exit_code == 0  # the .pub beside it


def test_the_public_key_comes_from_the_environment_or_the_config_file(signed, keys, cli, tmp_path, monkeypatch):
    """ANJIAN_AUDIT_PUBLIC_KEY, else `[audit] public_key` in the config file, names the public key: a wrong
    one there is refused, so the setting is what was used."""
    other = tmp_path / "other.pub"
    other.write_bytes(public_pem(Ed25519PrivateKey.generate()))
    keys.with_suffix(".pub").unlink()
    config = tmp_path / "config.toml"
    config.write_text(f'[audit]\npublic_key = "{other}"\n', "utf-8")
    monkeypatch.setenv("ANJIAN_CONFIG", str(config))
    r = cli("audit", "verify", "--checkpoint", str(signed), user=None)
    assert r.exit_code == 2 and "另一把密钥" in r.output, r.output
    good = tmp_path / "good.pub"
    good.write_bytes(public_pem(serialization.load_pem_private_key(keys.read_bytes(), password=None)))
    monkeypatch.setenv("ANJIAN_AUDIT_PUBLIC_KEY", str(good))
    assert cli("audit", "verify", "--checkpoint", str(signed), user=None).exit_code == 0


def test_a_missing_public_key_says_where_to_get_one(signed, keys, cli):
    """No public key where the settings point: exit 2, naming the path and --public-key."""
    keys.with_suffix(".pub").unlink()
    r = cli("audit", "verify", "--checkpoint", str(signed), user=None)
    assert r.exit_code == 2, r.output
    assert f"没有审计公钥 {keys.with_suffix('.pub')}" in r.output and "--public-key" in r.output


def test_a_public_key_without_a_checkpoint_is_bad_input(chengde, cli, tmp_path):
    """--public-key is only for a checkpoint: alone it exits 2."""
    r = cli("audit", "verify", "--public-key", str(tmp_path / "x.pub"), user=None)
    assert r.exit_code == 2 and "--checkpoint" in r.output


def test_a_wrong_public_key_is_refused(signed, cli, tmp_path):
    """A checkpoint checked with another office's public key is not trusted: exit 2."""
    other = tmp_path / "other.pub"
    other.write_bytes(public_pem(Ed25519PrivateKey.generate()))
    r = cli("audit", "verify", "--checkpoint", str(signed), "--public-key", str(other), user=None)
    assert r.exit_code == 2, r.output
    assert "另一把密钥" in r.output and "不予采信" in r.output


def forge(path, key: Ed25519PrivateKey, named: str, **changes) -> None:
    """Rewrite a checkpoint with `changes`, signed by `key`, naming the public key `named` (base64)."""
    from anjian.workflow.store.checkpoints import Checkpoint

    data = json.loads(path.read_text("utf-8")) | changes
    cp = Checkpoint(data["seq"], data["head_hash"], data["at"], base64.b64decode(data["prefixes"]), named, "")
    signature = base64.b64encode(key.sign(cp.payload())).decode()
    path.write_text(Checkpoint(cp.seq, cp.head_hash, cp.at, cp.prefixes, named, signature).to_json(), "utf-8")


@pytest.mark.parametrize("how", ["edited", "resigned-naming-itself", "resigned-naming-ours"])
def test_a_tampered_checkpoint_is_detected(signed, keys, cli, how):
    """A checkpoint edited, or re-signed by a forger (whatever key it names), fails with the office's public
    key: exit 2; the forger's key named in the file is never trusted on its own."""
    data = json.loads(signed.read_text("utf-8"))
    forger = Ed25519PrivateKey.generate()
    raw = forger.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if how == "edited":
        data["seq"] -= 1
        data["prefixes"] = base64.b64encode(base64.b64decode(data["prefixes"])[:-8]).decode()
        signed.write_text(json.dumps(data), "utf-8")
    else:
        named = base64.b64encode(raw).decode() if how == "resigned-naming-itself" else data["public_key"]
        forge(signed, forger, named, seq=data["seq"] - 1,
              prefixes=base64.b64encode(base64.b64decode(data["prefixes"])[:-8]).decode())
    r = cli("audit", "verify", "--checkpoint", str(signed), "--public-key", str(keys.with_suffix(".pub")), user=None)
    assert r.exit_code == 2, r.output
    assert ("另一把密钥" if how == "resigned-naming-itself" else "签名与内容不符") in r.output


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o666])
def test_signing_refuses_a_key_others_may_read_or_write(signed, keys, cli, tmp_path, chengde, mode):
    """A private key group or others may read or write is not used: exit 2 saying the chmod to run, no
    checkpoint written, nothing audited."""
    keys.chmod(mode)
    before = audit_count(chengde)
    out = tmp_path / "loose.json"
    r = cli("audit", "checkpoint", "--out", str(out), user="city_office")
    assert r.exit_code == 2, r.output
    assert f"chmod 600 {keys}" in r.output and "组或其他用户可读写" in r.output
    assert not out.exists() and audit_count(chengde) == before
    keys.chmod(0o600)
    assert cli("audit", "checkpoint", "--out", str(out), user="city_office").exit_code == 0


def make_key_file(keys, kind: str) -> None:
    """A signing-key path holding something that is not a usable Ed25519 private key."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    keys.parent.mkdir(mode=0o700, exist_ok=True)
    if kind == "directory":
        keys.mkdir()
        return
    content = {
        "garbage": b"-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n",
        "empty": b"",
        "encrypted": Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret")),
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    }[kind]
    keys.write_bytes(content)
    keys.chmod(0o600)


@pytest.mark.parametrize("kind", ["garbage", "empty", "encrypted", "rsa", "directory"])
def test_a_malformed_signing_key_exits_2_in_chinese(chengde, cli, keys, tmp_path, kind):
    """A signing key that is garbage, empty, pass-phrase protected, not Ed25519 or a folder: exit 2 naming
    the file, never an internal error; no checkpoint written."""
    make_key_file(keys, kind)
    out = tmp_path / "cp.json"
    r = cli("audit", "checkpoint", "--out", str(out), user="city_office")
    assert r.exit_code == 2, r.output
    assert f"审计签名私钥 {keys}" in r.output and "内部错误" not in r.output
    assert not out.exists()


@pytest.mark.parametrize("kind", ["garbage", "private", "directory", "missing-file"])
def test_a_malformed_public_key_exits_2_in_chinese(signed, keys, cli, tmp_path, kind):
    """A public key file that is garbage, a private key (an auditor should not hold it), a folder or
    absent: exit 2 in Chinese, never an internal error."""
    path = tmp_path / "given.pub"
    if kind == "garbage":
        path.write_bytes(b"-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----\n")
    elif kind == "private":
        path.write_bytes(keys.read_bytes())
    elif kind == "directory":
        path.mkdir()
    r = cli("audit", "verify", "--checkpoint", str(signed), "--public-key", str(path), user=None)
    assert r.exit_code == 2, r.output
    assert str(path) in r.output and "内部错误" not in r.output
    if kind == "private":
        assert "是私钥" in r.output
