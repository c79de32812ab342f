"""Which hosts may send the platform calls: an IP/CIDR allow-list (SIP and Asterisk peers)."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

LOOPBACK = ("127.0.0.0/8", "::1/128")


@lru_cache(maxsize=32)
def _networks(allowed: tuple[str, ...]) -> tuple:
    entries = allowed or LOOPBACK
    try:
        return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())
    except ValueError as exc:
        raise ValueError(f"bad peer allow-list entry ({exc}): use IP addresses or CIDRs such as 10.0.0.0/24") from None


def peer_allowed(host: str, allowed: list[str] | tuple[str, ...]) -> bool:
    """Whether ``host`` (an IP, perhaps ``[v6]``) is in ``allowed``; an empty list allows loopback only."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(allowed)))


def split_host_port(address: str) -> tuple[str, int]:
    """``"10.0.0.5:5060"`` / ``"[::1]:5060"`` -> (host, port)."""
    host, _, port = address.rpartition(":")
    if not host:
        return address.strip("[]"), 0
    return host.strip("[]"), int(port) if port.isdigit() else 0
