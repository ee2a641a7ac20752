"""Extract, per KFP backend release, the message fields the backend's protos declare.

Usage (from a clone of https://github.com/kubeflow/pipelines with its tags):

    python scripts/kfp_backend_fields.py /path/to/kubeflow/pipelines 2.4.0 2.5.0 2.14.0 2.17.0 \\
        > tests/cluster/kfp_backend_fields.json

For each release it reads ``api/v2alpha1/pipeline_spec.proto`` and
``kubernetes_platform/proto/kubernetes_executor_config.proto`` at that tag (``git show``)
and writes, for every message, its fields by proto name (protojson also accepts the
lowerCamelCase JSON name), each as "LABEL TYPE": single, repeated or map, and a message's
full name, ``scalar`` (numbers, strings, enums) or ``opaque`` (google.protobuf.Struct,
Value...: any JSON).
``tests/cluster/test_backend_versions.py`` walks compiled pipelines through these, the
way the backend's strict protojson parse would reject an unknown field. Only field
names and types are kept: no proto text is copied.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

FILES = {
    "pipeline_spec": "api/v2alpha1/pipeline_spec.proto",
    "kubernetes_executor_config": "kubernetes_platform/proto/kubernetes_executor_config.proto",
}
SCALARS = {
    "double",
    "float",
    "int32",
    "int64",
    "uint32",
    "uint64",
    "sint32",
    "sint64",
    "fixed32",
    "fixed64",
    "sfixed32",
    "sfixed64",
    "bool",
    "string",
    "bytes",
}
TOKEN = re.compile(r'"[^"]*"|[A-Za-z_][\w.]*|\d+|[{}<>;=,\[\]()]')


def parse(text: str) -> tuple[str, dict[str, dict[str, Any]], set[str]]:
    """(package, {message: {field: spec}}, enum names) of one .proto file."""
    text = re.sub(r"//[^\n]*", "", re.sub(r"/\*.*?\*/", "", text, flags=re.S))
    tokens = TOKEN.findall(text)
    package = ""
    messages: dict[str, dict[str, Any]] = {}
    enums: set[str] = set()
    scope: list[tuple[str, str]] = []  # (kind, name) of the open blocks
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "package":
            package = tokens[i + 1]
            i += 3
            continue
        if tok in ("syntax", "import", "option") and not any(k == "message" for k, _ in scope[-1:]):
            i = tokens.index(";", i) + 1
            continue
        if tok in ("message", "enum", "oneof", "service") and i + 2 < len(tokens) and tokens[i + 2] == "{":
            name = tokens[i + 1]
            if tok == "message":
                messages[_qualified(package, scope, name)] = {}
            elif tok == "enum":
                enums.add(_qualified(package, scope, name))
            scope.append((tok, name))
            i += 3
            continue
        if tok == "}":
            scope.pop()
            i += 1
            continue
        kinds = [k for k, _ in scope]
        if not kinds or kinds[-1] in ("enum", "service"):
            i = tokens.index(";", i) + 1 if ";" in tokens[i:] else len(tokens)
            continue
        if tok in ("option", "reserved", "extensions"):
            i = tokens.index(";", i) + 1
            continue
        # A field: [repeated|optional] TYPE NAME = N [...];  or  map<K, V> NAME = N;
        end = tokens.index(";", i)
        field = tokens[i:end]
        i = end + 1
        label = "single"
        if field[0] in ("repeated", "optional", "required"):
            label = "repeated" if field[0] == "repeated" else "single"
            field = field[1:]
        if field[0] == "map":
            value_type = field[4]
            label, type_name, name = "map", value_type, field[6]
        else:
            type_name, name = field[0], field[1]
        message_scope = [(k, n) for k, n in scope if k == "message"]
        owner = _qualified(package, message_scope[:-1], message_scope[-1][1])
        messages[owner][name] = {"type": type_name, "label": label, "scope": owner}
    return package, messages, enums


def _qualified(package: str, scope: list[tuple[str, str]], name: str) -> str:
    names = [n for k, n in scope if k == "message"]
    return ".".join([package, *names, name])


def resolve(type_name: str, scope: str, messages: dict[str, Any], enums: set[str]) -> str:
    """A field type as a fully qualified message name, or a scalar/enum/well-known kind."""
    if type_name in SCALARS:
        return "scalar"
    if type_name.startswith("google.protobuf."):
        return "opaque"  # Struct, Value, ListValue, Duration...: any JSON
    if type_name.startswith("google.rpc."):
        return "opaque"
    parts = scope.split(".")
    while parts:
        candidate = ".".join([*parts, type_name])
        if candidate in messages:
            return candidate
        if candidate in enums:
            return "scalar"
        parts.pop()
    if type_name in messages:
        return type_name
    if type_name in enums:
        return "scalar"
    raise ValueError(f"unknown type {type_name} in {scope}")


def release_fields(repo: str, tag: str) -> dict[str, dict[str, Any]]:
    messages: dict[str, dict[str, Any]] = {}
    enums: set[str] = set()
    for path in FILES.values():
        text = subprocess.run(
            ["git", "-C", repo, "show", f"{tag}:{path}"], capture_output=True, text=True, check=True
        ).stdout
        _, found, found_enums = parse(text)
        messages.update(found)
        enums |= found_enums
    result: dict[str, dict[str, Any]] = {}
    for message, fields in messages.items():
        out = {}
        for name, spec in fields.items():
            out[name] = f"{spec['label']} {resolve(spec['type'], spec['scope'], messages, enums)}"
        result[message] = out
    return result


def main(argv: list[str]) -> None:
    repo, *tags = argv
    json.dump({tag: release_fields(repo, tag) for tag in tags}, sys.stdout, indent=0, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
