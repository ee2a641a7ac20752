"""Two ways to train the built-in model under MultiWorkerMirroredStrategy, side by side.

    python -m benchmarks.multi_worker [--rows 20000] [--epochs 5] [--batch-size 256]

Two worker processes on loopback (free ports, a ``TF_CONFIG`` each), once per way:

* ``keras3-loop``: the Trainer's own loop (``components/trainer/distributed.py``): the Keras 3
  model, a ``strategy.run`` per step;
* ``tf_keras-fit``: the same model built with tf_keras 2.16 (``TF_USE_LEGACY_KERAS=1``, the
  Trainer's ``build_model`` given tf_keras as ``keras``) and trained by tf_keras ``fit``.

(Keras 3's own ``fit`` is not a contender: it fails under this strategy.) Seeded synthetic
data (10 numeric and 10 categorical features, 3 classes, as ``benchmarks.training``), a
fixed number of epochs at one global batch size. Each worker reports the time from the
strategy's creation to the end of training, the training accuracy and a SHA-256 of its
weights; the two workers of a way must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time


def _data(rows: int) -> tuple:
    import numpy as np

    from kubetfx.components.trainer.model import Feature, FeatureSpec

    rng = np.random.default_rng(0)
    features = [Feature(name=f"n{i}", kind="numeric") for i in range(10)]
    features += [
        Feature(name=f"c{i}", kind="categorical", vocabulary=[f"v{k}" for k in range(8 + 4 * i)])
        for i in range(10)
    ]
    spec = FeatureSpec(features=features, label="y", classes=["a", "b", "c"])
    inputs = {f.name: rng.normal(size=(rows, 1)).astype("float32") for f in features if f.kind == "numeric"}
    for f in features:
        if f.kind == "categorical":
            inputs[f.name] = rng.integers(0, len(f.vocabulary) + 1, size=(rows, 1)).astype("int32")
    labels = ((inputs["n0"][:, 0] > 0).astype("int32") + (inputs["c0"][:, 0] % 2)).astype("int32")
    return spec, inputs, labels


def _child(way: str, rows: int, epochs: int, batch: int) -> None:
    import hashlib

    import numpy as np

    if way == "tf_keras-fit":
        import tf_keras

        sys.modules["keras"] = tf_keras  # the Trainer's build_model, on tf_keras
    import tensorflow as tf

    from kubetfx.components.trainer.model import HyperParameters, build_model

    spec, inputs, labels = _data(rows)
    params = HyperParameters(epochs=epochs, batch_size=batch, patience=0, steps_per_execution=1)
    began = time.perf_counter()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    tf.keras.utils.set_random_seed(params.seed)
    with strategy.scope():
        model = build_model(spec, params)
    if way == "keras3-loop":
        from kubetfx.components.trainer.distributed import fit_multi_worker

        fitted = fit_multi_worker(strategy, model, inputs, labels, inputs, labels, params, spec.binary)
        accuracy = fitted.metrics["val_accuracy"]
    else:
        model.fit(inputs, labels, epochs=epochs, batch_size=batch, shuffle=True, verbose=0)
        scores = model.predict(inputs, batch_size=4096, verbose=0)
        accuracy = float((scores.argmax(axis=1) == labels).mean())
    seconds = time.perf_counter() - began
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(np.ascontiguousarray(array).tobytes())
    print(json.dumps({"seconds": seconds, "accuracy": accuracy, "weights": digest.hexdigest()[:16]}))


def _ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def main() -> None:
    """Run each way on two workers and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.rows, args.epochs, args.batch_size)
        return
    results = {}
    for way in ("keras3-loop", "tf_keras-fit"):
        cluster = {"worker": [f"127.0.0.1:{p}" for p in _ports(2)]}
        procs = []
        for index in range(2):
            env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="2")
            env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            if way == "tf_keras-fit":
                env["TF_USE_LEGACY_KERAS"] = "1"
            command = [sys.executable, "-m", "benchmarks.multi_worker", "--child", way]
            command += [
                "--rows",
                str(args.rows),
                "--epochs",
                str(args.epochs),
                "--batch-size",
                str(args.batch_size),
            ]
            procs.append(
                subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            )
        outs = []
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=600)
            except subprocess.TimeoutExpired:
                for p in procs:
                    p.kill()
                raise
            if proc.returncode != 0:
                for p in procs:
                    p.kill()
                raise SystemExit(
                    f"{way}: a worker failed: {err.strip().splitlines()[-1] if err.strip() else ''}"
                )
            outs.append(json.loads(out.strip().splitlines()[-1]))
        results[way] = outs
        print(f"{way}: {outs}", flush=True)
    print(
        f"\n{args.rows:,} rows x 20 features, {args.epochs} epochs, global batch {args.batch_size}, 2 workers"
    )
    print(f"{'way':14} {'seconds (w0, w1)':>18} {'accuracy':>9} {'same weights':>13}")
    for way, (a, b) in results.items():
        same = "yes" if a["weights"] == b["weights"] else "NO"
        print(f"{way:14} {a['seconds']:8.1f} {b['seconds']:8.1f} {a['accuracy']:9.4f} {same:>13}")


if __name__ == "__main__":
    main()
