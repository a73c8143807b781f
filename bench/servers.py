"""The servers under test. A scenario is data: name, command, environment, set-up step (the auth key).

To add a run (cache, metrics, PostgreSQL, ...), add a ``Scenario`` to ``SCENARIOS``: its ``env`` gets
the run's private work directory (for a ``DATABASE_URL``), and its ``setup`` runs once the server
answers and returns the key the load generator sends (``generate_virtual_key`` for a virtual key).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bench import install
from bench.mock import STRIPE_CUSTOMER, UPSTREAM_MODEL, MockUpstream
from bench.procs import Process, free_port, http_call, wait_for_http

MASTER_KEY = "sk-bench-master-key-0123456789"
MODEL = "bench-model"
STREAM_MODEL = "bench-model-stream"
HEALTH_PATH = "/health/liveliness"
# Settings from the caller's shell that would change what is measured.
SCRUBBED_ENV = ("DATABASE_URL", "LITELLM_MASTER_KEY", "PROXYLLM_CONFIG", "PORT", "HOST", "REDIS_URL", "REDIS_HOST")


def write_config(path: Path, mock: MockUpstream) -> None:
    """One LiteLLM-format config for every server: a plain and a streaming model group on the mock."""

    def entry(name: str, api_base: str) -> str:
        return f"""  - model_name: {name}
    litellm_params:
      model: openai/{UPSTREAM_MODEL}
      api_base: {api_base}
      api_key: sk-mock-upstream
"""

    path.write_text(
        "model_list:\n"
        + entry(MODEL, mock.json_api_base)
        + entry(STREAM_MODEL, mock.sse_api_base)
        + f"general_settings:\n  master_key: {MASTER_KEY}\n"
    )


@dataclass(frozen=True)
class Launch:
    """Where one server of the run lives: its config file, port and a private work directory."""

    config: Path
    port: int
    workdir: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


Command = Callable[[Launch], list[str]]
Env = Callable[[Launch], Mapping[str, str]]
Setup = Callable[[str, str], str]  # (base URL, master key) -> the key the load generator sends


def no_env(_: Launch) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True)
class Scenario:
    name: str  # the row in the table
    product: str  # "proxyllm" or "LiteLLM": which side of the ratio
    command: Command
    version: Callable[[], str]
    env: Env = no_env
    setup: Setup | None = None  # None: the load uses the master key
    prepare: Callable[[], object] | None = None  # installs what the command needs
    startup_timeout: float = 180.0
    notes: tuple[str, ...] = field(default=())
    config_extra: str = ""  # appended to the run's config.yaml for this server only


def _listen(launch: Launch) -> list[str]:
    return ["--config", str(launch.config), "--port", str(launch.port), "--host", "127.0.0.1"]


def proxyllm_command(launch: Launch) -> list[str]:
    return [str(Path(sys.executable).parent / "proxyllm"), *_listen(launch)]


def proxyllm_version() -> str:
    return f"{install.package_version(sys.executable, 'proxyllm')} (git {install.git_revision()})"


def proxyllm_sqlite_env(launch: Launch) -> Mapping[str, str]:
    return {"DATABASE_URL": f"sqlite:///{launch.workdir / 'bench.db'}"}


def litellm_command(launch: Launch) -> list[str]:
    return [str(install.LITELLM_VENV / "bin" / "litellm"), *_listen(launch), "--num_workers", "1"]


def litellm_version() -> str:
    return install.package_version(install.LITELLM_VENV / "bin" / "python", "litellm")


def litellm_env(_: Launch) -> Mapping[str, str]:
    # Read the bundled model price map instead of fetching it over the network at start-up.
    return {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}


STRIPE_BASE_ENV = "BENCH_STRIPE_API_BASE"
OTLP_ENDPOINT_ENV = "BENCH_OTLP_ENDPOINT"


def otel_env(launch: Launch) -> Mapping[str, str]:
    """OpenTelemetry tracing on: every request's spans exported over OTLP/HTTP to the mock."""
    return {
        **proxyllm_sqlite_env(launch),
        "OTEL_EXPORTER_OTLP_ENDPOINT": os.environ[OTLP_ENDPOINT_ENV],
        "OTEL_SERVICE_NAME": "proxyllm-bench",
    }


def meters_env(launch: Launch) -> Mapping[str, str]:
    """Stripe Billing Meters on, with the mock standing in for Stripe's API."""
    return {
        **proxyllm_sqlite_env(launch),
        "STRIPE_API_KEY": "sk_test_bench",
        "STRIPE_BILLING_METHOD": "meters",
        "STRIPE_METER_EVENT_NAME": "bench_tokens",
        "STRIPE_METER_RATE": "100000",
        "STRIPE_METER_V2": "true",  # high volume: 100 events per call on the v2 meter event stream
        "STRIPE_API_BASE": os.environ[STRIPE_BASE_ENV],
    }


BENCH_POSTGRES_ENV = "BENCH_POSTGRES_URL"  # a PostgreSQL server the bench may create databases on
BENCH_REDIS_ENV = "BENCH_REDIS_URL"


def _fresh_postgres(launch: Launch) -> str:
    """A new database for this run on BENCH_POSTGRES_URL's server (default: this machine's)."""
    import subprocess

    base = os.environ.get(BENCH_POSTGRES_ENV) or "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"proxyllm_bench_{launch.port}"
    subprocess.run(["psql", base, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], check=True)
    subprocess.run(["psql", base, "-qc", f'CREATE DATABASE "{name}"'], check=True)
    return f"{base.rpartition('/')[0]}/{name}"


def production_env(launch: Launch) -> Mapping[str, str]:
    """The production shape: PostgreSQL, Redis, prepaid billing on (the mock stands in for Stripe)."""
    return {
        "DATABASE_URL": _fresh_postgres(launch),
        "REDIS_URL": os.environ.get(BENCH_REDIS_ENV) or "redis://127.0.0.1:6379/15",
        "STRIPE_API_KEY": "sk_test_bench",
        "STRIPE_USE_PREPAID_BALANCE": "true",
        "STRIPE_API_BASE": os.environ[STRIPE_BASE_ENV],
        "PROXYLLM_SPOOL_DIR": str(launch.workdir / "spool"),
    }


def prepaid_user_key(base_url: str, master_key: str) -> str:
    """A user with $1,000,000 of prepaid credit (an admin adjustment) and a key of that user."""
    reply = http_call(
        "POST",
        base_url + "/stripe/balance/adjust",
        body=json.dumps({"account_id": "bench-prepaid", "amount": "1000000", "reason": "bench"}).encode(),
        headers={"Authorization": f"Bearer {master_key}", "Content-Type": "application/json"},
    )
    if reply.status != 200:
        raise RuntimeError(f"/stripe/balance/adjust answered {reply.status}: {reply.body[:300]!r}")
    body = {"user_id": "bench-prepaid", "models": [MODEL, STREAM_MODEL], "max_budget": 1000000}
    return _key_from(base_url, master_key, "/key/generate", body)


def _key_from(base_url: str, master_key: str, path: str, body: Mapping[str, object]) -> str:
    """POST ``body`` to an admin endpoint that answers with a new ``key``, and return that key."""
    reply = http_call(
        "POST",
        base_url + path,
        body=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {master_key}", "Content-Type": "application/json"},
    )
    if reply.status != 200:
        raise RuntimeError(f"{path} answered {reply.status}: {reply.body[:300]!r}")
    key = json.loads(reply.body).get("key")
    if not isinstance(key, str):
        raise RuntimeError(f"{path} returned no key")
    return key


def metered_user_key(base_url: str, master_key: str) -> str:
    """A key of a user linked to a Stripe customer (``/user/new`` with ``stripe_customer_id``)."""
    body = {"user_id": "bench-metered", "stripe_customer_id": STRIPE_CUSTOMER, "models": [MODEL, STREAM_MODEL]}
    return _key_from(base_url, master_key, "/user/new", body)


def generate_virtual_key(base_url: str, master_key: str) -> str:
    """A fresh key from ``POST /key/generate`` (LiteLLM's API), for a virtual-key scenario's ``setup``."""
    body = {"models": [MODEL, STREAM_MODEL], "key_alias": "bench", "max_budget": 1000}
    return _key_from(base_url, master_key, "/key/generate", body)


SCENARIOS: dict[str, Scenario] = {
    "proxyllm": Scenario(
        name="proxyllm",
        product="proxyllm",
        command=proxyllm_command,
        version=proxyllm_version,
        env=proxyllm_sqlite_env,
        notes=("proxyllm (master key) still logs spend to its SQLite file, as it does by default",),
    ),
    "proxyllm-vkey": Scenario(
        name="proxyllm (virtual key)",
        product="proxyllm",
        command=proxyllm_command,
        version=proxyllm_version,
        env=proxyllm_sqlite_env,
        setup=generate_virtual_key,
        notes=(
            "proxyllm (virtual key): a key from /key/generate (models, max_budget) sent by the load: "
            "key checked, budget reserved, spend logged to SQLite",
        ),
    ),
    "proxyllm-meters": Scenario(
        name="proxyllm (virtual key, meters on)",
        product="proxyllm",
        command=proxyllm_command,
        version=proxyllm_version,
        env=meters_env,
        setup=metered_user_key,
        notes=(
            "proxyllm (virtual key, meters on): STRIPE_BILLING_METHOD=meters, STRIPE_METER_V2=true; each request "
            "queues a meter event in the outbox; a background sender posts them, up to 100 per call, to the "
            "mock standing in for Stripe",
        ),
    ),
    "proxyllm-cache": Scenario(
        name="proxyllm (virtual key, cache on)",
        product="proxyllm",
        command=proxyllm_command,
        version=proxyllm_version,
        env=proxyllm_sqlite_env,
        setup=generate_virtual_key,
        config_extra="litellm_settings:\n  cache: true\n  cache_params: {type: local, ttl: 600}\n",
        notes=(
            "proxyllm (virtual key, cache on): the load repeats one request, so after the first every "
            "request is a cache hit (streams replayed from the cache)",
        ),
    ),
    "proxyllm-pg": Scenario(
        name="proxyllm (PostgreSQL + Redis, master key)",
        product="proxyllm",
        command=proxyllm_command,
        version=proxyllm_version,
        env=production_env,
        notes=("proxyllm (PostgreSQL + Redis, master key): the production shape's baseline",),
    ),
    "proxyllm-prod": Scenario(
        name="proxyllm (PostgreSQL + Redis, virtual key, prepaid)",
        product="proxyllm",
        command=proxyllm_command,
        version=proxyllm_version,
        env=production_env,
        setup=prepaid_user_key,
        notes=(
            "proxyllm (PostgreSQL + Redis, virtual key, prepaid): a user's key with a budget and prepaid credit; "
            "per request: key checked, budget reserved in Redis, prepaid credit reserved in PostgreSQL (one "
            "statement), settled in the spend writer's batch, spend logged",
        ),
    ),
    "proxyllm-otel": Scenario(
        name="proxyllm (virtual key, tracing on)",
        product="proxyllm",
        command=proxyllm_command,
        version=proxyllm_version,
        env=otel_env,
        setup=generate_virtual_key,
        notes=(
            "proxyllm (virtual key, tracing on): OpenTelemetry spans of every request (request, admission, "
            "upstream attempt, stream) batched and exported over OTLP/HTTP protobuf to the mock",
        ),
    ),
    "litellm": Scenario(
        name="LiteLLM",
        product="LiteLLM",
        command=litellm_command,
        version=litellm_version,
        env=litellm_env,
        prepare=install.ensure_litellm,
        notes=("LITELLM_LOCAL_MODEL_COST_MAP=True (no price-map download at start-up)",),
    ),
}
DEFAULT_SCENARIOS = ("proxyllm", "proxyllm-vkey", "proxyllm-meters", "proxyllm-cache", "litellm")


@dataclass
class RunningServer:
    scenario: Scenario
    launch: Launch
    process: Process
    startup_s: float
    auth_key: str

    @property
    def base_url(self) -> str:
        return self.launch.base_url

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.auth_key}", "Content-Type": "application/json"}

    def stop(self) -> None:
        self.process.stop()


def base_env(launch: Launch, scenario: Scenario) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(scenario.env(launch))
    return env


def start_server(scenario: Scenario, *, config: Path, workdir: Path, core: int) -> RunningServer:
    """Spawn pinned to ``core``; start-up time runs from the spawn to the first 200 on the liveness route."""
    workdir.mkdir(parents=True, exist_ok=True)
    if scenario.config_extra:
        own = workdir / "config.yaml"
        own.write_text(config.read_text() + scenario.config_extra)
        config = own
    launch = Launch(config=config, port=free_port(), workdir=workdir)
    env = base_env(launch, scenario)
    # Run inside the work directory so files a server creates (a default SQLite file, ...) stay there.
    process = Process.spawn(scenario.command(launch), core=core, log=workdir / "server.log", env=env, cwd=workdir)
    try:
        startup = wait_for_http(launch.base_url + HEALTH_PATH, timeout=scenario.startup_timeout, process=process)
        key = scenario.setup(launch.base_url, MASTER_KEY) if scenario.setup else MASTER_KEY
    except BaseException:
        process.stop()
        raise
    return RunningServer(scenario, launch, process, startup, key)
