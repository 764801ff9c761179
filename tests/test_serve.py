"""`anjian serve` as a real process on a free loopback port: health, a token request, private files,
JSON logs with request ids, metrics, a graceful SIGTERM, --check, and what it refuses."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import ssl
import stat
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from support import PG
from support_server import ANJIAN, Process, _env, serve  # noqa: F401 - the real process, shared with test_peers

YUERYA = "130827102"  # 宽城满族自治县峪耳崖镇
def _token(db, official: str) -> str:
    from anjian.workflow.services import credentials

    return credentials.issue(db, official, "admin", dt.datetime.now(dt.UTC)).secret


def _access_lines(log: list[str]) -> list[dict]:
    found = []
    for line in log:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if item.get("logger") == "anjian.access" and "path" in item:
            found.append(item)
    return found


def test_serve_answers_health_a_token_request_logs_and_metrics(chengde, db_url, tmp_path):
    """A served Chengde database answers /healthz and /readyz, runs a command for a token, logs one JSON line per request (the request id echoed, no token), counts in /metrics and keeps its file private."""
    token = _token(chengde, "tester")
    with serve(db_url, tmp_path / "home", "--no-scheduler") as p:
        assert httpx.get(p.url + "/healthz").json() == {"ok": True}
        assert httpx.get(p.url + "/readyz").status_code == 200
        r = httpx.get(p.url + "/api/v1/status", headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-7"})
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == "trace-7"
        assert r.headers["x-frame-options"] == "DENY"
        metrics = httpx.get(p.url + "/metrics").text
        assert 'anjian_requests_total{method="GET",route="/api/v1/status",status="200"} 1.0' in metrics
        assert 'anjian_commands_total{command="status",exit="0"} 1.0' in metrics
        if not PG:
            file = Path(db_url.split(":///", 1)[1])
            assert stat.S_IMODE(file.stat().st_mode) == 0o600
            assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
        p.proc.send_signal(signal.SIGTERM)
        assert p.proc.wait(timeout=120) == 0
    log = p.log
    access = _access_lines(log)
    assert [a["path"] for a in access] == ["/healthz", "/readyz", "/api/v1/status", "/metrics"]
    traced = access[2]
    assert traced["request_id"] == "trace-7" and traced["status"] == 200 and traced["client"] == "127.0.0.1"
    assert token not in "".join(log)
    assert token.split("_")[-1] not in "".join(log)


@pytest.mark.skipif(bool(PG), reason="holds the SQLite file's write lock")
def test_sigterm_lets_a_request_in_flight_finish_then_exits_0(chengde, db_url, tmp_path):
    """SIGTERM while an advance waits for the database's write lock: once the lock is free the advance answers 200 and serve exits 0."""
    token = _token(chengde, "chief_yuerya")
    file = db_url.split(":///", 1)[1]
    with serve(db_url, tmp_path / "home", "--no-scheduler") as p:
        holder = sqlite3.connect(file, timeout=60, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        answers: list[httpx.Response] = []
        sender = threading.Thread(target=lambda: answers.append(httpx.post(
            p.url + "/api/v1/advance", json={"unit": YUERYA, "trigger": "start"},
            headers={"Authorization": f"Bearer {token}"}, timeout=120)))
        sender.start()
        while "anjian_requests_in_flight 2.0" not in httpx.get(p.url + "/metrics").text:
            pass  # the advance is in flight (beside this /metrics request)
        p.proc.send_signal(signal.SIGTERM)
        p.wait_for("Shutting down")
        assert p.proc.poll() is None  # still finishing the advance
        holder.execute("ROLLBACK")
        holder.close()
        sender.join(timeout=120)
        assert p.proc.wait(timeout=120) == 0
    assert answers and answers[0].status_code == 200, answers and answers[0].text
    assert answers[0].json()


def _check(db_url: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([ANJIAN, "serve", "--check"], env=_env(db_url, home), capture_output=True, text=True,
                          encoding="utf-8", timeout=120)


def _checkpoint(db_url: str, home: Path) -> None:
    r = subprocess.run([ANJIAN, "audit", "checkpoint"], env=_env(db_url, home), capture_output=True, text=True,
                       encoding="utf-8", timeout=120)
    assert r.returncode == 0, r.stderr


def test_check_passes_on_a_good_setup_and_names_a_readable_database_file(chengde, db_url, tmp_path):
    """--check prints ✓ lines and exits 0 on a good setup; a database file of mode 0644 is a ✗ line naming it, exit 2."""
    home = tmp_path / "home"
    _checkpoint(db_url, home)
    r = _check(db_url, home)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "✗" not in r.stdout and "✓" in r.stdout
    if PG:
        return
    file = Path(db_url.split(":///", 1)[1])
    os.chmod(file, 0o644)
    r = _check(db_url, home)
    assert r.returncode == 2
    bad = [line for line in r.stdout.splitlines() if line.startswith("✗")]
    assert len(bad) == 1 and str(file) in bad[0] and "644" in bad[0], r.stdout


@pytest.mark.skipif(bool(PG), reason="an SQLite file that is not there")
def test_check_fails_on_a_missing_database(tmp_path):
    """--check on a database file that does not exist exits 2 with a ✗ line saying to run anjian init."""
    missing = tmp_path / "none" / "anjian.db"
    r = _check(f"sqlite:///{missing}", tmp_path / "home")
    assert r.returncode == 2
    assert any(line.startswith("✗") and str(missing) in line and "anjian init" in line for line in r.stdout.splitlines())
    assert not missing.exists()


def test_serve_refuses_anjian_now_and_an_empty_database(fresh_db, db_url, tmp_path):
    """serve refuses ANJIAN_NOW (the service stamps with the system clock) and an empty database (run anjian init), exit 2, without starting."""
    r = subprocess.run([ANJIAN, "serve", "--port", "0"], env=_env(db_url, tmp_path, ANJIAN_NOW="2014-12-15T09:00"),
                       capture_output=True, text=True, encoding="utf-8", timeout=120)
    assert r.returncode == 2 and "ANJIAN_NOW" in r.stderr
    r = subprocess.run([ANJIAN, "serve", "--port", "0"], env=_env(db_url, tmp_path), capture_output=True, text=True,
                       encoding="utf-8", timeout=120)
    assert r.returncode == 2 and "anjian init" in r.stderr, r.stderr


def test_check_names_a_bad_service_setting(chengde, db_url, tmp_path):
    """A [service] setting that is not valid is a ✗ line naming the setting, exit 2."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "config.toml").write_text('[service]\nport = "abc"\n', encoding="utf-8")
    r = _check(db_url, home)
    assert r.returncode == 2
    assert r.stdout.splitlines()[0].startswith("✗") and "[service] port" in r.stdout.splitlines()[0], r.stdout


def test_the_reminder_scheduler_runs_inside_serve_and_is_counted(chengde, db_url, tmp_path):
    """Without --no-scheduler, serve runs the daemon's catch-up pass at start, counts it in /metrics, and still exits 0 on SIGTERM."""
    with serve(db_url, tmp_path / "home") as p:
        p.wait_for("提醒任务完成")  # the daemon's "Reminder pass done" line
        metrics = httpx.get(p.url + "/metrics").text
        assert "anjian_reminder_passes_total 1.0" in metrics
        p.proc.send_signal(signal.SIGTERM)
        assert p.proc.wait(timeout=120) == 0


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (0600), made here."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    os.chmod(key_file, 0o600)
    return cert_file, key_file


def test_serve_speaks_https_with_hsts(chengde, db_url, tmp_path):
    """With --ssl-certfile and --ssl-keyfile serve answers over TLS, and every answer carries Strict-Transport-Security."""
    cert, key = _self_signed(tmp_path)
    with serve(db_url, tmp_path / "home", "--no-scheduler", "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)) as p:
        assert p.url.startswith("https://")
        r = httpx.get(p.url + "/healthz", verify=ssl.create_default_context(cafile=str(cert)))
        assert r.status_code == 200
        assert r.headers["strict-transport-security"].startswith("max-age=")


@pytest.mark.skipif(PG is not None, reason="the SQLite file; a PostgreSQL database's credentials are the server's")
def test_another_os_account_cannot_read_the_served_database(tmp_path):
    """A database made in a folder everyone may enter: once serve holds it, a second real OS account can
    neither read the SQLite file nor list its folder (setpriv to that account; skipped without root)."""
    import pwd
    import shutil
    import tempfile

    from support import run_on

    if os.geteuid() != 0 or not shutil.which("setpriv") or not shutil.which("useradd"):
        pytest.skip("needs root, setpriv and useradd to act as another OS account")
    name = "anjian-outsider"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
        entry = pwd.getpwnam(name)
    open_dir = Path(tempfile.mkdtemp(prefix="anjian-open-"))  # /tmp/x, 0755: no parent folder hides the file
    try:
        open_dir.chmod(0o755)
        folder = open_dir / "data"
        folder.mkdir(mode=0o755)
        url = f"sqlite:///{folder / 'anjian.db'}"
        assert run_on(url, tmp_path / "home", "init").exit_code == 0
        with serve(url, tmp_path / "home", "--no-scheduler"):
            for target in (["cat", str(folder / "anjian.db")], ["ls", str(folder)]):
                probe = subprocess.run(["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}",
                                        "--clear-groups", *target], capture_output=True, text=True)
                assert probe.returncode != 0 and "Permission denied" in probe.stderr, (target, probe.stderr)
    finally:
        shutil.rmtree(open_dir, ignore_errors=True)
