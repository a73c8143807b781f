"""OpenAI chat request -> Gemini ``generateContent`` request (pure).

Roles: system/developer -> ``systemInstruction``, assistant -> ``model``, tool results -> a ``user`` turn
of ``functionResponse`` parts. Gemini does not give tool calls ids, and its thinking models sign
function calls (``thoughtSignature``) and want the signature back: both travel inside the OpenAI
tool-call id (``call_<hex>`` + ``SIGNATURE_SEP`` + signature), which clients echo verbatim.
"""

from __future__ import annotations

import mimetypes

import orjson

from proxyllm.core.errors import invalid_request
from proxyllm.core.jsontypes import JSONObject, JSONValue
from proxyllm.providers.params import drop_unsupported

SIGNATURE_SEP = "__thought__"
SUPPORTED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "top_k",
        "n",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "user",
        "safety_settings",
    }
)
CONFIG_NAMES = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "max_tokens": "maxOutputTokens",
    "max_completion_tokens": "maxOutputTokens",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
THINKING_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


def _part_of(part: JSONValue, where: str) -> JSONObject:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return {"text": str(part.get("text", ""))}
    if kind == "image_url":
        ref = part.get("image_url")
        url = ref.get("url") if isinstance(ref, dict) else ref
        if isinstance(url, str) and url.startswith("data:") and ";base64," in url:
            head, data = url.split(",", 1)
            return {"inlineData": {"mimeType": head[5:].split(";", 1)[0], "data": data}}
        if isinstance(url, str) and url.startswith(("http://", "https://", "gs://")):
            mime = mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
            return {"fileData": {"mimeType": mime, "fileUri": url}}
        raise invalid_request("image_url.url must be a base64 data URL or a URL", param=f"{where}.image_url")
    raise invalid_request(f"Gemini does not take content parts of type {kind!r}", param=where)


def parts_of(content: JSONValue, where: str) -> list[JSONObject]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise invalid_request(f"{where}.content must be a string or a list of parts", param=f"{where}.content")
    return [_part_of(part, f"{where}.content[{j}]") for j, part in enumerate(content)]


def _function_call(call: JSONValue, where: str) -> JSONObject:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise invalid_request("tool calls must be objects with a function", param=where)
    fn = call["function"]
    raw = fn.get("arguments")
    try:
        args = raw if isinstance(raw, dict) else orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        raise invalid_request("tool call arguments must be a JSON object", param=where) from None
    part: JSONObject = {"functionCall": {"name": fn.get("name", ""), "args": args}}
    signature = str(call.get("id") or "").partition(SIGNATURE_SEP)[2]
    if signature:
        part["thoughtSignature"] = signature
    return part


def _function_response(msg: JSONObject, names: dict[str, str], where: str) -> JSONObject:
    call_id = str(msg.get("tool_call_id") or "")
    name = names.get(call_id) or msg.get("name")
    if not name:
        raise invalid_request(f"{where}: no earlier tool call has id {call_id!r}", param=f"{where}.tool_call_id")
    content = msg.get("content")
    text = content if isinstance(content, str) else "".join(p.get("text", "") for p in parts_of(content, where))
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    return {"functionResponse": {"name": name, "response": value if isinstance(value, dict) else {"content": text}}}


def to_contents(messages: list[JSONObject]) -> tuple[list[JSONObject], list[JSONObject]]:
    """OpenAI messages -> (system parts, Gemini contents); consecutive same-role turns are merged."""
    system: list[JSONObject] = []
    contents: list[JSONObject] = []
    names: dict[str, str] = {}
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        role = msg["role"]
        if role in ("system", "developer"):
            system.extend(parts_of(msg.get("content"), where))
            continue
        if role == "assistant":
            turn = "model"
            parts = parts_of(msg.get("content"), where)
            for k, call in enumerate(msg.get("tool_calls") or []):
                parts.append(_function_call(call, f"{where}.tool_calls[{k}]"))
                names[str(call.get("id") or "")] = call["function"].get("name", "")
        elif role == "tool":
            turn, parts = "user", [_function_response(msg, names, where)]
        elif role == "user":
            turn, parts = "user", parts_of(msg.get("content"), where)
        else:
            raise invalid_request(f"Gemini does not take messages with role {role!r}", param=f"{where}.role")
        if not parts:
            continue
        if contents and contents[-1]["role"] == turn:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": turn, "parts": parts})
    return system, contents


def _tools(tools: list[JSONValue]) -> list[JSONObject]:
    declarations = []
    for k, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or tool.get("type") != "function" or not fn.get("name"):
            raise invalid_request("only function tools with a name are supported", param=f"tools[{k}]")
        decl: JSONObject = {"name": fn["name"]}
        if fn.get("description"):
            decl["description"] = fn["description"]
        if fn.get("parameters"):
            decl["parametersJsonSchema"] = fn["parameters"]
        declarations.append(decl)
    return [{"functionDeclarations": declarations}]


def _tool_config(choice: JSONValue) -> JSONObject | None:
    if choice is None:
        return None
    modes = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
    if isinstance(choice, str) and choice in modes:
        return {"functionCallingConfig": {"mode": modes[choice]}}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict) and choice["function"].get("name"):
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice["function"]["name"]]}}
    raise invalid_request("tool_choice must be auto, none, required or a named function", param="tool_choice")


def _generation_config(body: JSONObject, model: str) -> JSONObject:
    config = {target: body[name] for name, target in CONFIG_NAMES.items() if body.get(name) is not None}
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if fmt["type"] == "json_schema":
            if not isinstance(schema, dict):
                raise invalid_request(
                    "response_format.json_schema.schema must be a JSON schema", param="response_format"
                )
            config["responseJsonSchema"] = schema
    effort = body.get("reasoning_effort")
    if isinstance(effort, str):
        if effort not in THINKING_BUDGETS:
            raise invalid_request(f"unknown reasoning_effort {effort!r}", param="reasoning_effort")
        if model.startswith("gemini-3"):
            level = "low" if effort == "none" else effort  # Gemini 3 always thinks a little
            config["thinkingConfig"] = {"thinkingLevel": level, "includeThoughts": True}
        else:
            budget = THINKING_BUDGETS[effort]
            config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": budget > 0}
    return config


def generate_request(body: JSONObject, model: str, *, drop: bool) -> JSONObject:
    """OpenAI chat request -> Gemini generateContent request (the model goes in the URL)."""
    body = drop_unsupported(body, SUPPORTED, drop=drop, provider="Gemini")
    system, contents = to_contents(body["messages"])
    if not contents:
        raise invalid_request("Gemini needs at least one user or assistant message", param="messages")
    req: JSONObject = {"contents": contents}
    if system:
        req["systemInstruction"] = {"parts": system}
    if body.get("tools") and body.get("tool_choice") != "none":
        req["tools"] = _tools(body["tools"])
        config = _tool_config(body.get("tool_choice"))
        if config:
            req["toolConfig"] = config
    generation = _generation_config(body, model)
    if generation:
        req["generationConfig"] = generation
    if body.get("safety_settings"):
        req["safetySettings"] = body["safety_settings"]
    return req
