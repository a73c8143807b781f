"""Budgets at the customer's price (``billing.budgets_at_price``): keys, users and teams refused once what
their requests were charged reaches ``max_budget``; ``spend_price`` beside ``spend`` in the views; exact
under concurrency (in process and through Redis); budget resets zero both. On PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import ROUND_CEILING, Decimal
from types import ModuleType
from typing import Any

import httpx
import openai
import pytest
import redis

from proxyllm.core.admission import prompt_tokens_max
from proxyllm.db.types import QUANTUM
from tests.billing.conftest import BILLING_ENV, FakeStripe, fund, settled, user_key
from tests.conftest import (
    ProxyServer,
    fresh_postgres_database,
    postgres_template,
    run_in_proxy,
    standard_config,
)
from tests.fakes.base import Action
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers import eventually, new_key, sdk

HI = [{"role": "user", "content": "hi"}]
COST = Decimal("0.000011")  # the fake's 1 prompt + 5 completion tokens on gpt-fake
PRICE = COST * Decimal("1.5")  # PROXYLLM_MARKUP_PERCENT=50
MARKED_PRICE = COST * Decimal("1.1")  # gpt-marked: model_info.markup_percent 10 (before the global one)
MAX_TOKENS = 10
# The admission step's worst-case cost of one request (max_tokens=10).
WORST_COST = prompt_tokens_max({"messages": HI}) * Decimal("0.000001") + MAX_TOKENS * Decimal("0.000002")
# With a 300% markup a request's real price is above the worst-case COST: budgets that reserved costs
# while counting prices would admit too many requests at once.
STEEP = "300"
STEEP_PRICE = COST * 4
WORST_STEEP_PRICE = (WORST_COST * 4).quantize(QUANTUM, rounding=ROUND_CEILING)
MARKED_MODEL = """
  - model_name: gpt-marked
    litellm_params:
      model: openai/gpt-fake
      api_base: {openai}
      input_cost_per_token: 0.000001
      output_cost_per_token: 0.000002
    model_info:
      markup_percent: 10
general_settings:"""
AT_PRICE = "billing:\n  budgets_at_price: true\n"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_postgres_database(await postgres_template()) as url:
        yield url


@pytest.fixture
def start(pg_url: str, proxy_factory: Any, openai_upstream: FakeOpenAI, ollama_upstream: FakeOllama) -> Any:
    async def make(*, at_price: bool, extra: str = "", markup: str = "50", **env: str) -> ProxyServer:
        # ``extra`` continues router_settings, the last section of the standard config.
        config = standard_config(
            openai_upstream.api_base, ollama_upstream.url, extra + (AT_PRICE if at_price else "")
        ).replace("general_settings:", MARKED_MODEL.format(openai=openai_upstream.api_base), 1)
        env = {"DATABASE_URL": pg_url, "PROXYLLM_MARKUP_PERCENT": markup, **env}
        server: ProxyServer = await asyncio.to_thread(proxy_factory, config, env=env)
        return server

    return make


async def flush(proxy: ProxyServer) -> None:
    assert await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.flush())


def dollars(value: float) -> Decimal:
    return Decimal(repr(value))


async def key_info(admin: httpx.AsyncClient, token: str) -> dict[str, Any]:
    resp = await admin.get("/key/info", params={"key": token})
    assert resp.status_code == 200, resp.text
    info: dict[str, Any] = resp.json()["info"]
    return info


async def charged(client: openai.AsyncOpenAI, model: str = "gpt-fake") -> str | None:
    """None when served; the budget error's message when refused."""
    try:
        await client.chat.completions.create(model=model, messages=HI, max_tokens=MAX_TOKENS)
    except openai.BadRequestError as exc:
        assert exc.type == "budget_exceeded", exc.message
        return exc.message
    return None


@pytest.mark.parametrize("at_price", [True, False], ids=["at-price", "at-cost"])
async def test_a_key_budget_counts_the_price_when_on_and_the_cost_when_off(
    at_price: bool, start: Any, admin_for: Any, openai_upstream: FakeOpenAI
) -> None:
    proxy = await start(at_price=at_price)
    assert proxy.runtime.budgets_at_price is at_price
    admin = admin_for(proxy)
    budget = Decimal("0.00004")  # three prices (0.0000495) pass it, three costs (0.000033) do not
    key = await new_key(admin, max_budget=str(budget))
    client = sdk(proxy, key["key"])
    served = 0
    while (refusal := await charged(client)) is None:
        served += 1
        assert served < 10
    assert served == (3 if at_price else 4)
    counted = PRICE * served if at_price else COST * served
    assert f"Current cost: {counted.normalize():f}, Max budget: {budget}" in refusal
    sent = len(openai_upstream.requests)
    assert await charged(client) is not None and len(openai_upstream.requests) == sent  # refused before it
    await flush(proxy)
    info = await key_info(admin, key["token"])
    assert dollars(info["spend"]) == COST * served  # LiteLLM's spend stays the cost, either way
    assert dollars(info["spend_price"]) == PRICE * served


async def test_price_fields_equal_the_spend_logs_prices(
    start: Any, admin_for: Any, openai_upstream: FakeOpenAI
) -> None:
    proxy = await start(at_price=True)
    admin = admin_for(proxy)
    assert (await admin.post("/team/new", json={"team_id": "t-priced", "max_budget": 1})).status_code == 200
    resp = await admin.post(
        "/user/new", json={"user_id": "u-priced", "team_id": "t-priced", "max_budget": 1, "auto_create_key": False}
    )
    assert resp.status_code == 200, resp.text
    k1 = await new_key(admin, user_id="u-priced", team_id="t-priced", max_budget=1)
    k2 = await new_key(admin, user_id="u-priced", team_id="t-priced")
    k3 = await new_key(admin, team_id="t-priced")
    for key, model in [(k1, "gpt-fake"), (k1, "gpt-fake"), (k1, "gpt-marked"), (k2, "gpt-marked"), (k3, "gpt-fake")]:
        assert await charged(sdk(proxy, key["key"]), model) is None
    openai_upstream.fail(400, "bad request upstream")  # refused upstream: priced at nothing
    with pytest.raises(openai.BadRequestError):
        await sdk(proxy, k2["key"]).chat.completions.create(model="gpt-fake", messages=HI, max_tokens=MAX_TOKENS)
    await flush(proxy)

    async def logged(**query: str) -> Decimal:
        rows = (await admin.get("/spend/logs", params=query)).json()
        return sum((dollars(r["price"]) for r in rows), Decimal(0))

    k1_price = await logged(api_key=k1["token"])
    assert k1_price == PRICE * 2 + MARKED_PRICE
    assert dollars((await key_info(admin, k1["token"]))["spend_price"]) == k1_price
    assert dollars((await key_info(admin, k2["token"]))["spend_price"]) == await logged(api_key=k2["token"])
    user = (await admin.get("/user/info", params={"user_id": "u-priced"})).json()
    assert dollars(user["user_info"]["spend_price"]) == await logged(user_id="u-priced") == k1_price + MARKED_PRICE
    assert dollars(user["user_info"]["spend"]) == COST * 4
    assert {k["token"]: dollars(k["spend_price"]) for k in user["keys"]}[k1["token"]] == k1_price
    team = (await admin.get("/team/info", params={"team_id": "t-priced"})).json()
    team_price = await logged(team_id="t-priced")
    assert team_price == PRICE * 3 + MARKED_PRICE * 2
    assert dollars(team["team_info"]["spend_price"]) == team_price
    assert dollars(team["team_info"]["spend"]) == COST * 5
    listed = (await admin.get("/key/list", params={"team_id": "t-priced", "return_full_object": "true"})).json()
    assert {k["token"]: dollars(k["spend_price"]) for k in listed["keys"]}[k3["token"]] == PRICE
    total = (await admin.get("/global/spend")).json()
    assert dollars(total["spend_price"]) == team_price and dollars(total["spend"]) == COST * 5


async def concurrent_burst(clients: list[openai.AsyncOpenAI], n: int) -> int:
    results = await asyncio.gather(*(charged(clients[i % len(clients)]) for i in range(n)))
    return sum(r is None for r in results)


BUDGET = Decimal("0.0001")  # between two and three steep prices (0.000088, 0.000132)


def within_budget(spent: Decimal, served: int) -> None:
    assert WORST_COST < STEEP_PRICE < WORST_STEEP_PRICE and served >= 1
    assert spent == STEEP_PRICE * served
    assert spent <= BUDGET + WORST_STEEP_PRICE  # never more than one request's worst case beyond the budget
    # Reservations at the worst-case price: every admission left room for what was in flight, so only
    # the last request admitted can pass the budget, by less than its own price.
    assert spent < BUDGET + STEEP_PRICE, (spent, served)


async def test_concurrent_requests_cannot_overspend_a_priced_budget(
    start: Any, admin_for: Any, openai_upstream: FakeOpenAI
) -> None:
    proxy = await start(at_price=True, markup=STEEP)
    admin = admin_for(proxy)
    key = await new_key(admin, max_budget=str(BUDGET))
    openai_upstream.push(*[Action(delay=0.2) for _ in range(20)])
    served = await concurrent_burst([sdk(proxy, key["key"])], 20)
    await flush(proxy)
    info = await key_info(admin, key["token"])
    within_budget(dollars(info["spend_price"]), served)
    assert dollars(info["spend"]) == COST * served
    # Then one at a time: served until the priced spend reaches the budget, and no further.
    while await charged(sdk(proxy, key["key"])) is None:
        served += 1
    await flush(proxy)
    spent = dollars((await key_info(admin, key["token"]))["spend_price"])
    within_budget(spent, served)
    assert spent >= BUDGET


async def test_two_replicas_share_a_priced_budget_through_redis(
    start: Any, admin_for: Any, openai_upstream: FakeOpenAI, redis_url: str
) -> None:
    namespace = f"proxyllm-test-{uuid.uuid4().hex[:12]}"
    extra = f"  redis_url: {redis_url}\n  redis_namespace: {namespace}\n"
    replicas = [await start(at_price=True, extra=extra, markup=STEEP) for _ in range(2)]
    assert all(p.runtime.shared_state.shared for p in replicas)
    client = redis.Redis.from_url(redis_url)
    try:
        admin = admin_for(replicas[0])
        key = await new_key(admin, max_budget=str(BUDGET))
        openai_upstream.push(*[Action(delay=0.2) for _ in range(20)])
        served = await concurrent_burst([sdk(p, key["key"]) for p in replicas], 20)
        for proxy in replicas:
            await flush(proxy)
        spent = dollars((await key_info(admin, key["token"]))["spend_price"])
        within_budget(spent, served)
        hashes = [k.decode() for k in client.scan_iter(f"{namespace}:budget:*")]
        assert hashes == [f"{namespace}:budget:price:key:{key['token']}:0"]  # amounts counted at the price
        await eventually(lambda: int(client.hget(hashes[0], "r") or 0) == 0)  # settled just after the responses
        assert int(client.hget(hashes[0], "s")) == int(spent * 10**9)
    finally:
        keys = list(client.scan_iter(f"{namespace}*"))
        if keys:
            client.delete(*keys)
        client.close()


async def test_a_budget_reset_zeroes_the_cost_and_the_price(start: Any, admin_for: Any, clock: ModuleType) -> None:
    proxy = await start(at_price=True)
    admin = admin_for(proxy)
    key = await new_key(admin, max_budget=str(PRICE), budget_duration="3s")  # one price; more than one cost
    client = sdk(proxy, key["key"])
    assert await charged(client) is None
    assert await charged(client) is not None  # the cost (0.000011) is under the budget, the price is not
    await flush(proxy)
    before = await key_info(admin, key["token"])
    assert (dollars(before["spend"]), dollars(before["spend_price"])) == (COST, PRICE)
    clock.advance(3.2)
    # (the writer's own periodic reset may get there first: either way the row is reset once)
    await asyncio.to_thread(run_in_proxy, proxy, proxy.runtime.spend.reset_budgets())
    after = await key_info(admin, key["token"])
    assert after["spend"] == 0 and after["spend_price"] == 0
    assert after["budget_reset_at"] > before["budget_reset_at"]
    assert await charged(client) is None  # a new period: served again


async def test_a_reloaded_key_counts_its_priced_spend(start: Any, admin_for: Any) -> None:
    """The key cache loads ``spend_price`` as the budget's spend (another replica's view of it)."""
    proxy = await start(at_price=True)
    admin = admin_for(proxy)
    key = await new_key(admin, max_budget=str(PRICE * 2))
    assert await charged(sdk(proxy, key["key"])) is None
    await flush(proxy)
    other = await start(at_price=True)  # a second replica on the same database: it reads the rows
    assert await charged(sdk(other, key["key"])) is None
    assert await charged(sdk(other, key["key"])) is not None  # 2 prices spent; 2 costs would not be


async def test_a_customer_markup_prices_its_budget_like_its_prepaid_ledger(
    start: Any, admin_for: Any, stripe_api: FakeStripe
) -> None:
    """With billing on, the price is the customer's own (here its account's markup): its budget and its
    prepaid ledger count the same amounts."""
    proxy = await start(at_price=True, markup="", **BILLING_ENV)
    admin = admin_for(proxy)
    budget = Decimal("0.00005")  # two prices at +200% (0.000066) pass it; four costs (0.000044) do not
    resp = await admin.post(
        "/user/new", json={"user_id": "cust-p", "max_budget": str(budget), "auto_create_key": False}
    )
    assert resp.status_code == 200, resp.text
    await fund(admin, "cust-p", "1")
    resp = await admin.post("/billing/pricing", json={"account_id": "cust-p", "markup_percent": 200, "rate_card": None})
    assert resp.status_code == 200, resp.text
    client = sdk(proxy, await user_key(admin, "cust-p"))
    served = 0
    while await charged(client) is None:
        served += 1
        assert served < 10
    assert served == 2
    await settled(admin, "cust-p", proxy)
    entries = (await admin.get("/stripe/transactions", params={"account_id": "cust-p"})).json()["data"]
    ledger = [-dollars(e["amount"]) for e in entries if e["kind"] == "usage"]
    assert ledger == [COST * 3] * 2
    await flush(proxy)
    user = (await admin.get("/user/info", params={"user_id": "cust-p"})).json()["user_info"]
    assert dollars(user["spend_price"]) == sum(ledger) and dollars(user["spend"]) == COST * 2


def test_the_setting_comes_from_the_config_else_the_environment() -> None:
    from proxyllm.config.loader import ConfigError, parse_config, unknown_key_warnings
    from proxyllm.core.errors import StartupError
    from proxyllm.server.billing_wiring import budgets_at_price_setting

    plain = parse_config("model_list: []\n", warn=False)
    on = parse_config("model_list: []\nbilling:\n  budgets_at_price: true\n", warn=False)
    off = parse_config("model_list: []\nbilling:\n  budgets_at_price: false\n", warn=False)
    assert budgets_at_price_setting(plain, {}) is False
    assert budgets_at_price_setting(on, {}) is True
    assert budgets_at_price_setting(plain, {"PROXYLLM_BUDGETS_AT_PRICE": "true"}) is True
    assert budgets_at_price_setting(plain, {"PROXYLLM_BUDGETS_AT_PRICE": "0"}) is False
    assert budgets_at_price_setting(off, {"PROXYLLM_BUDGETS_AT_PRICE": "true"}) is False  # the file decides
    with pytest.raises(StartupError, match="PROXYLLM_BUDGETS_AT_PRICE must be true or false"):
        budgets_at_price_setting(plain, {"PROXYLLM_BUDGETS_AT_PRICE": "sometimes"})
    with pytest.raises(ConfigError, match=r"billing\.budgets_at_price: Input should be a valid boolean"):
        parse_config("model_list: []\nbilling:\n  budgets_at_price: [1]\n", warn=False)
    warnings = unknown_key_warnings({"billing": {"budgets_at_prize": True}})
    assert len(warnings) == 1 and "did you mean budgets_at_price?" in warnings[0]


async def test_the_migration_starts_priced_spend_at_the_spend_and_bounds_it() -> None:
    import sqlalchemy as sa
    from alembic import command

    from proxyllm.db import Database
    from proxyllm.db.migrate import alembic_config
    from proxyllm.db.url import to_async_url

    async with fresh_postgres_database() as url:
        db = Database(to_async_url(url))
        try:
            async with db.engine.begin() as conn:
                await conn.run_sync(lambda c: command.upgrade(alembic_config(c), "0001"))
                await conn.execute(
                    sa.text(
                        "INSERT INTO keys (token, key_name, spend, models, tags, metadata)"
                        " VALUES (:t, 'sk-...', :s, '[]', '[]', '{}')"
                    ),
                    [{"t": "a" * 64, "s": 12_345}, {"t": "b" * 64, "s": -5}],
                )
                await conn.execute(
                    sa.text("INSERT INTO teams (team_id, spend, models, metadata) VALUES ('t1', 7, '[]', '{}')")
                )
            await db.migrate()
            async with db.engine.begin() as conn:
                rows = dict((await conn.execute(sa.text("SELECT token, spend_price FROM keys"))).all())
                assert rows == {"a" * 64: 12_345, "b" * 64: 0}
                assert (await conn.execute(sa.text("SELECT spend_price FROM teams"))).scalar_one() == 7
            for bad in (-1, 10**18 + 1):
                with pytest.raises(sa.exc.IntegrityError, match="ck_keys_spend_price"):
                    async with db.engine.begin() as conn:
                        await conn.execute(sa.text("UPDATE keys SET spend_price = :v"), {"v": bad})
        finally:
            await db.close()


async def test_charges_journaled_at_shutdown_keep_their_price(pg_url: str, tmp_path: Any) -> None:
    """Cost and price queued while the database is gone are journaled together and replayed together; a
    charge journaled before prices were kept (no price) counts its cost as its price."""
    from proxyllm.accounts.writer import CHARGE, SpendWriter
    from proxyllm.db import Database
    from proxyllm.db.spool import Spool
    from proxyllm.db.tables import Key
    from proxyllm.db.url import to_async_url
    from tests.fakes.base import free_port

    account = ("key", "c" * 64)
    real = Database(to_async_url(pg_url))
    gone = Database(to_async_url(f"postgresql://postgres@127.0.0.1:{free_port()}/gone"))
    try:
        async with real.session() as session:
            session.add(Key(token=account[1], key_name="sk-...cccc"))
        spool = Spool(tmp_path, pg_url)
        first = SpendWriter(gone, spool=spool, stop_deadline=0.3)
        first.add_charge([account], Decimal("0.25"), Decimal("0.75"))
        first.add_charge([account], Decimal("0.5"))  # no price given: the price is the cost
        assert (first.unflushed(account), first.unflushed(account, True)) == (Decimal("0.75"), Decimal("1.25"))
        await first.stop()
        spool.append(spool.journal, [(CHARGE, {"kind": "key", "id": account[1], "amount": Decimal("0.125")})])
        second = SpendWriter(real, spool=Spool(tmp_path, pg_url))
        assert second.replay_journal() == 2
        assert second.unflushed(account, True) == Decimal("1.375")
        assert await second.flush()
        assert (second.unflushed(account), second.unflushed(account, True)) == (0, 0)
        async with real.session() as session:
            key = await session.get(Key, account[1])
            assert key is not None and (key.spend, key.spend_price) == (Decimal("0.875"), Decimal("1.375"))
    finally:
        await gone.close()
        await real.close()
