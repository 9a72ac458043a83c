"""Conformance cases of the sequence layers: embeddings, masking and the recurrent layers.

Collected into ``layer_cases.ALL_CASES``. Inputs are tiny (a few steps, a few units) so
that every finite-difference check stays well under a second. Initial states, masks and
return_state are checked in tests/test_recurrent.py, which calls the layers directly.
"""

from __future__ import annotations

from layer_cases import Case

from nnframe import layer

SEQ_CASES = [
    Case("Embedding", lambda: layer.Embedding(7, 3), (2, 5), ids=7, output_shape=(2, 5, 3)),
    # ids 0..3 only: the padding row (4) gets no gradient by design, which finite differences
    # would see only where it is used (tests/test_embedding.py checks that case directly)
    Case("Embedding-padding-3d", lambda: layer.Embedding(5, 2, padding_idx=-1), (2, 3, 2), ids=4,
         output_shape=(2, 3, 2, 2)),
    Case("Masking", layer.Masking, (2, 4, 3), output_shape=(2, 4, 3)),
]
