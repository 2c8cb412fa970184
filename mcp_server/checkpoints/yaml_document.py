"""The checkpoint file's YAML dialect: one document, the data then the history lines as top-level
keys (a phase may repeat, so the history is read from the composed node tree, where repeated keys
survive in order). Times stay strings: no YAML 1.1 timestamps. libyaml's C classes when PyYAML has
them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from mcp_server.checkpoints.model import HISTORY_HEADER, HISTORY_LINE, PHASES, CheckpointError, HistoryEntry
from mcp_server.checkpoints.validation import schema, validate_data

_HISTORY_KEY = re.compile(r"^P[0-9]+$")
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_BaseDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Loader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loading without YAML 1.1 timestamps: a hand-written time stays the string the schema wants."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        # A scalar's tag depends only on its text and quoting: the same keys and words recur in
        # every checkpoint, so each is matched against the resolvers' patterns once.
        if kind is not yaml.ScalarNode or len(value) > 64:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = _RESOLVED.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(_RESOLVED) < 100_000:
                _RESOLVED[key] = tag
        return tag


_RESOLVED: dict[tuple[str, Any], str] = {}


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _Dumper(_BaseDumper):  # type: ignore[misc, valid-type]
    """Token counts on one line, multi-line text as a literal block: easy to read with cat."""


class _Flow(dict):  # type: ignore[type-arg]
    pass


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text and not any(line != line.rstrip() for line in text.split("\n")) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(
    _Flow, lambda dumper, data: dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)
)


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return f"{where}{problem}"


def parse_checkpoint(text: str, path: Path, story: str | None = None) -> tuple[dict[str, Any], list[HistoryEntry]]:
    """The validated data and the history lines of a checkpoint file's text."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.YAMLError as error:
        raise CheckpointError(f"{path} is not valid YAML: {_yaml_problem(error)}") from None
    if not isinstance(root, yaml.MappingNode):
        raise CheckpointError(f"{path} must hold a YAML mapping (story, phases, ...); it holds {_node_kind(root)}")
    data_pairs, history = _split_history(root, path)
    try:
        data = _construct(yaml.MappingNode(root.tag, data_pairs))
    except yaml.YAMLError as error:
        raise CheckpointError(f"{path} is not valid YAML: {_yaml_problem(error)}") from None
    validate_data(data, path)
    if story is not None and data["story"] != story:
        raise CheckpointError(f"{path} says story {data['story']!r}, but its name says {story!r}")
    return data, history


_STR, _MAP, _SEQ = "tag:yaml.org,2002:str", "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"
_SCALARS = {f"tag:yaml.org,2002:{name}": f"construct_yaml_{name}" for name in ("int", "float", "bool", "null")}


class _NotPlain(Exception):
    """A node the plain builder leaves to PyYAML's constructor (merge keys, other tags, cycles)."""


def _construct(node: yaml.Node) -> Any:
    """What ``construct_document`` makes of ``node``, built without its per-node bookkeeping (a
    third of a cold report's YAML time) for the plain JSON-like data a checkpoint holds; anything
    else goes through PyYAML's constructor as before."""
    loader = _Loader("")
    try:
        return _plain(node, loader, 0)
    except _NotPlain:
        return loader.construct_document(node)


def _plain(node: yaml.Node, loader: Any, depth: int) -> Any:
    if depth > 100:  # an alias cycle, or nesting no checkpoint has
        raise _NotPlain
    tag = node.tag
    if tag == _STR:
        return node.value
    if tag == _MAP:
        result = {}
        for key_node, value_node in node.value:
            key = _plain(key_node, loader, depth + 1)
            if isinstance(key, (dict, list)) or key_node.tag not in (_STR, *_SCALARS):
                raise _NotPlain  # a merge key (<<), an unhashable key: PyYAML's rules and errors
            result[key] = _plain(value_node, loader, depth + 1)
        return result
    if tag == _SEQ:
        return [_plain(item, loader, depth + 1) for item in node.value]
    method = _SCALARS.get(tag)
    if method is None or not isinstance(node, yaml.ScalarNode):
        raise _NotPlain
    return getattr(loader, method)(node)


def _node_kind(node: yaml.Node | None) -> str:
    if node is None:
        return "nothing (the file is empty)"
    return "a list" if isinstance(node, yaml.SequenceNode) else "a single value"


def _split_history(root: yaml.MappingNode, path: Path) -> tuple[list[tuple[yaml.Node, yaml.Node]], list[HistoryEntry]]:
    data_pairs, history, seen = [], [], set()
    for key_node, value_node in root.value:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if isinstance(key, str) and _HISTORY_KEY.match(key):
            history.append(_history_entry(key, value_node, path))
            continue
        if key in seen:
            raise CheckpointError(f"{path}: line {key_node.start_mark.line + 1}: key {key!r} appears twice")
        seen.add(key)
        data_pairs.append((key_node, value_node))
    return data_pairs, history


def _history_entry(key: str, value: yaml.Node, path: Path) -> HistoryEntry:
    line = f"{key}: {value.value}" if isinstance(value, yaml.ScalarNode) else key
    match = HISTORY_LINE.match(line)
    if match is None:
        raise CheckpointError(
            f"{path}: line {value.start_mark.line + 1}: history line {line!r} is not in the form "
            "'P1: ✓ ux-designer 14:05' (P1..P7, one of ✓ ✗ ↻ –, one-word agent, HH:MM, then optionally run=<id>)"
        )
    return HistoryEntry(match["phase"], match["mark"], match["agent"], match["time"], match["run"])


def render_checkpoint(data: Mapping[str, Any], history: Sequence[HistoryEntry]) -> str:
    body = yaml.dump(
        _for_yaml(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    # libyaml closes a document that holds a text ending in a blank line (a `|+` block) with "...";
    # the history lines after it would then start a second document, and the file would not read.
    body = body.removesuffix("\n...\n")
    return "\n".join([body.rstrip("\n"), "", HISTORY_HEADER, *(entry.render() for entry in history)]) + "\n"


def _for_yaml(data: Mapping[str, Any]) -> dict[str, Any]:
    ordered = {key: data[key] for key in schema()["required"] if key in data}
    ordered["phases"] = {name: _phase_for_yaml(data["phases"][name]) for name in PHASES}
    return ordered


def _phase_for_yaml(phase: Mapping[str, Any]) -> dict[str, Any]:
    ordered = {key: phase[key] for key in schema()["$defs"]["phase"]["properties"] if key in phase}
    ordered["tokens"] = {provider: _Flow(counts) for provider, counts in phase["tokens"].items()}
    return ordered
