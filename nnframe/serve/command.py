"""``nnframe serve CHECKPOINT``: the command-line entry of :mod:`nnframe.serve` (registered by ``nnframe.cli``)."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

from nnframe import cli_types

SERVE_MISSING = ("nnframe serve needs the web stack: pip install 'nnframe[serve]' "
                 "(starlette, uvicorn, pillow, threadpoolctl)")


class ServeError(ValueError):
    """A problem with what ``nnframe serve`` was asked to do; printed as one line."""


def add_parser(commands: Any) -> None:
    """Register ``serve`` on the ``nnframe`` command's sub-parsers."""
    p = commands.add_parser(
        "serve", help="a web page and JSON API for an image classifier",
        description="Serve a checkpoint's web page (draw or upload a picture, see the top classes and the model "
                    "card) and its JSON API: POST /api/predict (PNG/JPEG body, or a JSON array of raw pixels of "
                    "the input's shape), GET /api/model, GET /healthz. Concurrent requests that arrive within "
                    "--batch-wait-ms share one forward pass. Needs: pip install 'nnframe[serve]'.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint of an image classifier")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1, this machine only; 0.0.0.0 listens on every "
                        "interface, reachable from the network)")
    p.add_argument("--port", type=cli_types.port, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--max-batch", type=cli_types.positive_int, default=64, metavar="N",
                   help="most samples in one forward pass (default 64)")
    p.add_argument("--batch-wait-ms", type=cli_types.milliseconds, default=2.0, metavar="MS",
                   help="how long a request waits for others to share its forward pass (default 2)")
    p.add_argument("--no-batching", action="store_true", help="run every request on its own")
    p.add_argument("--threads", type=cli_types.positive_int, default=1, metavar="N",
                   help="BLAS threads for inference (default 1: requests are small batches, and the web server "
                        "needs a core of its own)")
    p.add_argument("--max-body-kb", type=cli_types.positive_int, default=4096, metavar="KB",
                   help="largest request body in KiB; larger ones get 413 (default 4096)")
    p.set_defaults(handler=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the checkpoint, bind the socket, print the address and serve until interrupted."""
    try:
        import uvicorn
        from threadpoolctl import threadpool_limits

        from nnframe.serve.app import create_app
    except ImportError:
        raise ServeError(SERVE_MISSING) from None
    threadpool_limits(limits=args.threads, user_api="blas")
    from nnframe.model import Model

    if not Path(args.checkpoint).is_file():
        raise ServeError(f"checkpoint {args.checkpoint!r} does not exist or is not a file")
    model = Model.load(args.checkpoint)
    app = create_app(model, batching=not args.no_batching, max_batch=args.max_batch,
                     max_wait_ms=args.batch_wait_ms, max_body=args.max_body_kb * 1024)
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"nnframe serve: {args.checkpoint} on http://{shown}:{port}/ (Ctrl-C stops)", flush=True)
    if args.host in ("0.0.0.0", "::"):
        print("nnframe serve: listening on every interface: anyone who can reach this machine can use it",
              file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
    return 0


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: a free one).

    Raises:
        ServeError: naming the address when it cannot be bound (in use, not local, no permission).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServeError(f"--host {host!r}: not an address of this machine ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; pass another --port or --host") \
            from None
    sock.set_inheritable(True)
    return sock
