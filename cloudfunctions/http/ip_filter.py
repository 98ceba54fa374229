"""Which addresses an outbound call may connect to: public unicast only.

requests-hardened's filter runs first; this one is stricter and does not rest on
``ipaddress.is_global`` / ``is_private``, whose lists changed between Python releases (3.11.7
calls ``::169.254.169.254`` and ``fec0::1`` global). IPv6 is allowed only inside global unicast
(2000::/3), which leaves out at once every form that embeds an IPv4 address in the low bits
(IPv4-compatible ``::/96``, IPv4-mapped ``::ffff:0:0/96``, SIIT ``::ffff:0:0:0/96``, NAT64
``64:ff9b::/96`` and ``64:ff9b:1::/48``), site-local ``fec0::/10``, unique-local, link-local,
multicast and the unspecified address; the special-purpose blocks inside 2000::/3 (6to4 and
Teredo embed IPv4 too) are listed.
"""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The IANA IPv4 special-purpose registry, whole blocks (RFC 6890 and successors).
REFUSED_IPV4 = tuple(
    ipaddress.IPv4Network(block)
    for block in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)
GLOBAL_UNICAST_IPV6 = ipaddress.IPv6Network("2000::/3")
REFUSED_IPV6 = tuple(
    ipaddress.IPv6Network(block)
    for block in (
        "2001::/23",  # IETF protocol assignments: Teredo (embeds IPv4), ORCHID, benchmarking
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4 (embeds IPv4)
        "3fff::/20",  # documentation
    )
)
_LOOPBACK_IPV6 = ipaddress.IPv6Address("::1")


def is_refused(address: IPAddress, *, allow_loopback: bool) -> bool:
    """Return whether a call may not connect to ``address``.

    ``allow_loopback`` (tests and local development) lets 127.0.0.0/8, ::1 and IPv4-mapped
    loopback through; never loopback embedded any other way (``::127.0.0.1``).
    """
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(address.packed)  # drop a %zone
        mapped = address.ipv4_mapped
        if mapped is not None:
            return not (allow_loopback and mapped.is_loopback)
        if address == _LOOPBACK_IPV6:
            return not allow_loopback
        if address not in GLOBAL_UNICAST_IPV6 or address.is_multicast:
            return True
        return any(address in block for block in REFUSED_IPV6)
    if allow_loopback and address.is_loopback:
        return False
    return any(address in block for block in REFUSED_IPV4)


def literal_address(hostname: str) -> IPAddress | None:
    """Return the address a host name spells literally, as the system resolver reads it, or
    None for a name that needs a lookup.

    IPv4 in any inet_aton() spelling counts (``2130706433``, ``0x7f.1``, ``0177.0.0.1``):
    getaddrinfo() reads them as addresses without asking DNS.
    """
    hostname = hostname.strip("[]")
    try:
        return ipaddress.ip_address(hostname)
    except ValueError:
        pass
    if not hostname or not all(c.isalnum() or c == "." for c in hostname) or not hostname.isascii():
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(hostname))
    except OSError:
        return None


class RefusedAddress(Exception):
    """The name resolved to, or spells, an address outbound calls may not reach."""
