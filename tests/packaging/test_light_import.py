"""Authoring stays light: composing and compiling imports no TensorFlow, TFDV, TFMA or Beam."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PIPELINE = Path(__file__).resolve().parents[2] / "pipelines" / "training" / "pipeline.yaml"

HEAVY = (
    "tensorflow",
    "tensorflow_data_validation",
    "tensorflow_model_analysis",
    "apache_beam",
    "tfx_bsl",
    "ml_metadata",
)

SCRIPT = """
import sys
sys.modules.update(dict.fromkeys({heavy!r}))  # None in sys.modules: any import of them fails
import kubetfx
import kubetfx.components
import kubetfx.pipelines
from kfp import compiler, dsl
from kubetfx.components import example_gen
from kubetfx.pipelines.training import training

@dsl.pipeline(name="composed")
def composed(uri: str = "data.csv"):
    example_gen(input_uri=uri)

compiler.Compiler().compile(composed, {out!r})
compiler.Compiler().compile(training, {out!r})
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r} and sys.modules[m] is not None)
print("LOADED", loaded)
"""


def test_compose_and_compile_without_heavy_libraries(tmp_path) -> None:
    code = SCRIPT.format(heavy=HEAVY, out=str(tmp_path / "p.yaml"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LOADED []" in done.stdout
    assert (tmp_path / "p.yaml").stat().st_size > 0


def test_cli_help_is_light() -> None:
    code = (
        f"import sys; sys.modules.update(dict.fromkeys({HEAVY!r}));"
        "from kubetfx.cli import cli; cli(['--help'], standalone_mode=False)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "run" in done.stdout and "runs" in done.stdout


def test_the_local_runner_loads_and_launches_without_kfps_authoring_side(tmp_path) -> None:
    """``kubetfx run`` needs the spec's protos and KFP's placeholders, not ``kfp.client``
    (the Kubernetes client, jsonschema: seconds of every run's start); kfp's public names
    still work afterwards."""
    code = f"""
import sys
from pathlib import Path
from kubetfx.local import spec
from kubetfx.local.launch import command_line
doc = spec.load({str(PIPELINE)!r})
assert doc.spec["pipelineInfo"]["name"] == "kubetfx-training"
argv = command_line(
    {{"command": ["echo", "{{{{$.pipeline_task_name}}}}", "{{{{$}}}}"]}},
    {{"inputs": {{}}, "outputs": {{"outputFile": "/r/out.json"}}}},
    pipeline_name="p", task_name="t", pipeline_root="/r", run_id="i",
)
assert argv[:2] == ["echo", "t"], argv
loaded = sorted(m for m in ("kubernetes", "kfp.client", "jsonschema") if m in sys.modules)
print("LOADED", loaded)
import kfp
from kfp import Client, dsl, compiler
assert kfp.Client is Client and callable(dsl.pipeline) and kfp.dsl is dsl
assert kfp.client.Client is Client and callable(kfp.components.load_component_from_file)
try:
    kfp.no_such_thing
except AttributeError:
    pass
else:
    raise AssertionError("kfp.no_such_thing")
print("NAMES OK")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "LOADED []" in done.stdout and "NAMES OK" in done.stdout
