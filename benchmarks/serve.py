"""``python -m benchmarks serve``: a bounded loopback load test of ``nnframe serve``, with and without batching.

For each mode the real command (``python -m nnframe serve CKPT --port 0``) runs in a
child process bound to 127.0.0.1 (with ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` unset,
as every benchmark here); this process opens ``--clients`` keep-alive connections to
it (all connections are open before the clock starts) and each sends ``--requests``
``POST /api/predict`` requests one after another, a 28x28 PNG each (a Fashion-MNIST
test image where the data set is installed, else a synthetic one). It reports
requests/s, p50/p90/p99 latency and errors, then stops the server. Traffic goes to
127.0.0.1 only; every request has a timeout and the whole run a deadline
(``--max-seconds``), so it always stops by itself.

Without ``--checkpoint`` it saves the seed's 784-200-100-70-30-10 MLP (freshly
initialised: the cost of a forward pass does not depend on the weights) with
Fashion-MNIST's class names and normalisation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import common

FASHION = Path("/usr/share/datasets/fashion-mnist")
ROOT = Path(__file__).resolve().parent.parent


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default=None, help="a classifier checkpoint (default: the seed MLP)")
    p.add_argument("--clients", type=int, default=32, help="concurrent keep-alive connections (default 32)")
    p.add_argument("--requests", type=int, default=2000,
                   help="requests per client per mode (default 2000: 32 x 2,000 = 64,000 requests)")
    p.add_argument("--modes", default="batched,unbatched", help="batched, unbatched or both (default both)")
    p.add_argument("--batch-wait-ms", type=float, default=2.0, help="the server's batching window (default 2)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds one request may take (default 10)")
    p.add_argument("--max-seconds", type=float, default=300.0, help="deadline of each mode's run (default 300)")
    p.add_argument("--threads", type=int, default=1, help="the server's BLAS threads (its --threads; default 1)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the results as JSON")
    args = p.parse_args(argv)
    if args.clients < 1 or args.requests < 1:
        p.error("--clients and --requests must be positive")
    return args


def seed_checkpoint(path: Path) -> Path:
    """The seed's MLP with Fashion-MNIST's class names and normalisation, saved to ``path``."""
    from nnframe import cli, data, loss, model, optimizer  # noqa: PLC0415 - after set_thread_env

    m = model.Model(cli.mlp(10), loss.SoftmaxCrossEntropy(), optimizer.Adam(lr=2e-4))
    m.net.build((1, 28, 28, 1))
    m.input_shape = (28, 28, 1)
    m.metadata = {"dataset": "fashion-mnist", "class_names": list(data.CLASS_NAMES["fashion-mnist"]),
                  "preprocessing": {"standardize": {"mean": [72.94], "std": [90.02]}}}
    m.save(path)
    return path


def sample_png() -> bytes:
    """A 28x28 grayscale PNG: Fashion-MNIST test image 0 where installed, else a synthetic shoe-ish blob."""
    import zlib  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from nnframe import data  # noqa: PLC0415

    if (FASHION / "t10k-images-idx3-ubyte.gz").is_file():
        image = data.read_idx(FASHION / "t10k-images-idx3-ubyte.gz")[0]
    else:
        image = np.zeros((28, 28), np.uint8)
        image[14:24, 3:25] = 200
    raw = b"".join(b"\x00" + row.tobytes() for row in np.asarray(image, np.uint8))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")

    header = (28).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def start_server(checkpoint: Path, batched: bool, wait_ms: float, threads: int) -> tuple[subprocess.Popen, int]:
    """``python -m nnframe serve`` on 127.0.0.1 and a free port; returns the process and the port."""
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    command = [sys.executable, "-m", "nnframe", "serve", str(checkpoint), "--host", "127.0.0.1", "--port", "0",
               "--batch-wait-ms", str(wait_ms), "--threads", str(threads)] + ([] if batched else ["--no-batching"])
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if "http://127.0.0.1:" not in line:
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r} {proc.stderr.read()[-2000:]}")
    return proc, int(line.split("http://127.0.0.1:")[1].split("/")[0])


async def _client(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], body: bytes, count: int,
                  timeout: float, deadline: float, latencies: list[float], errors: list[str]) -> None:
    request = (f"POST /api/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/png\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    reader, writer = connection
    try:
        for _ in range(count):
            if time.monotonic() > deadline:
                errors.append("deadline")
                return
            start = time.perf_counter()
            writer.write(request)
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
                lines = head.decode("latin-1").split("\r\n")
                length = next(int(h.split(":", 1)[1]) for h in lines if h.lower().startswith("content-length:"))
                payload = await asyncio.wait_for(reader.readexactly(length), timeout)
            except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, StopIteration) as exc:
                errors.append(type(exc).__name__)
                return
            latencies.append(time.perf_counter() - start)
            if not lines[0].startswith("HTTP/1.1 200") or b'"predictions"' not in payload:
                errors.append(lines[0])
    finally:
        writer.close()


async def load(port: int, body: bytes, clients: int, requests: int, timeout: float,
               max_seconds: float) -> dict[str, float]:
    """Send ``requests`` requests on each of ``clients`` connections (opened before the clock starts);
    latency percentiles and throughput."""
    latencies: list[float] = []
    errors: list[str] = []
    connections = await asyncio.gather(*(asyncio.open_connection("127.0.0.1", port) for _ in range(clients)))
    deadline = time.monotonic() + max_seconds
    start = time.perf_counter()
    await asyncio.gather(*(_client(c, body, requests, timeout, deadline, latencies, errors) for c in connections))
    requests *= clients
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)

    def pct(q: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")

    return {"requests": len(latencies), "errors": requests - len(latencies),
            "seconds": elapsed, "rps": len(latencies) / elapsed, "p50_ms": pct(0.50), "p90_ms": pct(0.90),
            "p99_ms": pct(0.99), "error_kinds": sorted(set(errors))}


def main(argv: list[str]) -> int:
    """Run the load test for each mode and print the table."""
    args = _parse(argv)
    body = sample_png()
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(args.checkpoint) if args.checkpoint else seed_checkpoint(Path(tmp) / "seed.safetensors")
        rows, results = [], {}
        for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
            if mode not in ("batched", "unbatched"):
                print(f"unknown mode {mode!r}: expected batched or unbatched", file=sys.stderr)
                return 2
            proc, port = start_server(checkpoint, mode == "batched", args.batch_wait_ms, args.threads)
            try:
                asyncio.run(load(port, body, min(args.clients, 8), 32, args.timeout, 30))  # warm-up
                time.sleep(0.5)
                result = asyncio.run(load(port, body, args.clients, args.requests, args.timeout, args.max_seconds))
            finally:
                proc.terminate()
                proc.wait(20)
            results[mode] = result
            rows.append([mode, result["requests"], result["errors"], result["rps"], result["p50_ms"],
                         result["p90_ms"], result["p99_ms"]])
    print(f"nnframe serve load test: {args.clients} clients x {args.requests} requests per mode, 28x28 PNG bodies, "
          f"127.0.0.1; checkpoint {args.checkpoint or 'the seed MLP'}; batching window {args.batch_wait_ms:g} ms")
    print(f"server: {args.threads} BLAS thread(s), OPENBLAS_CORETYPE unset; this machine: "
          f"{common.machine_info()['cpu']}, {common.cpu_count()} cores (clients and server share them)")
    print(common.format_table(["mode", "ok", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms"], rows))
    if "batched" in results and "unbatched" in results:
        print(f"batching: {results['batched']['rps'] / results['unbatched']['rps']:.2f}x the requests/s, "
              f"p99 {results['batched']['p99_ms']:.1f} vs {results['unbatched']['p99_ms']:.1f} ms")
    if args.json:
        common.write_json(args.json, {"args": vars(args), "results": results})
    print(json.dumps({"serve": results}))
    return 0 if all(r["errors"] == 0 for r in results.values()) else 1
