"""``nnframe export CHECKPOINT model.onnx``: the command-line face of :func:`nnframe.onnx.export`.

:mod:`nnframe.cli` only registers it (:func:`add_parser`); ``onnx`` is imported when the
command runs, so the CLI starts without it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


class ExportCommandError(ValueError):
    """A problem with the export command's arguments; printed as one line by the CLI."""


def add_parser(commands: Any, positive_int: Any) -> None:
    """Add the ``export`` sub-command to the CLI's sub-parsers."""
    p = commands.add_parser(
        "export", help="write a checkpoint as an ONNX file",
        description="Write a trained checkpoint as an ONNX file that ONNX Runtime runs anywhere. The file takes "
                    "the same input as 'nnframe predict' after preprocessing: channels-last (N, H, W, C) float32 "
                    "with a dynamic batch size N, input name 'input', output 'output' (the class scores). The "
                    "checkpoint's class names and input normalisation (mean, std) are stored in the file's "
                    "metadata. Needs the onnx package: pip install 'nnframe[onnx]'.",
    )
    p.add_argument("checkpoint", metavar="CKPT", help="a checkpoint written by 'nnframe train' or Model.save")
    p.add_argument("output", metavar="OUT.onnx", nargs="?", default=None,
                   help="the ONNX file to write (atomically); optional with --web")
    p.add_argument("--web", metavar="DIR", default=None,
                   help="also (or instead) write a static web page to DIR that runs the model in the browser with "
                        "onnxruntime-web: nnframe serve's page, servable from any static host "
                        "(needs 'npm install onnxruntime-web'; see nnframe.serve.web)")
    p.add_argument("--ort", metavar="DIR", default=None,
                   help="onnxruntime-web's dist/ directory for --web (default: $NNFRAME_ORT_WEB, "
                        "./node_modules/onnxruntime-web/dist, then npm's global packages)")
    p.add_argument("--opset", type=positive_int, default=None, metavar="N",
                   help="ONNX opset version, 17 or newer (default 17)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Export ``args.checkpoint`` to ``args.output`` and print what was written."""
    from nnframe import onnx as nnframe_onnx  # noqa: PLC0415 - loads the optional onnx package on use
    from nnframe.model import Model  # noqa: PLC0415

    if not Path(args.checkpoint).exists():
        raise ExportCommandError(f"checkpoint {args.checkpoint!r} does not exist")
    if args.output is None and args.web is None:
        raise ExportCommandError("export: give OUT.onnx, --web DIR, or both")
    if args.output is None:
        return _run_web(args)
    out = Path(args.output)
    if out.is_dir() or not out.expanduser().resolve().parent.is_dir():
        raise ExportCommandError(f"output {args.output!r}: give a file name in an existing directory")
    try:
        import onnx  # noqa: F401, PLC0415
    except ImportError:
        raise ExportCommandError(f"export {nnframe_onnx.MISSING}") from None
    model = Model.load(args.checkpoint)
    opset = nnframe_onnx.DEFAULT_OPSET if args.opset is None else args.opset
    proto = nnframe_onnx.export(model, out, opset=opset)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    out_dims = [d.dim_param or d.dim_value for d in proto.graph.output[0].type.tensor_type.shape.dim]
    print(f"wrote {args.output}: opset {opset}, input 'input' {tuple(dims)}, output 'output' {tuple(out_dims)}, "
          f"{len(proto.graph.node)} nodes", flush=True)
    names = model.metadata.get("class_names")
    if names:
        print(f"metadata: class_names ({len(names)}), "
              + ", ".join(k for k in sorted(model.metadata) if k != "class_names"), flush=True)
    if args.web is not None:
        return _run_web(args)
    return 0


def _run_web(args: argparse.Namespace) -> int:
    """``--web DIR``: the static page of :mod:`nnframe.serve.web`."""
    from nnframe.model import Model  # noqa: PLC0415
    from nnframe.serve.web import export_web  # noqa: PLC0415

    try:
        import onnx  # noqa: F401, PLC0415
    except ImportError:
        from nnframe import onnx as nnframe_onnx  # noqa: PLC0415

        raise ExportCommandError(f"export --web {nnframe_onnx.MISSING}") from None
    target = export_web(Model.load(args.checkpoint), args.web, ort_dist=args.ort, opset=args.opset)
    print(f"wrote {target}/: index.html, model.onnx, model.json, static/, ort/ (serve it from any static host, "
          f"e.g. python -m http.server -d {args.web})", flush=True)
    return 0
