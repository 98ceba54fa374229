"""Sign-in lockout by django-axes: what it counts by, and the page a locked-out person sees.

Settings name these callables (AXES_CLIENT_IP_CALLABLE, AXES_USERNAME_CALLABLE,
AXES_LOCKOUT_CALLABLE); axes does the counting, in the database.
"""

from __future__ import annotations

import ipaddress
import math

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Max
from django.shortcuts import render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

LOGIN_THROTTLED = "Too many failed sign-ins; try again in {minutes} minute{s}."


def client_address(request) -> str | None:
    """The address the request came from, as the outermost of our own proxies saw it.

    X-Forwarded-For is read only with TRUSTED_PROXY_COUNT set, and only the entries our
    proxies appended: a client can write any address it likes to the left of them.
    """
    hops = settings.TRUSTED_PROXY_COUNT
    if hops:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        forwarded = [address.strip() for address in forwarded if address.strip()]
        if len(forwarded) >= hops:
            try:
                # Normalised, so "::1" and "0:0::1" count as one client, and junk as none.
                return str(ipaddress.ip_address(_without_port(forwarded[-hops])))
            except ValueError:
                pass  # not an address: count the proxy's
    # None, not "": axes stores it in an address column, which PostgreSQL types.
    return request.META.get("REMOTE_ADDR") or None


def _without_port(entry: str) -> str:
    # Some proxies append the client's port: "203.0.113.7:51234", "[2001:db8::1]:51234".
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry


def username_key(request, credentials: dict | None) -> str | None:
    """The username failures count under: "Dana" and " dana " are one person's attempts."""
    username = (credentials or {}).get("username")
    if username is None:
        username = getattr(request, "POST", {}).get("username")
    return username.strip().casefold() if username is not None else None


def retry_after(request, credentials: dict | None) -> int:
    """Return the seconds until the locked-out sign-in may be tried again."""
    cool_off = get_cool_off(request).total_seconds()
    handler = AxesProxyHandler.get_implementation()
    if not hasattr(handler, "filter_user_attempts"):  # a handler without stored times
        return math.ceil(cool_off)
    latest = [
        attempts.aggregate(last=Max("attempt_time"))["last"]
        for attempts in handler.filter_user_attempts(request, credentials)
    ]
    latest = [when for when in latest if when is not None]
    if not latest:
        return math.ceil(cool_off)
    elapsed = (timezone.now() - max(latest)).total_seconds()
    return max(1, math.ceil(cool_off - elapsed))


def lockout_response(request, original_response=None, credentials=None):
    """Render the sign-in page with the lockout and when to try again (429, Retry-After)."""
    wait = retry_after(request, credentials)
    minutes = math.ceil(wait / 60)
    message = LOGIN_THROTTLED.format(minutes=minutes, s="" if minutes == 1 else "s")
    username = request.POST.get("username", "")
    # An unbound form: the password was not checked, so there is nothing to say about it.
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "throttled": message,
        "next": _safe_next(request),
    }
    response = render(request, "registration/login.html", context, status=429)
    response["Retry-After"] = str(wait)
    return response


def _safe_next(request) -> str:
    # As LoginView does: only a local address goes back into the form.
    target = request.POST.get("next", "")
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else ""
