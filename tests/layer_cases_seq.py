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

SEQ_CASES += [
    Case("RNN", lambda: layer.RNN(3), (2, 4, 3), output_shape=(2, 3)),
    Case("RNN-relu-sequences", lambda: layer.RNN(3, nonlinearity="relu", return_sequences=True), (2, 4, 3),
         output_shape=(2, 4, 3), gradcheck={"atol": 1e-5}),
    Case("LSTM", lambda: layer.LSTM(3), (2, 4, 3), output_shape=(2, 3)),
    Case("LSTM-bidirectional-2-layers-dropout",
         lambda: layer.LSTM(2, num_layers=2, bidirectional=True, dropout=0.3, return_sequences=True, rng=0),
         (2, 3, 3), output_shape=(2, 3, 4), train_differs=True),
    Case("GRU", lambda: layer.GRU(3, return_sequences=True), (2, 4, 3), output_shape=(2, 4, 3)),
    Case("GRU-bidirectional", lambda: layer.GRU(2, bidirectional=True), (3, 3, 2), output_shape=(3, 4)),
    Case("RNN-2-layers", lambda: layer.RNN(2, num_layers=2), (2, 3, 2), output_shape=(2, 2)),
]
