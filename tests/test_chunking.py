"""chunk_wave and Windower: exact boundaries, partial chunks, random block sizes."""

from __future__ import annotations

import numpy as np
import pytest

from voxgate.core.chunking import Windower, chunk_starts, chunk_wave


def test_chunk_wave_full_chunks_only_by_default() -> None:
    x = np.arange(35, dtype=np.float32)
    out = chunk_wave(x, 10)
    assert out.shape == (3, 10) and out.dtype == np.float32
    np.testing.assert_array_equal(out.reshape(-1), x[:30])


def test_chunk_wave_with_hop() -> None:
    x = np.arange(30, dtype=np.float32)
    out = chunk_wave(x, 10, 4)
    # starts 0, 4, ..., 20 (20 + 10 = 30 fits, 24 does not)
    np.testing.assert_array_equal(out[:, 0], [0, 4, 8, 12, 16, 20])
    for row in out:
        np.testing.assert_array_equal(row, np.arange(row[0], row[0] + 10))


@pytest.mark.parametrize(
    ("n", "min_fraction", "expected_k", "tail_len"),
    [(35, 0.5, 4, 5), (35, 0.6, 3, 0), (34, 0.5, 3, 0), (31, 0.0, 4, 1), (30, 0.0, 3, 0)],
)
def test_chunk_wave_partial_chunk(
    n: int, min_fraction: float, expected_k: int, tail_len: int
) -> None:
    x = np.arange(1, n + 1, dtype=np.float32)
    out = chunk_wave(x, 10, min_fraction=min_fraction)
    assert out.shape == (expected_k, 10)
    if tail_len:
        np.testing.assert_array_equal(out[-1, :tail_len], x[30:])
        assert np.all(out[-1, tail_len:] == 0)


def test_chunk_wave_short_and_empty_inputs() -> None:
    assert chunk_wave(np.zeros(5, np.float32), 10).shape == (0, 10)
    assert chunk_wave(np.zeros(0, np.float32), 10, min_fraction=0.0).shape == (0, 10)
    out = chunk_wave(np.ones(5, np.float32), 10, min_fraction=0.5)
    assert out.shape == (1, 10) and out.sum() == 5


def test_chunk_starts_match_chunks_and_validate() -> None:
    np.testing.assert_array_equal(
        chunk_starts(16000 * 3 + 8000, 16000, 8000), [0, 8000, 16000, 24000, 32000, 40000]
    )
    with pytest.raises(ValueError):
        chunk_starts(10, 0)
    with pytest.raises(ValueError):
        chunk_starts(10, 5, 0)
    with pytest.raises(ValueError):
        chunk_starts(10, 5, min_fraction=1.5)
    with pytest.raises(ValueError):
        chunk_wave(np.zeros((2, 10), np.float32), 5)


@pytest.mark.parametrize(
    ("window", "hop"), [(160, 40), (160, 160), (100, 250), (16000, 8000), (1, 1)]
)
def test_windower_random_blocks_equal_whole_signal_slices(
    window: int, hop: int, rng: np.random.Generator
) -> None:
    x = rng.standard_normal(40000).astype(np.float32)
    w = Windower(window, hop)
    got: list[tuple[int, np.ndarray]] = []
    pos = 0
    while pos < x.size:
        n = int(rng.integers(0, 3 * window + 1))  # includes empty and oversized blocks
        got.extend(w.push(x[pos : pos + n]))
        pos += n
    starts = [s for s, _ in got]
    expected = list(range(0, x.size - window + 1, hop))
    assert starts == expected
    for s, win in got:
        assert win.shape == (window,) and win.dtype == np.float32
        np.testing.assert_array_equal(win, x[s : s + window])
    # the whole-file chunker uses the same boundaries
    np.testing.assert_array_equal(chunk_wave(x, window, hop), np.stack([v for _, v in got]))


def test_windower_windows_are_copies_and_reset_restarts() -> None:
    w = Windower(4, 2)
    block = np.arange(6, dtype=np.float32)
    out = w.push(block)
    assert [s for s, _ in out] == [0, 2]
    block[:] = -1
    np.testing.assert_array_equal(out[1][1], [2, 3, 4, 5])
    w.reset()
    assert w.push(np.arange(3, dtype=np.float32)) == []
    assert [s for s, _ in w.push(np.arange(3, dtype=np.float32))] == [0, 2]


def test_windower_validates() -> None:
    with pytest.raises(ValueError):
        Windower(0, 1)
    with pytest.raises(ValueError):
        Windower(10, 0)


def test_windower_reads_windows_out_of_a_bounded_ring(rng: np.random.Generator) -> None:
    """No growing buffer: the windower keeps one ring of window + max(hop, window) samples,
    even for a whole file pushed at once."""
    x = rng.standard_normal(50_000).astype(np.float32)
    w = Windower(1000, 300)
    got = w.push(x)
    assert [s for s, _ in got] == list(range(0, x.size - 1000 + 1, 300))
    np.testing.assert_array_equal(got[-1][1], x[got[-1][0] : got[-1][0] + 1000])
    assert w._ring.capacity == 2000 and w.received == x.size


def test_windower_collect_over_a_shared_ring(rng: np.random.Generator) -> None:
    from voxgate.core.ringbuffer import RingBuffer

    x = rng.standard_normal(9000).astype(np.float32)
    ring = RingBuffer(1500)
    w = Windower(1000, 250)
    got = []
    for i in range(0, x.size, 500):  # pieces of at most capacity - window
        ring.write(x[i : i + 500])
        got += w.collect(ring)
    assert [s for s, _ in got] == list(range(0, x.size - 1000 + 1, 250))
    for s, win in got:
        np.testing.assert_array_equal(win, x[s : s + 1000])
