"""Whether a translated Messages request keeps its ``reasoning_effort``: only where a model can think.

Anthropic clients ask for thinking on every turn (Claude Code sends ``thinking: {type: adaptive}`` and
``output_config.effort`` whatever the model), and an upstream that cannot think refuses the field:
OpenAI's non-reasoning models answer 400 to ``reasoning_effort``, Ollama 400 to ``think`` for a model
without thinking. So the effort is kept when at least one deployment of the model group may think:

- ``model_info.supports_reasoning`` (LiteLLM's name) decides when it is set;
- else Anthropic and Gemini deployments think;
- OpenAI and Azure deployments think when the model is a reasoning one by name (``o1``, ``o3``,
  ``o4-mini``, ``gpt-5``...);
- any other deployment (Ollama, OpenAI-compatible servers) is asked to think only when the client
  asked for it explicitly (``thinking: {type: enabled}``), not for ``adaptive``, which means "if
  you can".
"""

from __future__ import annotations

import re

from proxyllm.core.deployment import Deployment
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.routing.groups import ModelGroup

THINKERS = frozenset({"anthropic", "gemini"})
OPENAI_FAMILY = frozenset({"openai", "azure"})
REASONING_MODEL = re.compile(r"^(o\d|gpt-5|gpt-oss|deepseek-reasoner)", re.IGNORECASE)


def may_think(dep: Deployment, *, explicit: bool) -> bool:
    flag = dep.model_info.get("supports_reasoning")
    if isinstance(flag, bool):
        return flag
    provider = dep.provider.name
    if provider in THINKERS:
        return True
    if provider in OPENAI_FAMILY:
        return REASONING_MODEL.match(dep.upstream_model.rsplit("/", 1)[-1]) is not None
    return explicit


def keep_reasoning(body: JSONObject, native: JSONObject, group: ModelGroup | None) -> None:
    """Drop ``body["reasoning_effort"]`` when no deployment of ``group`` may think."""
    if "reasoning_effort" not in body or group is None or not group.deployments:
        return
    thinking = native.get("thinking")
    explicit = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    if not any(may_think(dep, explicit=explicit) for dep in group.deployments):
        del body["reasoning_effort"]
