"""Which local addresses ICE and mDNS use.

aioice gathers a host candidate on every IPv4 address except 127.0.0.1, so on a loopback-only
machine (the demo, many tests) a connection has no candidates and sits in ``new`` forever with no
error.  :func:`use_addresses` replaces aioice's module-level address lookup (the one function its
``Connection.gather_candidates`` calls) with the addresses this node chose: the ``--interface``
address when given, else every non-loopback IPv4 address, else loopback.  It is process-wide; a
process runs one node (tests with several nodes in one process use one address for all).

We use host candidates only, with no ICE servers: the default STUN server stalls
``setLocalDescription`` for about 5 s on a LAN without internet.
"""

from __future__ import annotations

import ipaddress

import aioice.ice
import ifaddr

LOOPBACK = "127.0.0.1"


class NoUsableAddress(Exception):
    """No local address can carry ICE or mDNS traffic."""


def local_ipv4_addresses() -> list[str]:
    """Every IPv4 address of this host, loopback included."""
    return [
        ip.ip for adapter in ifaddr.get_adapters() for ip in adapter.ips if isinstance(ip.ip, str)
    ]


def choose_addresses(interface: str | None) -> tuple[str, ...]:
    """The addresses a node uses, or raise :class:`NoUsableAddress` with the reason."""
    present = local_ipv4_addresses()
    if interface is not None:
        try:
            ipaddress.IPv4Address(interface)
        except ValueError:
            raise NoUsableAddress(f"--interface wants an IPv4 address, not {interface!r}") from None
        # Linux routes all of 127.0.0.0/8 to this host, listed or not: tests and benchmarks
        # give nodes on one machine addresses of their own there.
        on_loopback = ipaddress.IPv4Address(interface).is_loopback and LOOPBACK in present
        if interface not in present and not on_loopback:
            raise NoUsableAddress(
                f"no network interface has the address {interface} "
                f"(this host has: {', '.join(present) or 'none'})"
            )
        return (interface,)
    usable = [a for a in present if not ipaddress.IPv4Address(a).is_loopback]
    if usable:
        return tuple(usable)
    if LOOPBACK in present:
        return (LOOPBACK,)
    raise NoUsableAddress("this host has no IPv4 address, not even loopback")


def use_addresses(addresses: tuple[str, ...]) -> None:
    """Make aioice gather host candidates on exactly these addresses."""
    chosen = list(addresses)

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return list(chosen) if use_ipv4 else []

    aioice.ice.get_host_addresses = host_addresses
