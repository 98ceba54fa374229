"""The two roles of the product: Django groups that carry one permission each."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.decorators import user_passes_test
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied

DESIGNERS = "Process designers"
CONNECTION_ADMINS = "Connection administrators"

DESIGN_REFUSED = (
    "Processes are changed by Process designers. Ask one to make this change, or ask an "
    "administrator to add you to the Process designers group."
)
MANAGE_REFUSED = (
    "Connections are managed by Connection administrators. Ask one to add or change the "
    "connection you need, or ask an administrator to add you to the Connection "
    "administrators group."
)


@dataclass(frozen=True)
class Role:
    group: str
    permission: str  # "app_label.codename", as user.has_perm and templates' perms spell it
    refused: str  # what the 403 page says to someone without it


DESIGNER = Role(DESIGNERS, "orchestration.design_processes", DESIGN_REFUSED)
CONNECTION_ADMIN = Role(CONNECTION_ADMINS, "cloudfunctions.manage_connections", MANAGE_REFUSED)
ROLES = (DESIGNER, CONNECTION_ADMIN)


def role_required(role: Role):
    """Let a view through only for holders of the role's permission (sign-in comes first).

    Django's permission_required(raise_exception=True) refuses without a reason; this
    refusal carries the role's, which the 403 page shows.
    """

    def check(user) -> bool:
        if user.has_perm(role.permission):
            return True
        raise PermissionDenied(role.refused)

    return user_passes_test(check)


designer_required = role_required(DESIGNER)
connection_admin_required = role_required(CONNECTION_ADMIN)


def role_group(name: str) -> Group:
    """Return the role's group with its permission, restoring either when missing."""
    role = next(role for role in ROLES if role.group == name)
    app_label, codename = role.permission.split(".")
    group, _ = Group.objects.get_or_create(name=name)
    permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
    group.permissions.add(permission)
    return group
