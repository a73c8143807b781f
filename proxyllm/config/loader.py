"""Read a config file: YAML, ``os.environ/NAME`` references, validation, and clear start-up errors."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from proxyllm.config.schema import REQUEST_DEFAULT_PARAMS, ProxyConfig

log = logging.getLogger("proxyllm.config")

ENV_PREFIX = "os.environ/"


class ConfigError(Exception):
    """The config cannot be used; the message names the file, the entry and the field."""


def load_config(path: str | os.PathLike[str]) -> ProxyConfig:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config file: {exc.strerror or exc}") from None
    return parse_config(text, source=str(file))


def parse_config(text: str, *, source: str = "<config>") -> ProxyConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, got {type(raw).__name__}")

    env_vars = raw.get("environment_variables") or {}
    if not isinstance(env_vars, dict):
        raise ConfigError(f"{source}: environment_variables must be a mapping")
    for name, value in env_vars.items():
        # Like LiteLLM: the file's environment_variables are exported before anything reads os.environ/.
        os.environ.setdefault(str(name), str(_resolve_env(value, f"environment_variables.{name}", source)))

    resolved = _resolve_env(raw, "", source)
    _check_model_entries(resolved, source)
    try:
        config = ProxyConfig.model_validate(resolved)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, resolved, source)) from None
    config.source = source
    _warn_unknown(config)
    return config


def _resolve_env(value: Any, where: str, source: str) -> Any:
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        found = os.environ.get(name)
        if found is None:
            raise ConfigError(f"{source}: {where or 'value'} refers to environment variable {name}, which is not set")
        return found
    if isinstance(value, dict):
        return {k: _resolve_env(v, f"{where}.{k}" if where else str(k), source) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, f"{where}[{i}]", source) for i, v in enumerate(value)]
    return value


def _check_model_entries(raw: dict[str, Any], source: str) -> None:
    models = raw.get("model_list")
    if models is None:
        return
    if not isinstance(models, list):
        raise ConfigError(f"{source}: model_list must be a list of model entries")
    for i, entry in enumerate(models):
        where = f"{source}: model_list[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: each entry must be a mapping")
        name = entry.get("model_name")
        if name is not None:
            where += f" (model_name {name!r})"
        params = entry.get("litellm_params")
        if not isinstance(params, dict):
            raise ConfigError(f"{where}: litellm_params is missing or not a mapping")
        if not params.get("model"):
            raise ConfigError(f"{where}: litellm_params.model is missing (expected 'provider/model-name')")


def _describe(exc: ValidationError, raw: dict[str, Any], source: str) -> str:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = source + ":"
        if len(loc) >= 2 and loc[0] == "model_list" and isinstance(loc[1], int):
            entry = raw["model_list"][loc[1]]
            name = entry.get("model_name") if isinstance(entry, dict) else None
            where += f" model_list[{loc[1]}]" + (f" (model_name {name!r})" if name else "")
            loc = loc[2:]
        field = ".".join(str(p) for p in loc) or "(entry)"
        lines.append(f"{where} {field}: {err['msg']}")
    return "invalid config\n  " + "\n  ".join(lines)


def _warn_unknown(config: ProxyConfig) -> None:
    seen: set[str] = set()

    def warn(key: str) -> None:
        if key not in seen:
            seen.add(key)
            log.warning("config key %s is not supported by proxyllm and is ignored", key)

    for section in ("litellm_settings", "router_settings", "general_settings"):
        for key in getattr(config, section).unknown_keys():
            warn(f"{section}.{key}")
    for dep in config.model_list:
        for key in dep.litellm_params.unknown_keys():
            if key not in REQUEST_DEFAULT_PARAMS:
                warn(f"litellm_params.{key}")
    for key in config.model_extra or {}:
        if key != "source":
            warn(key)
