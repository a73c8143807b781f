"""Read a config file: YAML, ``os.environ/NAME`` references, validation, and clear start-up errors.

Every problem of a file is reported at once — each unset environment variable, each bad entry, each bad
field — one line per problem naming the file, the entry (``model_list[0] (model_name 'llama3')``) and the
field. Keys proxyllm does not read are accepted (a LiteLLM config must load) with one warning each,
with a "did you mean" when a known key is close; the warnings are printed once per process tree, not
again by the server workers that load the same file.

An ``os.environ/NAME`` value whose variable is unset always stops start-up (all of them are listed):
a setting that may be absent is simply not written. ``database_url`` need not be: the proxy reads
``DATABASE_URL`` from the environment itself and falls back to the SQLite file ``./proxyllm.db``.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from proxyllm.config.schema import (
    REQUEST_DEFAULT_PARAMS,
    BillingConfig,
    CacheParams,
    DeploymentConfig,
    GeneralSettings,
    LitellmParams,
    LitellmSettings,
    ProxyConfig,
    RouterSettings,
)
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.units import UNIT_PRICES

log = logging.getLogger("proxyllm.config")

ENV_PREFIX = "os.environ/"
# Set by the first load of a file in a process tree, so the server's workers do not repeat its warnings.
WARNED_ENV = "PROXYLLM_CONFIG_WARNED"
SECTIONS: dict[str, type[BaseModel]] = {
    "litellm_settings": LitellmSettings,
    "router_settings": RouterSettings,
    "general_settings": GeneralSettings,
    "billing": BillingConfig,
}

Path_ = tuple[str | int, ...]


class ConfigError(Exception):
    """The config cannot be used; one line per problem, each naming the file, the entry and the field."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        if len(problems) == 1:
            text = f"{source}: {problems[0]}"
        else:
            text = f"{source}: {len(problems)} problems\n" + "\n".join(f"  {source}: {p}" for p in problems)
        super().__init__(text)


def load_config(path: str | os.PathLike[str], *, warn: bool = True) -> ProxyConfig:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(file), [f"cannot read config file: {exc.strerror or exc}"]) from None
    marker = str(file.resolve())
    first = os.environ.get(WARNED_ENV) != marker
    config = parse_config(text, source=str(file), warn=warn and first)
    if warn:
        os.environ[WARNED_ENV] = marker
    return config


def parse_config(text: str, *, source: str = "<config>", warn: bool = True) -> ProxyConfig:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"invalid YAML: {exc}"]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"the top level must be a mapping, got {type(raw).__name__}"])

    problems: list[str] = []
    resolver = _Resolver(raw)
    env_vars = raw.get("environment_variables") or {}
    if not isinstance(env_vars, dict):
        problems.append("environment_variables must be a mapping")
        env_vars = {}
    for name, value in env_vars.items():
        # Like LiteLLM: the file's environment_variables are exported before anything reads os.environ/.
        found = resolver.resolve(value, ("environment_variables", str(name)))
        if found is not _UNSET:
            os.environ.setdefault(str(name), str(found))

    resolved = resolver.resolve(raw, ())
    bad_entries = _check_model_entries(resolved, problems)
    try:
        config = ProxyConfig.model_validate(resolved)
    except ValidationError as exc:
        problems.extend(_describe(exc, raw, skip_entries=bad_entries, unset=resolver.unset_paths))
        config = None
    problems = resolver.missing + problems
    if warn:
        for message in unknown_key_warnings(raw):
            log.warning("%s: %s", source, message)
    if problems or config is None:
        raise ConfigError(source, problems or ["invalid config"])
    config.source = source
    return config


class _Unset:
    def __repr__(self) -> str:
        return "<unset>"


_UNSET = _Unset()


class _Resolver:
    """Replaces ``os.environ/NAME`` values, noting every unset variable instead of stopping at the first."""

    def __init__(self, raw: JSONObject) -> None:
        self.raw = raw
        self.missing: list[str] = []
        self.unset_paths: set[Path_] = set()

    def resolve(self, value: JSONValue, path: Path_) -> JSONValue:
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX) :]
            found = os.environ.get(name)
            if found is not None:
                return found
            self.unset_paths.add(path)
            self.missing.append(f"{where(self.raw, path)} refers to environment variable {name}, which is not set")
            return _UNSET
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                found = self.resolve(v, (*path, str(k)))
                if found is not _UNSET:
                    out[k] = found
            return out
        if isinstance(value, list):
            return [None if (v := self.resolve(item, (*path, i))) is _UNSET else v for i, item in enumerate(value)]
        return value


def where(raw: JSONValue, path: Iterable[str | int]) -> str:
    """``model_list[0] (model_name 'a'): litellm_params.api_key`` for the path of a value in the file."""
    parts = list(path)
    prefix = ""
    if len(parts) >= 2 and parts[0] == "model_list" and isinstance(parts[1], int):
        prefix = entry_label(raw, parts[1])
        parts = parts[2:]
        if not parts:
            return prefix
        prefix += ": "
    field = ""
    for part in parts:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    return prefix + (field or "(top level)")


def entry_label(raw: JSONValue, index: int) -> str:
    entries = raw.get("model_list") if isinstance(raw, dict) else None
    entry = entries[index] if isinstance(entries, list) and index < len(entries) else None
    name = entry.get("model_name") if isinstance(entry, dict) else None
    return f"model_list[{index}]" + (f" (model_name {name!r})" if name is not None else "")


def _check_model_entries(raw: JSONObject, problems: list[str]) -> set[int]:
    """Problems of the entries' shape, in words clearer than the schema's; the indices of bad entries."""
    models = raw.get("model_list")
    if models is None:
        return set()
    if not isinstance(models, list):
        problems.append("model_list must be a list of model entries")
        return set()
    bad: set[int] = set()
    for i, entry in enumerate(models):
        label = entry_label(raw, i)
        if not isinstance(entry, dict):
            problems.append(f"{label}: each entry must be a mapping")
            bad.add(i)
            continue
        params = entry.get("litellm_params")
        if not isinstance(params, dict):
            typo = difflib.get_close_matches("litellm_params", [str(k) for k in entry], n=1, cutoff=0.75)
            hint = f" ({typo[0]} is not a known key: a misspelling?)" if typo and typo[0] != "litellm_params" else ""
            problems.append(f"{label}: litellm_params is missing or not a mapping{hint}")
            bad.add(i)
        elif not params.get("model"):
            problems.append(f"{label}: litellm_params.model is missing (expected 'provider/model-name')")
            bad.add(i)
    return bad


def _describe(exc: ValidationError, raw: JSONObject, *, skip_entries: set[int], unset: set[Path_]) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        if len(loc) >= 2 and loc[0] == "model_list" and loc[1] in skip_entries:
            continue  # already reported in clearer words
        if any(loc[: len(p)] == p for p in unset):
            continue  # its environment variable is unset: reported as such
        lines.append(f"{where(raw, loc)}: {err['msg']}")
    return lines


def _suggest(key: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.75)
    return f"; did you mean {close[0]}?" if close else ""


def _known(model: type[BaseModel]) -> set[str]:
    names = set(model.model_fields)
    names.update(f.alias for f in model.model_fields.values() if f.alias)
    return names


# Read from litellm_params' extra keys (server/deployments.py): per-second and per-unit prices, tags, ...
PRICE_PARAMS = frozenset(
    {
        "input_cost_per_second",
        "output_cost_per_second",
        "compute_time",
        "exclude_load_time",
        "tags",
        "region_name",
        "num_retries",
        "supports_responses",
        *UNIT_PRICES,
    }
)


def unknown_key_warnings(raw: JSONObject) -> list[str]:
    """One line per key no part of proxyllm reads, with the known key it is closest to, if any."""
    out: list[str] = []

    def check(values: JSONValue, known: set[str], path: Path_, allowed: Iterable[str] = ()) -> None:
        if not isinstance(values, dict):
            return
        for key in values:
            key = str(key)
            if key in known or key in allowed:
                continue
            out.append(f"{where(raw, (*path, key))} is not a proxyllm setting and is ignored{_suggest(key, known)}")

    top = _known(ProxyConfig) - {"source"}
    check(raw, top, ())
    for section, model in SECTIONS.items():
        check(raw.get(section), _known(model), (section,))
    settings = raw.get("litellm_settings")
    if isinstance(settings, dict):
        check(settings.get("cache_params"), _known(CacheParams), ("litellm_settings", "cache_params"))
    entries = raw.get("model_list")
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        if not isinstance(entry, dict):
            continue
        check(entry, _known(DeploymentConfig), ("model_list", i))
        params_known = _known(LitellmParams)
        check(
            entry.get("litellm_params"),
            params_known,
            ("model_list", i, "litellm_params"),
            REQUEST_DEFAULT_PARAMS | PRICE_PARAMS,
        )
    return out
