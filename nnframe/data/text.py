"""Plain text for character-level language models: reading files, a vocabulary, windows of ids.

::

    from nnframe.data import text

    corpus = text.load_text("/usr/share/games/fortunes")         # every text file in the directory
    train_text, val_text = text.split_text(corpus, 0.1)           # the last 10% for validation
    vocab = text.CharVocabulary.from_text(train_text)             # from the training split only
    train_ids, val_ids = vocab.encode(train_text), vocab.encode(val_text)
    x, y = text.random_windows(train_ids, seq_len=100, batch_size=64, rng=0)   # y is x shifted by one
    model.metadata["vocabulary"] = vocab.to_config()               # saved with the checkpoint
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

#: the character unseen characters become (the Unicode replacement character)
UNKNOWN = "\ufffd"


class TextFormatError(ValueError):
    """A file is not text in the expected encoding, or a vocabulary config is malformed."""


def text_files(directory: str | os.PathLike) -> list[Path]:
    """The text files of ``directory``, sorted by name.

    Skipped, because they are not more text: symbolic links (Debian's ``fortunes`` links
    ``name.u8`` to ``name``), subdirectories, and binary files (a NUL byte in the first
    8 KiB, e.g. ``fortunes``' ``.dat`` indexes).

    Raises:
        FileNotFoundError: when ``directory`` does not exist or holds no text file.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"text_files: {root} is not a directory")
    found = []
    for path in sorted(root.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        with open(path, "rb") as f:
            if b"\x00" in f.read(8192):
                continue
        found.append(path)
    if not found:
        raise FileNotFoundError(f"text_files: no text file in {root} (symbolic links and binary files are skipped)")
    return found


def load_text(paths: str | os.PathLike | Iterable[str | os.PathLike], encoding: str = "utf-8") -> str:
    """Read and join text files; a directory stands for its :func:`text_files`.

    Files are joined with a newline between them when one does not end in one.

    Raises:
        FileNotFoundError: for a missing path.
        TextFormatError: for a file that is not valid ``encoding`` (naming it and the byte offset).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    parts = []
    for path in paths:
        path = Path(path)
        files = text_files(path) if path.is_dir() else [path]
        for file in files:
            data = file.read_bytes()
            try:
                content = data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise TextFormatError(f"{file}: not valid {encoding} text at byte {exc.start}: {exc.reason}") from None
            if parts and not parts[-1].endswith("\n"):
                parts.append("\n")
            parts.append(content)
    return "".join(parts)


def split_text(corpus: str, validation_fraction: float = 0.1) -> tuple[str, str]:
    """``(train, validation)``: the last ``validation_fraction`` of the characters is validation.

    A contiguous split (not shuffled), so no window of one side overlaps the other.

    Raises:
        ValueError: for a fraction outside ``(0, 1)`` or a text too short to split.
    """
    if not 0.0 < float(validation_fraction) < 1.0:
        raise ValueError(f"split_text: validation_fraction must be in (0, 1), got {validation_fraction!r}")
    cut = int(round(len(corpus) * (1.0 - float(validation_fraction))))
    if cut < 2 or len(corpus) - cut < 2:
        raise ValueError(f"split_text: a text of {len(corpus)} characters is too short to split "
                         f"{1 - validation_fraction:.2f}/{validation_fraction:.2f}")
    return corpus[:cut], corpus[cut:]


class CharVocabulary:
    """Characters <-> integer ids (``0 .. size - 1``), in sorted order of the characters.

    Args:
        chars: the distinct characters.
        unknown: the character that characters outside the vocabulary are encoded as
            (it is added to the vocabulary); ``None`` makes :meth:`encode` refuse them.
    """

    def __init__(self, chars: Iterable[str], unknown: str | None = UNKNOWN) -> None:
        chars = list(chars)
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise TextFormatError(f"CharVocabulary: every entry must be one character, got {chars[:10]!r}...")
        if len(set(chars)) != len(chars):
            raise TextFormatError("CharVocabulary: the characters must be distinct")
        if unknown is not None and unknown not in chars:
            chars.append(unknown)
        self.chars = sorted(chars)
        self.unknown = unknown
        self._index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, corpus: str, unknown: str | None = UNKNOWN) -> CharVocabulary:
        """The vocabulary of every character in ``corpus`` (plus ``unknown``)."""
        return cls(sorted(set(corpus)), unknown=unknown)

    @property
    def size(self) -> int:
        """Number of ids (the language model's ``V``)."""
        return len(self.chars)

    def __len__(self) -> int:
        return self.size

    def encode(self, corpus: str) -> np.ndarray:
        """``int32`` ids of ``corpus``'s characters.

        Raises:
            ValueError: for a character outside the vocabulary when ``unknown`` is ``None``
                (naming it and its position).
        """
        index = self._index
        if self.unknown is None:
            for position, char in enumerate(corpus):
                if char not in index:
                    raise ValueError(f"CharVocabulary.encode: character {char!r} at position {position} is not in "
                                     f"the vocabulary of {self.size} characters")
            return np.fromiter((index[c] for c in corpus), dtype=np.int32, count=len(corpus))
        fallback = index[self.unknown]
        return np.fromiter((index.get(c, fallback) for c in corpus), dtype=np.int32, count=len(corpus))

    def decode(self, ids: Iterable[int]) -> str:
        """The text of a sequence of ids.

        Raises:
            ValueError: for an id outside ``0 .. size - 1``.
        """
        ids = np.asarray(ids).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise ValueError(f"CharVocabulary.decode: ids must be in 0 .. {self.size - 1}, got values from "
                             f"{int(ids.min())} to {int(ids.max())}")
        return "".join(self.chars[int(i)] for i in ids)

    def to_config(self) -> dict[str, Any]:
        """A JSON-ready dict (for a checkpoint's metadata) that :meth:`from_config` reads back."""
        return {"chars": "".join(self.chars), "unknown": self.unknown}

    @classmethod
    def from_config(cls, config: Any) -> CharVocabulary:
        """Rebuild from :meth:`to_config`'s dict.

        Raises:
            TextFormatError: for anything else.
        """
        if not isinstance(config, dict) or not isinstance(config.get("chars"), str) \
                or not isinstance(config.get("unknown"), (str, type(None))):
            raise TextFormatError(f"CharVocabulary.from_config: expected {{'chars': str, 'unknown': str or None}}, "
                                  f"got {str(config)[:80]!r}")
        return cls(config["chars"], unknown=config["unknown"])

    def __repr__(self) -> str:
        return f"CharVocabulary(size={self.size}, unknown={self.unknown!r})"


def _check_windows(ids: np.ndarray, seq_len: int) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ValueError(f"expected a 1-D integer array of ids, got shape {ids.shape} dtype {ids.dtype}")
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
    if len(ids) < seq_len + 1:
        raise ValueError(f"a window of {seq_len} steps needs {seq_len + 1} ids (inputs and the next one), "
                         f"got {len(ids)}")
    return ids


def random_windows(ids: np.ndarray, seq_len: int, batch_size: int,
                   rng: int | np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A batch of windows at random offsets: inputs ``(B, T)`` and next-character targets ``(B, T)``.

    ``y[b, t] = x[b, t + 1]``'s id in the text, i.e. the character after ``x[b, t]``.
    """
    ids = _check_windows(ids, seq_len)
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    starts = rng.integers(0, len(ids) - seq_len, size=batch_size)
    index = starts[:, None] + np.arange(seq_len + 1)  # (B, T+1)
    windows = ids[index]
    return windows[:, :-1], windows[:, 1:]


def sequential_windows(ids: np.ndarray, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """All non-overlapping windows in order, inputs ``(M, T)`` and targets ``(M, T)``: every
    character after the first is predicted once (up to the last ``< T`` left over), for validation."""
    ids = _check_windows(ids, seq_len)
    count = (len(ids) - 1) // seq_len
    x = ids[:count * seq_len].reshape(count, seq_len)
    y = ids[1:count * seq_len + 1].reshape(count, seq_len)
    return x, y
