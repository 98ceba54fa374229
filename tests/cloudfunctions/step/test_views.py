from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from cloudfunctions.models import CloudFunction
from cloudfunctions.step.checks import iter_problems
from cloudfunctions.step.editor import SAVED, SAVED_WITH_PROBLEMS
from orchestration.models import CompletionEvent
from orchestration.processes.services import step_refresh_problems
from orchestration.validators import EVENT_NAME_INVALID, validate_event_name
from tests import factories as user_factories
from tests.cloudfunctions.step.page import form_data
from tests.factories import (
    ApiKeyConnectionFactory,
    CloudFunctionFactory,
    EventFactory,
    StepFactory,
)

pytestmark = pytest.mark.django_db


def _rows(prefix, rows):
    data = {
        f"{prefix}-TOTAL_FORMS": str(len(rows)),
        f"{prefix}-INITIAL_FORMS": "0",
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }
    for i, (key, value) in enumerate(rows):
        data.update(
            {f"{prefix}-{i}-key": key, f"{prefix}-{i}-value": value, f"{prefix}-{i}-ORDER": i + 1}
        )
    return data


def _post(step, connection, *, revision=None, **overrides):
    data = {
        "revision": step.revision if revision is None else revision,
        "name": "Create charge",
        "provider": "custom",
        "connection": connection.pk,
        "method": "POST",
        "uri": '"/v1/charges"',
        "body_mode": "json",
        "body": '{\n  "customer_name": "John Doe",\n  "is_active": true\n}',
        "completion_event_choice": "__new__",
        "new_event_name": "charge.created",
        **_rows("query", [('"environment"', '"production"')]),
        **_rows("headers", [('"Content-Type"', '"application/json"')]),
    }
    data.update(overrides)
    return data


def _url(step):
    return reverse("step-editor", args=[step.process_id, step.pk])


def test_configure_shows_the_seed_labels(designer_client):
    step = StepFactory()
    html = designer_client.get(_url(step)).content.decode()
    assert "Cloud function" in html and "Configure cloud function" in html
    html = designer_client.get(_url(step) + "?configure=1").content.decode()
    for label in (
        "Name",
        "Cloud provider",
        "Method",
        "URI",
        "Query parameters",
        "Headers",
        "Body",
        "Completion event",
        "Key",
        "Value",
    ):
        assert f">{label}<" in html or f">{label}</" in html, label


def test_save_keeps_everything_as_typed(designer_client):
    step = StepFactory()
    connection = ApiKeyConnectionFactory()
    response = designer_client.post(_url(step), _post(step, connection))
    assert response.status_code == 302
    cf = CloudFunction.objects.get(step=step)
    assert cf.uri == '"/v1/charges"'
    assert cf.query_params == [{"key": '"environment"', "value": '"production"'}]
    assert cf.headers == [{"key": '"Content-Type"', "value": '"application/json"'}]
    assert cf.body.startswith('{\n  "customer_name"')
    assert cf.completion_event.name == "charge.created"
    step.refresh_from_db()
    assert step.problems == [] and step.revision == 1


def test_invalid_input_is_saved_and_the_step_marked_incomplete(designer_client):
    step = StepFactory()
    connection = ApiKeyConnectionFactory()
    response = designer_client.post(
        _url(step), _post(step, connection, uri='"/v1/', body='{"a": }')
    )
    assert response.status_code == 302
    cf = CloudFunction.objects.get(step=step)
    assert cf.uri == '"/v1/' and cf.body == '{"a": }'
    step.refresh_from_db()
    assert any(p.startswith("URI:") for p in step.problems)
    assert any("Body: Not valid JSON" in p and "line 1, column 7" in p for p in step.problems)
    html = designer_client.get(reverse("process-editor", args=[step.process_id])).content.decode()
    assert "Incomplete" in html and "Body: Not valid JSON" in html


def test_reordered_and_removed_rows(designer_client):
    step = StepFactory()
    data = _post(step, ApiKeyConnectionFactory())
    data.update(_rows("headers", [('"A"', '"1"'), ('"B"', '"2"'), ('"C"', '"3"')]))
    data["headers-0-ORDER"] = 3
    data["headers-2-ORDER"] = 1
    data["headers-1-DELETE"] = "on"
    designer_client.post(_url(step), data)
    assert [r["key"] for r in CloudFunction.objects.get(step=step).headers] == ['"C"', '"A"']


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("uri", "42", "The URI must be a string expression"),
        ("uri", '"v1/charges"', 'must start with "/"'),
        ("uri", "", "Enter a CEL expression"),
        ("body", "[1, 2,]", "Not valid JSON"),
    ],
)
def test_field_rules(field, value, expected):
    cf = CloudFunctionFactory(**{field: value})
    assert any(expected in str(p) for p in iter_problems(cf, known_events=set())), list(
        iter_problems(cf, known_events=set())
    )


def test_keys_must_be_unique():
    cf = CloudFunctionFactory(
        headers=[{"key": '"A"', "value": '"1"'}, {"key": '"A"', "value": '"2"'}]
    )
    assert any(
        "Header 2 key: This key is already used" in str(p)
        for p in iter_problems(cf, known_events=set())
    )


def test_new_event_name_must_be_unique_and_valid(designer_client):
    step = StepFactory()
    EventFactory(process=step.process, name="charge.created")
    response = designer_client.post(_url(step), _post(step, ApiKeyConnectionFactory()), follow=True)
    assert "already exists" in response.content.decode()
    assert CompletionEvent.objects.filter(process=step.process).count() == 1
    # The rest was saved all the same, and what was typed is still in the form.
    assert CloudFunction.objects.get(step=step).uri == '"/v1/charges"'
    assert 'value="charge.created"' in response.content.decode()
    response = designer_client.post(
        _url(step),
        _post(step, ApiKeyConnectionFactory(), new_event_name="bad\tname", revision=1),
        follow=True,
    )
    assert EVENT_NAME_INVALID in response.content.decode()


def test_second_save_of_the_same_revision_is_refused_and_input_kept(client, designer_client):
    step = StepFactory()
    connection = ApiKeyConnectionFactory()
    first = _post(step, connection)
    assert designer_client.post(_url(step), first).status_code == 302
    other = user_factories.designer(username="olga")
    client.force_login(other)
    second = _post(step, connection, uri='"/v2/mine"', new_event_name="other.event")
    response = client.post(_url(step), second)
    html = response.content.decode()
    assert response.status_code == 409
    assert "changed by dana at" in html
    assert "/v2/mine" in html
    assert CloudFunction.objects.get(step=step).uri == '"/v1/charges"'


def test_a_test_on_a_stale_revision_says_so_where_the_result_goes(client, designer_client):
    step = StepFactory()
    connection = ApiKeyConnectionFactory()
    assert designer_client.post(_url(step), _post(step, connection)).status_code == 302
    client.force_login(user_factories.designer(username="olga"))
    stale = _post(step, connection, uri='"/v2/mine"', revision=0, _action="test")
    response = client.post(_url(step), stale, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="test-result")
    html = response.content.decode()
    assert response.status_code == 200  # htmx swaps no 4xx
    assert "Nothing was saved or sent. This step was changed by dana at" in html
    assert "hx-swap-oob" not in html  # the form keeps its revision: Save stays refused too
    assert CloudFunction.objects.get(step=step).uri == '"/v1/charges"'


def test_a_save_after_one_that_needed_attention_keeps_the_event_it_created(designer_client):
    step = StepFactory()
    connection = ApiKeyConnectionFactory()
    data = _post(step, connection, name="n" * 300, new_event_name="charge.created")
    first = designer_client.post(_url(step), data, follow=True)
    assert first.status_code == 200 and "need attention" in first.content.decode()
    event = step.process.events.get(name="charge.created")
    step.refresh_from_db()
    # The page, resubmitted with the name fixed, still asks for "a new event" of that name.
    again = designer_client.post(
        _url(step), {**data, "name": "Create charge", "revision": step.revision}
    )
    assert again.status_code == 302
    cf = CloudFunction.objects.get(step=step)
    assert cf.completion_event == event and cf.name == "Create charge"
    assert step.process.events.count() == 1
    other = StepFactory(process=step.process)  # another step may not take it by name
    taken = designer_client.post(
        _url(other), _post(other, connection, new_event_name="charge.created"), follow=True
    )
    assert "already exists; pick it instead" in taken.content.decode()


def test_unknown_names_and_events_are_flagged_live(designer_client):
    step = StepFactory()
    url = reverse("cloud-function-check", args=[step.process_id, step.pk])
    ok = designer_client.post(
        url, {"_field": "uri", "uri": '"/v1/charges"'}, HTTP_HX_REQUEST="true"
    )
    assert ">ok<" in ok.content.decode()
    bad = designer_client.post(url, {"_field": "uri", "uri": "foo.bar"}, HTTP_HX_REQUEST="true")
    assert "foo" in bad.content.decode() and "column 1" in bad.content.decode()
    event = designer_client.post(
        url,
        {"_field": "headers-0-value", "headers-0-value": 'events["nope"].body.id'},
        HTTP_HX_REQUEST="true",
    ).content.decode()
    assert "nope" in event and "Header 1 value" not in event or "nope" in event
    body = designer_client.post(
        url, {"_field": "body", "body": '{"a": 1,\n "b": }', "body_mode": "json"}
    ).content.decode()
    assert "line 2, column 7" in body and "^" in body


def test_earlier_events_are_known_to_later_steps(designer_client):
    first = CloudFunctionFactory(completion_event=None)
    first.completion_event = EventFactory(process=first.step.process, name="charge.created")
    first.save()
    later = StepFactory(process=first.step.process, position=first.step.position + 1)
    url = reverse("cloud-function-check", args=[later.process_id, later.pk])
    html = designer_client.post(
        url, {"_field": "uri", "uri": '"/c/" + events["charge.created"].body.id'}
    ).content.decode()
    assert 'class="cel-status ok"' in html


def test_only_designers_save(admin_client_):
    step = StepFactory()
    assert admin_client_.get(_url(step)).status_code == 200
    response = admin_client_.post(_url(step), _post(step, ApiKeyConnectionFactory()))
    assert response.status_code == 403


def test_live_check_shows_the_value_on_the_last_captured_context(designer_client):
    from orchestration.models import StepRun

    first = CloudFunctionFactory(completion_event=None)
    first.completion_event = EventFactory(process=first.step.process, name="charge.created")
    first.save()
    StepRun.objects.create(
        step=first.step, outcome="succeeded", captured={"status": 200, "body": {"id": "ch_1"}}
    )
    later = StepFactory(process=first.step.process, position=first.step.position + 1)
    url = reverse("cloud-function-check", args=[later.process_id, later.pk])
    html = designer_client.post(
        url, {"_field": "uri", "uri": '"/c/" + events["charge.created"].body.id'}
    ).content.decode()
    assert "ok → &quot;/c/ch_1&quot;" in html
    html = designer_client.post(
        url, {"_field": "uri", "uri": '"/c/" + events["charge.created"].body.nope'}
    ).content.decode()
    assert "on the last captured context" in html and "nope" in html


def test_attempts_are_set_per_step(designer_client):
    step = StepFactory()
    designer_client.post(_url(step), _post(step, ApiKeyConnectionFactory(), max_attempts=5))
    step.refresh_from_db()
    assert step.max_attempts == 5
    response = designer_client.post(
        _url(step), _post(step, ApiKeyConnectionFactory(), max_attempts=99), follow=True
    )
    assert "Ensure this value is less than or equal to 10" in response.content.decode()
    step.refresh_from_db()
    assert step.max_attempts == 5


def test_import_curl_fills_the_form_without_saving_and_flags_credentials(designer_client):
    step = StepFactory()
    connection = ApiKeyConnectionFactory(base_url="https://api.example.com")
    curl = (
        "curl -X POST 'https://api.example.com/v1/charges?environment=production' "
        "-H 'Content-Type: application/json' -H 'x-api-key: 79402633-leaked' "
        '-d \'{"customer_name": "John Doe"}\''
    )
    data = _post(step, connection, uri="", _action="import_curl", curl=curl)
    html = designer_client.post(_url(step), data).content.decode()
    assert 'value="&quot;/v1/charges&quot;"' in html
    assert 'value="&quot;environment&quot;"' in html and 'value="&quot;production&quot;"' in html
    assert "x-api-key header was not copied" in html
    assert "79402633-leaked" not in html
    assert "John Doe" in html
    assert not CloudFunction.objects.filter(step=step).exists()


def test_operation_picker_fills_method_uri_and_body_skeleton(designer_client):
    from tests.factories import AmazonConnectionFactory

    step = StepFactory()
    amazon = AmazonConnectionFactory()
    CloudFunctionFactory(step=step, connection=amazon)
    page = designer_client.get(_url(step)).content.decode()
    assert 'value="StartOutboundVoiceContact"' in page
    data = _post(
        step,
        amazon,
        provider="amazon_connect",
        _action="fill_operation",
        operation="StartOutboundVoiceContact",
    )
    html = designer_client.post(_url(step), data).content.decode()
    assert '<option value="PUT" selected>' in html
    assert 'value="&quot;/contact/outbound-voice&quot;"' in html
    assert "DestinationPhoneNumber" in html and "ContactFlowId" in html
    unknown = designer_client.post(_url(step), {**data, "operation": "Nope"}).content.decode()
    assert "no operation named" in unknown


def test_an_event_taken_meanwhile_keeps_the_stored_one(designer_client):
    step = StepFactory()
    connection = ApiKeyConnectionFactory()
    designer_client.post(_url(step), _post(step, connection, new_event_name="mine.done"))
    other = CloudFunctionFactory(step=StepFactory(process=step.process), completion_event=None)
    other.completion_event = EventFactory(process=step.process, name="theirs.done")
    other.save()
    step.refresh_from_db()
    data = _post(step, connection, completion_event_choice=str(other.completion_event_id))
    designer_client.post(_url(step), data)
    assert CloudFunction.objects.get(step=step).completion_event.name == "mine.done"


def test_add_row_without_javascript_keeps_what_was_typed_and_saves_nothing(designer_client):
    step = StepFactory()
    connection = ApiKeyConnectionFactory()
    data = _post(step, connection, uri='"/v1/typed"', _action="add_row_headers")
    response = designer_client.post(_url(step), data)
    html = response.content.decode()
    assert response.status_code == 200
    assert 'name="headers-TOTAL_FORMS" value="2"' in html and 'id="id_headers-1-key"' in html
    assert "&quot;/v1/typed&quot;" in html
    assert not CloudFunction.objects.filter(step=step).exists()


def _shown_rows(data: dict, prefix: str) -> list[tuple[str, str]]:
    """The rows a page's form submits, in their order, without removed or empty ones."""
    total = int(data[f"{prefix}-TOTAL_FORMS"])
    rows = []
    for i in range(total):
        key, value = data.get(f"{prefix}-{i}-key", ""), data.get(f"{prefix}-{i}-value", "")
        if f"{prefix}-{i}-DELETE" in data or not (key or value):
            continue
        rows.append((int(data.get(f"{prefix}-{i}-ORDER") or 0), key, value))
    return [(key, value) for _, key, value in sorted(rows, key=lambda r: r[0])]


@pytest.fixture
def echo_api(outbound_tls, tls_httpserver):
    """A real TLS API on loopback that answers with the headers it received."""
    seen: list[dict[str, str]] = []

    def echo(request):
        from werkzeug import Response

        seen.append({k.lower(): v for k, v in request.headers.items()})
        return Response('{"ok": true}', 200, content_type="application/json")

    tls_httpserver.expect_request("/echo").respond_with_handler(echo)
    connection = ApiKeyConnectionFactory(base_url=tls_httpserver.url_for("/").rstrip("/"))
    return connection, seen


REDRAWS = ["save_with_problems", "test", "import_curl", "add_row_query", "add_row_headers"]


@pytest.mark.parametrize("action", REDRAWS)
def test_every_row_survives_a_redrawn_form_and_a_second_save(designer_client, echo_api, action):
    # The rows-lost defect: a redrawn form posted its rows as extra forms while the stored
    # rows were the formset's initial data, so rows equal to the stored ones were dropped.
    connection, _ = echo_api
    step = StepFactory()
    designer_client.post(_url(step), _post(step, connection, method="GET", uri='"/echo"'))
    step.refresh_from_db()
    data = _post(step, connection, method="GET", uri='"/echo"')
    if action == "save_with_problems":
        data["new_event_name"] = "bad\tname"
    elif action == "import_curl":
        data["_action"] = action
        data["curl"] = (
            f"curl '{connection.base_url}/echo?environment=production' "
            "-H 'Content-Type: application/json'"
        )
    else:
        data["_action"] = action
    page = designer_client.post(_url(step), data, follow=True)
    assert page.status_code == 200
    shown = form_data(page.content.decode())
    assert _shown_rows(shown, "query") == [('"environment"', '"production"')]
    assert _shown_rows(shown, "headers") == [('"Content-Type"', '"application/json"')]
    stored = form_data(designer_client.get(_url(step)).content.decode())
    assert _shown_rows(stored, "query") == [('"environment"', '"production"')]
    assert _shown_rows(stored, "headers") == [('"Content-Type"', '"application/json"')]
    shown.pop("_action", None)
    shown["new_event_name"] = "charge.done"
    saved = designer_client.post(_url(step), shown, follow=True)
    assert SAVED in saved.content.decode()
    cf = CloudFunction.objects.get(step=step)
    assert cf.query_params == [{"key": '"environment"', "value": '"production"'}]
    assert cf.headers == [{"key": '"Content-Type"', "value": '"application/json"'}]
    again = form_data(designer_client.get(_url(step)).content.decode())
    assert _shown_rows(again, "query") == [('"environment"', '"production"')]
    assert _shown_rows(again, "headers") == [('"Content-Type"', '"application/json"')]


def test_a_save_with_a_refused_name_keeps_it_as_typed_and_lists_the_problem(designer_client):
    step = StepFactory()
    connection = ApiKeyConnectionFactory()
    data = _post(step, connection, new_event_name="bad\tname", uri='"/v1/', max_attempts="99")
    page = designer_client.post(_url(step), data, follow=True).content.decode()
    assert SAVED_WITH_PROBLEMS in page and EVENT_NAME_INVALID in page
    cf = CloudFunction.objects.get(step=step)
    assert cf.uri == '"/v1/'  # invalid CEL is stored as typed, a problem of the step
    assert cf.draft == {
        "new_event_name": "bad\tname",
        "completion_event_choice": "__new__",
        "max_attempts": "99",
    }
    reloaded = designer_client.get(_url(step)).content.decode()
    shown = form_data(reloaded)
    assert shown["new_event_name"] == "bad\tname" and shown["max_attempts"] == "99"
    assert shown["completion_event_choice"] == "__new__"
    assert EVENT_NAME_INVALID in reloaded  # the problem is listed again, not forgotten
    shown["new_event_name"], shown["max_attempts"] = "charge.done", "3"
    designer_client.post(_url(step), shown)
    cf.refresh_from_db()
    step.refresh_from_db()
    assert cf.draft == {} and cf.completion_event.name == "charge.done"
    assert step.max_attempts == 3


def test_test_sends_what_the_same_press_saved(designer_client, echo_api):
    # D2: Test ran on the cloud function cached before the save, one save behind.
    connection, seen = echo_api
    step = StepFactory()
    headers = [('"x-keep"', '"1"'), ('"x-removed"', '"2"')]
    data = _post(step, connection, method="GET", uri='"/echo"', _action="test")
    data.update(_rows("headers", headers))
    htmx = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": "test-result"}
    assert designer_client.post(_url(step), data, **htmx).status_code == 200
    assert seen[-1]["x-removed"] == "2"
    step.refresh_from_db()
    data = _post(step, connection, method="GET", uri='"/echo"', _action="test")
    data.update(_rows("headers", headers[:1]))
    data["new_event_name"] = "charge.created"
    assert designer_client.post(_url(step), data, **htmx).status_code == 200
    assert len(seen) == 2
    assert seen[-1]["x-keep"] == "1" and "x-removed" not in seen[-1]


@pytest.mark.parametrize(
    "name", ["Order created", "charge.created", "x" * 100, "Café ünïcode", 'say "hi"', "a/b #1"]
)
def test_completion_events_take_any_printable_name(name):
    validate_event_name(name)


@pytest.mark.parametrize(
    "name", ["", " padded", "padded ", "a:b", "tab\there", "new\nline", "x" * 101, "\u200b"]
)
def test_completion_event_names_cel_could_not_reach_are_refused(name):
    with pytest.raises(ValidationError, match=EVENT_NAME_INVALID[:20]):
        validate_event_name(name)


def test_an_event_named_with_spaces_is_mapped_by_index_and_by_context_path(designer_client):
    from orchestration.models import StepRun

    step = StepFactory()
    data = _post(step, ApiKeyConnectionFactory(), new_event_name="Order created")
    assert designer_client.post(_url(step), data).status_code == 302
    event = CloudFunction.objects.get(step=step).completion_event
    assert event.name == "Order created"
    StepRun.objects.create(
        step=step, outcome="succeeded", captured={"status": 200, "body": {"id": "o_1"}}
    )
    later = StepFactory(process=step.process, position=step.position + 1)
    page = designer_client.get(_url(later) + "?configure=1").content.decode()
    assert "events[&quot;Order created&quot;]" in page
    url = reverse("cloud-function-check", args=[later.process_id, later.pk])
    for uri in (
        '"/o/" + events["Order created"].body.id',
        '"/o/" + contextEventPath("Order created:body.id")',
    ):
        html = designer_client.post(url, {"_field": "uri", "uri": uri}).content.decode()
        assert "ok → &quot;/o/o_1&quot;" in html, html


def _check(client, step, name, source):
    url = reverse("cloud-function-check", args=[step.process_id, step.pk])
    return client.post(url, {"_field": name, name: source}).content.decode()


def test_a_missing_quote_offers_its_fix(designer_client):
    step = StepFactory()
    html = _check(designer_client, step, "uri", "/v1/orders/")
    assert 'class="cel-status bad"' in html and "unexpected" in html
    assert "Did you mean &quot;/v1/orders/&quot;?" in html
    assert 'data-fix="&quot;/v1/orders/&quot;"' in html and 'data-field="uri"' in html
    html = _check(designer_client, step, "headers-0-value", "production")
    assert "Did you mean &quot;production&quot;?" in html
    assert "Did you mean" not in _check(designer_client, step, "uri", '"/v1/" +')


def test_a_problem_on_the_last_captured_context_is_a_warning_naming_the_keys(designer_client):
    from orchestration.models import StepRun

    first = CloudFunctionFactory(completion_event=None)
    first.completion_event = EventFactory(process=first.step.process, name="charge.created")
    first.save()
    StepRun.objects.create(
        step=first.step,
        outcome="succeeded",
        captured={"status": 200, "body": {"id": "ch_1", "amount": 5}},
    )
    later = StepFactory(process=first.step.process, position=first.step.position + 1)
    html = _check(designer_client, later, "uri", '"/c/" + events["charge.created"].body.idd')
    assert 'class="cel-status warn"' in html and ">ok" not in html
    assert "no key &quot;idd&quot;" in html and "known keys: amount, id" in html
    assert 'role="status"' in html and 'id="status-uri"' in html


def test_the_page_is_drawn_with_known_problems_and_checks_nothing_at_load(designer_client):
    cf = CloudFunctionFactory(
        uri="/v1/orders/", headers=[{"key": '"X-A"', "value": "1 +"}], query_params=[]
    )
    step_refresh_problems(process=cf.step.process)  # as a Save does
    data = _post(cf.step, cf.connection, _action="add_row_query")
    data.update(uri="/v1/orders/", **_rows("headers", [('"X-A"', "1 +")]))
    data.update(_rows("query", []))
    for html in (
        designer_client.get(_url(cf.step)).content.decode(),
        designer_client.post(_url(cf.step), data).content.decode(),  # a redraw, one empty row
    ):
        assert "load," not in html and 'hx-trigger="load' not in html
        assert '<div class="cel-status bad" id="status-uri" role="status"' in html
        assert '<div class="cel-status bad" id="status-headers-0-value"' in html
        assert 'aria-describedby="status-headers-0-value"' in html
        assert '<div class="cel-status" id="status-headers-0-key" role="status"' in html
    assert '<div class="cel-status" id="status-query-0-key" role="status"' in html  # neutral


def test_the_incomplete_box_follows_an_import(designer_client):
    connection = ApiKeyConnectionFactory(base_url="https://api.example.com")
    step = StepFactory()
    designer_client.post(_url(step), _post(step, connection, uri="/broken"))
    step.refresh_from_db()
    assert any(p.startswith("URI:") for p in step.problems)
    curl = "curl 'https://api.example.com/v1/charges' -H 'Authorization: Bearer x'"
    data = _post(step, connection, uri="/broken", _action="import_curl", curl=curl)
    html = designer_client.post(_url(step), data).content.decode()
    box = (
        html.split('id="step-problems"', 1)[1].split("</div>", 1)[0]
        if "step-problems" in html
        else ""
    )
    assert "URI:" not in box  # the imported URI is fine; the stored one was not
    data = _post(
        step,
        connection,
        uri='"/ok"',
        _action="import_curl",
        curl="curl 'https://api.example.com/x' -H 'X-A: 1' -H 'X-A: 2'",
    )
    html = designer_client.post(_url(step), data).content.decode()
    assert "Incomplete (as filled in, not saved)" in html and "already used above" in html


def test_request_as_sent_lists_the_connections_auth_masked(designer_client, echo_api):
    from tests.factories import MARKERS

    connection, seen = echo_api
    step = StepFactory()
    data = _post(step, connection, method="GET", uri='"/echo"', _action="test")
    html = designer_client.post(_url(step), data).content.decode()
    assert seen[-1]["x-api-key"] == MARKERS["api_key_value"]  # really sent
    assert "x-api-key: ••••••" in html and "-H &#x27;x-api-key: ••••••&#x27;" in html
    assert f"Credentials added by connection “{connection.name}”" in html
    assert MARKERS["api_key_value"] not in html


@pytest.mark.parametrize(
    "factory, header, expected",
    [
        ("OAuthConnectionFactory", "Authorization", "Bearer ••••••"),
        (
            "AmazonConnectionFactory",
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=AKIA…/…, SignedHeaders=…, Signature=••••••",
        ),
    ],
)
def test_masked_auth_of_each_scheme(factory, header, expected):
    from cloudfunctions.step.editor import with_masked_auth
    from tests import factories

    connection = getattr(factories, factory)()
    sent = with_masked_auth({"method": "GET", "url": "https://x/y", "headers": {}}, connection)
    assert sent["headers"][header] == expected
    query = ApiKeyConnectionFactory(api_key_location="query", api_key_name="key")
    sent = with_masked_auth({"method": "GET", "url": "https://x/y?a=1", "headers": {}}, query)
    assert sent["url"] == "https://x/y?a=1&key=••••••"


def _outcomes(rows):
    data = {
        "outcomes-TOTAL_FORMS": str(len(rows)),
        "outcomes-INITIAL_FORMS": "0",
        "outcomes-MIN_NUM_FORMS": "0",
        "outcomes-MAX_NUM_FORMS": "1000",
    }
    for index, (when, then, name) in enumerate(rows):
        data[f"outcomes-{index}-when"] = when
        data[f"outcomes-{index}-then"] = then
        data[f"outcomes-{index}-new_event_name"] = name
    return data


def test_outcomes_result_and_timeout_are_saved_and_shown_again(designer_client):
    from cloudfunctions.step.forms import FAIL_THE_RUN, NEW_EVENT

    step = StepFactory()
    connection = ApiKeyConnectionFactory()
    rows = [
        ("404", NEW_EVENT, "Order missing"),
        ("5xx", FAIL_THE_RUN, ""),
        ("error", NEW_EVENT, "API down"),
    ]
    response = designer_client.post(
        _url(step),
        _post(
            step,
            connection,
            result='{"id": response.body.id}',
            timeout_seconds="5",
            **_outcomes(rows),
        ),
    )

    assert response.status_code == 302
    cf = CloudFunction.objects.get(step=step)
    assert cf.outcomes == [
        {"when": "404", "event": "Order missing"},
        {"when": "5xx", "event": None},
        {"when": "error", "event": "API down"},
    ]
    assert (cf.result, cf.timeout_seconds) == ('{"id": response.body.id}', 5)
    # The routed events exist: later steps can start on them and pick them.
    assert {"Order missing", "API down"} <= set(step.process.events.values_list("name", flat=True))
    page = designer_client.get(_url(step)).content.decode()
    assert 'value="Order missing" selected' in page and ">Outcomes<" in page
    assert "response.body.id" in page


def test_an_outcome_row_that_needs_attention_keeps_the_page_as_typed(designer_client):
    from cloudfunctions.step.forms import NEW_EVENT, OUTCOME_NEEDS_NAME

    step = StepFactory()
    connection = ApiKeyConnectionFactory()
    typed = _post(step, connection, uri='"/v1/typed"', **_outcomes([("404", NEW_EVENT, "")]))

    response = designer_client.post(_url(step), typed)

    page = response.content.decode()
    assert OUTCOME_NEEDS_NAME in page and "/v1/typed" in page
    assert not CloudFunction.objects.filter(step=step).exists()


def test_a_timeout_above_the_overall_deadline_is_refused(designer_client, settings):
    settings.OUTBOUND_DEADLINE_SECONDS = 15
    step = StepFactory()
    connection = ApiKeyConnectionFactory()

    designer_client.post(_url(step), _post(step, connection, timeout_seconds="60"))

    cf = CloudFunction.objects.get(step=step)
    assert cf.timeout_seconds is None  # refused; the rest is saved


def test_the_sample_editor_starts_from_the_last_tests_capture_and_says_its_shape(
    designer_client,
):
    from orchestration.models import StepRun

    step = StepFactory()
    connection = ApiKeyConnectionFactory()
    designer_client.post(_url(step), _post(step, connection))
    cf = CloudFunction.objects.get(step=step)
    StepRun.objects.create(
        step=step,
        outcome=StepRun.Outcome.SUCCEEDED,
        captured={"status": 201, "headers": {}, "body": {"id": "ch_9"}, "duration_ms": 3.0},
        event=cf.completion_event,
    )
    # A later run routed to another event carries that event's payload: not this sample's.
    StepRun.objects.create(
        step=step,
        outcome=StepRun.Outcome.SUCCEEDED,
        captured={"error": "timed out", "stage": "timeout"},
        event=EventFactory(process=step.process, name="API down"),
    )

    page = designer_client.get(_url(step)).content.decode()

    sample = page[page.index('id="sample-text"') :]
    assert "&quot;ch_9&quot;" in sample.split("</textarea>")[0]
    assert "It starts from the last Test" in page
    assert '"duration_ms": …' in page
