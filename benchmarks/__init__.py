"""CityPulse benchmarks: `python -m benchmarks` (or `make bench`) runs every figure.

One module per figure (`load`, `extract`, `parse`, `validate`, `dag_day`, `retrain`, `audit`,
`stream`, `datasets`, `scale`, `year`);
each runs
in a subprocess of its own (clean imports, clean peak RSS, its own fresh warehouse database)
and prints one JSON line. `harness` holds what the figures share, `report` writes
BENCHMARKS.md. `python -m benchmarks --smoke` runs every figure at a tiny size.
"""

from __future__ import annotations

FIGURES = (
    "load",
    "extract",
    "parse",
    "validate",
    "dag_day",
    "retrain",
    "audit",
    "stream",
    "datasets",
    "scale",
    "year",
)
