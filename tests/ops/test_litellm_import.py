"""``proxyllm import-litellm`` against a database laid out by LiteLLM's own schema, filled the way LiteLLM
writes it; then the imported key works and is charged to the imported user (PostgreSQL, the real CLI)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml
from nacl.secret import SecretBox

from tests.conftest import MASTER_KEY, ProxyServer, fresh_postgres_database, postgres_template
from tests.fakes.openai_upstream import FakeOpenAI

# The tables the importer reads, as Prisma creates them from LiteLLM's schema.prisma (String[] -> TEXT[],
# Json -> JSONB, Float -> DOUBLE PRECISION, BigInt -> BIGINT, DateTime -> TIMESTAMP(3)).
LITELLM_SCHEMA = """
CREATE TABLE "LiteLLM_BudgetTable" (
  budget_id TEXT PRIMARY KEY, max_budget DOUBLE PRECISION, soft_budget DOUBLE PRECISION,
  max_parallel_requests INTEGER, tpm_limit BIGINT, rpm_limit BIGINT, model_max_budget JSONB,
  budget_duration TEXT, budget_reset_at TIMESTAMP(3), allowed_models TEXT[] DEFAULT '{}',
  created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, created_by TEXT NOT NULL,
  updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, updated_by TEXT NOT NULL);
CREATE TABLE "LiteLLM_UserTable" (
  user_id TEXT PRIMARY KEY, user_alias TEXT, team_id TEXT, sso_user_id TEXT UNIQUE, organization_id TEXT,
  object_permission_id TEXT, password TEXT, teams TEXT[] DEFAULT '{}', user_role TEXT,
  max_budget DOUBLE PRECISION, spend DOUBLE PRECISION NOT NULL DEFAULT 0, user_email TEXT, models TEXT[],
  metadata JSONB NOT NULL DEFAULT '{}', max_parallel_requests INTEGER, tpm_limit BIGINT, rpm_limit BIGINT,
  budget_duration TEXT, budget_reset_at TIMESTAMP(3), allowed_cache_controls TEXT[] DEFAULT '{}',
  policies TEXT[] DEFAULT '{}', model_spend JSONB NOT NULL DEFAULT '{}',
  model_max_budget JSONB NOT NULL DEFAULT '{}', created_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE "LiteLLM_TeamTable" (
  team_id TEXT PRIMARY KEY, team_alias TEXT, organization_id TEXT, object_permission_id TEXT,
  admins TEXT[], members TEXT[], members_with_roles JSONB NOT NULL DEFAULT '{}',
  metadata JSONB NOT NULL DEFAULT '{}', max_budget DOUBLE PRECISION, soft_budget DOUBLE PRECISION,
  spend DOUBLE PRECISION NOT NULL DEFAULT 0, models TEXT[], max_parallel_requests INTEGER, tpm_limit BIGINT,
  rpm_limit BIGINT, budget_duration TEXT, budget_reset_at TIMESTAMP(3), blocked BOOLEAN NOT NULL DEFAULT false,
  created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, model_spend JSONB NOT NULL DEFAULT '{}',
  model_max_budget JSONB NOT NULL DEFAULT '{}', model_id INTEGER UNIQUE);
CREATE TABLE "LiteLLM_TeamMembership" (
  user_id TEXT NOT NULL, team_id TEXT NOT NULL, spend DOUBLE PRECISION NOT NULL DEFAULT 0,
  total_spend DOUBLE PRECISION NOT NULL DEFAULT 0, budget_id TEXT, PRIMARY KEY (user_id, team_id));
CREATE TABLE "LiteLLM_VerificationToken" (
  token TEXT PRIMARY KEY, key_name TEXT, key_alias TEXT, soft_budget_cooldown BOOLEAN NOT NULL DEFAULT false,
  spend DOUBLE PRECISION NOT NULL DEFAULT 0, expires TIMESTAMP(3), models TEXT[],
  aliases JSONB NOT NULL DEFAULT '{}', config JSONB NOT NULL DEFAULT '{}', user_id TEXT, team_id TEXT,
  permissions JSONB NOT NULL DEFAULT '{}', max_parallel_requests INTEGER, metadata JSONB NOT NULL DEFAULT '{}',
  blocked BOOLEAN, tpm_limit BIGINT, rpm_limit BIGINT, max_budget DOUBLE PRECISION, budget_duration TEXT,
  budget_reset_at TIMESTAMP(3), allowed_cache_controls TEXT[] DEFAULT '{}', model_spend JSONB NOT NULL DEFAULT '{}',
  model_max_budget JSONB NOT NULL DEFAULT '{}', budget_id TEXT, organization_id TEXT,
  created_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, created_by TEXT,
  updated_at TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP, updated_by TEXT);
CREATE TABLE "LiteLLM_EndUserTable" (
  user_id TEXT PRIMARY KEY, alias TEXT, spend DOUBLE PRECISION NOT NULL DEFAULT 0, allowed_model_region TEXT,
  default_model TEXT, budget_id TEXT, blocked BOOLEAN NOT NULL DEFAULT false);
CREATE TABLE "LiteLLM_ProxyModelTable" (
  model_id TEXT PRIMARY KEY, model_name TEXT NOT NULL, litellm_params JSONB NOT NULL, model_info JSONB,
  created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, created_by TEXT NOT NULL,
  updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP, updated_by TEXT NOT NULL);
"""
RAW_KEY = "sk-litellm-imported-key-0123456789"
TOKEN = hashlib.sha256(RAW_KEY.encode()).hexdigest()  # how LiteLLM stores a virtual key
LITELLM_SALT = "litellm-salt-key-of-the-old-proxy"


def seal_like_litellm(value: str) -> str:
    box = SecretBox(hashlib.sha256(LITELLM_SALT.encode()).digest())
    return base64.urlsafe_b64encode(bytes(box.encrypt(value.encode()))).decode()


async def fill_litellm(url: str, upstream: FakeOpenAI) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(LITELLM_SCHEMA)
        await conn.execute(
            """INSERT INTO "LiteLLM_BudgetTable" (budget_id, max_budget, rpm_limit, created_by, updated_by)
               VALUES ('shared-budget', 25.0, 9999999999, 'admin', 'admin')"""
        )
        await conn.execute(
            """INSERT INTO "LiteLLM_UserTable" (user_id, user_email, user_role, max_budget, spend, models, metadata)
               VALUES ('ann', 'ann@example.com', 'internal_user', 100.0, 1.5, '{}', '{"plan": "pro"}')"""
        )
        await conn.execute(
            """INSERT INTO "LiteLLM_TeamTable" (team_id, team_alias, admins, members, members_with_roles, models, spend)
               VALUES ('research', 'Research', '{ann}', '{bob}',
                       '[{"role": "admin", "user_id": "ann"}, {"role": "user", "user_id": "bob"}]', '{}', 0.25)"""
        )
        await conn.execute(
            """INSERT INTO "LiteLLM_TeamMembership" (user_id, team_id, spend) VALUES ('carol', 'research', 0)"""
        )
        await conn.execute(
            """INSERT INTO "LiteLLM_VerificationToken"
               (token, key_name, key_alias, spend, models, user_id, team_id, metadata, budget_id)
               VALUES ($1, 'sk-...6789', 'ann-laptop', 0.75, '{}', 'ann', 'research', '{"tags": ["laptop"]}',
                       'shared-budget')""",
            TOKEN,
        )
        await conn.execute(
            """INSERT INTO "LiteLLM_EndUserTable" (user_id, alias, spend, budget_id, blocked)
               VALUES ('customer-7', 'Seven', 3.25, 'shared-budget', true)"""
        )
        params = {
            "model": seal_like_litellm("openai/gpt-fake"),
            "api_base": seal_like_litellm(upstream.api_base),
            "api_key": seal_like_litellm("sk-upstream-secret"),
        }
        await conn.execute(
            """INSERT INTO "LiteLLM_ProxyModelTable" (model_id, model_name, litellm_params, model_info, created_by,
               updated_by) VALUES ('db-model-1', 'imported-model', $1, '{"id": "db-model-1"}', 'admin', 'admin')""",
            json.dumps(params),
        )
    finally:
        await conn.close()


def run_import(config: Path, target: str, source: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxyllm.cli", "import-litellm", "--config", str(config), "--from", source, *extra],
        env={**os.environ, "LITELLM_SALT_KEY": "proxyllm-own-salt-key-0123456789", "DATABASE_URL": target},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_import_a_litellm_database_and_use_its_key(
    proxy_factory: Any, openai_upstream: FakeOpenAI, tmp_path: Path
) -> None:
    async with (
        fresh_postgres_database() as litellm_url,
        fresh_postgres_database(await postgres_template()) as ours,
    ):
        await fill_litellm(litellm_url, openai_upstream)
        text = yaml.safe_dump(
            {
                "model_list": [
                    {
                        "model_name": "gpt-fake",
                        "litellm_params": {
                            "model": "openai/gpt-fake",
                            "api_base": openai_upstream.api_base,
                            "input_cost_per_token": 0.000001,
                            "output_cost_per_token": 0.000002,
                        },
                    }
                ],
                "general_settings": {"master_key": MASTER_KEY, "database_url": ours, "store_model_in_db": True},
            }
        )
        config = tmp_path / "config.yaml"
        config.write_text(text)

        dry = await asyncio.to_thread(
            run_import, config, ours, litellm_url, "--dry-run", "--litellm-salt-key", LITELLM_SALT
        )
        assert dry.returncode == 0, dry.stderr
        assert "would import keys: 1 new" in dry.stdout and "would import models: 1 new" in dry.stdout
        first = await asyncio.to_thread(run_import, config, ours, litellm_url, "--litellm-salt-key", LITELLM_SALT)
        assert first.returncode == 0, first.stderr
        assert "imported users: " in first.stdout and "imported keys: 1 new, 0 updated" in first.stdout
        again = await asyncio.to_thread(run_import, config, ours, litellm_url, "--litellm-salt-key", LITELLM_SALT)
        assert "imported keys: 0 new, 1 updated" in again.stdout  # idempotent

        proxy: ProxyServer = await asyncio.to_thread(
            proxy_factory, text, env={"DATABASE_URL": ours, "LITELLM_SALT_KEY": "proxyllm-own-salt-key-0123456789"}
        )
        async with httpx.AsyncClient(base_url=proxy.url, timeout=30) as client:
            auth = {"authorization": f"Bearer {RAW_KEY}"}  # the key the LiteLLM users already have
            resp = await client.post(
                "/v1/chat/completions",
                headers=auth,
                json={"model": "gpt-fake", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert resp.status_code == 200, resp.text
            via_db_model = await client.post(
                "/v1/chat/completions",
                headers=auth,
                json={"model": "imported-model", "messages": [{"role": "user", "content": "hi"}]},
            )
            assert via_db_model.status_code == 200, via_db_model.text
            admin = {"authorization": f"Bearer {MASTER_KEY}"}
            info = (await client.get("/key/info", params={"key": TOKEN}, headers=admin)).json()["info"]
        assert info["key_alias"] == "ann-laptop" and info["max_budget"] == 25.0  # from the shared budget
        await asyncio.to_thread(proxy.stop)  # flushes the spend
        conn = await asyncpg.connect(ours)
        try:
            user_spend = await conn.fetchval("SELECT spend FROM users WHERE user_id = 'ann'")
            key_spend = await conn.fetchval("SELECT spend FROM keys WHERE token = $1", TOKEN)
            end_user = await conn.fetchval("SELECT count(*) FROM billing_accounts WHERE account_id = 'customer-7'")
            person = await conn.fetchrow("SELECT * FROM end_users WHERE user_id = 'customer-7'")
            budget = await conn.fetchrow("SELECT * FROM budgets WHERE budget_id = 'shared-budget'")
            members = dict(await conn.fetch("SELECT user_id, role FROM team_members WHERE team_id = 'research'"))
        finally:
            await conn.close()
    assert members == {"ann": "admin", "bob": "user", "carol": "user"}
    cost = Decimal("0.000011")  # gpt-fake's 1 prompt + 5 completion tokens; the imported model has no price
    assert Decimal(user_spend) / 10**9 == Decimal("1.5") + cost  # the imported spend, then this proxy's charges
    assert Decimal(key_spend) / 10**9 == Decimal("0.75") + cost
    assert end_user == 1
    assert person["alias"] == "Seven" and person["blocked"] is True and person["budget_id"] == "shared-budget"
    assert Decimal(person["spend"]) / 10**9 == Decimal("3.25")
    assert Decimal(budget["max_budget"]) / 10**9 == 25 and budget["rpm_limit"] == 2**31 - 1  # clamped to int32


async def test_import_refuses_a_database_that_is_not_litellms(tmp_path: Path) -> None:
    async with fresh_postgres_database() as other:
        config = tmp_path / "config.yaml"
        config.write_text(
            yaml.safe_dump({"model_list": [], "general_settings": {"database_url": f"sqlite:///{tmp_path}/p.db"}})
        )
        result = await asyncio.to_thread(run_import, config, f"sqlite:///{tmp_path}/p.db", other)
    assert result.returncode == 1 and "not a LiteLLM database" in result.stderr


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
