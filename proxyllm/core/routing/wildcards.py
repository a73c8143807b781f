"""Wildcard model names: ``ollama/*``, ``openai/*``, ``*`` serve any model name they match.

The part the ``*`` matched replaces the ``*`` in the entry's ``litellm_params.model``: with
``model_name: ollama/*`` and ``model: ollama/*`` a request for ``ollama/llama3`` reaches Ollama's
``llama3``; with ``model_name: *`` and ``model: ollama_chat/*`` a request for ``llama3`` does too.
The most specific pattern (most literal characters) wins; every entry with that pattern becomes a
deployment of the new group. Building the deployment is the runtime's job (it knows the config), so
a route carries a builder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from proxyllm.core.deployment import Deployment

Builder = Callable[[str, str], Deployment]  # (requested model, what the * matched) -> deployment


@dataclass(frozen=True, slots=True)
class WildcardRoute:
    pattern: str
    build: Builder

    def match(self, model: str) -> str | None:
        prefix, _, suffix = self.pattern.partition("*")
        if len(model) > len(prefix) + len(suffix) and model.startswith(prefix) and model.endswith(suffix):
            return model[len(prefix) : len(model) - len(suffix)]
        return None


class Wildcards:
    def __init__(self, routes: Sequence[WildcardRoute] = ()) -> None:
        by_pattern: dict[str, list[WildcardRoute]] = {}
        for route in routes:
            by_pattern.setdefault(route.pattern, []).append(route)
        self.patterns = sorted(by_pattern.items(), key=lambda item: len(item[0]) - 1, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def deployments_for(self, model: str) -> tuple[str, list[Deployment]] | None:
        """The matching pattern and its freshly built deployments; a builder may raise ProxyError."""
        for pattern, routes in self.patterns:
            star = routes[0].match(model)
            if star is not None:
                return pattern, [route.build(model, star) for route in routes]
        return None
