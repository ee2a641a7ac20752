"""Training throughput of the built-in Trainer model, CPU against GPU, on any Keras 3 backend.

    python -m benchmarks.training [--rows 200000] [--epochs 3] [--batch-size 4096]

Runs the Trainer's own model code (``components/trainer/model.py``: the same
``build_model`` and ``train``) on synthetic tabular data (10 numeric and 10 categorical
features, 3 classes) from a seeded generator, once per device, each in a fresh process:
``cpu`` (``JAX_PLATFORMS=cpu`` / ``CUDA_VISIBLE_DEVICES=``) and, if there is one, ``gpu``
(also with bfloat16 mixed precision). TensorFlow is not needed: on a machine without it,
set ``KERAS_BACKEND=jax`` or ``torch``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _one(rows: int, epochs: int, batch_size: int, mixed: bool) -> dict:
    import numpy as np

    from kubetfx.components.trainer.model import Feature, FeatureSpec, HyperParameters, build_model, train

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
    params = HyperParameters(epochs=1, batch_size=batch_size, hidden_units=[256, 128, 64])
    model = build_model(spec, params, mixed_precision=mixed)
    train(model, inputs, labels, inputs, labels, params)  # compile and warm up
    params.epochs = epochs
    started = time.perf_counter()
    metrics = train(model, inputs, labels, inputs, labels, params)
    seconds = time.perf_counter() - started
    import keras

    return {
        "backend": keras.backend.backend(),
        "device": _device(keras.backend.backend()),
        "examples_per_second": rows * epochs / seconds,
        "seconds": seconds,
        "accuracy": metrics.get("accuracy"),
    }


def main() -> None:
    """Run each device in a child process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--child", choices=["cpu", "gpu", "gpu-bf16"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_one(args.rows, args.epochs, args.batch_size, args.child == "gpu-bf16")))
        return
    results = {}
    for device in ("cpu", "gpu", "gpu-bf16"):
        env = dict(os.environ)
        if device == "cpu":
            env.update(JAX_PLATFORMS="cpu", CUDA_VISIBLE_DEVICES="")
        command = [
            sys.executable,
            "-m",
            "benchmarks.training",
            "--child",
            device,
            "--rows",
            str(args.rows),
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(args.batch_size),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            results[device] = {
                "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"
            }
            continue
        results[device] = json.loads(done.stdout.strip().splitlines()[-1])
        if device == "cpu" and not _has_gpu():
            break
    base = results["cpu"].get("examples_per_second")
    print(f"{args.rows:,} rows x 20 features, {args.epochs} epochs, batch {args.batch_size}")
    print(f"{'device':10} {'backend':8} {'ran on':7} {'examples/s':>12} {'x cpu':>6} {'accuracy':>9}")
    for device, r in results.items():
        if "error" in r:
            print(f"{device:10} error: {r['error']}")
            continue
        rate = r["examples_per_second"]
        ratio = rate / base if base else float("nan")
        print(f"{device:10} {r['backend']:8} {r['device']:7} {rate:12,.0f} {ratio:6.2f} {r['accuracy']:9.4f}")


def _device(backend: str) -> str:
    """Where the backend put the work."""
    if backend == "jax":
        import jax

        return str(jax.devices()[0].platform)
    if backend == "torch":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf

    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def _has_gpu() -> bool:
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode == 0
    except FileNotFoundError:
        return False


if __name__ == "__main__":
    main()
