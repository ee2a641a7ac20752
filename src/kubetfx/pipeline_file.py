"""Reading a compiled KFP pipeline file and typing its run parameters.

One reader and one coercer for every command that takes a compiled pipeline: ``kubetfx run``
(:mod:`kubetfx.local.spec` adds the checks only the local runner needs) and ``kubetfx submit``
and ``kubetfx schedule apply`` (:mod:`kubetfx.kfpclient`), so a ``--param`` means the same
thing whether the pipeline runs on this machine or on Kubeflow.

Parameter values are typed by the pipeline's declaration (``parameterType``):

- ``STRING``: the text as given.
- ``NUMBER_INTEGER``: a whole number (``3``); ``3.0`` from a file is accepted as 3.
- ``NUMBER_DOUBLE``: any number (``0.1``, ``3``).
- ``BOOLEAN``: ``true``/``false``, ``yes``/``no`` or ``1``/``0``, in any case. These six
  spellings are the ones YAML and most command lines use for a switch, none of them can be
  mistaken for another; anything else is an error naming the parameter and the spellings.
- ``LIST`` and ``STRUCT``: JSON (``'["a", "b"]'``, ``'{"k": 1}'``).

Text (from ``--param NAME=VALUE``) is converted; a typed value (from a schedule file or a
Python call) must already fit. Every error names the parameter, the value and what fits.

Also here: which KFP backend a compiled file needs at least (:func:`platform_floor`), a fact
about the file that the upload check (:mod:`kubetfx.kfpclient.versions`) judges.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubetfx.errors import ParameterError, PipelineSpecError

Release = tuple[int, ...]  # (major, minor, patch)

# The oldest KFP backend release that runs kubetfx's compiled pipelines (docs/kubeflow.md
# has the matrix). The driver parses each task's Kubernetes platform config strictly;
# kfp-kubernetes 1.5 writes the ``*NameParameter`` fields, which the drivers of 2.4.x and
# earlier do not know, so every task fails there.
KUBETFX_BACKEND_FLOOR: Release = (2, 5, 0)
# Platform-config fields the KFP driver knows only from 2.5.0 on (kfp-kubernetes 1.5 writes them).
PLATFORM_FIELDS_SINCE_2_5 = (
    "configMapNameParameter",
    "secretNameParameter",
    "pvcNameParameter",
    "nodeSelectorJson",
    "tolerationJson",
)

BOOLEAN_SPELLINGS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False}

_TYPES: dict[str, type] = {
    "STRING": str,
    "NUMBER_INTEGER": int,
    "NUMBER_DOUBLE": float,
    "BOOLEAN": bool,
    "LIST": list,
    "STRUCT": dict,
}


@dataclass(frozen=True)
class PipelineFile:
    """A compiled pipeline YAML as read: its PipelineSpec, platform spec and content hash."""

    path: Path
    spec: dict[str, Any]
    platform: dict[str, Any] = field(default_factory=dict)
    digest: str = ""  # sha256 of the file's bytes

    @property
    def name(self) -> str:
        """The pipeline's name (``pipelineInfo.name``; the file's stem if it has none)."""
        return str(self.spec["pipelineInfo"].get("name") or self.path.stem)

    @property
    def sdk_version(self) -> str | None:
        """The kfp SDK that compiled the file, as it recorded itself (``kfp-2.14.3``)."""
        return self.spec.get("sdkVersion")

    @property
    def parameters(self) -> dict[str, dict[str, Any]]:
        """The pipeline's own parameters and their declarations (type, default, optional)."""
        return declared_parameters(self.spec)

    @property
    def floor(self) -> tuple[Release, str] | None:
        """See :func:`platform_floor`."""
        return platform_floor(self.platform)

    @property
    def version_name(self) -> str:
        """Default pipeline version name: the first 12 hex digits of the file's SHA-256."""
        return f"sha256-{self.digest[:12]}"


def read(path: str | Path) -> PipelineFile:
    """Read a compiled KFP v2 pipeline YAML (the file ``kubetfx compile`` writes).

    Raises:
        PipelineSpecError: no such file, not text, not YAML (with line and column), or not a
            compiled pipeline.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise PipelineSpecError(f"{path}: no such pipeline file; compile one with `kubetfx compile`")
    raw = path.read_bytes()
    try:
        # libyaml's loader where PyYAML has it: the same documents, 8x faster than the
        # pure-Python one (0.19 s -> 0.02 s for the reference pipeline, on every run).
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        docs = [d for d in yaml.load_all(raw.decode(), Loader=loader) if d is not None]  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        raise PipelineSpecError(f"{path}{where}: not valid YAML ({getattr(err, 'problem', err)})") from None
    except UnicodeDecodeError as err:
        raise PipelineSpecError(f"{path}: not a text file ({err.reason} at byte {err.start})") from None
    spec = pipeline_spec(docs[0] if docs else None)
    if spec is None:
        raise PipelineSpecError(
            f"{path}: not a compiled KFP pipeline (no pipelineInfo/root); compile the "
            "pipeline function with kfp.compiler.Compiler().compile(...) and use the YAML"
        )
    platform = docs[1] if len(docs) > 1 and isinstance(docs[1], dict) else {}
    return PipelineFile(path=path, spec=spec, platform=platform, digest=hashlib.sha256(raw).hexdigest())


def pipeline_spec(doc: Any) -> dict[str, Any] | None:
    """The PipelineSpec in a YAML document or a server's pipeline_spec (maybe wrapped with platform_spec)."""
    if isinstance(doc, dict) and isinstance(doc.get("pipeline_spec"), dict):
        doc = doc["pipeline_spec"]
    if isinstance(doc, dict) and isinstance(doc.get("pipelineInfo"), dict) and "root" in doc:
        return doc
    return None


def platform_spec(doc: Any) -> Any:
    """The platform spec a server's pipeline_spec carries next to the PipelineSpec, if any."""
    return doc.get("platform_spec") if isinstance(doc, dict) else None


def declared_parameters(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A PipelineSpec's root parameters: name -> declaration (``parameterType``, ``defaultValue``...)."""
    params = ((spec.get("root") or {}).get("inputDefinitions") or {}).get("parameters") or {}
    return {str(k): dict(v or {}) for k, v in params.items()}


def platform_floor(platform: Any) -> tuple[Release, str] | None:
    """(oldest KFP backend whose driver parses it, the field that needs it) for a compiled
    pipeline's Kubernetes platform spec; None when nothing in it needs a newer driver."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in PLATFORM_FIELDS_SINCE_2_5:
                    found.append(key)
                walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(platform)
    return (KUBETFX_BACKEND_FLOOR, found[0]) if found else None


def coerce_parameter(name: str, declared: dict[str, Any], raw: Any, where: str = "") -> Any:
    """Turn a ``--param`` value (text) or a typed value into the declared type, or explain.

    ``where`` (e.g. ``"schedule 'nightly': "``) starts every message. The rules are in this
    module's docstring.

    Raises:
        ParameterError: naming the parameter, the value and what the type accepts.
    """
    kind = declared.get("parameterType", "STRING")
    want = _TYPES.get(kind)
    if want is None:
        raise ParameterError(f"{where}parameter {name!r} has type {kind}, which kubetfx cannot set")
    if not isinstance(raw, str) or want is str:
        value = raw
    elif want is bool:
        spelled = raw.strip().lower()
        if spelled not in BOOLEAN_SPELLINGS:
            raise ParameterError(
                f"{where}parameter {name!r} must be true or false, got {raw!r} "
                "(accepted: true/false, yes/no, 1/0, in any case)"
            )
        value = BOOLEAN_SPELLINGS[spelled]
    elif want in (int, float):
        try:
            value = want(raw)
        except ValueError:
            expected = "an integer" if want is int else "a number"
            raise ParameterError(f"{where}parameter {name!r} must be {expected}, got {raw!r}") from None
    else:
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ParameterError(
                f"{where}parameter {name!r} must be JSON ({kind.lower()}), got {raw!r}: {err.msg} "
                f"at column {err.colno}"
            ) from None
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if want is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, want) or (want in (int, float) and isinstance(value, bool)):
        raise ParameterError(
            f"{where}parameter {name!r} must be of type {kind.lower()}, got {type(value).__name__} {value!r}"
        )
    return value


def typed_parameters(
    given: dict[str, Any],
    declared: dict[str, dict[str, Any]],
    pipeline: str,
    *,
    where: str = "",
    with_defaults: bool = False,
    how: str = "pass --param {name}=VALUE",
) -> dict[str, Any]:
    """Check run parameters against the pipeline's and give each its declared type.

    Returns the given parameters, typed; with ``with_defaults`` (the local runner, which has
    no server to fill them in) also every other declared parameter that has a default.
    ``how`` says how to give a missing parameter (``{name}`` is filled in).

    Raises:
        ParameterError: an unknown name (listing the pipeline's), a required one missing, or a
            value that does not fit its type (see :func:`coerce_parameter`).
    """
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ParameterError(
            f"{where}unknown parameter {unknown[0]!r} for pipeline {pipeline!r}; "
            f"it takes: {', '.join(sorted(declared)) or 'no parameters'}"
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            values[name] = coerce_parameter(name, spec, given[name], where)
        elif "defaultValue" in spec:
            if with_defaults:
                values[name] = coerce_parameter(name, spec, spec["defaultValue"], where)
        elif not spec.get("isOptional"):
            raise ParameterError(
                f"{where}pipeline {pipeline!r} needs parameter {name!r} (it has no default); "
                f"{how.format(name=name)}"
            )
    return values
