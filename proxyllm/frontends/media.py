"""Images, moderations, speech, transcriptions and rerank: OpenAI's (and Cohere's) request shapes.

Each request is checked here, field by field, before any work: wrong types, out-of-range numbers,
over-long strings and NUL bytes are a 400 naming the field. The checks also give the request's most
units (``ctx.units_bound``: images, characters, audio seconds, search units), which the admission step
reserves and the price is capped at (core/units.py). The answers are the upstream's, unchanged:
JSON, or audio bytes for speech, or text for a transcription asked as ``text``/``srt``/``vtt``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from proxyllm.core.context import RequestContext
from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.core.requests import apply_proxy_fields, bounded_string, load_json
from proxyllm.core.router import Router
from proxyllm.core.types import Operation, Units
from proxyllm.core.units import audio_seconds_bound, search_units
from proxyllm.frontends.base import Frontend, Incoming
from proxyllm.providers.media import UPLOAD, Upload

MAX_IMAGES = 10  # n of one image request (OpenAI's own limit for dall-e-2)
MAX_PROMPT_CHARS = 32_000  # an image prompt (gpt-image-1's limit)
MAX_SPEECH_CHARS = 4_096  # text to speech input (OpenAI's limit)
MAX_MODERATION_INPUTS = 1_000
MAX_DOCUMENTS = 1_000  # rerank (Cohere's limit)
MAX_QUERY_CHARS = 100_000
MAX_UPLOAD_BYTES = 25 * 1024 * 1024  # an audio file (OpenAI's limit)
MAX_UPLOAD_BODY = MAX_UPLOAD_BYTES + 256 * 1024  # the file and the form's other fields
MAX_FIELD_CHARS = 4_096  # any other string field (prompt of a transcription, instructions, ...)
CHARS_PER_CHUNK = 1_500  # rerank: a long document is split into ~500-token chunks, each counted
SIZE = re.compile(r"^(auto|[0-9]{2,5}x[0-9]{2,5})$")
AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
TEXT_FORMATS = frozenset({"text", "srt", "vtt"})

Check = Callable[[JSONValue, str], JSONValue]


def _string(limit: int = MAX_FIELD_CHARS) -> Check:
    def check(value: JSONValue, name: str) -> JSONValue:
        if type(value) is not str:
            raise invalid_request(f"'{name}' must be a string", param=name)
        return bounded_string(value, name, limit)

    return check


def _choice(*allowed: str) -> Check:
    def check(value: JSONValue, name: str) -> JSONValue:
        if value not in allowed:
            raise invalid_request(f"'{name}' must be one of {', '.join(allowed)}", param=name)
        return value

    return check


def _number(low: float, high: float) -> Check:
    def check(value: JSONValue, name: str) -> JSONValue:
        if type(value) not in (int, float) or not math.isfinite(value) or not low <= value <= high:
            raise invalid_request(f"'{name}' must be a number from {low:g} to {high:g}", param=name)
        return value

    return check


def _whole(low: int, high: int) -> Check:
    def check(value: JSONValue, name: str) -> JSONValue:
        if type(value) is not int or not low <= value <= high:
            raise invalid_request(f"'{name}' must be a whole number from {low} to {high}", param=name)
        return value

    return check


def _boolean(value: JSONValue, name: str) -> JSONValue:
    if type(value) is not bool:
        raise invalid_request(f"'{name}' must be true or false", param=name)
    return value


def _size(value: JSONValue, name: str) -> JSONValue:
    if type(value) is not str or not SIZE.match(value):
        raise invalid_request(f"'{name}' must be 'auto' or WIDTHxHEIGHT, such as '1024x1024'", param=name)
    return value


SHORT = _string(64)
IMAGE_FIELDS: dict[str, Check] = {
    "prompt": _string(MAX_PROMPT_CHARS),
    "n": _whole(1, MAX_IMAGES),
    "size": _size,
    "quality": SHORT,
    "style": SHORT,
    "response_format": _choice("url", "b64_json"),
    "background": SHORT,
    "moderation": SHORT,
    "output_format": SHORT,
    "output_compression": _whole(0, 100),
}
SPEECH_FIELDS: dict[str, Check] = {
    "input": _string(MAX_SPEECH_CHARS),
    "voice": SHORT,
    "response_format": _choice(*AUDIO_TYPES),
    "speed": _number(0.25, 4.0),
    "instructions": _string(),
    "stream_format": _choice("audio"),
}
TRANSCRIPTION_FIELDS: dict[str, Check] = {
    "language": _string(16),
    "prompt": _string(),
    "response_format": _choice("json", "text", "srt", "verbose_json", "vtt", "diarized_json"),
    "temperature": _number(0.0, 1.0),
    "timestamp_granularities[]": _choice("word", "segment"),
    "chunking_strategy": SHORT,
}
RERANK_FIELDS: dict[str, Check] = {
    "query": _string(MAX_QUERY_CHARS),
    "return_documents": _boolean,
    "max_chunks_per_doc": _whole(1, 1_000),
    "max_tokens_per_doc": _whole(1, 1_000_000),
}
COMMON: dict[str, Check] = {"model": _string(255), "user": _string(255)}


def _check_fields(body: JSONObject, fields: dict[str, Check]) -> None:
    for name, check in (*COMMON.items(), *fields.items()):
        value = body.get(name)
        if value is not None:
            check(value, name)


def _require(body: JSONObject, *names: str) -> None:
    for name in names:
        if body.get(name) is None:
            raise invalid_request(f"missing required field '{name}'", param=name)


def json_body(raw: bytes) -> JSONObject:
    body = load_json(raw)
    if not isinstance(body, dict):
        raise invalid_request("the request body must be a JSON object")
    if body.get("stream") not in (None, False):
        raise invalid_request("this endpoint does not stream; leave 'stream' out", param="stream")
    body.pop("stream", None)
    return body


class MediaFrontend(Frontend):
    """One of the media endpoints; ``units`` checks a body and returns its bound."""

    def __init__(self, operation: Operation) -> None:
        self.operation = operation

    def context(self, incoming: Incoming) -> RequestContext:
        body = json_body(incoming.raw)
        if body.get("model") is None and (default := self.default_model()) is not None:
            body["model"] = default
        _require(body, "model")
        units = self.units(body)
        ctx = RequestContext(
            request_id=incoming.request_id, operation=self.operation, body=body, api_key=incoming.api_key
        )
        ctx.started = incoming.started
        ctx.units_bound = units
        apply_proxy_fields(ctx)
        return ctx

    def units(self, body: JSONObject) -> Units:
        raise NotImplementedError

    def default_model(self) -> str | None:
        """The model group a request without ``model`` goes to (None: ``model`` is required)."""
        return None


class ImagesFrontend(MediaFrontend):
    """``/v1/images/generations``."""

    def __init__(self) -> None:
        super().__init__(Operation.IMAGE_GENERATION)

    def units(self, body: JSONObject) -> Units:
        _require(body, "prompt")
        _check_fields(body, IMAGE_FIELDS)
        return Units(images_out=body.get("n") or 1)


class ModerationsFrontend(MediaFrontend):
    """``/v1/moderations``: ``input`` is a string, a list of strings, or a list of text/image parts.

    As on LiteLLM's proxy, ``model`` may be left out: the request goes to the first model group (in the
    config's order) that is a moderation model, by ``model_info.mode: moderation`` or an upstream model
    named like one (``omni-moderation-latest``). Key access, limits and budgets apply to it as named."""

    def __init__(self, router: Router | None = None) -> None:
        super().__init__(Operation.MODERATION)
        self.router = router

    def default_model(self) -> str | None:
        if self.router is None:
            return None
        for name, group in self.router.groups.items():
            if Operation.MODERATION in group.operations and any(
                d.model_info.get("mode") == "moderation" or "moderation" in d.upstream_model
                for d in group.deployments
            ):
                return name
        return None

    def units(self, body: JSONObject) -> Units:
        _require(body, "input")
        _check_fields(body, {})
        value = body["input"]
        items = value if isinstance(value, list) else [value]
        if not items or len(items) > MAX_MODERATION_INPUTS:
            raise invalid_request(f"'input' must have 1 to {MAX_MODERATION_INPUTS} items", param="input")
        images = 0
        for i, item in enumerate(items):
            if isinstance(item, str):
                bounded_string(item, f"input[{i}]", MAX_QUERY_CHARS)
            elif isinstance(item, dict) and item.get("type") in ("text", "image_url"):
                images += item["type"] == "image_url"
            else:
                raise invalid_request(
                    "'input' must be a string, a list of strings, or a list of text and image_url parts", param="input"
                )
        return Units(images_in=images)


class SpeechFrontend(MediaFrontend):
    """``/v1/audio/speech``: the answer is audio bytes."""

    translates = True

    def __init__(self) -> None:
        super().__init__(Operation.SPEECH)

    def units(self, body: JSONObject) -> Units:
        _require(body, "input", "voice")
        _check_fields(body, SPEECH_FIELDS)
        return Units(characters=len(body["input"]))

    def content_type(self, ctx: RequestContext) -> bytes:
        return AUDIO_TYPES[ctx.body.get("response_format") or "mp3"].encode()


class RerankFrontend(MediaFrontend):
    """``/v1/rerank``, ``/rerank``, ``/v2/rerank``: Cohere's request (query, documents, top_n)."""

    def __init__(self) -> None:
        super().__init__(Operation.RERANK)

    def units(self, body: JSONObject) -> Units:
        _require(body, "query", "documents")
        _check_fields(body, RERANK_FIELDS)
        documents = body["documents"]
        if not isinstance(documents, list) or not 1 <= len(documents) <= MAX_DOCUMENTS:
            raise invalid_request(f"'documents' must be a list of 1 to {MAX_DOCUMENTS} documents", param="documents")
        counted = 0
        for i, doc in enumerate(documents):
            text = doc.get("text") if isinstance(doc, dict) else doc
            if not isinstance(text, str):
                raise invalid_request(
                    f"documents[{i}] must be a string or an object with a string 'text'", param="documents"
                )
            bounded_string(text, f"documents[{i}]", MAX_QUERY_CHARS)
            counted += max(1, -(-len(text) // CHARS_PER_CHUNK))
        top_n = body.get("top_n")
        if top_n is not None:
            _whole(1, len(documents))(top_n, "top_n")
        fields = body.get("rank_fields")
        if fields is not None and (
            not isinstance(fields, list)
            or len(fields) > 32
            or not all(isinstance(f, str) and len(f) <= 64 for f in fields)
        ):
            raise invalid_request("'rank_fields' must be a list of at most 32 short strings", param="rank_fields")
        return Units(search_units=search_units(counted))


class TranscriptionFrontend(MediaFrontend):
    """``/v1/audio/transcriptions``: a multipart upload (``file`` and form fields), at most 25 MiB."""

    headers = frozenset({b"content-type"})
    max_body = MAX_UPLOAD_BODY

    def __init__(self) -> None:
        super().__init__(Operation.TRANSCRIPTION)

    def context(self, incoming: Incoming, model: str | None = None) -> RequestContext:
        """``model``: the model named by the path (Azure's form), which replaces the form's own."""
        fields, upload = parse_multipart(incoming.raw, incoming.headers.get(b"content-type", ""))
        if model is not None:
            fields["model"] = [model]
        if upload is None:
            raise invalid_request("missing the audio 'file' (send the request as multipart/form-data)", param="file")
        if len(upload.data) > MAX_UPLOAD_BYTES:
            raise invalid_request(f"'file' is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB", param="file")
        if not upload.data:
            raise invalid_request("'file' is empty", param="file")
        stream = fields.pop("stream", None)
        if stream is not None and stream != ["false"]:
            raise invalid_request("transcriptions are not streamed here; leave 'stream' out", param="stream")
        body: JSONObject = {}
        for name, values in fields.items():
            if name in ("timestamp_granularities[]", "include[]"):
                body[name] = values
            else:
                body[name] = values[-1]
        _require(body, "model")
        for name in ("temperature",):
            if name in body:
                try:
                    body[name] = float(body[name])
                except ValueError:
                    raise invalid_request(f"'{name}' must be a number", param=name) from None
        checks = {**COMMON, **TRANSCRIPTION_FIELDS}
        for name, value in body.items():
            check = checks.get(name)
            for item in value if isinstance(value, list) else [value]:
                if check is not None:
                    check(item, name)
                elif not isinstance(item, str) or len(item) > MAX_FIELD_CHARS or "\x00" in item:
                    raise invalid_request(f"form field '{name}' is too long or not text", param=name)
        if "temperature" in body:
            body["temperature"] = format(body["temperature"], "g")
        ctx = RequestContext(
            request_id=incoming.request_id, operation=self.operation, body=body, api_key=incoming.api_key
        )
        ctx.started = incoming.started
        ctx.units_bound = Units(audio_seconds=audio_seconds_bound(len(upload.data)))
        ctx.put(UPLOAD, upload)
        return ctx

    def content_type(self, ctx: RequestContext) -> bytes:
        return b"text/plain; charset=utf-8" if ctx.body.get("response_format") in TEXT_FORMATS else b"application/json"


MAX_FIELDS = 64
DISPOSITION = re.compile(r'(\w+)="([^"]*)"')


def parse_multipart(raw: bytes, content_type: str) -> tuple[dict[str, list[str]], Upload | None]:
    """The text fields and the ``file`` of a multipart/form-data body."""
    kind, _, params = content_type.partition(";")
    if kind.strip().lower() != "multipart/form-data":
        raise invalid_request("the request must be multipart/form-data with the audio as 'file'")
    boundary = ""
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary or len(boundary) > 200:
        raise invalid_request("the multipart body has no boundary")
    delimiter = b"--" + boundary.encode("latin-1")
    sections = raw.split(delimiter)
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise invalid_request("the multipart body is malformed (no closing boundary)")
    fields: dict[str, list[str]] = {}
    upload: Upload | None = None
    if len(sections) - 2 > MAX_FIELDS:
        raise invalid_request(f"the form has more than {MAX_FIELDS} fields")
    for section in sections[1:-1]:
        head, sep, content = section.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise invalid_request("the multipart body is malformed (a part without headers)")
        content = content.removesuffix(b"\r\n")
        headers = head.decode("latin-1").split("\r\n")
        disposition = next((h for h in headers if h.lower().startswith("content-disposition:")), "")
        params_found = dict(DISPOSITION.findall(disposition))
        name = params_found.get("name") or ""
        if not name or len(name) > 64:
            raise invalid_request("a form field has no name")
        if "filename" in params_found:
            if name != "file" or upload is not None:
                raise invalid_request(f"unexpected file field '{name}'; send one audio 'file'", param=name)
            part_type = next((h.split(":", 1)[1].strip() for h in headers if h.lower().startswith("content-type:")), "")
            filename = params_found["filename"]
            if len(filename) > 255 or any(c in filename for c in '"\r\n\x00'):
                raise invalid_request("the file's name is too long or has control characters", param="file")
            upload = Upload("file", filename or "audio", (part_type or "application/octet-stream")[:128], content)
            continue
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise invalid_request(f"form field '{name}' is not UTF-8 text", param=name) from None
        fields.setdefault(name, []).append(text)
    return fields, upload
