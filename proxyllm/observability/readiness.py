"""The readiness check that a proxy serves at least one model.

A proxy with no model answers every model call with 404, so it is not ready: ``/health/readiness``
answers 503 with the reason until a model is served — configured, discovered from the local Ollama,
loaded from the database, or matched by a wildcard entry. Setups that add every model at run time
(``/model/new`` with ``store_model_in_db``) set ``general_settings.allow_no_models: true`` (or
``PROXYLLM_ALLOW_NO_MODELS=true``); then an empty proxy is reported as ready, with the count shown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from proxyllm.core.jsontypes import JSONObject

TRUE = ("1", "true", "yes", "on")


def allow_no_models(setting: bool, env: Mapping[str, str]) -> bool:
    return setting or env.get("PROXYLLM_ALLOW_NO_MODELS", "").strip().lower() in TRUE


class ModelsCheck:
    """``(name, result)`` for Runtime.readiness_checks: ``error`` (required) while no model is served."""

    def __init__(self, served: Callable[[], int], *, allow_none: bool, discovering_from: str | None = None) -> None:
        self.served = served
        self.allow_none = allow_none
        self.discovering_from = discovering_from

    async def __call__(self) -> tuple[str, JSONObject]:
        count = self.served()
        if count or self.allow_none:
            return "models_served", {"status": "ok", "count": count, "required": not self.allow_none}
        reason = "no model is served"
        if self.discovering_from:
            reason += f": the Ollama at {self.discovering_from} has listed none yet (retried every 30s)"
        else:
            reason += ": model_list is empty and no model was added at run time"
        reason += "; set general_settings.allow_no_models: true if models are only added at run time"
        return "models_served", {"status": "error", "count": 0, "error": reason}
