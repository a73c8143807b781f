"""Dependencies point down: every import between the proxy's packages goes to a lower layer
(docs/architecture.md draws the same graph). A new upward import fails here with the file and line."""

from __future__ import annotations

import ast
from pathlib import Path

import proxyllm

ROOT = Path(proxyllm.__file__).parent

# Lowest first. A package may import its own modules and any package in a LOWER layer, never one beside
# or above it; type-only imports (under TYPE_CHECKING) and imports inside functions count too.
LAYERS: list[set[str]] = [
    {"core"},  # gateway, router, request context, provider protocol and registry, errors, pricing
    {"config", "state", "db", "providers", "tailnet"},  # configuration, shared state, storage, adapters
    {"accounts"},  # keys, users, teams, spend writer, authentication
    {"billing"},  # Stripe: prepaid ledger, meters, subscriptions, prices
    {"limits", "cache", "observability"},  # rate limits and budgets, response cache, logs/metrics/tracing
    {"ops"},  # operator controls: models in the database, IP allowlist, audit, LiteLLM import
    {"admin"},  # admin services (one unit of work per change) and the permission table
    {"frontends", "ui"},  # client APIs (OpenAI, Anthropic, Responses, ...), the dashboard
    {"server"},  # composition: builds every subsystem from the parts it needs; the ASGI app and admin routes
    {"cli"},
    {"__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _package(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return parts[0]


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == "proxyllm":
                names = [f"proxyllm.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [(node.lineno, name) for name in names if name.startswith("proxyllm.")]
    return found


def test_every_package_has_a_layer() -> None:
    packages = {_package(p) for p in ROOT.rglob("*.py")} - {"__init__"}
    assert packages <= set(RANK), f"give these a layer in LAYERS: {sorted(packages - set(RANK))}"


def test_imports_point_down() -> None:
    upward: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        source = _package(path)
        if source == "__init__":
            continue
        for line, name in _imports(ast.parse(path.read_text(), str(path))):
            target = name.split(".")[1]
            if target == source or target == "__version__":
                continue
            if RANK.get(target, -1) >= RANK[source]:
                upward.append(f"{path.relative_to(ROOT.parent)}:{line}: {source} imports {name}")
    assert not upward, "imports that point up or sideways:\n" + "\n".join(upward)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    tree = ast.parse("from proxyllm.server.runtime import Runtime\nimport proxyllm.core.errors\n")
    assert [name for _, name in _imports(tree)] == ["proxyllm.server.runtime", "proxyllm.core.errors"]
    assert RANK["server"] > RANK["core"]


def _any_uses(tree: ast.AST) -> list[int]:
    """Lines that name ``typing.Any`` (imported, or as ``typing.Any``)."""
    lines = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module in ("typing", "typing_extensions")
        and any(alias.name == "Any" for alias in node.names)
    ]
    lines += [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "Any" and isinstance(node.value, ast.Name)
        and node.value.id in ("typing", "t")
    ]
    return lines


def test_any_only_at_the_json_boundary() -> None:
    """``Any`` stands for parsed JSON of unknown shape only, and is spelled ``JSONValue`` / ``JSONObject``
    (proxyllm/core/jsontypes.py); everything else has a real type."""
    found = [
        f"{path.relative_to(ROOT.parent)}:{line}"
        for path in sorted(ROOT.rglob("*.py"))
        if path != ROOT / "core" / "jsontypes.py"
        for line in _any_uses(ast.parse(path.read_text(), str(path)))
    ]
    assert not found, "typing.Any outside core/jsontypes.py (use JSONValue/JSONObject, or a real type):\n" + "\n".join(
        found
    )
    assert _any_uses(ast.parse("from typing import Any, cast\nimport typing\nx: typing.Any\n")) == [1, 3]
