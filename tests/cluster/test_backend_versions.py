"""The compiled pipelines parse in the driver of every KFP backend kubetfx calls supported,
and the submit preflight agrees with that list.

The KFP backend parses a pipeline's spec and each task's Kubernetes platform config with
protojson, which rejects a field it does not know. ``kfp_backend_fields.json`` holds, per
KFP release, the fields of every message of that release's ``pipeline_spec.proto`` and
``kubernetes_executor_config.proto`` (extracted by ``scripts/kfp_backend_fields.py`` from
the kubeflow/pipelines repository at each tag). Each compiled pipeline is walked through
them the way protojson would: every key must be a field (by proto or JSON name) of the
message at that place. What it does not prove: values (enums, numbers) and the driver's
own logic; only field names and nesting.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetfx.kfpclient.versions import KUBETFX_BACKENDS_CHECKED, check_versions
from kubetfx.pipeline_file import KUBETFX_BACKEND_FLOOR, platform_floor
from kubetfx.pipeline_file import read as read_pipeline

REPO = Path(__file__).resolve().parents[2]
FIELDS = json.loads(Path(__file__).with_name("kfp_backend_fields.json").read_text())
PIPELINES = sorted(REPO.glob("pipelines/*/pipeline.yaml"))


def _release(tag: str) -> tuple[int, ...]:
    return tuple(int(part) for part in tag.split("."))


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def unknown_fields(value: Any, message: str, fields: dict[str, dict[str, str]], path: str = "") -> list[str]:
    """Paths of keys in ``value`` that message ``message`` (and what it nests) lacks."""
    if not isinstance(value, dict):
        return [f"{path or '.'}: a {type(value).__name__} where {message} is expected"]
    declared = {}
    for name, spec in fields[message].items():
        declared[name] = declared[_json_name(name)] = spec
    found = []
    for key, inner in value.items():
        where = f"{path}.{key}" if path else key
        if key not in declared:
            found.append(f"{where}: no field {key!r} in {message}")
            continue
        label, kind = declared[key].split(" ", 1)
        if kind in ("scalar", "opaque"):
            continue
        if label == "repeated":
            for index, item in enumerate(inner):
                found += unknown_fields(item, kind, fields, f"{where}[{index}]")
        elif label == "map":
            for map_key, item in inner.items():
                found += unknown_fields(item, kind, fields, f"{where}[{map_key}]")
        else:
            found += unknown_fields(inner, kind, fields, where)
    return found


def parse_errors(path: Path, tag: str) -> list[str]:
    """What the backend of release ``tag`` would reject in a compiled pipeline file."""
    fields = FIELDS[tag]
    spec, platform = yaml.safe_load_all(path.read_text())
    errors = unknown_fields(spec, "ml_pipelines.PipelineSpec", fields)
    # deploymentSpec is a Struct in PipelineSpec; the backend reads it as this message.
    errors += unknown_fields(spec["deploymentSpec"], "ml_pipelines.PipelineDeploymentConfig", fields)
    errors += unknown_fields(platform, "ml_pipelines.PlatformSpec", fields)
    # Each executor's config is a Struct in PlatformSpec; the driver reads it as this message.
    for name, config in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].items():
        errors += unknown_fields(config, "kfp_kubernetes.KubernetesExecutorConfig", fields, name)
    return errors


SUPPORTED = [tag for tag in FIELDS if _release(tag) >= KUBETFX_BACKEND_FLOOR]
OLDER = [tag for tag in FIELDS if _release(tag) < KUBETFX_BACKEND_FLOOR]


def test_the_extracted_fields_cover_the_releases_the_preflight_names() -> None:
    assert {_release(t) for t in SUPPORTED} == set(KUBETFX_BACKENDS_CHECKED)
    assert OLDER, "an older release shows what an unsupported backend rejects"


@pytest.mark.parametrize("tag", SUPPORTED)
@pytest.mark.parametrize("path", PIPELINES, ids=[p.parent.name for p in PIPELINES])
def test_compiled_pipelines_parse_in_every_supported_backend(path: Path, tag: str) -> None:
    assert parse_errors(path, tag) == []


@pytest.mark.parametrize("tag", OLDER)
def test_older_backends_reject_the_platform_fields_and_the_preflight_refuses_them(tag: str) -> None:
    path = REPO / "pipelines/training/pipeline.yaml"
    errors = parse_errors(path, tag)
    assert errors and all(re.search(r"no field '(\w+NameParameter)'", e) for e in errors), errors[:3]
    pipeline = read_pipeline(path)
    check = check_versions(pipeline.sdk_version, tag, path.name, pipeline.floor)
    assert check.compatible is False and check.blocking
    assert "NameParameter" in check.message and "2.5.0 or later" in check.message


def test_the_walk_finds_an_unknown_field() -> None:
    fields = FIELDS[SUPPORTED[0]]
    config = {"secretAsEnv": [{"secretName": "s", "keyToEnv": [{"secretKey": "k", "envVarr": "K"}]}]}
    [error] = unknown_fields(config, "kfp_kubernetes.KubernetesExecutorConfig", fields)
    assert error == "secretAsEnv[0].keyToEnv[0].envVarr: no field 'envVarr' in " + (
        "kfp_kubernetes.SecretAsEnv.SecretKeyToEnvMap"
    )


def test_the_preflight_follows_the_matrix() -> None:
    pipeline = read_pipeline(REPO / "pipelines/training/pipeline.yaml")
    assert pipeline.floor is not None and pipeline.floor[0] == KUBETFX_BACKEND_FLOOR
    for release in KUBETFX_BACKENDS_CHECKED:
        tag = ".".join(map(str, release))
        check = check_versions(pipeline.sdk_version, tag, "p.yaml", pipeline.floor)
        assert check.compatible is True, check.message
    newer = check_versions(pipeline.sdk_version, "2.99.0", "p.yaml", pipeline.floor)
    assert newer.compatible is None and not newer.blocking
    assert check_versions(pipeline.sdk_version, "1.8.5", "p.yaml", pipeline.floor).blocking
    # A pipeline without those platform fields keeps the SDK's own range.
    assert platform_floor({"platforms": {"kubernetes": {"deploymentSpec": {"executors": {}}}}}) is None
