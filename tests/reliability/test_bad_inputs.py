"""The bad-input corpus: every defect a user can feed kubetfx, each with the
one message they must see.

Each case is run the way a user meets it, and checked for: a non-zero exit; one message
naming the file / line / column / feature / parameter and what to do; nothing published
at the failed task's outputs; and, where a run had started, a FAILED execution in lineage
with that message as its reason.

How each stage is run:

* before the run: the installed ``kubetfx`` command (``run``, ``compile --accelerator-profile``),
  which must exit 2 with one line on stderr and start nothing;
* example-gen: one ``kubetfx run`` of a pipeline compiled here with one ExampleGen task per
  case (a failing ExampleGen costs about a second, the command's start-up several), plus one
  case through the reference pipeline ``pipelines/training/pipeline.yaml``;
* schema-gen, example-validator, trainer, evaluator, pusher: the task exactly as its container
  runs it (``python3 -m kubetfx.task`` with the component's own program and an executor
  input), but in this process, so TensorFlow is imported once; upstream artifacts come from
  the executors, and the Evaluator's and Pusher's model is one model trained for the module.

The corpus (files in ``corpus/``; ``{c}`` is that folder). Where: ``before the run`` or the
task that fails. Message: fragments the message must contain.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kfp import compiler, dsl
from kubetfx.components import example_gen

from kubetfx.lineage.query import get_run, run_tasks
from kubetfx.lineage.store import connect

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).with_name("corpus")
TRAINING = str(REPO / "pipelines/training/pipeline.yaml")
PENGUINS = "pkg://palmerpenguins/data/penguins.csv"
CURATED = "pkg://kubetfx.schemas/penguins/schema.pbtxt"
KUBETFX = str(Path(sys.executable).with_name("kubetfx"))


@dataclass(frozen=True)
class Case:
    """One bad input: where it is caught, what is given, what the message must say."""

    id: str
    where: str  # "before the run" or the task that fails
    given: Any  # CLI arguments (before the run) or the task's inputs and parameters
    message: tuple[str, ...]
    marks: tuple[Any, ...] = field(default=())


def _c(*parts: str) -> str:
    return "{c}/" + "/".join(parts)


BEFORE = "before the run"
PROFILE = ("compile", "training", "-o", "{tmp}/gpu.yaml", "--accelerator-profile")

# fmt: off
CASES = [
    # ---- before the run: the pipeline file, its parameters, the settings -----------------
    Case("not_a_kfp_pipeline", BEFORE, ("run", _c("not_a_kfp_pipeline.yaml")),
         ("not_a_kfp_pipeline.yaml: not a compiled KFP pipeline (no pipelineInfo/root)",)),
    Case("pipeline_yaml_syntax_error", BEFORE, ("run", _c("pipeline_yaml_syntax_error.yaml")),
         ("pipeline_yaml_syntax_error.yaml:6:1: not valid YAML",)),
    Case("pipeline_wrong_field_type", BEFORE, ("run", _c("pipeline_wrong_field_type.yaml")),
         ("pipeline_wrong_field_type.yaml:7:7: root.dag.tasks: Map field tasks must be in a dict",
          "not a valid KFP pipeline spec")),
    Case("pipeline_file_missing", BEFORE, ("run", _c("no_such_pipeline.yaml")),
         ("no_such_pipeline.yaml: no such pipeline file",)),
    Case("param_integer_given_text", BEFORE, ("run", TRAINING, "-p", "epochs=many"),
         ("parameter 'epochs' must be an integer, got 'many'",)),
    Case("param_number_given_text", BEFORE, ("run", TRAINING, "-p", "learning_rate=fast"),
         ("parameter 'learning_rate' must be a number, got 'fast'",)),
    Case("param_boolean_given_text", BEFORE, ("run", TRAINING, "-p", "fail_on_anomalies=maybe"),
         ("parameter 'fail_on_anomalies' must be true or false, got 'maybe'",)),
    Case("param_list_bad_json", BEFORE, ("run", TRAINING, "-p", 'slice_features=["sex"'),
         ("parameter 'slice_features' must be JSON (list)", "at column 7")),
    Case("param_list_given_object", BEFORE, ("run", TRAINING, "-p", 'slice_features={"sex": 1}'),
         ("parameter 'slice_features' must be of type list, got dict",)),
    Case("param_unknown", BEFORE, ("run", TRAINING, "-p", "epoch=3"),
         ("unknown parameter 'epoch' for pipeline 'kubetfx-training'; it takes:", "epochs")),
    Case("param_not_name_value", BEFORE, ("run", TRAINING, "-p", "epochs"),
         ("--param 'epochs' is not NAME=VALUE",)),
    Case("accelerator_unknown_field", BEFORE, (*PROFILE, _c("accelerator_unknown_field.yaml")),
         ("accelerator_unknown_field.yaml: unknown field 'gpus'; fields: count",)),
    Case("accelerator_count_zero", BEFORE, (*PROFILE, _c("accelerator_count_zero.yaml")),
         ("accelerator_count_zero.yaml: count must be a whole number from 1 to 16, got 0",)),
    Case("accelerator_yaml_syntax_error", BEFORE, (*PROFILE, _c("accelerator_yaml_syntax_error.yaml")),
         ("accelerator_yaml_syntax_error.yaml:3:11: not valid YAML",)),
    Case("metadata_wrong_password", BEFORE, ("run", TRAINING, "--metadata", "{wrong_password_url}"),
         ("metadata store mysql://kubetfx:***@127.0.0.1:", "refused user 'kubetfx' (wrong password?)",
          "KUBETFX_METADATA_PASSWORD"), marks=(pytest.mark.mysql,)),
    Case("metadata_server_unreachable", BEFORE,
         ("run", TRAINING, "--metadata", "mysql://kubetfx:n0t-shown@127.0.0.1:1/mlmd"),
         ("cannot reach metadata store mysql://kubetfx:***@127.0.0.1:1/mlmd",
          "127.0.0.1:1: Connection refused")),
    Case("metadata_service_unreachable", BEFORE, ("run", TRAINING, "--metadata", "grpc://127.0.0.1:1"),
         ("cannot reach metadata service grpc://127.0.0.1:1",)),
    Case("metadata_url_unknown_scheme", BEFORE,
         ("run", TRAINING, "--metadata", "postgres://kubetfx:n0t-shown@db/mlmd"),
         ("unknown metadata store 'postgres://kubetfx:***@db/mlmd'",)),
    # ---- example-gen: files, folders, patterns and split settings --------------------------
    Case("input_missing", "example-gen", {"input_uri": _c("no_such_file.csv")},
         ("no_such_file.csv: no such file or folder; check input_uri",)),
    Case("empty_file", "example-gen", {"input_uri": _c("empty.csv")},
         ("empty.csv: file is empty; expected a header line and rows",)),
    Case("header_only", "example-gen", {"input_uri": _c("header_only.csv")},
         ("header_only.csv: has a header but no data rows",)),
    Case("ragged_extra_field", "example-gen", {"input_uri": _c("ragged_extra_field.csv")},
         ("ragged_extra_field.csv:4: row has 4 fields but the header has 3",)),
    Case("ragged_short_row", "example-gen", {"input_uri": _c("ragged_short_row.csv")},
         ("ragged_short_row.csv:3: row has 2 fields but the header has 3",)),
    Case("latin1_bytes", "example-gen", {"input_uri": _c("latin1_bytes.csv")},
         ("latin1_bytes.csv:2:4: byte 0xfc is not valid UTF-8; save the file as UTF-8",)),
    Case("gzip_named_csv", "example-gen", {"input_uri": _c("gzip_named_csv.csv")},
         ("gzip_named_csv.csv:1:2: byte 0x8b is not valid UTF-8",)),
    Case("blank_header_name", "example-gen", {"input_uri": _c("blank_header_name.csv")},
         ("blank_header_name.csv:1:2: column 2 of the header has no name",)),
    Case("duplicate_header", "example-gen", {"input_uri": _c("duplicate_header.csv")},
         ("duplicate_header.csv:1: header names column 'x' twice",)),
    Case("unclosed_quote", "example-gen", {"input_uri": _c("unclosed_quote.csv")},
         ("unclosed_quote.csv:3: a quoted field (column 'note') opens on this line and is never closed",)),
    Case("column_missing_in_one_file", "example-gen", {"input_uri": _c("column_missing_in_one_file")},
         ("part-2.csv:1: header differs from", "part-1.csv: missing ['y']")),
    Case("mixed_csv_and_parquet", "example-gen", {"input_uri": _c("mixed_csv_and_parquet")},
         ("input mixes CSV and Parquet files (part-1.csv, part-2.parquet)",)),
    Case("corrupt_parquet", "example-gen", {"input_uri": _c("corrupt.parquet")},
         ("corrupt.parquet: not a readable Parquet file",)),
    Case("folder_without_data", "example-gen", {"input_uri": _c("folder_without_data")},
         ("folder_without_data: folder has no .csv or .parquet files",)),
    Case("span_pattern_without_match", "example-gen",
         {"input_uri": _c("spans_column_dropped", "data-{SPAN}.csv")},
         ("data-{SPAN}.csv: no file matches this span pattern",)),
    Case("eval_split_empty", "example-gen", {"input_uri": _c("eval_split_empty.csv")},
         ("eval_split_empty.csv: split 'eval' got no rows out of 4",)),
    Case("splits_not_name_buckets", "example-gen", {"input_uri": PENGUINS, "splits": "train:2,eval"},
         ("splits 'train:2,eval': 'eval' is not NAME:BUCKETS",)),
    Case("partition_feature_not_a_column", "example-gen",
         {"input_uri": PENGUINS, "partition_feature": "colour"},
         ("partition_feature 'colour' is not a column; columns:",)),
    # ---- schema-gen --------------------------------------------------------------------------
    Case("label_key_not_in_schema", "schema-gen", {"label_key": "kind"},
         ("label_key 'kind' is not a feature of the schema; features: species",)),
    Case("schema_file_syntax_error", "schema-gen", {"schema_file": _c("schema_syntax_error.pbtxt")},
         ("schema_syntax_error.pbtxt:4:1",)),
    Case("schema_file_missing", "schema-gen", {"schema_file": _c("no_such_schema.pbtxt")},
         ("no_such_schema.pbtxt: schema file not found; check schema_file",)),
    # ---- example-validator (against the curated penguins schema) ---------------------------
    Case("type_change_number_to_text", "example-validator", {"data": _c("type_change_number_to_text.csv")},
         ("feature 'body_mass_g'", "Expected data of type: INT but got STRING", "fail_on_anomalies=false")),
    Case("feature_not_in_schema", "example-validator", {"data": _c("feature_not_in_schema.csv")},
         ("feature 'colour': New column",)),
    Case("column_missing_in_one_span", "example-validator",
         {"data": _c("spans_column_dropped", "span-{SPAN}.csv")},
         ("feature 'bill_depth_mm': Column dropped",)),
    # ---- trainer -----------------------------------------------------------------------------
    Case("label_one_class", "trainer", {"data": _c("label_one_class.csv"), "label_key": "churned"},
         ("label 'churned' has 1 class (['yes']); a classifier needs at least two",)),
    Case("label_infinite", "trainer", {"data": _c("label_infinite.csv"), "label_key": "churned"},
         ("label 'churned' is inf (not a class) in 1 row(s) of the", "split")),
    Case("label_empty", "trainer", {"data": _c("label_empty.csv")},
         ("label 'species' is missing (empty or NaN) in", "drop those rows or fill in their label")),
    Case("label_nan", "trainer", {"data": _c("label_nan.csv")},
         ("label 'species' is missing (empty or NaN) in",)),
    Case("module_raises", "trainer", {"module_file": _c("module_raises.py")},
         ("module_raises.py: run_fn raised ValueError: cannot find column 'flipper'",)),
    Case("module_without_run_fn", "trainer", {"module_file": _c("module_without_run_fn.py")},
         ("module_without_run_fn.py: defines no run_fn(fn_args)",)),
    Case("module_syntax_error", "trainer", {"module_file": "{tmp}/module_syntax_error.py"},
         ("module_syntax_error.py: importing the module failed: SyntaxError", "line 4")),
    Case("module_is_a_notebook", "trainer", {"module_file": _c("module_is_a_notebook.ipynb")},
         ("module_is_a_notebook.ipynb: not a Python file",)),
    Case("module_file_missing", "trainer", {"module_file": _c("no_such_module.py")},
         ("no_such_module.py: module file not found; check module_file",)),
    # ---- evaluator ---------------------------------------------------------------------------
    Case("slice_feature_unknown", "evaluator", {"slice_features": ["sex", "colour"]},
         ("slice_features: slice feature(s) ['colour'] not found", "fix slice_features")),
    Case("feature_cross_unknown", "evaluator", {"feature_crosses": ["sex,colour"]},
         ("feature_crosses: slice feature(s) ['colour'] not found",)),
    Case("saved_model_corrupt", "evaluator", {"model": _c("saved_model_corrupt")},
         ("saved_model_corrupt/Format-Serving: cannot call its 'serving_default' signature",
          "Error parsing message", "the model must be a SavedModel")),
    Case("saved_model_missing", "evaluator", {"model": _c("saved_model_missing")},
         ("saved_model_missing/Format-Serving: cannot call", "SavedModel file does not exist")),
    # ---- pusher (the push root is the test's serving/ folder) -------------------------------
    Case("push_destination_dotdot", "pusher", {"push_destination": "../elsewhere"},
         ("push destination '../elsewhere' contains '..'",)),
    Case("push_destination_elsewhere", "pusher", {"push_destination": "{tmp}/elsewhere"},
         ("elsewhere' is outside the allowed roots", "KUBETFX_PUSH_ROOT")),
    Case("push_destination_symlink_escape", "pusher", {"push_destination": "escape/team"},
         ("through a symlink) is outside the allowed roots",)),
    Case("model_name_not_a_folder_name", "pusher", {"model_name": "../penguins"},
         ("model_name '../penguins' is not allowed",)),
    Case("saved_model_truncated", "pusher", {"model": "truncated"},
         ("Format-Serving: the SavedModel does not load", "not pushed")),
]
# fmt: on


def cases(where: str) -> list[Any]:
    return [pytest.param(c, id=c.id, marks=c.marks) for c in CASES if c.where == where]


def fill(value: Any, **places: str) -> Any:
    """``{c}`` (the corpus folder) and other places filled in, through lists and dicts."""
    if isinstance(value, str):
        for name, actual in {"c": str(CORPUS), **places}.items():
            value = value.replace("{" + name + "}", actual)
        return value
    if isinstance(value, list | tuple):
        return type(value)(fill(v, **places) for v in value)
    if isinstance(value, dict):
        return {k: fill(v, **places) for k, v in value.items()}
    return value


def test_the_corpus_is_large_and_every_file_in_it_is_used() -> None:
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)
    text = json.dumps([c.given for c in CASES])
    unused = [p.name for p in CORPUS.iterdir() if p.name not in text and p.stem not in text]
    assert unused == [], f"corpus files no case uses: {unused}"


# ---------------------------------------------------------------------- lineage helpers


def executions(store_url: str, run_id: str) -> dict[str, Any]:
    """Task name -> TaskInfo of one run (``kubetfx runs show`` reads the same)."""
    return {t.task_name: t for t in run_tasks(connect(store_url), run_id)}


def assert_failed_with(task: Any, message: tuple[str, ...], published: tuple[str, ...] = ()) -> None:
    """A FAILED execution whose reason is the message, with no output artifact but the
    ``published`` ones (a failed validation publishes its complete report)."""
    assert task.state == "FAILED", (task.task_name, task.state)
    error = str(task.properties.get("error", ""))
    for fragment in message:
        assert fragment in error, f"{fragment!r} not in the recorded reason {error!r}"
    assert sorted(task.outputs) == sorted(published), f"{task.task_name} published {task.outputs}"


def assert_nothing_published(task_dir: Path, published: tuple[str, ...] = ()) -> None:
    """Only the task's own bookkeeping and the ``published`` outputs: no other output, not
    even a staged (.partial-*) one."""
    # A published report is the file ``report.html`` (reports keep their suffix).
    found = sorted(p.name.removesuffix(".html") for p in task_dir.iterdir() if p.name != ".kubetfx")
    assert found == sorted(published), sorted(task_dir.iterdir())


# ---------------------------------------------------------------------- before the run


@pytest.mark.parametrize("case", cases(BEFORE))
def test_caught_before_the_run(case: Case, workdir: Path, cli, request: pytest.FixtureRequest) -> None:
    places = {"tmp": str(workdir)}
    if "{wrong_password_url}" in json.dumps(case.given):
        db = request.getfixturevalue("mariadb")
        places["wrong_password_url"] = f"mysql://kubetfx:not-the-pa55word@127.0.0.1:{db['port']}/mlmd_x"
    result = cli(*fill(case.given, **places))
    assert result.returncode == 2, result.stdout + result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("kubetfx: error: ")
    for fragment in case.message:
        assert fragment in line
    for secret in ("n0t-shown", "not-the-pa55word"):
        assert secret not in result.stdout + result.stderr
    # Nothing started: no outputs, no run in lineage, no compiled file.
    assert not (workdir / "root").exists() and not (workdir / "gpu.yaml").exists()
    store = workdir / "mlmd.sqlite"
    assert not store.exists() or connect(f"sqlite:///{store}").mlmd.get_contexts() == []


# ---------------------------------------------------------------------- example-gen


@pytest.fixture(scope="module")
def example_gen_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One run of a pipeline with an ExampleGen task per example-gen case."""
    folder = tmp_path_factory.mktemp("example-gen-cases")
    batch = [c for c in CASES if c.where == "example-gen"]

    @dsl.pipeline(name="kubetfx-bad-inputs")
    def bad_inputs() -> None:
        for case in batch:
            example_gen(**fill(case.given)).set_display_name(case.id)

    path = folder / "bad_inputs.yaml"
    compiler.Compiler().compile(bad_inputs, str(path))
    tasks = yaml.safe_load(path.read_text())["root"]["dag"]["tasks"]
    env = {
        **os.environ,
        "KUBETFX_METADATA": f"sqlite:///{folder}/mlmd.sqlite",
        "KUBETFX_PIPELINE_ROOT": str(folder / "root"),
        "KUBETFX_PUSH_ROOT": str(folder / "serving"),
    }
    result = subprocess.run(
        [KUBETFX, "run", str(path)], capture_output=True, text=True, env=env, timeout=600, cwd=folder
    )
    run_id = re.search(r"^Run (\S+) FAILED in", result.stdout, re.MULTILINE)
    assert run_id, result.stdout + result.stderr
    return {
        "result": result,
        "metadata": env["KUBETFX_METADATA"],
        "run_id": run_id.group(1),
        "run_dir": folder / "root" / "kubetfx-bad-inputs" / run_id.group(1),
        "task_of": {task["taskInfo"]["name"]: name for name, task in tasks.items()},
    }


def test_the_example_gen_run_fails_with_exit_status_1(example_gen_run: dict[str, Any]) -> None:
    result = example_gen_run["result"]
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert get_run(connect(example_gen_run["metadata"]), example_gen_run["run_id"]).state == "FAILED"


@pytest.mark.parametrize("case", cases("example-gen"))
def test_caught_by_example_gen(case: Case, example_gen_run: dict[str, Any]) -> None:
    task = example_gen_run["task_of"][case.id]
    recorded = executions(example_gen_run["metadata"], example_gen_run["run_id"])[task]
    assert_failed_with(recorded, case.message)
    assert props_inputs(recorded)["input_uri"] == fill(case.given)["input_uri"]
    message = recorded.properties["error"]
    # The summary's row shows the message's start; the task's log ends with all of it.
    row = re.search(rf"^{task}\s+FAILED\s+[\d.]+s\s+(.*)$", example_gen_run["result"].stdout, re.MULTILINE)
    assert row and message.startswith(row.group(1).strip()), row
    log = (example_gen_run["run_dir"] / task / ".kubetfx" / "log.txt").read_text()
    assert log.strip().splitlines()[-1] == f"kubetfx: error: {message}" and "Traceback" not in log
    assert_nothing_published(example_gen_run["run_dir"] / task)


def props_inputs(task: Any) -> dict[str, Any]:
    return dict(task.properties.get("inputs") or {})


def test_the_reference_pipeline_stops_at_the_bad_file(workdir: Path, cli) -> None:
    result = cli("run", TRAINING, "--param", f"input_uri={CORPUS / 'ragged_extra_field.csv'}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    summary = {
        line.split()[0]: line
        for line in result.stdout.splitlines()
        if re.match(r"^[a-z][\w/-]+\s+[A-Z_]+", line)
    }
    assert (
        "FAILED" in summary["example-gen"]
        and "ragged_extra_field.csv:4: row has 4 fields" in summary["example-gen"]
    )
    # data-fingerprint only hashes the file's bytes (for KFP's cache key): it succeeds.
    assert "SUCCEEDED" in summary["data-fingerprint"]
    assert all(
        "NOT_RUN" in line for name, line in summary.items() if name not in ("example-gen", "data-fingerprint")
    )
    run_id = re.search(r"^Run (\S+) FAILED", result.stdout, re.MULTILINE).group(1)
    shown = cli("runs", "show", run_id)
    assert shown.returncode == 0 and re.search(r"example-gen\s+FAILED", shown.stdout), shown.stdout
    assert "output" not in shown.stdout, "a failed run lists no artifact"
    tasks = executions(f"sqlite:///{workdir}/mlmd.sqlite", run_id)
    assert_failed_with(
        tasks["example-gen"], ("ragged_extra_field.csv:4: row has 4 fields but the header has 3",)
    )
    assert tasks["data-fingerprint"].state == "COMPLETE"
    assert {t.state for name, t in tasks.items() if name not in ("example-gen", "data-fingerprint")} == {
        "CANCELED"
    }
    assert_nothing_published(next(workdir.glob(f"root/*/{run_id}/example-gen")))


# ---------------------------------------------------------------------- tasks, in this process


@dataclass
class TaskRun:
    """A task run as its container runs it; what it printed and left behind."""

    code: int
    stderr: str
    out_dir: Path
    task: Any  # its lineage (TaskInfo)


def run_task(
    component: str,
    artifacts: dict[str, tuple[str, dict[str, Any]]],
    params: dict[str, Any],
    out_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> TaskRun:
    """Run a kubetfx component's task as ``python3 -m kubetfx.task`` would, in this process.

    The program is the component's own (from its ``component.yaml``), the executor input what
    the KFP launcher builds; lineage goes to ``KUBETFX_METADATA`` as in any task.
    """
    from kubetfx import task as task_wrapper

    spec = yaml.safe_load((REPO / "components" / component / "component.yaml").read_text())
    [comp] = spec["components"].values()
    [executor] = spec["deploymentSpec"]["executors"].values()
    container = executor["container"]
    program = out_dir.parent / f"{component}-program" / "ephemeral_component.py"
    program.parent.mkdir(parents=True, exist_ok=True)
    program.write_text(container["command"][3])
    inputs, outputs = comp.get("inputDefinitions", {}), comp.get("outputDefinitions", {})
    values = {k: v["defaultValue"] for k, v in inputs.get("parameters", {}).items() if "defaultValue" in v}
    inner = out_dir / ".kubetfx"
    executor_input = {
        "inputs": {
            "parameterValues": {**values, **params},
            "artifacts": {
                key: {
                    "artifacts": [
                        {
                            "name": key,
                            "type": inputs["artifacts"][key]["artifactType"],
                            "uri": uri,
                            "metadata": meta,
                        }
                    ]
                }
                for key, (uri, meta) in artifacts.items()
            },
        },
        "outputs": {
            "parameters": {
                k: {"outputFile": str(inner / "outputs" / k)} for k in outputs.get("parameters", {})
            },
            "artifacts": {
                key: {
                    "artifacts": [
                        {"name": key, "type": v["artifactType"], "uri": str(out_dir / key), "metadata": {}}
                    ]
                }
                for key, v in outputs.get("artifacts", {}).items()
            },
            "outputFile": str(inner / "executor_output.json"),
        },
    }
    argv = [
        "--component_module_path",
        str(program),
        "--executor_input",
        json.dumps(executor_input),
        "--function_to_execute",
        container["args"][container["args"].index("--function_to_execute") + 1],
    ]
    run_id = f"bad-input-{out_dir.name}"
    task_name = component.replace("_", "-")
    saved_env, saved_path = dict(os.environ), list(sys.path)
    os.environ.update(
        {
            "_KFP_RUNTIME": "true",
            "KUBETFX_PIPELINE_NAME": "kubetfx-bad-inputs",
            "KUBETFX_RUN_ID": run_id,
            "KUBETFX_TASK_NAME": task_name,
        }
    )
    inner.mkdir(parents=True, exist_ok=True)
    capsys.readouterr()
    try:
        code = task_wrapper.run(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)
        sys.path[:] = saved_path
        sys.modules.pop("ephemeral_component", None)
    printed = capsys.readouterr()
    [recorded] = run_tasks(connect(os.environ["KUBETFX_METADATA"]), run_id)
    return TaskRun(code=code, stderr=printed.err, out_dir=out_dir, task=recorded)


def assert_task_failed(run: TaskRun, case: Case, published: tuple[str, ...] = ()) -> None:
    assert run.code == 1
    assert "Traceback" not in run.stderr, run.stderr
    # The message is the last thing printed (the validator's lists one feature per line).
    assert run.stderr.count("kubetfx: error: ") == 1, run.stderr
    message = run.stderr.split("kubetfx: error: ")[1]
    for fragment in case.message:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert_failed_with(run.task, case.message, published)
    assert_nothing_published(run.out_dir, published)


@pytest.fixture(scope="module")
def prepare(prepare_data) -> Callable[..., dict[str, tuple[str, dict[str, Any]]]]:
    """Examples, statistics and schema artifacts of a data set, made by the executors (cached)."""

    def _prepare(data: str = PENGUINS, label_key: str = "species", schema_file: str = CURATED):
        prepared = prepare_data(data, label_key, schema_file)
        return {name: (path, prepared.metadata[name]) for name, path in prepared.paths().items()}

    return _prepare


@pytest.fixture(scope="module")
def trained(
    prepare, prepare_data, train_model, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[str, dict[str, Any]]]:
    """One model for every Evaluator and Pusher case, a blessing for it, and a truncated copy."""
    data = prepare()
    model = train_model(prepare_data(), "species", hyperparameters={"epochs": 1, "hidden_units": [8]})
    root = tmp_path_factory.mktemp("trained")
    (root / "blessing").mkdir()
    (root / "blessing" / "BLESSED").write_text("")
    truncated = root / "truncated"
    shutil.copytree(model.path, truncated)
    graph = truncated / "Format-Serving" / "saved_model.pb"
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 3])
    model_meta = model.result.metadata()
    return {
        **data,
        "model": (model.path, model_meta),
        "truncated": (str(truncated), model_meta),
        "blessing": (str(root / "blessing"), {"kubetfx_type": "kubetfx.ModelBlessing", "blessed": 1}),
    }


def _model(given: dict[str, Any], trained: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = given.get("model", "model")
    if name in trained:
        return trained[name]
    return fill(name), {"kubetfx_type": "kubetfx.Model"}


@pytest.mark.parametrize("case", cases("schema-gen"))
def test_caught_by_schema_gen(case: Case, prepare, workdir: Path, capsys) -> None:
    data = prepare()
    params = {"schema_file": CURATED, "label_key": "species", **fill(case.given)}
    run = run_task("schema_gen", {"statistics": data["statistics"]}, params, workdir / case.id, capsys)
    assert_task_failed(run, case)


@pytest.mark.parametrize("case", cases("example-validator"))
def test_caught_by_example_validator(case: Case, prepare, workdir: Path, capsys) -> None:
    data = prepare(fill(case.given["data"]))
    inputs = {"statistics": data["statistics"], "schema": data["schema"]}
    run = run_task("example_validator", inputs, {}, workdir / case.id, capsys)
    # A failed validation publishes its complete anomalies, report and metrics first.
    assert_task_failed(run, case, published=("anomalies", "metrics", "report"))
    report = (run.out_dir / "report.html").read_text()
    [feature] = re.findall(r"feature '([^']+)'", case.message[0])
    assert "FAILED" in report and feature in report


@pytest.mark.parametrize("case", cases("trainer"))
def test_caught_by_trainer(case: Case, prepare, workdir: Path, capsys) -> None:
    given = fill(case.given, tmp=str(workdir))
    if "module_syntax_error" in given.get("module_file", ""):
        shutil.copy(CORPUS / "module_syntax_error.py.txt", given["module_file"])  # ruff would lint a .py
    label = given.get("label_key", "species")
    schema_file = CURATED if label == "species" else ""
    data = prepare(given.get("data", PENGUINS), label, schema_file)
    params = {"label_key": label, "epochs": 1, "module_file": given.get("module_file", "")}
    inputs = {k: data[k] for k in ("examples", "schema", "statistics")}
    run = run_task("trainer", inputs, params, workdir / case.id, capsys)
    assert_task_failed(run, case)


@pytest.mark.parametrize("case", cases("evaluator"))
def test_caught_by_evaluator(case: Case, trained, workdir: Path, capsys) -> None:
    given = fill(case.given)
    params = {"label_key": "species", "slice_features": ["sex"], "min_accuracy": 0.0}
    params.update({k: v for k, v in given.items() if k != "model"})
    inputs = {"examples": trained["examples"], "model": _model(given, trained)}
    run = run_task("evaluator", inputs, params, workdir / case.id, capsys)
    assert_task_failed(run, case)


@pytest.mark.parametrize("case", cases("pusher"))
def test_caught_by_pusher(case: Case, trained, workdir: Path, capsys) -> None:
    serving = Path(os.environ["KUBETFX_PUSH_ROOT"])
    serving.mkdir()
    (workdir / "outside").mkdir()
    (serving / "escape").symlink_to(workdir / "outside")
    given = fill(case.given, tmp=str(workdir))
    params = {"model_name": "penguins", "sample_size": 5, **{k: v for k, v in given.items() if k != "model"}}
    inputs = {
        "model": _model(given, trained),
        "blessing": trained["blessing"],
        "examples": trained["examples"],
    }
    run = run_task("pusher", inputs, params, workdir / case.id, capsys)
    assert_task_failed(run, case)
    published = [p for p in serving.rglob("*") if p.name.isdigit()]
    assert published == [] and list((workdir / "outside").iterdir()) == []
    assert not (workdir / "elsewhere").exists()
