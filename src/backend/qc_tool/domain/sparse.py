"""Byte ranges of one remote file fetched so far, and the read programs that fill them.

A *read program* is a generator that yields batches of byte ranges it needs and
receives, for each range, the bytes the server returned (possibly fewer than
asked: servers cap read sizes, files end early). The same program is driven by
a plain sequential reader, a local file, or the pipelined SFTP driver that keeps
hundreds of requests in flight; that is what keeps their results identical.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import TypeVar

Range = tuple[int, int]  # (offset, length)
T = TypeVar("T")
ReadProgram = Generator[list[Range], list[bytes], T]

# Every batch either gets bytes or learns the file ends, so programs always finish;
# this bound only guards against a server that dribbles out a byte per reply.
MAX_BATCHES = 10_000


class SparseBytes:
    """The fetched parts of a file of known (listed) size."""

    def __init__(self, size: int) -> None:
        self.size = size  # lowered if the server reports EOF earlier
        self.bytes_read = 0
        self.batches = 0
        self._chunks: list[tuple[int, bytes]] = []  # disjoint, sorted by offset
        self._whole = False  # every byte is here: nothing is ever missing

    @classmethod
    def at_hand(cls, data: bytes) -> SparseBytes:
        """All of a file's bytes, already in memory (not copied): a program over them fetches nothing."""
        buf = cls(len(data))
        buf._chunks = [(0, data)] if data else []
        buf._whole = True
        return buf

    def missing(self, offset: int, length: int) -> list[Range]:
        """The parts of [offset, offset+length), clamped to the file, not fetched yet."""
        if self._whole:
            return []
        end = min(offset + length, self.size)
        gaps: list[Range] = []
        pos = max(offset, 0)
        for start, data in self._chunks:
            if pos >= end:
                break
            stop = start + len(data)
            if stop <= pos:
                continue
            if start > pos:
                gaps.append((pos, min(start, end) - pos))
            pos = max(pos, stop)
        if pos < end:
            gaps.append((pos, end - pos))
        return gaps

    def add(self, offset: int, data: bytes) -> None:
        """Record fetched bytes, merging with neighbours so lookups stay simple."""
        if not data:
            return
        self.bytes_read += len(data)
        start, stop = offset, offset + len(data)
        merged = bytearray()
        kept: list[tuple[int, bytes]] = []
        pieces: list[tuple[int, bytes]] = [(offset, data)]
        for c_start, c_data in self._chunks:
            c_stop = c_start + len(c_data)
            if c_stop < start or c_start > stop:
                kept.append((c_start, c_data))
            else:
                pieces.append((c_start, c_data))
                start, stop = min(start, c_start), max(stop, c_stop)
        merged = bytearray(stop - start)
        for p_start, p_data in sorted(pieces, key=lambda p: p[0], reverse=True):
            # Earlier-fetched bytes win on overlap; they are the same file's bytes anyway.
            merged[p_start - start : p_start - start + len(p_data)] = p_data
        kept.append((start, bytes(merged)))
        kept.sort(key=lambda c: c[0])
        self._chunks = kept

    def get(self, offset: int, length: int) -> bytes | None:
        """The bytes at [offset, offset+length) if all were fetched, else None."""
        for start, data in self._chunks:
            if start <= offset and offset + length <= start + len(data):
                return data[offset - start : offset - start + length]
        return None

    def has(self, offset: int, length: int) -> bool:
        return self.get(offset, length) is not None

    def chunks(self) -> Sequence[tuple[int, bytes]]:
        return tuple(self._chunks)


def fetch(buf: SparseBytes, ranges: Sequence[Range]) -> ReadProgram[None]:
    """Ask the driver for whatever part of ``ranges`` is missing, until fetched or at EOF."""
    want = _merge([gap for off, length in ranges for gap in buf.missing(off, length)])
    while want:
        buf.batches += 1
        if buf.batches > MAX_BATCHES:
            raise RuntimeError("read program did not converge")
        got = yield want
        again: list[Range] = []
        for (off, length), data in zip(want, got, strict=True):
            buf.add(off, data)
            if not data:
                # EOF before the listed size: the file is shorter than the listing said.
                buf.size = min(buf.size, off)
            elif len(data) < length:
                again.append((off + len(data), length - len(data)))
        want = _merge([gap for off, length in again for gap in buf.missing(off, length)])


def fetch_exact(offset: int, length: int, chunk: int = 64 * 1024) -> ReadProgram[bytes]:
    """Read one contiguous range in ``chunk``-sized requests sent together; short at EOF.

    For large ranges (a preview, a whole file): filling one preallocated buffer avoids
    the merging SparseBytes does, and 64 KB requests suit every server's read cap.
    """
    out = bytearray(length)
    want = [(offset + pos, min(chunk, length - pos)) for pos in range(0, length, chunk)]
    end = offset + length
    batches = 0
    while want:
        batches += 1
        if batches > MAX_BATCHES:
            raise RuntimeError("read program did not converge")
        got = yield want
        again: list[Range] = []
        for (off, n), data in zip(want, got, strict=True):
            out[off - offset : off - offset + len(data)] = data
            if not data:
                end = min(end, off)
            elif len(data) < n:
                again.append((off + len(data), n - len(data)))
        want = [(off, n) for off, n in again if off < end]
        # Copied into ``out``: the replies (a whole file's worth) are let go before the copy
        # below; whoever sent them keeps no use for them.
        got.clear()
    return bytes(memoryview(out)[: end - offset])  # one copy, not a slice and then a copy


def _merge(ranges: list[Range], slack: int = 512) -> list[Range]:
    """Join ranges closer than ``slack`` bytes: one request costs more than a few spare bytes."""
    if not ranges:
        return []
    ordered = sorted(ranges)
    out = [ordered[0]]
    for off, length in ordered[1:]:
        last_off, last_len = out[-1]
        if off <= last_off + last_len + slack:
            out[-1] = (last_off, max(last_off + last_len, off + length) - last_off)
        else:
            out.append((off, length))
    return out


def run_program(program: ReadProgram[T], read_at: Callable[[int, int], bytes]) -> T:
    """Drive a read program one request at a time: the plain, sequential reference driver."""
    try:
        want = next(program)
        while True:
            want = program.send([read_at(off, length) for off, length in want])
    except StopIteration as stop:
        result: T = stop.value
        return result
