"""Early stopping against a fixed 30 epochs: time, epochs run and quality, per dataset.

    python -m benchmarks.early_stopping [--datasets penguins,penguins-15k,seattle-weather,synthetic]

For each dataset, ExampleGen, StatisticsGen and SchemaGen run once (in process), then the
Trainer trains the built-in model twice on the same splits, in this process:

* ``fixed 30``: what the Trainer did before early stopping: 30 epochs at batch 32 on the
  whole train split (``patience=0, batch_size=32, steps_per_execution=32``);
* ``early``: the Trainer's defaults: at most 30 epochs, stopping when the loss on a
  held-out tenth of the train split has not improved for 5 epochs (best weights kept),
  batch size and steps per execution chosen for the data's size.

Both are judged on the same eval split (which neither trains nor stops on): accuracy and
ROC AUC (several classes: the mean one-vs-rest AUC), the Trainer's ``val_accuracy`` and
``val_auc``. Time is the Trainer's own wall time (data encoding, checks, training,
export); a one-epoch warm-up run first takes TensorFlow's one-off start costs out of both.

Datasets: ``penguins`` (344 rows, ``palmerpenguins``), ``penguins-15k`` (the same resampled
to 15,000 rows with jitter, as ``benchmarks.tfx_cold`` writes it), ``seattle-weather``
(1,461 days, 5 classes, ``vega_datasets``; the date column left out), ``synthetic``
(20,000 rows, 18 features, a binary label with a non-linear boundary and 10% label noise,
seeded). Target: early stopping's AUC and accuracy at least the fixed run's minus 0.01
and 0.02 (the tolerance the quality test uses), on every dataset.
"""

from __future__ import annotations

import argparse
import csv
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import verdict

AUC_TOLERANCE, ACCURACY_TOLERANCE = 0.01, 0.02
FIXED = {"epochs": 30, "batch_size": 32, "patience": 0, "steps_per_execution": 32}
EARLY: dict[str, Any] = {"epochs": 30}


def _write_synthetic(path: Path, rows: int = 20_000, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, 14))
    cats = rng.integers(0, [3, 5, 8, 30], size=(rows, 4))
    logit = (
        1.5 * numeric[:, 0]
        - numeric[:, 1] * numeric[:, 2]
        + np.sin(2 * numeric[:, 3])
        + 0.8 * (cats[:, 0] == 1)
        - 0.6 * (cats[:, 2] % 3 == 0)
        + 0.05 * cats[:, 3]
        - 0.7
    )
    label = (logit > 0).astype(int)
    flip = rng.random(rows) < 0.1
    label[flip] = 1 - label[flip]
    header = [f"x{i}" for i in range(14)] + ["c0", "c1", "c2", "c3", "label"]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for i in range(rows):
            writer.writerow([f"{v:.4f}" for v in numeric[i]] + [f"k{c}" for c in cats[i]] + [f"y{label[i]}"])


def datasets(folder: Path, names: list[str]) -> list[tuple[str, str, str, list[str]]]:
    """(name, input uri, label, excluded features) for the datasets asked for."""
    from benchmarks.tfx_cold import write_csv

    out = []
    for name in names:
        if name == "penguins":
            out.append((name, "pkg://palmerpenguins/data/penguins.csv", "species", []))
        elif name == "penguins-15k":
            write_csv(folder / "penguins-15k.csv", 15_000, seed=0)
            out.append((name, str(folder / "penguins-15k.csv"), "species", []))
        elif name == "seattle-weather":
            out.append((name, "pkg://vega_datasets/_data/seattle-weather.csv", "weather", ["date"]))
        elif name == "synthetic":
            _write_synthetic(folder / "synthetic.csv")
            out.append((name, str(folder / "synthetic.csv"), "label", []))
        else:
            raise SystemExit(f"unknown dataset {name!r}")
    return out


def one_dataset(folder: Path, uri: str, label: str, exclude: list[str]) -> dict[str, dict[str, Any]]:
    from kubetfx.components.example_gen import executor as example_gen
    from kubetfx.components.schema_gen import executor as schema_gen
    from kubetfx.components.statistics_gen import executor as statistics_gen
    from kubetfx.components.trainer import executor as trainer

    examples, stats, schema = (str(folder / n) for n in ("examples", "statistics", "schema"))
    example_gen.run(uri, examples)
    statistics_gen.run(examples, stats)
    schema_gen.run(stats, schema, label_key=label)
    rows = {}
    for name, hp in (("fixed 30", FIXED), ("early", EARLY)):
        model_dir = str(folder / name.replace(" ", "_"))
        began = time.perf_counter()
        result = trainer.run(
            examples, schema, stats, model_dir, label_key=label, hyperparameters=hp, exclude_features=exclude
        )
        seconds = time.perf_counter() - began
        rows[name] = {
            "seconds": seconds,
            "epochs": result.epochs,
            "best": result.best_epoch,
            "batch": result.hyperparameters["batch_size"],
            "train_rows": result.train_examples,
            "eval_rows": result.eval_examples,
            "accuracy": result.metrics["val_accuracy"],
            "auc": result.metrics["val_auc"],
        }
    return rows


def _warm_up(folder: Path) -> None:
    """One tiny training run, so TensorFlow's one-off start costs fall on neither side."""
    from kubetfx.components.example_gen import executor as example_gen
    from kubetfx.components.schema_gen import executor as schema_gen
    from kubetfx.components.statistics_gen import executor as statistics_gen
    from kubetfx.components.trainer import executor as trainer

    examples, stats, schema = (str(folder / n) for n in ("examples", "statistics", "schema"))
    example_gen.run("pkg://palmerpenguins/data/penguins.csv", examples)
    statistics_gen.run(examples, stats)
    schema_gen.run(stats, schema, label_key="species")
    trainer.run(
        examples, schema, stats, str(folder / "model"), label_key="species", hyperparameters={"epochs": 1}
    )


def main() -> None:
    """Run each dataset, print the table and one result line per dataset."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datasets", default="penguins,penguins-15k,seattle-weather,synthetic")
    args = parser.parse_args()
    names = [n for n in args.datasets.split(",") if n]
    with tempfile.TemporaryDirectory(prefix="kubetfx-early-") as tmp:
        root = Path(tmp)
        _warm_up(root / "warm-up")
        found = {}
        for name, uri, label, exclude in datasets(root, names):
            (root / name).mkdir()
            found[name] = one_dataset(root / name, uri, label, exclude)
            print(f"{name}: {found[name]}", flush=True)
    header = f"{'dataset':16} {'rows (train/eval)':>17} {'run':9} {'batch':>5} {'epochs':>8} {'seconds':>8}"
    print("\n" + header + f" {'accuracy':>8} {'AUC':>7}")
    print("-" * (len(header) + 17))
    for name, rows in found.items():
        for run, r in rows.items():
            epochs = f"{r['epochs']}" + (f" ({r['best']})" if run == "early" else "")
            sizes = f"{r['train_rows']}/{r['eval_rows']}"
            print(
                f"{name:16} {sizes:>17} {run:9} {r['batch']:>5} {epochs:>8} {r['seconds']:8.1f} "
                f"{r['accuracy']:8.4f} {r['auc']:7.4f}"
            )
    print("(early: epochs run, and in brackets the best epoch, whose weights are kept)")
    for name, rows in found.items():
        fixed, early = rows["fixed 30"], rows["early"]
        kept = early["auc"] >= fixed["auc"] - AUC_TOLERANCE and early["accuracy"] >= (
            fixed["accuracy"] - ACCURACY_TOLERANCE
        )
        verdict(
            f"early stopping time, {name} (quality kept: AUC {early['auc']:.3f} vs {fixed['auc']:.3f})",
            early["seconds"],
            fixed["seconds"],
            early["seconds"] / fixed["seconds"],
            "<= 1x, AUC kept",
            kept and early["seconds"] <= fixed["seconds"],
        )


if __name__ == "__main__":
    main()
