"""The one place ``Any`` stands for something: parsed JSON whose shape is not known statically.

A client's request body, an upstream's answer, a config file's free-form ``model_info`` or
``litellm_params``, a row's JSON column: these are JSON values checked at run time, field by field,
where they are read. Everything else in the proxy has a real type; a name from here says "this is
JSON from outside" (and a ``grep Any`` that finds it elsewhere finds something to type).
"""

from __future__ import annotations

from typing import Any, TypeAlias

# Parsed JSON of unknown shape: a dict, list, str, int, float, bool or None, checked where it is read.
JSONValue: TypeAlias = Any
# A JSON object: a request or response body, a payload, a JSON column, a free-form config mapping.
JSONObject: TypeAlias = dict[str, Any]
# A JSON array of unknown items.
JSONArray: TypeAlias = list[Any]

__all__ = ["JSONArray", "JSONObject", "JSONValue"]
