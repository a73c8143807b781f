"""The OpenAPI document as the app really answers: OpenAI-shaped errors with their real status codes
(400 for any invalid input, never FastAPI's 422), and the model endpoints, which are raw ASGI and
invisible to FastAPI's generator."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from proxyllm.core.jsontypes import JSONObject

ERROR_REF = {"$ref": "#/components/schemas/Error"}
ANTHROPIC_ERROR_REF = {"$ref": "#/components/schemas/AnthropicError"}
ERROR_SCHEMA: JSONObject = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}
ANTHROPIC_ERROR_SCHEMA: JSONObject = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}
DESCRIPTIONS = {
    400: "Invalid input: the field is named in error.param",
    401: "No key, or the key is not valid",
    402: "The prepaid balance cannot cover the request",
    403: "The key may not do this (or its address is not allowed)",
    404: "No such object, model or endpoint",
    413: "The request body is too large",
    429: "Rate limited, or too many failed authentications (see Retry-After)",
    500: "An unexpected error in the proxy",
    502: "The upstream failed",
    503: "Not available right now (a required component is down)",
    504: "The upstream did not answer in time",
}
OPEN_PATHS = {"/health/liveliness": (), "/health/readiness": (503,), "/metrics": (401, 429)}
ADMIN_ERRORS = (400, 401, 403, 404, 429)
BILLING_ERRORS = (402, 502, 503)  # routes that may call Stripe: billing off, or Stripe failing
MODEL_ERRORS = (400, 401, 402, 403, 404, 413, 429, 502, 503, 504)


def _errors(codes: tuple[int, ...] | list[int], ref: JSONObject = ERROR_REF) -> JSONObject:
    return {
        str(code): {"description": DESCRIPTIONS[code], "content": {"application/json": {"schema": ref}}}
        for code in codes
    }


def _model_operation(
    summary: str, required: list[str], properties: JSONObject, *, anthropic: bool = False
) -> JSONObject:
    body = {"type": "object", "required": required, "properties": properties, "additionalProperties": True}
    ok: JSONObject = {"application/json": {"schema": {"type": "object"}}}
    if "stream" in properties:
        ok["text/event-stream"] = {"schema": {"type": "string"}}
    return {
        "post": {
            "tags": ["models"],
            "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "200": {"description": "The model's answer", "content": ok},
                **_errors(MODEL_ERRORS, ANTHROPIC_ERROR_REF if anthropic else ERROR_REF),
            },
            "security": [{"bearer": []}],
        }
    }


OPENAI_ROLES = ["assistant", "developer", "function", "system", "tool", "user"]
CONTENT = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}]}
MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {"role": {"enum": OPENAI_ROLES}, "content": {"anyOf": [*CONTENT["anyOf"], {"type": "null"}]}},
}
ANTHROPIC_MESSAGE = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {"role": {"enum": ["user", "assistant"]}, "content": CONTENT},
}
MODEL = {"type": "string", "minLength": 1}
NON_EMPTY_INPUT = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "array", "minItems": 1}]}
MODEL_PATHS: JSONObject = {
    "/v1/chat/completions": _model_operation(
        "OpenAI chat completion (stream: true for server-sent events)",
        ["model", "messages"],
        {"model": MODEL, "messages": {"type": "array", "items": MESSAGE, "minItems": 1}, "stream": {"type": "boolean"}},
    ),
    "/v1/completions": _model_operation(
        "OpenAI text completion",
        ["model", "prompt"],
        {"model": MODEL, "prompt": NON_EMPTY_INPUT, "stream": {"type": "boolean"}},
    ),
    "/v1/embeddings": _model_operation(
        "OpenAI embeddings", ["model", "input"], {"model": MODEL, "input": NON_EMPTY_INPUT}
    ),
    "/v1/messages": _model_operation(
        "Anthropic Messages API, served from any model",
        ["model", "messages", "max_tokens"],
        {
            "model": MODEL,
            "messages": {"type": "array", "items": ANTHROPIC_MESSAGE, "minItems": 1},
            "max_tokens": {"type": "integer", "minimum": 1},
            "stream": {"type": "boolean"},
        },
        anthropic=True,
    ),
    "/v1/messages/count_tokens": _model_operation(
        "Anthropic token count",
        ["model", "messages"],
        {"model": MODEL, "messages": {"type": "array", "items": ANTHROPIC_MESSAGE, "minItems": 1}},
        anthropic=True,
    ),
}


# What the validators accept, for the fields whose rules the type alone does not say.
DURATION = r"^[1-9][0-9]{0,11}(s|m|h|d|mo)$"
MOMENT = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"
)
STRING_RULES = {"duration": {"pattern": DURATION}, "budget_duration": {"pattern": DURATION}}
NOT_NULL = frozenset({"blocked", "user_role"})  # may be left out, not sent as null
QUERY_RULES = {"start_date": {"pattern": MOMENT}, "end_date": {"pattern": MOMENT}}
LITELLM_PARAMS = {
    "type": "object",
    "required": ["model"],
    "properties": {"model": {"type": "string", "pattern": r"^[^/\s]+/\S+$", "description": "provider/model"}},
    "additionalProperties": True,
}


def _constrain(schema: JSONObject, rules: JSONObject) -> None:
    """Add ``rules`` to the string form of a property (pydantic writes optional ones as anyOf)."""
    for variant in [schema, *schema.get("anyOf", ())]:
        if variant.get("type") == "string":
            variant.update(rules)


def _tighten(document: JSONObject) -> None:
    for schema in document.get("components", {}).get("schemas", {}).values():
        for name, prop in schema.get("properties", {}).items():
            if name in STRING_RULES:
                _constrain(prop, STRING_RULES[name])
            if name in NOT_NULL and "anyOf" in prop:
                prop["anyOf"] = [v for v in prop["anyOf"] if v.get("type") != "null"]
    model_new = document.get("components", {}).get("schemas", {}).get("ModelNew")
    if model_new is not None:
        model_new["properties"]["litellm_params"] = {**LITELLM_PARAMS, "title": "Litellm Params"}
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", ()):
                if parameter.get("in") == "query" and parameter.get("name") in QUERY_RULES:
                    _constrain(parameter["schema"], QUERY_RULES[parameter["name"]])


def _fix_operation(path: str, method: str, operation: JSONObject) -> None:
    responses: JSONObject = operation.setdefault("responses", {})
    responses.pop("422", None)
    if path in OPEN_PATHS:
        codes: list[int] = list(OPEN_PATHS[path])
    else:
        codes = list(ADMIN_ERRORS)
        if "requestBody" in operation or method == "post":
            codes.append(413)
        if path.startswith(("/stripe/", "/customer/", "/user/", "/team/")):  # these may call Stripe
            codes.extend(BILLING_ERRORS)
        operation.setdefault("security", [{"bearer": []}])
    for code, response in _errors(sorted(codes)).items():
        responses.setdefault(code, response)


def build(app: FastAPI) -> JSONObject:
    document = get_openapi(title=app.title, version=app.version, routes=app.routes, description=app.description)
    paths: JSONObject = document.setdefault("paths", {})
    for path, item in paths.items():
        for method, operation in item.items():
            _fix_operation(path, method, operation)
    if "/metrics" in paths:
        ok = paths["/metrics"]["get"]["responses"]["200"]
        ok["content"] = {"text/plain": {"schema": {"type": "string"}}}
    for path, item in MODEL_PATHS.items():
        paths.setdefault(path, item)
    _tighten(document)
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    schemas["Error"] = ERROR_SCHEMA
    schemas["AnthropicError"] = ANTHROPIC_ERROR_SCHEMA
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "the master key or a virtual key"}
    }
    return document


def install(app: FastAPI) -> None:
    def openapi() -> JSONObject:
        if app.openapi_schema is None:
            app.openapi_schema = build(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
