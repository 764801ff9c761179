"""The credentials service on its own: passwords, sign-in and its limits, tokens and sessions, revocation."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from support import audit_count

from anjian.workflow.engine.authz import Actor
from anjian.workflow.errors import BadInput, NotPermitted
from anjian.workflow.services import credentials
from anjian.workflow.services.credentials import Limits
from anjian.workflow.services.officials import os_login
from anjian.workflow.store.models import SigninFailure

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=1)
FIRST, SECOND = "first-password-1", "second-password-2"


@pytest.fixture
def db(chengde):
    """Chengde, the inspector with a password of their own (SECOND)."""
    admin = Actor(os_login(), "admin", "130800")
    credentials.set_password(chengde, admin, "inspector", FIRST, NOW)
    credentials.change_password(chengde, "inspector", FIRST, SECOND, NOW)
    return chengde


def test_sign_in_issues_a_session_with_its_csrf_secret(db):
    """A right password gives a session (with a CSRF secret) that authenticates as the official."""
    issued, must = credentials.sign_in(db, "inspector", SECOND, "127.0.0.1", NOW)
    assert not must and issued.kind == "session" and issued.csrf
    who = credentials.authenticate(db, issued.secret, NOW)
    assert who.actor.name == "inspector" and who.csrf == issued.csrf and who.kind == "session"
    assert credentials.authenticate(db, issued.secret, NOW, kind="token") is None


def test_unknown_name_and_wrong_password_read_alike(db):
    """An unknown name and a wrong password are refused with the same words, both counted and audited."""
    messages = []
    for name, password in (("nobody", SECOND), ("inspector", "wrong-password")):
        with pytest.raises(NotPermitted) as caught:
            credentials.sign_in(db, name, password, "10.0.0.5", NOW)
        messages.append(caught.value.message)
    assert messages[0] == messages[1]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(SigninFailure)) == 2


def test_disabled_official_cannot_sign_in_nor_use_a_token(db):
    """Disabling an official refuses their password and every token they hold."""
    from anjian.workflow.services.officials import set_active

    token = credentials.issue(db, "inspector", "inspector", NOW)
    set_active(db, "inspector", False, Actor(os_login(), "admin", "130800"), NOW)
    with pytest.raises(NotPermitted):
        credentials.sign_in(db, "inspector", SECOND, "127.0.0.1", NOW)
    assert credentials.authenticate(db, token.secret, NOW) is None


def test_changing_the_password_ends_other_sessions_but_the_one_changing_it(db):
    """A password change revokes the official's other browser sessions, keeps the current one and tokens."""
    one, _ = credentials.sign_in(db, "inspector", SECOND, "127.0.0.1", NOW)
    two, _ = credentials.sign_in(db, "inspector", SECOND, "127.0.0.1", NOW)
    token = credentials.issue(db, "inspector", "inspector", NOW)
    credentials.change_password(db, "inspector", SECOND, "third-password-3", NOW, keep=two.id)
    assert credentials.authenticate(db, one.secret, NOW) is None
    assert credentials.authenticate(db, two.secret, NOW) is not None
    assert credentials.authenticate(db, token.secret, NOW) is not None


def test_change_password_needs_the_old_one_and_a_different_new_one(db):
    """A wrong current password is refused (exit 4); the same password again is bad input."""
    with pytest.raises(NotPermitted):
        credentials.change_password(db, "inspector", "wrong-password", "third-password-3", NOW)
    with pytest.raises(BadInput):
        credentials.change_password(db, "inspector", SECOND, SECOND, NOW)


def test_token_sign_in_with_a_new_password_changes_it_first(chengde):
    """A token sign-in with an admin's password needs new_password; given, the password changes (audited)."""
    credentials.set_password(chengde, Actor(os_login(), "admin", "130800"), "inspector", FIRST, NOW)
    with pytest.raises(credentials.PasswordMustChange):
        credentials.sign_in(chengde, "inspector", FIRST, "127.0.0.1", NOW, kind="token")
    issued, must = credentials.sign_in(chengde, "inspector", FIRST, "127.0.0.1", NOW, kind="token",
                                       new_password=SECOND)
    assert issued.kind == "token" and not must and not credentials.must_change(chengde, "inspector")


def test_limits_block_then_release_after_the_window(db):
    """Failures beyond the account limit block the right password until the window has passed."""
    limits = Limits(failures_per_account=2, failure_window_minutes=10)
    for _ in range(2):
        with pytest.raises(NotPermitted):
            credentials.sign_in(db, "inspector", "wrong-password", "10.0.0.5", NOW, limits=limits)
    with pytest.raises(NotPermitted, match="10"):
        credentials.sign_in(db, "inspector", SECOND, "10.0.0.6", NOW, limits=limits)
    credentials.sign_in(db, "inspector", SECOND, "10.0.0.6", NOW + dt.timedelta(minutes=11), limits=limits)
    assert credentials.forget_failures(db, NOW + dt.timedelta(minutes=11), limits) == 3


def test_token_refused_counts_until_the_address_is_blocked(db):
    """Bad tokens are counted and audited until the address is blocked; then neither."""
    limits = Limits(failures_per_address=2)
    before = audit_count(db)
    assert [credentials.token_refused(db, "10.0.0.9", NOW, limits) for _ in range(3)] == [False, False, True]
    assert audit_count(db) == before + 2
    assert credentials.address_blocked(db, "10.0.0.9", NOW, limits)
    assert not credentials.address_blocked(db, "10.0.0.8", NOW, limits)


def test_touch_slides_a_session(db):
    """touch moves a session's expiry to `now` plus its minutes and notes the last use."""
    issued, _ = credentials.sign_in(db, "inspector", SECOND, "127.0.0.1", NOW)
    later = NOW + dt.timedelta(minutes=400)
    credentials.touch(db, issued.id, later, extend_minutes=480)
    who = credentials.authenticate(db, issued.secret, NOW + dt.timedelta(minutes=800))
    assert who is not None and who.last_used_at is not None


@pytest.mark.parametrize("secret", ["", "anj_", "Bearer x", "anj_" + "x" * 300, "anj_t00_\x00"])
def test_authenticate_refuses_malformed_secrets(db, secret):
    """Malformed or oversized secrets authenticate no one."""
    assert credentials.authenticate(db, secret, NOW) is None


def test_revoking_anothers_token_reads_as_unknown(db):
    """An official cannot revoke, nor learn of, another's token: it reads as no token of theirs."""
    token = credentials.issue(db, "chief", "chief", NOW)
    with pytest.raises(BadInput, match=token.id):
        credentials.revoke(db, Actor("inspector", "city_inspector", "130800"), token.id, NOW)
    assert credentials.authenticate(db, token.secret, NOW) is not None
