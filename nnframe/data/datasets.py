"""MNIST, Fashion-MNIST and CIFAR-10: found on disk or downloaded, checked, returned as NHWC uint8.

Where a data set is looked for, in order (the first place holding every file wins):

1. the ``data_dir`` argument (the directory itself, then ``data_dir/<name>``); when it
   is given and holds no copy, that is an error: an explicit place is never skipped;
2. ``$NNFRAME_DATA/<name>``, then ``$NNFRAME_DATA`` itself;
3. the user cache ``$XDG_CACHE_HOME/nnframe/<name>`` (default ``~/.cache/nnframe/<name>``);
4. system copies ``<dir>/<name>`` for each ``<dir>`` in :data:`SYSTEM_DATA_DIRS`
   (``/usr/share/datasets``, where Debian's ``dataset-fashion-mnist`` installs);
5. a download from the mirrors in :data:`MIRRORS` into the user cache, each file
   checked against its published MD5 and written atomically.

``<name>`` is ``mnist``, ``fashion-mnist`` or ``cifar10``. With no copy anywhere and
no download, one :class:`DatasetNotFoundError` lists every place tried and how to get
the data. Files found on disk are checked structurally (IDX headers and sizes, CIFAR
record sizes, label ranges); downloads are also checked against their checksums.

CIFAR-10 is read from the *binary* archive (``cifar-10-binary.tar.gz``: records of one
label byte and 3072 pixel bytes, CHW) straight from the tarball, without extracting
anything; the Python version of the archive is pickled and is never opened.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import tarfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnframe.data import integrity, preprocessing
from nnframe.data.download import DownloadError, download_file
from nnframe.data.idx import IDXFormatError, read_idx

ENV_VAR = "NNFRAME_DATA"

#: Parent directories of system-wide copies (``<dir>/<name>``); tests replace this list.
SYSTEM_DATA_DIRS: list[Path] = [Path("/usr/share/datasets")]

#: Base URLs tried in order for each data set (a file's URL is base + file name).
MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    "cifar10": ["https://www.cs.toronto.edu/~kriz/"],
}

#: Published size in bytes of each downloaded file (the mirrors' listings); a download stops
#: once it exceeds the size by an eighth (its MD5 would not match anyway).
SIZES: dict[str, dict[str, int]] = {
    "mnist": {"train-images-idx3-ubyte.gz": 9912422, "train-labels-idx1-ubyte.gz": 28881,
              "t10k-images-idx3-ubyte.gz": 1648877, "t10k-labels-idx1-ubyte.gz": 4542},
    "fashion-mnist": {"train-images-idx3-ubyte.gz": 26421880, "train-labels-idx1-ubyte.gz": 29515,
                      "t10k-images-idx3-ubyte.gz": 4422102, "t10k-labels-idx1-ubyte.gz": 5148},
    "cifar10": {"cifar-10-binary.tar.gz": 170052171},
}

#: Published MD5 of each downloaded file: MNIST as listed in torchvision's ``datasets/mnist.py``,
#: Fashion-MNIST from its README (github.com/zalandoresearch/fashion-mnist), CIFAR-10 from
#: https://www.cs.toronto.edu/~kriz/cifar.html.
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "cifar10": {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
}

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(i) for i in range(10)),
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"),
}

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class DatasetNotFoundError(FileNotFoundError):
    """No copy of a data set was found and none could be downloaded.

    The message lists every place tried, why each failed, and how to get the data.
    """


class DatasetFormatError(ValueError):
    """A data set's files were found but their content is not what the data set holds."""


# ---------------------------------------------------------------------------------------------
# where to look


def user_cache_dir(name: str | None = None) -> Path:
    """``$XDG_CACHE_HOME/nnframe[/name]``, or ``~/.cache/nnframe[/name]`` (XDG base directory spec)."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    root = root / "nnframe"
    return root / name if name else root


def _candidate_dirs(name: str, data_dir: str | os.PathLike | None) -> list[tuple[str, Path | None]]:
    """``(label, directory)`` pairs in resolution order; ``None`` for a place that is not set."""
    places: list[tuple[str, Path | None]] = []
    if data_dir is None:
        places.append(("data_dir argument", None))  # reported as "not given"
    else:
        base = Path(data_dir).expanduser()
        places += [("data_dir argument", base), ("data_dir argument", base / name)]
    env = os.environ.get(ENV_VAR)
    if env:
        base = Path(env).expanduser()
        places += [(f"${ENV_VAR}", base / name), (f"${ENV_VAR}", base)]
    else:
        places.append((f"${ENV_VAR}", None))
    places.append(("user cache", user_cache_dir(name)))
    places += [("system copy", Path(d) / name) for d in SYSTEM_DATA_DIRS]
    return places


def _dir_problem(directory: Path) -> str | None:
    if not directory.exists():
        return "does not exist"
    if not directory.is_dir():
        return "is not a directory"
    return None


# ---------------------------------------------------------------------------------------------
# IDX data sets (MNIST, Fashion-MNIST)

_IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _locate_idx(directory: Path) -> tuple[dict[str, Path] | None, str]:
    """The four IDX files in ``directory`` (each gzipped or raw), or why not."""
    problem = _dir_problem(directory)
    if problem:
        return None, problem
    found, missing = {}, []
    for fname in _IDX_FILES:
        for candidate in (directory / fname, directory / fname.removesuffix(".gz")):
            if candidate.is_file():
                found[fname] = candidate
                break
        else:
            missing.append(fname)
    if missing:
        return None, "missing " + ", ".join(missing)
    return found, ""


def _read_idx_dataset(files: Mapping[str, Path]) -> Arrays:
    splits = []
    for prefix in ("train", "t10k"):
        images_path = files[f"{prefix}-images-idx3-ubyte.gz"]
        labels_path = files[f"{prefix}-labels-idx1-ubyte.gz"]
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise DatasetFormatError(
                f"{images_path}: expected uint8 images of shape (N, 28, 28), got {images.dtype} {images.shape}"
            )
        if labels.ndim != 1 or labels.dtype != np.uint8:
            raise DatasetFormatError(f"{labels_path}: expected uint8 labels of shape (N,), "
                                     f"got {labels.dtype} {labels.shape}")
        if len(labels) != len(images):
            raise DatasetFormatError(f"{labels_path}: {len(labels)} labels for {len(images)} images "
                                     f"in {images_path}")
        _check_labels(labels, labels_path)
        splits.append((images[..., None], labels.astype(np.int64)))  # (N, 28, 28) -> (N, 28, 28, 1)
    return splits[0], splits[1]


def _check_labels(labels: np.ndarray, where: Any) -> None:
    if labels.size and labels.max() > 9:
        raise DatasetFormatError(f"{where}: labels must lie in 0..9, found {int(labels.max())}")


# ---------------------------------------------------------------------------------------------
# CIFAR-10 (binary version)

_CIFAR_ARCHIVE = "cifar-10-binary.tar.gz"
_CIFAR_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
_CIFAR_TEST = ("test_batch.bin",)
_CIFAR_RECORD = 1 + 3 * 32 * 32  # label byte + CHW pixels


def _locate_cifar(directory: Path) -> tuple[dict[str, Path] | None, str]:
    """The binary archive, or its six extracted ``.bin`` files, in ``directory``."""
    problem = _dir_problem(directory)
    if problem:
        return None, problem
    if (directory / _CIFAR_ARCHIVE).is_file():
        return {"archive": directory / _CIFAR_ARCHIVE}, ""
    for sub in (directory / "cifar-10-batches-bin", directory):
        if all((sub / f).is_file() for f in _CIFAR_TRAIN + _CIFAR_TEST):
            return {"batches": sub}, ""
    return None, (f"no {_CIFAR_ARCHIVE}, nor cifar-10-batches-bin/ with "
                  f"data_batch_1.bin .. data_batch_5.bin and test_batch.bin")


def _read_cifar_archive(path: Path) -> dict[str, bytes]:
    """The six batch files' bytes, read from the tarball's regular-file members only."""
    wanted = set(_CIFAR_TRAIN + _CIFAR_TEST)
    contents: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                base = posixpath.basename(member.name)
                if base not in wanted or not member.isfile():  # links, devices, dirs: never read
                    continue
                if base in contents:
                    raise DatasetFormatError(f"{path}: archive holds {base} twice")
                handle = tar.extractfile(member)
                assert handle is not None  # a regular file always has a handle
                contents[base] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetFormatError(f"{path}: not a readable .tar.gz archive ({exc})") from exc
    missing = sorted(wanted - contents.keys())
    if missing:
        raise DatasetFormatError(f"{path}: archive lacks {', '.join(missing)}")
    return contents


def _cifar_records(blobs: Sequence[tuple[str, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for where, blob in blobs:
        if len(blob) == 0 or len(blob) % _CIFAR_RECORD:
            raise DatasetFormatError(
                f"{where}: size {len(blob)} bytes is not a positive multiple of the "
                f"{_CIFAR_RECORD}-byte CIFAR-10 record (1 label byte + 3072 pixel bytes)"
            )
        records = np.frombuffer(blob, dtype=np.uint8).reshape(-1, _CIFAR_RECORD)  # (n, 3073)
        _check_labels(records[:, 0], where)
        arrays.append(records)
    records = np.concatenate(arrays)
    labels = records[:, 0].astype(np.int64)
    images = records[:, 1:].reshape(-1, 3, 32, 32)  # (N, C, H, W)
    return np.ascontiguousarray(images.transpose(0, 2, 3, 1)), labels  # (N, H, W, C)


def _read_cifar_dataset(found: Mapping[str, Path]) -> Arrays:
    if "archive" in found:
        contents = _read_cifar_archive(found["archive"])
        source = lambda f: (f"{found['archive']}:{f}", contents[f])  # noqa: E731
    else:
        source = lambda f: (str(found["batches"] / f), (found["batches"] / f).read_bytes())  # noqa: E731
    train = _cifar_records([source(f) for f in _CIFAR_TRAIN])
    test = _cifar_records([source(f) for f in _CIFAR_TEST])
    return train, test


# ---------------------------------------------------------------------------------------------
# resolution


@dataclass(frozen=True)
class _Dataset:
    name: str
    title: str
    locate: Callable[[Path], tuple[dict[str, Path] | None, str]]
    read: Callable[[Mapping[str, Path]], Arrays]
    hints: tuple[str, ...]


def _idx_hint(name: str) -> str:
    return (f"put {', '.join(_IDX_FILES)} (gzipped or not) in a directory DIR and pass data_dir=DIR "
            f"(nnframe train --data-dir DIR), or set {ENV_VAR}=DIR (or put them in $NNFRAME_DATA/{name})")


_DATASETS: dict[str, _Dataset] = {
    "mnist": _Dataset("mnist", "MNIST", _locate_idx, _read_idx_dataset, (_idx_hint("mnist"),)),
    "fashion-mnist": _Dataset(
        "fashion-mnist", "Fashion-MNIST", _locate_idx, _read_idx_dataset,
        ("apt-get install dataset-fashion-mnist (Debian/Ubuntu; installs /usr/share/datasets/fashion-mnist)",
         _idx_hint("fashion-mnist")),
    ),
    "cifar10": _Dataset(
        "cifar10", "CIFAR-10", _locate_cifar, _read_cifar_dataset,
        (f"download {MIRRORS['cifar10'][0]}{_CIFAR_ARCHIVE} (the binary version) into a directory DIR "
         f"and pass data_dir=DIR (nnframe train --data-dir DIR), or set {ENV_VAR}=DIR",),
    ),
}


def _download(ds: _Dataset, mirrors: Sequence[str], progress: bool) -> tuple[dict[str, Path] | None, list[str]]:
    """Download the missing files into the user cache; the located files, or the failures.

    Folders this call creates are removed again if the download fails and leaves them empty.
    """
    cache = user_cache_dir(ds.name)
    created = [p for p in (cache.parent.parent, cache.parent, cache) if not p.exists()]
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return None, [f"download: cannot create the cache directory {cache} ({exc})"]
    found, failures = _download_into(ds, cache, mirrors, progress)
    if found is None:
        for folder in reversed(created):  # innermost first; only if still empty
            with contextlib.suppress(OSError):
                folder.rmdir()
    return found, failures


def _download_into(ds: _Dataset, cache: Path, mirrors: Sequence[str],
                   progress: bool) -> tuple[dict[str, Path] | None, list[str]]:
    failures: list[str] = []
    if not mirrors:
        return None, ["download: no mirror configured"]
    for fname, md5 in CHECKSUMS[ds.name].items():
        if (cache / fname).is_file():
            continue
        for base in mirrors:
            url = base if base.endswith(fname) else base.rstrip("/") + "/" + fname
            try:
                size = SIZES.get(ds.name, {}).get(fname)
                download_file(url, cache / fname, md5=md5, progress=progress,
                              max_bytes=None if size is None else size + size // 8)
                break
            except DownloadError as exc:
                failures.append(f"download {exc}")
        else:
            return None, failures  # this file is on no mirror: stop, don't wait on the others
    found, why = ds.locate(cache)
    if found is None:
        failures.append(f"{cache} after download: {why}")
    return found, failures


def _resolve(ds: _Dataset, data_dir: str | os.PathLike | None, download: bool, progress: bool,
             mirrors: Sequence[str] | None) -> Mapping[str, Path]:
    tried: list[str] = []
    for label, directory in _candidate_dirs(ds.name, data_dir):
        if directory is None:
            tried.append(f"{label}: {'not given' if label.startswith('data_dir') else 'not set'}")
            continue
        found, why = ds.locate(directory)
        if found is not None:
            return found
        tried.append(f"{directory} ({label}): {why}")
        if data_dir is not None and len(tried) == 2:  # an explicit place is used or fails, never skipped
            raise DatasetNotFoundError(
                f"{ds.title} not found in the data_dir given ({Path(data_dir).expanduser()}). Places tried:\n"
                + "".join(f"  {i}. {t}\n" for i, t in enumerate(tried, 1))
                + "To get it:\n" + "".join(f"  - {h}\n" for h in ds.hints)
                + "  - or leave data_dir out to search the usual places (and download)")
    if download:
        found, failures = _download(ds, MIRRORS[ds.name] if mirrors is None else list(mirrors), progress)
        if found is not None:
            return found
        tried += failures
    else:
        tried.append("download: not attempted (download=False)")
    hints = list(ds.hints)
    if download:
        hints.append(f"or retry the download with a working connection to "
                     f"{', '.join(MIRRORS[ds.name] if mirrors is None else mirrors)}")
    else:
        hints.append(f"or allow the download (download=True); files are cached in {user_cache_dir(ds.name)}")
    message = (f"{ds.title} not found. Places tried, in order:\n"
               + "".join(f"  {i}. {t}\n" for i, t in enumerate(tried, 1))
               + "To get it:\n" + "".join(f"  - {h}\n" for h in hints))
    raise DatasetNotFoundError(message.rstrip("\n"))


def _dataset(name: str) -> _Dataset:
    key = name.lower().replace("_", "-")
    key = {"fashion": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10"}.get(key, key)
    if key not in _DATASETS:
        raise ValueError(f"unknown data set {name!r}: expected one of {', '.join(_DATASETS)}")
    return _DATASETS[key]


def locate_dataset(name: str, data_dir: str | os.PathLike | None = None, download: bool = True,
                   progress: bool = True, mirrors: Sequence[str] | None = None) -> Path:
    """The directory :func:`load_dataset` reads ``name`` from, with the same arguments
    (the first place in the module docstring's order that holds the files; after a
    download, the user cache). ``load_dataset(name, data_dir=that)`` then reads it.

    Raises:
        ValueError, DatasetNotFoundError: as :func:`load_dataset`.
    """
    ds = _dataset(name)
    found = _resolve(ds, data_dir, download, progress, mirrors)
    return Path(next(iter(found.values()))).parent


def load_dataset(name: str, data_dir: str | os.PathLike | None = None, download: bool = True,
                 progress: bool = True, mirrors: Sequence[str] | None = None,
                 standardize: bool = False, verify: bool = True) -> Arrays:
    """Load ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"`` (see the module docstring for where from).

    Args:
        name: the data set.
        data_dir: a directory to look in first.
        download: download from the mirrors into the user cache when no copy is found.
        progress: show a download progress bar.
        mirrors: base URLs to download from, instead of ``MIRRORS[name]``.
        standardize: return the images as float32 (the framework dtype) standardised
            per channel with the *training* set's mean and standard deviation (both sets),
            ready for ``fit``. Default ``False``: the uint8 pixels 0..255 as stored.
        verify: compare a copy of the published shape with the published content
            (:mod:`nnframe.data.integrity`); ``False`` for a copy modified on purpose.

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: ``x`` uint8 NHWC (float with
        ``standardize=True``), ``y`` int64 in ``0..9``.

    Raises:
        ValueError: for an unknown name.
        DatasetNotFoundError: no copy found and none downloaded; the message says where it
            looked and how to get the data.
        IDXFormatError, DatasetFormatError: a file was found but is damaged.
        DatasetIntegrityError: a file has the published shape but not the published content.
    """
    ds = _dataset(name)
    found = _resolve(ds, data_dir, download, progress, mirrors)
    arrays = ds.read(found)
    if ds.locate is _locate_idx:
        (x_train, y_train), (x_test, y_test) = arrays
        stored = {"train-images-idx3-ubyte.gz": x_train[..., 0], "train-labels-idx1-ubyte.gz": y_train,
                  "t10k-images-idx3-ubyte.gz": x_test[..., 0], "t10k-labels-idx1-ubyte.gz": y_test}
        integrity.verify_arrays(ds.name, ds.title, {
            fname: (Path(found[fname]), array.astype(np.uint8, copy=False)) for fname, array in stored.items()
        }, user_cache_dir(), verify)
    if not isinstance(standardize, bool):
        raise TypeError(f"load_dataset: standardize must be True or False, got {standardize!r}")
    if standardize:
        (x_train, y_train), (x_test, y_test) = arrays
        x_train, mean, std = preprocessing.standardize(x_train)
        x_test, _, _ = preprocessing.standardize(x_test, mean, std)
        arrays = (x_train, y_train), (x_test, y_test)
    return arrays


def load_mnist(data_dir: str | os.PathLike | None = None, download: bool = True, progress: bool = True,
               mirrors: Sequence[str] | None = None, standardize: bool = False,
               verify: bool = True) -> Arrays:
    """MNIST handwritten digits: 60000 training and 10000 test images.

    Args:
        data_dir: a directory holding the four IDX files (gzipped or raw), looked in first.
        download: download into the user cache when no copy is found.
        progress: show a download progress bar.
        mirrors: base URLs instead of ``MIRRORS["mnist"]``.
        standardize: float32 images standardised with the training set's per-channel
            mean and standard deviation, instead of uint8 pixels (see :func:`load_dataset`).
        verify: check a copy of the published shape against the published content
            (``False`` for a copy modified on purpose; see :func:`load_dataset`).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``.

    Shapes:
        ``x``: ``(N, 28, 28, 1)`` uint8 (float32 with ``standardize=True``); ``y``: ``(N,)`` int64 in ``0..9``.

    Raises:
        DatasetNotFoundError: with every place tried and how to get the data.
    """
    return load_dataset("mnist", data_dir, download, progress, mirrors, standardize, verify)


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, download: bool = True,
                       progress: bool = True, mirrors: Sequence[str] | None = None,
                       standardize: bool = False, verify: bool = True) -> Arrays:
    """Fashion-MNIST (Zalando article images): 60000 training and 10000 test images.

    Debian's ``dataset-fashion-mnist`` package installs a copy this finds in
    ``/usr/share/datasets/fashion-mnist``. Arguments as :func:`load_mnist`.

    Shapes:
        ``x``: ``(N, 28, 28, 1)`` uint8 (float32 with ``standardize=True``); ``y``: ``(N,)`` int64
        in ``0..9`` (:data:`CLASS_NAMES`).
    """
    return load_dataset("fashion-mnist", data_dir, download, progress, mirrors, standardize, verify)


def load_cifar10(data_dir: str | os.PathLike | None = None, download: bool = True,
                 progress: bool = True, mirrors: Sequence[str] | None = None,
                 standardize: bool = False, verify: bool = True) -> Arrays:
    """CIFAR-10 from its binary archive: 50000 training and 10000 test colour images.

    ``data_dir`` may hold ``cifar-10-binary.tar.gz`` or its extracted ``cifar-10-batches-bin/``.
    Arguments as :func:`load_mnist`.

    Shapes:
        ``x``: ``(N, 32, 32, 3)`` uint8 (HWC, converted from the file's CHW); ``y``: ``(N,)`` int64.
    """
    return load_dataset("cifar10", data_dir, download, progress, mirrors, standardize, verify)


__all__ = [
    "CHECKSUMS", "CLASS_NAMES", "DatasetFormatError", "DatasetNotFoundError", "ENV_VAR", "IDXFormatError",
    "MIRRORS", "SYSTEM_DATA_DIRS", "load_cifar10", "load_dataset", "load_fashion_mnist", "load_mnist",
    "locate_dataset", "user_cache_dir",
]
