"""The Trainer as a plain command, for a training job outside a pipeline step: each worker
of a TensorFlow job (a Kubeflow TFJob, or processes started by hand with ``TF_CONFIG``)
runs the same command on the same artifacts::

    python -m kubetfx.components.trainer --examples DIR --schema DIR --statistics DIR \\
        --model DIR --label-key species [--hyperparameters '{"epochs": 30}']

With ``TF_CONFIG`` naming several workers it trains under ``MultiWorkerMirroredStrategy``;
the chief alone writes the model under ``--model`` and its metadata to
``--model``/``training.json`` (what a pipeline step records in lineage: the Model's
metadata); every worker prints its result as one JSON line on stdout (``chief``,
``workers``, ``weights_sha256``, ...). Exit status 0 when trained, 1 on a kubetfx error
(the message on stderr).
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

    from kubetfx.components.trainer import executor

    from kubetfx.errors import KubetfxError

    try:
        result = executor.run(
            args.examples,
            args.schema,
            args.statistics,
            args.model,
            label_key=args.label_key,
            hyperparameters=json.loads(args.hyperparameters),
            module_file=args.module_file,
            mixed_precision=not args.no_mixed_precision,
            custom_config=json.loads(args.custom_config),
            exclude_features=[f for f in args.exclude_features.split(",") if f],
            missing_labels=args.missing_labels,
        )
    except KubetfxError as err:
        print(f"trainer: {err}", file=sys.stderr)
        return 1
    metadata = result.metadata()
    if result.chief:
        Path(args.model, TRAINING_FILE).write_text(json.dumps(metadata, indent=1, sort_keys=True))
    print(json.dumps({"chief": result.chief, **metadata}, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
