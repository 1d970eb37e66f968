"""Make a JSON document fit a JSON schema, filling what is missing from a text.

The offline stand-in and the loopback server answer structured-output requests without a language model.
Their documents must still validate against the schema the task asked for (often a pydantic
`model_json_schema()`, with `$defs`, `$ref` and `anyOf` for optional fields), so that the task's parsing
path is the same one a real model's answer takes.
"""

from __future__ import annotations

from typing import Any

_MAX_DEPTH = 12


def fit_to_schema(schema: dict[str, Any], document: Any, text: str) -> Any:
    """`document` reshaped to `schema`: declared fields kept or filled (strings from `text`), extras dropped
    when the schema forbids them."""
    return _fit(schema, document, text, schema, 0)


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        node: Any = root
        for part in ref[2:].split("/"):
            node = node.get(part, {}) if isinstance(node, dict) else {}
        return node if isinstance(node, dict) else {}
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            chosen = next((o for o in options if isinstance(o, dict) and o.get("type") != "null"), options[0])
            return _resolve(chosen, root)
    return schema


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind is None and "properties" in schema:
        return "object"
    return kind if isinstance(kind, str) else None


def _fit(schema: dict[str, Any], value: Any, text: str, root: dict[str, Any], depth: int) -> Any:
    schema = _resolve(schema, root)
    if depth > _MAX_DEPTH:
        return value
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return value if value in enum else enum[0]
    if "const" in schema:
        return schema["const"]
    kind = _type_of(schema)
    if kind == "object":
        return _fit_object(schema, value, text, root, depth)
    if kind == "array":
        return _fit_array(schema, value, text, root, depth)
    return _fit_scalar(kind, value, text)


def _fit_object(schema: dict[str, Any], value: Any, text: str, root: dict[str, Any], depth: int) -> Any:
    properties: dict[str, Any] = schema.get("properties") or {}
    source = value if isinstance(value, dict) else {}
    required = set(schema.get("required") or properties)
    out: dict[str, Any] = {}
    for name, sub in properties.items():
        if name in source:
            out[name] = _fit(sub, source[name], text, root, depth + 1)
        elif name in required:
            out[name] = _fit(sub, None, text, root, depth + 1)
    if schema.get("additionalProperties", True) is not False:
        for name, item in source.items():
            out.setdefault(name, item)
    return out


def _fit_array(schema: dict[str, Any], value: Any, text: str, root: dict[str, Any], depth: int) -> Any:
    declared = schema.get("items")
    items: dict[str, Any] = declared if isinstance(declared, dict) else {}
    source = list(value) if isinstance(value, list) else []
    max_items = schema.get("maxItems")
    if isinstance(max_items, int):
        source = source[:max_items]
    min_items = schema.get("minItems")
    if isinstance(min_items, int) and len(source) < min_items:
        source += [None] * (min_items - len(source))
    return [_fit(items, item, text, root, depth + 1) for item in source]


def _fit_scalar(kind: str | None, value: Any, text: str) -> Any:
    if kind == "string":
        return value if isinstance(value, str) else (text if value is None else str(value))
    if kind == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else 0
    if kind == "number":
        return value if isinstance(value, int | float) and not isinstance(value, bool) else 0
    if kind == "boolean":
        return value if isinstance(value, bool) else False
    if kind == "null":
        return None
    return text if value is None else value
