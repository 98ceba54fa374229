from __future__ import annotations

from orchestration.web.roles import is_connection_admin, is_designer


def roles(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"is_designer": is_designer(user), "is_connection_admin": is_connection_admin(user)}
