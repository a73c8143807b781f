"""Images, moderations, speech, transcriptions and rerank on OpenAI-compatible upstreams (and Azure,
Cohere, Jina, which share the HTTP part).

The request goes out as the client sent it with only ``model`` changed (a transcription as a new
multipart body around the uploaded file); the answer comes back unchanged. What the call consumed is
read from the answer for its price (core/units.py): the images returned, the characters spoken, the
seconds transcribed, the search units billed, and tokens where the upstream reports them.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

import orjson

from proxyllm.core.context import RequestContext, Slot
from proxyllm.core.deployment import Deployment
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.pricing import estimate_prompt_tokens
from proxyllm.core.types import Operation, Units, Usage

if TYPE_CHECKING:
    from proxyllm.providers.openai import OpenAIProvider

MEDIA_PATHS = {
    Operation.IMAGE_GENERATION: "/images/generations",
    Operation.MODERATION: "/moderations",
    Operation.SPEECH: "/audio/speech",
    Operation.TRANSCRIPTION: "/audio/transcriptions",
    Operation.RERANK: "/rerank",
}


@dataclass(frozen=True, slots=True)
class Upload:
    """A file from a multipart request (``file`` of ``/v1/audio/transcriptions``)."""

    field: str
    filename: str
    content_type: str
    data: bytes


UPLOAD: Slot[Upload] = Slot("upload")  # a transcription's file (set by frontends/media.py)


def multipart(fields: JSONObject, upload: Upload) -> tuple[bytes, str]:
    """A multipart/form-data body of ``fields`` (strings, or lists sent as repeated fields) and the file."""
    boundary = "proxyllm-" + uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{item}\r\n'.encode())
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{upload.field}"; filename="{upload.filename}"\r\n'
        f"Content-Type: {upload.content_type}\r\n\r\n"
    )
    parts.append(head.encode() + upload.data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


async def media_complete(provider: OpenAIProvider, dep: Deployment, ctx: RequestContext) -> bytes:
    headers = provider.headers(dep)
    upload = ctx.get(UPLOAD)
    if upload is not None:
        body, content_type = multipart({**ctx.body, "model": dep.upstream_model}, upload)
        headers = {**headers, "content-type": content_type}
    else:
        body = orjson.dumps({**ctx.body, "model": dep.upstream_model})
    raw = await provider.http.request(
        "POST",
        provider.url(dep, ctx.operation),
        body=body,
        headers=headers,
        timeout=provider.call_timeout(dep, ctx),
        proxy=dep.proxy_url,
        on_error=provider.map_error,
    )
    ctx.usage = media_usage(ctx, raw)
    return raw


def _json(raw: bytes) -> JSONObject:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _count(value: JSONValue) -> int:
    return value if type(value) is int and value >= 0 else 0


def media_usage(ctx: RequestContext, raw: bytes) -> Usage:
    """What a media call consumed, from its answer (bounded by the admission step's units)."""
    op = ctx.operation
    bound = ctx.units_bound or Units()
    if op is Operation.SPEECH:  # the answer is audio: the price is the input's characters
        return Usage(units=Units(characters=bound.characters))
    if op is Operation.MODERATION:
        return Usage(estimate_prompt_tokens(ctx.body), 0, estimated=True, units=Units())
    data = _json(raw)
    found = data.get("usage")
    usage: JSONObject = found if isinstance(found, dict) else {}
    prompt = _count(usage.get("input_tokens") or usage.get("prompt_tokens"))
    completion = _count(usage.get("output_tokens") or usage.get("completion_tokens"))
    if op is Operation.IMAGE_GENERATION:
        images = data.get("data")
        count = min(len(images) if isinstance(images, list) else 0, bound.images_out or 0)
        return Usage(prompt, completion, units=Units(images_out=count))
    if op is Operation.TRANSCRIPTION:
        return Usage(prompt, completion, units=Units(audio_seconds=transcribed_seconds(ctx, data, usage, bound)))
    # rerank: Cohere reports search units; an OpenAI-compatible server (vLLM) reports tokens
    meta = data.get("meta")
    billed = meta.get("billed_units") if isinstance(meta, dict) else None
    units = _count(billed.get("search_units")) if isinstance(billed, dict) else 0
    if not units:
        units = bound.search_units
    prompt = prompt or _count(usage.get("total_tokens"))
    return Usage(prompt, 0, units=Units(search_units=min(units, bound.search_units or units)))


def transcribed_seconds(ctx: RequestContext, data: JSONObject, usage: JSONObject, bound: Units) -> Decimal:
    """The audio's length: the upstream's ``usage.seconds`` or ``duration``, else a WAV header's, else
    the bound; never more than the bound the admission step reserved for."""
    limit = bound.audio_seconds or Decimal(0)
    for value in (usage.get("seconds"), data.get("duration")):
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return min(Decimal(repr(float(value))), limit)
    upload = ctx.get(UPLOAD)
    seconds = wav_seconds(upload.data) if upload is not None else None
    return limit if seconds is None else min(seconds, limit)


def wav_seconds(data: bytes) -> Decimal | None:
    """The length of a PCM WAV file from its header, or None when it is not one."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    offset = 12
    byte_rate = 0
    while offset + 8 <= len(data):
        chunk, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if chunk == b"fmt " and size >= 16 and offset + 16 <= len(data):
            byte_rate = struct.unpack_from("<I", data, offset + 16)[0]
        elif chunk == b"data":
            if not byte_rate:
                return None
            size = min(size, len(data) - offset - 8)
            return (Decimal(size) / Decimal(byte_rate)).quantize(Decimal("0.001"))
        offset += 8 + size + (size & 1)
    return None
