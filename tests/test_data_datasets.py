"""Data set loaders: resolution order, format checks, and downloads from a local HTTP server.

Every test runs with HOME, XDG_CACHE_HOME and NNFRAME_DATA pointed into tmp_path, no
system directories and mirrors on a closed local port, so nothing here can read the
real cache or reach the internet. One test reads the real Debian Fashion-MNIST copy
and skips where it is absent.
"""

import hashlib
import http.server
import io
import json
import os
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest

import nnframe.data.datasets as ds
from nnframe.data import (
    DatasetFormatError,
    DatasetNotFoundError,
    DownloadError,
    IDXFormatError,
    download_file,
    integrity,
    load_cifar10,
    load_dataset,
    load_fashion_mnist,
    load_mnist,
    write_idx,
)

IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CLOSED_PORT_URL = "http://127.0.0.1:9/"  # discard port: connection refused at once


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("NNFRAME_DATA", raising=False)
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIRS", [])
    monkeypatch.setattr(ds, "MIRRORS", {name: [CLOSED_PORT_URL] for name in ds.MIRRORS})
    return home


def make_idx_files(directory: Path, n_train=12, n_test=5, seed=0, compress=True) -> dict:
    """Write the four IDX files of a tiny MNIST-like set; return their arrays."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx(directory / (name if compress else name.removesuffix(".gz")), array, gzip=compress)
    return arrays


def check_idx_result(result, arrays):
    (x, y), (xt, yt) = result
    assert x.shape == (len(arrays["train-labels-idx1-ubyte.gz"]), 28, 28, 1) and x.dtype == np.uint8
    assert xt.shape == (len(arrays["t10k-labels-idx1-ubyte.gz"]), 28, 28, 1) and xt.dtype == np.uint8
    assert y.dtype == yt.dtype == np.int64
    np.testing.assert_array_equal(x[..., 0], arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(y, arrays["train-labels-idx1-ubyte.gz"])
    np.testing.assert_array_equal(xt[..., 0], arrays["t10k-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(yt, arrays["t10k-labels-idx1-ubyte.gz"])


def n_train_of(result):
    return len(result[0][1])


# --------------------------------------------------------------------------------------------
# local directories


@pytest.mark.parametrize("compress", [True, False])
def test_load_from_data_dir(tmp_path, compress):
    arrays = make_idx_files(tmp_path / "d", compress=compress)
    check_idx_result(load_mnist(tmp_path / "d", download=False), arrays)
    check_idx_result(load_fashion_mnist(str(tmp_path / "d"), download=False), arrays)


def test_data_dir_may_hold_a_named_subdirectory(tmp_path):
    arrays = make_idx_files(tmp_path / "d" / "fashion-mnist")
    check_idx_result(load_fashion_mnist(tmp_path / "d", download=False), arrays)


def test_resolution_order(tmp_path, monkeypatch, isolated):
    explicit, env, cache, system = (tmp_path / p for p in ("explicit", "env", "cache", "system"))
    make_idx_files(explicit, n_train=1)
    make_idx_files(env / "mnist", n_train=2)
    make_idx_files(env, n_train=3)
    make_idx_files(isolated / ".cache" / "nnframe" / "mnist", n_train=4)
    make_idx_files(system / "mnist", n_train=5)
    monkeypatch.setenv("NNFRAME_DATA", str(env))
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIRS", [tmp_path / "nowhere", system])

    def load(data_dir=None):
        return n_train_of(load_mnist(data_dir, download=False))

    assert load(explicit) == 1
    assert load() == 2  # $NNFRAME_DATA/<name> before $NNFRAME_DATA
    for f in (env / "mnist").iterdir():
        f.unlink()
    assert load() == 3
    monkeypatch.delenv("NNFRAME_DATA")
    assert load() == 4  # user cache
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    assert load() == 5  # XDG_CACHE_HOME replaces ~/.cache: empty here, so the system copy
    make_idx_files(cache / "nnframe" / "mnist", n_train=6)
    assert load() == 6
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: ignored per XDG spec
    assert load() == 4


def test_not_found_lists_every_place_and_how_to_get_it(tmp_path, monkeypatch, isolated):
    given = tmp_path / "given"
    given.mkdir()
    make_idx_files(given)
    (given / "t10k-labels-idx1-ubyte.gz").unlink()
    monkeypatch.setenv("NNFRAME_DATA", str(tmp_path / "envdir"))
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIRS", [tmp_path / "sys"])
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist(given, progress=False)
    assert isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    # an explicit data_dir is used or fails: no fallback to the other places (issue 10 item 12)
    assert message.startswith(f"Fashion-MNIST not found in the data_dir given ({given})")
    assert f"{given} (data_dir argument): missing t10k-labels-idx1-ubyte.gz" in message
    assert f"{given / 'fashion-mnist'} (data_dir argument): does not exist" in message
    assert "NNFRAME_DATA" not in message.split("To get it")[0] and "download " not in message
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist(None, progress=False)
    message = str(info.value)
    for expected in (
        "Fashion-MNIST not found",
        f"{tmp_path / 'envdir' / 'fashion-mnist'} ($NNFRAME_DATA): does not exist",
        f"{isolated / '.cache' / 'nnframe' / 'fashion-mnist'} (user cache)",
        f"{tmp_path / 'sys' / 'fashion-mnist'} (system copy): does not exist",
        f"download {CLOSED_PORT_URL}train-images-idx3-ubyte.gz",
        "apt-get install dataset-fashion-mnist",
        "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz",
        "NNFRAME_DATA=DIR",
    ):
        assert expected in message, (expected, message)
    # the failed download stopped at the first file: no waiting on the other three
    assert "t10k-labels-idx1-ubyte.gz: " not in message.split("download", 1)[1].split("To get it")[0]


def test_an_explicit_data_dir_is_used_even_when_a_system_copy_exists(tmp_path, monkeypatch, isolated):
    system = tmp_path / "sys"
    make_idx_files(system / "fashion-mnist")
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIRS", [system])
    assert load_fashion_mnist(None, download=False, progress=False)[0][0].shape[0] > 0  # found there
    with pytest.raises(DatasetNotFoundError, match="not found in the data_dir given"):
        load_fashion_mnist(tmp_path / "mistyped", download=False, progress=False)


def test_a_failed_download_leaves_no_empty_cache_folders(tmp_path, monkeypatch, isolated):
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIRS", [tmp_path / "sys"])
    monkeypatch.setitem(ds.MIRRORS, "mnist", [CLOSED_PORT_URL])
    cache_root = isolated / ".cache"
    with pytest.raises(DatasetNotFoundError):
        load_mnist(progress=False)
    assert not (cache_root / "nnframe").exists()


def test_download_false_says_so():
    with pytest.raises(DatasetNotFoundError, match=r"(?s)data_dir argument: not given.*"
                                                   r"\$NNFRAME_DATA: not set.*download=False"):
        load_mnist(download=False)


def test_damaged_local_files_give_clear_errors(tmp_path):
    d = tmp_path / "d"
    make_idx_files(d)
    (d / "train-labels-idx1-ubyte.gz").write_bytes(b"\x00\x01\x02")
    with pytest.raises(IDXFormatError, match="train-labels-idx1-ubyte.gz"):
        load_mnist(d, download=False)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(11, dtype=np.uint8))
    with pytest.raises(DatasetFormatError, match="11 labels for 12 images"):
        load_mnist(d, download=False)
    write_idx(d / "train-labels-idx1-ubyte.gz", np.full(12, 10, dtype=np.uint8))
    with pytest.raises(DatasetFormatError, match="labels must lie in 0..9, found 10"):
        load_mnist(d, download=False)
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((12, 27, 28), dtype=np.uint8))
    with pytest.raises(DatasetFormatError, match=r"\(N, 28, 28\), got uint8 \(12, 27, 28\)"):
        load_mnist(d, download=False)


def test_load_dataset_names(tmp_path):
    make_idx_files(tmp_path / "d")
    for name in ("mnist", "fashion-mnist", "fashion_mnist", "Fashion-MNIST"):
        assert n_train_of(load_dataset(name, tmp_path / "d", download=False)) == 12
    with pytest.raises(ValueError, match="unknown data set 'svhn'"):
        load_dataset("svhn")


# --------------------------------------------------------------------------------------------
# a real HTTP server on 127.0.0.1


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    behaviour: dict = {}  # path -> "truncate" | int status
    hits: list = []

    def do_GET(self):  # noqa: N802 - http.server's naming
        self.hits.append(self.path)
        what = self.behaviour.get(self.path)
        body = self.files.get(self.path)
        if isinstance(what, int) or body is None:
            self.send_error(what if isinstance(what, int) else 404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if what == "truncate" else body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.files, _Handler.behaviour, _Handler.hits = {}, {}, []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.handler = _Handler
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def serve_idx(server, tmp_path, monkeypatch, name="mnist", prefix="/mnist/"):
    """Put a tiny data set on the server and register its MD5s as the published ones."""
    arrays = make_idx_files(tmp_path / "served")
    checksums = {}
    for fname in IDX_NAMES:
        blob = (tmp_path / "served" / fname).read_bytes()
        server.handler.files[prefix + fname] = blob
        checksums[fname] = hashlib.md5(blob).hexdigest()
    monkeypatch.setitem(ds.CHECKSUMS, name, checksums)
    return arrays


def cache_files(home, name="mnist"):
    d = home / ".cache" / "nnframe" / name
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_download_success_caches_and_second_load_is_offline(server, tmp_path, monkeypatch, isolated, capsys):
    arrays = serve_idx(server, tmp_path, monkeypatch)
    check_idx_result(load_mnist(mirrors=[server.url + "/mnist/"], progress=True), arrays)
    assert sorted(server.handler.hits) == sorted("/mnist/" + f for f in IDX_NAMES)
    assert cache_files(isolated) == sorted(IDX_NAMES)  # and no temporary files
    server.handler.hits.clear()
    check_idx_result(load_mnist(mirrors=[server.url + "/mnist/"]), arrays)
    check_idx_result(load_mnist(download=False), arrays)
    assert server.handler.hits == []


def test_download_uses_module_mirrors_and_falls_back_to_the_next(server, tmp_path, monkeypatch, isolated):
    arrays = serve_idx(server, tmp_path, monkeypatch, name="fashion-mnist", prefix="/b/")
    monkeypatch.setitem(ds.MIRRORS, "fashion-mnist", [server.url + "/a/", server.url + "/b"])
    check_idx_result(load_fashion_mnist(progress=False), arrays)
    assert server.handler.hits[:2] == ["/a/train-images-idx3-ubyte.gz", "/b/train-images-idx3-ubyte.gz"]
    assert cache_files(isolated, "fashion-mnist") == sorted(IDX_NAMES)


def test_download_checksum_mismatch_caches_nothing(server, tmp_path, monkeypatch, isolated):
    serve_idx(server, tmp_path, monkeypatch)
    monkeypatch.setitem(ds.CHECKSUMS["mnist"], "train-images-idx3-ubyte.gz", "0" * 32)
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch: expected md5 0{32}, got [0-9a-f]{32}"):
        load_mnist(mirrors=[server.url + "/mnist/"], progress=False)
    assert "train-images-idx3-ubyte.gz" not in cache_files(isolated)
    assert not any(name.endswith(".tmp") for name in cache_files(isolated))


def test_download_truncated_caches_nothing(server, tmp_path, monkeypatch, isolated):
    serve_idx(server, tmp_path, monkeypatch)
    server.handler.behaviour["/mnist/t10k-images-idx3-ubyte.gz"] = "truncate"
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(mirrors=[server.url + "/mnist/"], progress=False)
    assert "t10k-images-idx3-ubyte.gz" in str(info.value)
    assert "t10k-images-idx3-ubyte.gz: truncated download: received" in str(info.value)
    assert cache_files(isolated) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    # fixed server: only the missing files are fetched
    server.handler.behaviour.clear()
    server.handler.hits.clear()
    load_mnist(mirrors=[server.url + "/mnist/"], progress=False)
    assert sorted(server.handler.hits) == ["/mnist/t10k-images-idx3-ubyte.gz", "/mnist/t10k-labels-idx1-ubyte.gz"]


@pytest.mark.parametrize("status", [404, 500])
def test_download_server_error(server, tmp_path, monkeypatch, isolated, status):
    serve_idx(server, tmp_path, monkeypatch)
    server.handler.behaviour["/mnist/train-images-idx3-ubyte.gz"] = status
    with pytest.raises(DatasetNotFoundError, match=f"train-images-idx3-ubyte.gz: HTTP {status}"):
        load_mnist(mirrors=[server.url + "/mnist/"], progress=False)
    assert cache_files(isolated) == []


def test_download_file_keeps_previous_file_on_failure(server, tmp_path):
    dest = tmp_path / "out" / "f.bin"
    server.handler.files["/f"] = b"new content"
    download_file(server.url + "/f", dest, md5=hashlib.md5(b"new content").hexdigest(),
                  sha256=hashlib.sha256(b"new content").hexdigest(), progress=False)
    assert dest.read_bytes() == b"new content"
    server.handler.files["/f"] = b"tampered!!!"
    with pytest.raises(DownloadError, match="sha256"):
        download_file(server.url + "/f", dest, sha256=hashlib.sha256(b"new content").hexdigest(),
                      progress=False)
    assert dest.read_bytes() == b"new content"
    assert [p.name for p in dest.parent.iterdir()] == ["f.bin"]


# --------------------------------------------------------------------------------------------
# CIFAR-10 (binary version)

CIFAR_BINS = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]


def make_cifar_records(n, seed):
    """``n`` records: (labels, CHW images, bytes)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n, dtype=np.uint8)
    chw = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    blob = np.concatenate([labels[:, None], chw.reshape(n, -1)], axis=1).tobytes()
    return labels, chw, blob


def make_cifar_tar(path: Path, extra=None, counts=(3, 2, 2, 1, 2, 4)):
    parts = {}
    with tarfile.open(path, "w:gz") as tar:
        for seed, (name, n) in enumerate(zip(CIFAR_BINS, counts, strict=True)):
            labels, chw, blob = make_cifar_records(n, seed)
            parts[name] = (labels, chw)
            info = tarfile.TarInfo("cifar-10-batches-bin/" + name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        for info, data in extra or []:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return parts


def check_cifar(result, parts):
    (x, y), (xt, yt) = result
    train_labels = np.concatenate([parts[n][0] for n in CIFAR_BINS[:5]])
    train_chw = np.concatenate([parts[n][1] for n in CIFAR_BINS[:5]])
    assert x.shape == (len(train_labels), 32, 32, 3) and x.dtype == np.uint8 and x.flags.c_contiguous
    assert xt.shape == (len(parts["test_batch.bin"][0]), 32, 32, 3)
    assert y.dtype == yt.dtype == np.int64
    np.testing.assert_array_equal(y, train_labels)
    np.testing.assert_array_equal(x, train_chw.transpose(0, 2, 3, 1))  # CHW -> HWC
    assert x[1, 4, 7, 2] == train_chw[1, 2, 4, 7]  # one pixel by hand: blue channel, row 4, column 7
    np.testing.assert_array_equal(xt, parts["test_batch.bin"][1].transpose(0, 2, 3, 1))


def test_cifar_from_archive_without_extracting(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    evil = tarfile.TarInfo("../../evil.bin")
    evil.size = 3
    link = tarfile.TarInfo("cifar-10-batches-bin/readme.html")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    parts = make_cifar_tar(d / "cifar-10-binary.tar.gz", extra=[(evil, b"bad"), (link, None)])
    before = sorted(p.name for p in tmp_path.rglob("*"))
    check_cifar(load_cifar10(d, download=False), parts)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing extracted anywhere


def test_cifar_from_extracted_batches(tmp_path):
    d = tmp_path / "d" / "cifar-10-batches-bin"
    d.mkdir(parents=True)
    parts = {}
    for seed, name in enumerate(CIFAR_BINS):
        labels, chw, blob = make_cifar_records(2, seed)
        (d / name).write_bytes(blob)
        parts[name] = (labels, chw)
    check_cifar(load_cifar10(tmp_path / "d", download=False), parts)


def test_cifar_symlinked_member_is_not_read(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    with tarfile.open(d / "cifar-10-binary.tar.gz", "w:gz") as tar:
        for seed, name in enumerate(CIFAR_BINS[:-1]):
            blob = make_cifar_records(1, seed)[2]
            info = tarfile.TarInfo("cifar-10-batches-bin/" + name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        link = tarfile.TarInfo("cifar-10-batches-bin/test_batch.bin")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    with pytest.raises(DatasetFormatError, match="archive lacks test_batch.bin"):
        load_cifar10(d, download=False)


def test_cifar_bad_record_size_and_bad_archive(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    with tarfile.open(d / "cifar-10-binary.tar.gz", "w:gz") as tar:
        for seed, name in enumerate(CIFAR_BINS):
            blob = make_cifar_records(1, seed)[2] + (b"x" if name == "data_batch_3.bin" else b"")
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    with pytest.raises(DatasetFormatError, match="data_batch_3.bin: size 3074 bytes is not a positive multiple"):
        load_cifar10(d, download=False)
    (d / "cifar-10-binary.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(DatasetFormatError, match="not a readable .tar.gz"):
        load_cifar10(d, download=False)


def test_cifar_download(server, tmp_path, monkeypatch, isolated):
    parts = make_cifar_tar(tmp_path / "served.tar.gz")
    blob = (tmp_path / "served.tar.gz").read_bytes()
    server.handler.files["/kriz/cifar-10-binary.tar.gz"] = blob
    monkeypatch.setitem(ds.CHECKSUMS, "cifar10", {"cifar-10-binary.tar.gz": hashlib.md5(blob).hexdigest()})
    check_cifar(load_cifar10(mirrors=[server.url + "/kriz/"], progress=False), parts)
    assert cache_files(isolated, "cifar10") == ["cifar-10-binary.tar.gz"]


def test_cifar_not_found_message():
    with pytest.raises(DatasetNotFoundError, match="cifar-10-binary.tar.gz"):
        load_cifar10(download=False)


# --------------------------------------------------------------------------------------------
# the real Debian copy

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (REAL_FASHION / "train-images-idx3-ubyte.gz").exists(),
                    reason="needs Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)")
def test_real_fashion_mnist_from_system_copy(monkeypatch):
    monkeypatch.setattr(ds, "SYSTEM_DATA_DIRS", [REAL_FASHION.parent])
    (x, y), (xt, yt) = load_fashion_mnist(download=False)
    assert x.shape == (60000, 28, 28, 1) and xt.shape == (10000, 28, 28, 1)
    assert x.dtype == xt.dtype == np.uint8 and y.dtype == yt.dtype == np.int64
    assert np.bincount(y).tolist() == [6000] * 10
    assert np.bincount(yt).tolist() == [1000] * 10
    assert 0 < x.mean() < 255


def test_user_cache_dir_defaults_to_home_dot_cache(isolated, monkeypatch):
    assert ds.user_cache_dir() == isolated / ".cache" / "nnframe"
    assert ds.user_cache_dir("mnist") == isolated / ".cache" / "nnframe" / "mnist"
    assert ds.user_cache_dir("") == isolated / ".cache" / "nnframe"  # no name: the root
    monkeypatch.setenv("XDG_CACHE_HOME", "")  # set but empty: unset, per the XDG spec
    assert ds.user_cache_dir("cifar10") == isolated / ".cache" / "nnframe" / "cifar10"


def test_user_cache_dir_follows_an_absolute_xdg_cache_home_only(tmp_path, isolated, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ds.user_cache_dir() == tmp_path / "xdg" / "nnframe"
    assert ds.user_cache_dir("fashion-mnist") == tmp_path / "xdg" / "nnframe" / "fashion-mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # relative: ignored, per the spec
    assert ds.user_cache_dir("mnist") == isolated / ".cache" / "nnframe" / "mnist"
    monkeypatch.setenv("HOME", str(tmp_path / "other-home"))  # HOME is read at each call
    assert ds.user_cache_dir() == tmp_path / "other-home" / ".cache" / "nnframe"


# ------------------------------------------------ issue 10 item 11: content, not compression
def _published_shape_copy(directory, labels_changed=False, pixel_changed=False):
    """Files of Fashion-MNIST's published shapes whose digests we put in CONTENT_DIGESTS."""
    rng = np.random.default_rng(3)
    arrays = {}
    for prefix, n in (("train", 12), ("t10k", 4)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        arrays[f"{prefix}-images-idx3-ubyte.gz"], arrays[f"{prefix}-labels-idx1-ubyte.gz"] = images, labels
    digests = {f: (a.shape, integrity.array_digest(a)) for f, a in arrays.items()}
    directory.mkdir()
    if pixel_changed:
        arrays["train-images-idx3-ubyte.gz"][5, 3, 7] ^= 1
    if labels_changed:
        arrays["t10k-labels-idx1-ubyte.gz"][2] = (arrays["t10k-labels-idx1-ubyte.gz"][2] + 1) % 10
    for fname, array in arrays.items():
        write_idx(directory / fname, array, gzip=fname.startswith("train"))  # raw and gzipped both
    return digests


@pytest.mark.parametrize("change", ["pixel", "label"])
def test_a_changed_pixel_or_label_is_caught_and_named(tmp_path, monkeypatch, change):
    digests = _published_shape_copy(tmp_path / "d", labels_changed=change == "label",
                                     pixel_changed=change == "pixel")
    monkeypatch.setitem(integrity.CONTENT_DIGESTS, "fashion-mnist", digests)
    bad = "train-images-idx3-ubyte.gz" if change == "pixel" else "t10k-labels-idx1-ubyte"
    with pytest.raises(integrity.DatasetIntegrityError, match=f"{bad}.*its content is not Fashion-MNIST's"):
        load_fashion_mnist(tmp_path / "d", download=False)
    (x, _), _ = load_fashion_mnist(tmp_path / "d", download=False, verify=False)  # the explicit override
    assert x.shape == (12, 28, 28, 1)


def test_the_verdict_is_cached_by_size_and_mtime(tmp_path, monkeypatch, isolated):
    digests = _published_shape_copy(tmp_path / "d")
    monkeypatch.setitem(integrity.CONTENT_DIGESTS, "fashion-mnist", digests)
    load_fashion_mnist(tmp_path / "d", download=False)
    verdicts = json.loads((isolated / ".cache" / "nnframe" / "verified.json").read_text())
    assert len(verdicts) == 4
    hashed = []
    monkeypatch.setattr(integrity, "array_digest", lambda a: hashed.append(a.shape) or "x")
    load_fashion_mnist(tmp_path / "d", download=False)
    assert hashed == []  # every file's verdict came from the cache
    path = tmp_path / "d" / "t10k-labels-idx1-ubyte.gz"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(integrity.DatasetIntegrityError, match="t10k-labels-idx1-ubyte"):
        load_fashion_mnist(tmp_path / "d", download=False)  # touched: hashed again (the fake digest differs)
    assert hashed == [(4,)]


def test_a_copy_of_another_size_is_checked_structurally_only(tmp_path):
    make_idx_files(tmp_path / "d")  # not the published shapes: one's own data in the IDX format
    (x, _), _ = load_fashion_mnist(tmp_path / "d", download=False)
    assert x.dtype == np.uint8


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="no Debian copy")
def test_debian_s_fashion_mnist_matches_the_published_content(tmp_path, isolated):
    (x, y), (xt, yt) = load_fashion_mnist(Path("/usr/share/datasets/fashion-mnist"), download=False)
    assert x.shape == (60000, 28, 28, 1) and yt.shape == (10000,)
