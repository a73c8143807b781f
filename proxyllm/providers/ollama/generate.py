"""Pure translation to and from Ollama's ``/api/generate``.

Used for ``/v1/completions`` on any Ollama model, and for chat on ``ollama/<model>`` deployments
(LiteLLM's generate-based Ollama provider), where the conversation is rendered into one prompt.
"""

from __future__ import annotations

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject
from proxyllm.core.types import Usage
from proxyllm.providers.ollama.chat import compute_of, split_content
from proxyllm.providers.ollama.options import COMMON, base_request, check_n, finish_reason
from proxyllm.providers.params import drop_unsupported
from proxyllm.providers.sse import ChunkEncoder

COMPLETION_SUPPORTED = COMMON | {"prompt", "suffix", "system", "raw", "images"}
CHAT_SUPPORTED = COMMON | {"messages", "response_format"}
ROLE_TITLES = {"user": "User", "assistant": "Assistant", "tool": "Tool"}


def completion_request(body: JSONObject, model: str, *, drop: bool, stream: bool) -> JSONObject:
    """OpenAI /v1/completions -> /api/generate."""
    body = drop_unsupported(body, COMPLETION_SUPPORTED, drop=drop, provider="Ollama")
    check_n(body, drop)
    prompt = body["prompt"]
    if isinstance(prompt, list):
        if len(prompt) != 1 or not isinstance(prompt[0], str):
            raise invalid_request("Ollama takes exactly one text prompt per request", param="prompt")
        prompt = prompt[0]
    req = base_request(body, model, stream)
    req["prompt"] = prompt
    for key in ("suffix", "system", "raw", "images"):
        if body.get(key) is not None:
            req[key] = body[key]
    return req


def chat_as_generate_request(body: JSONObject, model: str, *, drop: bool, stream: bool) -> JSONObject:
    """OpenAI chat -> /api/generate: system messages become ``system``, the rest one prompt."""
    body = drop_unsupported(body, CHAT_SUPPORTED, drop=drop, provider="Ollama /api/generate")
    check_n(body, drop)
    systems: list[str] = []
    turns: list[tuple[str, str]] = []
    images: list[str] = []
    for i, msg in enumerate(body["messages"]):
        text, imgs = split_content(msg.get("content"), f"messages[{i}]")
        images.extend(imgs)
        if msg["role"] in ("system", "developer"):
            systems.append(text)
        else:
            turns.append((msg["role"], text))
    req = base_request(body, model, stream)
    if len(turns) == 1 and turns[0][0] == "user":
        req["prompt"] = turns[0][1]
    else:
        rendered = [f"### {ROLE_TITLES.get(role, role.title())}:\n{text}" for role, text in turns]
        req["prompt"] = "\n\n".join([*rendered, "### Assistant:\n"])
    if systems:
        req["system"] = "\n\n".join(systems)
    if images:
        req["images"] = images
    return req


def usage_of(data: JSONObject) -> Usage:
    return Usage(int(data.get("prompt_eval_count") or 0), int(data.get("eval_count") or 0), compute=compute_of(data))


def completion_response(data: JSONObject, *, model: str, response_id: str, created: int) -> JSONObject:
    return {
        "id": response_id,
        "object": "text_completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "text": data.get("response", ""),
                "logprobs": None,
                "finish_reason": finish_reason(data.get("done_reason")),
            }
        ],
        "usage": usage_of(data).as_openai(),
    }


def chat_response(data: JSONObject, *, model: str, response_id: str, created: int) -> JSONObject:
    message: JSONObject = {"role": "assistant", "content": data.get("response", "")}
    if data.get("thinking"):
        message["reasoning_content"] = data["thinking"]
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason(data.get("done_reason")), "logprobs": None}
        ],
        "usage": usage_of(data).as_openai(),
    }


class GenerateStreamTranslator:
    """/api/generate NDJSON -> text_completion chunks, or chat chunks when ``as_chat``."""

    def __init__(self, encoder: ChunkEncoder, *, as_chat: bool) -> None:
        self.encoder = encoder
        self.as_chat = as_chat
        self.started = False
        self.usage: Usage | None = None

    def _event(self, text: str, finish: str | None, key: str = "content") -> bytes:
        if not self.as_chat:
            return self.encoder.choice({"index": 0, "text": text, "logprobs": None, "finish_reason": finish})
        delta: JSONObject = {key: text} if text else {}
        if not self.started:
            self.started = True
            delta = {"role": "assistant", **delta}
        return self.encoder.choice({"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None})

    def feed(self, data: JSONObject) -> list[bytes]:
        out: list[bytes] = []
        if self.as_chat and data.get("thinking"):
            out.append(self._event(data["thinking"], None, "reasoning_content"))
        text = data.get("response") or ""
        done = bool(data.get("done"))
        if text and not done:
            out.append(self._event(text, None))
        if done:
            self.usage = usage_of(data)
            out.append(self._event(text, finish_reason(data.get("done_reason"))))
        return out
