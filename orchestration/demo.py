"""Demo data for local development."""

from __future__ import annotations

from django.contrib.auth.models import Group, User

from orchestration.roles import CONNECTION_ADMINS, DESIGNERS

DEMO_USERS = (
    ("designer", "designer-demo-pass", DESIGNERS),
    ("admin", "admin-demo-pass", CONNECTION_ADMINS),
)


def seed_demo() -> list[tuple[str, str, str]]:
    """Create the demo users (one per role) and return their logins."""
    for username, password, role in DEMO_USERS:
        user, _ = User.objects.get_or_create(username=username)
        # Always reset, so the printed login works even after someone changed it.
        user.set_password(password)
        user.save()
        user.groups.add(Group.objects.get(name=role))
    return list(DEMO_USERS)
