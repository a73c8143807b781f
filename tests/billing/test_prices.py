"""Customer prices beside costs: markups and rate cards in the ledger, the meters and the spend report;
compute-time prices from Ollama's durations."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest

from proxyllm.core.admission import prompt_tokens_max
from tests.billing.conftest import BILLING_ENV, FakeStripe, fund, ledger_invariant, settled, unique, user_key
from tests.conftest import ProxyServer, run_in_proxy, standard_config
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import key_client

HI = [{"role": "user", "content": "hi"}]
COST = Decimal("0.000011")  # the fake's 1 prompt + 5 completion tokens on gpt-fake
GPU_MODELS = """
  - model_name: llama-gpu
    litellm_params:
      model: ollama_chat/llama3
      api_base: {base}
      input_cost_per_second: 0.001
      output_cost_per_second: 0.002
      timeout: 60
  - model_name: llama-gpu-warm
    litellm_params:
      model: ollama_chat/llama3
      api_base: {base}
      input_cost_per_second: 0.001
      output_cost_per_second: 0.002
      exclude_load_time: true
      timeout: 60
  - model_name: llama-gpu-total
    litellm_params:
      model: ollama_chat/llama3
      api_base: {base}
      input_cost_per_second: 0.001
      output_cost_per_second: 0.002
      compute_time: total
      timeout: 60
  - model_name: gpt-marked
    litellm_params:
      model: openai/gpt-fake
      api_base: {openai}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
    model_info:
      markup_percent: 10
general_settings:"""


def prices_config(openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> str:
    return standard_config(openai_upstream.api_base, ollama_upstream.url).replace(
        "general_settings:", GPU_MODELS.format(base=ollama_upstream.url, openai=openai_upstream.api_base), 1
    )


@pytest.fixture
def start(
    database_url: str,
    stripe_api: FakeStripe,
    proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
) -> Any:
    """A proxy of its own, for settings in the environment (a global markup, meters)."""

    async def make(**env: str) -> ProxyServer:
        config = prices_config(openai_upstream, ollama_upstream)
        server: ProxyServer = await asyncio.to_thread(
            proxy_factory, config, env={**BILLING_ENV, "DATABASE_URL": database_url, **env}
        )
        return server

    return make


@pytest.fixture(scope="module")
async def shared_proxy(
    module_database_url: str,
    module_stripe_api: FakeStripe,
    module_proxy_factory: Any,
    openai_upstream: FakeOpenAI,
    ollama_upstream: FakeOllama,
) -> ProxyServer:
    """The prices proxy with no settings of its own, shared by the module's tests whose prices are set per
    account or team (each its own account) or per model."""
    server: ProxyServer = await asyncio.to_thread(
        module_proxy_factory,
        prices_config(openai_upstream, ollama_upstream),
        env={**BILLING_ENV, "DATABASE_URL": module_database_url},
    )
    return server


async def chat(proxy: ProxyServer, key: str, model: str = "gpt-fake", **extra: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=proxy.url, timeout=30, headers={"authorization": f"Bearer {key}"}) as c:
        return await c.post("/v1/chat/completions", json={"model": model, "messages": HI, **extra})


async def usage_amounts(admin: httpx.AsyncClient, user: str, proxy: ProxyServer) -> list[Decimal]:
    await settled(admin, user, proxy)
    entries = (await admin.get("/stripe/transactions", params={"account_id": user})).json()["data"]
    return [Decimal(repr(e["amount"])) for e in entries if e["kind"] == "usage"]


async def spend_log(proxy: ProxyServer, request_id: str) -> tuple[Decimal, Decimal | None]:
    from proxyllm.db.tables import SpendLog

    async def read() -> tuple[Decimal, Decimal | None] | None:
        async with proxy.runtime.db.session() as session:
            row = await session.get(SpendLog, request_id)
            return None if row is None else (row.spend, row.price)

    for _ in range(200):
        found = await asyncio.to_thread(run_in_proxy, proxy, read())
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"no spend log for {request_id}")


async def test_global_markup_in_ledger_spend_log_and_report(start: Any) -> None:
    proxy = await start(PROXYLLM_MARKUP_PERCENT="50")
    async with key_client(proxy) as admin:
        key = await user_key(admin, "marked")
        await fund(admin, "marked", "1")
        resp = await chat(proxy, key, max_tokens=10)
        assert resp.status_code == 200, resp.text
        assert await usage_amounts(admin, "marked", proxy) == [-COST * Decimal("1.5")]
        spend, price = await spend_log(proxy, resp.headers["x-litellm-call-id"])
        assert (spend, price) == (COST, COST * Decimal("1.5"))  # LiteLLM's spend stays the cost
        report = (await admin.get("/global/spend/report", params={"group_by": "model"})).json()
        line = report[-1]["models"][0]
        assert line["model"] == "gpt-fake" and line["total_spend"] == float(COST)
        assert line["total_cost"] == float(COST) and line["total_revenue"] == float(COST * Decimal("1.5"))
        assert line["margin"] == float(COST / 2)
        assert report[-1]["total_margin"] == float(COST / 2)
        await ledger_invariant(proxy)


async def test_group_markup_and_account_markup(shared_proxy: ProxyServer) -> None:
    proxy = shared_proxy
    user = unique("grouped")
    async with key_client(proxy) as admin:
        key = await user_key(admin, user)
        await fund(admin, user, "1")
        assert (await chat(proxy, key, "gpt-marked", max_tokens=10)).status_code == 200
        assert await usage_amounts(admin, user, proxy) == [-COST * Decimal("1.1")]
        # The account's own markup comes before the model group's.
        resp = await admin.post("/billing/pricing", json={"account_id": user, "markup_percent": 200, "rate_card": None})
        assert resp.status_code == 200, resp.text
        assert resp.json()["markup_percent"] == "200"
        assert (await chat(proxy, key, "gpt-marked", max_tokens=10)).status_code == 200
        assert sorted(await usage_amounts(admin, user, proxy)) == [-COST * 3, -COST * Decimal("1.1")]
        mine = await admin.get("/billing/pricing", params={"account_id": user})
        assert mine.json()["markup_percent"] == "200"


async def test_the_reservation_is_at_the_worst_case_price(start: Any) -> None:
    proxy = await start(PROXYLLM_MARKUP_PERCENT="100")
    worst_cost = prompt_tokens_max({"messages": HI}) * Decimal("0.000001") + 10 * Decimal("0.000002")
    async with key_client(proxy) as admin:
        key = await user_key(admin, "bound")
        await fund(admin, "bound", str(worst_cost))  # covers the worst-case cost, not the worst-case price
        refused = await chat(proxy, key, max_tokens=10)
        assert refused.status_code == 402, refused.text
        assert f"{worst_cost * 2:.6f}" in refused.json()["error"]["message"]
        await fund(admin, "bound", str(worst_cost))
        assert (await chat(proxy, key, max_tokens=10)).status_code == 200
        assert await usage_amounts(admin, "bound", proxy) == [-COST * 2]


async def test_rate_card_prices_in_ledger_and_meters(start: Any, stripe_api: FakeStripe) -> None:
    proxy = await start(
        STRIPE_BILLING_METHOD="prepaid+meters",
        STRIPE_METER_EVENT_NAME="llm_cost",
        STRIPE_METER_VALUE="cost",
        STRIPE_METER_RATE="2000",
    )
    async with key_client(proxy) as admin:
        card = {
            "models": {
                "gpt-fake": {
                    "input_per_token": 0.00001,
                    "output_per_token": "0.00002",
                    "per_request": "0.001",
                    "per_image": "0.01",
                }
            }
        }
        resp = await admin.put("/billing/rate_cards/gold", json=card)
        assert resp.status_code == 200, resp.text
        assert resp.json()["models"]["gpt-fake"]["per_request"] == "0.001"
        made = await admin.post("/user/new", json={"user_id": "carded", "stripe_customer_id": "cus_linked"})
        key = made.json()["key"]
        await fund(admin, "carded", "1")
        assigned = await admin.post("/billing/pricing", json={"account_id": "carded", "rate_card": "gold"})
        assert assigned.status_code == 200, assigned.text
        assert (await chat(proxy, key, max_tokens=10)).status_code == 200
        price = Decimal("0.00001") + 5 * Decimal("0.00002") + Decimal("0.001")
        assert await usage_amounts(admin, "carded", proxy) == [-price]
        # A model not on the card is charged its cost (no markup configured).
        assert (await chat(proxy, key, "llama3", max_tokens=10)).status_code == 200
        llama = 7 * Decimal("0.0000005") + 5 * Decimal("0.0000005")
        assert sorted(await usage_amounts(admin, "carded", proxy)) == sorted([-price, -llama])
        for _ in range(200):
            if len(stripe_api.meter_events) >= 2:
                break
            await asyncio.sleep(0.05)
        values = sorted(int(e["payload[value]"]) for e in stripe_api.meter_events)
        assert values == sorted([int(price * 1_000_000), int(llama * 1_000_000)])  # micro-dollars of the price
        # An image in the request is priced per image.
        picture = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
        image = [{"role": "user", "content": [picture]}]
        async with httpx.AsyncClient(base_url=proxy.url, timeout=30, headers={"authorization": f"Bearer {key}"}) as c:
            resp = await c.post("/v1/chat/completions", json={"model": "gpt-fake", "messages": image, "max_tokens": 5})
        assert resp.status_code == 200, resp.text
        amounts = await usage_amounts(admin, "carded", proxy)
        assert min(amounts) <= -(Decimal("0.01") + Decimal("0.001"))
        report = (await admin.get("/global/spend/report", params={"group_by": "model"})).json()
        gpt = next(m for m in report[-1]["models"] if m["model"] == "gpt-fake")
        assert gpt["total_revenue"] > gpt["total_cost"] and gpt["margin"] > 0
        await ledger_invariant(proxy)


async def test_pricing_input_is_checked(shared_proxy: ProxyServer) -> None:
    proxy = shared_proxy
    user = unique("hostile")
    async with key_client(proxy) as admin:
        key = await user_key(admin, user)
        bad_cards = [
            ("bad name!", {"models": {}}),
            ("ok", {"models": {"gpt-fake": {"input_per_token": -1}}}),
            ("ok", {"models": {"gpt-fake": {"input_per_token": "NaN"}}}),
            ("ok", {"models": {"gpt-fake": {"input_per_token": "1e-12"}}}),
            ("ok", {"models": {"gpt-fake": {"per_second": 10**9}}}),
            ("ok", {"models": {"gpt-fake": {"surprise": 1}}}),
            ("ok", {"models": {"a\u0000b": {}}}),
            ("ok", {"models": "gpt-fake"}),
        ]
        for name, body in bad_cards:
            resp = await admin.put(f"/billing/rate_cards/{name}", json=body)
            assert resp.status_code == 400, (name, body, resp.text)
            assert resp.json()["error"]["type"] == "invalid_request_error"
        for body in (
            {"account_id": user, "markup_percent": "lots"},
            {"account_id": user, "markup_percent": -150},
            {"account_id": user, "markup_percent": "Infinity"},
            {"account_id": user, "rate_card": "../etc"},
            {"account_id": "", "markup_percent": 1},
        ):
            resp = await admin.post("/billing/pricing", json=body)
            assert resp.status_code == 400, (body, resp.text)
        missing = await admin.post("/billing/pricing", json={"account_id": user, "rate_card": "nope"})
        assert missing.status_code == 404
        async with httpx.AsyncClient(base_url=proxy.url, headers={"authorization": f"Bearer {key}"}) as customer:
            denied = await customer.post("/billing/pricing", json={"account_id": user, "markup_percent": -100})
            assert denied.status_code == 403
            assert (await customer.put("/billing/rate_cards/x", json={"models": {}})).status_code == 403
            assert (await customer.get("/billing/pricing")).status_code == 200


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # load 2 s + prompt 1 s at 0.001/s, evaluation 3 s at 0.002/s
        ("llama-gpu", Decimal("0.003") + Decimal("0.006")),
        # the cold start's load left out
        ("llama-gpu-warm", Decimal("0.001") + Decimal("0.006")),
        # total 6.5 s: 3.5 s of input (everything but the evaluation) + 3 s of output
        ("llama-gpu-total", Decimal("0.0035") + Decimal("0.006")),
    ],
)
async def test_compute_time_price_from_ollama_durations(
    shared_proxy: ProxyServer, ollama_upstream: FakeOllama, model: str, expected: Decimal
) -> None:
    ollama_upstream.durations = {
        "load_duration": 2_000_000_000,
        "prompt_eval_duration": 1_000_000_000,
        "eval_duration": 3_000_000_000,
        "total_duration": 6_500_000_000,
    }
    proxy = shared_proxy
    user = unique("gpu")
    async with key_client(proxy) as admin:
        key = await user_key(admin, user)
        await fund(admin, user, "1")
        resp = await chat(proxy, key, model, max_tokens=10)
        assert resp.status_code == 200, resp.text
        assert await usage_amounts(admin, user, proxy) == [-expected]
        spend, price = await spend_log(proxy, resp.headers["x-litellm-call-id"])
        assert spend == expected == price
        # The reservation covered the longest call the deployment allows (60 s at 0.003/s).
        refused_at = Decimal("0.18")
        await fund(admin, user, str(refused_at - 1 + expected - Decimal("0.000001")))
        assert (await chat(proxy, key, model, max_tokens=10)).status_code == 402


async def test_a_team_markup_prices_its_members(shared_proxy: ProxyServer) -> None:
    proxy = shared_proxy
    team = unique("resellers")
    user = unique("member")
    async with key_client(proxy) as admin:
        assert (await admin.post("/team/new", json={"team_id": team})).status_code == 200
        made = await admin.post("/key/generate", json={"user_id": user, "team_id": team})
        assert made.status_code == 200, made.text
        await fund(admin, user, "1")
        team = await admin.post(
            "/billing/pricing", json={"account_type": "team", "account_id": team, "markup_percent": "25"}
        )
        assert team.status_code == 200, team.text
        assert (await chat(proxy, made.json()["key"], max_tokens=10)).status_code == 200
        assert await usage_amounts(admin, user, proxy) == [-COST * Decimal("1.25")]
