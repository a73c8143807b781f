"""Small value types shared by the core and the providers."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Operation(StrEnum):
    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDING = "embedding"
    RESPONSES = "responses"  # the Responses API; chat-shaped for upstreams that only speak chat
    COUNT_TOKENS = "count_tokens"  # Anthropic's /v1/messages/count_tokens


# Operations whose gateway body is an OpenAI chat request (a Responses request is translated to one).
CHAT_SHAPED = frozenset({Operation.CHAT, Operation.RESPONSES})


@dataclass(frozen=True, slots=True)
class ComputeTime:
    """Where an upstream's time went, in nanoseconds, as a self-hosted server reports it (Ollama)."""

    load_ns: int = 0  # loading the model into memory (a cold start)
    prompt_eval_ns: int = 0
    eval_ns: int = 0
    total_ns: int = 0


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False  # counted by the proxy because the upstream reported none
    cached_tokens: int = 0  # of the prompt tokens, read from a prompt cache
    compute: ComputeTime | None = None  # reported upstream durations, for per-second prices

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_openai(cls, data: object) -> Usage | None:
        if not isinstance(data, dict):
            return None
        prompt = data.get("prompt_tokens") or 0
        completion = data.get("completion_tokens") or 0
        if not isinstance(prompt, int) or not isinstance(completion, int):
            return None
        details = data.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else 0
        cached = cached if type(cached) is int and 0 < cached <= prompt else 0
        return cls(prompt, completion, cached_tokens=cached)

    def as_openai(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
