"""Batch iterator: coverage of every sample, drop_last, seeded order, dtype, memmaps."""

import numpy as np
import pytest

import nnframe
from nnframe import backend
from nnframe.data import BatchIterator, batches


def _data(n=23, shape=(4, 4, 1)):
    x = np.arange(n * int(np.prod(shape)), dtype=np.uint8).reshape((n, *shape))
    y = np.arange(n, dtype=np.int64)
    return x, y


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("batch_size", [1, 5, 23, 100])
def test_every_sample_exactly_once_per_epoch(shuffle, batch_size):
    x, y = _data()
    it = batches(x, y, batch_size=batch_size, shuffle=shuffle, rng=3)
    for _ in range(2):  # two epochs from the same iterator
        seen = []
        count = 0
        for xb, yb in it:
            assert len(xb) == len(yb) <= batch_size
            np.testing.assert_array_equal(xb, x[yb].astype(np.float32))  # x and y stay paired
            seen.extend(yb.tolist())
            count += 1
        assert sorted(seen) == list(range(23))
        assert count == len(it) == -(-23 // batch_size)


def test_unshuffled_order_is_the_input_order():
    x, y = _data()
    assert np.concatenate([yb for _, yb in batches(x, y, batch_size=5)]).tolist() == list(range(23))


def test_drop_last():
    x, y = _data()
    it = batches(x, y, batch_size=5, drop_last=True, shuffle=True, rng=0)
    sizes = [len(yb) for _, yb in it]
    assert sizes == [5, 5, 5, 5] and len(it) == 4
    assert len(batches(x, y, batch_size=30, drop_last=True)) == 0
    assert list(batches(x, y, batch_size=30, drop_last=True)) == []
    assert [len(b) for b in batches(x, batch_size=5)] == [5, 5, 5, 5, 3]


def test_same_seed_same_order_and_epochs_differ():
    x, y = _data(100)

    def orders(rng):
        it = batches(x, y, batch_size=10, shuffle=True, rng=rng)
        return [np.concatenate([yb for _, yb in it]) for _ in range(2)]

    a, b = orders(7), orders(7)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])  # a new permutation each epoch
    assert not np.array_equal(a[0], orders(8)[0])
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(orders(g1)[0], orders(g2)[0])


def test_global_seed_drives_unseeded_shuffling():
    x, y = _data(50)
    nnframe.set_seed(11)
    first = np.concatenate([yb for _, yb in batches(x, y, 7, shuffle=True)])
    nnframe.set_seed(11)
    second = np.concatenate([yb for _, yb in batches(x, y, 7, shuffle=True)])
    np.testing.assert_array_equal(first, second)


def test_no_shuffle_leaves_the_global_generator_alone():
    x, y = _data()
    nnframe.set_seed(3)
    list(batches(x, y, 4))
    after = nnframe.random.get_state()
    nnframe.set_seed(3)
    assert after == nnframe.random.get_state()


def test_dtype_cast_not_scaled_labels_untouched():
    x, y = _data()
    y = y.astype(np.uint8)
    xb, yb = next(iter(batches(x, y, batch_size=8)))
    assert xb.dtype == np.float32 and yb.dtype == np.uint8
    assert xb.max() == float(x[:8].max()) > 1  # cast only: values unchanged
    with backend.default_dtype("float64"):
        xb, _ = next(iter(batches(x, y, batch_size=8)))
        assert xb.dtype == np.float64
    xb, _ = next(iter(batches(x, y, batch_size=8, dtype="float64")))
    assert xb.dtype == np.float64
    tokens = np.arange(20, dtype=np.int64).reshape(10, 2)
    assert next(iter(batches(tokens, batch_size=4, dtype=tokens.dtype))).dtype == np.int64


def test_x_only():
    x, _ = _data()
    out = list(batches(x, batch_size=10))
    assert [b.shape for b in out] == [(10, 4, 4, 1), (10, 4, 4, 1), (3, 4, 4, 1)]


def test_memmap_is_indexed_per_batch_never_copied_whole(tmp_path, monkeypatch):
    n, d = 1000, 64
    path = tmp_path / "x.dat"
    mm = np.memmap(path, dtype=np.uint8, mode="w+", shape=(n, d))
    mm[:] = (np.arange(n * d) % 251).reshape(n, d)
    mm.flush()
    x = np.memmap(path, dtype=np.uint8, mode="r", shape=(n, d))
    y = np.arange(n)

    requested = []

    class Spy:
        """Wraps the memmap and records how many rows each indexing call asks for."""

        shape = x.shape

        def __len__(self):
            return len(x)

        def __getitem__(self, index):
            rows = x[index]
            requested.append(len(rows))
            return rows

    it = batches(Spy(), y, batch_size=32, shuffle=True, rng=0)
    total = 0
    for xb, yb in it:
        np.testing.assert_array_equal(xb, np.asarray(x[yb], dtype=np.float32))
        total += len(yb)
    assert total == n
    assert max(requested) == 32 and len(requested) == len(it)
    # and directly on the memmap the result of each batch is a plain in-memory array
    xb, _ = next(iter(batches(x, y, batch_size=16, shuffle=True, rng=0)))
    assert type(xb) is np.ndarray and xb.shape == (16, d)


def test_validation_errors():
    x, y = _data()
    with pytest.raises(ValueError, match="same length, got 23 and 22"):
        batches(x, y[:-1])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            batches(x, y, batch_size=bad)
    with pytest.raises(TypeError, match="seed"):
        batches(x, y, shuffle=True, rng="abc")


def test_class_and_repr():
    x, y = _data()
    it = batches(x, y, batch_size=5, shuffle=True, rng=0)
    assert isinstance(it, BatchIterator)
    assert "batch_size=5" in repr(it) and "num_samples=23" in repr(it)
    assert len(BatchIterator(x, y, batch_size=5)) == 5
