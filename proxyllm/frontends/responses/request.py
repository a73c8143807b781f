"""A Responses API request, checked: every field the client controls, and the request as a whole.

A wrong type or value is a 400 naming the field in OpenAI's error shape, never a 500. ``input`` is
normalised to items with ids (``items.py``); the chat translation (``chat.py``) serves every upstream
that speaks only chat; upstreams that speak Responses get the checked request itself (``native``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.frontends.responses.chat import ChatTools, chat_body, chat_tool_choice, chat_tools, response_format
from proxyllm.frontends.responses.items import ID_PATTERN, new_id, normalise_input

__all__ = ["ResponsesRequest", "check_id", "new_id", "parse_request", "truncate"]

MAX_METADATA_KEYS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512
MAX_MODEL = 256
EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
INCLUDABLE = frozenset(
    {
        "reasoning.encrypted_content",
        "message.output_text.logprobs",
        "message.input_image.image_url",
        "computer_call_output.output.image_url",
        "file_search_call.results",
        "web_search_call.results",
        "web_search_call.action.sources",
        "code_interpreter_call.outputs",
    }
)
TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "input": (str, list),
    "instructions": (str,),
    "tools": (list,),
    "tool_choice": (str, dict),
    "parallel_tool_calls": (bool,),
    "text": (dict,),
    "reasoning": (dict,),
    "max_output_tokens": (int,),
    "max_tool_calls": (int,),
    "metadata": (dict,),
    "truncation": (str,),
    "include": (list,),
    "store": (bool,),
    "stream": (bool,),
    "background": (bool,),
    "previous_response_id": (str,),
    "temperature": (int, float),
    "top_p": (int, float),
    "top_logprobs": (int,),
    "user": (str,),
    "safety_identifier": (str,),
    "prompt_cache_key": (str,),
    "service_tier": (str,),
    "stream_options": (dict,),
}
NAMES = {"int": "an integer", "float": "a number", "str": "a string", "bool": "a boolean"}


@dataclass(slots=True)
class ResponsesRequest:
    """The checked request: what the client sent, its input as items, and its chat translation."""

    body: JSONObject  # the client's fields, checked (proxy-only fields taken out)
    input_items: list[JSONObject]  # this request's own input, normalised, with ids
    history: list[JSONObject] = field(default_factory=list)  # from previous_response_id
    response_id: str = field(default_factory=lambda: new_id("resp"))
    sent: list[JSONObject] | None = None  # the conversation after ``truncation: auto``, if shortened
    _tools: ChatTools | None = None

    @property
    def tools(self) -> ChatTools:
        if self._tools is None:
            self._tools = chat_tools(self.body.get("tools") or [])
        return self._tools

    @property
    def store(self) -> bool:
        return self.body.get("store") is not False

    def conversation(self) -> list[JSONObject]:
        return [*self.history, *self.input_items]

    def native(self) -> JSONObject:
        """The request for an upstream that speaks Responses: the conversation inline, nothing stored."""
        request = {k: v for k, v in self.body.items() if k not in ("previous_response_id", "store", "background")}
        request["input"] = [_for_upstream(item) for item in self.upstream_items() if _keeps(item)]
        return request

    def chat(self) -> JSONObject:
        return chat_body(self.body, self.upstream_items(), self.tools)

    def upstream_items(self) -> list[JSONObject]:
        return self.sent if self.sent is not None else self.conversation()


def _keeps(item: JSONObject) -> bool:
    # A reasoning item without its encrypted content means nothing to a stateless upstream.
    return item.get("type") != "reasoning" or bool(item.get("encrypted_content"))


def _for_upstream(item: JSONObject) -> JSONObject:
    # Ids the proxy gave input messages mean nothing to the upstream.
    if item.get("type") == "message" and item.get("role") != "assistant" and str(item.get("id")).startswith("msg_"):
        return {k: v for k, v in item.items() if k != "id"}
    return item


def _type_name(types: tuple[type, ...]) -> str:
    return " or ".join(NAMES.get(t.__name__, "a list" if t is list else "an object") for t in types)


def check_id(value: JSONValue, param: str) -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise invalid_request(f"'{param}' must be a response id such as 'resp_abc123'", param=param)
    return value


def parse_request(body: JSONValue) -> ResponsesRequest:
    if not isinstance(body, dict):
        raise invalid_request("the request body must be a JSON object")
    for key, types in TYPES.items():
        value = body.get(key)
        if value is not None and type(value) not in types:
            raise invalid_request(f"'{key}' must be {_type_name(types)}", param=key)
    model = body.get("model")
    if not model:
        raise invalid_request("missing required field 'model'", param="model")
    if len(model) > MAX_MODEL or "\x00" in model:
        raise invalid_request("'model' is not a valid model name", param="model")
    if body.get("background") is True:
        raise invalid_request(
            "'background' responses are not supported by this proxy; omit it or set it to false", param="background"
        )
    if body.get("previous_response_id") is not None:
        check_id(body["previous_response_id"], "previous_response_id")
    _check_metadata(body.get("metadata"))
    _check_options(body)
    raw_input = body.get("input")
    if raw_input is None and body.get("previous_response_id") is None:
        raise invalid_request("missing required field 'input'", param="input")
    items = normalise_input(raw_input if raw_input is not None else [])
    if body.get("tools") is not None:
        chat_tools(body["tools"])  # checked now, translated once the conversation is known
    if body.get("tool_choice") is not None:
        chat_tool_choice(body["tool_choice"])
    return ResponsesRequest(body=body, input_items=items)


def _check_metadata(metadata: JSONValue) -> None:
    if metadata is None:
        return
    if len(metadata) > MAX_METADATA_KEYS:
        raise invalid_request(f"'metadata' may hold at most {MAX_METADATA_KEYS} keys", param="metadata")
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY or "\x00" in key:
            raise invalid_request(f"metadata keys must be at most {MAX_METADATA_KEY} characters", param="metadata")
        if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE or "\x00" in value:
            raise invalid_request(
                f"metadata values must be strings of at most {MAX_METADATA_VALUE} characters", param="metadata"
            )


def _check_options(body: JSONObject) -> None:
    truncation = body.get("truncation")
    if truncation is not None and truncation not in ("auto", "disabled"):
        raise invalid_request("'truncation' must be 'auto' or 'disabled'", param="truncation")
    include = body.get("include")
    if include is not None:
        for i, name in enumerate(include):
            if not isinstance(name, str) or name not in INCLUDABLE:
                raise invalid_request(f"include[{i}] is not a value 'include' accepts", param=f"include[{i}]")
    reasoning = body.get("reasoning")
    if reasoning is not None:
        effort = reasoning.get("effort")
        if effort is not None and (not isinstance(effort, str) or effort not in EFFORTS):
            raise invalid_request(
                f"'reasoning.effort' must be one of {', '.join(sorted(EFFORTS))}", param="reasoning.effort"
            )
    text = body.get("text")
    if text is not None:
        fmt = text.get("format")
        if fmt is not None:
            response_format(fmt)
    for name in ("max_output_tokens", "max_tool_calls"):
        value = body.get(name)
        if value is not None and value < 1:
            raise invalid_request(f"'{name}' must be at least 1", param=name)


# -- truncation ------------------------------------------------------------------------------------


def truncate(request: ResponsesRequest, limit: int, estimate: Callable[[JSONObject], int]) -> int:
    """``truncation: auto``: leave out the oldest conversation items until the chat request fits ``limit``
    tokens (by ``estimate``), keeping the newest item. A function call goes together with its output,
    so the chat messages stay valid. What is stored stays whole. Returns how many items were left out."""
    items = request.conversation()
    dropped = 0
    while len(items) > 1 and estimate(chat_body(request.body, items, request.tools)) > limit:
        first = items.pop(0)
        dropped += 1
        call_id = first.get("call_id") if first.get("type") in ("function_call", "custom_tool_call") else None
        if call_id is not None:
            kept = [i for i in items if not (i.get("call_id") == call_id and i["type"].endswith("_output"))]
            dropped += len(items) - len(kept)
            items = kept
        while len(items) > 1 and items[0]["type"] in ("function_call_output", "custom_tool_call_output", "reasoning"):
            items.pop(0)
            dropped += 1
    if dropped:
        request.sent = items
    return dropped
