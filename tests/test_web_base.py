"""What every web page shares: sign-in first, the header's links by role, the security headers."""

from __future__ import annotations

from support_web import browser


def test_a_page_without_a_session_sends_to_login_and_comes_back(served):
    """A page asked for without a session redirects to /login with the page to come back to."""
    import httpx

    r = httpx.get(served.url + "/?from=mail")
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/%3Ffrom%3Dmail"


def test_every_page_has_the_security_headers_and_the_role_s_links(served):
    """A signed-in page carries the CSP and no-store, and a chief's header offers no queue or officials."""
    chief = browser(served, "chief_yuerya")
    page = chief.get("/")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    assert 'href="/queue"' not in page.text and 'href="/officials"' not in page.text
    assert "我的待办" in page.text and "退出" in page.text
    office = browser(served, "office")
    assert 'href="/officials"' in office.get("/").text
