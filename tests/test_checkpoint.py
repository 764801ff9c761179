"""Signed checkpoints and the state replay of `anjian audit verify`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from support import T0, drop_audit_guards

from anjian.workflow.services.advance import advance


@pytest.fixture
def english(monkeypatch):
    """The findings of this test are asserted in English (ANJIAN_LANG=en)."""
    monkeypatch.setenv("ANJIAN_LANG", "en")


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A data folder of its own for the signing key and the checkpoints."""
    folder = tmp_path / "keys"
    monkeypatch.setenv("ANJIAN_AUDIT_KEY", str(folder / "key.pem"))
    return folder


@pytest.fixture
def started(chengde):
    """Three townships started, so the log has a few transitions."""
    for code in ("130821106", "130881107", "130826100"):
        advance(chengde, code, "start", "tester", T0)
    return chengde


def write_checkpoint(cli, tmp_path):
    out = tmp_path / "cp.json"
    r = cli("audit", "checkpoint", "--out", str(out), user="city_office")
    assert r.exit_code == 0, r.output
    return out


def raw(db, sql: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(sql))


def test_checkpoint_is_signed_and_verifies(started, cli, home, tmp_path):
    """A fresh checkpoint verifies; its key file is private to the owner, its public key written beside
    it; the checkpoint is audited."""
    out = write_checkpoint(cli, tmp_path)
    data = json.loads(out.read_text("utf-8"))
    assert data["seq"] >= 5 and len(data["head_hash"]) == 64 and data["signature"]
    assert (home / "key.pem").stat().st_mode & 0o077 == 0
    assert (home / "key.pub").read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    r = cli("audit", "verify", "--checkpoint", str(out))
    assert r.exit_code == 0, r.output
    assert f"与签名检查点 #{data['seq']} 一致" in r.output
    hist = json.loads(cli("history", "--format", "json").output)
    assert hist[-1]["trigger"] == "checkpoint"


@pytest.mark.usefixtures("english")
def test_truncation_is_caught_only_with_the_checkpoint(started, cli, home, tmp_path):
    """Cutting off the newest rows leaves a valid chain; the checkpoint names the first missing row."""
    out = write_checkpoint(cli, tmp_path)
    seq = json.loads(out.read_text("utf-8"))["seq"]
    drop_audit_guards(started)
    raw(started, f"DELETE FROM audit_log WHERE seq >= {seq - 1}")
    assert cli("audit", "verify", "--no-replay").exit_code == 0
    r = cli("audit", "verify", "--checkpoint", str(out), "--no-replay")
    assert r.exit_code == 6
    assert f"audit row {seq - 1}:" in r.output and "truncated" in r.output


@pytest.mark.usefixtures("english")
def test_wholesale_rehash_is_caught_with_the_checkpoint(started, cli, home, tmp_path):
    """Editing a row and re-hashing every row after it fools the chain but not the checkpoint."""
    from anjian.workflow.store.audit import row_hash

    out = write_checkpoint(cli, tmp_path)
    drop_audit_guards(started)
    with started.engine.begin() as conn:
        rows = conn.execute(text("SELECT seq, at, actor, unit_code, action, from_state, to_state, note, evidence, detail, "
                                 "prev_hash, hash FROM audit_log ORDER BY seq")).all()
        prev = None
        for r in rows:
            r = list(r)
            if r[0] >= 3:
                if r[0] == 3:
                    r[2] = "forger"
                r[10] = prev
                r[11] = row_hash(prev, r[0], *r[1:10])
                conn.execute(text("UPDATE audit_log SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
                             {"a": r[2], "p": r[10], "h": r[11], "s": r[0]})
            prev = r[11]
    assert cli("audit", "verify", "--no-replay").exit_code == 0
    r = cli("audit", "verify", "--checkpoint", str(out))
    assert r.exit_code == 6
    assert "audit row 3:" in r.output and "re-hashed" in r.output


def test_an_altered_checkpoint_file_is_refused(started, cli, home, tmp_path):
    """A checkpoint whose contents were edited no longer matches its signature: bad input, exit 2."""
    out = write_checkpoint(cli, tmp_path)
    data = json.loads(out.read_text("utf-8"))
    data["seq"] -= 1
    out.write_text(json.dumps(data), "utf-8")
    r = cli("audit", "verify", "--checkpoint", str(out))
    assert r.exit_code == 2
    assert "签名与内容不符" in r.output


def test_a_checkpoint_signed_by_another_key_is_refused(started, cli, home, tmp_path, monkeypatch):
    """A checkpoint made with some other key is not trusted, whatever it says."""
    out = write_checkpoint(cli, tmp_path)
    monkeypatch.setenv("ANJIAN_AUDIT_KEY", str(tmp_path / "other.pem"))
    assert cli("audit", "checkpoint", "--out", str(tmp_path / "other.json"), user="city_office").exit_code == 0
    r = cli("audit", "verify", "--checkpoint", str(out))
    assert r.exit_code == 2
    assert "另一把密钥" in r.output


def test_a_state_changed_behind_the_log_is_named(started, cli):
    """A unit whose state was set directly in the table is named with the state the log implies."""
    raw(started, "UPDATE unit_states SET state = 'accepted' WHERE unit_code = '130821106'")
    r = cli("audit", "verify")
    assert r.exit_code == 6
    assert "130821106" in r.output and "'accepted'" in r.output and "'building'" in r.output
    assert cli("audit", "verify", "--no-replay").exit_code == 0


def test_only_an_admin_or_the_city_office_writes_checkpoints(started, cli, home, tmp_path):
    """An inspector may not write a checkpoint (exit 4); the refusal is audited."""
    r = cli("audit", "checkpoint", "--out", str(tmp_path / "x.json"), user="inspector")
    assert r.exit_code == 4, r.output
    hist = json.loads(cli("history", "--format", "json").output)
    assert hist[-1]["trigger"] == "denied" and hist[-1]["actor"] == "inspector"
    assert not (tmp_path / "x.json").exists()
    assert not (home / "key.pem").exists()
