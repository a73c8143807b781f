"""Pure translation between OpenAI embeddings and Ollama's ``/api/embed``."""

from __future__ import annotations

import base64
import sys
from array import array

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.types import Usage
from proxyllm.providers.ollama.chat import compute_of
from proxyllm.providers.params import drop_unsupported

SUPPORTED = frozenset({"model", "input", "encoding_format", "dimensions", "user", "truncate", "keep_alive", "options"})


def embed_request(body: JSONObject, model: str, *, drop: bool) -> JSONObject:
    body = drop_unsupported(body, SUPPORTED, drop=drop, provider="Ollama embeddings")
    inputs = body["input"]
    if isinstance(inputs, list) and not all(isinstance(x, str) for x in inputs):
        raise invalid_request("Ollama embeds text only; token-id inputs are not supported", param="input")
    fmt = body.get("encoding_format")
    if fmt not in (None, "float", "base64"):
        raise invalid_request("encoding_format must be 'float' or 'base64'", param="encoding_format")
    req: JSONObject = {"model": model, "input": inputs}
    for key in ("dimensions", "truncate", "keep_alive", "options"):
        if body.get(key) is not None:
            req[key] = body[key]
    return req


def encode_base64(vector: list[float]) -> str:
    """The OpenAI base64 form: little-endian float32."""
    packed = array("f", vector)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def embed_response(data: JSONObject, *, model: str, encoding_format: str | None) -> JSONObject:
    vectors = data.get("embeddings") or []
    as_base64 = encoding_format == "base64"
    prompt = int(data.get("prompt_eval_count") or 0)
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": encode_base64(v) if as_base64 else v}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }


def usage_of(data: JSONObject) -> Usage:
    return Usage(int(data.get("prompt_eval_count") or 0), 0, compute=compute_of(data))
