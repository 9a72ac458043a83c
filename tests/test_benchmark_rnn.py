"""``python -m benchmarks rnn`` on a tiny workload: the report's structure and the shared weights."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")

from benchmarks import rnn  # noqa: E402


@pytest.mark.slow
def test_rnn_benchmark_report(tmp_path, capsys):
    out = tmp_path / "rnn.json"
    assert rnn.main(["--threads", "1", "--rounds", "1", "--calls", "1", "--batch", "4", "--hidden", "8",
                     "--steps-t", "5", "--features", "3", "--gap", "0", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "LSTM   train" in text and "GRU    infer" in text and "BLAS" in text
    report = json.loads(out.read_text())
    for kind in ("LSTM", "GRU"):
        res = report["results"][kind]
        first = res["first_loss"]
        assert first["nnframe"] == pytest.approx(first["pytorch"], rel=1e-5)  # same weights, same batch
        for phase in ("train", "infer"):
            assert res[phase]["ms_per_step"]["nnframe"] > 0 and res[phase]["ms_per_step"]["pytorch"] > 0
            assert len(res[phase]["ratio"]["per_round"]) == 1
