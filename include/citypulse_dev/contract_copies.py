"""Copies of the project's contracts under new ids: many datasets for tests and benchmarks.

A copy is the source contract with its own `dag_id`, `table` and dataset id (so nothing
clashes with the source), without its dashboard (charts draw the source's own view files);
an *unplaced* copy also drops the coordinate columns, the bounding box and the `incidents:`
mapping, as a Socrata dataset without a place per record would be described.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from citypulse.settings import CONTRACTS_DIR

PLACE_KEYS = ("latitude", "longitude", "bbox", "incidents")


def contract_copy(
    source: dict[str, Any], dag_id: str, dataset_id: str, *, placed: bool = True
) -> dict[str, Any]:
    """The raw contract `source` (a parsed YAML mapping) as another dataset `dag_id`."""
    raw = {**source, "dag_id": dag_id, "table": dag_id, "dataset_id": dataset_id}
    raw["title"] = f"{source['title']} ({dag_id})"
    raw.pop("dashboard", None)
    if not placed:
        coordinates = {source.get("latitude"), source.get("longitude")} - {None}
        raw["columns"] = [c for c in source["columns"] if c["name"] not in coordinates]
        for key in PLACE_KEYS:
            raw.pop(key, None)
    return raw


def dataset_id_for(n: int) -> str:
    """A Socrata-shaped id (`xxxx-xxxx`), distinct for each n below 36**4."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    word = ""
    for _ in range(4):
        n, rest = divmod(n, 36)
        word = digits[rest] + word
    return f"copy-{word}"


def write_copies(
    target: Path,
    count: int,
    *,
    unplaced_every: int = 0,
    sources: Path = CONTRACTS_DIR,
    prefix: str = "copy",
) -> list[Path]:
    """`count` copies of the contracts in `sources` (taken in turn) written to `target`; every
    `unplaced_every`-th copy (0: none) without coordinates, bbox and incidents."""
    originals = [
        yaml.safe_load(path.read_text(encoding="utf-8")) for path in sorted(sources.glob("*.yaml"))
    ]
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for n in range(count):
        placed = not (unplaced_every and (n + 1) % unplaced_every == 0)
        dag_id = f"{prefix}_{n:03d}_{originals[n % len(originals)]['dag_id']}"
        raw = contract_copy(originals[n % len(originals)], dag_id, dataset_id_for(n), placed=placed)
        path = target / f"{dag_id}.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
        written.append(path)
    return written
