"""Every page needs a signed-in user, except views marked ``login_not_required``."""

from __future__ import annotations

from django.contrib.auth import middleware
from django.contrib.auth.views import redirect_to_login
from django_htmx.http import HttpResponseClientRedirect


class LoginRequiredMiddleware(middleware.LoginRequiredMiddleware):
    """Django's sign-in guard, which also sends an htmx fragment request's whole page to sign-in.

    Django answers a 302, which the browser's XMLHttpRequest follows on its own: htmx would
    then swap the sign-in page into a corner of the page (a run's poll, a field's live check).
    """

    def handle_no_permission(self, request, view_func):
        htmx = getattr(request, "htmx", None)
        if not htmx:
            return super().handle_no_permission(request, view_func)
        back = htmx.current_url_abs_path or request.get_full_path()
        login = redirect_to_login(back, redirect_field_name=self.get_redirect_field_name(view_func))
        return HttpResponseClientRedirect(login.url)
