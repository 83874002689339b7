"""A large contiguous read (a preview, a whole file) holds its bytes about twice, not four times."""

from __future__ import annotations

from qc_tool.domain.sparse import fetch_exact


def test_a_large_read_lets_its_replies_go_before_the_copy_it_returns() -> None:
    data = bytes(range(256)) * 1024  # 256 KiB: four 64 KiB requests
    program = fetch_exact(0, len(data))
    want = next(program)
    replies = [data[off : off + n] for off, n in want]
    try:
        program.send(replies)
    except StopIteration as stop:
        assert stop.value == data
    else:
        raise AssertionError("one batch should have been enough")
    # The driver's list of replies was emptied: while the result was copied, the bytes were
    # held in the read buffer alone, not also in every reply.
    assert replies == []
