"""OpenAI embeddings <-> Gemini ``embedContent`` (one text) / ``batchEmbedContents`` (a list) (pure).

Gemini reports no token counts for embeddings, so usage is estimated (about four characters a
token) and marked ``estimated``.
"""

from __future__ import annotations

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.types import Usage
from proxyllm.providers.ollama.embed import encode_base64
from proxyllm.providers.params import drop_unsupported

SUPPORTED = frozenset({"model", "input", "encoding_format", "dimensions", "user", "task_type"})


def texts_of(body: JSONObject) -> list[str]:
    inputs = body["input"]
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise invalid_request("Gemini embeds text only: 'input' must be a string or a list of strings", param="input")
    return texts


def _one(text: str, body: JSONObject, model: str | None) -> JSONObject:
    req: JSONObject = {"content": {"parts": [{"text": text}]}}
    if model is not None:
        req["model"] = f"models/{model}"
    if body.get("dimensions") is not None:
        req["outputDimensionality"] = body["dimensions"]
    if body.get("task_type") is not None:
        req["taskType"] = body["task_type"]
    return req


def embed_request(body: JSONObject, model: str, *, drop: bool) -> tuple[str, JSONObject]:
    """-> (method, request): ``embedContent`` for one string, ``batchEmbedContents`` for a list."""
    body = drop_unsupported(body, SUPPORTED, drop=drop, provider="Gemini embeddings")
    fmt = body.get("encoding_format")
    if fmt not in (None, "float", "base64"):
        raise invalid_request("encoding_format must be 'float' or 'base64'", param="encoding_format")
    texts = texts_of(body)
    if isinstance(body["input"], str):
        return "embedContent", _one(texts[0], body, None)
    return "batchEmbedContents", {"requests": [_one(t, body, model) for t in texts]}


def vectors_of(data: JSONObject) -> list[list[float]]:
    if isinstance(data.get("embedding"), dict):
        return [data["embedding"].get("values") or []]
    return [e.get("values") or [] for e in data.get("embeddings") or [] if isinstance(e, dict)]


def estimate_usage(texts: list[str]) -> Usage:
    return Usage(sum((len(t) + 3) // 4 for t in texts), 0, estimated=True)


def embed_response(data: JSONObject, *, model: str, encoding_format: str | None, usage: Usage) -> JSONObject:
    as_base64 = encoding_format == "base64"
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_base64(v) if as_base64 else v}
            for i, v in enumerate(vectors_of(data))
        ],
        "model": model,
        "usage": {"prompt_tokens": usage.prompt_tokens, "total_tokens": usage.prompt_tokens},
    }
