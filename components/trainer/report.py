"""The Trainer's HTML report: warnings first, then what was trained on and how it went."""

from __future__ import annotations

from typing import Any

from kubetfx.components.trainer.checks import LEAK_BALANCED_ACCURACY

from kubetfx.reports import Markup, page, table


def training_html(result: Any, title: str) -> str:
    """A self-contained page for a :class:`~.executor.TrainResult`."""
    import html

    sections = ["<h2>Warnings</h2>"]
    if result.warnings:
        sections.append(
            "<ul>" + "".join(f"<li class='warn'>{html.escape(w)}</li>" for w in result.warnings) + "</ul>"
        )
    else:
        sections.append("<p class='ok'>None: no row dropped, no probable label leak, no ID-like column.</p>")
    dropped = sum(result.missing_labels_dropped.values())
    sections += [
        "<h2>Training</h2>",
        table(
            ["", ""],
            [
                ["model", result.model_source],
                ["device", f"{result.device} ({result.strategy})"],
                ["epochs, steps", f"{result.epochs}, {result.steps}"],
                *([["stopping", result.stop_reason]] if result.stop_reason else []),
                ["examples (train, eval)", f"{result.train_examples}, {result.eval_examples}"],
                ["missing labels", f"{result.missing_labels}: {dropped} row(s) dropped"],
                ["excluded features", ", ".join(result.excluded_features) or "none"],
            ],
        ),
        table(["metric", "value"], [[k, v] for k, v in sorted(result.metrics.items())], numeric=[1]),
    ]
    if result.features:
        flagged = {f["feature"]: f["kind"] for f in result.findings}
        rows = []
        for feature in result.features:
            if feature["kind"] == "numeric":
                prep = f"standardized: mean {feature['mean']:.4g}, std {feature['std']:.4g}"
            else:
                prep = f"vocabulary of {len(feature['vocabulary'])}"
            score = result.single_feature_scores.get(feature["name"])
            note = {"label_leak": "probable label leak", "id_like": "ID-like"}.get(
                flagged.get(feature["name"], ""), ""
            )
            rows.append(
                [
                    feature["name"],
                    feature["input_name"] or feature["name"],
                    prep,
                    "" if score is None else score,
                    Markup(f"<span class='warn'>{html.escape(note)}</span>") if note else "",
                ]
            )
        sections += [
            "<h2>Features</h2>",
            "<p class='muted'>As named in the data (the serving signature's tf.Example keys) and "
            "inside the Keras model. <i>Alone</i>: balanced accuracy on the eval split of a rule "
            f"that uses only this feature; {LEAK_BALANCED_ACCURACY} or more warns of a label leak.</p>",
            table(["feature", "model input", "preprocessing", "alone", "check"], rows, numeric=[3]),
        ]
    return page(title, sections)
