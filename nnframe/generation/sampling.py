"""Sampling token sequences from a language model, model-agnostic and seeded.

A *model* here is anything that maps token ids ``(N, t)`` to logits ``(N, t, V)`` (or the
last step's ``(N, V)``): a :class:`~nnframe.model.Model`, a :class:`~nnframe.net.Net` or a
plain function. :func:`generate` feeds it in one of two ways:

* **incremental**: the prompt once, then one new token per call; the model carries its
  own state between calls. A net with recurrent layers is run this way automatically (a
  copy of it with ``stateful=True`` layers, so the original is left untouched), and so is a
  step function passed with ``incremental=True``.
* **full context**: the whole sequence so far (its last ``max_context`` tokens) every call,
  taking the last step's logits (a Transformer, or any net without recurrent layers).

The same ``seed`` gives the same tokens: the only randomness is one NumPy generator.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from nnframe import backend
from nnframe.data.text import CharVocabulary
from nnframe.model import Model
from nnframe.net import Net

#: layer classes that can carry their state from one call to the next
RECURRENT = ("RNN", "LSTM", "GRU")


def sample_logits(logits: Any, temperature: float = 1.0, top_k: int | None = None,
                  rng: int | np.random.Generator | None = None) -> np.ndarray:
    """Draw one id per row of ``logits`` ``(N, V)`` from ``softmax(logits / temperature)``.

    Args:
        temperature: > 0 flattens (> 1) or sharpens (< 1) the distribution; 0 takes the
            most likely id (greedy).
        top_k: draw only among the ``k`` most likely ids.
        rng: seed or generator.

    Returns:
        ``int64`` ids ``(N,)``.

    Raises:
        ValueError: for a negative temperature, a bad ``top_k`` or logits that are not ``(N, V)``.
    """
    logits = np.asarray(backend.to_host(logits), dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] < 1:
        raise ValueError(f"sample_logits: expected logits of shape (N, V), got {logits.shape}")
    if isinstance(temperature, bool) or not float(temperature) >= 0.0:
        raise ValueError(f"sample_logits: temperature must be >= 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"sample_logits: top_k must be a positive integer or None, got {top_k!r}")
    if temperature == 0.0:
        return logits.argmax(axis=1).astype(np.int64)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    z = logits / float(temperature)
    if top_k is not None and top_k < z.shape[1]:
        kth = np.partition(z, -top_k, axis=1)[:, -top_k][:, None]  # the k-th largest per row
        z = np.where(z >= kth, z, -np.inf)
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    cdf = np.cumsum(p, axis=1)
    u = rng.random(len(z))[:, None] * cdf[:, -1:]
    return np.minimum((cdf <= u).sum(axis=1), z.shape[1] - 1).astype(np.int64)


def _net_of(model: Any) -> Net | None:
    if isinstance(model, Model):
        return model.net
    return model if isinstance(model, Net) else None


def _has_recurrent(config: Any) -> bool:
    if isinstance(config, dict):
        if config.get("class") in RECURRENT:
            return True
        return any(_has_recurrent(v) for v in config.values())
    if isinstance(config, list):
        return any(_has_recurrent(v) for v in config)
    return False


def _make_stateful(config: Any) -> Any:
    """A copy of a net config with every recurrent layer ``stateful``."""
    if isinstance(config, dict):
        out = {k: _make_stateful(v) for k, v in config.items()}
        if out.get("class") in RECURRENT and isinstance(out.get("config"), dict):
            out["config"]["stateful"] = True
        return out
    if isinstance(config, list):
        return [_make_stateful(v) for v in config]
    return config


def stateful_copy(net: Net, prompt: np.ndarray) -> Net:
    """A copy of ``net`` whose recurrent layers carry their state between calls (same weights),
    built on ``prompt``'s shape, in evaluation mode, with its states reset."""
    config = json.loads(json.dumps(net.get_config()))
    copy = Net.from_config(_make_stateful(config))
    copy.eval()
    copy.forward(prompt[:, :1])  # builds every layer
    copy.load_state_dict(net.state_dict())
    copy.reset_states()
    return copy


def _last_logits(out: Any) -> np.ndarray:
    out = backend.to_host(out)
    if out.ndim == 3:
        return out[:, -1]  # (N, t, V) -> the last step
    if out.ndim == 2:
        return out
    raise ValueError(f"generate: the model must return logits (N, t, V) or (N, V), got shape {out.shape}")


def generate(model: Any, prompt: Any, length: int, *, temperature: float = 1.0, top_k: int | None = None,
             seed: int | np.random.Generator | None = None, max_context: int | None = None,
             incremental: bool | None = None) -> np.ndarray:
    """Continue ``prompt`` by ``length`` sampled tokens.

    Args:
        model: a ``Model``, a ``Net`` or a function ids ``(N, t)`` -> logits ``(N, t, V)``.
        prompt: int ids ``(T0,)`` or ``(N, T0)``, ``T0 >= 1``.
        length: number of tokens to add (>= 0).
        temperature, top_k: see :func:`sample_logits`.
        seed: seed or generator of the draws.
        max_context: full-context mode feeds at most this many last tokens (a Transformer's
            block size); ``None``: all.
        incremental: ``None`` chooses (incremental for nets with recurrent layers);
            ``True`` for a step function that carries its own state; ``False`` forces
            full context.

    Returns:
        The prompt followed by the new ids, ``(T0 + length,)`` or ``(N, T0 + length)``.

    Raises:
        ValueError: for a bad prompt or length, or a model that returns something else.
    """
    ids = np.asarray(prompt)
    single = ids.ndim == 1
    ids = ids[None] if single else ids
    if ids.ndim != 2 or ids.shape[1] < 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"generate: the prompt must be integer ids (T0,) or (N, T0) with T0 >= 1, got shape "
                         f"{np.asarray(prompt).shape} dtype {np.asarray(prompt).dtype}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"generate: length must be a non-negative integer, got {length!r}")
    if max_context is not None and (not isinstance(max_context, (int, np.integer)) or max_context < 1):
        raise ValueError(f"generate: max_context must be a positive integer or None, got {max_context!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    ids = ids.astype(np.int64)
    net = _net_of(model)
    if incremental is None:
        incremental = net is not None and _has_recurrent(net.get_config())
    if net is not None and incremental:
        step: Callable[[np.ndarray], Any] = stateful_copy(net, ids).forward
    elif net is not None:
        step = net.forward
    elif callable(model):
        step = model
    else:
        raise ValueError(f"generate: model must be a Model, a Net or a function, got {type(model).__name__}")
    mode = net.is_training if net is not None else None
    if net is not None:
        net.eval()
    try:
        out = [ids]
        feed = ids
        for _ in range(length):
            if not incremental:
                feed = np.concatenate(out, axis=1)
                if max_context is not None:
                    feed = feed[:, -max_context:]
            nxt = sample_logits(_last_logits(step(feed)), temperature, top_k, rng)[:, None]  # (N, 1)
            out.append(nxt)
            feed = nxt
    finally:
        if net is not None:
            net.is_training = mode
    result = np.concatenate(out, axis=1)
    return result[0] if single else result


def vocabulary_of(model: Model) -> CharVocabulary:
    """The character vocabulary saved in ``model.metadata["vocabulary"]``.

    Raises:
        ValueError: when the model has none (it was not trained as a character language model).
    """
    config = getattr(model, "metadata", {}).get("vocabulary")
    if config is None:
        raise ValueError("the model has no vocabulary in its metadata: it was not saved as a character language "
                         "model (set model.metadata['vocabulary'] = vocab.to_config() before saving)")
    return CharVocabulary.from_config(config)


def sample_text(model: Model, prompt: str, length: int, *, temperature: float = 1.0, top_k: int | None = None,
                seed: int | np.random.Generator | None = None, vocabulary: CharVocabulary | None = None,
                max_context: int | None = None) -> str:
    """Continue the string ``prompt`` by ``length`` sampled characters and return the whole text.

    Args:
        vocabulary: default: :func:`vocabulary_of` ``(model)``.
        max_context: see :func:`generate`; default: ``model.metadata["max_context"]`` if
            saved (a Transformer's context length), else the whole text so far.

    Raises:
        ValueError: for an empty prompt or one with characters outside the vocabulary
            (naming them).
    """
    vocab = vocabulary or vocabulary_of(model)
    if not prompt:
        raise ValueError("sample_text: the prompt must have at least one character")
    unknown = sorted({c for c in prompt if c not in vocab.chars})
    if unknown:
        raise ValueError(f"sample_text: the prompt has characters outside the model's vocabulary of {vocab.size}: "
                         f"{''.join(unknown)!r}")
    if max_context is None:
        max_context = getattr(model, "metadata", {}).get("max_context")
    ids = generate(model, vocab.encode(prompt), length, temperature=temperature, top_k=top_k, seed=seed,
                   max_context=max_context)
    return vocab.decode(ids)
