"""Provenance and impact: walk lineage from one artifact, upstream or downstream.

The walk follows events from the artifact outwards (never lists a whole context), so its
cost grows with the size of the answer, not of the store. It sits behind
:class:`LineageSource`, a small interface with ML Metadata behind it today, so a backend
for the KFP API server's own artifact store (KEP-12147) can be added without touching the
CLI or the notebook API.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.errors import KubetfxError
from kubetfx.lineage.record import STATE_NAMES, props, quoted
from kubetfx.lineage.store import Store


@dataclass
class Node:
    """An artifact or an execution."""

    kind: str  # "artifact" | "execution"
    id: int
    type: str
    label: str  # an artifact's URI, an execution's task name
    state: str
    properties: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0

    @property
    def key(self) -> str:
        return f"{self.kind[0]}{self.id}"


@dataclass
class Edge:
    """An event: artifact -> execution (INPUT) or execution -> artifact (OUTPUT)."""

    source: str
    target: str
    name: str  # the input or output name


@dataclass
class Graph:
    """The nodes and edges a walk reached, from ``root``."""

    root: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def parents(self, key: str) -> list[tuple[Edge, Node]]:
        return [(e, self.nodes[e.source]) for e in self.edges if e.target == key]

    def children(self, key: str) -> list[tuple[Edge, Node]]:
        return [(e, self.nodes[e.target]) for e in self.edges if e.source == key]


NOT_EXPANDED = ("baseline_model",)

# One vocabulary of task states in every view (run summary, ``runs show``, lineage trees
# and pictures): KFP's run-time task states, plus CACHED (KFP shows a cache hit as its own
# state) and NOT_RUN (an upstream task failed, so the runner never started it). ML Metadata
# keeps its own execution states; they are translated here, for display only.
_KFP_STATES = {
    "COMPLETE": "SUCCEEDED",
    "CACHED": "CACHED",
    "FAILED": "FAILED",
    "RUNNING": "RUNNING",
    "NEW": "PENDING",
    "CANCELED": "CANCELED",
}


def task_state(mlmd_state: str, properties: dict[str, Any]) -> str:
    """The KFP name of an execution's state (``COMPLETE`` -> ``SUCCEEDED``...): a
    skipped task (``CANCELED`` with a reason) is ``SKIPPED``, or ``NOT_RUN`` when an
    upstream task failed."""
    if mlmd_state == "CANCELED" and properties.get("skipped_reason"):
        recorded = str(properties.get("task_state") or "")
        if recorded in ("SKIPPED", "NOT_RUN"):
            return recorded
        # Records written before the runner kept the state name: its reason says which.
        reason = str(properties["skipped_reason"])
        return "NOT_RUN" if reason.startswith("upstream task ") else "SKIPPED"
    return _KFP_STATES.get(mlmd_state, mlmd_state)


def task_seconds(properties: dict[str, Any]) -> float | None:
    """How long an execution ran, as lineage recorded it: from the start of the task's
    execution to its end (cached and skipped tasks: the moment it took to record them)."""
    seconds = properties.get("wall_seconds")
    if isinstance(seconds, int | float):
        return float(seconds)
    start, end = properties.get("start_time"), properties.get("end_time")
    if isinstance(start, int | float) and isinstance(end, int | float) and end >= start:
        return float(end - start)
    return None


class LineageSource(Protocol):
    """What the CLI and the Python API need from a lineage store."""

    def resolve(self, ref: str) -> Node: ...

    def pushes(self, model_name: str = "") -> list[Node]: ...

    def walk(self, ref: str, direction: str, max_hops: int = 20) -> Graph: ...


class MLMDLineage:
    """:class:`LineageSource` over an ML Metadata store (SQLite, MySQL or gRPC)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._types: dict[tuple[str, int], str] = {}

    def _type(self, kind: str, type_id: int) -> str:
        if (kind, type_id) not in self._types:
            get = (
                self.store.mlmd.get_artifact_types_by_id
                if kind == "artifact"
                else self.store.mlmd.get_execution_types_by_id
            )
            for t in self.store.call(get, [type_id]):
                self._types[(kind, t.id)] = t.name
        return self._types.get((kind, type_id), "?")

    def _artifact_node(self, artifact: pb.Artifact) -> Node:
        return Node(
            kind="artifact",
            id=artifact.id,
            type=self._type("artifact", artifact.type_id),
            label=artifact.uri,
            state=pb.Artifact.State.Name(artifact.state),
            properties=props(artifact),
            time=artifact.create_time_since_epoch / 1000,
        )

    def _execution_node(self, execution: pb.Execution) -> Node:
        p = props(execution)
        return Node(
            kind="execution",
            id=execution.id,
            type=self._type("execution", execution.type_id),
            label=str(p.get("task_name", "")),
            state=STATE_NAMES.get(execution.last_known_state, "UNKNOWN"),
            properties=p,
            time=execution.create_time_since_epoch / 1000,
        )

    def resolve(self, ref: str) -> Node:
        """An artifact by id, by URI (the newest live one there), ``MODEL_NAME:VERSION``, or
        a data source URI / ``span=N`` (the newest Examples read from it)."""
        from kubetfx.lineage.record import find_artifact

        if ref.isdigit():
            found = self.store.call(self.store.mlmd.get_artifacts_by_id, [int(ref)])
            if found:
                return self._artifact_node(found[0])
        else:
            if ":" in ref and "/" not in ref:
                return self._artifact_node(self._pushed(ref))
            artifact = find_artifact(self.store, ref)
            if artifact is not None:
                return self._artifact_node(artifact)
            examples = self.examples_from(ref)
            if examples:
                return examples[0]
        if not self.store.call(self.store.mlmd.get_artifact_types):
            raise KubetfxError(
                f"{self.store} holds no lineage yet; run a pipeline first (kubetfx run PIPELINE.yaml)"
            )
        raise KubetfxError(
            f"no artifact {ref!r} in {self.store}; give an artifact id or URI "
            "as `kubetfx runs show RUN` lists them"
        )

    def examples_from(self, ref: str, limit: int = 50) -> list[Node]:
        """Examples artifacts read from a data source URI (ExampleGen's ``input_uri``), or of
        a span (``span=N``), newest first."""
        from ml_metadata import metadata_store as ms

        if ref.startswith("span=") and ref[5:].isdigit():
            condition = f"custom_properties.span.int_value = {int(ref[5:])}"
        else:
            condition = f"custom_properties.input_uri.string_value = {quoted(ref)}"
        options = ms.ListOptions(
            filter_query=f"type = 'system.Dataset' AND {condition}",
            order_by=ms.OrderByField.ID,
            is_asc=False,
            limit=limit,
        )
        found = self.store.call(self.store.mlmd.get_artifacts, list_options=options)
        return [self._artifact_node(a) for a in found if a.state == pb.Artifact.LIVE]

    def _pushed(self, ref: str) -> pb.Artifact:
        """``MODEL_NAME:VERSION`` (or ``MODEL_NAME:ALIAS``): the push (or rollback) that
        published that version."""
        from ml_metadata import metadata_store as ms

        from kubetfx.artifacts.kinds import PUSHED_MODEL

        name, _, version = ref.rpartition(":")
        if name and version and not version.isdigit():  # MODEL_NAME:ALIAS, e.g. penguins:production
            from kubetfx.lineage.aliases import ALIAS_PATTERN, resolve_version

            if ALIAS_PATTERN.match(version):
                version = str(resolve_version(self.store, name, version))
        if not name or not version.isdigit():
            raise KubetfxError(
                f"{ref!r}: write a pushed model as MODEL_NAME:VERSION or MODEL_NAME:ALIAS, e.g. penguins:3"
            )
        query = (
            f"type = '{PUSHED_MODEL}' AND custom_properties.model_name.string_value = {quoted(name)}"
            f" AND custom_properties.version.int_value = {int(version)}"
        )
        options = ms.ListOptions(filter_query=query, order_by=ms.OrderByField.ID, is_asc=False, limit=10)
        found = [
            a
            for a in self.store.call(self.store.mlmd.get_artifacts, list_options=options)
            if props(a).get("pushed") in (1, True)
        ]
        if not found:
            raise KubetfxError(
                f"no push of model {name!r} version {version} is recorded in {self.store};"
                " `kubetfx lineage pushes` lists what was pushed"
            )
        return found[0]

    def pushes(self, model_name: str = "") -> list[Node]:
        """Every recorded push (and rollback), newest first; only ``model_name``'s if given."""
        from ml_metadata import metadata_store as ms

        from kubetfx.artifacts.kinds import PUSHED_MODEL

        query = f"type = '{PUSHED_MODEL}'"
        options = ms.ListOptions(filter_query=query, order_by=ms.OrderByField.ID, is_asc=False)
        nodes = [
            self._artifact_node(a)
            for a in self.store.call(self.store.mlmd.get_artifacts, list_options=options)
        ]
        return [
            n
            for n in nodes
            if n.properties.get("pushed") in (1, True)
            and (not model_name or n.properties.get("model_name") == model_name)
        ]

    def walk(self, ref: str, direction: str, max_hops: int = 20) -> Graph:
        """Everything upstream (``up``) or downstream (``down``) of an artifact."""
        root = self.resolve(ref)
        graph = Graph(root=root.key, nodes={root.key: root})
        queue = deque([(root, 0)])
        into_execution = pb.Event.OUTPUT if direction == "up" else pb.Event.INPUT
        out_of_execution = pb.Event.INPUT if direction == "up" else pb.Event.OUTPUT
        while queue:
            node, hops = queue.popleft()
            if hops >= max_hops:
                continue
            if node.kind == "artifact":
                events = [
                    e
                    for e in self.store.call(self.store.mlmd.get_events_by_artifact_ids, [node.id])
                    if e.type == into_execution
                ]
                ids = sorted({e.execution_id for e in events})
                found = (
                    {x.id: x for x in self.store.call(self.store.mlmd.get_executions_by_id, ids)}
                    if ids
                    else {}
                )
                for event in events:
                    other = self._execution_node(found[event.execution_id])
                    self._link(graph, queue, node, other, event, direction, hops)
            else:
                events = [
                    e
                    for e in self.store.call(self.store.mlmd.get_events_by_execution_ids, [node.id])
                    if e.type == out_of_execution
                ]
                ids = sorted({e.artifact_id for e in events})
                found = (
                    {x.id: x for x in self.store.call(self.store.mlmd.get_artifacts_by_id, ids)}
                    if ids
                    else {}
                )
                for event in events:
                    other = self._artifact_node(found[event.artifact_id])
                    self._link(graph, queue, node, other, event, direction, hops)
        return graph

    @staticmethod
    def _link(
        graph: Graph, queue: deque, node: Node, other: Node, event: Any, direction: str, hops: int
    ) -> None:
        name = event.path.steps[0].key if event.path.steps else ""
        source, target = (other, node) if direction == "up" else (node, other)
        edge = Edge(source=source.key, target=target.key, name=name)
        if all((e.source, e.target, e.name) != (edge.source, edge.target, edge.name) for e in graph.edges):
            graph.edges.append(edge)
        if other.key not in graph.nodes:
            graph.nodes[other.key] = other
            # A baseline is what a model was compared with, not what made it: show it,
            # do not walk the whole history of earlier runs through it.
            if name not in NOT_EXPANDED:
                queue.append((other, hops + 1))


# ---------------------------------------------------------------------- text


_SHOWN = (
    "span",
    "version",
    "fingerprint",
    "input_uri",
    "row_counts",
    "split_names",
    "kubetfx_component_version",
    "hyperparameters",
    "metrics",
    "device",
    "strategy",
    "run_id",
    "anomaly_count",
    "source",
    "label_key",
)


def _plain(value: Any) -> Any:
    """Integral numbers as ints (lineage structs keep every number as a double)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def stable(value: Any, digits: int = 4) -> Any:
    """A value for people to read and compare: integral numbers as ints, other floats
    rounded to ``digits`` significant digits, mappings sorted by key (lineage structs come
    back in no fixed order), at any depth."""
    value = _plain(value)
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {str(k): stable(value[k], digits) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [stable(v, digits) for v in value]
    return value


def _text(value: Any) -> str:
    """One fact's value on one line, the same on every call."""
    import json

    value = stable(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "), default=str)
    return str(value)


def _facts(node: Node) -> str:
    from datetime import datetime

    p = _plain(node.properties)
    parts = []
    if node.kind == "execution":
        inputs = p.get("inputs") or {}
        shown = {k: v for k, v in inputs.items() if not k.startswith("kubetfx_")}
        parts.append(f"run {p.get('run_id', '?')}")
        if shown:
            parts.append("params " + ", ".join(f"{k}={_text(v)}" for k, v in sorted(shown.items())))
        if p.get("kubetfx_component_version"):
            parts.append(f"code {p['kubetfx_component_version']}")
        if p.get("cached_execution_id"):
            parts.append(f"cached from execution {p['cached_execution_id']}")
    else:
        parts += [f"{k}={_text(p[k])}" for k in _SHOWN if k in p and p[k] not in ("", None)]
    when = datetime.fromtimestamp(node.time).strftime("%Y-%m-%d %H:%M:%S") if node.time else ""
    return "; ".join([when, *parts]) if when else "; ".join(parts)


def render_tree(graph: Graph, direction: str) -> str:
    """The walk as an indented tree (``<-`` upstream, ``->`` downstream)."""
    arrow = "<-" if direction == "up" else "->"
    lines: list[str] = []
    seen: set[str] = set()

    def visit(key: str, depth: int, via: str) -> None:
        node = graph.nodes[key]
        head = f"{'   ' * depth}{arrow + ' ' if depth else ''}{via + ': ' if via else ''}"
        if node.kind == "artifact":
            text = f"{node.type} {node.id} {node.label}"
        else:
            text = f"{node.label} (execution {node.id}, {task_state(node.state, node.properties)})"
        if key in seen:
            lines.append(f"{head}{text} (shown above)")
            return
        seen.add(key)
        lines.append(f"{head}{text}")
        facts = _facts(node)
        if facts:
            lines.append(f"{'   ' * (depth + 1)}  {facts}")
        steps = graph.parents(key) if direction == "up" else graph.children(key)
        for edge, other in sorted(steps, key=lambda s: (s[1].kind, s[0].name, s[1].id)):
            visit(other.key, depth + 1, edge.name)

    visit(graph.root, 0, "")
    return "\n".join(lines)


# ---------------------------------------------------------------------- picture


def draw(graph: Graph, path: str, title: str = "") -> str:
    """Draw the walk with Graphviz (artifacts as boxes, executions as ellipses, events as
    labelled edges) to ``path``; the format comes from its suffix (.svg, .png, .pdf)."""
    import shutil
    from pathlib import Path

    import graphviz

    suffix = Path(path).suffix.lstrip(".").lower()
    if suffix not in ("svg", "png", "pdf"):
        raise KubetfxError(f"{path}: give a .svg, .png or .pdf file name")
    if shutil.which("dot") is None:
        raise KubetfxError(
            "drawing needs Graphviz's dot program: apt-get install graphviz (or brew install graphviz)"
        )
    dot = graphviz.Digraph(
        graph_attr={"rankdir": "LR", "label": title, "labelloc": "t", "fontname": "Helvetica"}
    )
    dot.attr("node", fontname="Helvetica", fontsize="10")
    dot.attr("edge", fontname="Helvetica", fontsize="9", color="#57606a")
    for key, node in graph.nodes.items():
        if node.kind == "artifact":
            name = Path(node.label).name or node.label
            text = f"{node.type}\\n#{node.id} {name}"
            span = node.properties.get("span")
            if span is not None:
                text += f"\\nspan {int(span)}"
            dot.node(
                key,
                text,
                shape="box",
                style="rounded,filled",
                fillcolor="#ddf4ff" if key != graph.root else "#ffd8b5",
            )
        else:
            state = task_state(node.state, node.properties)
            color = {"SUCCEEDED": "#dafbe1", "CACHED": "#eef1f4", "FAILED": "#ffebe9"}.get(state, "#fff8c5")
            dot.node(
                key,
                f"{node.label}\\n#{node.id} {state}",
                shape="ellipse",
                style="filled",
                fillcolor=color,
            )
    for edge in graph.edges:
        dot.edge(edge.source, edge.target, label=edge.name)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(dot.pipe(format=suffix))
    return str(target)
