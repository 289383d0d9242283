"""A retrain run's metrics as Markdown tables (city x model), for logs and the README.

Every figure has 3 significant digits (a PR AUC of 0.0087 prints as 0.0087, not 0.00); a
metric is shown as its mean across folds, with the across-fold standard deviation after ±.
Beside the main table: PR AUC per horizon (days after the forecast's origin) and each
model's reliability (calibrated probability said vs hotspot share seen, per bin), both on
the folds' pooled test rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

COLUMNS = (
    ("pr_auc", "PR AUC"),
    ("roc_auc", "ROC AUC"),
    ("precision", "P"),
    ("recall", "R"),
    ("pai_1", "PAI 1 %"),
    ("pai_5", "PAI 5 %"),
    ("top10_capture", "capture 10 %"),
    ("pai", "PAI 10 %"),
    ("pei", "PEI 10 %"),
    ("brier_skill", "Brier skill"),
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


def horizon_table(rows: Iterable[dict[str, Any]]) -> str:
    """PR AUC per horizon, one line per model (pooled test rows of every fold)."""
    rows = [r for r in rows if r["metrics"].get("by_horizon")]
    if not rows:
        return ""
    horizons = sorted({int(h) for r in rows for h in r["metrics"]["by_horizon"]})
    lines = [
        "| PR AUC by horizon | " + " | ".join(f"day {h}" for h in horizons) + " |",
        "|" + "---|" * (len(horizons) + 1),
    ]
    for row in rows:
        table = row["metrics"]["by_horizon"]
        values = [significant((table.get(str(h)) or {}).get("pr_auc")) for h in horizons]
        lines.append(f"| {row['model_kind']} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def reliability_table(rows: Iterable[dict[str, Any]]) -> str:
    """Per model and probability bin: mean probability said / hotspot share seen (rows)."""
    rows = [r for r in rows if r["metrics"].get("reliability")]
    if not rows:
        return ""
    bins = sorted({(b["low"], b["high"]) for r in rows for b in r["metrics"]["reliability"]})
    header = " | ".join(f"{low:.0%}-{high:.0%}" for low, high in bins)
    lines = [f"| said / seen (rows) | {header} |", "|" + "---|" * (len(bins) + 1)]
    for row in rows:
        found = {(b["low"], b["high"]): b for b in row["metrics"]["reliability"]}
        cells = [
            f"{significant(found[key]['predicted'], 2)} / {significant(found[key]['observed'], 2)}"
            f" ({found[key]['rows']})"
            if key in found
            else ""
            for key in bins
        ]
        lines.append(f"| {row['model_kind']} | " + " | ".join(cells) + " |")
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
        lag = first.get("publication_lag_days") or 0
        cells = first["metrics"].get("cells")
        lines += [
            f"**{city}** as of {gate['as_of']}: newest fold trains {first['train_start']}.."
            f"{first['train_end']} and tests {first['test_start']}..{first['test_end']}; hotspot "
            f"= a hex-day with at least {first['label_threshold']:g} incident(s); "
            f"{first['metrics'].get('positives')} hotspot hex-days in "
            f"{first['metrics'].get('rows')} test rows over {len(first['metrics']['folds'])} "
            f"folds; resolution {first.get('resolution', '-')}, {significant(cells)} hexagons "
            f"per fold (seen by its training end); forecasts for days 1-7 after weekly "
            f"origins, from events up to {lag + 1} day(s) before each origin "
            f"(publication lag {lag}).",
            "",
            metrics_table(ours),
            "",
        ]
        for extra in (horizon_table(ours), reliability_table(ours)):
            if extra:
                lines += [extra, ""]
        lines += [f"Decision: {r['decision']}." for r in ours if r["role"] == "candidate"]
        lines.append("")
    return "\n".join(lines).strip() + "\n"
