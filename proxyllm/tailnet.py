"""Which upstreams are reached through tailscaled's local proxy, and whether the tailnet is up.

In userspace mode the container's resolver does not know tailnet names, so requests to them go to
tailscaled's HTTP proxy unresolved. Everything else (hosted providers, Stripe) goes direct.

The container's entry point (docker/entrypoint.sh) starts tailscaled, exports ``TAILNET_PROXY_URL``
and ``TAILSCALE_SOCKET``, and records how joining the tailnet went in ``TAILSCALE_STATUS_FILE``
(``key=value`` lines: ``state=running|failed|not_configured``, ``reason=...``). ``TailnetCheck``
turns that, tailscaled's live state and a probe of every tailnet upstream into one entry of
``/health/readiness``. It is not required unless ``TAILNET_REQUIRED`` is set: a proxy that also
serves hosted providers stays ready while the tailnet is down.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import aiohttp
import orjson

from proxyllm.core.jsontypes import JSONObject

if TYPE_CHECKING:
    from proxyllm.core.deployment import Deployment
    from proxyllm.core.upstream_http import UpstreamHTTP

CGNAT = ipaddress.ip_network("100.64.0.0/10")
CHECK_NAME = "tailnet"
LOCALAPI_STATUS = "http://local-tailscaled.sock/localapi/v0/status?peers=false"
DAEMON_TIMEOUT = 2.0
PROBE_TIMEOUT = 5.0
MAX_REASON = 300


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


def tailnet_hosts(env: Mapping[str, str]) -> frozenset[str]:
    return frozenset(h.strip().lower() for h in env.get("TAILNET_HOSTS", "hugo").split(",") if h.strip())


def proxy_for(api_base: str, setting: str | bool | None, env: Mapping[str, str] = os.environ) -> str | None:
    """The proxy URL for a deployment: its own ``proxy`` setting, else the tailnet rule."""
    if isinstance(setting, str) and setting:
        return setting
    tailnet_proxy = env.get("TAILNET_PROXY_URL") or None
    if setting is True:
        return tailnet_proxy
    if setting is False or tailnet_proxy is None:
        return None
    host = urlsplit(api_base).hostname or ""
    return tailnet_proxy if is_tailnet_host(host, tailnet_hosts(env)) else None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def read_status_file(path: str) -> dict[str, str] | None:
    """The entry point's record of joining the tailnet, or None when there is none."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    record: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            record[key.strip()] = value.strip()
    return record


async def daemon_status(socket_path: str, timeout: float = DAEMON_TIMEOUT) -> JSONObject:
    """tailscaled's own status from its LocalAPI socket (what ``tailscale status --json`` shows)."""
    connector = aiohttp.UnixConnector(path=socket_path)
    timeout_ = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(LOCALAPI_STATUS, timeout=timeout_) as resp,
    ):
        raw = await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"LocalAPI answered HTTP {resp.status}")
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        raise RuntimeError("LocalAPI status is not a JSON object")
    return data


def _origin(api_base: str) -> tuple[str, str]:
    """(label, URL) of an upstream's origin; the label never carries credentials or paths."""
    parts = urlsplit(api_base)
    scheme = parts.scheme or "http"
    host = parts.hostname or ""
    port = parts.port or (443 if scheme == "https" else 80)
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return netloc, f"{scheme}://{netloc}/"


def _short(exc: BaseException) -> str:
    detail = str(exc).split("\n", 1)[0]
    return f"{type(exc).__name__}: {detail}"[:MAX_REASON] if detail else type(exc).__name__


class TailnetCheck:
    """A readiness check: ``("tailnet", {"status": "ok" | "error" | "not_configured", ...})``.

    ``state`` is tailscaled's BackendState when its socket answers, else what the entry point
    recorded; ``upstreams`` maps each tailnet upstream (``host:port``) to ``"ok"`` or why it did
    not answer through the tailnet proxy.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        deployments: Callable[[], Iterable[Deployment]],
        http: UpstreamHTTP,
    ) -> None:
        self.env = env
        self.deployments = deployments
        self.http = http

    async def __call__(self) -> tuple[str, JSONObject]:
        env = self.env
        required = _truthy(env.get("TAILNET_REQUIRED"))
        proxy = env.get("TAILNET_PROXY_URL") or None
        status_path = env.get("TAILSCALE_STATUS_FILE")
        recorded = read_status_file(status_path) if status_path else None
        if proxy is None and (recorded is None or recorded.get("state") == "not_configured"):
            return CHECK_NAME, {"status": "not_configured", "required": required}

        state, reason = await self._state(recorded)
        upstreams = await self._probe_upstreams(proxy) if proxy else {}
        healthy = state in ("Running", "unknown") and all(v == "ok" for v in upstreams.values())
        if proxy is None:  # tailscaled died or never started: nothing reaches the tailnet
            healthy = False
        result: JSONObject = {"status": "ok" if healthy else "error", "required": required, "state": state}
        if reason and state != "Running":
            result["reason"] = reason
        result["upstreams"] = upstreams
        return CHECK_NAME, result

    async def _state(self, recorded: dict[str, str] | None) -> tuple[str, str | None]:
        socket_path = self.env.get("TAILSCALE_SOCKET")
        if socket_path:
            try:
                status = await daemon_status(socket_path)
            except (aiohttp.ClientError, TimeoutError, OSError, RuntimeError, orjson.JSONDecodeError) as exc:
                return "unreachable", f"tailscaled does not answer on its socket: {_short(exc)}"
            state = str(status.get("BackendState") or "unknown")
            health = [str(h) for h in status.get("Health") or []]
            if state == "Running":
                return state, None
            return state, "; ".join(health)[:MAX_REASON] or (recorded or {}).get("reason")
        if recorded is None:
            return "unknown", None
        state = {"running": "Running", "failed": "failed"}.get(recorded.get("state", ""), "unknown")
        return state, recorded.get("reason")

    async def _probe_upstreams(self, proxy: str) -> dict[str, str]:
        origins = dict(_origin(d.api_base) for d in self.deployments() if d.proxy_url == proxy)
        if not origins:
            return {}
        results = await asyncio.gather(*(self._probe(url, proxy) for url in origins.values()))
        return dict(zip(origins, results, strict=True))

    async def _probe(self, url: str, proxy: str) -> str:
        """Any HTTP answer from the upstream counts; 5xx is what tailscaled's proxy says when it cannot dial."""
        try:
            async with self.http.session.get(
                url, proxy=proxy, timeout=aiohttp.ClientTimeout(total=PROBE_TIMEOUT), allow_redirects=False
            ) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return _short(exc)
        return "ok" if status < 500 else f"HTTP {status} through the tailnet proxy"
