"""The Trainer as a plain command, for a training job outside a pipeline step: each worker
of a TensorFlow job (a Kubeflow TFJob, or processes started by hand with ``TF_CONFIG``)
runs the same command on the same artifacts::

    python -m kubetfx.components.trainer --examples DIR --schema DIR --statistics DIR \\
        --model DIR --label-key species [--hyperparameters '{"epochs": 30}']

The artifacts may be local folders or object-store URIs (``minio://``, ``s3://``,
``gs://``: a pipeline run's artifacts, as ``kubetfx lineage`` shows them); remote inputs
are copied to local disk first. With ``TF_CONFIG`` naming several workers it trains under
``MultiWorkerMirroredStrategy``; the chief alone writes the model under ``--model``
(uploaded when remote) with its metadata in ``training.json`` (the Model artifact's
metadata, as a pipeline's Trainer records it in lineage); every worker prints its result
as one JSON line on stdout (``chief``, ``workers``, ``weights_sha256``, ...). Exit status
0 when trained, 1 on a kubetfx error (the message on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TRAINING_FILE = "training.json"


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, train, write the chief's metadata; the exit status."""
    parser = argparse.ArgumentParser(prog="python -m kubetfx.components.trainer", description=__doc__)
    parser.add_argument("--examples", required=True)
    parser.add_argument("--schema", required=True)
    parser.add_argument("--statistics", required=True)
    parser.add_argument("--model", required=True, help="where the chief writes the model")
    parser.add_argument("--label-key", required=True)
    parser.add_argument("--hyperparameters", default="{}", help="JSON: the built-in model's")
    parser.add_argument("--module-file", default="")
    parser.add_argument("--custom-config", default="{}", help="JSON, for a run_fn")
    parser.add_argument("--exclude-features", default="", help="comma-separated")
    parser.add_argument("--missing-labels", default="fail", choices=["fail", "drop"])
    parser.add_argument("--no-mixed-precision", action="store_true")
    args = parser.parse_args(argv)

    import tempfile

    from kubetfx.components.trainer import executor

    from kubetfx import storage
    from kubetfx.errors import KubetfxError

    remote_model = storage.is_remote(args.model)
    model_dir = tempfile.mkdtemp(prefix="kubetfx-model-") + "/model" if remote_model else args.model
    try:
        examples, schema, statistics = (
            storage.localize(u) for u in (args.examples, args.schema, args.statistics)
        )
        result = executor.run(
            examples,
            schema,
            statistics,
            model_dir,
            label_key=args.label_key,
            hyperparameters=json.loads(args.hyperparameters),
            module_file=args.module_file,
            mixed_precision=not args.no_mixed_precision,
            custom_config=json.loads(args.custom_config),
            exclude_features=[f for f in args.exclude_features.split(",") if f],
            missing_labels=args.missing_labels,
        )
        metadata = result.metadata()
        if result.chief:
            Path(model_dir, TRAINING_FILE).write_text(json.dumps(metadata, indent=1, sort_keys=True))
            if remote_model:
                storage.upload(model_dir, args.model)
    except KubetfxError as err:
        print(f"trainer: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"chief": result.chief, **metadata}, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
