"""Brute force on sign-in is locked out (django-axes); Test runs per user are capped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.backends import ModelBackend
from django.db.models import F
from django.urls import reverse

from orchestration.web import throttle
from orchestration.web.signin import LOGIN_THROTTLED
from tests import factories

pytestmark = pytest.mark.django_db

LIMIT = 5  # LOGIN_FAILURE_LIMIT's default


@pytest.fixture
def dana(db):
    return factories.designer(username="dana")


def _sign_in(client, username, password, address="203.0.113.7"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


def _fail(client, times, username="dana", address="203.0.113.7"):
    for _ in range(times):
        assert _sign_in(client, username, "wrong", address).status_code == 200


def _lock(client, username="dana", address="203.0.113.7"):
    """Fail LIMIT times: the last failure is answered with the lockout."""
    _fail(client, LIMIT - 1, username, address)
    assert _sign_in(client, username, "wrong", address).status_code == 429


def test_the_fifth_failure_locks_the_username_from_that_address(client, dana):
    _lock(client)
    response = _sign_in(client, "dana", factories.PASSWORD)
    assert response.status_code == 429
    html = response.content.decode()
    assert LOGIN_THROTTLED.format(minutes=15, s="s") in html
    assert "Too many failed sign-ins; try again in 15 minutes." in html
    assert 'value="dana"' in html  # the sign-in page, username kept, ready for later
    assert int(response["Retry-After"]) > 14 * 60
    assert "_auth_user_id" not in client.session  # the right password was not even checked


def test_the_limit_follows_the_setting(client, dana, settings):
    settings.AXES_FAILURE_LIMIT = 2
    _fail(client, 1)
    assert _sign_in(client, "dana", "wrong").status_code == 429


def test_the_lock_does_not_check_passwords(client, dana, monkeypatch):
    _lock(client)
    checked = []
    real = ModelBackend.authenticate
    monkeypatch.setattr(
        ModelBackend, "authenticate", lambda *a, **k: checked.append(1) or real(*a, **k)
    )
    assert _sign_in(client, "dana", factories.PASSWORD).status_code == 429
    assert checked == []


def test_the_stored_attempts_hold_no_password(client, dana):
    _fail(client, 2)
    stored = " ".join(AccessAttempt.objects.values_list("post_data", flat=True))
    assert "wrong" not in stored and "password=" in stored


@pytest.mark.parametrize(
    "username, address",
    [("other", "203.0.113.7"), ("dana", "198.51.100.1")],
    ids=["another user, same address", "same user, another address"],
)
def test_the_lock_is_per_username_and_address(client, dana, username, address):
    factories.designer(username="other")
    _lock(client)
    assert _sign_in(client, username, factories.PASSWORD, address).status_code == 302


def _post_behind_proxy(client, forwarded, password):
    return client.post(
        reverse("login"),
        {"username": "dana", "password": password},
        REMOTE_ADDR="10.0.0.2",  # the load balancer
        HTTP_X_FORWARDED_FOR=forwarded,
    )


def _lock_behind_proxy(client, forwarded):
    for _ in range(LIMIT - 1):
        assert _post_behind_proxy(client, forwarded, "wrong").status_code == 200
    assert _post_behind_proxy(client, forwarded, "wrong").status_code == 429


def _sign_in_behind_proxy(client, forwarded):
    return _post_behind_proxy(client, forwarded, factories.PASSWORD)


def test_behind_a_trusted_proxy_clients_are_told_apart(client, dana, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    _lock_behind_proxy(client, "203.0.113.7")
    assert _sign_in_behind_proxy(client, "203.0.113.7").status_code == 429
    # Someone else behind the same balancer is not locked out by the attacker.
    assert _sign_in_behind_proxy(client, "198.51.100.1").status_code == 302


def test_a_forged_forwarded_address_does_not_reset_the_count(client, dana, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    _lock_behind_proxy(client, "203.0.113.7")
    # The balancer appends the real address; what the client wrote stays to its left.
    assert _sign_in_behind_proxy(client, "198.51.100.9, 203.0.113.7").status_code == 429


def test_a_forwarded_entry_that_is_not_an_address_counts_as_the_proxy(client, dana, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    _lock_behind_proxy(client, "not-an-address")
    # Junk cannot open a fresh counter per request: it falls back to the proxy's address.
    assert _sign_in_behind_proxy(client, "still junk").status_code == 429


@pytest.mark.parametrize("seen", ["203.0.113.7:51234", "[2001:db8::7]:51234"])
def test_a_port_after_the_forwarded_address_does_not_make_a_new_client(
    client, dana, settings, seen
):
    settings.TRUSTED_PROXY_COUNT = 1
    _lock_behind_proxy(client, seen)
    assert _sign_in_behind_proxy(client, seen.replace("51234", "60001")).status_code == 429
    assert _sign_in_behind_proxy(client, "198.51.100.1:51234").status_code == 302


def test_without_trusted_proxies_the_forwarded_header_is_ignored(client, dana):
    _lock_behind_proxy(client, "203.0.113.7")
    assert _sign_in_behind_proxy(client, "198.51.100.1").status_code == 429


def test_username_case_and_spaces_do_not_reset_the_count(client, dana):
    _fail(client, 2)
    _fail(client, 2, username="DANA")
    assert _sign_in(client, " dana ", "wrong").status_code == 429
    assert _sign_in(client, "Dana", factories.PASSWORD).status_code == 429


def test_four_failures_then_success_resets(client, dana):
    _fail(client, 4)
    assert _sign_in(client, "dana", factories.PASSWORD).status_code == 302
    client.logout()
    _fail(client, 4)
    assert _sign_in(client, "dana", factories.PASSWORD).status_code == 302


def _age_attempts(seconds: int) -> None:
    """Move the stored failures back in time, as if seconds had passed since."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(seconds=seconds))


def test_the_lock_ends_a_window_after_the_last_failure(client, dana):
    _lock(client)
    _age_attempts(15 * 60 - 30)
    response = _sign_in(client, "dana", factories.PASSWORD)
    assert LOGIN_THROTTLED.format(minutes=1, s="") in response.content.decode()
    assert 0 < int(response["Retry-After"]) <= 30
    _age_attempts(31)
    assert _sign_in(client, "dana", factories.PASSWORD).status_code == 302


def test_tries_during_the_lock_do_not_extend_it(client, dana):
    _lock(client)
    _age_attempts(15 * 60 - 30)
    assert _sign_in(client, "dana", "wrong").status_code == 429
    _age_attempts(31)
    assert _sign_in(client, "dana", factories.PASSWORD).status_code == 302


def test_test_runs_are_capped_per_user(settings, dana):
    settings.TEST_RUN_LIMIT = 3
    other = factories.designer(username="olga")
    for _ in range(3):
        throttle.check_test_run_allowed(dana)
    with pytest.raises(throttle.Throttled) as refused:
        throttle.check_test_run_allowed(dana)
    assert refused.value.message.startswith("Too many Test runs; try again in ")
    assert 0 < refused.value.retry_after <= 60
    throttle.check_test_run_allowed(other)


def test_no_client_address_is_stored_as_none_not_an_empty_string(rf):
    from orchestration.web.signin import client_address

    # axes keeps the address in an inet column on PostgreSQL, which refuses "".
    assert client_address(rf.post("/login/", REMOTE_ADDR="")) is None
