"""A draft contract (citypulse.contracts.scaffold.Draft) written as YAML a person reads: the
layout of the hand-written contracts (one line per key, one flow mapping per column), each
guess followed by a comment that says why."""

from __future__ import annotations

from typing import Any

import yaml

from citypulse.contracts.scaffold import Draft, Entry

_WIDTH = 10**6  # never fold a line: one key, one line


def flow(value: Any) -> str:
    """`value` in YAML flow style on one line (`{name: id, type: bigint}`, `[a, b]`, `x`)."""
    text = yaml.safe_dump([value], default_flow_style=True, width=_WIDTH, sort_keys=False)
    return text.strip()[1:-1]


def _line(prefix: str, entry: Entry) -> list[str]:
    if isinstance(entry.value, str) and "\n" in entry.value:
        body = [f"{prefix}{entry.key}: |"] + [f"  {line}" for line in entry.value.splitlines()]
        return [f"{body[0]}  # {entry.why}" if entry.why else body[0], *body[1:]]
    text = f"{prefix}{entry.key}: {flow(entry.value)}"
    return [f"{text}  # {entry.why}" if entry.why else text]


def render(draft: Draft) -> str:
    """The draft as contract YAML, comments included."""
    lines = [f"# {line}" for line in draft.header]
    for entry in draft.entries:
        lines += _line("", entry)
    lines.append("columns:")
    for column in draft.columns:
        text = f"  - {flow(column.value)}"
        lines.append(f"{text}  # {column.why}" if column.why else text)
    return "\n".join(lines) + "\n"
