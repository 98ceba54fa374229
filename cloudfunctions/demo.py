"""Demo data for local development, calling the local demo API (cloudfunctions/demo_api)."""

from __future__ import annotations

import os

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import transaction

from cloudfunctions.demo_api import (
    DEMO_API_KEY,
    DEMO_API_KEY_NAME,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_SCOPES,
)
from orchestration.web.roles import CONNECTION_ADMINS, DESIGNERS

SUPERUSER = "Django admin"
DEMO_USERS = (
    ("designer", "designer-demo-pass", DESIGNERS),
    ("admin", "admin-demo-pass", CONNECTION_ADMINS),
    ("root", "root-demo-pass", SUPERUSER),
)
API_KEY_CONNECTION = "My custom connection"
OAUTH_CONNECTION = "Demo OAuth 2.0 connection"
AWS_CONNECTION = "Amazon Connect (needs AWS credentials and a network)"
DEMO_PROCESS = "Charge a customer"
RETRY_PROCESS = "Retry and fail"
# The demo process's webhook token: development data, like the logins above.
DEMO_WEBHOOK_TOKEN = "demo-webhook-token"
_SET_AT = "2026-01-01T00:00:00+00:00"


def app_url() -> str:
    """Return where scripts/run serves the app ($PORT, 8000 by default)."""
    return f"http://127.0.0.1:{os.environ.get('PORT') or 8000}"


def demo_api_url() -> str:
    """Return the base URL of the local demo API this development server trusts."""
    return f"https://{settings.DEMO_API_HOST}"


def seed_demo() -> list[tuple[str, str, str]]:
    """Create the demo users, connections and processes once; return the logins."""
    with transaction.atomic():
        users = {
            role: _demo_user(username, password, role) for username, password, role in DEMO_USERS
        }
        connections = _demo_connections()
        _demo_process(users[DESIGNERS], connections)
        _retry_process(users[DESIGNERS], connections)
    return list(DEMO_USERS)


def demo_webhook_example() -> str:
    """Return the curl command that starts a run of the deployed demo process."""
    from orchestration.models import Process

    process = Process.objects.get(name=DEMO_PROCESS, version_of__isnull=True)
    return (
        f"curl -X POST {app_url()}/hooks/{process.pk}/ "
        f'-H "Authorization: Bearer {DEMO_WEBHOOK_TOKEN}" '
        '-H "Content-Type: application/json" '
        """-d '{"customer": {"id": "cus_7", "name": "Ada Lovelace"}}'"""
    )


def _demo_user(username: str, password: str, role: str) -> User:
    user, _ = User.objects.get_or_create(username=username)
    # Always reset, so the printed login works even after someone changed it.
    user.set_password(password)
    if role == SUPERUSER:
        user.is_staff = user.is_superuser = True
    else:
        user.groups.add(Group.objects.get(name=role))
    user.save()
    return user


def _demo_connections() -> dict[str, object]:
    from cloudfunctions.models import Connection

    base = demo_api_url()
    custom = {
        "provider": Connection.Provider.CUSTOM,
        "base_url": base,
    }
    api_key, _ = Connection.objects.update_or_create(
        name=API_KEY_CONNECTION,
        defaults=custom,
        create_defaults={
            **custom,
            "auth_type": Connection.AuthType.API_KEY,
            "api_key_location": Connection.ApiKeyLocation.HEADER,
            "api_key_name": DEMO_API_KEY_NAME,
            "api_key_value": DEMO_API_KEY,
            "secrets_changed_at": {"api_key_value": _SET_AT},
        },
    )
    oauth, _ = Connection.objects.update_or_create(
        name=OAUTH_CONNECTION,
        # The demo API's port may change between runs (DEMO_API_PORT): follow it.
        defaults={**custom, "token_url": f"{base}/oauth/token"},
        create_defaults={
            **custom,
            "token_url": f"{base}/oauth/token",
            "auth_type": Connection.AuthType.OAUTH2,
            "client_id": DEMO_CLIENT_ID,
            "client_secret": DEMO_CLIENT_SECRET,
            "scopes": " ".join(DEMO_SCOPES),
            "secrets_changed_at": {"client_secret": _SET_AT},
        },
    )
    Connection.objects.get_or_create(
        name=AWS_CONNECTION,
        defaults={
            "provider": Connection.Provider.AMAZON_CONNECT,
            "region": "eu-west-2",
            "access_key_id": "AKIADEMONOTAREALKEY0",
            "secret_access_key": "demo-not-a-real-aws-secret",
            "secrets_changed_at": {"secret_access_key": _SET_AT},
        },
    )
    return {API_KEY_CONNECTION: api_key, OAUTH_CONNECTION: oauth}


def _create_process(designer, name: str, description: str, test_input: dict, steps: list):
    """Create a process of cloud-function steps, each a dict of CloudFunction fields."""
    from cloudfunctions.models import CloudFunction
    from orchestration.models import CompletionEvent, Process
    from orchestration.processes.services import step_create, step_refresh_problems

    process = Process.objects.create(
        name=name, description=description, test_input=test_input, created_by=designer
    )
    for fields in steps:
        step = step_create(process=process, actor=designer, name=fields["name"])
        event = CompletionEvent.objects.create(process=process, name=fields.pop("event"))
        CloudFunction.objects.create(
            step=step,
            completion_event=event,
            **{
                "query_params": [{"key": '"environment"', "value": '"demo"'}],
                "headers": [{"key": '"Content-Type"', "value": '"application/json"'}],
                **fields,
            },
        )
    step_refresh_problems(process=process)
    return process


def _demo_process(designer, connections) -> None:
    """Two steps: find a customer (GET, API key), then charge them (POST, OAuth 2.0)."""
    from orchestration.models import Process
    from orchestration.processes import deployments

    if Process.objects.filter(name=DEMO_PROCESS).exists():
        return
    process = _create_process(
        designer,
        DEMO_PROCESS,
        "Demo: find a customer (API key), then charge the customer found (OAuth 2.0). "
        "Calls the local demo API.",
        {"customer": {"id": "cus_42", "name": "John Doe"}},
        [
            {
                "name": "Find customer",
                "connection": connections[API_KEY_CONNECTION],
                "method": "GET",
                "uri": '"/shop/v1/customers"',
                "query_params": [
                    {"key": '"customer"', "value": "trigger.customer.id"},
                    {"key": '"environment"', "value": '"demo"'},
                ],
                "event": "customer.found",
            },
            {
                "name": "Create charge",
                "connection": connections[OAUTH_CONNECTION],
                "method": "POST",
                # Maps a value the first step captured: the customer it found.
                "uri": '"/secure/v1/customers/" + events["customer.found"].body.args.customer'
                ' + "/charges"',
                "event": "charge.created",
                "body_mode": "cel",
                "body": '{\n  "amount": 2000,\n  "currency": "eur",\n'
                '  "description": "Order for " + trigger.customer.name\n}',
            },
        ],
    )
    deployments.process_deploy(process=process, actor=designer)
    process.refresh_from_db()
    # A known token, so the README's curl works as printed; rotating it (the process's runs
    # page) issues a random one. _digest is how the webhook compares tokens.
    process.webhook_token_hash = deployments._digest(DEMO_WEBHOOK_TOKEN)
    process.save(update_fields=["webhook_token_hash"])


def _retry_process(designer, connections) -> None:
    """Three steps: a 503 then success, a 429 with Retry-After then success, a final 422."""
    from orchestration.models import Process
    from orchestration.processes import deployments

    if Process.objects.filter(name=RETRY_PROCESS).exists():
        return
    connection = connections[API_KEY_CONNECTION]
    process = _create_process(
        designer,
        RETRY_PROCESS,
        "Demo: a deployed run retries a 503 and a 429 (after its Retry-After), then fails "
        "on a 422. Run it from its page and read the run's timeline.",
        {"order": "ord_7"},
        [
            _post("Reserve stock", connection, '"/flaky/v1/reservations"', "stock.reserved"),
            _post("Take payment", connection, '"/throttled/v1/payments"', "payment.taken"),
            _post("Ship order", connection, '"/status/422"', "order.shipped"),
        ],
    )
    deployments.process_deploy(process=process, actor=designer)


def _post(name: str, connection, uri: str, event: str) -> dict:
    return {
        "name": name,
        "connection": connection,
        "method": "POST",
        "uri": uri,
        "event": event,
        "body": '{"order": "ord_7"}',
    }
