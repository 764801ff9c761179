"""The web pages in the tests: a browser-like httpx client signed in to a served app as one official
(a password set through the credentials service, then the real /login form), and the CSRF token of a page."""

from __future__ import annotations

import datetime as dt
import re

import httpx

PASSWORD = "web-password-1"


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def browser(served, official: str, password: str = PASSWORD) -> httpx.Client:
    """An httpx client with `official`'s web session (their password set and already changed once)."""
    from anjian.workflow.engine.authz import Actor
    from anjian.workflow.services import credentials
    from anjian.workflow.services.officials import os_login

    now = dt.datetime.now(dt.UTC)
    admin = Actor(os_login(), "admin", "130800")
    credentials.set_password(served.db, admin, official, password + "-first", now)
    credentials.change_password(served.db, official, password + "-first", password, now, "127.0.0.1")
    client = httpx.Client(base_url=served.url, follow_redirects=False, timeout=60)
    page = client.get("/login")
    r = client.post("/login", data={"username": official, "password": password, "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303 and r.headers["location"] == "/", r.text
    return client
