"""Downloading one file: progress bar, checksum, atomic write.

The bytes stream into a temporary file next to the destination while their MD5 and
SHA-256 are computed; only a complete download whose checksums match is fsynced and
renamed into place. A truncated transfer, a checksum mismatch or an HTTP error leaves
nothing behind.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from nnframe.atomic import atomic_write

# http.client, urllib.request and tqdm are imported inside download_file: together
# they cost ~100 ms, which `import nnframe` should not pay when nothing is downloaded.

_CHUNK = 1 << 16
USER_AGENT = "nnframe (+https://pypi.org/project/nnframe)"


class DownloadError(OSError):
    """A download failed; the message names the URL and why (HTTP status, truncation, checksum)."""


def download_file(url: str, dest: str | Path, md5: str | None = None, sha256: str | None = None,
                  progress: bool = True, timeout: float = 60.0, max_bytes: int | None = None) -> Path:
    """Download ``url`` to ``dest``, verifying its length and checksums, atomically.

    Args:
        url: an ``http(s)://`` (or ``file://``) URL.
        dest: the destination file; its directory is created if needed.
        md5: expected MD5 hex digest, or ``None``.
        sha256: expected SHA-256 hex digest, or ``None``.
        progress: show a tqdm progress bar on stderr.
        timeout: seconds to wait for the connection and for each read.
        max_bytes: the most bytes accepted: a larger ``Content-Length`` is refused before
            reading, and the transfer stops as soon as more arrive (``None``: no limit).

    Returns:
        ``dest`` as a :class:`~pathlib.Path`.

    Raises:
        DownloadError: HTTP error status, network error, truncated or oversized body,
            or checksum mismatch. ``dest`` is then left as it was (absent, or the previous file).
    """
    import http.client  # noqa: PLC0415 - lazily, see the import block
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    from tqdm import tqdm  # noqa: PLC0415

    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310 - http(s) mirrors
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise DownloadError(f"{url}: {exc.reason}") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"{url}: {exc}") from exc
    with response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        if max_bytes is not None and expected is not None and expected > max_bytes:
            raise DownloadError(f"{url}: the server announces {expected} bytes, more than the {max_bytes} "
                                "expected for this file; nothing was downloaded")
        digests = {"md5": hashlib.md5(usedforsecurity=False), "sha256": hashlib.sha256()}
        received = 0
        with atomic_write(dest) as f, tqdm(total=expected, unit="B", unit_scale=True,
                                           unit_divisor=1024, desc=dest.name,
                                           disable=not progress, leave=False) as bar:
            try:
                while chunk := response.read(_CHUNK):
                    f.write(chunk)
                    for d in digests.values():
                        d.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
                    if max_bytes is not None and received > max_bytes:
                        raise DownloadError(f"{url}: more than the {max_bytes} bytes expected for this file "
                                            "arrived; the download was stopped and discarded")
            except (OSError, http.client.HTTPException) as exc:
                raise DownloadError(f"{url}: connection failed after {received} bytes ({exc!r})") from exc
            if expected is not None and received != expected:
                raise DownloadError(f"{url}: truncated download: received {received} of {expected} bytes")
            for name, want in (("md5", md5), ("sha256", sha256)):
                got = digests[name].hexdigest()
                if want is not None and got != want.lower():
                    raise DownloadError(
                        f"{url}: checksum mismatch: expected {name} {want.lower()}, got {got} "
                        f"({received} bytes); the file was discarded"
                    )
    return dest
