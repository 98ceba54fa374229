"""The two roles of the product, kept as Django groups."""

from __future__ import annotations

DESIGNERS = "Process designers"
CONNECTION_ADMINS = "Connection administrators"


def is_designer(user) -> bool:
    return user.is_superuser or _in_group(user, DESIGNERS)


def is_connection_admin(user) -> bool:
    return user.is_superuser or _in_group(user, CONNECTION_ADMINS)


def _in_group(user, name: str) -> bool:
    if not user.is_authenticated:
        return False
    # Cached on the user object: base.html asks on every page.
    cache = getattr(user, "_role_names", None)
    if cache is None:
        cache = user._role_names = set(user.groups.values_list("name", flat=True))
    return name in cache


def role_required(check):
    """Let a view through only for users passing check (403 otherwise; sign-in is enforced first)."""
    from functools import wraps

    from django.core.exceptions import PermissionDenied

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not check(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


designer_required = role_required(is_designer)
connection_admin_required = role_required(is_connection_admin)
