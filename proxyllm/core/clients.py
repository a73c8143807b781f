"""Where a request comes from: client addresses (trusted proxies, forwarded headers) and address ranges.

- The client address is the TCP peer, unless the peer is one of ``general_settings.trusted_proxies``:
  then it is read from ``client_ip_header`` — ``X-Forwarded-For`` (walked right to left, skipping
  trusted hops) or a single-address header such as ``X-Real-IP``. A header from any other peer is ignored.
- A key's ``metadata.allowed_ips`` limits where that key may be used (``check_key_client``, called by the
  Authenticator); ``ops/allowlist.py`` is the proxy-wide ``general_settings.allowed_ips`` middleware.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING

from proxyllm.core.context import CURRENT_SCOPE
from proxyllm.core.errors import ErrorKind, ProxyError, invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue

if TYPE_CHECKING:
    from starlette.types import Scope

log = logging.getLogger("proxyllm.allowlist")

Address = IPv4Address | IPv6Address
RESOLVER = "proxyllm.client_resolver"  # scope key, set when trusted proxies are configured
HEALTH_PATHS = frozenset({"/health/liveliness", "/health/liveness", "/health/readiness"})
FORWARDED_FOR = "x-forwarded-for"
MAX_REMEMBERED = 4096


@functools.lru_cache(maxsize=4096)
def parse_address(text: str) -> Address | None:
    """``1.2.3.4``, ``1.2.3.4:5678``, ``2001:db8::1``, ``[2001:db8::1]:443``; IPv4-mapped IPv6 -> IPv4.

    Cached: parsing costs microseconds and the same few addresses come back again and again.
    """
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        text = text[1:end] if end > 0 else text
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        ip = ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


class Networks:
    """A set of addresses and CIDR ranges; membership by address family."""

    def __init__(self, networks: Iterable[IPv4Network | IPv6Network]) -> None:
        networks = list(networks)
        self.v4 = tuple(n for n in networks if isinstance(n, IPv4Network))
        self.v6 = tuple(n for n in networks if isinstance(n, IPv6Network))
        self._seen: dict[Address, bool] = {}  # decisions, so a known address costs one dict lookup

    @classmethod
    def parse(cls, entries: Iterable[JSONValue], where: str) -> Networks:
        networks: list[IPv4Network | IPv6Network] = []
        for entry in entries:
            if not isinstance(entry, str):
                raise ValueError(f"{where}: {entry!r} is not an IP address or CIDR range")
            try:
                network = ip_network(entry.strip())
            except ValueError as exc:
                raise ValueError(f"{where}: {entry!r} is not an IP address or CIDR range ({exc})") from None
            if isinstance(network, IPv6Network) and network.prefixlen >= 96:
                mapped = network.network_address.ipv4_mapped
                if mapped is not None:  # ::ffff:a.b.c.d/n means the IPv4 range
                    network = IPv4Network(f"{mapped}/{network.prefixlen - 96}")
            networks.append(network)
        return cls(networks)

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)

    def __contains__(self, ip: Address) -> bool:
        found = self._seen.get(ip)
        if found is None:
            found = any(ip in n for n in self.v4) if isinstance(ip, IPv4Address) else any(ip in n for n in self.v6)
            if len(self._seen) >= MAX_REMEMBERED:
                self._seen.clear()
            self._seen[ip] = found
        return found

    def describe(self) -> str:
        return ", ".join(str(n) for n in (*self.v4, *self.v6))


class ClientResolver:
    """The client address of a request, believing forwarding headers only from trusted proxies."""

    def __init__(self, trusted: Networks, header: str = FORWARDED_FOR) -> None:
        self.trusted = trusted
        self.header = header.lower().encode("latin-1")
        self.forwarded_for = self.header == FORWARDED_FOR.encode()

    def client_ip(self, scope: Scope) -> Address | None:
        client = scope.get("client")
        peer_ip = parse_address(client[0]) if client else None
        if peer_ip is None or peer_ip not in self.trusted:
            return peer_ip
        values = [v.decode("latin-1") for name, v in scope.get("headers", ()) if name == self.header]
        if not values:
            return peer_ip
        if not self.forwarded_for:
            return parse_address(values[-1]) or peer_ip
        hops = [h for v in values for h in v.split(",") if h.strip()]
        nearest = peer_ip
        for hop in reversed(hops):
            ip = parse_address(hop)
            if ip is None:  # garbage from further out than the last trusted hop: stop at what we know
                break
            nearest = ip
            if ip not in self.trusted:
                break
        return nearest


def client_ip(scope: Scope | None) -> Address | None:
    """The client address of a request that passed through ``IPAllowlistMiddleware``, parsed."""
    if scope is None:
        return None
    resolver: ClientResolver | None = scope.get(RESOLVER)
    if resolver is not None:
        return resolver.client_ip(scope)
    client = scope.get("client")
    return parse_address(client[0]) if client else None


def client_address(scope: Scope | None) -> str | None:
    """The client address as text (for logs and the audit log); an unparseable peer as it came."""
    ip = client_ip(scope)
    if ip is not None:
        return str(ip)
    client = scope.get("client") if scope is not None else None
    return str(client[0]) if client else None


def not_allowed(address: str | None, what: str) -> ProxyError:
    return ProxyError(
        ErrorKind.PERMISSION,
        f"requests from {address or 'an unknown address'} are not allowed ({what})",
        code="ip_not_allowed",
    )


# -- per-key allowed_ips -----------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _key_networks(entries: tuple[JSONValue, ...]) -> Networks | None:
    try:
        return Networks.parse(entries, "metadata.allowed_ips")
    except ValueError as exc:
        log.warning("a key's %s; the key is refused everywhere until it is fixed", exc)
        return None


def check_key_client(allowed_ips: JSONValue) -> None:
    """Raise 403 unless the current request comes from one of a key's ``allowed_ips``."""
    entries = tuple(allowed_ips) if isinstance(allowed_ips, list | tuple) else (allowed_ips,)
    networks = _key_networks(entries)
    scope = CURRENT_SCOPE.get()
    ip = client_ip(scope)
    if networks is None or ip is None or ip not in networks:
        raise not_allowed(client_address(scope), "this key's metadata.allowed_ips")


def check_key_metadata(metadata: JSONObject | None) -> None:
    """Admin input: ``metadata.allowed_ips`` must be a list of addresses or CIDR ranges."""
    if not metadata or "allowed_ips" not in metadata or metadata["allowed_ips"] is None:
        return
    value = metadata["allowed_ips"]
    if not isinstance(value, list) or not value:
        raise invalid_request(
            "metadata.allowed_ips must be a non-empty list of IP addresses or CIDR ranges", param="metadata.allowed_ips"
        )
    try:
        Networks.parse(value, "metadata.allowed_ips")
    except ValueError as exc:
        raise invalid_request(str(exc), param="metadata.allowed_ips") from None
