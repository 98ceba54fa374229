"""factory_boy factories for what the tests build: users in their roles, processes, steps,
events, connections and cloud functions (one place, instead of JSON fixtures)."""

from __future__ import annotations

import factory
from django.contrib.auth.models import User

from cloudfunctions.models import CloudFunction, Connection
from orchestration.models import CompletionEvent, Process, Step
from orchestration.web.roles import CONNECTION_ADMINS, DESIGNERS, role_group

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        for name in extracted or ():
            # Transactional tests flush the groups (and grants) the migrations made.
            self.groups.add(role_group(name))
        if create:
            self.save()


def designer(**kwargs) -> User:
    return UserFactory(roles=[DESIGNERS], **kwargs)


def connection_admin(**kwargs) -> User:
    return UserFactory(roles=[CONNECTION_ADMINS], **kwargs)


MARKERS = {
    "secret_access_key": "SECRET-MARKER-aws-secret-5b1e",
    "api_key_value": "SECRET-MARKER-apikey-7f3a",
    "client_secret": "SECRET-MARKER-client-secret-c0d4",
}


class ApiKeyConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connection

    name = factory.Sequence(lambda n: f"Custom API key {n}")
    provider = Connection.Provider.CUSTOM
    base_url = "https://api.example.com"
    auth_type = Connection.AuthType.API_KEY
    api_key_location = Connection.ApiKeyLocation.HEADER
    api_key_name = "x-api-key"
    api_key_value = MARKERS["api_key_value"]
    secrets_changed_at = factory.LazyFunction(
        lambda: {"api_key_value": "2026-11-29T00:00:00+00:00"}
    )


class OAuthConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connection

    name = factory.Sequence(lambda n: f"Custom OAuth {n}")
    provider = Connection.Provider.CUSTOM
    base_url = "https://api.example.com"
    auth_type = Connection.AuthType.OAUTH2
    client_id = "client-id-1"
    client_secret = MARKERS["client_secret"]
    scopes = "charges:write"
    token_url = "https://auth.example.com/oauth2/token"
    secrets_changed_at = factory.LazyFunction(
        lambda: {"client_secret": "2026-11-29T00:00:00+00:00"}
    )


class AmazonConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connection

    name = factory.Sequence(lambda n: f"Amazon CNT {n}")
    provider = Connection.Provider.AMAZON_CONNECT
    region = "eu-central-1"
    access_key_id = "AKIAIOSFODNN7EXAMPLE"
    secret_access_key = MARKERS["secret_access_key"]
    secrets_changed_at = factory.LazyFunction(
        lambda: {"secret_access_key": "2026-11-29T00:00:00+00:00"}
    )


class ProcessFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Process

    name = factory.Sequence(lambda n: f"Process {n}")


class StepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Step

    process = factory.SubFactory(ProcessFactory)
    name = factory.Sequence(lambda n: f"Step {n}")
    key = factory.Sequence(lambda n: f"step-{n}")
    position = factory.Sequence(lambda n: n + 1)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CompletionEvent

    process = factory.SubFactory(ProcessFactory)
    name = factory.Sequence(lambda n: f"event-{n}.done")


class CloudFunctionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CloudFunction

    step = factory.SubFactory(StepFactory)
    name = "Create charge"
    connection = factory.SubFactory(ApiKeyConnectionFactory)
    method = "POST"
    uri = '"/v1/charges"'
    body = '{"amount": 100}'
