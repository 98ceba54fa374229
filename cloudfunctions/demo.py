"""Demo data for local development."""

from __future__ import annotations

from django.contrib.auth.models import Group, User

from orchestration.web.roles import CONNECTION_ADMINS, DESIGNERS

DEMO_USERS = (
    ("designer", "designer-demo-pass", DESIGNERS),
    ("admin", "admin-demo-pass", CONNECTION_ADMINS),
)


def seed_demo() -> list[tuple[str, str, str]]:
    """Create the demo users (one per role) and a demo process; return the logins."""
    users = {}
    for username, password, role in DEMO_USERS:
        user, _ = User.objects.get_or_create(username=username)
        # Always reset, so the printed login works even after someone changed it.
        user.set_password(password)
        user.save()
        user.groups.add(Group.objects.get(name=role))
        users[role] = user
    _demo_process(users[DESIGNERS])
    return list(DEMO_USERS)


def _demo_process(designer) -> None:
    """A two-step process mirroring the product page's example, once."""
    from cloudfunctions.models import CloudFunction, Connection
    from orchestration.models import CompletionEvent, Process
    from orchestration.processes.services import step_create, step_refresh_problems

    connection, _ = Connection.objects.get_or_create(
        name="My custom connection",
        defaults={
            "provider": Connection.Provider.CUSTOM,
            "base_url": "https://api.example.com",
            "auth_type": Connection.AuthType.API_KEY,
            "api_key_location": Connection.ApiKeyLocation.HEADER,
            "api_key_name": "x-api-key",
            "api_key_value": "demo-key-not-a-real-secret",
            "secrets_changed_at": {"api_key_value": "2026-01-01T00:00:00+00:00"},
        },
    )
    if Process.objects.filter(name="Charge a customer").exists():
        return
    process = Process.objects.create(
        name="Charge a customer",
        description="Demo: create a charge, then notify the customer.",
        test_input={"customer": {"id": "cus_42", "name": "John Doe"}},
        created_by=designer,
    )
    charge = CompletionEvent.objects.create(process=process, name="charge.created")
    notified = CompletionEvent.objects.create(process=process, name="customer.notified")
    steps = [
        (
            "Create charge",
            "POST",
            '"/v1/charges"',
            charge,
            '{\n  "customer_name": "John Doe",\n  "priority": "High",\n  "is_active": true\n}',
        ),
        (
            "Notify customer",
            "POST",
            '"/v1/notifications/" + events["charge.created"].body.id',
            notified,
            '{"template": "charge-receipt"}',
        ),
    ]
    for name, method, uri, event, body in steps:
        step = step_create(process=process, actor=designer, name=name)
        CloudFunction.objects.create(
            step=step,
            name=name,
            connection=connection,
            method=method,
            uri=uri,
            query_params=[{"key": '"environment"', "value": '"production"'}],
            headers=[{"key": '"Content-Type"', "value": '"application/json"'}],
            body=body,
            completion_event=event,
        )
    step_refresh_problems(process=process)
