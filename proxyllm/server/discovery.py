"""Serving what an upstream lists: ``make run`` without a config serves every model the local Ollama has.

The upstream is asked at start and every ``interval`` seconds; each model it lists becomes a deployment
under its own name (``model_info.discovered``), replacing the deployment table's discovered part. An
upstream that does not answer keeps what was found before, and is asked again at the next interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from proxyllm.config.schema import DeploymentConfig
from proxyllm.core.background import cancel
from proxyllm.core.deployment import Deployment
from proxyllm.core.deployment_table import DeploymentTable, Source
from proxyllm.core.errors import ProxyError
from proxyllm.core.provider import Provider

log = logging.getLogger("proxyllm")

PROVIDER = "ollama_chat"  # how discovered models are called (Ollama's chat API)
DEFAULT_BASE = "http://localhost:11434"
INTERVAL = 30.0


def discovery_base(env: Mapping[str, str]) -> str:
    return (env.get("OLLAMA_API_BASE") or DEFAULT_BASE).rstrip("/")


class ModelDiscovery:
    def __init__(
        self,
        table: DeploymentTable,
        build: Callable[[DeploymentConfig], Deployment],
        provider: Provider,
        *,
        api_base: str,
        api_key: str | None = None,
        interval: float = INTERVAL,
    ) -> None:
        self.table = table
        self.build = build
        self.provider = provider
        self.api_base = api_base
        self.api_key = api_key
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.discover()
        self._task = asyncio.create_task(self._again_and_again())

    async def stop(self) -> None:
        await cancel(self._task)

    async def discover(self) -> None:
        """Serve every model the upstream lists, each under its own name."""
        try:
            names = await self.provider.list_models(self.api_base, self.api_key)
        except ProxyError as exc:
            log.warning(
                "no models discovered: %s at %s did not answer (%s); retrying every %ss",
                self.provider.name,
                self.api_base,
                exc.message,
                int(self.interval),
            )
            return
        found = [
            self.build(
                DeploymentConfig.model_validate(
                    {
                        "model_name": name,
                        "litellm_params": {"model": f"{PROVIDER}/{name}", "api_base": self.api_base},
                        "model_info": {"discovered": True},
                    }
                )
            )
            for name in names
        ]
        before = {d.model_name for d in self.table}
        self.table.replace(Source.DISCOVERED, found)
        added = sorted({d.model_name for d in found} - before)
        if added:
            log.info("serving models from %s: %s", self.api_base, ", ".join(added))

    async def _again_and_again(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.discover()
            except Exception:
                log.exception("model discovery failed")
