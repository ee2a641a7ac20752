"""The kubetfx component factory: a thin layer over ``kfp.dsl.component``.

Two things are added to what ``@dsl.component`` produces, both visible in the
compiled YAML:

* the container runs ``python3 -m kubetfx.task`` instead of ``kfp.dsl.executor_main``.
  ``kubetfx.task`` takes the very same arguments, runs KFP's own executor, and records
  the task's lineage in ML Metadata around it, in the container as well as locally.
  The command names the KFP entry point it stands in for (``--kfp_executor
  kfp.dsl.executor_main``): ``kubetfx.task`` checks it, and the KFP SDK's own local
  runner (``kfp.local.SubprocessRunner``) looks for that module name in a command before
  it runs a task, so kubetfx components run there too (docs/local-runner.md);
* two optional inputs: ``kubetfx_lineage_scope`` (the lineage scope of the run, filled
  from the pipeline's scope parameter, see :func:`kubetfx.cluster.use_lineage_scope`) and
  ``kubetfx_data_fingerprint`` (the content fingerprint of the data a task reads, so that
  KFP's cache key changes with the data; the task checks it against what it read).

The run's identity (pipeline, run, task) is *not* an input: the KFP backend's cache key
holds every input value, and a run id there would make every run miss. It comes from
the environment (:mod:`kubetfx.identity`, :func:`kubetfx.cluster.use_cluster_settings`).
The command also names KFP's identity placeholders (``--kubetfx_run_id
'{{$.pipeline_job_uuid}}'`` ...): the KFP SDK's local runner and kubetfx's own resolve
them there; the KFP backend's launcher leaves them as they are (the environment applies),
and as compiled text they are the same on every run, so they never change a cache key.

The command also carries ``KUBETFX_COMPONENT_VERSION``: the kubetfx version plus a hash
of the component's own source files, which goes into cache keys and lineage.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfp import dsl
from kfp.dsl import pipeline_context, python_component, structures

from kubetfx import __version__
from kubetfx.identity import KUBETFX_INPUTS, SCOPE_INPUT
from kubetfx.images import RUNTIME_IMAGE

SCOPE_ATTRIBUTE = "_kubetfx_lineage_scope"  # set on the pipeline being defined
# kubetfx.task's identity arguments, each a KFP placeholder inside the compiled command.
IDENTITY_ARGS = (
    ("--kubetfx_pipeline", dsl.PIPELINE_JOB_NAME_PLACEHOLDER),
    ("--kubetfx_run_id", dsl.PIPELINE_JOB_ID_PLACEHOLDER),
    ("--kubetfx_task", dsl.PIPELINE_TASK_NAME_PLACEHOLDER),
)
KFP_EXECUTOR_MODULE = "kfp.dsl.executor_main"
KFP_EXECUTOR = f"python3 -m {KFP_EXECUTOR_MODULE}"
TASK_MODULE = "kubetfx.task"


def task_command(version: str) -> str:
    """What replaces ``python3 -m kfp.dsl.executor_main`` in a component's command."""
    identity = " ".join(f"{flag} '{placeholder}'" for flag, placeholder in IDENTITY_ARGS)
    return (
        f"KUBETFX_COMPONENT_VERSION={version} python3 -m {TASK_MODULE}"
        f" --kfp_executor {KFP_EXECUTOR_MODULE} {identity}"
    )


def component_version(func: Callable[..., Any]) -> str:
    """``<kubetfx version>+<hash of the component folder's Python sources>``."""
    folder = Path(inspect.getsourcefile(func) or ".").parent
    digest = hashlib.blake2b(digest_size=6)
    for path in sorted(folder.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return f"{__version__}+{digest.hexdigest()}"


class KubetfxComponent(python_component.PythonComponent):
    """A KFP Python component whose tasks get the pipeline's lineage scope, when it has one."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        pipeline = pipeline_context.Pipeline.get_default_pipeline()
        scope = getattr(pipeline, SCOPE_ATTRIBUTE, None) if pipeline is not None else None
        if scope is not None:
            kwargs.setdefault(SCOPE_INPUT, scope)
        return super().__call__(*args, **kwargs)


def component(func: Callable[..., Any] | None = None, *, base_image: str = RUNTIME_IMAGE) -> Any:
    """Decorate a component function: ``@kubetfx.dsl.component`` (see module docstring)."""
    if func is None:
        return lambda f: component(f, base_image=base_image)
    base = dsl.component(func, base_image=base_image, install_kfp_package=False)
    spec = base.component_spec
    version = component_version(func)
    container = spec.implementation.container
    replaced = [
        part.replace(KFP_EXECUTOR, task_command(version)) if isinstance(part, str) else part
        for part in container.command
    ]
    if replaced == list(container.command):
        raise RuntimeError("kfp's component command changed; kubetfx.dsl needs updating")
    container.command = replaced
    inputs = dict(spec.inputs or {})
    for name in KUBETFX_INPUTS:
        inputs[name] = structures.InputSpec(type="String", default="", optional=True)
    spec.inputs = inputs
    return KubetfxComponent(component_spec=spec, python_func=func)
