"""Small value types shared by the core and the providers."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Operation(StrEnum):
    CHAT = "chat"
    COMPLETION = "completion"
    EMBEDDING = "embedding"
    RESPONSES = "responses"  # the Responses API; chat-shaped for upstreams that only speak chat
    COUNT_TOKENS = "count_tokens"  # Anthropic's /v1/messages/count_tokens
    IMAGE_GENERATION = "image_generation"  # /v1/images/generations
    MODERATION = "moderation"  # /v1/moderations
    SPEECH = "speech"  # /v1/audio/speech (text to audio)
    TRANSCRIPTION = "transcription"  # /v1/audio/transcriptions (a multipart upload)
    RERANK = "rerank"  # /v1/rerank, Cohere's shape


# Operations whose gateway body is an OpenAI chat request (a Responses request is translated to one).
CHAT_SHAPED = frozenset({Operation.CHAT, Operation.RESPONSES})
# Operations priced by what they produce or consume (images, characters, audio seconds, searches)
# rather than by generated tokens; their answers are not token streams (core/units.py).
MEDIA = frozenset(
    {Operation.IMAGE_GENERATION, Operation.MODERATION, Operation.SPEECH, Operation.TRANSCRIPTION, Operation.RERANK}
)
TEXT = frozenset(Operation) - MEDIA


@dataclass(frozen=True, slots=True)
class ComputeTime:
    """Where an upstream's time went, in nanoseconds, as a self-hosted server reports it (Ollama)."""

    load_ns: int = 0  # loading the model into memory (a cold start)
    prompt_eval_ns: int = 0
    eval_ns: int = 0
    total_ns: int = 0


@dataclass(frozen=True, slots=True)
class Units:
    """What a call consumed or produced beyond tokens, for per-unit prices (core/units.py)."""

    images_in: int = 0  # images sent with the request
    images_out: int = 0  # images generated
    characters: int = 0  # input characters (text to speech)
    audio_seconds: Decimal | None = None  # length of the audio transcribed
    search_units: int = 0  # rerank: one query over up to 100 documents is one unit


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated: bool = False  # counted by the proxy because the upstream reported none
    cached_tokens: int = 0  # of the prompt tokens, read from a prompt cache
    compute: ComputeTime | None = None  # reported upstream durations, for per-second prices
    units: Units | None = None  # images, characters, audio seconds, search units (media operations)

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
