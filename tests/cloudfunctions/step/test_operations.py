"""Amazon Connect operation picker: botocore's model becomes editor fills that compile."""

from __future__ import annotations

import json

import botocore.session
import pytest

from cloudfunctions import cel
from cloudfunctions.step.operations import (
    MAX_BODY_DEPTH,
    SUMMARY_LENGTH,
    UNKNOWN_OPERATION,
    Operation,
    _blank,
    amazon_connect_operations,
    operation_fill,
    placeholder,
    request_uri_expression,
)

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture(scope="module")
def model():
    return botocore.session.get_session().get_service_model("connect")


def value(expression: str):
    """Evaluate a constant CEL expression the way the editor would check it."""
    assert cel.check_expression(expression) == [], expression
    return cel.constant_value(expression)


def required_in(shape, location: str | None) -> set[str]:
    return {
        shape.members[name].serialization.get("name", name)
        for name in shape.required_members
        if shape.members[name].serialization.get("location") == location
    }


def test_every_operation_of_the_model_is_listed_sorted(model):
    operations = amazon_connect_operations()

    assert [op.name for op in operations] == sorted(model.operation_names)
    start = next(op for op in operations if op.name == "StartOutboundVoiceContact")
    assert start == Operation(
        name="StartOutboundVoiceContact",
        method="PUT",
        request_uri="/contact/outbound-voice",
        summary="Places an outbound call to a contact, and then initiates the flow.",
    )


def test_summaries_are_short_plain_text():
    for operation in amazon_connect_operations():
        assert operation.method in METHODS
        assert operation.request_uri.startswith("/")
        assert 0 < len(operation.summary) <= SUMMARY_LENGTH, operation
        assert "<" not in operation.summary and "&amp;" not in operation.summary, operation
        assert not operation.summary.startswith("This API is in preview"), operation


def test_the_list_is_cached_but_callers_cannot_change_it():
    first = amazon_connect_operations()
    first.clear()

    assert amazon_connect_operations()
    assert amazon_connect_operations()[0] is amazon_connect_operations()[0]


def test_start_outbound_voice_contact_fill(model):
    fill = operation_fill("StartOutboundVoiceContact")
    shape = model.operation_model("StartOutboundVoiceContact").input_shape

    assert fill["method"] == "PUT"
    assert fill["uri"] == '"/contact/outbound-voice"'
    body = json.loads(fill["body"])
    assert set(body) == set(shape.required_members)
    assert {"DestinationPhoneNumber", "ContactFlowId", "InstanceId"} <= set(body)
    assert body["InstanceId"] == ""
    assert (fill["query"], fill["headers"]) == ([], [])


def test_path_placeholders_become_a_cel_concatenation(model):
    fill = operation_fill("DescribeUser")

    assert (
        model.operation_model("DescribeUser").http["requestUri"] == "/users/{InstanceId}/{UserId}"
    )
    assert fill["uri"] == '"/users/" + "INSTANCE_ID" + "/" + "USER_ID"'
    assert value(fill["uri"]) == "/users/INSTANCE_ID/USER_ID"
    assert (fill["method"], fill["body"]) == ("GET", "")


def test_required_query_members_become_rows():
    fill = operation_fill("DescribeInstanceStorageConfig")

    assert fill["query"] == [{"key": '"resourceType"', "value": '"RESOURCE_TYPE"'}]
    assert value(fill["uri"]) == "/instance/INSTANCE_ID/storage-config/ASSOCIATION_ID"


def test_nested_required_structures_are_filled(model):
    fill = operation_fill("AssociateEmailAddressAlias")
    shape = model.operation_model("AssociateEmailAddressAlias").input_shape
    alias = shape.members["AliasConfiguration"]

    body = json.loads(fill["body"])
    assert set(body["AliasConfiguration"]) == set(alias.required_members)
    assert "InstanceId" not in body  # it is in the path


def test_every_operation_fills_compiling_cel_and_its_required_body(model, monkeypatch):
    # Folding ~400 constants checks their shape, not speed: a generous limit on a machine
    # other suites share (cel's own tests keep the real one).
    from cloudfunctions.cel import compiler

    monkeypatch.setattr(compiler, "DEFAULT_TIMEOUT", 10)
    compiler.clear_cache()
    for operation in amazon_connect_operations():
        fill = operation_fill(operation.name)
        shape = model.operation_model(operation.name).input_shape

        assert fill["method"] == operation.method
        uri = value(fill["uri"])
        assert uri.startswith("/") and "{" not in uri, operation.name
        for row in fill["query"] + fill["headers"]:
            assert isinstance(value(row["key"]), str) and isinstance(value(row["value"]), str)
        assert {value(row["key"]) for row in fill["query"]} == required_in(shape, "querystring")
        assert {value(row["key"]) for row in fill["headers"]} == required_in(shape, "header")
        if fill["body"]:
            assert set(json.loads(fill["body"])) == required_in(shape, None), operation.name
        else:
            assert required_in(shape, None) == set(), operation.name


def test_request_uri_forms():
    assert request_uri_expression("/") == '"/"'
    assert request_uri_expression("/{Key+}") == '"/" + "KEY"'
    assert request_uri_expression("/a/{Id}/b{Suffix}") == '"/a/" + "ID" + "/b" + "SUFFIX"'
    assert value(request_uri_expression("/a/{Id}/b{Suffix}")) == "/a/ID/bSUFFIX"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("InstanceId", "INSTANCE_ID"),
        ("resourceArn", "RESOURCE_ARN"),
        ("ARN", "ARN"),
        ("AWSAccountId", "AWS_ACCOUNT_ID"),
        ("Key+", "KEY"),
    ],
)
def test_placeholder_names(name, expected):
    assert placeholder(name) == expected


def test_self_referencing_shapes_stop_at_the_depth_limit():
    class Shape:
        type_name = "structure"
        serialization: dict = {}
        required_members = ["Child"]

    Shape.members = {"Child": Shape}

    body = _blank(Shape, 1)
    depth = 0
    while body:
        body = body["Child"]
        depth += 1
    assert depth == MAX_BODY_DEPTH - 1


def test_unknown_operation_is_a_clear_error():
    with pytest.raises(ValueError) as caught:
        operation_fill("StartTeleport")

    assert str(caught.value) == UNKNOWN_OPERATION.format(name="StartTeleport")
