"""The in-process limiter and header helpers, with a fake clock."""

from __future__ import annotations

import pytest

from proxyllm.limits import local
from proxyllm.limits.hook import grant_headers, header_safe, refused
from proxyllm.limits.local import LocalLimiter, Refusal, reset_text
from proxyllm.limits.rules import PARALLEL, RPM, TPM, Rule


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_windows_turn_with_the_clock_minute() -> None:
    clock = Clock(600.0)  # the start of a minute
    limiter = LocalLimiter(clock)
    rule = Rule("key:a", "key 'a'", "key", rpm=2, tpm=10)
    limiter.release(limiter.acquire([rule]), 4)
    limiter.release(limiter.acquire([rule]), 7)
    with pytest.raises(Refusal) as info:
        limiter.acquire([rule])
    assert info.value.limit == RPM and info.value.used == 2 and info.value.reset == 60.0
    clock.now = 659.5
    with pytest.raises(Refusal) as info:
        limiter.acquire([rule])
    assert info.value.reset == pytest.approx(0.5)
    clock.now = 660.0  # a new minute: requests and tokens start again
    grant = limiter.acquire([rule])
    assert grant.usage == [(1, 0, 1)]


def test_tokens_refuse_once_used_up_and_all_rules_or_none_count() -> None:
    limiter = LocalLimiter(Clock(0.0))
    tight = Rule("key:t", "key 't'", "key", tpm=5)
    loose = Rule("user:u", "user 'u'", "user", rpm=100, parallel=10)
    limiter.release(limiter.acquire([loose, tight]), 5)
    with pytest.raises(Refusal) as info:
        limiter.acquire([loose, tight])
    assert info.value.rule is tight and info.value.limit == TPM and info.value.used == 5
    assert limiter.counters["user:u"].requests == 1  # the refused request was counted nowhere
    assert limiter.counters["user:u"].in_flight == 0


def test_parallel_slots_and_single_release() -> None:
    limiter = LocalLimiter(Clock(0.0))
    rule = Rule("team:x", "team 'x'", "team", parallel=1)
    grant = limiter.acquire([rule])
    with pytest.raises(Refusal) as info:
        limiter.acquire([rule])
    assert info.value.limit == PARALLEL and info.value.reset == 1.0
    limiter.release(grant, 0)
    limiter.release(grant, 0)  # a second release changes nothing
    assert limiter.counters["team:x"].in_flight == 0
    limiter.acquire([rule])


def test_idle_counters_are_swept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "SWEEP_AT", 3)
    clock = Clock(0.0)
    limiter = LocalLimiter(clock)
    held = limiter.acquire([Rule("a", "a", "key", parallel=5)])
    limiter.release(limiter.acquire([Rule("b", "b", "key", rpm=5)]), 0)
    limiter.release(limiter.acquire([Rule("c", "c", "key", rpm=5)]), 0)
    clock.now = 120.0
    limiter.acquire([Rule("d", "d", "key", rpm=5)])
    assert set(limiter.counters) == {"a", "d"}  # "a" still holds a slot
    limiter.release(held, 0)
    assert limiter.counters["a"].in_flight == 0


def test_headers_and_messages() -> None:
    limiter = LocalLimiter(Clock(30.0))
    rules = [
        Rule("key:k", "key 'k'", "key", rpm=10, tpm=100, parallel=3),
        Rule("key_model:k:gpt/4o", "model 'gpt/4o' on key 'k'", "key_model", rpm=4, model="gpt/4o"),
    ]
    headers = grant_headers(limiter.acquire(rules))
    assert headers["x-ratelimit-limit-requests"] == "4" and headers["x-ratelimit-remaining-requests"] == "3"
    assert headers["x-ratelimit-remaining-tokens"] == "100" and headers["x-ratelimit-reset-tokens"] == "30s"
    assert headers["x-litellm-key-remaining-requests-gpt-4o"] == "3"
    assert headers["x-ratelimit-remaining-parallel-requests"] == "2"
    assert header_safe("ollama/llama3:8b é") == "ollama-llama3-8b--"
    assert reset_text(0.2) == "1s" and reset_text(59.01) == "60s"
    err = refused(Refusal(rules[1], RPM, 4, 12.5))
    assert err.status == 429 and err.retry_after == 12.5
    assert "model_rpm_limit is 4 requests per minute" in err.message
    assert err.response_headers()["retry-after"] == "12"
