"""Containers: layers made of layers (nested nets, residual blocks, graphs).

A :class:`Container` is a :class:`~nnframe.layer.base.Layer` (lazy build from the first
input, ``forward`` returns the output, ``backward`` the input gradient) whose work is
done by child layers, named by :meth:`Container.sublayers` (``"0"``, ``"body"``, ...).
Any child may itself be a container, to any depth.

**One walk** (:meth:`Container.named_layers`) visits the tree depth first, each layer
once, and gives every layer its dotted path (``"2.body.0"``); every parameter is named
``<path>.<key>`` (``"2.body.0.w"``). Parameter names, ``state_dict``, the flat buffers,
checkpoints, optimizer state and ``summary`` all come from that walk.

**The root owns the buffers.** The outermost container (one not placed inside another)
packs every parameter of the tree into one flat :class:`~nnframe.parameter.ParamBuffer`
and every gradient into another, after the first forward pass has built the leaves;
each leaf's ``params[k]``/``grads[k]`` become views of them. A container placed inside
another (``Net([Net([...]), ...])``) gives up its own buffers: its ``params`` and
``grads`` are then ``{relative name: view}`` dicts into the root's buffers.

**A layer used several times** inside one container (a shared layer of a graph, the
same object twice in a net) keeps one set of parameters: the container saves each
use's ``ctx`` (of the whole subtree, for a shared container) after its forward and
restores it before that use's backward, and the gradients of all uses are summed.
A layer may belong to only one container of a tree: sharing a leaf between two
different sub-containers is refused when the tree is walked (share the container
that holds it instead).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nnframe import backend
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer, as_shape, check_name, implements_shape_inference, infer_output_shape
from nnframe.parameter import ParamBuffer, ParamLayout


class Container(Layer):
    """A layer made of child layers; see the module docstring.

    Subclasses implement :meth:`sublayers`, :meth:`run_forward`, :meth:`run_backward`,
    :meth:`get_config` / :meth:`from_config`, and call :meth:`_adopt` on their
    children in ``__init__``. ``forward``/``backward`` add the root's work around
    them: casting the input to the tree's dtype, packing and syncing the buffers.

    Args:
        name: the layer name.
        dtype: the float dtype of parameters and activations (default: the framework
            default when built). Float input of another dtype and integer input (uint8
            pixels, int64 arrays) reaching the root are cast to it, by ``forward`` as by
            ``fit``/``evaluate``/``predict``; a net whose first layer takes integer ids
            (an embedding) gets them unchanged.
    """

    def __init__(self, name: str | None = None, dtype: Any = None) -> None:
        # the Layer fields, except params/grads/nt_params, which come from the children
        check_name(type(self).__name__, name)
        self._name = name
        self._is_training = True
        self.ctx: dict[str, Any] = {}
        self.initializers = {}
        self.shapes = {}
        self.dtype = backend.get_default_dtype() if dtype is None else backend.as_float_dtype(dtype)
        self._params: ParamBuffer | None = None
        self._grads: ParamBuffer | None = None
        # (leaf, key, its view in the flat params, its view in the flat grads)
        self._bindings: list[tuple[Layer, str, Array, Array]] = []
        self._complete = False  # the buffers hold every parameter of a fully built tree
        self._nested = False  # placed inside another container: the root owns the buffers
        self._input_grad = True
        self.input_shape: Any = None  # per-sample shape of the last input (checkpoints)

    # ----------------------------------------------------------------- subclass hooks
    def sublayers(self) -> list[tuple[str, Layer]]:
        """The direct children as ``(name, layer)``, each layer once, in a fixed order."""
        raise NotImplementedError

    def run_forward(self, inputs: Any) -> Any:
        """Compute the output from the children (no casting or packing: :meth:`forward` does that)."""
        raise NotImplementedError

    def run_backward(self, grad: Any) -> Any:
        """Back-propagate through the children, filling their grads; return the input gradient."""
        raise NotImplementedError

    def shape_walk(self, input_shape: Any, build: bool) -> list[Any]:
        """The output shapes along the children for an input of ``input_shape`` (batch axis
        first), the container's own output last; with ``build`` the children also write their
        parameter shapes (:meth:`child_shape`). Allocates nothing (a child without shape
        inference is traced, see :func:`~nnframe.layer.base.infer_output_shape`)."""
        raise NotImplementedError

    def _set_input_grad(self, value: bool) -> None:
        """Tell the children that read this container's input whether their input gradient is needed."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Container:
        """Rebuild an (unbuilt) container from :meth:`get_config`'s output."""
        raise NotImplementedError

    # ----------------------------------------------------------------- the layer API
    def forward(self, inputs: Any) -> Any:
        """Run the children and return the output; the root also casts the input to its
        ``dtype`` and (after the first pass) packs every parameter into its flat buffers.
        Leaves built on that first pass create their parameters in the root's ``dtype``."""
        if self._nested:
            return self.run_forward(inputs)
        x = self._cast_input(inputs)
        self.input_shape = _sample_shape(x)
        if not self._complete:  # leaves built on this pass take the root's dtype, not the global default
            with backend.default_dtype(self.dtype):
                out = self.run_forward(x)
            self._pack()
        else:
            out = self.run_forward(x)
            self._sync("params")
        return out

    def backward(self, grad: Any, input_grad: bool | None = None) -> Any:
        """Back-propagate ``grad`` (the loss gradient w.r.t. the output).

        Fills every leaf's ``grads`` and returns the gradient w.r.t. the input, or
        ``None`` when ``input_grad`` is ``False``, which lets the first layers skip that
        product. The root computes it unless told otherwise; a nested container follows
        :attr:`requires_input_grad`, set by its parent.
        """
        if input_grad is None and not self._nested:
            input_grad = True
        if input_grad is not None:
            self.requires_input_grad = input_grad
        if self._nested:
            return self.run_backward(grad)
        if self._grads is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward: run forward first")
        dx = self.run_backward(grad)
        self._sync("grads")
        return dx

    @property
    def requires_input_grad(self) -> bool:  # type: ignore[override]
        """Whether :meth:`backward` computes the input gradient (set on the children that read it)."""
        return self._input_grad

    @requires_input_grad.setter
    def requires_input_grad(self, value: bool) -> None:
        self._input_grad = bool(value)
        self._set_input_grad(self._input_grad)

    @property
    def accepts_integer_input(self) -> bool:  # type: ignore[override]
        """``True`` when every child that reads the input takes integer indices (embeddings)."""
        first = self._input_layers()
        return bool(first) and all(layer.accepts_integer_input for layer in first)

    def _input_layers(self) -> list[Layer]:
        """The children that read this container's input (for casting decisions)."""
        children = self.sublayers()
        return [children[0][1]] if children else []

    # ------------------------------------------------------------- shape inference
    def compute_output_shape(self, input_shape: Any) -> Any:
        """The output shape for an input of ``input_shape`` (batch axis first), walking the children.

        Raises:
            ShapeError: naming the first child that cannot take its input.
        """
        return self.shape_walk(as_shape(input_shape), build=False)[-1]

    def infer_shapes(self, input_shape: Any) -> tuple[list[Any], dict[str, tuple[int, ...]]]:
        """Every child's output shape and every parameter's and buffer's shape, allocating nothing.

        Args:
            input_shape: the batch shape, batch axis first, e.g. ``(1, 28, 28, 1)`` (a list of
                shapes for a container with several inputs).

        Returns:
            ``(outputs, states)``: the output shapes along the children (for a ``Net``, one per
            layer), and ``{"3.w": shape, "2.body.1.running_mean": shape, ...}`` (the names of
            :meth:`state_dict`).

        Raises:
            ShapeError: naming the first layer that cannot take its input.
        """
        outputs = self.shape_walk(as_shape(input_shape), build=True)
        return outputs, self.state_shapes()

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{dotted name: shape}`` of every parameter and buffer of the tree, once built or inferred.

        Raises:
            ShapeError: when a shape is still unknown.
        """
        return {f"{path}.{key}": shape for path, leaf in self.named_leaves()
                for key, shape in leaf.state_shapes().items()}

    def child_shape(self, child: Layer, input_shape: Any, build: bool) -> Any:
        """``child``'s output shape for ``input_shape``; with ``build`` the child also writes its
        parameter shapes (:func:`~nnframe.layer.base.infer_output_shape`)."""
        if build:
            return infer_output_shape(child, input_shape, self.dtype)
        if implements_shape_inference(child):
            return as_shape(child.compute_output_shape(input_shape))
        return infer_output_shape(child, input_shape, self.dtype)  # traced: a seed-style layer

    # ----------------------------------------------------------------- the one walk
    def named_layers(self, prefix: str = "") -> Iterator[tuple[str, Layer]]:
        """``(dotted path, layer)`` for every layer below this one, depth first, each once.

        Containers come before their children (``"2"``, then ``"2.body"``, ``"2.body.0"``).

        Raises:
            ValueError: when a layer belongs to two different containers of the tree.
        """
        seen: dict[int, str] = {}
        yield from self._walk(prefix, seen)

    def _walk(self, prefix: str, seen: dict[int, str]) -> Iterator[tuple[str, Layer]]:
        for name, child in self.sublayers():
            path = f"{prefix}{name}"
            if id(child) in seen:
                raise ValueError(
                    f"layer {child.name!r} sits at both {seen[id(child)]!r} and {path!r} of one model; "
                    "a layer can be shared only within one container (call it several times in one "
                    "Graph, or share the container that holds it)"
                )
            seen[id(child)] = path
            yield path, child
            if isinstance(child, Container):
                yield from child._walk(f"{path}.", seen)

    def named_leaves(self) -> Iterator[tuple[str, Layer]]:
        """``(dotted path, layer)`` for every non-container layer below this one."""
        return ((path, layer) for path, layer in self.named_layers() if not isinstance(layer, Container))

    def _named(self, which: str) -> dict[str, Array]:
        """``{"<path>.<key>": array}`` of the leaves' built ``params``, ``grads`` or ``nt_params``."""
        named = {}
        for path, leaf in self.named_leaves():
            for key, value in getattr(leaf, which).items():
                if value is not None and (which != "grads" or leaf.params.get(key) is not None):
                    named[f"{path}.{key}"] = value
        return named

    @property
    def param_names(self) -> tuple[str, ...]:
        """Dotted names of every trainable parameter of the tree (built or not)."""
        return tuple(f"{path}.{key}" for path, leaf in self.named_leaves() for key in leaf.param_names)

    @property
    def nt_param_names(self) -> tuple[str, ...]:
        """Dotted names of every non-trainable array of the tree."""
        return tuple(f"{path}.{key}" for path, leaf in self.named_leaves() for key in leaf.nt_param_names)

    @property
    def params(self) -> Mapping[str, Array]:  # type: ignore[override]
        """All trainable parameters by dotted name: the root's flat :class:`ParamBuffer`
        (``params.flat`` is the whole vector), or for a nested container a dict of views."""
        if self._params is not None:
            return self._params
        if self._nested:
            return self._named("params")
        raise RuntimeError(f"the {type(self).__name__.lower()} has no parameters yet: run forward on a "
                           "batch (or build) first")

    @property
    def grads(self) -> Mapping[str, Array]:  # type: ignore[override]
        """All gradients, laid out like :attr:`params`."""
        if self._grads is not None:
            return self._grads
        if self._nested:
            return self._named("grads")
        raise RuntimeError(f"the {type(self).__name__.lower()} has no gradients yet: run forward on a "
                           "batch (or build) first")

    @property
    def nt_params(self) -> dict[str, Array]:  # type: ignore[override]
        """Non-trainable arrays (running statistics) by dotted name."""
        return self._named("nt_params")

    @property
    def num_params(self) -> int:
        """Number of trainable values in the tree (each shared layer counted once)."""
        return sum(leaf.num_params for _, leaf in self.named_leaves())

    @property
    def is_init(self) -> bool:  # type: ignore[override]
        """Whether every leaf has created its parameters."""
        return all(v is not None for _, leaf in self.named_leaves() for v in leaf.params.values())

    @property
    def is_built(self) -> bool:
        """Whether every parameter is created (and, for the root, packed into the flat buffers)."""
        return self.is_init and (self._nested or self._params is not None)

    @property
    def is_training(self) -> bool:  # type: ignore[override]
        """Whether every child is in training mode; setting it sets the whole tree."""
        return all(layer.is_training for _, layer in self.sublayers())

    @is_training.setter
    def is_training(self, value: bool) -> None:
        self._is_training = bool(value)
        for _, layer in self.sublayers():
            layer.is_training = value

    def train(self) -> Container:
        """Put every layer in training mode; returns the container."""
        self.is_training = True
        return self

    def eval(self) -> Container:
        """Put every layer in evaluation mode; returns the container."""
        self.is_training = False
        return self

    # ---------------------------------------------------------------- named state
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and non-trainable array by dotted name, as host copies."""
        return {k: backend.to_host(v).copy() for k, v in self._named_arrays().items()}

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy arrays by dotted name into the leaves, checking names, shapes and dtypes.

        Args:
            state: ``{"3.w": array, "2.body.1.running_mean": array, ...}``.
            strict: also reject missing names.

        Raises:
            ValueError: listing every missing/unknown name and shape/dtype mismatch.
        """
        xp = backend.xp()
        targets = self._named_arrays()
        problems = []
        unknown = sorted(set(state) - set(targets))
        if unknown:
            problems.append(f"unknown names: {unknown}")
        missing = sorted(set(targets) - set(state))
        if strict and missing:
            problems.append(f"missing names: {missing}")
        for name in sorted(set(state) & set(targets)):
            value, target = state[name], targets[name]
            if tuple(value.shape) != tuple(target.shape):
                problems.append(f"{name}: expected shape {tuple(target.shape)}, got {tuple(value.shape)}")
            elif np.dtype(value.dtype) != np.dtype(target.dtype):
                problems.append(f"{name}: expected dtype {target.dtype}, got {value.dtype}")
        if problems:
            raise ValueError("cannot load state: " + "; ".join(problems))
        for name in set(state) & set(targets):
            targets[name][...] = xp.asarray(state[name])

    def _named_arrays(self) -> dict[str, Array]:
        named = self._named("params")
        named.update(self._named("nt_params"))
        return named

    def build(self, input_shape: Any) -> Container:
        """Build for an input of ``input_shape`` (batch axis first); returns the container.

        The outermost container creates every parameter (the seed-era ``Net.build``) without
        running the net: :meth:`infer_shapes` writes every leaf's shapes, each unbuilt leaf's
        ``_init_params`` allocates its parameters and buffers, and the flat buffers are
        packed, so no activation is allocated (a leaf without shape inference is traced: one
        forward pass of a zero batch through that leaf). A nested container only writes its
        children's shapes (the :class:`~nnframe.layer.base.Layer` contract: its root allocates).
        """
        shape = as_shape(input_shape)
        self.shape_walk(shape, build=True)
        if self._nested:
            return self
        for _, leaf in self.named_leaves():
            if not leaf.is_init and (leaf.param_names or leaf.nt_param_names):
                leaf._init_params(self.dtype)
        self.input_shape = [s[1:] for s in shape] if isinstance(shape, list) else shape[1:]
        self._pack()
        self.reset_states()  # a traced leaf's zero batch must not become carried state
        return self

    def reset_states(self) -> None:
        """Call ``reset_states()`` on every layer of the tree that has one (stateful recurrent layers)."""
        for _, leaf in self.named_leaves():
            reset = getattr(leaf, "reset_states", None)
            if callable(reset):
                reset()

    # ------------------------------------------------------------------ internals
    def _adopt(self, children: Sequence[Layer]) -> None:
        """Mark child containers as nested: they give up their buffers to the root."""
        for child in children:
            if isinstance(child, Container):
                if child is self:
                    raise ValueError(f"{self.name}: a container cannot contain itself")
                child._nested = True
                child._params = child._grads = None
                child._bindings = []
                child._complete = False

    def _cast_input(self, inputs: Any) -> Any:
        if isinstance(inputs, (list, tuple)):
            return [self._cast_input(item) for item in inputs]
        xp = backend.xp()
        inputs = xp.asarray(inputs)
        kind = inputs.dtype.kind
        if kind in "iu" and self.accepts_integer_input:
            return inputs
        if kind in "fuib" and inputs.dtype != self.dtype:
            return inputs.astype(self.dtype)  # one rule for forward, fit, evaluate and predict
        if kind not in "fuib":
            raise ShapeError(f"{self.name}: expected float, integer or bool input, got dtype {inputs.dtype}")
        return inputs

    def _pack(self) -> None:
        """Move every built parameter (and its gradient) into flat buffers of views."""
        slots = [(f"{path}.{key}", leaf, key, value) for path, leaf in self.named_leaves()
                 for key, value in leaf.params.items() if value is not None]
        self._complete = self.is_init
        layout = ParamLayout.from_named({name: value for name, _, _, value in slots},
                                        num_layers=len(self.sublayers()))
        if self._params is not None and layout == self._params.layout:
            return
        params, grads = ParamBuffer(layout), ParamBuffer(layout)
        self._bindings = []
        for name, leaf, key, value in slots:
            params[name][...] = value
            old_grad = leaf.grads.get(key)
            # the buffer starts at zero: copy only non-zero gradients, so packing a freshly built
            # (or loaded) tree does not touch the whole gradient buffer
            if old_grad is not None and old_grad.shape == value.shape and old_grad.any():
                grads[name][...] = old_grad
            leaf.params[key] = params[name]
            leaf.grads[key] = grads[name]
            self._bindings.append((leaf, key, params[name], grads[name]))
        self._params, self._grads = params, grads

    def _sync(self, which: str) -> None:
        """Copy any array a leaf rebound in its ``params`` or ``grads`` (``which``) into the
        flat buffer, and restore the view (runs every step, so the views are kept at hand)."""
        for leaf, key, param_view, grad_view in self._bindings:
            arrays = leaf.params if which == "params" else leaf.grads
            view = param_view if which == "params" else grad_view
            current = arrays.get(key)
            if current is not view:
                if current is None or tuple(current.shape) != tuple(view.shape):
                    raise ShapeError(
                        f"{leaf.name}: {key!r} must keep shape {tuple(view.shape)}, got "
                        f"{None if current is None else tuple(current.shape)}"
                    )
                view[...] = current
                arrays[key] = view

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for name, layer in self.sublayers():
            text = repr(layer).replace("\n", "\n  ")
            lines.append(f"  ({name}) {text}")
        return "\n".join(lines) + "\n)"


def _sample_shape(x: Any) -> Any:
    """The per-sample shape of a batch (a list of them for a list of batches)."""
    if isinstance(x, (list, tuple)):
        return [_sample_shape(item) for item in x]
    return tuple(int(s) for s in x.shape[1:])


# ------------------------------------------------------------- layers used several times
def subtree(layer: Layer) -> list[Layer]:
    """``layer`` and, for a container, every layer below it."""
    if isinstance(layer, Container):
        return [layer, *(child for _, child in layer.named_layers())]
    return [layer]


def save_ctx(layer: Layer) -> list[tuple[Layer, dict[str, Any]]]:
    """The ``ctx`` of every layer of ``layer``'s subtree, to restore before that use's backward."""
    return [(item, item.ctx) for item in subtree(layer)]


def restore_ctx(saved: list[tuple[Layer, dict[str, Any]]]) -> None:
    """Put back what :func:`save_ctx` returned."""
    for item, ctx in saved:
        item.ctx = ctx


def snapshot_grads(layer: Layer) -> list[tuple[Layer, str, Array]]:
    """Copies of every leaf gradient of ``layer``'s subtree (added back by :func:`add_grads`)."""
    return [(leaf, key, grad.copy()) for leaf in subtree(layer) if not isinstance(leaf, Container)
            for key, grad in leaf.grads.items() if grad is not None and leaf.params.get(key) is not None]


def add_grads(snapshot: list[tuple[Layer, str, Array]]) -> None:
    """Add a :func:`snapshot_grads` copy into the leaves' current gradients (uses summed)."""
    for leaf, key, grad in snapshot:
        leaf.grads[key] += grad


def trace_output_shapes(root: Container, inputs: Any) -> dict[int, Any]:
    """Run ``root.forward(inputs)`` and return each layer's per-sample output shape by ``id``.

    Every layer of the tree is traced (containers and leaves; a layer used several
    times keeps its last shape). For summaries: the layers' ``forward`` methods are
    wrapped for the one call and restored afterwards, exceptions included.
    """
    shapes: dict[int, Any] = {}
    patched = []

    def tracer(layer: Layer) -> Any:
        original = layer.forward

        def traced(x: Any, **kwargs: Any) -> Any:
            out = original(x, **kwargs)
            shapes[id(layer)] = _sample_shape(out)
            return out
        return traced

    try:
        for _, layer in root.named_layers():
            layer.forward = tracer(layer)  # type: ignore[method-assign]
            patched.append(layer)
        out = root.forward(inputs)
        shapes[id(root)] = _sample_shape(out)
    finally:
        for layer in patched:
            del layer.forward
    return shapes
