from __future__ import annotations

import pytest
from django.urls import reverse

from orchestration.models import Process, Step
from tests.factories import CloudFunctionFactory, EventFactory, ProcessFactory
from tests.queries import count_queries

pytestmark = pytest.mark.django_db


def test_process_list_is_searchable(designer_client):
    ProcessFactory(name="Refund flow")
    ProcessFactory(name="Onboarding", description="new customers")
    html = designer_client.get(reverse("process-list"), {"q": "refund"}).content.decode()
    assert "Refund flow" in html and "Onboarding" not in html
    html = designer_client.get(reverse("process-list"), {"q": "customers"}).content.decode()
    assert "Onboarding" in html
    html = designer_client.get(reverse("process-list"), {"q": "zzz"}).content.decode()
    assert "No process matches" in html


def test_create_process_then_add_rename_reorder_delete_steps(designer_client):
    response = designer_client.post(
        reverse("process-create"), {"name": "Charge", "description": "", "test_input": '{"a": 1}'}
    )
    process = Process.objects.get(name="Charge")
    assert response.url == process.get_absolute_url()
    assert process.test_input == {"a": 1}
    for name in ("Create charge", "Notify", "Create charge"):
        designer_client.post(reverse("step-create", args=[process.pk]), {"name": name})
    steps = list(process.steps.all())
    assert [s.key for s in steps] == ["create-charge", "notify", "create-charge-2"]
    designer_client.post(reverse("step-move", args=[process.pk, steps[2].pk]), {"direction": "up"})
    assert [s.name for s in process.steps.all()] == ["Create charge", "Create charge", "Notify"]
    designer_client.post(reverse("step-rename", args=[process.pk, steps[1].pk]), {"name": "Tell"})
    assert process.steps.get(pk=steps[1].pk).key == "tell"
    designer_client.post(reverse("step-delete", args=[process.pk, steps[0].pk]))
    assert process.steps.count() == 2


def test_test_input_must_be_a_json_object_and_typed_text_is_kept(designer_client):
    process = ProcessFactory()
    response = designer_client.post(
        process.get_absolute_url(), {"name": process.name, "test_input": '{"a": '}
    )
    html = response.content.decode()
    assert "Not valid JSON" in html and "line 1" in html
    assert "{&quot;a&quot;: " in html


def test_duplicate_copies_steps_events_and_cloud_functions(designer_client):
    cf = CloudFunctionFactory(completion_event=None, step__max_attempts=5)
    event = EventFactory(process=cf.step.process, name="charge.created")
    cf.completion_event = event
    cf.save()
    designer_client.post(reverse("process-duplicate", args=[cf.step.process.pk]))
    copy = Process.objects.get(name=f"{cf.step.process.name} (copy)")
    copied = copy.steps.get().cloud_function
    assert copied.uri == cf.uri and copied.pk != cf.pk
    assert copied.step.max_attempts == 5
    assert copied.completion_event.process == copy
    assert copied.completion_event.name == "charge.created"


def test_delete_asks_first(designer_client):
    process = ProcessFactory()
    assert (
        "cannot be undone"
        in designer_client.get(reverse("process-delete", args=[process.pk])).content.decode()
    )
    designer_client.post(reverse("process-delete", args=[process.pk]))
    assert not Process.objects.filter(pk=process.pk).exists()


def test_non_designers_can_read_but_not_change(admin_client_):
    process = ProcessFactory()
    assert admin_client_.get(process.get_absolute_url()).status_code == 200
    assert admin_client_.post(reverse("process-create"), {"name": "x"}).status_code == 403
    assert admin_client_.post(process.get_absolute_url(), {"name": "x"}).status_code == 403
    assert (
        admin_client_.post(reverse("step-create", args=[process.pk]), {"name": "s"}).status_code
        == 403
    )


@pytest.mark.parametrize("url_name", ["process-list", "process-editor"])
def test_page_queries_do_not_grow_with_rows(designer_client, url_name):
    process = ProcessFactory()
    Step.objects.create(process=process, name="s", key="s", position=1)
    url = reverse(url_name, args=[process.pk] if url_name == "process-editor" else [])

    def count():
        with count_queries() as counter:
            assert designer_client.get(url).status_code == 200
        return counter.count

    few = count()
    assert few > 3  # the counter sees the page's queries
    others = ProcessFactory.create_batch(30)
    Step.objects.bulk_create(
        Step(process=process, name=f"s{i}", key=f"s{i}", position=i + 2) for i in range(60)
    )
    assert others and count() == few


def test_the_sidebars_step_links_are_the_urls_django_would_reverse(designer_client):
    """The sidebar builds each step's links from one reverse(), for speed: they must match."""
    from django.urls import reverse

    from tests.factories import ProcessFactory, StepFactory

    process = ProcessFactory()
    steps = [StepFactory(process=process, position=n) for n in range(3)]

    page = designer_client.get(process.get_absolute_url()).content.decode()

    for step in steps:
        for name in ("step-editor", "step-move", "step-delete"):
            assert f'"{reverse(name, args=[process.pk, step.pk])}"' in page, name
