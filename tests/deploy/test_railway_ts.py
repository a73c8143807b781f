""".railway/railway.ts type-checks against the `railway` package's own types, and describes the
service this repository deploys: built from Dockerfile.railway, health-checked on /health/liveliness,
Postgres and Redis wired in, secrets as references only.

Runs `npm ci` (which also installs Node 22 from npm: the package wants Node >= 22) in a copy of
.railway/, then `tsc --noEmit`, then renders the project for two environments with Node's own
TypeScript support.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_missing
from tests.deploy.conftest import RAILWAY_CONFIG

pytestmark = pytest.mark.slow  # make test runs it when CI=true (make test-all always)

REPO = Path(__file__).resolve().parents[2]
IAC = REPO / ".railway"
FILES = ("package.json", "package-lock.json", "tsconfig.json", "railway.ts", "render.mjs")
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|DATABASE_URL|REDIS_URL")


def npm(project: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("npm_")}
    env.update(NO_UPDATE_NOTIFIER="1", npm_config_fund="false", npm_config_audit="false")
    return subprocess.run(
        ["npm", *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("npm") is None or shutil.which("node") is None:
        service_missing("Node.js and npm")
    copy = tmp_path_factory.mktemp("railway-iac")
    for name in FILES:
        shutil.copy(IAC / name, copy / name)
    installed = npm(copy, "ci")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return copy


def render(project: Path, environment: str) -> dict[str, Any]:
    result = npm(project, "run", "--silent", "render", "--", environment, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    rendered: dict[str, Any] = json.loads(result.stdout)
    return rendered


def by_address(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["address"]: r for r in definition["resources"]}


def test_node_22_comes_from_npm(project: Path) -> None:
    result = npm(project, "exec", "--", "node", "--version")
    assert result.returncode == 0, result.stderr
    major = int(result.stdout.strip().lstrip("v").split(".")[0])
    assert major >= 22


def test_railway_ts_type_checks(project: Path) -> None:
    result = npm(project, "run", "--silent", "typecheck", timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr


def test_type_check_catches_a_wrong_setting(project: Path, tmp_path: Path) -> None:
    broken = project / "railway.ts"
    original = broken.read_text()
    broken.write_text(original.replace('restartPolicyType: "ON_FAILURE"', 'restartPolicyType: "SOMETIMES"'))
    try:
        result = npm(project, "run", "--silent", "typecheck", timeout=180)
    finally:
        broken.write_text(original)
    assert result.returncode != 0
    assert "SOMETIMES" in result.stdout + result.stderr


def test_the_service_builds_from_the_dockerfile_with_health_check_and_restarts(project: Path) -> None:
    resources = by_address(render(project, "production"))
    assert set(resources) == {"database.postgres", "database.redis", "service.proxyllm"}
    assert resources["database.postgres"]["engine"] == "postgres"
    assert resources["database.redis"]["engine"] == "redis"

    service = resources["service.proxyllm"]
    assert service["build"] == {"builder": "DOCKERFILE", "dockerfilePath": "Dockerfile.railway"}
    assert (REPO / service["build"]["dockerfilePath"]).is_file()
    deploy = service["deploy"]
    assert deploy["healthcheckPath"] == "/health/liveliness"
    assert deploy["restartPolicyType"] == "ON_FAILURE"
    assert deploy["numReplicas"] == 2
    assert "startCommand" not in deploy  # the image's ENTRYPOINT + CMD start it


def test_databases_are_wired_and_secrets_are_references(project: Path) -> None:
    variables = by_address(render(project, "production"))["service.proxyllm"]["variables"]
    assert variables["DATABASE_URL"] == {"type": "reference", "resource": "database.postgres", "output": "DATABASE_URL"}
    assert variables["REDIS_URL"] == {"type": "reference", "resource": "database.redis", "output": "REDIS_URL"}
    for name in ("LITELLM_MASTER_KEY", "TAILSCALE_AUTH_KEY"):
        assert variables[name] == {"type": "sharedReference", "name": name}
    for name, value in variables.items():
        if SECRET_NAME.search(name):
            assert value["type"] != "literal", f"{name} must be a reference, not a value"
    assert variables["TAILSCALE_TAGS"] == {"type": "literal", "value": "tag:railway-proxy"}
    assert variables["TAILNET_HOSTS"] == {"type": "literal", "value": "hugo"}


def test_every_variable_the_railway_config_reads_is_declared(project: Path) -> None:
    variables = by_address(render(project, "production"))["service.proxyllm"]["variables"]
    text = "\n".join(line for line in RAILWAY_CONFIG.read_text().splitlines() if not line.lstrip().startswith("#"))
    for name in re.findall(r"os\.environ/([A-Z0-9_]+)", text):
        assert name in variables, name


def test_other_environments_get_one_replica_and_their_own_tailnet_name(project: Path) -> None:
    service = by_address(render(project, "Staging EU"))["service.proxyllm"]
    assert service["deploy"]["numReplicas"] == 1
    hostname = service["variables"]["TAILSCALE_HOSTNAME"]["value"]
    assert hostname == "railway-proxyllm-staging-eu"
    assert re.fullmatch(r"[a-z0-9-]{1,63}", hostname)
