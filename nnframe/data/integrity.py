"""Content checks of local data-set copies: a digest of each decompressed array.

Structural checks (IDX headers, sizes, label ranges) pass a copy with one pixel or one
label changed, and the published MD5s of the ``.gz`` files cannot check local copies
(Debian's are recompressed). So the SHA-256 of each decompressed array (its shape, then
its bytes) is compared with :data:`CONTENT_DIGESTS` on first use; the verdict is then
cached in ``<user cache>/verified.json``, keyed by the file's path, size and
modification time, so later loads skip the hashing. A mismatch raises
:class:`DatasetIntegrityError` naming the file; ``verify=False`` (``nnframe ...
--modified-data``) is the explicit override for copies changed on purpose.

Only arrays of the published shapes are compared: a copy with another number of images
is not the published data set (a subset, or one's own data in its format) and gets the
structural checks alone. Digests are known for Fashion-MNIST; for MNIST and CIFAR-10
none are stored yet (downloads are still checked against their published MD5).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from nnframe.atomic import atomic_write

#: ``{data set: {file: (shape, sha256 of repr(shape) + the array's bytes)}}``. Fashion-MNIST's
#: were computed from Debian's ``dataset-fashion-mnist`` copy (/usr/share/datasets/fashion-mnist).
CONTENT_DIGESTS: dict[str, dict[str, tuple[tuple[int, ...], str]]] = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": ((60000, 28, 28),
                                       "d8ad9132a5971887b9275bd3d8e20fc26c599fbad1814014e960b8e10b53d165"),
        "train-labels-idx1-ubyte.gz": ((60000,), "3a5a898e8a129e0538eafde7302d0b5bd11e09099e7f981c578c725047895b03"),
        "t10k-images-idx3-ubyte.gz": ((10000, 28, 28),
                                      "3194b88e5a57832ccf9bc8ffc11e1c3d7ccf2c411d27352dcfbfc4afa29c2ce5"),
        "t10k-labels-idx1-ubyte.gz": ((10000,), "b943cf13d75a9c055f388d561d683bed74ca5ce259ad23b9655e45af2ff9e771"),
    },
}


class DatasetIntegrityError(ValueError):
    """A local copy of a known data set has the published shape but not the published content."""


def array_digest(array: np.ndarray) -> str:
    """SHA-256 (hex) of ``repr(shape)`` followed by the array's bytes in C order."""
    digest = hashlib.sha256(repr(tuple(int(s) for s in array.shape)).encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def _verdict_file(cache_root: Path) -> Path:
    return cache_root / "verified.json"


def _load_verdicts(cache_root: Path) -> dict[str, list]:
    try:
        verdicts = json.loads(_verdict_file(cache_root).read_text())
    except (OSError, ValueError):
        return {}
    return verdicts if isinstance(verdicts, dict) else {}


def verify_arrays(name: str, title: str, arrays: Mapping[str, tuple[Path, np.ndarray]], cache_root: Path,
                  verify: bool = True) -> None:
    """Compare each array of a known data set with its published digest.

    Args:
        name: the data set (a key of :data:`CONTENT_DIGESTS`; others are not checked).
        title: its name in messages.
        arrays: ``{file name: (path read, array as stored)}``.
        cache_root: the folder of ``verified.json`` (the user cache).
        verify: ``False`` skips the check (a copy modified on purpose).

    Raises:
        DatasetIntegrityError: naming the first file whose content differs.
    """
    known = CONTENT_DIGESTS.get(name)
    if not verify or not known:
        return
    verdicts = _load_verdicts(cache_root)
    changed = False
    for fname, (path, array) in arrays.items():
        if fname not in known or tuple(array.shape) != known[fname][0]:
            continue  # not the published shape: custom data in the format, structural checks only
        expected = known[fname][1]
        try:
            info = path.stat()
        except OSError:
            info = None
        key = str(path.resolve())
        stamp = None if info is None else [info.st_size, info.st_mtime_ns, expected]
        if stamp is not None and verdicts.get(key) == stamp:
            continue
        digest = array_digest(array)
        if digest != expected:
            raise DatasetIntegrityError(
                f"{path}: its content is not {title}'s: the SHA-256 of its decompressed array is "
                f"{digest[:16]}..., the published data's is {expected[:16]}... (a changed pixel or label, "
                "or another data set); restore the original, or pass verify=False (nnframe: "
                "--modified-data) if you changed it on purpose"
            )
        if stamp is not None:
            verdicts[key], changed = stamp, True
    if changed:
        with contextlib.suppress(OSError):  # a cache that cannot be written only costs the next hash
            os.makedirs(cache_root, exist_ok=True)
            with atomic_write(_verdict_file(cache_root)) as file:
                file.write(json.dumps(verdicts, indent=0).encode())
