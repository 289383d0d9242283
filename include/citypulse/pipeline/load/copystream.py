"""One COPY fed by the run's parts in turn, read ahead by a producer thread.

`copy_expert` reads the file object it is given block by block on the caller's thread and
hands each block to PostgreSQL: while the server parses and writes one block, the producer
is already reading the next ones from storage (a local disk or an object store), a bounded
number of blocks ahead. The whole run goes in one COPY statement, inside the caller's
transaction, so a failure anywhere (a part that cannot be read, a row the server refuses)
ends the statement and the transaction commits nothing.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Sequence
from types import TracebackType

from citypulse.pipeline.run_files import Source

# Bytes read from a part at a time, and how many such blocks are read ahead: what the
# producer holds at most.
BLOCK_BYTES = 1 << 20
BLOCKS_AHEAD = 4
_DONE = b""


class PartStream:
    """A file object whose `read` returns the bytes of `sources`, one after the other."""

    def __init__(self, sources: Sequence[Source], block_bytes: int = BLOCK_BYTES) -> None:
        self.sources, self.block_bytes = list(sources), block_bytes
        self._blocks: queue.Queue[bytes | BaseException] = queue.Queue(BLOCKS_AHEAD)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, name="copy-producer", daemon=True)

    def __enter__(self) -> PartStream:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def read(self, size: int = -1) -> bytes:
        """The next block (at most what the producer read at once); b"" at the end."""
        if self._finished:
            return _DONE
        block = self._blocks.get()
        if isinstance(block, BaseException):
            self._finished = True
            raise block
        if block == _DONE:
            self._finished = True
        return block

    def close(self) -> None:
        """Stop the producer (COPY may end before the last block: a refused row)."""
        self._stop.set()
        while self._thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self._blocks.get(timeout=0.05)
        self._thread.join()

    def _produce(self) -> None:
        try:
            for source in self.sources:
                with source.open("rb") as handle:
                    while block := handle.read(self.block_bytes):
                        if not self._put(block):
                            return
            self._put(_DONE)
        except BaseException as exc:  # handed to the reader: COPY fails with it
            self._put(exc)

    def _put(self, item: bytes | BaseException) -> bool:
        while not self._stop.is_set():
            try:
                self._blocks.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False
