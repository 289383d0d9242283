"""A retrain run's metrics as a Markdown table (city x model), for logs and the README."""

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
)


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}"


def metrics_table(rows: Iterable[dict[str, Any]]) -> str:
    """One line per (city, model) from `registry.run_metrics` rows; the champion is marked."""
    header = "| city | model | " + " | ".join(label for _, label in COLUMNS) + " | promoted |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    for row in rows:
        metrics = row["metrics"]
        values = " | ".join(_cell(metrics.get(name)) for name, _ in COLUMNS)
        promoted = "yes" if row.get("promoted") else ""
        lines.append(f"| {row['city']} | {row['model_kind']} | {values} | {promoted} |")
    return "\n".join(lines)
