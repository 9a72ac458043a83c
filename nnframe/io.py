"""Checkpoints: one safetensors file with the architecture, the weights and the training state.

Layout of a checkpoint (format ``nnframe-checkpoint``, version :data:`FORMAT_VERSION`):

* tensors ``net/<dotted name>`` (``Net.state_dict()``: parameters and buffers),
  ``optimizer/<buffer>.<dotted name>`` (``optimizer.state_dict()["arrays"]``) and
  ``callbacks/<callback>/<name>`` (arrays a callback keeps, e.g. early stopping's
  best weights);
* metadata (strings, as safetensors requires): ``format``, ``format_version``,
  ``nnframe_version``, ``config`` (JSON: the net's ``get_config()``, the loss, the
  optimizer, the scheduler, the input shape, the metrics: enough to rebuild the
  model without the code that built it) and ``state`` (JSON: epoch, step, the
  optimizer's iteration count and lr, the scheduler's state, the global generator's,
  the shuffling generator's and every layer generator's state, the callbacks' state).

Writing is atomic (:func:`nnframe.atomic.atomic_write`): a crash at any point leaves
the previous checkpoint intact.

Reading never executes code and costs memory in proportion to the stored tensors: only
regular files are opened, the header is read and checked first
(:mod:`nnframe.safetensors_io`: 8-byte little-endian length, then JSON; every size
checked against the file's length), the tensors are memory-mapped, and the net's every
parameter shape is worked out from the config (:meth:`~nnframe.layer.container.Container.infer_shapes`)
and compared with the stored tensors before anything is allocated. The layer count, the
input size and each metadata JSON field are capped. A bad file raises
:class:`CheckpointError` saying what is wrong. Pickles and npz archives are refused.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnframe import checkpoint_schema
from nnframe import loss as loss_mod
from nnframe import optimizer as optimizer_mod
from nnframe import random as nn_random
from nnframe import schedule as schedule_mod
from nnframe.atomic import atomic_write
from nnframe.errors import CheckpointError, ShapeError
from nnframe.layer.base import get_layer_class
from nnframe.layer.container import Container
from nnframe.safetensors_io import MAX_HEADER_BYTES, read_safetensors  # noqa: F401 - MAX_HEADER_BYTES re-exported

FORMAT_NAME = "nnframe-checkpoint"
FORMAT_VERSION = 1
#: one sample's values, for the input and for every layer's output (a net built for more is refused)
MAX_INPUT_ELEMENTS = 1 << 26
#: the most layers a checkpoint's net may have
MAX_LAYERS = 10_000
#: the longest ``config`` or ``state`` metadata JSON text accepted
MAX_METADATA_JSON_CHARS = 4 * 1024 * 1024
_BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM,
                   "Philox": np.random.Philox, "SFC64": np.random.SFC64, "MT19937": np.random.MT19937}


@dataclass
class Checkpoint:
    """The parsed contents of a checkpoint file.

    Attributes:
        config: architecture and hyperparameters (``net``, ``loss``, ``optimizer``,
            ``scheduler``, ``input_shape``, ``metrics``).
        state: training state (``epoch``, ``step``, ``optimizer``, ``scheduler``, ``rng``, ...).
        net_arrays: ``{"0.w": array, ...}``.
        optimizer_arrays: ``{"m.0.w": array, ...}``.
        callback_arrays: ``{"EarlyStopping#0": {"0.w": array, ...}, ...}``.
        path: where it was read from.
    """

    config: dict[str, Any]
    state: dict[str, Any]
    net_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    optimizer_arrays: dict[str, np.ndarray] = field(default_factory=dict)
    callback_arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    path: str = ""


# ------------------------------------------------------------------------ writing
def loss_config(loss: loss_mod.BaseLoss) -> dict[str, Any]:
    """``{"class": name, **loss.get_config()}`` for :func:`nnframe.loss.get`."""
    return {"class": type(loss).__name__, **loss.get_config()}


def scheduler_config(scheduler: schedule_mod.LRScheduler) -> dict[str, Any]:
    """``{"class": name, **constructor arguments}`` of a scheduler (without the optimizer).

    Uses ``scheduler.get_config()`` when it exists, else reads each constructor
    argument from the attribute of the same name.

    Raises:
        CheckpointError: when an argument is not stored on the scheduler.
    """
    name = type(scheduler).__name__
    if hasattr(scheduler, "get_config"):
        return {"class": name, **scheduler.get_config()}
    import inspect  # noqa: PLC0415 - only needed here

    config: dict[str, Any] = {"class": name}
    for param in list(inspect.signature(type(scheduler).__init__).parameters)[1:]:
        if param == "optimizer":
            continue
        if not hasattr(scheduler, param):
            raise CheckpointError(
                f"cannot save scheduler {name}: its argument {param!r} is not stored as an attribute; "
                "give the class a get_config() method"
            )
        value = getattr(scheduler, param)
        config[param] = list(value) if isinstance(value, (list, tuple)) else value
    return config


def generator_state(rng: np.random.Generator) -> dict[str, Any]:
    """The JSON-serialisable state of a numpy ``Generator``."""
    return rng.bit_generator.state


def layer_generators(net: Container) -> dict[str, np.random.Generator]:
    """Every generator held by a layer of the tree, as ``{"<dotted path>.<attribute>": generator}``."""
    return {
        f"{path}.{attr}": value
        for path, layer in net.named_leaves()
        for attr, value in vars(layer).items()
        if isinstance(value, np.random.Generator)
    }


def save_checkpoint(path: str | os.PathLike, net: Container, loss: loss_mod.BaseLoss,
                    optimizer: optimizer_mod.BaseOptimizer, scheduler: Any = None,
                    extra_config: dict[str, Any] | None = None,
                    train_state: dict[str, Any] | None = None,
                    callback_arrays: dict[str, dict[str, np.ndarray]] | None = None) -> None:
    """Write one checkpoint file atomically.

    Args:
        path: the file to (over)write.
        net, loss, optimizer: the model's parts; the net must be built.
        scheduler: an :class:`~nnframe.schedule.LRScheduler` or ``None``.
        extra_config: more JSON for ``config`` (``input_shape``, ``metrics``).
        train_state: more JSON for ``state`` (``epoch``, ``step``, shuffling RNG...).
        callback_arrays: ``{callback key: {name: array}}``, stored as ``callbacks/<key>/<name>``.

    Raises:
        CheckpointError: for an unbuilt net or state that cannot be serialised.
    """
    if not net.is_built:
        raise CheckpointError("cannot save a net that is not built: run it on a batch (or Net.build) first")
    if os.path.lexists(path) and not bool(np.isfinite(net.params.flat).all()):
        raise CheckpointError(f"refusing to replace checkpoint {os.fspath(path)!r} with weights that hold NaN or "
                              "infinity (the run diverged); save them under another name to inspect them")
    config = {
        "net": {"class": type(net).registry_name, **net.get_config()},
        "loss": loss_config(loss),
        "optimizer": optimizer.get_config(),
        "scheduler": None if scheduler is None else scheduler_config(scheduler),
        **(extra_config or {}),
    }
    opt_state = optimizer.state_dict()
    state = {
        "optimizer": {"iterations": opt_state["iterations"], "lr": opt_state["lr"]},
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": {
            "global": nn_random.get_state(),
            "layers": {k: generator_state(g) for k, g in layer_generators(net).items()},
        },
        **(train_state or {}),
    }
    tensors = {f"net/{k}": np.ascontiguousarray(v) for k, v in net.state_dict().items()}
    tensors.update({f"optimizer/{k}": np.ascontiguousarray(v) for k, v in opt_state["arrays"].items()})
    for key, arrays in (callback_arrays or {}).items():
        if "/" in key:
            raise CheckpointError(f"callback key {key!r} must not contain '/'")
        tensors.update({f"callbacks/{key}/{k}": np.ascontiguousarray(v) for k, v in arrays.items()})
    try:
        metadata = {
            "format": FORMAT_NAME,
            "format_version": str(FORMAT_VERSION),
            "nnframe_version": _nnframe_version(),
            "config": json.dumps(config, allow_nan=False),
            "state": json.dumps(state, allow_nan=False),
        }
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"cannot serialise the checkpoint's config/state as JSON: {exc}") from exc
    from safetensors.numpy import save as st_save  # noqa: PLC0415 - heavy import kept local

    data = st_save(tensors, metadata=metadata)
    with atomic_write(path) as file:
        _write_all(file, data)


def _nnframe_version() -> str:
    import nnframe  # noqa: PLC0415 - the package imports this module

    return getattr(nnframe, "__version__", "unknown")


def _write_all(file: Any, data: bytes) -> None:
    """Write ``data`` to ``file`` in chunks (a seam for crash tests)."""
    view = memoryview(data)
    chunk = 1 << 24
    for start in range(0, len(view), chunk):
        file.write(view[start : start + chunk])


# ------------------------------------------------------------------------ reading
def _no_constant(text: str) -> Any:
    raise CheckpointError(f"{text} is not a number a checkpoint may hold (JSON has no NaN or infinity)")


def _json_field(metadata: dict[str, str], key: str, name: str) -> dict[str, Any]:
    if key not in metadata:
        raise CheckpointError(f"{name}: metadata has no {key!r} entry")
    if len(metadata[key]) > MAX_METADATA_JSON_CHARS:
        raise CheckpointError(f"{name}: metadata {key!r} is {len(metadata[key])} characters long, more than "
                              f"the {MAX_METADATA_JSON_CHARS} a checkpoint may hold")
    try:
        value = json.loads(metadata[key], parse_constant=_no_constant)
    except CheckpointError as exc:
        raise CheckpointError(f"{name}: metadata {key!r}: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(f"{name}: metadata {key!r} is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise CheckpointError(f"{name}: metadata {key!r} must be a JSON object, got {type(value).__name__}")
    return value


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and validate a checkpoint file (structure and format, not yet the model fit).

    Raises:
        CheckpointError: for a missing, malformed, truncated, hostile or newer-format file.
    """
    path = os.fspath(path)
    name = f"checkpoint {path!r}"
    tensors, metadata = read_safetensors(path, name)
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{name}: metadata format is {metadata.get('format')!r}, expected {FORMAT_NAME!r}")
    version = metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        raise CheckpointError(f"{name}: format version {version!r} is not supported; this nnframe reads "
                              f"version {FORMAT_VERSION}")
    config = _json_field(metadata, "config", name)
    state = _json_field(metadata, "state", name)
    for key in ("net", "loss", "optimizer"):
        if not isinstance(config.get(key), dict):
            raise CheckpointError(f"{name}: config has no {key!r} object")
    if not isinstance(state.get("optimizer"), dict):
        raise CheckpointError(f"{name}: state has no 'optimizer' object")
    checkpoint_schema.check_config(config, name)
    checkpoint_schema.check_state(state, name)
    unknown = sorted(k for k in tensors if not k.startswith(("net/", "optimizer/"))
                     and not (k.startswith("callbacks/") and k.count("/") >= 2))
    if unknown:
        raise CheckpointError(f"{name}: unexpected tensors {unknown[:10]} "
                              "(expected net/..., optimizer/... and callbacks/<callback>/...)")
    callback_arrays: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        if key.startswith("callbacks/"):
            callback, array_name = key[len("callbacks/"):].split("/", 1)
            callback_arrays.setdefault(callback, {})[array_name] = value
    return Checkpoint(
        config=config,
        state=state,
        net_arrays={k[4:]: v for k, v in tensors.items() if k.startswith("net/")},
        optimizer_arrays={k[10:]: v for k, v in tensors.items() if k.startswith("optimizer/")},
        callback_arrays=callback_arrays,
        path=path,
    )


# ---------------------------------------------------------------------- rebuilding
def container_from_config(config: dict[str, Any]) -> Container:
    """The model's net from its config: a :class:`Net` (the default, as older checkpoints
    hold), or the registered container class the config names (``"class": "Graph"``).

    Raises:
        ValueError: when the class is not a registered container.
    """
    name = config.get("class", "Net")
    cls = get_layer_class(name) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, Container)):
        raise ValueError(f"the net's class must be a container (Net, Graph, ...), got {name!r}")
    return cls.from_config({k: v for k, v in config.items() if k != "class"})


def input_shape_of(ckpt: Checkpoint) -> Any:
    """The per-sample input shape recorded in the checkpoint, validated, or ``None``
    (a list of shapes, at most 16, for a graph with several inputs)."""
    shape = ckpt.config.get("input_shape")
    if shape is None:
        return None
    several = isinstance(shape, list) and bool(shape) and all(isinstance(s, list) for s in shape)
    parts = shape if several and len(shape) <= 16 else [shape]
    for part in parts:
        if (not isinstance(part, list) or len(part) > 8
                or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in part)
                or math.prod(part) > MAX_INPUT_ELEMENTS):
            raise CheckpointError(f"checkpoint {ckpt.path!r}: input_shape must be at most 8 positive integers "
                                  f"with a product <= {MAX_INPUT_ELEMENTS} (or a list of at most 16 such "
                                  f"shapes), got {shape!r}")
    return [tuple(p) for p in parts] if several else tuple(shape)


def batch_shape(shape: Any) -> Any:
    """``(1, *shape)`` for a per-sample shape; a list of them for a list of shapes."""
    return [(1, *s) for s in shape] if isinstance(shape, list) else (1, *shape)


def build_parts(ckpt: Checkpoint) -> tuple[Container, loss_mod.BaseLoss, optimizer_mod.BaseOptimizer]:
    """Rebuild the net (built, with fresh parameters), the loss and the optimizer from the config.

    Before anything is allocated, the layer count is capped (:data:`MAX_LAYERS`), every
    parameter's and every layer output's shape is worked out from the config
    (:meth:`~nnframe.layer.container.Container.infer_shapes`), outputs are capped
    (:data:`MAX_INPUT_ELEMENTS` per sample) and the stored tensors must match the
    parameters exactly (names, shapes, dtypes).

    Raises:
        CheckpointError: when the config names unknown classes or bad arguments, or
            when the stored tensors do not match the layers it describes.
    """
    name = f"checkpoint {ckpt.path!r}"
    count = _count_layers(ckpt.config["net"])
    if count > MAX_LAYERS:
        raise CheckpointError(f"{name}: the net has more than {MAX_LAYERS} layers (counting nested ones), "
                              "more than a checkpoint may hold")
    try:
        net = container_from_config(ckpt.config["net"])
    except Exception as exc:  # noqa: BLE001 - constructors of registered layers only
        raise CheckpointError(f"{name}: cannot rebuild the net from its config: {exc}") from None
    try:
        loss = loss_mod.get(ckpt.config["loss"])
        optimizer = optimizer_mod.get(ckpt.config["optimizer"])
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{name}: cannot rebuild the loss/optimizer from the config: {exc}") from None
    shape = input_shape_of(ckpt)
    if shape is None:
        if ckpt.net_arrays:
            raise CheckpointError(f"{name}: config has no input_shape, so the net cannot be built")
        return net, loss, optimizer
    expected = planned_state(net, shape, name)
    problems = _compare("weights", ckpt.net_arrays, {k: (v, np.dtype(net.dtype)) for k, v in expected.items()})
    if problems:
        raise CheckpointError(f"{name} does not match its own config: " + "; ".join(problems))
    try:
        with _zero_initializers(net):  # every value is about to be overwritten by the stored tensors
            net.build(batch_shape(shape))
    except MemoryError:
        raise CheckpointError(f"{name}: building the net for input {shape} ran out of memory") from None
    except Exception as exc:  # noqa: BLE001
        raise CheckpointError(f"{name}: cannot build the net for input shape {shape}: {exc}") from None
    return net, loss, optimizer


def _zeros(shape: Any, dtype: Any = None) -> np.ndarray:
    """Zeros made straight in ``dtype`` (an initializer draws float64 first; these pages stay
    untouched until the stored tensors are copied in)."""
    return np.zeros(tuple(int(s) for s in shape), dtype=dtype)


@contextlib.contextmanager
def _zero_initializers(net: Container) -> Iterator[None]:
    """Let ``net.build`` allocate zeros instead of drawing initial weights (a float64 draw
    costs twice the float32 parameters) when the stored tensors will replace them all."""
    saved = [(leaf, leaf.initializers) for _, leaf in net.named_leaves()]
    try:
        for leaf, initializers in saved:
            leaf.initializers = {key: _zeros for key in initializers}
        yield
    finally:
        for leaf, initializers in saved:
            leaf.initializers = initializers


def _count_layers(config: Any) -> int:
    """The number of layer objects (``{"class": ...}``) in a net's config, nested ones included;
    stops counting past :data:`MAX_LAYERS`."""
    count, todo = 0, [config]
    while todo and count <= MAX_LAYERS:
        item = todo.pop()
        if isinstance(item, dict):
            count += _is_layer_class(item.get("class"))
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return count


def _is_layer_class(name: Any) -> bool:
    try:
        return isinstance(name, str) and get_layer_class(name) is not None
    except ValueError:
        return False


def planned_state(net: Container, input_shape: Any, name: str = "checkpoint") -> dict[str, tuple[int, ...]]:
    """Every parameter's and buffer's shape of ``net`` for one sample of ``input_shape`` (a list of
    shapes for a graph with several inputs), allocating nothing.

    Raises:
        CheckpointError: when a layer cannot take its input, or a layer's output would hold
            more than :data:`MAX_INPUT_ELEMENTS` values per sample.
    """
    try:
        outputs, states = net.infer_shapes(batch_shape(input_shape))
    except (ShapeError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{name}: the net in its config cannot take input of shape {input_shape}: "
                              f"{exc}") from None
    for index, out in enumerate(outputs):
        size = math.prod(out) if isinstance(out, tuple) else sum(math.prod(o) for o in out)
        if size > MAX_INPUT_ELEMENTS:
            raise CheckpointError(f"{name}: {_walk_step(net, index)} would output {size} values per sample "
                                  f"(shape {out}), more than the {MAX_INPUT_ELEMENTS} allowed")
    return states


def _walk_step(net: Container, index: int) -> str:
    """What made output ``index`` of ``net.infer_shapes``: a graph's node (a shared layer has
    several), a net's layer, or else the step's number."""
    nodes = getattr(net, "nodes", None)
    if nodes is not None:
        return f"node {index} ({nodes[index].layer.name})" if index < len(nodes) else "the graph's output"
    layers = getattr(net, "layers", None)
    if layers and index < len(layers):
        return f"layer {index} ({layers[index].name})"
    return f"step {index} of the net"


def check_arrays(ckpt: Checkpoint, net: Container, optimizer: optimizer_mod.BaseOptimizer) -> None:
    """Check every stored name, shape and dtype against ``net`` and ``optimizer``.

    Raises:
        CheckpointError: listing ALL missing/unknown names and shape/dtype mismatches.
    """
    problems = []
    dtype = np.dtype(net.dtype)  # shapes from the walk: state_dict() would copy every array
    expected_net = {k: (tuple(shape), dtype) for k, shape in net.state_shapes().items()}
    problems += _compare("weights", ckpt.net_arrays, expected_net)
    opt_state = ckpt.state["optimizer"]
    if ckpt.optimizer_arrays or int(opt_state.get("iterations", 0)) > 0:
        layout = net.params.layout
        expected_opt = {
            f"{buf}.{param}": (shape, np.dtype(layout.dtype))
            for buf in optimizer.state_names
            for param, shape in zip(layout.names, layout.shapes, strict=True)
        }
        problems += _compare("optimizer state", ckpt.optimizer_arrays, expected_opt)
    if problems:
        raise CheckpointError(f"checkpoint {ckpt.path!r} does not fit the model: " + "; ".join(problems))


def _compare(what: str, stored: dict[str, np.ndarray],
             expected: dict[str, tuple[tuple[int, ...], np.dtype]]) -> list[str]:
    problems = []
    missing = sorted(set(expected) - set(stored))
    unknown = sorted(set(stored) - set(expected))
    if missing:
        problems.append(f"missing {what}: {missing}")
    if unknown:
        problems.append(f"unknown {what}: {unknown}")
    for key in sorted(set(stored) & set(expected)):
        shape, dtype = expected[key]
        value = stored[key]
        if tuple(value.shape) != shape or value.dtype != dtype:
            problems.append(f"{what} {key}: expected {shape} {dtype}, got {tuple(value.shape)} {value.dtype}")
    return problems


def restore_generator(rng: np.random.Generator | None, state: Any, what: str) -> np.random.Generator:
    """Return a generator in ``state``: ``rng`` itself when its bit generator matches, else a new one.

    Raises:
        CheckpointError: for a malformed state or an unknown bit generator.
    """
    if not isinstance(state, dict) or not isinstance(state.get("bit_generator"), str) \
            or state["bit_generator"] not in _BIT_GENERATORS:
        raise CheckpointError(f"bad generator state for {what}: expected a dict naming one of "
                              f"{sorted(_BIT_GENERATORS)}")
    if rng is None or type(rng.bit_generator).__name__ != state["bit_generator"]:
        rng = np.random.Generator(_BIT_GENERATORS[state["bit_generator"]]())
    try:
        rng.bit_generator.state = state
    except (TypeError, ValueError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        raise CheckpointError(f"bad generator state for {what}: {exc}") from None
    return rng


def restore_into(ckpt: Checkpoint, net: Container, optimizer: optimizer_mod.BaseOptimizer,
                 scheduler: Any = None) -> Any:
    """Load weights, buffers, optimizer state, scheduler state and layer generators.

    The net must be built. Everything is validated first (all problems reported
    together); nothing is changed if validation fails.

    Args:
        scheduler: the model's scheduler, or ``None``: then one is built from the
            config when the checkpoint has one.

    Returns:
        The scheduler (given, newly built, or ``None``).

    Raises:
        CheckpointError: on any mismatch.
    """
    where = f"checkpoint {ckpt.path!r}"
    check_arrays(ckpt, net, optimizer)
    # validate everything else before changing anything
    try:
        iterations = int(ckpt.state["optimizer"]["iterations"])
        lr = float(ckpt.state["optimizer"]["lr"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: bad optimizer state {ckpt.state.get('optimizer')!r}: {exc}") from None
    generators = layer_generators(net)
    saved = (ckpt.state.get("rng") or {}).get("layers") or {}
    if not isinstance(saved, dict) or sorted(saved) != sorted(generators):
        raise CheckpointError(f"{where}: it holds layer generators {sorted(saved)}, the net has "
                              f"{sorted(generators)}")
    fresh = {key: restore_generator(None, state, f"layer {key}") for key, state in saved.items()}
    sched_cfg, sched_state = ckpt.config.get("scheduler"), ckpt.state.get("scheduler")
    if sched_cfg is not None:
        if not isinstance(sched_cfg, dict):
            raise CheckpointError(f"{where}: the scheduler config must be an object, got {sched_cfg!r}")
        if scheduler is not None and sched_cfg.get("class") != type(scheduler).__name__:
            raise CheckpointError(f"{where} holds a {sched_cfg.get('class')} scheduler, "
                                  f"the model has a {type(scheduler).__name__}")
        if not (isinstance(sched_state, dict) and isinstance(sched_state.get("last_step"), int)
                and isinstance(sched_state.get("base_lr"), (int, float))):
            raise CheckpointError(f"{where}: bad scheduler state {sched_state!r}")
        if scheduler is None:
            scheduler = build_scheduler(sched_cfg, optimizer, ckpt.path)
        probe = copy.copy(scheduler)  # load the state into a copy first: it must give a finite rate
        probe.optimizer = copy.copy(optimizer)
        try:
            probe.load_state_dict(sched_state)
            if not math.isfinite(float(probe.optimizer.lr)):
                raise ValueError(f"it gives the learning rate {probe.optimizer.lr}")
        except (ArithmeticError, ValueError, TypeError, KeyError) as exc:
            raise CheckpointError(f"{where}: bad scheduler state {sched_state!r}: {exc}") from None
    # now load
    net.load_state_dict(ckpt.net_arrays)
    if ckpt.optimizer_arrays or iterations > 0:
        optimizer.load_state_dict({"iterations": iterations, "lr": lr, "arrays": ckpt.optimizer_arrays},
                                  net.params.layout)
    else:  # never stepped: no moments yet
        optimizer.iterations, optimizer.lr = iterations, lr
    leaves = dict(net.named_leaves())
    for key, restored in fresh.items():
        path, attr = key.rsplit(".", 1)
        current = generators[key]
        if type(current.bit_generator) is type(restored.bit_generator):
            current.bit_generator.state = restored.bit_generator.state  # keep shared references valid
        else:
            setattr(leaves[path], attr, restored)
    if sched_cfg is not None:
        scheduler.load_state_dict(sched_state)
        optimizer.lr = lr  # the saved rate, not the schedule's: ReduceLROnPlateau or a hand may have set it
    return scheduler


def build_scheduler(config: dict[str, Any], optimizer: optimizer_mod.BaseOptimizer,
                    path: str = "") -> schedule_mod.LRScheduler:
    """Rebuild a scheduler from :func:`scheduler_config`'s output (classes of :mod:`nnframe.schedule` only)."""
    config = dict(config)
    name = config.pop("class", None)
    cls = getattr(schedule_mod, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, schedule_mod.LRScheduler)):
        raise CheckpointError(f"checkpoint {path!r}: unknown scheduler {name!r}")
    base_lr = optimizer.lr
    try:
        scheduler = cls(optimizer, **config)
    except Exception as exc:  # noqa: BLE001 - constructor argument errors
        raise CheckpointError(f"checkpoint {path!r}: cannot rebuild scheduler {name}: {exc}") from None
    optimizer.lr = base_lr
    return scheduler
