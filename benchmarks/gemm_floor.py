"""The floor under any NumPy framework: a net's matrix products alone, run by NumPy's BLAS.

A framework on NumPy computes a Dense layer, a convolution (as im2col) or an attention
step with BLAS matrix products, plus element-wise work (normalization, activations, the
optimizer) around them. :class:`Products` runs only the products, with the shapes and
transposes the net needs, on preallocated operands (no allocation, no element-wise work),
so its time is what NumPy's BLAS alone needs for that net. Timed beside nnframe and
PyTorch with :func:`benchmarks.common.compare`, it says how much of a gap is BLAS speed:

* ``floor / pytorch`` above 1: NumPy's BLAS alone is slower than PyTorch's whole step, and
  no NumPy framework can reach PyTorch's time, whatever it does around the products;
* ``nnframe / floor``: nnframe's overhead over its own products.

A :class:`Product` is one ``a @ b`` of a stack of ``(m, k) @ (k, n)`` matrices, with either
operand transposed as the framework holds it (a weight gradient reads the layer's input
as ``x.T``: a transposed view, which the BLAS reads without a copy). Stacked products (the
attention's per-head matrices) are split over the threads by their leading axis, as
nnframe's layers split them; a single product uses the BLAS's own threads.

    floor = Products(dense_products(4096, 128, 512), threads=2)
    floor.run()  # one forward and backward pass of the products
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Product:
    """``out (*batch, m, n) = a (*batch, m, k) @ b (*batch, k, n)``, operands possibly held transposed.

    Attributes:
        m, k, n: the product's sizes.
        batch: the stack's leading shape (``()`` for one matrix product).
        a_t: ``a`` is held as ``(*batch, k, m)`` and read transposed.
        b_t: ``b`` is held as ``(*batch, n, k)`` and read transposed.
    """

    m: int
    k: int
    n: int
    batch: tuple[int, ...] = ()
    a_t: bool = False
    b_t: bool = False

    def __post_init__(self) -> None:
        sizes = (self.m, self.k, self.n, *self.batch)
        if any(not isinstance(s, int) or s < 1 for s in sizes):
            raise ValueError(f"Product: every size must be a positive int, got m={self.m}, k={self.k}, "
                             f"n={self.n}, batch={self.batch}")

    @property
    def flops(self) -> int:
        """Floating-point operations: ``2 m k n`` per matrix of the stack."""
        count = 2 * self.m * self.k * self.n
        for size in self.batch:
            count *= size
        return count


def dense_products(rows: int, d_in: int, d_out: int, input_grad: bool = True) -> dict[str, list[Product]]:
    """A Dense layer's products on ``(rows, d_in)`` input: ``x @ w``; backward ``x.T @ g`` and ``g @ w.T``.

    ``input_grad=False`` leaves out ``g @ w.T`` (the first layer of a net needs no input gradient).
    """
    backward = [Product(d_in, rows, d_out, a_t=True)]
    if input_grad:
        backward.append(Product(rows, d_out, d_in, b_t=True))
    return {"forward": [Product(rows, d_in, d_out)], "backward": backward}


def conv_products(images: int, height: int, width: int, c_in: int, c_out: int, kernel: int = 3,
                  input_grad: bool = True) -> dict[str, list[Product]]:
    """A stride-1 'same' convolution as im2col: the Dense products of ``(N H W, k k C_in)`` columns."""
    return dense_products(images * height * width, kernel * kernel * c_in, c_out, input_grad)


def attention_products(batch: int, heads: int, steps: int, head_dim: int) -> dict[str, list[Product]]:
    """Scaled dot-product attention's stacked products, ``(N, h)`` matrices of ``(T, d)`` (projections apart).

    Forward: ``q @ k.T`` and ``weights @ v``; backward: ``weights.T @ d_out`` (dv), ``d_out @ v.T``
    (d_weights), ``d_scores @ k`` (dq) and ``d_scores.T @ q`` (dk).
    """
    stack, t, d = (batch, heads), steps, head_dim
    return {
        "forward": [Product(t, d, t, stack, b_t=True), Product(t, t, d, stack)],
        "backward": [Product(t, t, d, stack, a_t=True), Product(t, d, t, stack, b_t=True),
                     Product(t, t, d, stack), Product(t, t, d, stack, a_t=True)],
    }


def merge(*parts: dict[str, list[Product]]) -> dict[str, list[Product]]:
    """Concatenate the ``forward`` and ``backward`` lists of several layers' products, in order."""
    return {phase: [p for part in parts for p in part[phase]] for phase in ("forward", "backward")}


class Products:
    """Run a list of :class:`Product` on preallocated float32 operands with NumPy.

    Args:
        products: the products, in the order a pass runs them.
        threads: threads to split a stacked product over (a single product uses the BLAS's own).
        seed: seed of the random operands.
    """

    def __init__(self, products: Sequence[Product], threads: int = 1, seed: int = 0) -> None:
        import numpy as np  # noqa: PLC0415 - after the benchmark sets its thread environment

        if threads < 1:
            raise ValueError(f"Products: threads must be >= 1, got {threads}")
        if not products:
            raise ValueError("Products: got no products to run")
        rng = np.random.default_rng(seed)
        self.products = list(products)
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        self._operands: list[tuple[Any, Any, Any]] = []
        for p in self.products:
            a = rng.standard_normal((*p.batch, *((p.k, p.m) if p.a_t else (p.m, p.k))), dtype=np.float32)
            b = rng.standard_normal((*p.batch, *((p.n, p.k) if p.b_t else (p.k, p.n))), dtype=np.float32)
            a, b = (a.swapaxes(-1, -2) if p.a_t else a), (b.swapaxes(-1, -2) if p.b_t else b)
            if p.batch:  # one stack axis, to split over the threads
                a, b = a.reshape(-1, p.m, p.k), b.reshape(-1, p.k, p.n)
            out = np.empty((*a.shape[:-2], p.m, p.n), dtype=np.float32)
            self._operands.append((a, b, out))
        self._matmul = np.matmul

    @property
    def flops(self) -> int:
        """Floating-point operations of one :meth:`run`."""
        return sum(p.flops for p in self.products)

    def run(self, repeats: int = 1) -> None:
        """Compute every product ``repeats`` times, in order."""
        matmul = self._matmul
        for _ in range(repeats):
            for a, b, out in self._operands:
                if self._pool is None or a.ndim == 2 or a.shape[0] < 2:
                    matmul(a, b, out=out)
                    continue
                edges = [a.shape[0] * i // self.threads for i in range(self.threads + 1)]
                parts = [slice(lo, hi) for lo, hi in zip(edges, edges[1:], strict=False) if hi > lo]
                list(self._pool.map(lambda s, a=a, b=b, out=out: matmul(a[s], b[s], out=out[s]), parts))

    def close(self) -> None:
        """Stop the thread pool (if any)."""
        if self._pool is not None:
            self._pool.shutdown()
