"""A run's extract read and typed in chunks of a bounded number of records, one at a time.

A chunk is a slice of one extract part: at most `CHUNK_ROWS` records, never across parts.
`ChunkReader` keeps the part being read (its Arrow table, or an open record stream when
Arrow cannot read it) and nothing else, so typing a window of any size holds one part and
one typed chunk. `KeyLedger` keeps each chunk's keys (8 bytes a numeric key) to find a key
repeated across chunks. Imported only inside tasks (pandas, pyarrow).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Any

from citypulse.contracts.contract import Contract
from citypulse.pipeline import run_files
from citypulse.pipeline.run_files import Source
from citypulse.pipeline.validate import typing_rules

if TYPE_CHECKING:
    import pyarrow as pa
from citypulse.pipeline.validate.typing_rules import TypedBatch


@dataclass(frozen=True)
class Chunk:
    """Records `offset` .. `offset + rows` of an extract part."""

    index: int
    source: Source
    part_rows: int
    offset: int
    rows: int
    # How many of its records came from the window query (the rest: the changes query).
    window_rows: int

    @property
    def ends_part(self) -> bool:
        return self.offset + self.rows == self.part_rows


def plan_chunks(
    parts: Sequence[tuple[Source, int]], window_rows: int, chunk_rows: int
) -> list[Chunk]:
    """The chunks of the parts (source, records), in order; the window's records come first."""
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, not {chunk_rows}")
    chunks: list[Chunk] = []
    first = 0
    for source, rows in parts:
        for offset in range(0, rows, chunk_rows):
            n = min(chunk_rows, rows - offset)
            in_window = max(0, min(n, window_rows - first - offset))
            chunks.append(Chunk(len(chunks), source, rows, offset, n, in_window))
        first += rows
    return chunks


class PartSizeMismatch(RuntimeError):
    """An extract part holds another number of records than the manifest says."""


class ChunkReader:
    """Types the chunks of a run; read in order, each part is read once."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._source: Source | None = None
        self._table: pa.Table | None = None
        self._records: Iterator[dict[str, Any]] | None = None
        self._position = 0

    def typed(self, chunk: Chunk) -> TypedBatch:
        """The chunk's records, typed; their rejects' raw records are readable from it."""
        table = self._part_table(chunk)
        batch = None
        if table is not None:
            rows = table.slice(chunk.offset, chunk.rows)
            batch = typing_rules.type_table(self.contract, rows, chunk.window_rows)
            if batch is not None:  # raw records are read back from the part by line
                batch.sources, batch.source_rows = [chunk.source], [chunk.rows]
                batch.first_line = chunk.offset
        if batch is None:
            records = self._records_of(chunk)
            batch = typing_rules.type_records(self.contract, records, chunk.window_rows)
        if chunk.ends_part:
            self._close()
        return batch

    def _part_table(self, chunk: Chunk) -> pa.Table | None:
        if chunk.source is not self._source:
            self._close()
            self._source = chunk.source
            self._table = run_files.read_wire_table(chunk.source, self.contract)
            if self._table is not None and self._table.num_rows != chunk.part_rows:
                raise PartSizeMismatch(self._table.num_rows)
        return self._table

    def _records_of(self, chunk: Chunk) -> list[dict[str, Any]]:
        if self._records is None or self._position > chunk.offset:
            self._records, self._position = run_files.read_ndjson(chunk.source), 0
        skip = chunk.offset - self._position
        records = list(islice(self._records, skip, skip + chunk.rows))
        self._position = chunk.offset + len(records)
        if len(records) != chunk.rows or (chunk.ends_part and next(self._records, None)):
            raise PartSizeMismatch(self._position)
        return records

    def _close(self) -> None:
        if self._records is not None:
            close = getattr(self._records, "close", None)
            if close is not None:
                close()
        self._source, self._table, self._records, self._position = None, None, None, 0


class KeyLedger:
    """Each chunk's keys (typed, without NULLs), to find the keys repeated across chunks."""

    def __init__(self) -> None:
        self._keys: list[Any] = []
        self._chunks: list[int] = []

    def add(self, chunk: int, keys: Any) -> None:
        """Note a chunk's typed keys (a pandas Series)."""
        import pyarrow as pa

        present = keys[keys.notna()]
        if len(present):
            self._keys.append(pa.array(present, from_pandas=True))
            self._chunks.append(chunk)

    def repeated_across(self) -> tuple[frozenset[Any], list[int]]:
        """The keys found in more than one chunk, and the chunks that hold one, in order."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if len(self._keys) < 2:
            return frozenset(), []
        keys = pa.chunked_array(self._keys)
        chunk_ids = pa.chunked_array(
            [
                pa.repeat(pa.scalar(c, pa.int32()), len(k))
                for c, k in zip(self._chunks, self._keys, strict=True)
            ]
        )
        table = pa.table({"key": keys, "chunk": chunk_ids})
        spread = table.group_by("key").aggregate([("chunk", "count_distinct")])
        repeated = spread.filter(pc.greater(spread["chunk_count_distinct"], 1))["key"]
        if not len(repeated):
            return frozenset(), []
        holding = table.filter(pc.is_in(table["key"], value_set=repeated.combine_chunks()))
        chunks = sorted(set(holding["chunk"].to_pylist()))
        return frozenset(repeated.to_pylist()), chunks
