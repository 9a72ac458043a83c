"""The layer contract (the seed's ``Layer`` and ``Activation``), stated once here.

A layer:

* stores and validates its hyperparameters in ``__init__`` (errors quote the value);
* creates its parameters once, lazily, from the first input's shape
  (:meth:`Layer._init_params`, as in the seed), in the framework dtype;
* ``forward(inputs)`` returns its output and keeps in ``ctx`` only what backward needs;
* ``backward(grad)`` fills ``grads`` (writing in place into the arrays already
  there, which :class:`~nnframe.net.Net` makes views of one flat buffer) and returns
  the gradient with respect to its input — or ``None`` when ``requires_input_grad``
  is ``False`` (the first layer of a net, whose input needs no gradient). Once the
  parameters exist, ``grads[name]`` exists too (zeros of the parameter's shape and
  dtype, standalone or in a net), so ``self.grads["w"][...] = dw`` always works;
  :meth:`Layer.grad_buffer` returns the same array for ``out=`` arguments. Rebinding
  ``self.grads["w"] = dw`` works as well (a net copies it into its buffer);
* keeps the dtype it is given.

Shape inference (shapes without allocating anything; how a checkpoint's config is
checked before a byte is spent on it, and how a container learns its children's shapes).
Shapes here are whole batch shapes, batch axis first, exactly as ``forward`` receives
them (``(N, 28, 28, 1)``; a list of shapes for a layer called on a list of arrays);
the batch size is any positive int.

* ``build(input_shape)`` writes ``shapes[name]`` (a tuple of ints) for every name in
  ``param_names`` and ``nt_param_names`` and allocates nothing; it raises
  :class:`~nnframe.errors.ShapeError` for an input the layer cannot take. It is called
  once, on an unbuilt layer; ``forward`` then calls :meth:`Layer._init_params`, which
  allocates ``initializers[name](shapes[name])`` (the seed's hook). The base ``build``
  does nothing: right for a layer without parameters or with fixed shapes.
* ``compute_output_shape(input_shape)`` returns the output shape, without side
  effects; it raises :class:`~nnframe.errors.ShapeError` where ``forward`` would refuse
  the input (including an input that does not fit the shapes already known).
* ``state_shapes()`` returns ``{name: shape}`` of the parameters and buffers after
  ``build``; a container returns its children's, with dotted names (``"0.w"``), and
  implements ``build``/``compute_output_shape`` by walking its children with
  :func:`infer_output_shape`.

Every built-in layer implements both methods (the conformance test checks each one
against ``forward``). A layer written the seed's way, which only sets its shapes
inside ``forward``, does not: :func:`infer_output_shape` then **traces** it, running
``forward`` once on a zero batch of the input shape in evaluation mode, which allocates
its parameters. That fallback is visible (:func:`implements_shape_inference` says which
path a layer takes) and never guesses: the shapes come from the arrays forward made.

Attributes (the seed's names):
    params: trainable arrays by name. nt_params: non-trainable state (running
    statistics). grads: gradients of ``params``. initializers: how each parameter (and
    buffer) is created. shapes: parameter and buffer shapes. ctx: values saved by
    forward for backward.
"""

from __future__ import annotations

import numbers
from typing import Any, ClassVar

from nnframe import backend
from nnframe import initializer as init_mod
from nnframe.backend import Array
from nnframe.errors import ShapeError

_REGISTRY: dict[str, type[Layer]] = {}


class Layer:
    """Base class of every layer; see the module docstring for the contract."""

    #: ``True`` for layers whose input is integer indices (e.g. embeddings): the net
    #: then passes integer input through instead of casting it to the float dtype.
    accepts_integer_input: ClassVar[bool] = False
    #: The mask route (Keras's): a boolean ``(N, T)`` array of valid steps made by
    #: ``Embedding(mask_padding=True)`` or ``Masking`` travels with the activations through a
    #: :class:`~nnframe.net.Net` (see :func:`forward_with_mask`). ``True`` for layers whose
    #: ``forward`` takes a ``mask=`` keyword (the recurrent layers).
    accepts_mask: ClassVar[bool] = False
    #: ``True`` for layers that act on the last axis only (activations, ``Dense``, ``Dropout``,
    #: ``LayerNorm``): a mask over the leading axes passes through them unchanged.
    propagates_mask: ClassVar[bool] = False

    def __init__(self, name: str | None = None) -> None:
        check_name(type(self).__name__, name)
        self._name = name
        self.params: dict[str, Array | None] = {p: None for p in self.param_names}
        self.nt_params: dict[str, Array | None] = {p: None for p in self.nt_param_names}
        self.initializers: dict[str, init_mod.Initializer] = {}
        self.grads: dict[str, Array] = {}
        self.shapes: dict[str, Any] = {}
        self._is_training = True
        self._is_init = False
        self.ctx: dict[str, Any] = {}
        self.requires_input_grad = True

    #: the name checkpoints and configs use for this class (see :func:`get_layer_class`)
    registry_name: ClassVar[str] = "Layer"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__name__
        taken = _REGISTRY.get(name)
        if taken is not None and taken.__module__ != cls.__module__:
            # never shadow another module's class (nnframe's own register first): a user's
            # ``class Dense(Layer)`` is "their_module.Dense", and "Dense" stays nnframe's
            name = f"{cls.__module__}.{cls.__qualname__}"
        cls.registry_name = name
        _REGISTRY[name] = cls

    def __repr__(self) -> str:
        shape = self.shapes or None
        return f"layer: {self.name}\tshape: {shape}"

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """``forward(inputs)`` on arrays; on symbolic tensors (``nnframe.Input``), record the call
        for a :class:`~nnframe.graph.Graph` and return the output's symbolic tensor(s)."""
        from nnframe.layer import symbolic  # noqa: PLC0415 - symbolic builds on this module

        if symbolic.is_symbolic(inputs):
            if kwargs:
                raise TypeError(f"{self.name}: keyword arguments {sorted(kwargs)} cannot be used in a graph; "
                                "pass several tensors as a list, e.g. layer([x, h0])")
            return symbolic.connect(self, inputs)
        return self.forward(inputs, **kwargs)

    def forward(self, inputs: Array) -> Array:
        """Compute the output from ``inputs``, caching in ``ctx`` what backward needs."""
        raise NotImplementedError

    def compute_mask(self, inputs: Array, mask: Array | None) -> Array | None:
        """The mask the next layer receives, given this layer's input and input mask.

        Default: the input mask for layers with ``propagates_mask``, else ``None``.
        Layers that make a mask (``Embedding``, ``Masking``) or change the time axis
        (a recurrent layer without ``return_sequences``) override it.
        """
        return mask if self.propagates_mask else None

    def backward(self, grad: Array) -> Array | None:
        """Fill ``grads`` from the output gradient and return the input gradient."""
        raise NotImplementedError

    @property
    def is_init(self) -> bool:
        """Whether the parameters have been created."""
        return self._is_init

    @is_init.setter
    def is_init(self, is_init: bool) -> None:
        self._is_init = is_init
        for name in self.param_names:
            self.shapes[name] = tuple(self.params[name].shape)
            if is_init:
                self.grad_buffer(name)  # backward may write grads[name][...] from the start

    @property
    def is_training(self) -> bool:
        """``True`` in training mode (dropout active, batch statistics used)."""
        return self._is_training

    @is_training.setter
    def is_training(self, is_train: bool) -> None:
        self._is_training = bool(is_train)

    @property
    def name(self) -> str:
        """The name given at construction, else the class name."""
        return self._name or type(self).__name__

    @property
    def param_names(self) -> tuple[str, ...]:
        """Names of the trainable parameters, in a fixed order."""
        return ()

    @property
    def nt_param_names(self) -> tuple[str, ...]:
        """Names of the non-trainable state arrays."""
        return ()

    @property
    def num_params(self) -> int:
        """Number of trainable values (0 before the layer is built)."""
        return sum(int(p.size) for p in self.params.values() if p is not None)

    # ------------------------------------------------------------- shape inference
    def build(self, input_shape: tuple[int, ...]) -> None:
        """Write ``shapes`` for an input of ``input_shape`` (batch axis first); allocate nothing.

        Layers whose parameter shapes depend on the input (``Dense``'s ``D_in``) override
        this; the base version keeps the shapes given in ``__init__``.

        Raises:
            ShapeError: for an input shape the layer cannot take.
        """

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output shape for an input of ``input_shape`` (batch axis first); no side effects.

        Raises:
            ShapeError: where ``forward`` would refuse such an input.
            NotImplementedError: in the base class; see :func:`infer_output_shape` for
                the fallback used for layers that do not implement it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement compute_output_shape; "
            "infer_output_shape traces it by running forward on a zero batch instead"
        )

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """``{name: shape}`` of every parameter and buffer, once ``build`` (or forward) has run.

        Raises:
            ShapeError: when a shape is still unknown (the layer is not built).
        """
        result = {}
        arrays = {**self.params, **self.nt_params}
        for name in (*self.param_names, *self.nt_param_names):
            array = arrays.get(name)
            shape = self.shapes.get(name) if array is None else array.shape
            if shape is None or any(s is None for s in shape):
                raise ShapeError(f"{self.name}: the shape of {name!r} is not known yet ({shape}): "
                                 "call build(input_shape) or run forward first")
            result[name] = tuple(int(s) for s in shape)
        return result

    def _init_params(self, dtype: Any = None) -> None:
        """Create every parameter from ``initializers[name](shapes[name])`` (the seed's hook),
        and every buffer (``nt_params``) that has an initializer."""
        dtype = backend.get_default_dtype() if dtype is None else dtype
        for name in self.param_names:
            self.params[name] = self.initializers[name](self.shapes[name], dtype)
        for name in self.nt_param_names:
            if name in self.initializers:
                self.nt_params[name] = self.initializers[name](self.shapes[name], dtype)
        self.is_init = True

    def grad_buffer(self, name: str) -> Array:
        """The array ``grads[name]`` to write the gradient of parameter ``name`` into.

        It is the existing array when it has the parameter's shape and dtype (inside a
        :class:`~nnframe.net.Net`, a view of the net's flat gradient buffer), else a
        new zero array stored in ``grads[name]``. Use it as an ``out=`` argument::

            xp.matmul(x.T, grad, out=self.grad_buffer("w"))

        Raises:
            KeyError: when ``name`` is not one of :attr:`param_names`.
            RuntimeError: when the parameter has not been created yet.
        """
        if name not in self.params:
            raise KeyError(f"{self.name}: no parameter {name!r}; parameters: {list(self.param_names)}")
        param = self.params[name]
        if param is None:
            raise RuntimeError(f"{self.name}: parameter {name!r} is not created yet (run forward first)")
        grad = self.grads.get(name)
        if grad is None or grad.shape != param.shape or grad.dtype != param.dtype:
            grad = backend.xp().zeros(param.shape, dtype=param.dtype)  # calloc: untouched until written
            self.grads[name] = grad
        return grad

    _grad_buffer = grad_buffer  # the name nnframe's own layers used first

    def _check_dtype(self, inputs: Array) -> None:
        """Raise :class:`ShapeError` unless ``inputs`` has the dtype of the parameters."""
        param = next((p for p in self.params.values() if p is not None), None)
        if param is not None and inputs.dtype != param.dtype:
            raise ShapeError(f"{self.name}: expected input of dtype {param.dtype}, got {inputs.dtype}")

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as a JSON-serialisable dict (used to rebuild a saved net).

        Layers with hyperparameters override this; a custom layer that does not
        cannot be rebuilt from a checkpoint without its code.
        """
        return {"name": self._name} if self._name else {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuild a layer from :meth:`get_config`'s output (containers override it to
        rebuild their children)."""
        return cls(**config)


class Activation(Layer):
    """An element-wise layer defined by ``forward_func`` and its derivative ``backward_func``.

    Element-wise, so it passes a mask on unchanged (``propagates_mask``).

    ``backward`` returns ``backward_func(inputs) * grad`` (the seed's design).
    Subclasses may override ``backward`` to reuse the output instead of the input.
    """

    propagates_mask: ClassVar[bool] = True

    def compute_output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)  # element-wise

    def forward(self, inputs: Array) -> Array:
        self.ctx = {"X": inputs}
        return self.forward_func(inputs)

    def backward(self, grad: Array) -> Array:
        return self.backward_func(self.ctx["X"]) * grad

    def forward_func(self, inputs: Array) -> Array:
        """The activation ``f(x)``, element-wise."""
        raise NotImplementedError

    def backward_func(self, inputs: Array) -> Array:
        """The derivative ``f'(x)``, element-wise."""
        raise NotImplementedError


def forward_with_mask(layer: Layer, inputs: Any, mask: Any) -> tuple[Any, Any]:
    """Run ``layer.forward`` on the mask route; return ``(output, mask for the next layer)``.

    Containers (``Net``, graphs) call this instead of ``layer.forward`` so that a mask
    made by one layer reaches the layers after it: a layer with ``accepts_mask`` gets it as
    ``forward(inputs, mask=mask)``; one with ``propagates_mask`` passes it on. For a layer
    called on a list of inputs (in a graph), ``mask`` is the list of their masks (``None``
    for an input without one); a list of ``None`` is no mask.

    Raises:
        ShapeError: when a mask reaches a layer that can neither use nor pass it on
            (e.g. ``Flatten`` after ``Embedding(mask_padding=True)``).
    """
    if isinstance(mask, list) and all(m is None for m in mask):
        mask = None
    if mask is not None and not (layer.accepts_mask or layer.propagates_mask):
        raise ShapeError(
            f"{layer.name} cannot take the mask of padded steps made by an earlier layer "
            "(Embedding(mask_padding=True) or Masking); put it after a layer that consumes the mask "
            "(a recurrent layer without return_sequences) or drop mask_padding"
        )
    out = layer.forward(inputs, mask=mask) if layer.accepts_mask else layer.forward(inputs)
    return out, layer.compute_mask(inputs, mask)


def implements_shape_inference(layer: Layer) -> bool:
    """Whether ``layer`` computes its shapes without allocating (overrides ``compute_output_shape``)."""
    return type(layer).compute_output_shape is not Layer.compute_output_shape


def infer_output_shape(layer: Layer, input_shape: tuple[int, ...], dtype: Any = None) -> tuple[int, ...]:
    """Build ``layer``'s shapes for ``input_shape`` and return its output shape.

    A layer that implements the contract (:func:`implements_shape_inference`) is built
    with ``build`` (unless it already is) and asked ``compute_output_shape``: nothing is
    allocated. Any other layer (written the seed's way) is traced: ``forward`` runs once
    on a zero batch of ``input_shape`` in evaluation mode, which allocates its parameters,
    and the output's shape is returned.

    Args:
        dtype: the float dtype of the zero batch a traced layer gets (default: the
            framework default).

    Raises:
        ShapeError: for an input shape the layer cannot take.
    """
    input_shape = as_shape(input_shape)
    if implements_shape_inference(layer):
        if not layer.is_init:
            layer.build(input_shape)
        return as_shape(layer.compute_output_shape(input_shape))
    mode = layer.is_training
    layer.is_training = False
    dtype = backend.get_default_dtype() if dtype is None else dtype

    def zeros(shape: Any) -> Any:
        return backend.xp().zeros(shape, dtype=dtype) if isinstance(shape, tuple) else [zeros(s) for s in shape]

    try:
        out = layer.forward(zeros(input_shape))
    finally:
        layer.is_training = mode
    return as_shape(out.shape if hasattr(out, "shape") else [o.shape for o in out])


def as_shape(shape: Any) -> Any:
    """A shape as a tuple of ints, or a list of such tuples for a layer with several inputs.

    Raises:
        ShapeError: for anything else (quoting it).
    """
    try:
        items = list(shape)
        if all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in items):
            return tuple(int(s) for s in items)
        if items and all(not isinstance(s, numbers.Integral) for s in items):
            return [as_shape(s) for s in items]
    except TypeError:
        pass
    raise ShapeError(f"expected a shape (a sequence of ints) or a list of shapes, got {shape!r}")


def get_layer_class(name: str) -> type[Layer]:
    """Return the registered layer class called ``name`` (every subclass registers itself).

    A class registers under its class name, unless a class of another module holds
    that name already; then under ``"<module>.<qualname>"`` (its ``registry_name``).
    Redefining a class in the same module (a notebook cell run twice) replaces it.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown layer class {name!r}; known: {sorted(_REGISTRY)}")
    return _REGISTRY[name]


def layer_from_config(config: dict[str, Any]) -> Layer:
    """Rebuild a layer from ``{"class": name, "config": {...}}``."""
    cls = get_layer_class(config["class"])
    return cls.from_config(config.get("config", {}))


def layer_to_config(layer: Layer) -> dict[str, Any]:
    """Return ``{"class": name, "config": layer.get_config()}`` for :func:`layer_from_config`."""
    return {"class": type(layer).registry_name, "config": layer.get_config()}


def check_name(owner: str, name: Any) -> None:
    """Raise ``TypeError`` unless a layer's ``name`` is a string or ``None`` (quoting what it got)."""
    if name is not None and not isinstance(name, str):
        raise TypeError(f"{owner}: name must be a string or None, got {name!r}")


def check_rate(owner: str, name: str, value: float, low: float = 0.0, high: float = 1.0) -> float:
    """Validate ``low <= value < high`` and return it as a float (e.g. a dropout rate).

    Raises:
        ValueError: quoting ``owner``, ``name`` and the value, for a value out of range
            or not a real number (a string, ``None``, a bool).
    """
    if isinstance(value, (bool, str, bytes)) or value is None:
        raise ValueError(f"{owner}: {name} must be a number in [{low}, {high}), got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{owner}: {name} must be a number in [{low}, {high}), got {value!r}") from exc
    if not low <= number < high:
        raise ValueError(f"{owner}: {name} must be in [{low}, {high}), got {number}")
    return number
