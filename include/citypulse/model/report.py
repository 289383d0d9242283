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
    return f"{float(value):.{digits}g}"


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
