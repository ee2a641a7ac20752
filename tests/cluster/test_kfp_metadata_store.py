"""kubetfx never writes its lineage into KFP's own metadata store.

kubetfx's lineage follows the KFP backend's layout (``system.PipelineRun`` contexts named
by run id), so written into KFP's metadata-grpc-service it would land in KFP's own run
contexts. KFP's store is told by the ``parent_dag_id`` property KFP's driver writes on the
executions of a run's tasks (``backend/src/v2/metadata/client.go``). Here a real ML Metadata
store (SQLite) gets such an execution, as KFP's driver would write it; kubetfx's own runner
writes DAG executions too, but never that property.
"""

from pathlib import Path

import pytest
from ml_metadata.proto import metadata_store_pb2 as pb

from kubetfx.errors import MetadataStoreError
from kubetfx.lineage import record
from kubetfx.lineage.store import KFP_DRIVER_PROPERTY, Store
from kubetfx.settings import parse_metadata_url

IDENTITY = record.Identity(pipeline_name="kubetfx-training", run_id="run-1", task_name="trainer")


def _store(path: Path) -> Store:
    return Store(parse_metadata_url(f"sqlite:///{path}"))


def test_a_store_holding_kfp_driver_executions_is_refused(tmp_path: Path) -> None:
    kfp = _store(tmp_path / "kfp.sqlite")
    type_id = kfp.mlmd.put_execution_type(pb.ExecutionType(name="system.ContainerExecution"))
    task = pb.Execution(type_id=type_id, last_known_state=pb.Execution.COMPLETE)
    task.custom_properties[KFP_DRIVER_PROPERTY].int_value = 7  # what KFP's driver writes
    [written] = kfp.mlmd.put_executions([task])
    with pytest.raises(MetadataStoreError, match="Kubeflow Pipelines' own"):
        record.start_execution(kfp, IDENTITY, params={}, inputs={})
    with pytest.raises(MetadataStoreError, match="KUBETFX_METADATA"):
        record.update_run(kfp, IDENTITY, state="RUNNING")
    assert [e.id for e in kfp.mlmd.get_executions()] == [written] and kfp.mlmd.get_contexts() == []


def test_kubetfx_s_own_store_takes_the_writes(tmp_path: Path) -> None:
    own = _store(tmp_path / "own.sqlite")
    # kubetfx's runner records DAG executions (conditions) too, without KFP's property.
    dag = own.type_id("execution", "system.DAGExecution")
    own.mlmd.put_executions([pb.Execution(type_id=dag, last_known_state=pb.Execution.CANCELED)])
    execution_id = record.start_execution(own, IDENTITY, params={}, inputs={})
    [execution] = own.mlmd.get_executions_by_id([execution_id])
    assert execution.last_known_state == pb.Execution.RUNNING
