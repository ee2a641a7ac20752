"""KFP's own cache hits a second cluster run of a kubetfx pipeline on unchanged data.

The KFP backend decides a cache hit in its driver: it builds a ``CacheKey`` message from
the task's executor input and container (``backend/src/v2/cacheutils/cache.go``,
``GenerateCacheKey``), serializes it with protojson, re-formats that with Go's
``encoding/json`` and hashes it with SHA-256 (``GenerateFingerPrint``); a task whose
fingerprint matches an earlier task of the same pipeline in the namespace reuses that
execution and its output artifacts. Re-implemented here from the Go source:

* ``inputArtifactNames``: per input, the names of the input artifacts, which are their
  ML Metadata ids (``metadata/converter.go``: ``Name: strconv.FormatInt(id)``), so a
  task downstream of a cached task sees the same names, downstream of a re-run one new;
* ``inputParameterValues``: every resolved input parameter value, KFP's placeholders
  (``{{$.pipeline_job_uuid}}`` ...) replaced by the run's values (``driver/resolve.go``);
* ``outputArtifactsSpec``: per output, name, type and metadata (URI wiped);
* ``outputParametersSpec``: per output parameter, its type's enum name;
* ``containerSpec``: image, command + args *as compiled* (placeholders unresolved), PVCs.

Environment variables are not in it: that is where kubetfx tasks get their identity.

The driver is simulated over the compiled ``pipelines/training/pipeline.yaml`` for
several runs: root parameters with their defaults, task inputs resolved from pipeline
parameters and upstream outputs, a fresh artifact id for every output of a task that
runs, the cached execution's outputs for a task that hits. ``data_fingerprint`` runs its
real executor on real files. What is a stand-in: the other tasks' output parameters (the
executors do not run; each gets a fixed value, the same on every run) and the
Evaluator's blessing (always true, so the Pusher's condition holds).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TRAINING = REPO / "pipelines/training/pipeline.yaml"

# ----------------------------------------------------------------- the backend's algorithm


def _go_number(value: float) -> str:
    """A float64 as Go's encoding/json writes it (ES6 number formatting)."""
    if not math.isfinite(value):
        raise ValueError("encoding/json refuses NaN and infinities")
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    if 1e-6 <= abs(value) < 1e21:
        return format(Decimal(repr(value)), "f")
    mantissa, exponent = repr(value).split("e")  # shortest digits; Go drops the exponent's padding
    return f"{mantissa}e{int(exponent):+d}"


def go_json(value: Any) -> str:
    """Go's ``json.Marshal`` of a decoded ``interface{}``: sorted keys, compact, HTML-safe."""
    if isinstance(value, dict):
        items = (f"{go_json(str(k))}:{go_json(v)}" for k, v in sorted(value.items()))
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return _go_number(float(value))
    text = json.dumps(value, ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def generate_cache_key(
    inputs: dict[str, Any],
    outputs: dict[str, Any],
    output_parameter_types: dict[str, str],
    cmd_args: list[str],
    image: str,
    pvc_names: list[str] | None = None,
) -> dict[str, Any]:
    """``GenerateCacheKey``, as the protojson form of the ``CacheKey`` message (empty
    maps, lists and strings are left out, as protojson leaves them out)."""
    key: dict[str, Any] = {}
    names = {
        name: {"artifactNames": [a.get("name", "") for a in listed["artifacts"]]}
        for name, listed in inputs.get("artifacts", {}).items()
    }
    if names:
        key["inputArtifactNames"] = {k: v if v["artifactNames"] else {} for k, v in names.items()}
    if inputs.get("parameterValues"):
        key["inputParameterValues"] = dict(inputs["parameterValues"])
    specs = {}
    for name, listed in outputs.get("artifacts", {}).items():
        if not listed["artifacts"]:
            continue
        first = listed["artifacts"][0]  # uri wiped
        spec = {k: first[k] for k in ("name", "type", "metadata") if first.get(k) not in (None, "")}
        specs[name] = spec
    if specs:
        key["outputArtifactsSpec"] = specs
    if outputs.get("parameters"):
        key["outputParametersSpec"] = {name: output_parameter_types[name] for name in outputs["parameters"]}
    container: dict[str, Any] = {}
    if image:
        container["image"] = image
    if cmd_args:
        container["cmdArgs"] = list(cmd_args)
    if pvc_names:
        container["pvcNames"] = sorted(set(pvc_names))
    key["containerSpec"] = container
    return key


def generate_fingerprint(cache_key: dict[str, Any]) -> str:
    """``GenerateFingerPrint``: SHA-256 of the key re-formatted by Go's encoding/json."""
    return hashlib.sha256(go_json(cache_key).encode()).hexdigest()


# ----------------------------------------------------------------- the driver, simulated

PLACEHOLDERS = ("{{$.pipeline_job_name}}", "{{$.pipeline_job_uuid}}", "{{$.pipeline_task_name}}")


class Cluster:
    """What persists between runs: the cache (fingerprint -> outputs) and ML Metadata ids."""

    def __init__(self) -> None:
        self.cache: dict[str, dict[str, Any]] = {}
        self.ids = itertools.count(1)


class Run:
    """One run of a compiled pipeline through the simulated driver."""

    def __init__(self, cluster: Cluster, ir: dict[str, Any], run_id: str, parameters: dict[str, Any]) -> None:
        self.cluster = cluster
        self.ir = ir
        self.run_id = run_id
        self.fingerprints: dict[str, str] = {}
        self.executed: set[str] = set()
        root = ir["root"]["inputDefinitions"]["parameters"]
        values = {name: spec["defaultValue"] for name, spec in root.items() if "defaultValue" in spec}
        values.update(parameters)
        self._dag(ir["root"], values, {})

    def _dag(self, component: dict[str, Any], params: dict[str, Any], artifacts: dict[str, Any]) -> None:
        tasks = component["dag"]["tasks"]
        outputs: dict[str, dict[str, Any]] = {}
        pending = dict(tasks)
        while pending:
            ready = [n for n, t in pending.items() if all(d in outputs for d in t.get("dependentTasks", []))]
            assert ready, f"a cycle among {sorted(pending)}"
            for name in sorted(ready):
                task = pending.pop(name)
                inputs = self._inputs(name, task, params, artifacts, outputs)
                child = self.ir["components"][task["componentRef"]["name"]]
                if "dag" in child:
                    condition = task.get("triggerPolicy", {}).get("condition", "")
                    # The only conditions here: a boolean output == true.
                    if all(inputs["parameterValues"].get(k) is True for k in _condition_inputs(condition)):
                        passed = {k: v["artifacts"][0] for k, v in inputs["artifacts"].items()}
                        self._dag(child, inputs["parameterValues"], passed)
                    outputs[name] = {"parameters": {}, "artifacts": {}}
                else:
                    outputs[name] = self._container(name, task, child, inputs)

    def _inputs(
        self,
        name: str,
        task: dict[str, Any],
        params: dict[str, Any],
        artifacts: dict[str, Any],
        outputs: dict[str, dict[str, Any]],
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for key, spec in task.get("inputs", {}).get("parameters", {}).items():
            if "componentInputParameter" in spec:
                values[key] = params[spec["componentInputParameter"]]
            elif "taskOutputParameter" in spec:
                ref = spec["taskOutputParameter"]
                values[key] = outputs[ref["producerTask"]]["parameters"][ref["outputParameterKey"]]
            elif "runtimeValue" in spec:
                constant = spec["runtimeValue"]["constant"]
                values[key] = {
                    "{{$.pipeline_job_name}}": f"display name of {self.run_id}",
                    "{{$.pipeline_job_uuid}}": self.run_id,
                    "{{$.pipeline_task_name}}": task["taskInfo"]["name"],
                }.get(constant, constant)
            else:
                raise AssertionError(f"{name}: input {key} has a kind the simulation lacks: {spec}")
        found: dict[str, Any] = {}
        for key, spec in task.get("inputs", {}).get("artifacts", {}).items():
            if "componentInputArtifact" in spec:
                found[key] = artifacts[spec["componentInputArtifact"]]
            else:
                ref = spec["taskOutputArtifact"]
                found[key] = outputs[ref["producerTask"]]["artifacts"][ref["outputArtifactKey"]]
        return {"parameterValues": values, "artifacts": {k: {"artifacts": [v]} for k, v in found.items()}}

    def _container(
        self, name: str, task: dict[str, Any], component: dict[str, Any], inputs: dict[str, Any]
    ) -> dict[str, Any]:
        container = self.ir["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
        definitions = component.get("outputDefinitions", {})
        provisioned = {
            "artifacts": {
                key: {"artifacts": [{"name": key, "type": spec["artifactType"]}]}
                for key, spec in definitions.get("artifacts", {}).items()
            },
            "parameters": {
                key: {"outputFile": f"/tmp/kfp/outputs/{key}"} for key in definitions.get("parameters", {})
            },
        }
        types = {key: spec["parameterType"] for key, spec in definitions.get("parameters", {}).items()}
        key = generate_cache_key(
            inputs,
            provisioned,
            types,
            [*container.get("command", []), *container.get("args", [])],
            container["image"],
        )
        fingerprint = generate_fingerprint(key)
        self.fingerprints[name] = fingerprint
        if task.get("cachingOptions", {}).get("enableCache") and fingerprint in self.cluster.cache:
            return self.cluster.cache[fingerprint]
        self.executed.add(name)
        produced = {
            "artifacts": {k: {"name": str(next(self.cluster.ids))} for k in definitions.get("artifacts", {})},
            "parameters": execute(name, inputs["parameterValues"], types),
        }
        self.cluster.cache[fingerprint] = produced
        return produced


def _condition_inputs(condition: str) -> list[str]:
    import re

    return re.findall(r"inputs\.parameter_values\['([^']+)'\] == true", condition)


def execute(task: str, params: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    """A task's output parameters: data_fingerprint for real, the others fixed stand-ins."""
    if task == "data-fingerprint":
        from kubetfx.components.data_fingerprint import executor

        result = executor.run(params["input_uri"])
        return {"fingerprint": result.fingerprint, "span": result.span}
    stand_in = {"STRING": "", "NUMBER_INTEGER": 0, "NUMBER_DOUBLE": 0.0, "BOOLEAN": True}
    return {key: stand_in.get(kind, "") for key, kind in types.items()}


# ----------------------------------------------------------------- the tests

CACHED_TASKS = {
    "example-gen",
    "statistics-gen",
    "schema-gen",
    "trainer",
    "evaluator",
    "serving-check",
    "pusher",
}
# Caching off by design: they look at the data or read lineage (the drift baseline, the
# served model, the model card's rollouts and aliases) each run.
ALWAYS_RUN = {"data-fingerprint", "example-validator", "model-resolver", "model-card"}


@pytest.fixture
def training() -> dict[str, Any]:
    return next(yaml.safe_load_all(TRAINING.read_text()))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    from kubetfx.fingerprint import local_path

    path = tmp_path / "data" / "penguins.csv"
    path.parent.mkdir()
    shutil.copy(local_path("pkg://palmerpenguins/data/penguins.csv"), path)
    return path


def test_the_go_json_formatting_is_go_s() -> None:
    """Known answers of Go's json.Marshal on a decoded interface{}."""
    assert go_json({"b": 30.0, "a": "x<y && z>w", "c": [True, None, 0.01, 1e21]}) == (
        '{"a":"x\\u003cy \\u0026\\u0026 z\\u003ew","b":30,"c":[true,null,0.01,1e+21]}'
    )
    assert go_json(0.000001) == "0.000001" and go_json(1e-7) == "1e-7"


def test_a_second_run_on_unchanged_data_hits_kfp_s_cache(training: dict[str, Any], data: Path) -> None:
    cluster = Cluster()
    first = Run(cluster, training, "run-1", {"input_uri": str(data)})
    second = Run(cluster, training, "run-2", {"input_uri": str(data)})
    assert first.executed == CACHED_TASKS | ALWAYS_RUN  # nothing cached yet: everything ran
    assert second.executed == ALWAYS_RUN  # only the never-cached tasks run again
    for task in CACHED_TASKS:
        assert first.fingerprints[task] == second.fingerprints[task], task


def test_changed_data_at_the_same_uri_misses_from_example_gen_on(
    training: dict[str, Any], data: Path
) -> None:
    cluster = Cluster()
    first = Run(cluster, training, "run-1", {"input_uri": str(data)})
    with data.open("a") as f:
        f.write("Adelie,Torgersen,39.1,18.7,181,3750,male,2009\n")
    changed = Run(cluster, training, "run-2", {"input_uri": str(data)})
    assert changed.executed == CACHED_TASKS | ALWAYS_RUN
    for task in CACHED_TASKS:
        assert first.fingerprints[task] != changed.fingerprints[task], task


def test_another_lineage_scope_or_parameter_is_another_key(training: dict[str, Any], data: Path) -> None:
    cluster = Cluster()
    Run(cluster, training, "run-1", {"input_uri": str(data)})
    scoped = Run(cluster, training, "run-2", {"input_uri": str(data), "lineage_scope": "other-dataset"})
    assert scoped.executed == CACHED_TASKS | ALWAYS_RUN
    tuned = Run(cluster, training, "run-3", {"input_uri": str(data), "learning_rate": 0.02})
    # Data tasks are reused; the Trainer and everything after it run again.
    assert tuned.executed == ALWAYS_RUN | {"trainer", "evaluator", "serving-check", "pusher"}


def test_identity_as_an_input_parameter_would_miss_on_every_run(tmp_path: Path, data: Path) -> None:
    """The control: a component that takes the run id as an input, as kubetfx components
    did, misses KFP's cache on every run under the same simulation."""
    from kfp import compiler

    # Defined without this module's postponed annotations, which kfp cannot read.
    source = """
from kfp import dsl

@dsl.component(base_image="python:3.11")
def echo(text: str, run: str) -> str:
    return text + run

@dsl.pipeline(name="identity-as-input")
def identity_as_input(text: str = "a") -> None:
    echo(text=text, run=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
"""
    import importlib.util

    module_path = tmp_path / "identity_as_input.py"
    module_path.write_text(source)
    spec = importlib.util.spec_from_file_location("identity_as_input", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    identity_as_input = module.identity_as_input

    path = tmp_path / "p.yaml"
    compiler.Compiler().compile(identity_as_input, str(path))
    ir = next(yaml.safe_load_all(path.read_text()))
    cluster = Cluster()
    first = Run(cluster, ir, "run-1", {})
    second = Run(cluster, ir, "run-2", {})
    assert first.fingerprints["echo"] != second.fingerprints["echo"]
    assert second.executed == {"echo"}


def test_no_kubetfx_task_takes_a_per_run_placeholder_as_input() -> None:
    for path in sorted(REPO.glob("pipelines/*/pipeline.yaml")):
        ir = next(yaml.safe_load_all(path.read_text()))
        for component in [ir["root"], *ir["components"].values()]:
            for task_name, task in component.get("dag", {}).get("tasks", {}).items():
                for key, spec in task.get("inputs", {}).get("parameters", {}).items():
                    constant = spec.get("runtimeValue", {}).get("constant")
                    assert constant not in PLACEHOLDERS, (path.parent.name, task_name, key)
