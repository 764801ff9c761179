"""Signing in to the service, on a real server on loopback: the API's /signin, /signout and /me, and
the web's /login, /password, /logout and / (cookies, a password an admin set, sliding sessions)."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest
from support import clock_at

from anjian.workflow.services import credentials
from anjian.workflow.services.officials import os_login

FIRST = "first-password-1"
SECOND = "second-password-2"


@pytest.fixture
def admin(chengde):
    from anjian.workflow.engine.authz import Actor

    return Actor(os_login(), "admin", "130800")


@pytest.fixture
def with_password(served, admin):
    """The inspector has a password an admin set (it must change at the first sign-in)."""
    credentials.set_password(served.db, admin, "inspector", FIRST, dt.datetime.now(dt.UTC))
    return served


def _changed(served, admin, name="inspector"):
    """`name` has signed in once and chosen SECOND as the password."""
    credentials.set_password(served.db, admin, name, FIRST, dt.datetime.now(dt.UTC))
    r = httpx.post(f"{served.url}/api/v1/signin", json={"username": name, "password": FIRST, "new_password": SECOND})
    assert r.status_code == 200, r.text
    return r.json()


def _login_form(client: httpx.Client) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def _web_login(client: httpx.Client, name: str, password: str) -> httpx.Response:
    token = _login_form(client)
    return client.post("/login", data={"username": name, "password": password, "csrf_token": token})


def test_api_signin_refuses_a_token_until_the_admin_set_password_is_changed(with_password):
    """A password an admin set signs in only with a new one: without it 403 and must_change, with it a token."""
    url = with_password.url
    r = httpx.post(f"{url}/api/v1/signin", json={"username": "inspector", "password": FIRST})
    assert r.status_code == 403
    assert r.json()["error"]["must_change"] is True and r.json()["error"]["exit"] == 4
    assert "修改" in r.json()["error"]["message"]
    r = httpx.post(f"{url}/api/v1/signin", json={"username": "inspector", "password": FIRST, "new_password": SECOND})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["official"] == "inspector" and body["role"] == "city_inspector" and body["token"].startswith("anj_t")
    me = httpx.get(f"{url}/api/v1/me", headers={"Authorization": f"Bearer {body['token']}"}).json()
    assert me == {"name": "inspector", "role": "city_inspector", "unit": "130800", "credential": body["id"],
                  "kind": "token", "must_change": False}
    again = httpx.post(f"{url}/api/v1/signin", json={"username": "inspector", "password": SECOND})
    assert again.status_code == 200
    old = httpx.post(f"{url}/api/v1/signin", json={"username": "inspector", "password": FIRST})
    assert old.status_code == 401


def test_api_signin_refuses_a_short_new_password_with_exit_2(with_password):
    """A new password shorter than ten characters is bad input, and the old one still must change."""
    r = httpx.post(f"{with_password.url}/api/v1/signin",
                   json={"username": "inspector", "password": FIRST, "new_password": "short"})
    assert r.status_code == 400 and r.json()["error"]["exit"] == 2
    assert credentials.must_change(with_password.db, "inspector")


def test_api_signin_refuses_a_body_that_is_not_names_and_passwords(served):
    """A body that is not a JSON object of texts is refused (400, exit 2), naming the fields."""
    for body in (b"[1]", b"not json", b'{"username": 3, "password": "x"}', b'{"username": "x"}'):
        r = httpx.post(f"{served.url}/api/v1/signin", content=body)
        assert r.status_code == 400, body
        assert "username" in r.json()["error"]["message"]


def test_signout_revokes_the_calling_token_at_once(served, admin):
    """After /signout the same token is refused (401) on the very next request."""
    token = _changed(served, admin)["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{served.url}/api/v1/me", headers=headers).status_code == 200
    r = httpx.post(f"{served.url}/api/v1/signout", headers=headers)
    assert r.status_code == 200
    assert httpx.get(f"{served.url}/api/v1/me", headers=headers).status_code == 401
    assert httpx.get(f"{served.url}/api/v1/show", params={"unit": "宽城县"}, headers=headers).status_code == 401


def test_web_first_login_leads_to_the_password_page_then_home(with_password):
    """The first web sign-in with an admin's password goes to /password; once changed, / names the official."""
    with httpx.Client(base_url=with_password.url) as client:
        r = _web_login(client, "inspector", FIRST)
        assert r.status_code == 303 and r.headers["location"] == "/password"
        assert client.get("/").headers["location"] == "/password"
        # the session serves only to change the password meanwhile
        assert client.get("/api/v1/show", params={"unit": "宽城县"}).json()["error"]["must_change"] is True
        page = client.get("/password")
        assert "修改密码" in page.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = client.post("/password", data={"old": FIRST, "new": SECOND, "again": SECOND, "csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/"
        home = client.get("/")
        assert home.status_code == 200 and "inspector" in home.text and "市局验收人员" in home.text
        assert "<script" not in home.text and "http" not in home.text.replace("http-equiv", "")
    assert not credentials.must_change(with_password.db, "inspector")


def test_web_password_page_refuses_differing_new_passwords(with_password):
    """Two different new passwords are refused on the page, in Chinese, and nothing changes."""
    with httpx.Client(base_url=with_password.url) as client:
        _web_login(client, "inspector", FIRST)
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/password").text).group(1)
        r = client.post("/password", data={"old": FIRST, "new": SECOND, "again": SECOND + "x", "csrf_token": csrf})
        assert r.status_code == 400 and "两次" in r.text
    assert credentials.must_change(with_password.db, "inspector")


def test_web_login_sets_a_strict_http_only_cookie_and_logout_revokes_it(served, admin):
    """The session cookie is HttpOnly, SameSite=Strict, Path=/; /logout with the CSRF token ends the session."""
    _changed(served, admin)
    with httpx.Client(base_url=served.url) as client:
        r = _web_login(client, "inspector", SECOND)
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = [c for c in r.headers.get_list("set-cookie") if c.startswith("anjian_session=")][0].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert "secure" not in cookie  # cookie_secure=False in the tests' plain-HTTP server
        home = client.get("/")
        assert "inspector" in home.text and "退出登录" in home.text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', home.text).group(1)
        session = client.cookies["anjian_session"]
        r = client.post("/logout", data={"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/login"
    assert credentials.authenticate(served.db, session, dt.datetime.now(dt.UTC)) is None


def test_web_cookie_is_secure_when_configured(chengde, db_url, tmp_path, admin):
    """With cookie_secure (the default) the session and login-form cookies are Secure."""
    from support_server import serving

    from anjian.workflow.settings import resolve

    settings = resolve(db_url, env={"ANJIAN_HOME": str(tmp_path / "home")})
    with serving(chengde, settings, cookie_secure=True) as s:
        page = httpx.get(f"{s.url}/login")
        assert "secure" in page.headers["set-cookie"].lower()


def test_web_login_refuses_a_wrong_password_with_the_form_again(served, admin):
    """A wrong password shows the form again with the reason in Chinese (403), and no session cookie."""
    _changed(served, admin)
    with httpx.Client(base_url=served.url) as client:
        r = _web_login(client, "inspector", "wrong-password-0")
        assert r.status_code == 403
        assert "用户名或密码错误" in r.text and 'name="username" value="inspector"' in r.text
        assert "anjian_session" not in client.cookies


def test_web_pages_escape_what_an_official_typed(served):
    """A name typed into the login form comes back escaped, never as markup."""
    with httpx.Client(base_url=served.url) as client:
        r = _web_login(client, "<b>x</b>", "whatever-password")
        assert "&lt;b&gt;x&lt;/b&gt;" in r.text and "<b>x</b>" not in r.text


def test_home_without_a_session_goes_to_login(served):
    """/ and /password without a session redirect to /login."""
    for path in ("/", "/password"):
        r = httpx.get(served.url + path)
        assert r.status_code == 303 and r.headers["location"] == "/login"


def test_web_session_expiry_slides_with_use(served, admin):
    """A session used within its idle time lives on; left idle longer than session_minutes it is refused."""
    _changed(served, admin)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
    with httpx.Client(base_url=served.url) as client:
        with clock_at(start):
            _web_login(client, "inspector", SECOND)
        for hours in (4, 8, 12):  # each within 480 minutes of the last use
            with clock_at(start + dt.timedelta(hours=hours)):
                assert client.get("/").status_code == 200, hours
        with clock_at(start + dt.timedelta(hours=12, minutes=481)):
            assert client.get("/").status_code == 303


def test_pages_load_nothing_inline_nor_from_another_origin(served):
    """The login page has no script, no inline style, links only within its own origin, its own style
    sheet (which is served), and a Content-Security-Policy that allows nothing else."""
    answer = httpx.get(f"{served.url}/login")
    page = answer.text
    assert "<script" not in page and "<style" not in page and "style=" not in page
    links = re.findall(r'(?:href|src|action)="([^"]+)"', page)
    assert "/static/site.css" in links
    assert all(link.startswith("#") or (link.startswith("/") and not link.startswith("//")) for link in links), links
    assert "default-src 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY"
    css = httpx.get(f"{served.url}/static/site.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css") and "body" in css.text


def test_pages_follow_the_browsers_language(served):
    """A browser asking for English first gets the login page in English; otherwise it is Chinese."""
    assert "Sign in" in httpx.get(f"{served.url}/login", headers={"Accept-Language": "en-US,en;q=0.9"}).text
    assert "登录" in httpx.get(f"{served.url}/login", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}).text
