"""OpenAI answers (from any upstream) as Ollama answers: chat, generate, embed, embeddings.

The final line carries Ollama's counts and timings. An Ollama upstream reports its own durations
(nanoseconds, kept in the call's usage); for any other upstream they are the proxy's measure: the
whole call, and the time to the first token as the prompt's evaluation. ``eval_duration`` is never
zero, because clients divide by it for tokens per second.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson

from proxyllm.core.context import RequestContext
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.types import Usage


def created_at() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def done_reason(finish: JSONValue) -> str:
    return "length" if finish == "length" else "stop"


def final_fields(ctx: RequestContext, reason: str) -> JSONObject:
    usage = ctx.usage or Usage()
    compute = usage.compute
    total = max(1, int((time.perf_counter() - ctx.started) * 1e9))
    load = 0
    if compute is not None and compute.total_ns:
        total, load = compute.total_ns, compute.load_ns
        prompt_eval, evaluation = compute.prompt_eval_ns, compute.eval_ns
    else:
        first = ctx.first_chunk_at
        prompt_eval = int((first - ctx.started) * 1e9) if first is not None else 0
        prompt_eval = min(max(0, prompt_eval), total)
        evaluation = total - prompt_eval
    return {
        "done": True,
        "done_reason": reason,
        "total_duration": total,
        "load_duration": load,
        "prompt_eval_count": usage.prompt_tokens,
        "prompt_eval_duration": prompt_eval,
        "eval_count": usage.completion_tokens,
        "eval_duration": max(1, evaluation),
    }


def arguments_object(raw: JSONValue) -> JSONObject:
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str) and raw.strip():
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def ollama_tool_calls(calls: JSONValue) -> list[JSONObject]:
    """OpenAI tool calls -> Ollama's: ``{"function": {"name", "arguments": {...}}}``."""
    out = []
    for k, call in enumerate(calls if isinstance(calls, list) else []):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict):
            continue
        arguments = arguments_object(fn.get("arguments"))
        entry: JSONObject = {"function": {"index": k, "name": str(fn.get("name") or ""), "arguments": arguments}}
        if isinstance(call.get("id"), str):
            entry["id"] = call["id"]
        out.append(entry)
    return out


def reasoning_of(source: JSONObject) -> str | None:
    value = source.get("reasoning_content") or source.get("reasoning")
    return value if isinstance(value, str) and value else None


def chat_answer(data: JSONObject, ctx: RequestContext, *, generate: bool) -> JSONObject:
    """A chat completion -> an ``/api/chat`` (or ``/api/generate``) answer, not streamed."""
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    text = message.get("content") if isinstance(message.get("content"), str) else ""
    thinking = reasoning_of(message)
    answer: JSONObject = {"model": ctx.model, "created_at": created_at()}
    if generate:
        answer["response"] = text
        if thinking:
            answer["thinking"] = thinking
    else:
        msg: JSONObject = {"role": "assistant", "content": text}
        if thinking:
            msg["thinking"] = thinking
        calls = ollama_tool_calls(message.get("tool_calls"))
        if calls:
            msg["tool_calls"] = calls
        answer["message"] = msg
    answer.update(final_fields(ctx, done_reason(choice.get("finish_reason"))))
    return answer


def embed_answer(data: JSONObject, ctx: RequestContext, *, old: bool) -> JSONObject:
    """OpenAI embeddings -> ``/api/embed`` (``embeddings``) or ``/api/embeddings`` (``embedding``)."""
    items = sorted((d for d in data.get("data") or [] if isinstance(d, dict)), key=lambda d: int(d.get("index") or 0))
    vectors = [d.get("embedding") for d in items]
    if old:
        return {"embedding": vectors[0] if vectors else []}
    fields = final_fields(ctx, "stop")
    return {
        "model": ctx.model,
        "embeddings": vectors,
        "total_duration": fields["total_duration"],
        "load_duration": fields["load_duration"],
        "prompt_eval_count": fields["prompt_eval_count"],
    }


def load_answer(model: str, *, generate: bool) -> bytes:
    """Ollama's answer to a request with nothing to generate (it loads the model): ``done_reason: load``."""
    answer: JSONObject = {"model": model, "created_at": created_at()}
    if generate:
        answer["response"] = ""
    else:
        answer["message"] = {"role": "assistant", "content": ""}
    answer.update({"done": True, "done_reason": "load"})
    return orjson.dumps(answer)
