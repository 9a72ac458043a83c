"""The attention examples: the ViT spec trains through the CLI, the Transformer LM trains,
saves and generates reproducibly (all on tiny data written by the tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from example_loader import load_example
from test_cli import make_dataset, run, train_args

from nnframe import layer
from nnframe.net import Net

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str):
    return load_example(name)  # defines functions only; main() is not run


def test_vit_spec_is_current_builds_and_trains_with_the_cli(tmp_path):
    spec = json.loads((EXAMPLES / "fashion_vit.json").read_text())
    assert _load("fashion_vit").spec() == spec, "examples/fashion_vit.json is stale: run fashion_vit.py --write-spec"
    vit = Net.from_config(spec)
    assert vit.forward(np.zeros((2, 28, 28, 1), dtype=np.float32)).shape == (2, 10)
    assert sum(isinstance(lyr, layer.TransformerEncoderBlock) for lyr in vit.layers) == 4
    make_dataset(tmp_path / "data", n_train=64, n_test=20)
    status, out, err = run(train_args(tmp_path / "data", tmp_path / "vit.safetensors", "--model",
                                      EXAMPLES / "fashion_vit.json", "--epochs", 1, "--lr", 1e-3))
    assert status == 0, err
    assert "TransformerEncoderBlock" in out and "test: loss" in out


@pytest.mark.slow
def test_transformer_lm_trains_saves_and_generates_reproducibly(tmp_path, capsys):
    lm = _load("transformer_lm")
    corpus = tmp_path / "fortunes"
    corpus.mkdir()
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"]
    (corpus / "tiny").write_text("\n%\n".join(" ".join(rng.choice(words, 12)) for _ in range(60)) + "\n")
    ckpt = tmp_path / "lm.safetensors"
    common = ["--data-dir", str(corpus), "--embed-dim", "16", "--heads", "2", "--seq-len", "16", "--batch", "8",
              "--warmup", "2", "--log-every", "5", "--eval-every", "10", "--val-chars", "256"]
    assert lm.main(["--steps", "20", "--out", str(ckpt), *common]) == 0
    out = capsys.readouterr().out
    vocab_size = int(out.split("vocabulary ")[1].split(";")[0])
    final = float(out.split("nnframe: validation ")[1].split()[0])
    assert final < np.log2(vocab_size) - 0.4  # it learned something: well below a uniform guess
    samples = []
    for _ in range(2):
        assert lm.main(["--generate", str(ckpt), "--prompt", "the ", "--length", "30", "--seed", "3"]) == 0
        samples.append(capsys.readouterr().out)
    assert samples[0] == samples[1] and samples[0].startswith("the ") and len(samples[0]) >= 34
    status, cli_out, err = run(["generate", ckpt, "--prompt", "the ", "--length", 30, "--seed", 3,
                                "--temperature", 0.8])  # longer than the 16-step context
    assert status == 0, err
    assert cli_out.strip() == samples[0].strip()  # the CLI and the example share the sampler
