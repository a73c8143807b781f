"""Fake Anthropic, Gemini and Azure servers (one each per test session, reset after every test)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.azure_upstream import FakeAzure
from tests.fakes.gemini_upstream import FakeGemini

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name: str) -> Any:
    """A recorded wire fixture from tests/providers/fixtures/."""
    return orjson.loads((FIXTURES / name).read_bytes())


@pytest.fixture(scope="session")
async def anthropic_upstream() -> AsyncIterator[FakeAnthropic]:
    fake = FakeAnthropic()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="session")
async def gemini_upstream() -> AsyncIterator[FakeGemini]:
    fake = FakeGemini()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(scope="session")
async def azure_upstream() -> AsyncIterator[FakeAzure]:
    fake = FakeAzure()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture(autouse=True)
def _reset_provider_fakes(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    for name in ("anthropic_upstream", "gemini_upstream", "azure_upstream"):
        if name in request.fixturenames:
            fake = request.getfixturevalue(name)
            fake.reset()
            if hasattr(fake, "queries"):
                fake.queries.clear()
