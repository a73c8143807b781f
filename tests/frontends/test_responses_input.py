"""Every field of a Responses request is client input: anything wrong is a 400 in OpenAI's shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import ProxyServer

OK = {"model": "llama3", "input": "hi"}
BAD: list[tuple[str, Any]] = [
    ("not json", b"{nope"),
    ("an array", b"[1, 2]"),
    ("empty", b""),
    ("no model", {"input": "hi"}),
    ("no input", {"model": "llama3"}),
    ("model not a string", {**OK, "model": 5}),
    ("model with NUL", {**OK, "model": "llama3\x00"}),
    ("model too long", {**OK, "model": "m" * 300}),
    ("input a number", {**OK, "input": 5}),
    ("input item not an object", {**OK, "input": ["hi"]}),
    ("input item of unknown type", {**OK, "input": [{"type": "computer_call"}]}),
    ("message with bad role", {**OK, "input": [{"role": "root", "content": "x"}]}),
    ("message content a number", {**OK, "input": [{"role": "user", "content": 1}]}),
    ("unknown content part", {**OK, "input": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
    ("text part without text", {**OK, "input": [{"role": "user", "content": [{"type": "input_text"}]}]}),
    ("image without url", {**OK, "input": [{"role": "user", "content": [{"type": "input_image"}]}]}),
    ("function_call without call_id", {**OK, "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]}),
    ("function_call_output number", {**OK, "input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}),
    ("item id with spaces", {**OK, "input": [{"role": "user", "content": "x", "id": "a b"}]}),
    ("item_reference", {**OK, "input": [{"type": "item_reference", "id": "msg_1"}]}),
    ("tools not a list", {**OK, "tools": {}}),
    ("tool without a type", {**OK, "tools": [{"name": "f"}]}),
    ("namespace without tools", {**OK, "tools": [{"type": "namespace", "name": "n"}]}),
    (
        "hosted tool in a namespace",
        {**OK, "tools": [{"type": "namespace", "name": "n", "tools": [{"type": "web_search"}]}]},
    ),
    ("function tool without name", {**OK, "tools": [{"type": "function"}]}),
    ("tool parameters a string", {**OK, "tools": [{"type": "function", "name": "f", "parameters": "x"}]}),
    ("tool_choice unknown", {**OK, "tool_choice": "sometimes"}),
    ("tool_choice hosted", {**OK, "tool_choice": {"type": "file_search"}}),
    ("text.format unknown", {**OK, "text": {"format": {"type": "yaml"}}}),
    ("json_schema without schema", {**OK, "text": {"format": {"type": "json_schema", "name": "x"}}}),
    ("reasoning effort unknown", {**OK, "reasoning": {"effort": "maximal"}}),
    ("max_output_tokens zero", {**OK, "max_output_tokens": 0}),
    ("max_output_tokens a bool", {**OK, "max_output_tokens": True}),
    ("metadata too many keys", {**OK, "metadata": {str(i): "v" for i in range(17)}}),
    ("metadata value not a string", {**OK, "metadata": {"k": 1}}),
    ("metadata value too long", {**OK, "metadata": {"k": "v" * 513}}),
    ("metadata NUL", {**OK, "metadata": {"k\x00": "v"}}),
    ("truncation unknown", {**OK, "truncation": "sometimes"}),
    ("include unknown", {**OK, "include": ["everything"]}),
    ("include an object", {**OK, "include": [{}]}),
    ("reasoning effort a list", {**OK, "reasoning": {"effort": []}}),
    ("role a list", {**OK, "input": [{"role": [], "content": "x"}]}),
    ("item type a list", {**OK, "input": [{"type": [], "content": "x"}]}),
    ("part type an object", {**OK, "input": [{"role": "user", "content": [{"type": {}}]}]}),
    ("tool type a list", {**OK, "tools": [{"type": []}]}),
    ("text.format type a list", {**OK, "text": {"format": {"type": []}}}),
    ("deeply nested", b'{"model": "llama3", "input": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
    ("store a string", {**OK, "store": "yes"}),
    ("stream a string", {**OK, "stream": "yes"}),
    ("background", {**OK, "background": True}),
    ("previous id with slashes", {**OK, "previous_response_id": "../../etc"}),
    ("previous id too long", {**OK, "previous_response_id": "r" * 200}),
    ("temperature a string", {**OK, "temperature": "hot"}),
]


@pytest.mark.parametrize(("name", "body"), BAD, ids=[name for name, _ in BAD])
async def test_bad_request_is_400(shared_admin: httpx.AsyncClient, name: str, body: Any) -> None:
    if isinstance(body, bytes):
        resp = await shared_admin.post("/v1/responses", content=body, headers={"content-type": "application/json"})
    else:
        resp = await shared_admin.post("/v1/responses", json=body)
    assert resp.status_code == 400, (name, resp.text)
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]


async def test_unknown_previous_response_is_404(shared_admin: httpx.AsyncClient) -> None:
    resp = await shared_admin.post("/v1/responses", json={**OK, "previous_response_id": "resp_nothere"})
    assert resp.status_code == 404 and resp.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("path", ["/v1/responses/a%20b", "/v1/responses/..%2Fx/input_items"])
async def test_bad_ids_on_stored_routes(shared_admin: httpx.AsyncClient, path: str) -> None:
    resp = await shared_admin.get(path)
    assert resp.status_code in (400, 404) and "error" in resp.json()


async def test_stored_routes_need_a_key(shared_proxy: ProxyServer) -> None:
    async with httpx.AsyncClient(base_url=shared_proxy.url) as client:
        resp = await client.get("/v1/responses/resp_1")
    assert resp.status_code == 401 and resp.json()["error"]["type"] == "authentication_error"


async def test_unknown_model_is_404(shared_admin: httpx.AsyncClient) -> None:
    resp = await shared_admin.post("/v1/responses", json={**OK, "model": "nope"})
    assert resp.status_code == 404 and "error" in resp.json()


async def test_input_items_paging(shared_admin: httpx.AsyncClient) -> None:
    items = [{"role": "user", "content": f"m{i}"} for i in range(5)]
    made = (await shared_admin.post("/v1/responses", json={**OK, "input": items})).json()
    path = f"/v1/responses/{made['id']}/input_items"
    first = (await shared_admin.get(path, params={"limit": 2, "order": "asc"})).json()
    assert [i["content"][0]["text"] for i in first["data"]] == ["m0", "m1"] and first["has_more"]
    params = {"limit": 10, "order": "asc", "after": first["last_id"]}
    rest = (await shared_admin.get(f"/v1/responses/{made['id']}/input_items", params=params)).json()
    assert [i["content"][0]["text"] for i in rest["data"]] == ["m2", "m3", "m4"] and not rest["has_more"]
    bad = await shared_admin.get(f"/v1/responses/{made['id']}/input_items", params={"limit": 1000})
    assert bad.status_code == 400
