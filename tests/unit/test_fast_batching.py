"""The fast data path: vectorised padding, length-bucketed streams, distinct siamese sentences.

Bucketing must cut padding on real-shaped lengths while every row is still visited once per
pass, batches come in shuffled order and the same seed gives the same batches; the
pair-units batch must give the model the same outputs as encoding both sides separately.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.data.batching import (
    BatchStream,
    Ragged,
    TaskData,
    bucketed_order,
    collate,
    pad_rows,
)
from tests.unit.microtrain import micro_data, micro_model


def real_shaped_lengths(n: int = 4000, seed: int = 0) -> np.ndarray:
    """Token counts shaped like SST sentences (median ~23, long right tail up to ~60)."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(3.1, 0.5, size=n).astype(np.int64), 3, 64)


def padding_efficiency(lengths: np.ndarray, stream: BatchStream, steps: int) -> float:
    real = computed = 0
    for _ in range(steps):
        lens = lengths[next(stream)]
        real += lens.sum()
        computed += len(lens) * lens.max()
    return real / computed


def test_bucketing_pads_far_less_than_random_batches():
    lengths = real_shaped_lengths()
    steps = len(lengths) // 32
    bucketed = padding_efficiency(lengths, BatchStream(len(lengths), 32, np.random.default_rng(0),
                                                       lengths=lengths), steps)
    plain = padding_efficiency(lengths, BatchStream(len(lengths), 32, np.random.default_rng(0)),
                               steps)
    assert bucketed >= 0.9
    assert plain < 0.75


@pytest.mark.parametrize("n", [0, 1, 31, 32, 1000, 1601])
def test_every_row_once_per_pass(n):
    lengths = real_shaped_lengths(n)
    order = bucketed_order(lengths, 32, np.random.default_rng(1))
    assert sorted(order.tolist()) == list(range(n))


def test_batch_order_is_shuffled_and_batches_are_buckets():
    lengths = real_shaped_lengths(3200)
    order = bucketed_order(lengths, 32, np.random.default_rng(2), pool=100)  # one pool
    batches = order.reshape(-1, 32)
    maxima = lengths[batches].max(1)
    assert not (np.all(np.diff(maxima) >= 0) or np.all(np.diff(maxima) <= 0))  # not sorted
    spread = lengths[batches].max(1) - lengths[batches].min(1)
    assert np.median(spread) <= 1  # one pool sorted: each batch is near one length


def test_same_seed_same_batches_other_seed_other_batches():
    lengths = real_shaped_lengths(1000)

    def draw(seed: int) -> list[list[int]]:
        s = BatchStream(len(lengths), 16, np.random.default_rng(seed), lengths=lengths)
        return [next(s).tolist() for _ in range(100)]  # more than one pass

    assert draw(5) == draw(5)
    assert draw(5) != draw(6)


def test_bucketed_stream_resumes_from_its_state():
    lengths = real_shaped_lengths(500)
    a = BatchStream(len(lengths), 16, np.random.default_rng(3), lengths=lengths)
    for _ in range(7):
        next(a)
    b = BatchStream(len(lengths), 16, np.random.default_rng(99), lengths=lengths)
    b.load_state_dict(a.state_dict())
    b.rng.bit_generator.state = a.rng.bit_generator.state
    assert [next(a).tolist() for _ in range(50)] == [next(b).tolist() for _ in range(50)]


def test_data_parallel_ranks_get_disjoint_similar_length_shards():
    lengths = real_shaped_lengths(640)
    ranks = [BatchStream(len(lengths), 16, np.random.default_rng(4), r, 2, lengths=lengths)
             for r in range(2)]
    seen: list[int] = []
    for _ in range(20):  # one pass: 640 rows / (16 * 2)
        parts = [next(s) for s in ranks]
        assert not set(parts[0]) & set(parts[1])
        seen += parts[0].tolist() + parts[1].tolist()
    assert sorted(seen) == list(range(640))


def test_pad_rows_matches_a_python_reference():
    rng = np.random.default_rng(0)
    lens = rng.integers(0, 7, size=20)
    offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    col = Ragged(rng.integers(1, 50, size=int(offsets[-1])).astype(np.int32), offsets)
    idx = np.array([3, 0, 19, 7, 7])
    ids, got_lens = pad_rows(col, idx, fill=-1)
    width = int(lens[idx].max())
    for row, i in enumerate(idx):
        seq = col.values[offsets[i] : offsets[i + 1]].tolist()
        assert ids[row].tolist() == seq + [-1] * (width - len(seq))
    assert got_lens.tolist() == lens[idx].tolist()


def test_pair_units_encode_each_distinct_sentence_once_with_the_same_outputs():
    data = micro_data(n=40)["pair"]
    # duplicate sentences: row 1's b is row 0's a, and rows 2 and 3 are the same pair
    a, b = data.columns["a_input_ids"], data.columns["b_input_ids"]
    seq = lambda col, i: col.values[col.offsets[i] : col.offsets[i + 1]]  # noqa: E731
    rows_a = [seq(a, i) for i in range(len(data))]
    rows_b = [seq(b, i) for i in range(len(data))]
    rows_b[1], rows_a[3], rows_b[3] = rows_a[0], rows_a[2], rows_b[2]

    def ragged(rows: list[np.ndarray]) -> Ragged:
        off = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        return Ragged(np.concatenate(rows).astype(np.int32), off)

    data = TaskData("pair", data.ids, data.labels,
                    {"a_input_ids": ragged(rows_a), "b_input_ids": ragged(rows_b)})
    idx = np.arange(8)
    batch = collate(data, idx, 0, regression=False)
    units = sum(len(v) for k, v in batch.items() if k.startswith("u") and "input_ids" in k)
    assert units == 2 * len(idx) - 3  # three duplicates dropped
    model = micro_model(dropout=0.0).eval()
    with torch.no_grad():
        fast = model("pair", batch)
        plain = model("pair", {k: v for k, v in batch.items()
                               if not k.startswith("u") and not k.endswith("_unit")})
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)
