"""``Net``: an ordered list of layers run forward and backward.

After the first forward pass has built every layer, the net packs all trainable
parameters into one :class:`~nnframe.parameter.ParamBuffer` and all gradients into
another: each layer's ``params[k]`` and ``grads[k]`` become views of them, allocated
once. A layer that rebinds ``params[k]`` or ``grads[k]`` to a new array (as a layer
written the seed's way may) has the new values copied into the buffer and the view
restored, so the buffers always hold the current values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nnframe import backend
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer, forward_with_mask, infer_output_shape, layer_from_config, layer_to_config
from nnframe.parameter import ParamBuffer, ParamLayout


class Net:
    """Layers applied in order: ``forward`` returns the output, ``backward`` the input gradient.

    Args:
        layers: the layers, in order.
        dtype: the float dtype of parameters and activations (default: the framework
            default when the net is built). Float input of another dtype and
            unsigned-integer input (e.g. uint8 pixels) are cast to it; the cast never
            changes the parameters.
    """

    def __init__(self, layers: Sequence[Layer], dtype: Any = None) -> None:
        layers = list(layers)
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"Net: layer {index} must be a nnframe Layer, got {type(layer).__name__}"
                )
        self.layers = layers
        self.dtype = backend.get_default_dtype() if dtype is None else backend.as_float_dtype(dtype)
        self._params: ParamBuffer | None = None
        self._grads: ParamBuffer | None = None
        # (layer, key, its view in the flat params, its view in the flat grads)
        self._bindings: list[tuple[Layer, str, Array, Array]] = []
        self.input_shape: tuple[int, ...] | None = None  # per-sample shape of the last input (checkpoints)

    # ----------------------------------------------------------------- the seed's API
    def forward(self, inputs: Array) -> Array:
        """Run every layer in order and return the output (a mask of padded steps rides along,
        see :func:`~nnframe.layer.base.forward_with_mask`)."""
        x = self._cast_input(inputs)
        self.input_shape = tuple(int(s) for s in x.shape[1:])
        mask = None
        for index, layer in enumerate(self.layers):
            try:
                x, mask = forward_with_mask(layer, x, mask)
            except ShapeError as exc:
                raise ShapeError(f"layer {index} ({layer.name}): {exc}") from None
        if self._params is None or not self._all_built():
            self._pack()
        else:
            self._sync("params")
        return x

    def backward(self, grad: Array, input_grad: bool = True) -> Array | None:
        """Back-propagate ``grad`` (gradient of the loss w.r.t. the output).

        Fills every layer's ``grads`` and returns the gradient w.r.t. the net's
        input, or ``None`` when ``input_grad`` is ``False`` (which lets the first
        layer skip that product).
        """
        if self._grads is None:
            raise RuntimeError("Net.backward called before forward: run forward first")
        if self.layers:
            self.layers[0].requires_input_grad = input_grad
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        self._sync("grads")
        return grad

    def get_params_and_grads(self) -> Iterator[tuple[dict[str, Array], dict[str, Array]]]:
        """Yield ``(params, grads)`` for every layer (the seed's API)."""
        for layer in self.layers:
            yield layer.params, layer.grads

    def get_parameters(self) -> list[dict[str, Array]]:
        """Each layer's ``params`` dict, in order (the seed's API)."""
        return [layer.params for layer in self.layers]

    def set_parameters(self, params: Sequence[Mapping[str, Array]]) -> None:
        """Copy a list of per-layer dicts (as from :meth:`get_parameters`) into the layers.

        Raises:
            ValueError: on a different number of layers, a missing or unknown
                key, or a shape mismatch (all problems reported together).
        """
        if len(params) != len(self.layers):
            raise ValueError(f"set_parameters: expected {len(self.layers)} dicts, got {len(params)}")
        flat = {
            f"{i}.{k}": v for i, layer_params in enumerate(params) for k, v in layer_params.items()
        }
        self.load_state_dict(flat, strict=False)

    # ---------------------------------------------------------------- modes and state
    @property
    def is_training(self) -> bool:
        """Whether the layers are in training mode."""
        return all(layer.is_training for layer in self.layers)

    @is_training.setter
    def is_training(self, value: bool) -> None:
        for layer in self.layers:
            layer.is_training = value

    def train(self) -> Net:
        """Put every layer in training mode; returns the net."""
        self.is_training = True
        return self

    def eval(self) -> Net:
        """Put every layer in evaluation mode; returns the net."""
        self.is_training = False
        return self

    @property
    def is_built(self) -> bool:
        """Whether a forward pass has created the parameters of every layer."""
        return self._params is not None and self._all_built()

    @property
    def params(self) -> ParamBuffer:
        """All trainable parameters as one flat buffer with named views (``"0.w"``)."""
        if self._params is None:
            raise RuntimeError("the net has no parameters yet: run forward on a batch first")
        return self._params

    @property
    def grads(self) -> ParamBuffer:
        """All gradients, laid out like :attr:`params`."""
        if self._grads is None:
            raise RuntimeError("the net has no gradients yet: run forward on a batch first")
        return self._grads

    @property
    def num_params(self) -> int:
        """Number of trainable values."""
        return sum(layer.num_params for layer in self.layers)

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and non-trainable array by dotted name, as host copies."""
        state = {
            f"{i}.{k}": backend.to_host(v).copy()
            for i, layer in enumerate(self.layers)
            for k, v in layer.params.items()
            if v is not None
        }
        state.update({k: backend.to_host(v).copy() for k, v in self._nt_state().items()})
        return state

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> None:
        """Copy arrays by dotted name into the layers, checking names, shapes and dtypes.

        Args:
            state: ``{"3.w": array, "5.running_mean": array, ...}``.
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

    def get_config(self) -> dict[str, Any]:
        """The architecture as a JSON-serialisable dict (see :meth:`from_config`)."""
        return {"dtype": str(self.dtype), "layers": [layer_to_config(layer) for layer in self.layers]}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Net:
        """Rebuild an (unbuilt) net from :meth:`get_config`'s output."""
        return cls([layer_from_config(c) for c in config["layers"]], dtype=config.get("dtype"))

    def infer_shapes(self, input_shape: Sequence[int]) -> tuple[list[tuple[int, ...]], dict[str, tuple[int, ...]]]:
        """Every layer's output shape and every parameter's and buffer's shape, allocating nothing.

        Each layer is built for its input's shape (:func:`~nnframe.layer.base.infer_output_shape`;
        a layer without shape inference is traced instead, which allocates its parameters).

        Args:
            input_shape: the batch shape, batch axis first, e.g. ``(1, 28, 28, 1)``.

        Returns:
            ``(outputs, states)``: the output shape of each layer in order, and
            ``{"3.w": shape, "5.running_mean": shape, ...}`` (the names of :meth:`state_dict`).

        Raises:
            ShapeError: naming the first layer that cannot take its input.
        """
        shape = tuple(int(s) for s in input_shape)
        outputs, states = [], {}
        for index, layer in enumerate(self.layers):
            try:
                shape = infer_output_shape(layer, shape, self.dtype)
                states.update({f"{index}.{k}": v for k, v in layer.state_shapes().items()})
            except ShapeError as exc:
                raise ShapeError(f"layer {index} ({layer.name}): {exc}") from None
            outputs.append(shape)
        return outputs, states

    def build(self, input_shape: Sequence[int]) -> Net:
        """Create every parameter by running a zero batch of ``input_shape`` (batch axis included)."""
        mode = self.is_training
        self.eval()
        try:
            first = self.layers[0] if self.layers else None
            ids = first is not None and first.accepts_integer_input  # an Embedding takes id 0, not 0.0
            self.forward(backend.xp().zeros(tuple(input_shape), dtype=np.int64 if ids else self.dtype))
        finally:
            self.is_training = mode
        self.reset_states()  # the zero batch must not become a stateful layer's carried state
        return self

    def reset_states(self) -> None:
        """Call ``reset_states()`` on every layer that has one (stateful recurrent layers)."""
        for layer in self.layers:
            reset = getattr(layer, "reset_states", None)
            if callable(reset):
                reset()

    def __repr__(self) -> str:
        lines = [f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers)]
        return "Net(\n" + "\n".join(lines) + "\n)"

    # --------------------------------------------------------------------- internals
    def _cast_input(self, inputs: Array) -> Array:
        xp = backend.xp()
        inputs = xp.asarray(inputs)
        kind = inputs.dtype.kind
        first = self.layers[0] if self.layers else None
        if kind in "iu" and first is not None and first.accepts_integer_input:
            return inputs
        if kind in "fub" and inputs.dtype != self.dtype:
            return inputs.astype(self.dtype)
        if kind not in "fub":
            raise ShapeError(f"Net: expected float or unsigned-integer input, got dtype {inputs.dtype}")
        return inputs

    def _all_built(self) -> bool:
        return all(v is not None for layer in self.layers for v in layer.params.values())

    def _nt_state(self) -> dict[str, Array]:
        return {
            f"{i}.{k}": v
            for i, layer in enumerate(self.layers)
            for k, v in layer.nt_params.items()
            if v is not None
        }

    def _named_arrays(self) -> dict[str, Array]:
        named = {
            f"{i}.{k}": v
            for i, layer in enumerate(self.layers)
            for k, v in layer.params.items()
            if v is not None
        }
        named.update(self._nt_state())
        return named

    def _pack(self) -> None:
        """Move every built parameter (and its gradient) into flat buffers of views."""
        layout = ParamLayout.from_layers([layer.params for layer in self.layers])
        if self._params is not None and layout == self._params.layout:
            return
        params = ParamBuffer(layout)
        grads = ParamBuffer(layout)
        self._bindings = []
        for index, layer in enumerate(self.layers):
            for key, value in layer.params.items():
                if value is None:
                    continue
                name = f"{index}.{key}"
                params[name][...] = value
                old_grad = layer.grads.get(key)
                if old_grad is not None and old_grad.shape == value.shape:
                    grads[name][...] = old_grad
                layer.params[key] = params[name]
                layer.grads[key] = grads[name]
                self._bindings.append((layer, key, params[name], grads[name]))
        self._params, self._grads = params, grads

    def _sync(self, which: str) -> None:
        """Copy any array a layer rebound in its ``params`` or ``grads`` (``which``) into the
        flat buffer, and restore the view (runs every step, so the views are kept at hand)."""
        for layer, key, param_view, grad_view in self._bindings:
            arrays = layer.params if which == "params" else layer.grads
            view = param_view if which == "params" else grad_view
            current = arrays.get(key)
            if current is not view:
                if current is None or tuple(current.shape) != tuple(view.shape):
                    raise ShapeError(
                        f"{layer.name}: {key!r} must keep shape {tuple(view.shape)}, got "
                        f"{None if current is None else tuple(current.shape)}"
                    )
                view[...] = current
                arrays[key] = view
