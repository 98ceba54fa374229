from __future__ import annotations

import pytest
from django.urls import reverse

from cloudfunctions import validators
from cloudfunctions.connections import messages
from cloudfunctions.connections.forms import ConnectionForm
from cloudfunctions.connections.services import ConnectionInUse, connection_delete
from cloudfunctions.http.transport import host_of
from cloudfunctions.models import CloudFunction, Connection, ConnectionAuditEntry, shown_host
from tests.factories import (
    MARKERS,
    AmazonConnectionFactory,
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
)

pytestmark = pytest.mark.django_db

API_KEY_POST = {
    "name": "Payments",
    "provider": "custom",
    "base_url": "https://api.example.com/v1",
    "auth_type": "api_key",
    "api_key_location": "header",
    "api_key_name": "x-api-key",
    "api_key_value": MARKERS["api_key_value"],
}


@pytest.mark.parametrize(
    "base_url, message",
    [
        ("http://api.example.com", validators.URL_NOT_HTTPS),
        ("api.example.com", validators.URL_NOT_HTTPS),
        ("https://", validators.URL_NOT_HTTPS),
        ("ftp://api.example.com", validators.URL_NOT_HTTPS),
        ("https://user:pass@api.example.com", validators.URL_HAS_CREDENTIALS),
        ("https://good.example@evil.example", validators.URL_HAS_CREDENTIALS),
        ("https://api.example.com/#frag", validators.URL_HAS_QUERY_OR_FRAGMENT),
        ("https://api.example.com/?a=1", validators.URL_HAS_QUERY_OR_FRAGMENT),
        ("https://api.example.com:99999", validators.URL_NOT_HTTPS),
        ("https://api .example.com", validators.URL_NOT_HTTPS),
        ("https://169.254.169.254", validators.URL_PRIVATE_ADDRESS),
        ("https://10.0.0.1/v1", validators.URL_PRIVATE_ADDRESS),
        ("https://2130706433", validators.URL_PRIVATE_ADDRESS),
        ("https://[::1]:8443", validators.URL_PRIVATE_ADDRESS),
        ("https://[::169.254.169.254]", validators.URL_PRIVATE_ADDRESS),
        ("https://[::127.0.0.1]", validators.URL_PRIVATE_ADDRESS),
        ("https://[::10.0.0.1]", validators.URL_PRIVATE_ADDRESS),
        ("https://[::ffff:a9fe:a9fe]", validators.URL_PRIVATE_ADDRESS),
        ("https://[fec0::1]", validators.URL_PRIVATE_ADDRESS),
        ("https://[64:ff9b::10.0.0.1]", validators.URL_PRIVATE_ADDRESS),
    ],
)
def test_base_url_must_be_https_host_port_path(base_url, message):
    form = ConnectionForm({**API_KEY_POST, "base_url": base_url})
    assert not form.is_valid()
    assert form.errors["base_url"] == [message]


@pytest.mark.parametrize(
    "base_url", ["https://api.example.com", "https://api.example.com:8443/v1/", "https://localhost"]
)
def test_good_base_urls_pass(base_url):
    form = ConnectionForm({**API_KEY_POST, "base_url": base_url})
    assert form.is_valid(), form.errors


def test_the_loopback_allowlist_opens_loopback_literals_only(settings):
    settings.OUTBOUND_ALLOW_LOOPBACK = True
    for base_url in ("https://127.0.0.1:8443", "https://[::1]:8443", "https://[::ffff:127.0.0.1]"):
        assert ConnectionForm({**API_KEY_POST, "base_url": base_url}).is_valid(), base_url
    for base_url in ("https://[::127.0.0.1]", "https://169.254.169.254"):
        form = ConnectionForm({**API_KEY_POST, "base_url": base_url})
        assert form.errors["base_url"] == [validators.URL_PRIVATE_ADDRESS], base_url


def test_token_urls_are_held_to_the_same_rule():
    data = {
        **API_KEY_POST,
        "auth_type": "oauth2",
        "client_id": "c",
        "client_secret": MARKERS["client_secret"],
        "token_url": "https://[::169.254.169.254]/token",
        "refresh_url": "https://[fec0::1]/token",
    }
    form = ConnectionForm(data)
    assert form.errors["token_url"] == [validators.URL_PRIVATE_ADDRESS]
    assert form.errors["refresh_url"] == [validators.URL_PRIVATE_ADDRESS]


def test_region_must_be_one_of_botocores_connect_regions():
    data = {
        "name": "Amazon CNT",
        "provider": "amazon_connect",
        "region": "evil.com#",
        "access_key_id": "AKIAIOSFODNN7EXAMPLE",
        "secret_access_key": MARKERS["secret_access_key"],
    }
    form = ConnectionForm(data)
    assert not form.is_valid()
    assert "region" in form.errors
    assert ConnectionForm({**data, "region": "eu-central-1"}).is_valid()


def test_each_configuration_requires_its_own_fields():
    form = ConnectionForm({"name": "x", "provider": "custom", "auth_type": "oauth2"})
    assert not form.is_valid()
    assert {"base_url", "client_id", "token_url", "client_secret"} <= set(form.errors)
    assert "api_key_name" not in form.errors


def test_edit_form_never_renders_the_secret_and_blank_keeps_it(admin_client_):
    connection = ApiKeyConnectionFactory()
    url = reverse("connection-edit", args=[connection.pk])
    html = admin_client_.get(url).content.decode()
    assert MARKERS["api_key_value"] not in html
    assert "A value is set" in html
    post = {**API_KEY_POST, "name": connection.name, "api_key_value": ""}
    response = admin_client_.post(url, post)
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.api_key_value == MARKERS["api_key_value"]


def test_replacing_and_clearing_a_secret(admin_client_):
    connection = ApiKeyConnectionFactory()
    url = reverse("connection-edit", args=[connection.pk])
    admin_client_.post(url, {**API_KEY_POST, "name": connection.name, "api_key_value": "new-one-1"})
    connection.refresh_from_db()
    assert connection.api_key_value == "new-one-1"
    response = admin_client_.post(
        url,
        {
            **API_KEY_POST,
            "name": connection.name,
            "api_key_value": "",
            "clear_secrets": "api_key_value",
        },
    )
    assert response.status_code == 200  # refused: an API key connection needs its value
    assert "it has not been set yet" in response.content.decode()
    connection.refresh_from_db()
    assert connection.api_key_value == "new-one-1"


def test_switching_auth_type_drops_the_other_schemes_secret(admin_client_):
    connection = ApiKeyConnectionFactory()
    url = reverse("connection-edit", args=[connection.pk])
    response = admin_client_.post(
        url,
        {
            "name": connection.name,
            "provider": "custom",
            "base_url": "https://api.example.com",
            "auth_type": "oauth2",
            "client_id": "abc",
            "client_secret": "s3-secret",
            "token_url": "https://auth.example.com/token",
        },
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert connection.api_key_value is None
    assert connection.client_secret == "s3-secret"


def test_create_records_audit_with_field_names_only(admin_client_, admin_user):
    response = admin_client_.post(reverse("connection-create"), API_KEY_POST)
    assert response.status_code == 302
    connection = Connection.objects.get(name="Payments")
    entry = connection.audit_entries.get()
    assert entry.action == ConnectionAuditEntry.Action.CREATED
    assert entry.actor == admin_user
    assert "api_key_value" in entry.fields
    admin_client_.post(
        reverse("connection-edit", args=[connection.pk]),
        {**API_KEY_POST, "api_key_name": "x-key"},
    )
    changed = connection.audit_entries.filter(action="changed").get()
    assert changed.fields == ["api_key_name", "api_key_value"]
    page = admin_client_.get(connection.get_absolute_url()).content.decode()
    assert "api_key_name" in page and MARKERS["api_key_value"] not in page


def test_delete_is_refused_while_steps_use_it(admin_user):
    cf = CloudFunctionFactory()
    with pytest.raises(ConnectionInUse) as refused:
        connection_delete(connection=cf.connection, actor=admin_user)
    assert cf.step.name in str(refused.value)
    assert Connection.objects.filter(pk=cf.connection.pk).exists()


def test_delete_view_deletes_unused_and_keeps_audit(admin_client_):
    connection = AmazonConnectionFactory()
    response = admin_client_.post(reverse("connection-delete", args=[connection.pk]))
    assert response.status_code == 302
    assert not Connection.objects.filter(pk=connection.pk).exists()
    assert ConnectionAuditEntry.objects.filter(
        connection_name=connection.name, action="deleted"
    ).exists()


def test_designers_list_connections_but_cannot_open_them(designer_client):
    connection = ApiKeyConnectionFactory()
    html = designer_client.get(reverse("connection-list")).content.decode()
    assert connection.name in html and "api.example.com" in html
    assert reverse("connection-edit", args=[connection.pk]) not in html
    for name in ("connection-detail", "connection-edit", "connection-delete"):
        assert designer_client.get(reverse(name, args=[connection.pk])).status_code == 403
    assert designer_client.post(reverse("connection-test", args=[connection.pk])).status_code == 403


def test_provider_switch_rerenders_fields_through_htmx(admin_client_):
    response = admin_client_.post(
        reverse("connection-create"),
        {"name": "n", "provider": "amazon_connect", "_refresh": "1"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Default region" in html and "Base URL" not in html
    assert "<html" not in html  # only the fragment
    assert "errorlist" not in html


@pytest.mark.parametrize("value", ["line\nbreak", "zoë-api-key"])
def test_a_header_api_key_must_be_sendable(value):
    form = ConnectionForm({**API_KEY_POST, "api_key_value": value})
    assert form.errors["api_key_value"] == [messages.HEADER_VALUE_UNSENDABLE]
    assert ConnectionForm(
        {**API_KEY_POST, "api_key_value": value, "api_key_location": "query"}
    ).is_valid()


@pytest.mark.parametrize(
    "name, message",
    [
        ("x api key", messages.API_KEY_HEADER_NAME_INVALID),
        ("x-key:", messages.API_KEY_HEADER_NAME_INVALID),
        ("Host", messages.API_KEY_HEADER_NAME_RESERVED.format(name="Host")),
        ("Content-Length", messages.API_KEY_HEADER_NAME_RESERVED.format(name="Content-Length")),
    ],
)
def test_a_header_api_key_name_must_be_a_header_name(name, message):
    form = ConnectionForm({**API_KEY_POST, "api_key_name": name})
    assert form.errors["api_key_name"] == [message]
    assert ConnectionForm(
        {**API_KEY_POST, "api_key_name": name, "api_key_location": "query"}
    ).is_valid()
    assert ConnectionForm({**API_KEY_POST, "api_key_name": "Authorization"}).is_valid()


def test_a_secret_typed_into_a_refused_form_is_said_to_be_not_kept(admin_client_):
    connection = ApiKeyConnectionFactory()
    response = admin_client_.post(
        reverse("connection-edit", args=[connection.pk]),
        {**API_KEY_POST, "base_url": "http://plain.example", "api_key_value": "NEW-KEY-typed"},
    )
    html = response.content.decode()
    assert messages.SECRET_NOT_KEPT in html and "NEW-KEY-typed" not in html
    untouched = admin_client_.post(
        reverse("connection-edit", args=[connection.pk]),
        {**API_KEY_POST, "base_url": "http://plain.example", "api_key_value": ""},
    )
    assert messages.SECRET_NOT_KEPT not in untouched.content.decode()


def test_a_connection_kept_by_a_deployed_version_says_so(admin_user):
    from tests.orchestration.run_builders import deployed_process

    first = ApiKeyConnectionFactory()
    process = deployed_process(first, '"/v1/x"')
    # The draft moves on to another connection; version 1 keeps the first.
    another = ApiKeyConnectionFactory(name="Another")
    CloudFunction.objects.filter(step__process=process).update(connection=another)
    with pytest.raises(ConnectionInUse) as refused:
        connection_delete(connection=first, actor=admin_user)
    assert f"stays in use while {process.name} v1 exist" in str(refused.value)


def test_the_admin_shows_connections_and_their_trail_but_changes_neither(
    client, superuser, admin_user
):
    from cloudfunctions.connections.providers import ConnectionTokenStore
    from tests.factories import OAuthConnectionFactory

    connection = OAuthConnectionFactory(base_url="https://api.example.com")
    ConnectionTokenStore(connection.pk).save({"access_token": "TOKEN-MARKER", "expires_at": 1}, 0)
    entry = ConnectionAuditEntry.objects.create(connection_name="c", action="created")
    client.force_login(superuser)
    change = reverse("admin:cloudfunctions_connection_change", args=[connection.pk])
    assert client.get(change).status_code == 200  # can look
    # A host changed here would have kept the cached token for the new host.
    assert client.post(change, {"base_url": "https://other.example"}).status_code == 403
    assert Connection.objects.get(pk=connection.pk).base_url == "https://api.example.com"
    trail = "admin:cloudfunctions_connectionauditentry"
    assert client.post(reverse(f"{trail}_add"), {"connection_name": "forged"}).status_code == 403
    assert (
        client.post(reverse(f"{trail}_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    )
    assert ConnectionAuditEntry.objects.filter(pk=entry.pk).exists()


def test_a_stored_secret_goes_to_a_new_host_only_when_entered_again(admin_client_):
    connection = ApiKeyConnectionFactory(base_url="https://api.example.com/v1")
    url = reverse("connection-edit", args=[connection.pk])
    same_host = admin_client_.post(
        url, {**API_KEY_POST, "base_url": "https://api.example.com/v2", "api_key_value": ""}
    )
    assert same_host.status_code == 302  # another path on the same host: kept as it is
    moved = {**API_KEY_POST, "base_url": "https://collector.attacker.example", "api_key_value": ""}
    refused = admin_client_.post(url, moved)
    assert (
        messages.SECRET_AGAIN_FOR_NEW_HOST.format(label="Value", host="collector.attacker.example")
        in refused.content.decode()
    )
    assert Connection.objects.get(pk=connection.pk).base_url == "https://api.example.com/v2"
    other_port = {**moved, "base_url": "https://api.example.com:8443/v2"}
    assert "api.example.com:8443 is new" in admin_client_.post(url, other_port).content.decode()
    entered = admin_client_.post(url, {**moved, "api_key_value": "a-key-meant-for-it"})
    assert entered.status_code == 302
    assert Connection.objects.get(pk=connection.pk).api_key_value == "a-key-meant-for-it"


def test_an_oauth_token_url_on_a_new_host_needs_the_client_secret_again():
    from tests.factories import OAuthConnectionFactory

    connection = OAuthConnectionFactory(
        base_url="https://api.example.com", token_url="https://auth.example.com/token"
    )
    data = {
        "name": connection.name,
        "provider": "custom",
        "base_url": "https://api.example.com",
        "auth_type": "oauth2",
        "client_id": connection.client_id,
        "token_url": "https://evil.example/token",
    }
    form = ConnectionForm(data, instance=connection)
    assert "evil.example is new" in form.errors["client_secret"][0]
    same = {**data, "token_url": "https://auth.example.com/v2/token"}
    assert ConnectionForm(same, instance=Connection.objects.get(pk=connection.pk)).is_valid()


def test_a_connection_created_inline_tells_the_editor_by_an_htmx_event(admin_client_):
    import json

    response = admin_client_.post(
        reverse("connection-create") + "?inline=1", API_KEY_POST, HTTP_HX_REQUEST="true"
    )
    created = Connection.objects.get(name="Payments")
    event = json.loads(response["HX-Trigger"])
    assert event == {
        "connectionCreated": {"pk": created.pk, "name": "Payments", "provider": "custom"}
    }


@pytest.mark.parametrize(
    "base_url, shown",
    [
        ("https://API.Example.com:443/v1", "api.example.com"),
        ("https://api.example.com:8443", "api.example.com:8443"),
        ("https://[::1]:8443/x", "[::1]:8443"),
        ("", ""),
    ],
)
def test_a_connection_names_its_host_as_the_transport_does(designer_client, base_url, shown):
    connection = ApiKeyConnectionFactory(base_url=base_url)
    assert connection.host == shown == shown_host(base_url)
    if base_url:
        assert shown == host_of(base_url)
    html = designer_client.get(reverse("connection-list")).content.decode()
    assert f'<td class="mono" data-label="Host">{shown}</td>' in html
