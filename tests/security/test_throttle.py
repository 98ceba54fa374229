"""Brute force on sign-in is slowed down; Test runs per user are capped."""

from __future__ import annotations

import pytest
from django.urls import reverse

from orchestration.web import throttle
from tests import factories

pytestmark = pytest.mark.django_db


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


def test_fifth_failure_locks_the_username_from_that_address(client, dana):
    _fail(client, 5)
    response = _sign_in(client, "dana", factories.PASSWORD)
    assert response.status_code == 429
    html = response.content.decode()
    assert "Too many failed sign-ins; try again in 15 minutes." in html
    assert int(response["Retry-After"]) > 14 * 60
    assert "_auth_user_id" not in client.session  # the right password was not even checked


def test_the_lock_does_not_check_passwords(client, dana, monkeypatch):
    _fail(client, 5)
    checked = []
    monkeypatch.setattr(
        "django.contrib.auth.forms.authenticate", lambda *a, **k: checked.append(1) or None
    )
    assert _sign_in(client, "dana", factories.PASSWORD).status_code == 429
    assert checked == []


@pytest.mark.parametrize(
    "username, address",
    [("other", "203.0.113.7"), ("dana", "198.51.100.1")],
    ids=["another user, same address", "same user, another address"],
)
def test_the_lock_is_per_username_and_address(client, dana, username, address):
    factories.designer(username="other")
    _fail(client, 5)
    assert _sign_in(client, username, factories.PASSWORD, address).status_code == 302


def _fail_behind_proxy(client, forwarded, times=5):
    for _ in range(times):
        response = client.post(
            reverse("login"),
            {"username": "dana", "password": "wrong"},
            REMOTE_ADDR="10.0.0.2",  # the load balancer
            HTTP_X_FORWARDED_FOR=forwarded,
        )
        assert response.status_code == 200


def _sign_in_behind_proxy(client, forwarded):
    return client.post(
        reverse("login"),
        {"username": "dana", "password": factories.PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR=forwarded,
    )


def test_behind_a_trusted_proxy_clients_are_told_apart(client, dana, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    _fail_behind_proxy(client, "203.0.113.7")
    assert _sign_in_behind_proxy(client, "203.0.113.7").status_code == 429
    # Someone else behind the same balancer is not locked out by the attacker.
    assert _sign_in_behind_proxy(client, "198.51.100.1").status_code == 302


def test_a_forged_forwarded_address_does_not_reset_the_count(client, dana, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    _fail_behind_proxy(client, "203.0.113.7")
    # The balancer appends the real address; what the client wrote stays to its left.
    assert _sign_in_behind_proxy(client, "198.51.100.9, 203.0.113.7").status_code == 429


def test_a_forwarded_entry_that_is_not_an_address_counts_as_the_proxy(client, dana, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    _fail_behind_proxy(client, "not-an-address")
    # Junk cannot open a fresh counter per request: it falls back to the proxy's address.
    assert _sign_in_behind_proxy(client, "still junk").status_code == 429


@pytest.mark.parametrize("seen", ["203.0.113.7:51234", "[2001:db8::7]:51234"])
def test_a_port_after_the_forwarded_address_does_not_make_a_new_client(
    client, dana, settings, seen
):
    settings.TRUSTED_PROXY_COUNT = 1
    _fail_behind_proxy(client, seen)
    assert _sign_in_behind_proxy(client, seen.replace("51234", "60001")).status_code == 429
    assert _sign_in_behind_proxy(client, "198.51.100.1:51234").status_code == 302


def test_without_trusted_proxies_the_forwarded_header_is_ignored(client, dana):
    _fail_behind_proxy(client, "203.0.113.7")
    assert _sign_in_behind_proxy(client, "198.51.100.1").status_code == 429


def test_username_case_and_spaces_do_not_reset_the_count(client, dana):
    _fail(client, 2)
    _fail(client, 2, username="DANA")
    _fail(client, 1, username=" dana ")
    assert _sign_in(client, "Dana", factories.PASSWORD).status_code == 429


def test_four_failures_then_success_resets(client, dana):
    _fail(client, 4)
    assert _sign_in(client, "dana", factories.PASSWORD).status_code == 302
    client.logout()
    _fail(client, 4)
    assert _sign_in(client, "dana", factories.PASSWORD).status_code == 302


def test_the_window_passes(client, dana, monkeypatch):
    _fail(client, 5)
    now = throttle.time.time()
    monkeypatch.setattr(throttle.time, "time", lambda: now + 15 * 60 - 30)
    response = _sign_in(client, "dana", factories.PASSWORD)
    assert "try again in 1 minute." in response.content.decode()


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
