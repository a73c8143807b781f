"""Which upstreams are reached through tailscaled's local proxy.

In userspace mode the container's resolver does not know tailnet names, so requests to them go to
tailscaled's HTTP proxy unresolved. Everything else (hosted providers, Stripe) goes direct.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

CGNAT = ipaddress.ip_network("100.64.0.0/10")


def is_tailnet_host(host: str, tailnet_hosts: frozenset[str]) -> bool:
    host = host.lower().rstrip(".")
    if host in tailnet_hosts or host.endswith(".ts.net"):
        return True
    if any(host.startswith(name + ".") for name in tailnet_hosts):
        return True
    try:
        return ipaddress.ip_address(host) in CGNAT
    except ValueError:
        return False


def proxy_for(api_base: str, setting: str | bool | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The proxy URL for a deployment: its own ``proxy`` setting, else the tailnet rule."""
    if isinstance(setting, str) and setting:
        return setting
    tailnet_proxy = env.get("TAILNET_PROXY_URL") or None
    if setting is True:
        return tailnet_proxy
    if setting is False or tailnet_proxy is None:
        return None
    hosts = frozenset(h.strip().lower() for h in env.get("TAILNET_HOSTS", "hugo").split(",") if h.strip())
    host = urlsplit(api_base).hostname or ""
    return tailnet_proxy if is_tailnet_host(host, hosts) else None
