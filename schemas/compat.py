"""Backward compatibility between two versions of a published JSON Schema.

"Backward compatible" means a consumer built on the new schema can still read records
written under the old one: no field removed, none newly required, no type narrowed, no
enum value withdrawn. Adding optional fields, widening types and adding enum values
are fine. A breaking change ships only with a ``SCHEMA_VERSION`` bump and a changelog
entry; ``tests/unit/test_schema_compat.py`` enforces that against ``schemas/released/``.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """Every way ``new`` fails to read what ``old`` allowed, as readable sentences."""
    problems: list[str] = []
    _compare(old, new, old, new, "(record)", problems)
    return problems


def _resolve(node: Schema, root: Schema) -> Schema:
    while "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = root.get("$defs", {}).get(name, {})
    return node


def _types(node: Schema, root: Schema) -> set[str]:
    node = _resolve(node, root)
    if "anyOf" in node or "oneOf" in node:
        return set().union(*(_types(option, root) for option in node.get("anyOf") or node.get("oneOf") or []))
    declared = node.get("type")
    if declared is None:
        return {"object"} if "properties" in node else {"any"}
    return set(declared) if isinstance(declared, list) else {declared}


def _options(node: Schema, root: Schema) -> list[Schema]:
    node = _resolve(node, root)
    return [_resolve(o, root) for o in node.get("anyOf") or node.get("oneOf") or [node]]


def _compare(old: Schema, new: Schema, old_root: Schema, new_root: Schema, where: str, problems: list[str]) -> None:
    old_types, new_types = _types(old, old_root), _types(new, new_root)
    if "any" not in new_types and not old_types <= new_types:
        problems.append(f"{where}: type narrowed from {sorted(old_types)} to {sorted(new_types)}")
        return
    old_options = {tuple(sorted(_types(o, old_root))): o for o in _options(old, old_root)}
    new_options = {tuple(sorted(_types(o, new_root))): o for o in _options(new, new_root)}
    for key, old_option in old_options.items():
        new_option = new_options.get(key)
        if new_option is None:
            continue
        old_enum, new_enum = old_option.get("enum"), new_option.get("enum")
        if old_enum is not None and new_enum is not None and not set(old_enum) <= set(new_enum):
            problems.append(f"{where}: enum values withdrawn: {sorted(set(old_enum) - set(new_enum))}")
        if "properties" in old_option or "properties" in new_option:
            _compare_objects(old_option, new_option, old_root, new_root, where, problems)
        if "items" in old_option and "items" in new_option:
            _compare(old_option["items"], new_option["items"], old_root, new_root, f"{where}[]", problems)


def _compare_objects(
    old: Schema, new: Schema, old_root: Schema, new_root: Schema, where: str, problems: list[str]
) -> None:
    old_properties, new_properties = old.get("properties", {}), new.get("properties", {})
    prefix = "" if where == "(record)" else f"{where}."
    for name, old_property in old_properties.items():
        if name not in new_properties:
            problems.append(f"{prefix}{name}: field removed")
            continue
        _compare(old_property, new_properties[name], old_root, new_root, f"{prefix}{name}", problems)
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(newly_required):
        problems.append(f"{prefix}{name}: field is newly required")
