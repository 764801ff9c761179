"""The service's defences, on a real server on loopback driven over HTTP: guessing passwords and tokens
is slowed and audited, a session's requests need their CSRF token, revoked and expired tokens are
refused at once, a proxy's user header is believed only from a trusted proxy, and secrets are stored
only as hashes."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
from sqlalchemy import select
from support import PG, clock_at

from anjian.workflow.engine.authz import Actor
from anjian.workflow.services import credentials
from anjian.workflow.services.officials import os_login
from anjian.workflow.store.models import AuditRow, Password, Token

PASSWORD = "the-right-password"
# after every row the fixtures wrote at the real clock: the log's times never go back
START = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)


@pytest.fixture
def serve(chengde, db_url, tmp_path) -> Callable:
    """A factory: `with serve(**config) as s:` runs the service over the Chengde database with that
    [service] configuration; the inspector and the chief have PASSWORD (already changed once)."""
    from support_server import serving

    from anjian.workflow.settings import resolve

    admin = Actor(os_login(), "admin", "130800")
    for name in ("inspector", "chief_yuerya"):
        credentials.set_password(chengde, admin, name, "admin-set-password", dt.datetime.now(dt.UTC))
        credentials.change_password(chengde, name, "admin-set-password", PASSWORD, dt.datetime.now(dt.UTC))
    settings = resolve(db_url, env={"ANJIAN_HOME": str(tmp_path / "home")})

    @contextmanager
    def start(**config) -> Iterator:
        with serving(chengde, settings, **config) as s:
            yield s

    return start


def _signin(s, name: str, password: str, **headers) -> httpx.Response:
    return httpx.post(f"{s.url}/api/v1/signin", json={"username": name, "password": password}, headers=headers)


def _audit(db, action: str) -> list[dict]:
    with db.read() as session:
        rows = session.execute(select(AuditRow.actor, AuditRow.detail).where(AuditRow.action == action)
                               .order_by(AuditRow.seq)).all()
    return [{"actor": a, **json.loads(d)} for a, d in rows]


def test_wrong_passwords_lock_the_account_then_the_window_frees_it(serve):
    """After N wrong passwords the right one is refused too, each attempt audited; after the window it works."""
    with serve(failures_per_account=3, failures_per_address=100, failure_window_minutes=15) as s:
        with clock_at(START):
            for _ in range(3):
                assert _signin(s, "inspector", "wrong-password").status_code == 401
            r = _signin(s, "inspector", PASSWORD)
            assert r.status_code == 401 and "15" in r.json()["error"]["message"]
            assert _signin(s, "chief_yuerya", PASSWORD).status_code == 200  # another account is not held
        failed = _audit(s.db, "signin_failed")
        assert [f["reason"] for f in failed] == ["credentials"] * 3 + ["blocked"]
        assert all(f["actor"] == "inspector" and f["address"] == "127.0.0.1" for f in failed)
        with clock_at(START + dt.timedelta(minutes=16)):
            assert _signin(s, "inspector", PASSWORD).status_code == 200
        assert [r["official"] for r in _audit(s.db, "signin")] == ["chief_yuerya", "inspector"]


def test_wrong_passwords_from_one_address_lock_that_address_for_every_name(serve):
    """Failures under several names from one address block that address, and only it (X-Forwarded-For
    from a trusted proxy tells addresses apart)."""
    with serve(failures_per_account=100, failures_per_address=4, trusted_proxies=("127.0.0.1",),
               forwarded_for=True) as s:
        attacker, other = {"X-Forwarded-For": "203.0.113.7"}, {"X-Forwarded-For": "198.51.100.9"}
        with clock_at(START):
            for name in ("a", "b", "inspector", "nobody"):
                assert _signin(s, name, "wrong-password", **attacker).status_code == 401
            assert _signin(s, "chief_yuerya", PASSWORD, **attacker).status_code == 401
            assert _signin(s, "chief_yuerya", PASSWORD, **other).status_code == 200
        assert {f["address"] for f in _audit(s.db, "signin_failed")} == {"203.0.113.7"}
        with clock_at(START + dt.timedelta(minutes=16)):
            assert _signin(s, "chief_yuerya", PASSWORD, **attacker).status_code == 200


def test_bad_tokens_are_audited_and_count_against_the_address(serve):
    """Guessed tokens are refused (401), audited with reason token, and block the address's sign-ins too."""
    with serve(failures_per_address=3) as s:
        with clock_at(START):
            for guess in ("anj_t0000000000_guess", "Bearer-less", "anj_tffffffffff_" + "x" * 43):
                r = httpx.get(f"{s.url}/api/v1/show", params={"unit": "宽城县"},
                              headers={"Authorization": f"Bearer {guess}"})
                assert r.status_code == 401 and r.json()["error"]["exit"] == 4
            assert _signin(s, "inspector", PASSWORD).status_code == 401
            # once blocked, further guesses are refused without growing the log
            before = len(_audit(s.db, "signin_failed"))
            httpx.get(f"{s.url}/api/v1/me", headers={"Authorization": "Bearer anj_tx_y"})
            assert len(_audit(s.db, "signin_failed")) == before
        reasons = [f["reason"] for f in _audit(s.db, "signin_failed")]
        assert reasons[:3] == ["token"] * 3


def test_session_post_without_its_csrf_token_is_refused(serve):
    """A command POSTed with the session cookie alone is refused (403, exit 4); with X-CSRF-Token it runs."""
    with serve() as s, httpx.Client(base_url=s.url) as client:
        page = client.get("/login")
        form = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = client.post("/login", data={"username": "inspector", "password": PASSWORD, "csrf_token": form})
        assert r.status_code == 303
        body = {"unit": "宽城县"}
        refused = client.post("/api/v1/show", json=body)
        assert refused.status_code == 403 and refused.json()["error"]["exit"] == 4
        assert "CSRF" in refused.json()["error"]["message"]
        wrong = client.post("/api/v1/show", json=body, headers={"X-CSRF-Token": "not-the-token"})
        assert wrong.status_code == 403
        session = credentials.authenticate(s.db, client.cookies["anjian_session"], dt.datetime.now(dt.UTC))
        ok = client.post("/api/v1/show", json=body, headers={"X-CSRF-Token": session.csrf})
        assert ok.status_code == 200 and ok.json()["code"] == "130827"
        assert client.get("/api/v1/show", params=body).status_code == 200  # a read needs none
        assert client.post("/logout", data={}).status_code == 403  # nor does logout go without it
        assert client.post("/logout", data={"csrf_token": "x"}).status_code == 403


def test_login_form_without_its_cookie_is_refused(serve):
    """A login POST without the form's cookie (a cross-site form) or with another value is refused, no session."""
    with serve() as s:
        data = {"username": "inspector", "password": PASSWORD, "csrf_token": "forged"}
        r = httpx.post(f"{s.url}/login", data=data)
        assert r.status_code == 403 and "表单已过期" in r.text and "anjian_session=" not in r.headers.get("set-cookie", "")
        r = httpx.post(f"{s.url}/login", data=data, cookies={"anjian_login_csrf": "another"})
        assert r.status_code == 403
        assert _audit(s.db, "signin") == []


def test_revoked_token_is_refused_on_the_next_request(serve):
    """A token revoked (by an admin, through the service) is refused at once."""
    with serve() as s:
        token = _signin(s, "inspector", PASSWORD).json()
        headers = {"Authorization": f"Bearer {token['token']}"}
        assert httpx.get(f"{s.url}/api/v1/show", params={"unit": "宽城县"}, headers=headers).status_code == 200
        admin = {"Authorization": f"Bearer {s.token(os_login())}"}
        r = httpx.post(f"{s.url}/api/v1/token/revoke", json={"id": token["id"]}, headers=admin)
        assert r.status_code == 200, r.text
        assert httpx.get(f"{s.url}/api/v1/show", params={"unit": "宽城县"}, headers=headers).status_code == 401
        revoked = _audit(s.db, "token_revoke")
        assert revoked[-1]["id"] == token["id"] and revoked[-1]["actor"] == os_login()


def test_expired_token_is_refused(serve):
    """A token past its expiry is refused (401), one second before it still works."""
    with serve() as s:
        with clock_at(START):
            issued = credentials.create_token(s.db, Actor("inspector", "city_inspector", "130800"), "inspector",
                                              START, days=1)
        headers = {"Authorization": f"Bearer {issued.secret}"}
        with clock_at(issued.expires_at - dt.timedelta(seconds=1)):
            assert httpx.get(f"{s.url}/api/v1/me", headers=headers).status_code == 200
        with clock_at(issued.expires_at):
            assert httpx.get(f"{s.url}/api/v1/me", headers=headers).status_code == 401


def test_proxy_header_from_an_untrusted_address_is_ignored(serve):
    """X-Remote-User from a peer that is not a trusted proxy is ignored: the request is unauthenticated."""
    with serve(trusted_proxies=("192.0.2.0/24",)) as s:
        r = httpx.get(f"{s.url}/api/v1/me", headers={"X-Remote-User": "inspector"})
        assert r.status_code == 401


def test_proxy_header_from_a_trusted_proxy_signs_the_official_in(serve):
    """From a trusted proxy the header names the official; an unknown name is refused; another header name
    is configurable."""
    with serve(trusted_proxies=("127.0.0.1",)) as s:
        r = httpx.get(f"{s.url}/api/v1/me", headers={"X-Remote-User": "inspector"})
        assert r.status_code == 200 and r.json()["name"] == "inspector" and r.json()["kind"] == "proxy"
        shown = httpx.get(f"{s.url}/api/v1/show", params={"unit": "宽城县"}, headers={"X-Remote-User": "inspector"})
        assert shown.status_code == 200
        assert httpx.get(f"{s.url}/api/v1/me", headers={"X-Remote-User": "no-such-official"}).status_code == 401
    with serve(trusted_proxies=("127.0.0.0/8",), proxy_header="X-SSO-User") as s:
        assert httpx.get(f"{s.url}/api/v1/me", headers={"X-Remote-User": "inspector"}).status_code == 401
        assert httpx.get(f"{s.url}/api/v1/me", headers={"X-SSO-User": "inspector"}).json()["name"] == "inspector"


def test_a_proxy_user_s_post_from_another_site_is_refused(serve):
    """Behind a single sign-on proxy a browser has no session token: a POST a page of another site makes
    (Sec-Fetch-Site cross-site, or a foreign Origin) is refused 403 and writes nothing; the same POST from
    this site's own page passes."""
    with serve(trusted_proxies=("127.0.0.1",)) as s:
        who = {"X-Remote-User": "office"}
        body = {"unit": "宽城县", "name": "李科长", "email": "li@kc.gov.cn"}
        for foreign in ({"Sec-Fetch-Site": "cross-site"}, {"Origin": "https://evil.example"}):
            with clock_at(START):
                r = httpx.post(f"{s.url}/api/v1/contact/add", json=body, headers={**who, **foreign})
            assert r.status_code == 403, r.text
        with clock_at(START):
            listed = httpx.get(f"{s.url}/api/v1/contact/list", headers=who).json()
        assert listed == []
        with clock_at(START):
            r = httpx.post(f"{s.url}/api/v1/contact/add", json=body, headers={**who, "Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 200, r.text


def test_a_chiefs_token_cannot_accept(serve):
    """Identity is the token's official: a township chief's token is refused acceptance (403, exit 4)."""
    with serve() as s:
        token = _signin(s, "chief_yuerya", PASSWORD).json()["token"]
        r = httpx.post(f"{s.url}/api/v1/advance", json={"unit": "宽城峪耳崖镇", "trigger": "accept", "note": "ok"},
                       headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 403 and r.json()["error"]["exit"] == 4


def test_passwords_are_argon2id_and_tokens_only_their_sha256(serve, db_url):
    """The database holds argon2id hashes and the SHA-256 of each token, never a password or a token."""
    with serve() as s:
        token = _signin(s, "inspector", PASSWORD).json()["token"]
    with s.db.read() as session:
        hashes = session.scalars(select(Password.hash)).all()
        stored = session.scalars(select(Token.hash)).all()
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert credentials.digest(token) in stored
    if not PG:
        from pathlib import Path

        s.db.dispose()
        path = Path(db_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert token.encode() not in raw and token.split("_", 2)[-1].encode() not in raw  # anj_ID_SECRET
        assert PASSWORD.encode() not in raw
        assert credentials.digest(token).encode() in raw


def test_history_names_sign_in_actions_in_chinese(serve, cli):
    """`history` shows sign-ins, refusals and token issues in Chinese words."""
    with serve() as s:
        _signin(s, "inspector", "wrong-password")
        _signin(s, "inspector", PASSWORD)
    r = cli("history", "--actor", "inspector", user=None, now=None)
    assert r.exit_code == 0, r.output
    for words in ("登录失败", "用户名或密码错误", "登录", "令牌", "修改密码"):
        assert words in r.output, words
    assert cli("audit", "verify", user=None, now=None).exit_code == 0
