"""The IP filter refuses every spelling of an internal address (issue 13, D8).

No hypothesis deadline: the machine is shared, and time is not what these tests assert.

Hypothesis writes IPv4 addresses into every IPv6 form that embeds one (IPv4-compatible,
IPv4-mapped, SIIT, NAT64, 6to4, Teredo), in every textual spelling (dotted tail, hex groups,
zero padding, expanded, upper case), and IPv4 itself in every inet_aton() spelling.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cloudfunctions import validators
from cloudfunctions.http import errors
from cloudfunctions.http.ip_filter import (
    REFUSED_IPV4,
    is_refused,
    literal_address,
)
from cloudfunctions.http.transport import OutboundError, OutboundRequest, send

any_ipv4 = st.builds(ipaddress.IPv4Address, st.integers(0, 2**32 - 1))


@st.composite
def internal_ipv4(draw) -> ipaddress.IPv4Address:
    block = draw(st.sampled_from(REFUSED_IPV4))
    offset = draw(st.integers(0, block.num_addresses - 1))
    return block[offset]


def _hex_groups(v4: ipaddress.IPv4Address) -> str:
    value = int(v4)
    return f"{value >> 16:x}:{value & 0xFFFF:x}"


def _v6_text(address: ipaddress.IPv6Address, style: str) -> str:
    if style == "exploded":
        return address.exploded
    if style == "upper":
        return address.compressed.upper()
    if style == "exploded-upper":
        return address.exploded.upper()
    return address.compressed


# Each form puts the IPv4 address in an IPv6 address; mapped ones may be loopback-allowed.
EMBEDDINGS = {
    "compatible-dotted": lambda v4: f"::{v4}",
    "compatible-hex": lambda v4: f"::{_hex_groups(v4)}",
    "compatible-long": lambda v4: f"0:0:0:0:0:0:{v4}",
    "mapped-dotted": lambda v4: f"::ffff:{v4}",
    "mapped-hex": lambda v4: f"::FFFF:{_hex_groups(v4)}",
    "mapped-long": lambda v4: f"0000:0000:0000:0000:0000:ffff:{v4}",
    "siit": lambda v4: f"::ffff:0:{v4}",
    "nat64-dotted": lambda v4: f"64:ff9b::{v4}",
    "nat64-hex": lambda v4: f"64:ff9b::{_hex_groups(v4)}",
    "nat64-local": lambda v4: f"64:ff9b:1::{v4}",
    "6to4": lambda v4: f"2002:{_hex_groups(v4)}::1",
    "teredo": lambda v4: f"2001:0:{_hex_groups(v4)}::1",
}


@st.composite
def embedded(draw, v4s=any_ipv4) -> tuple[str, str, ipaddress.IPv4Address]:
    v4 = draw(v4s)
    form = draw(st.sampled_from(sorted(EMBEDDINGS)))
    text = EMBEDDINGS[form](v4)
    style = draw(st.sampled_from(["as-built", "compressed", "exploded", "upper", "exploded-upper"]))
    if style != "as-built":
        text = _v6_text(ipaddress.IPv6Address(text), style)
    return form, text, v4


def _allowed_as_loopback(form: str, v4: ipaddress.IPv4Address, allow_loopback: bool) -> bool:
    # "::0.0.0.1" is ::1 itself, the IPv6 loopback.
    loopback = (form.startswith("mapped") and v4.is_loopback) or (
        form.startswith("compatible") and int(v4) == 1
    )
    return allow_loopback and loopback


@given(embedded(), st.booleans())
@settings(deadline=None)
def test_every_ipv6_form_embedding_ipv4_is_refused(case, allow_loopback):
    form, text, v4 = case
    refused = is_refused(ipaddress.ip_address(text), allow_loopback=allow_loopback)
    assert refused is not _allowed_as_loopback(form, v4, allow_loopback), (form, text)


@st.composite
def ipv4_spelling(draw) -> tuple[str, ipaddress.IPv4Address]:
    v4 = draw(internal_ipv4())
    a, b, c, d = v4.packed
    value = int(v4)
    spellings = [
        str(v4),
        str(value),
        hex(value),
        f"0{a:o}.0{b:o}.0{c:o}.0{d:o}",
        f"{a:#x}.{b}.{c}.{d}",
        f"{a}.{b}.{(c << 8) | d}",
        f"{a}.{(b << 16) | (c << 8) | d}",
    ]
    return draw(st.sampled_from(spellings)), v4


@given(ipv4_spelling())
@settings(deadline=None)
def test_every_ipv4_spelling_of_an_internal_address_is_read_and_refused(case):
    text, v4 = case
    assert literal_address(text) == v4
    assert is_refused(literal_address(text), allow_loopback=False)


@given(ipv4_spelling())
@settings(deadline=None)
def test_the_system_resolver_reads_those_spellings_the_same_way(case):
    # What the filter reads must be what getaddrinfo() connects to (no DNS is asked).
    text, v4 = case
    (*_, (address, _)) = socket.getaddrinfo(
        text, 443, socket.AF_INET, socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
    )[0]
    assert address == str(v4)


@pytest.mark.parametrize(
    "text",
    [
        "::169.254.169.254",
        "::127.0.0.1",
        "::10.0.0.1",
        "::ffff:169.254.169.254",
        "fec0::1",
        "feff::1",
        "fe80::1%1",
        "fc00::1",
        "ff02::1",
        "::",
        "100::1",
        "5f00::1",
        "2001:db8::1",
        "3fff::1",
        "2001:20::1",
        "64:ff9b::a9fe:a9fe",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "100.64.0.1",
        "192.0.0.170",
        "198.18.0.1",
    ],
)
@pytest.mark.parametrize("allow_loopback", [False, True])
def test_internal_and_reserved_addresses_are_refused(text, allow_loopback):
    assert is_refused(ipaddress.ip_address(text), allow_loopback=allow_loopback)


@pytest.mark.parametrize("text", ["93.184.216.34", "8.8.8.8", "2606:2800:220:1::1", "2a00:1450::1"])
def test_public_addresses_pass(text):
    assert not is_refused(ipaddress.ip_address(text), allow_loopback=False)


@pytest.mark.parametrize("text", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_the_loopback_allowlist_lets_loopback_through_and_nothing_else(text):
    address = ipaddress.ip_address(text)
    assert is_refused(address, allow_loopback=False)
    assert not is_refused(address, allow_loopback=True)


@pytest.mark.parametrize("name", ["api.example.com", "localhost", "1e100.net", "x", "0x"])
def test_names_are_not_read_as_addresses(name):
    assert literal_address(name) is None


# The same rule at the form: a Base URL naming an internal address literally is refused with
# the one message, however it is spelled.


@given(embedded(), st.booleans())
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_base_url_refuses_every_embedding(django_settings, case, allow_loopback):
    form, text, v4 = case
    django_settings.OUTBOUND_ALLOW_LOOPBACK = allow_loopback
    url = f"https://[{text}]:8443/v1"
    if _allowed_as_loopback(form, v4, allow_loopback):
        validators.validate_https_url(url)
        return
    with pytest.raises(ValidationError) as refused:
        validators.validate_https_url(url)
    assert refused.value.messages == [validators.URL_PRIVATE_ADDRESS]


@given(ipv4_spelling())
@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_base_url_refuses_every_ipv4_spelling(django_settings, case):
    django_settings.OUTBOUND_ALLOW_LOOPBACK = False
    text, _ = case
    with pytest.raises(ValidationError) as refused:
        validators.validate_https_url(f"https://{text}")
    assert refused.value.messages == [validators.URL_PRIVATE_ADDRESS]


@pytest.fixture
def django_settings(settings):
    return settings


# And in the transport, where it counts: refused before any connection.


@given(embedded(v4s=internal_ipv4()))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_transport_refuses_every_embedding_before_connecting(no_connect, case):
    form, text, v4 = case
    assume(not _allowed_as_loopback(form, v4, True))
    host = f"[{text}]"
    with pytest.raises(OutboundError) as refused:
        send(OutboundRequest("GET", f"https://{host}/"), allowed_hosts={host})
    assert refused.value.stage == "ssrf"
    assert refused.value.message == errors.OUTBOUND_SSRF_REFUSED.format(host=host.lower())


@pytest.fixture
def no_connect(settings, monkeypatch):
    settings.OUTBOUND_ALLOW_LOOPBACK = True  # the allowlist opens loopback, never these

    def refuse(*args, **kwargs):
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
