"""kubetfx never writes its lineage into KFP's own metadata store.

kubetfx's lineage follows the KFP backend's layout (``system.PipelineRun`` contexts named
by run id), so written into KFP's metadata-grpc-service it would land in KFP's own run
contexts. KFP's store is told by the execution type only KFP's driver registers.
Here a real ML Metadata store (SQLite) gets that type as KFP's driver would register it.
"""

from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.errors import MetadataStoreError
from kubetfx.lineage import record
from kubetfx.lineage.store import KFP_DRIVER_EXECUTION, Store
from kubetfx.settings import parse_metadata_url

IDENTITY = record.Identity(pipeline_name="kubetfx-training", run_id="run-1", task_name="trainer")


def _store(path: Path) -> Store:
    return Store(parse_metadata_url(f"sqlite:///{path}"))


def test_a_store_holding_kfp_driver_executions_is_refused(tmp_path: Path) -> None:
    kfp = _store(tmp_path / "kfp.sqlite")
    kfp.mlmd.put_execution_type(pb.ExecutionType(name=KFP_DRIVER_EXECUTION))  # what KFP's driver does
    with pytest.raises(MetadataStoreError, match="Kubeflow Pipelines' own"):
        record.start_execution(kfp, IDENTITY, params={}, inputs={})
    with pytest.raises(MetadataStoreError, match="KUBETFX_METADATA"):
        record.update_run(kfp, IDENTITY, state="RUNNING")
    assert kfp.mlmd.get_executions() == [] and kfp.mlmd.get_contexts() == []


def test_kubetfx_s_own_store_takes_the_writes(tmp_path: Path) -> None:
    own = _store(tmp_path / "own.sqlite")
    execution_id = record.start_execution(own, IDENTITY, params={}, inputs={})
    [execution] = own.mlmd.get_executions_by_id([execution_id])
    assert execution.last_known_state == pb.Execution.RUNNING
