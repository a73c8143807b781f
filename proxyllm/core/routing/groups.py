"""A model group: the deployments behind one model name, with what the hot path needs precomputed."""

from __future__ import annotations

import itertools

from proxyllm.core.deployment import Deployment
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.routing.stats import DeploymentStats
from proxyllm.core.types import Operation


class ModelGroup:
    __slots__ = (
        "access_groups",
        "cumulative",
        "deployments",
        "input_limited",
        "limited",
        "mixed_operations",
        "name",
        "operations",
        "pattern",
        "stats",
        "tagged",
    )

    def __init__(self, name: str, stats: list[DeploymentStats], *, pattern: str | None = None) -> None:
        self.name = name
        self.pattern = pattern  # the wildcard model_name this group was made from
        self.stats = stats
        self.deployments = [s.dep for s in stats]
        self.cumulative = list(itertools.accumulate(d.weight for d in self.deployments))
        self.limited = any(d.rpm is not None or d.tpm is not None for d in self.deployments)
        self.input_limited = any(max_input_tokens(d) is not None for d in self.deployments)
        # LiteLLM's model_info.access_groups: a key whose models name an access group may use the group.
        self.access_groups = frozenset(g for d in self.deployments for g in access_groups_of(d))
        self.tagged = any(d.tags for d in self.deployments)
        # What the group can answer (images, rerank, ...); "mixed" when some deployments cannot answer all of it.
        each = [frozenset(getattr(d.provider, "operations", ())) for d in self.deployments]
        self.operations: frozenset[Operation] = frozenset().union(*each)
        self.mixed_operations = any(ops != self.operations for ops in each)


def access_groups_of(dep: Deployment) -> list[str]:
    groups = dep.model_info.get("access_groups")
    return [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []


def max_input_tokens(dep: Deployment) -> int | None:
    value = dep.model_info.get("max_input_tokens") or dep.model_info.get("max_tokens")
    return value if isinstance(value, int) and value > 0 else None


def estimate_prompt_tokens(body: JSONObject) -> int:
    """About one token per four characters of text: cheap, for pre-call checks only."""
    chars = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                chars += len(content)
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        chars += len(part["text"])
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        chars += len(prompt)
    elif isinstance(prompt, list):
        chars += sum(len(p) for p in prompt if isinstance(p, str))
    return chars // 4 + 1
