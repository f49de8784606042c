"""RingBuffer: absolute indexing, wrap-around, oversized blocks, independent readers."""

from __future__ import annotations

import numpy as np
import pytest

from voxgate.core.ringbuffer import RingBuffer


@pytest.mark.parametrize("capacity", [1, 7, 64, 1000])
def test_random_writes_match_concatenation(capacity: int, rng: np.random.Generator) -> None:
    rb = RingBuffer(capacity)
    parts = []
    for _ in range(200):
        block = rng.standard_normal(int(rng.integers(0, 3 * capacity + 2))).astype(np.float32)
        rb.write(block)
        parts.append(block)
        ref = np.concatenate(parts)
        assert rb.written == ref.size
        assert rb.available == min(ref.size, capacity)
        assert rb.oldest == ref.size - rb.available
        if rb.available:
            start = int(rng.integers(rb.oldest, rb.written + 1))
            n = int(rng.integers(0, rb.written - start + 1))
            np.testing.assert_array_equal(rb.read(start, n), ref[start : start + n])
            k = int(rng.integers(1, rb.available + 1))
            np.testing.assert_array_equal(rb.latest(k), ref[-k:])


def test_block_larger_than_capacity_keeps_tail() -> None:
    rb = RingBuffer(5)
    rb.write(np.arange(3, dtype=np.float32))
    rb.write(np.arange(100, 112, dtype=np.float32))
    assert rb.written == 15
    np.testing.assert_array_equal(rb.read(10, 5), np.arange(107, 112, dtype=np.float32))
    with pytest.raises(IndexError, match="overwritten"):
        rb.read(9, 1)


def test_overwritten_and_unwritten_ranges_raise() -> None:
    rb = RingBuffer(10)
    rb.write(np.arange(25, dtype=np.float32))
    np.testing.assert_array_equal(rb.read(15, 10), np.arange(15, 25, dtype=np.float32))
    with pytest.raises(IndexError, match="overwritten"):
        rb.read(14, 2)
    with pytest.raises(IndexError, match="not written"):
        rb.read(20, 6)
    with pytest.raises(IndexError):
        rb.read(20, -1)
    with pytest.raises(IndexError):
        rb.latest(11)
    assert rb.read(25, 0).shape == (0,)


def test_read_returns_a_copy() -> None:
    rb = RingBuffer(4)
    rb.write(np.ones(4, dtype=np.float32))
    out = rb.read(0, 4)
    out[:] = 5
    rb.write(np.zeros(0, dtype=np.float32))
    np.testing.assert_array_equal(rb.read(0, 4), np.ones(4, dtype=np.float32))


def test_readers_keep_their_own_cursor(rng: np.random.Generator) -> None:
    rb = RingBuffer(50)
    fast, slow = rb.reader(), rb.reader()
    ref = rng.standard_normal(120).astype(np.float32)
    got_fast, got_slow = [], []
    for i in range(0, 120, 10):
        rb.write(ref[i : i + 10])
        got_fast.append(fast.read())  # consumes everything each time
        if i % 30 == 20:
            got_slow.append(slow.read(slow.pending))  # catches up every third block
    np.testing.assert_array_equal(np.concatenate(got_fast), ref)
    np.testing.assert_array_equal(np.concatenate(got_slow), ref[: slow.position])
    assert slow.position == 120 and len(got_slow) == 4
    assert fast.pending == 0


def test_reader_that_falls_behind_raises() -> None:
    rb = RingBuffer(8)
    r = rb.reader()
    rb.write(np.arange(20, dtype=np.float32))
    assert r.lost and r.pending == 20
    with pytest.raises(IndexError, match="overwritten"):
        r.read(4)
    assert r.position == 0  # a failed read does not move the cursor
    r.seek(rb.oldest)
    np.testing.assert_array_equal(r.peek(3), [12, 13, 14])
    r.skip(3)
    np.testing.assert_array_equal(r.read(), np.arange(15, 20, dtype=np.float32))
    with pytest.raises(IndexError, match="not written"):
        r.read(1)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        RingBuffer(0)
    with pytest.raises(ValueError):
        RingBuffer(4).write(np.zeros((2, 2), dtype=np.float32))
