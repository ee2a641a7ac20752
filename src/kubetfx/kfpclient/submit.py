"""``kubetfx submit``: upload a compiled pipeline (or a new version of it) and start a run."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any

from kubetfx.errors import ConfigError
from kubetfx.kfpclient.connection import KfpServerError, Server
from kubetfx.pipeline_file import PipelineFile


@dataclass(frozen=True)
class Submitted:
    """What ``kubetfx submit`` did."""

    pipeline_id: str
    pipeline_name: str
    pipeline_action: str  # "uploaded" | "existing"
    version_id: str
    version_name: str
    version_action: str  # "uploaded with the pipeline" | "uploaded" | "existing (same content)"
    experiment_id: str | None = None
    experiment_name: str | None = None
    run_id: str | None = None
    run_name: str | None = None
    run_url: str | None = None


def submit(
    server: Server,
    pipeline: PipelineFile,
    *,
    experiment: str | None,
    params: dict[str, Any],
    pipeline_name: str | None = None,
    version_name: str | None = None,
    run_name: str | None = None,
    run: bool = True,
    service_account: str | None = None,
) -> Submitted:
    """Upload the pipeline (or a new version of it), then start a run in ``experiment``.

    A missing pipeline is uploaded (KFP names its first version after the pipeline). An
    existing one gets a new version named ``version_name`` or, by default, after the file's
    content hash (``sha256-<12 hex>``); a version of that hash already there is reused, not
    uploaded again. An explicit ``version_name`` that exists already is an error.
    """
    name = pipeline_name or pipeline.name
    namespace = server.namespace
    found = server.find_pipeline(name, namespace)
    path = str(pipeline.path)
    if found is None:
        with server.call(f"uploading pipeline {name!r}"):
            uploaded = server.client.upload_pipeline(path, pipeline_name=name, namespace=namespace)
        pipeline_id, pipeline_action = uploaded.pipeline_id, "uploaded"
        version = server.find_version(pipeline_id, None)
        if version is None:
            raise KfpServerError(f"KFP uploaded pipeline {name!r} ({pipeline_id}) but lists no version of it")
        version_action = "uploaded with the pipeline"
    else:
        pipeline_id, pipeline_action = found.pipeline_id, "existing"
        wanted = version_name or pipeline.version_name
        version = server.find_version(pipeline_id, wanted)
        if version is not None and version_name:
            raise KfpServerError(
                f"pipeline {name!r} already has a version {version_name!r}; pick another --version-name "
                "or leave it out (kubetfx then names versions by content hash)"
            )
        if version is not None:
            version_action = "existing (same content)"
        else:
            with server.call(f"uploading version {wanted!r} of pipeline {name!r}"):
                version = server.client.upload_pipeline_version(
                    path, pipeline_version_name=wanted, pipeline_id=pipeline_id
                )
            version_action = "uploaded"
    result = Submitted(
        pipeline_id=pipeline_id,
        pipeline_name=name,
        pipeline_action=pipeline_action,
        version_id=version.pipeline_version_id,
        version_name=version.display_name,
        version_action=version_action,
    )
    if not run:
        return result
    if not experiment:
        raise ConfigError(
            "pass --experiment NAME (created if missing) for the run, or --no-run to only upload"
        )
    exp = server.ensure_experiment(experiment)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    job_name = run_name or f"{name} {version.display_name} {stamp}"
    with server.call(f"creating run {job_name!r}"):
        created = server.client.run_pipeline(
            experiment_id=exp.experiment_id,
            job_name=job_name,
            params=params,
            pipeline_id=pipeline_id,
            version_id=version.pipeline_version_id,
            service_account=service_account,
        )
    return dataclasses.replace(
        result,
        experiment_id=exp.experiment_id,
        experiment_name=experiment,
        run_id=created.run_id,
        run_name=job_name,
        run_url=server.url("runs", created.run_id),
    )
