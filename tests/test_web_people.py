"""`/officials` (人员与联系人): the officials and contacts as `user list` and `contact list` give them, and the
forms that run `user add|disable|enable`, `contact add|remove` and an admin's first password, each refused
as the service refuses it."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import select
from support_web import browser, csrf_of

from anjian.workflow.services import contacts as contact_service
from anjian.workflow.services import officials as official_service
from anjian.workflow.services.officials import os_login
from anjian.workflow.store.models import AuditRow

NOW = dt.datetime.now(dt.UTC)


def _post(client: httpx.Client, **fields) -> httpx.Response:
    """Post one form of /officials with the session's CSRF token (taken from the page, as a browser would)."""
    token = csrf_of(client.get("/officials").text)
    return client.post("/officials", data={"csrf_token": token, **fields})


def _people(served) -> dict:
    return {o.name: o for o in official_service.listing(served.db)}


def _last_audit(served) -> AuditRow:
    with served.db.read() as session:
        return session.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).one()


def _contacts(served) -> list[tuple[str, str, str | None, str | None]]:
    return [(c.unit, c.name, c.email, c.webhook) for c in contact_service.listing(served.db)]


def test_the_city_office_sees_the_officials_and_the_contacts(served):
    """The city office's page lists every official (role in Chinese, unit code and name, password state)
    and every contact, with the contact form but no form for officials (`users` is the admins')."""
    contact_service.add(served.db, "宽城县", "李科长", "li@kc.gov.cn", None, "admin", NOW)
    office = browser(served, "office")
    page = office.get("/officials")
    assert page.status_code == 200
    assert "<h1>人员与联系人</h1>" in page.text
    assert "<th scope=\"row\">chief_yuerya</th>" in page.text and "乡镇安监站长" in page.text
    assert "130827102" in page.text and "峪耳崖镇" in page.text
    assert "<th scope=\"row\">李科长</th>" in page.text and "li@kc.gov.cn" in page.text
    assert 'value="add_contact"' in page.text and 'value="remove_contact"' in page.text
    assert 'value="add_user"' not in page.text and 'value="set_password"' not in page.text
    assert "待本人首次登录修改" not in page.text  # every test official changed the password browser() set


def test_the_city_office_adds_a_contact_seen_after_and_in_the_database(served):
    """A contact added by the form is in the database, and the page it lands on says so and lists it."""
    office = browser(served, "office")
    r = _post(office, action="add_contact", unit="宽城县", name="王秘书", email="wang@kc.gov.cn", webhook="")
    assert r.status_code == 303 and r.headers["location"].startswith("/officials?done=contact_added")
    assert ("130827", "王秘书", "wang@kc.gov.cn", None) in _contacts(served)
    after = office.get(r.headers["location"])
    assert after.status_code == 200 and "已添加联系人 王秘书" in after.text and "wang@kc.gov.cn" in after.text


def test_a_webhook_off_the_allowlist_is_refused_with_nothing_written(served):
    """`contact add` with a webhook whose host is not allowed exits 2: the page answers 400 with the
    service's reason, keeps what was typed, and no contact is written."""
    office = browser(served, "office")
    r = _post(office, action="add_contact", unit="宽城县", name="钓鱼", email="", webhook="https://evil.example/hook")
    assert r.status_code == 400
    assert "evil.example" in r.text and 'role="alert"' in r.text
    assert 'value="钓鱼"' in r.text  # the form keeps what was typed
    assert _contacts(served) == []


def test_the_city_office_removes_a_contact(served):
    """The remove button runs `contact remove`: the contact is gone and the page says so."""
    contact_service.add(served.db, "宽城县", "李科长", "li@kc.gov.cn", None, "admin", NOW)
    office = browser(served, "office")
    r = _post(office, action="remove_contact", unit="130827", name="李科长")
    assert r.status_code == 303
    assert _contacts(served) == []
    assert "已删除联系人 李科长" in office.get(r.headers["location"]).text


def test_the_city_office_may_not_register_officials(served):
    """`user add` is the admins' (permission `users`): the city office's post is refused 403 in the
    service's words, and no official is added."""
    office = browser(served, "office")
    before = _people(served)
    r = _post(office, action="add_user", name="新人", role="township_chief", unit="宽城峪耳崖镇", os_user="")
    assert r.status_code == 403
    assert _people(served) == before


def test_an_admin_registers_disables_and_enables_an_official(served):
    """An admin's forms run `user add`, `user disable` and `user enable`: each change is in the database
    and on the page it lands on."""
    admin = browser(served, os_login())
    r = _post(admin, action="add_user", name="王站长", role="township_chief", unit="宽城峪耳崖镇", os_user="wangzz")
    assert r.status_code == 303 and "done=user_added" in r.headers["location"]
    added = _people(served)["王站长"]
    assert (added.role, added.unit, added.os_user, added.active) == ("township_chief", "130827102", "wangzz", True)
    page = admin.get(r.headers["location"])
    assert "已登记工作人员 王站长" in page.text and "<th scope=\"row\">王站长</th>" in page.text and "wangzz" in page.text
    r = _post(admin, action="deactivate", name="王站长")
    assert r.status_code == 303 and not _people(served)["王站长"].active
    r = _post(admin, action="reactivate", name="王站长")
    assert r.status_code == 303 and _people(served)["王站长"].active


def test_a_role_that_does_not_fit_the_unit_is_refused_as_bad_input(served):
    """A township chief posted at a county is refused by `user add` (exit 2): 400 with its reason, nothing added."""
    admin = browser(served, os_login())
    r = _post(admin, action="add_user", name="错位", role="township_chief", unit="宽城县", os_user="")
    assert r.status_code == 400 and "错位" not in _people(served)
    assert 'value="错位"' in r.text


def test_a_chief_and_a_county_official_cannot_change_what_is_not_theirs(served):
    """A chief may not list officials (`user list` refuses: exit 4), so the page is refused them (403); a
    chief's or a county official's posts outside their rights are refused 403, nothing written; the county
    official sees the page, with the officials of their own county only and no officials' forms."""
    chief, county = browser(served, "chief_yuerya"), browser(served, "li")
    assert chief.get("/officials").status_code == 403
    page = county.get("/officials")
    assert page.status_code == 200 and 'value="add_user"' not in page.text
    assert "chief_yuerya" in page.text and ">wang<" not in page.text
    before = _people(served)
    r = _post(chief, action="add_user", name="新人", role="township_chief", unit="宽城峪耳崖镇", os_user="")
    assert r.status_code == 403
    r = _post(chief, action="add_contact", unit="宽城县", name="越权", email="x@kc.gov.cn", webhook="")
    assert r.status_code == 403
    r = _post(county, action="deactivate", name="chief_yuerya")
    assert r.status_code == 403
    r = _post(county, action="add_contact", unit="丰宁大阁镇", name="越权", email="x@fn.gov.cn", webhook="")
    assert r.status_code == 403
    assert _people(served) == before and _contacts(served) == []


def test_a_form_without_its_csrf_token_is_refused(served):
    """A post without the session's CSRF token is refused 403 and changes nothing."""
    admin = browser(served, os_login())
    admin.get("/officials")
    r = admin.post("/officials", data={"action": "add_contact", "unit": "宽城县", "name": "无令牌", "email": "n@kc.gov.cn"})
    assert r.status_code == 403 and "表单已过期" in r.text
    r = admin.post("/officials", data={"action": "add_user", "name": "无令牌", "role": "admin", "unit": "承德市",
                                       "csrf_token": "forged"})
    assert r.status_code == 403
    assert _contacts(served) == [] and "无令牌" not in _people(served)


def test_a_first_password_lets_the_official_sign_in_and_sends_them_to_change_it(served):
    """An admin gives a new official a first password: the official signs in at /login and is sent to
    /password; a second try to set it over the web is refused (403), the first password still works."""
    official_service.add(served.db, "赵站长", "township_chief", "宽城峪耳崖镇", None, "admin", NOW)
    admin = browser(served, os_login())
    page = admin.get("/officials")
    assert '<option value="赵站长">' in page.text
    r = _post(admin, action="set_password", name="赵站长", password="first-pass-123", again="first-pass-123")
    assert r.status_code == 303 and "done=password_set" in r.headers["location"]
    assert _people(served)["赵站长"].must_change
    assert (_last_audit(served).action, _last_audit(served).actor) == ("password_set", os_login())
    assert "待本人首次登录修改" in admin.get(r.headers["location"]).text
    again = _post(admin, action="set_password", name="赵站长", password="other-pass-456", again="other-pass-456")
    assert again.status_code == 403 and "已有密码" in again.text
    assert _last_audit(served).action == "denied" and "first password" in _last_audit(served).detail
    new = httpx.Client(base_url=served.url, follow_redirects=False, timeout=60)
    login = new.get("/login")
    r = new.post("/login", data={"username": "赵站长", "password": "first-pass-123", "csrf_token": csrf_of(login.text)})
    assert r.status_code == 303 and r.headers["location"] == "/password"
    assert new.get("/officials").headers["location"] == "/password"


def test_two_different_passwords_are_refused(served):
    """The password and its repetition must agree: 400, no password set, nothing echoed back."""
    official_service.add(served.db, "钱站长", "township_chief", "宽城峪耳崖镇", None, "admin", NOW)
    admin = browser(served, os_login())
    r = _post(admin, action="set_password", name="钱站长", password="first-pass-123", again="first-pass-124")
    assert r.status_code == 400 and "first-pass-12" not in r.text
    assert not _people(served)["钱站长"].has_password


def test_the_lists_filter_by_unit(served):
    """`?unit=宽城县` keeps the county's and its townships' officials, not the city's; an unknown unit says so (400)."""
    office = browser(served, "office")
    page = office.get("/officials", params={"unit": "宽城县"})
    assert page.status_code == 200 and "宽城满族自治县（130827）" in page.text
    assert "<th scope=\"row\">li</th>" in page.text and "<th scope=\"row\">chief_yuerya</th>" in page.text
    assert "<th scope=\"row\">wang</th>" not in page.text
    unknown = office.get("/officials", params={"unit": "不存在镇"})
    assert unknown.status_code == 400 and "不存在镇" in unknown.text


def test_user_list_json_says_whether_a_password_is_set(served):
    """`user list` (here through the API) gives each official `has_password` and `must_change` beside the old keys."""
    official_service.add(served.db, "孙站长", "township_chief", "宽城峪耳崖镇", None, "admin", NOW)
    browser(served, "office")
    answer = httpx.get(served.url + "/api/v1/user/list", headers={"Authorization": "Bearer " + served.token("office")})
    rows = {o["name"]: o for o in answer.json()}
    assert answer.status_code == 200
    assert {k: rows["office"][k] for k in ("role", "unit", "active", "has_password", "must_change")} == {
        "role": "city_office", "unit": "130800", "active": True, "has_password": True, "must_change": False}
    assert (rows["孙站长"]["has_password"], rows["孙站长"]["must_change"]) == (False, False)


def test_a_long_list_comes_in_pages(served):
    """Past 50 officials the table is paged: page 1 links to page 2, which holds the rest."""
    for n in range(50):
        official_service.add(served.db, f"站长{n:02d}", "township_chief", "宽城峪耳崖镇", None, "admin", NOW)
    office = browser(served, "office")
    first = office.get("/officials")
    assert first.status_code == 200 and "第 1 页，共 2 页" in first.text
    assert 'href="/officials?cpage=1&amp;page=2" rel="next"' in first.text
    second = office.get("/officials", params={"page": "2", "cpage": "1"})
    assert second.status_code == 200 and "第 2 页，共 2 页" in second.text
    assert second.text.count('<th scope="row">') == 64 - 50
    assert "<th scope=\"row\">站长49</th>" in second.text and "<th scope=\"row\">chief</th>" not in second.text
