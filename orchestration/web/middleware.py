"""Every page needs a signed-in user, except sign-in itself and static files."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect


class LoginRequiredMiddleware:
    """Redirect anonymous users to sign-in, unless the view opts out."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.user.is_authenticated or getattr(view_func, "login_exempt", False):
            return None
        if request.path.startswith(settings.STATIC_URL) or request.path == reverse("login"):
            return None
        htmx = getattr(request, "htmx", None)
        if htmx:
            # A fragment request (a poll, a live check) after the session ended: send the
            # whole page to sign-in, back to where the person was, rather than swapping the
            # sign-in page into a corner of it.
            back = htmx.current_url_abs_path or request.get_full_path()
            return HttpResponseClientRedirect(redirect_to_login(back).url)
        return redirect_to_login(request.get_full_path())


def login_exempt(view_func):
    """Mark a view as reachable without signing in (it must authenticate on its own)."""
    view_func.login_exempt = True
    return view_func
