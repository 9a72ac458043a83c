"""The text loader, the vocabulary, sampling and ``nnframe generate`` on a tiny text the test writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnframe import layer, loss, model, net, optimizer, set_seed
from nnframe.data import text
from nnframe.generation import generate, sample_logits, sample_text, stateful_copy, vocabulary_of

ROOT = Path(__file__).resolve().parent.parent
TINY = "the cat sat on the mat.\n%\nthe dog sat on the log.\n%\n" * 6


def test_load_text_reads_a_directory_of_text_files_and_skips_links_and_binaries(tmp_path):
    (tmp_path / "a").write_text("first\n")
    (tmp_path / "b").write_text("second")
    (tmp_path / "b.dat").write_bytes(b"\x00\x01binary index")
    (tmp_path / "a.u8").symlink_to(tmp_path / "a")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in text.text_files(tmp_path)] == ["a", "b"]
    assert text.load_text(tmp_path) == "first\nsecond"
    assert text.load_text([tmp_path / "b", tmp_path / "a"]) == "second\nfirst\n"  # a newline between files
    (tmp_path / "c").write_bytes("caf\u00e9".encode("latin-1"))
    with pytest.raises(text.TextFormatError, match=r"c: not valid utf-8 text at byte 3"):
        text.load_text(tmp_path / "c")
    with pytest.raises(FileNotFoundError, match="no text file"):
        text.text_files(tmp_path / "sub")


def test_vocabulary_round_trip_unknown_characters_and_config():
    train, val = text.split_text(TINY, 0.25)
    assert train + val == TINY and len(val) == round(len(TINY) * 0.25)
    vocab = text.CharVocabulary.from_text("abc")
    assert vocab.chars == ["a", "b", "c", text.UNKNOWN] and vocab.size == 4
    ids = vocab.encode("cab?")
    assert ids.dtype == np.int32 and ids.tolist() == [2, 0, 1, 3]  # '?' is unknown
    assert vocab.decode(ids) == "cab" + text.UNKNOWN
    strict = text.CharVocabulary("abc", unknown=None)
    with pytest.raises(ValueError, match=r"character '\?' at position 3 is not in the vocabulary of 3"):
        strict.encode("cab?")
    with pytest.raises(ValueError, match=r"ids must be in 0 \.\. 2, got values from 0 to 5"):
        strict.decode([0, 5])
    again = text.CharVocabulary.from_config(vocab.to_config())
    assert again.chars == vocab.chars and again.unknown == vocab.unknown
    with pytest.raises(text.TextFormatError, match="expected"):
        text.CharVocabulary.from_config({"chars": 3})
    with pytest.raises(ValueError, match=r"validation_fraction must be in \(0, 1\), got 1.5"):
        text.split_text(TINY, 1.5)


def test_windows_predict_the_next_character():
    ids = np.arange(20, dtype=np.int32)
    x, y = text.random_windows(ids, 5, 3, rng=0)
    assert x.shape == y.shape == (3, 5)
    np.testing.assert_array_equal(y, x + 1)
    x2, _ = text.random_windows(ids, 5, 3, rng=0)
    np.testing.assert_array_equal(x, x2)  # seeded
    xs, ys = text.sequential_windows(ids, 6)
    assert xs.shape == (3, 6) and xs[1, 0] == 6 and ys[2, -1] == 18
    with pytest.raises(ValueError, match="a window of 20 steps needs 21 ids"):
        text.sequential_windows(ids, 20)


def test_sample_logits_greedy_top_k_and_seed():
    logits = np.log(np.array([[0.1, 0.2, 0.7], [0.5, 0.25, 0.25]]))
    assert sample_logits(logits, temperature=0).tolist() == [2, 0]
    draws = np.stack([sample_logits(logits, 1.0, rng=np.random.default_rng(s)) for s in range(2000)])
    assert np.mean(draws[:, 0] == 2) == pytest.approx(0.7, abs=0.04)
    assert np.mean(draws[:, 1] == 0) == pytest.approx(0.5, abs=0.04)
    top1 = [sample_logits(logits, 5.0, top_k=1, rng=s).tolist() for s in range(20)]
    assert all(t == [2, 0] for t in top1)
    assert set(sample_logits(np.zeros((500, 3)), 1.0, top_k=2, rng=0)) <= {0, 1, 2}
    np.testing.assert_array_equal(sample_logits(logits, 0.8, rng=3), sample_logits(logits, 0.8, rng=3))
    with pytest.raises(ValueError, match="temperature must be >= 0, got -1"):
        sample_logits(logits, -1)
    with pytest.raises(ValueError, match=r"logits of shape \(N, V\)"):
        sample_logits(logits[0])


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A small LSTM language model trained on TINY for a few hundred steps, saved with its vocabulary."""
    set_seed(0)
    vocab = text.CharVocabulary.from_text(TINY)
    ids = vocab.encode(TINY)
    lm = model.Model(net.Net([layer.Embedding(vocab.size, 8), layer.LSTM(32, return_sequences=True),
                              layer.Dense(vocab.size)]), loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=0.02))
    lm.metadata["vocabulary"] = vocab.to_config()
    rng = np.random.default_rng(0)
    for _ in range(150):
        x, y = text.random_windows(ids, 12, 16, rng)
        pred = lm.forward(x)
        _, step = lm.backward(pred, y)
        lm.apply_grad(step)
    path = tmp_path_factory.mktemp("lm") / "lm.safetensors"
    lm.save(path)
    return lm, path


def test_generation_is_seeded_and_stateful_stepping_equals_full_context(tiny_lm):
    lm, _ = tiny_lm
    vocab = vocabulary_of(lm)
    prompt = vocab.encode("the ")
    fast = generate(lm, prompt, 30, temperature=0.8, seed=1)  # a stateful copy, one step at a time
    slow = generate(lm, prompt, 30, temperature=0.8, seed=1, incremental=False)  # the whole text every step
    np.testing.assert_array_equal(fast, slow)
    assert fast.shape == (34,) and fast[:4].tolist() == prompt.tolist()
    assert not lm.net.layers[1].stateful  # the model itself is untouched
    batch = generate(lm.net, np.stack([prompt, prompt]), 5, temperature=0, seed=0)
    assert batch.shape == (2, 9) and (batch[0] == batch[1]).all()
    greedy = sample_text(lm, "the c", 12, temperature=0)
    assert greedy.startswith("the cat sat on")  # it learned the text
    again = sample_text(lm, "the ", 40, temperature=0.8, seed=7)
    assert again == sample_text(lm, "the ", 40, temperature=0.8, seed=7)
    with pytest.raises(ValueError, match=r"outside the model's vocabulary of \d+: 'Z'"):
        sample_text(lm, "Zoo", 3)


def test_generate_takes_a_plain_function_for_a_transformer_like_model():
    calls = []

    def full_context(ids):  # logits favour (last id + 1) mod 5
        calls.append(ids.shape[1])
        logits = np.full((*ids.shape, 5), -10.0)
        logits[np.arange(ids.shape[0])[:, None], np.arange(ids.shape[1]), (ids + 1) % 5] = 10.0
        return logits

    out = generate(full_context, np.array([0, 1]), 6, temperature=0.5, seed=0, max_context=3)
    assert out.tolist() == [0, 1, 2, 3, 4, 0, 1, 2]
    assert calls == [2, 3, 3, 3, 3, 3]  # the context is cut to max_context
    with pytest.raises(ValueError, match="prompt must be integer ids"):
        generate(full_context, np.array([0.5]), 2)
    with pytest.raises(ValueError, match="length must be a non-negative integer, got -1"):
        generate(full_context, np.array([1]), -1)


def test_stateful_copy_shares_weights_not_state(tiny_lm):
    lm, _ = tiny_lm
    prompt = np.array([[1, 2, 3]])
    copy = stateful_copy(lm.net, prompt)
    assert copy.layers[1].stateful and copy.layers[1].states is None
    np.testing.assert_array_equal(copy.layers[1].params["weight_hh_l0"], lm.net.layers[1].params["weight_hh_l0"])
    whole = lm.net.forward(prompt)
    steps = [copy.forward(prompt[:, t:t + 1]) for t in range(3)]
    np.testing.assert_allclose(np.concatenate(steps, axis=1), whole, rtol=1e-5, atol=1e-6)


def test_vocabulary_of_a_model_without_one():
    m = model.Model(net.Net([layer.Dense(2)]), loss.MSE(), optimizer.SGD(lr=0.1))
    with pytest.raises(ValueError, match="has no vocabulary in its metadata"):
        vocabulary_of(m)


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.run([sys.executable, "-m", "nnframe", *args], capture_output=True, text=True, env=env,
                          timeout=120)


@pytest.mark.slow
def test_nnframe_generate_prints_reproducible_text(tiny_lm):
    _, path = tiny_lm
    args = ["generate", str(path), "--prompt", "the ", "--length", "40", "--temperature", "0.8", "--seed", "0"]
    first, second = _cli(*args), _cli(*args)  # two processes: the same text
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and first.stdout.startswith("the ") and len(first.stdout) == 45


@pytest.mark.parametrize("extra, status, fragment", [
    (["--prompt", "the c", "--length", "9", "--temperature", "0"], 0, None),
    (["--prompt", "Q"], 1, "outside the model's vocabulary"),
    (["--temperature", "-1"], 2, "expected a number >= 0"),
])
def test_nnframe_generate_greedy_and_errors_in_process(tiny_lm, capsys, extra, status, fragment):
    from nnframe import cli

    _, path = tiny_lm
    assert cli.main(["generate", str(path), *extra]) == status
    out, err = capsys.readouterr()
    if fragment is None:
        assert out.startswith("the cat sat")
    else:
        assert fragment in err and "Traceback" not in err
    assert cli.main(["generate", str(path) + ".nope"]) == 1
    assert "does not exist" in capsys.readouterr().err
