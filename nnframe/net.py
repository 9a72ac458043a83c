"""``Net``: an ordered list of layers run forward and backward (a :class:`Container`).

A net is a layer: it can stand inside another net, a residual block or a graph, to any
depth. The outermost one packs every parameter of the tree into one flat
:class:`~nnframe.parameter.ParamBuffer` and every gradient into another, after the
first forward pass has built the layers (see :mod:`nnframe.layer.container`); each
layer's ``params[k]`` and ``grads[k]`` become views of them, allocated once. A layer
that rebinds ``params[k]`` or ``grads[k]`` to a new array (as a layer written the
seed's way may) has the new values copied into the buffer and the view restored, so
the buffers always hold the current values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer, forward_with_mask, layer_from_config, layer_to_config
from nnframe.layer.container import Container, add_grads, restore_ctx, save_ctx, snapshot_grads


class Net(Container):
    """Layers applied in order: ``forward`` returns the output, ``backward`` the input gradient.

    Parameter names are ``"<index>.<key>"`` (``"3.w"``), and for a nested container
    ``"<index>.<its dotted name>"`` (``"2.body.0.w"``).

    Args:
        layers: the layers, in order (any of them may be a container). The same layer
            object may appear twice: it then shares its parameters and its gradients add up.
        dtype: the float dtype of parameters and activations (default: the framework
            default when the net is built). Float input of another dtype and
            integer input (e.g. uint8 pixels) are cast to it; the cast never
            changes the parameters.
        name: the layer name (used in summaries and error messages).
    """

    def __init__(self, layers: Sequence[Layer], dtype: Any = None, name: str | None = None) -> None:
        layers = list(layers)
        for index, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"Net: layer {index} must be a nnframe Layer, got {type(layer).__name__}"
                )
        super().__init__(name=name, dtype=dtype)
        self.layers = layers
        self._adopt(layers)
        first_index: dict[int, int] = {}
        for index, layer in enumerate(layers):
            first_index.setdefault(id(layer), index)
        self._children = [(str(i), layers[i]) for i in sorted(first_index.values())]
        counts: dict[int, int] = {}
        for layer in layers:
            counts[id(layer)] = counts.get(id(layer), 0) + 1
        self._in_mask: Array | None = None
        self._out_mask: Array | None = None
        # positions of layers used more than once: their ctx is saved per use
        self._repeated = {i for i, layer in enumerate(layers) if counts[id(layer)] > 1}

    # ----------------------------------------------------------------- the seed's API
    #: a mask of padded steps rides along the layers (see :func:`~nnframe.layer.base.forward_with_mask`)
    accepts_mask = True

    def forward(self, inputs: Array, mask: Array | None = None) -> Array:
        """Run every layer in order and return the output (a mask of padded steps, given or
        made by a layer, rides along, see :func:`~nnframe.layer.base.forward_with_mask`)."""
        self._in_mask = mask
        return super().forward(inputs)

    def backward(self, grad: Array, input_grad: bool | None = None) -> Array | None:
        """Back-propagate ``grad`` (gradient of the loss w.r.t. the output).

        Fills every layer's ``grads`` and returns the gradient w.r.t. the net's
        input, or ``None`` when ``input_grad`` is ``False`` (which lets the first
        layer skip that product). The outermost net computes it unless told otherwise.
        """
        return super().backward(grad, input_grad=input_grad)

    def get_params_and_grads(self) -> Iterator[tuple[Mapping[str, Array], Mapping[str, Array]]]:
        """Yield ``(params, grads)`` for every layer (the seed's API)."""
        for layer in self.layers:
            yield layer.params, layer.grads

    def get_parameters(self) -> list[Mapping[str, Array]]:
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

    # ------------------------------------------------------------ the container hooks
    def sublayers(self) -> list[tuple[str, Layer]]:
        """``("<index>", layer)`` for each distinct layer, at its first position."""
        return self._children

    def run_forward(self, inputs: Array) -> Array:
        """Apply the layers in order."""
        x, mask = inputs, self._in_mask
        if self._repeated:
            self.ctx = {}
        for index, layer in enumerate(self.layers):
            try:
                x, mask = forward_with_mask(layer, x, mask)
            except ShapeError as exc:
                raise ShapeError(f"layer {index} ({layer.name}): {exc}") from None
            if index in self._repeated:
                self.ctx[index] = save_ctx(layer)
        self._out_mask = mask
        return x

    def compute_mask(self, inputs: Array, mask: Array | None) -> Array | None:
        """The mask after the last layer of the last forward pass."""
        return self._out_mask

    def run_backward(self, grad: Array) -> Array | None:
        """Apply the layers' backward in reverse order (uses of a repeated layer summed)."""
        done: set[int] = set()
        for index in reversed(range(len(self.layers))):
            layer = self.layers[index]
            if index not in self._repeated:
                grad = layer.backward(grad)
                continue
            restore_ctx(self.ctx[index])
            earlier = snapshot_grads(layer) if id(layer) in done else None
            grad = layer.backward(grad)
            if earlier is not None:
                add_grads(earlier)
            done.add(id(layer))
        return grad

    def shape_walk(self, input_shape: Any, build: bool) -> list[Any]:
        """Each layer's output shape in order (see :meth:`Container.shape_walk`)."""
        shape, outputs = input_shape, []
        for index, layer in enumerate(self.layers):
            try:
                shape = self.child_shape(layer, shape, build)
            except ShapeError as exc:
                raise ShapeError(f"layer {index} ({layer.name}): {exc}") from None
            outputs.append(shape)
        return outputs if outputs else [input_shape]

    def _set_input_grad(self, value: bool) -> None:
        if self.layers and 0 not in self._repeated:
            self.layers[0].requires_input_grad = value

    def _input_layers(self) -> list[Layer]:
        return self.layers[:1]

    # ---------------------------------------------------------------- configuration
    def get_config(self) -> dict[str, Any]:
        """The architecture as a JSON-serialisable dict (see :meth:`from_config`)."""
        config = {"dtype": str(self.dtype), "layers": [layer_to_config(layer) for layer in self.layers]}
        return {**config, **({"name": self._name} if self._name else {})}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Net:
        """Rebuild an (unbuilt) net from :meth:`get_config`'s output."""
        return cls([layer_from_config(c) for c in config["layers"]], dtype=config.get("dtype"),
                   name=config.get("name"))

    def __repr__(self) -> str:
        lines = [f"  ({i}) {layer!r}".replace("\n", "\n  ") for i, layer in enumerate(self.layers)]
        return "Net(\n" + "\n".join(lines) + "\n)"
