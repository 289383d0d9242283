"""A retrain run's metrics as a Markdown table (city x model), for logs and the README.

Every figure has 3 significant digits (a PR AUC of 0.0087 prints as 0.0087, not 0.00); a
metric is shown as its mean across folds, with the across-fold standard deviation after ±.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

COLUMNS = (
    ("precision", "P"),
    ("recall", "R"),
    ("f1", "F1"),
    ("roc_auc", "ROC AUC"),
    ("pr_auc", "PR AUC"),
    ("top10_capture", "top-10 % capture"),
    ("pai", "PAI"),
    ("pei", "PEI"),
)


def significant(value: Any, digits: int = 3) -> str:
    """A number with `digits` significant digits ("-" for none)."""
    if value is None:
        return "-"
    text = f"{float(value):#.{digits}g}"  # '#' keeps trailing zeros: 0.740, not 0.74
    return text.rstrip(".") if "e" not in text else text


def _cell(metrics: dict[str, Any], name: str) -> str:
    spread = (metrics.get("sd") or {}).get(name)
    mean = significant(metrics.get(name))
    return mean if spread is None else f"{mean} ± {significant(spread, 2)}"


def metrics_table(rows: Iterable[dict[str, Any]]) -> str:
    """One line per (city, model) from `registry.run_metrics` rows; the published model is
    marked."""
    header = "| city | model | " + " | ".join(label for _, label in COLUMNS) + " | published |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    for row in rows:
        values = " | ".join(_cell(row["metrics"], name) for name, _ in COLUMNS)
        published = "yes" if row.get("promoted") else ""
        lines.append(f"| {row['city']} | {row['model_kind']} | {values} | {published} |")
    return "\n".join(lines)


def run_summary(rows: list[dict[str, Any]], gates: list[dict[str, Any]]) -> str:
    """A run in Markdown: per city, its window and threshold, the metrics table and the
    decision, or the gate that skipped it."""
    lines: list[str] = []
    for gate in sorted(gates, key=lambda g: g["city"]):
        city = gate["city"]
        if not gate["passed"]:
            lines += [f"**{city}** as of {gate['as_of']}: skipped, {gate['reason']}.", ""]
            continue
        ours = [r for r in rows if r["city"] == city]
        if not ours:
            continue
        first = ours[0]
        lines += [
            f"**{city}** as of {gate['as_of']}: newest fold trains {first['train_start']}.."
            f"{first['train_end']} and tests {first['test_start']}..{first['test_end']}; hotspot "
            f"= a hex-day with at least {first['label_threshold']:g} incident(s); "
            f"{first['metrics'].get('positives')} hotspot hex-days in "
            f"{first['metrics'].get('rows')} test rows over {len(first['metrics']['folds'])} "
            "folds.",
            "",
            metrics_table(ours),
            "",
        ]
        lines += [f"Decision: {r['decision']}." for r in ours if r["role"] == "candidate"]
        lines.append("")
    return "\n".join(lines).strip() + "\n"
