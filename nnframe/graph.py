"""``Graph``: the functional API's container (Keras's functional ``Model``).

::

    x = nnframe.Input(shape=(28, 28, 1))
    h = layer.Conv2D(16, 3, padding="same")(x)
    y = layer.Add()([h, layer.Conv2D(16, 1)(x)])
    g = nnframe.Graph(inputs=x, outputs=layer.Dense(10)(layer.Flatten()(y)))

A graph is data: the nodes (a layer and the tensors it was called on) in topological
order, fixed and validated when the graph is made (a cycle, an input missing from
``inputs``, an unused input or a shape a layer cannot take are refused, naming the
layers). ``forward`` runs the nodes in order; ``backward`` runs them in reverse and sums
each tensor's gradient over the nodes that consumed it. A layer called several times
shares its parameters: each call's ``ctx`` is kept for its backward and the gradients of
all calls add up. Several inputs and outputs are lists (``forward([a, b])`` returns
``[y1, y2]``).

A graph is a :class:`~nnframe.layer.container.Container`: it can be a ``Model``'s net,
stand inside a ``Net`` or another graph, and its parameters are named by the index of
each distinct layer (``"3.w"``, ``"5.body.0.w"``). Its configuration is a list of nodes
``{"class", "config", "inputs"}`` (see :meth:`Graph.get_config`), saved in checkpoints
and accepted in the CLI's JSON spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nnframe import backend
from nnframe.backend import Array
from nnframe.errors import ShapeError
from nnframe.layer.base import Layer, forward_with_mask, layer_from_config, layer_to_config
from nnframe.layer.container import Container, add_grads, restore_ctx, save_ctx, snapshot_grads
from nnframe.layer.symbolic import Input, Node, SymbolicTensor

__all__ = ["Graph", "Input", "SymbolicTensor"]


class GraphError(ValueError):
    """A graph's wiring is invalid (cycle, dangling or unused input, bad reference)."""


def _as_list(value: Any, what: str) -> tuple[list[SymbolicTensor], bool]:
    single = isinstance(value, SymbolicTensor)
    items = [value] if single else list(value) if isinstance(value, (list, tuple)) else None
    if not items or not all(isinstance(t, SymbolicTensor) for t in items):
        raise TypeError(f"Graph: {what} must be a symbolic tensor or a non-empty list of them, got {value!r}")
    return items, single


def _toposort(outputs: list[SymbolicTensor]) -> list[Node]:
    """The nodes the outputs depend on, each after the nodes it reads (depth first, inputs in order).

    Raises:
        GraphError: naming the layers of a cycle.
    """
    order: list[Node] = []
    state: dict[int, int] = {}  # 1 visiting, 2 done
    path: list[Node] = []

    def visit(node: Node) -> None:
        mark = state.get(id(node))
        if mark == 2:
            return
        if mark == 1:
            cycle = path[path.index(node):] + [node]
            raise GraphError("Graph: the wiring has a cycle: " + " -> ".join(n.describe() for n in cycle))
        state[id(node)] = 1
        path.append(node)
        for tensor in node.inputs:
            visit(tensor.node)
        path.pop()
        state[id(node)] = 2
        order.append(node)

    for tensor in outputs:
        visit(tensor.node)
    return order


class Graph(Container):
    """A directed acyclic graph of layers from :func:`Input` tensors to output tensors.

    Args:
        inputs: an :func:`Input` tensor, or a list of them (then ``forward`` takes a list).
        outputs: a symbolic tensor, or a list of them (then ``forward`` returns a list).
        name: the layer name.
        dtype: the float dtype of parameters and activations (default: the framework default).

    Raises:
        TypeError: when inputs/outputs are not symbolic tensors.
        GraphError: for an input that is not an ``Input``, listed twice or unused, an
            output that depends on an ``Input`` missing from ``inputs``, duplicate input
            names, or a cycle — naming the layers involved.
    """

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(name=name, dtype=dtype)
        self.inputs, self._single_input = _as_list(inputs, "inputs")
        self.outputs, self._single_output = _as_list(outputs, "outputs")
        self._check_inputs()
        nodes = [n for n in _toposort(self.outputs) if n.layer is not None]
        self._check_reached(nodes)
        self.nodes = nodes
        self.layers: list[Layer] = []
        for node in nodes:
            if not any(node.layer is seen for seen in self.layers):
                self.layers.append(node.layer)
        self._adopt(self.layers)
        self._children = [(str(i), lay) for i, lay in enumerate(self.layers)]
        self._compile()
        self.input_shape = self._declared_shape()
        self._in_masks: list[Any] | None = None  # the masks given to forward, for run_forward
        self._out_masks: list[Any] | None = None  # the outputs' masks after the last forward

    # ---------------------------------------------------------------- validation
    def _check_inputs(self) -> None:
        for position, tensor in enumerate(self.inputs):
            if not tensor.is_input:
                raise GraphError(f"Graph: inputs[{position}] must be an Input(...) tensor, got the "
                                 f"{tensor.describe()}")
        if len({id(t) for t in self.inputs}) != len(self.inputs):
            raise GraphError("Graph: the same Input is listed twice in inputs")
        names = [t.name or f"input_{k}" for k, t in enumerate(self.inputs)]
        if len(set(names)) != len(names):
            raise GraphError(f"Graph: input names must be unique, got {names}")
        self.input_names = names

    def _check_reached(self, nodes: list[Node]) -> None:
        listed = {id(t.node) for t in self.inputs}
        for node in nodes:
            for tensor in node.inputs:
                if tensor.is_input and id(tensor.node) not in listed:
                    raise GraphError(f"Graph: {node.describe()} reads an Input of shape {(None, *tensor.shape)} "
                                     f"({tensor.name or 'unnamed'}) that is not in the graph's inputs; add it "
                                     "to inputs=[...]")
        for tensor in self.outputs:
            if tensor.is_input and id(tensor.node) not in listed:
                raise GraphError("Graph: an output is an Input that is not in the graph's inputs")
        used = {id(t.node) for node in nodes for t in node.inputs} | {id(t.node) for t in self.outputs}
        for name, tensor in zip(self.input_names, self.inputs, strict=True):
            if id(tensor.node) not in used:
                raise GraphError(f"Graph: input {name!r} {(None, *tensor.shape)} is not used by any output "
                                 "(a dangling input); drop it or connect it")

    def _compile(self) -> None:
        """Number every tensor (a slot) and turn each node into ``(layer, in_slots, out_slots, ...)``."""
        slots: dict[int, int] = {id(t): k for k, t in enumerate(self.inputs)}
        compiled = []
        counts: dict[int, int] = {}
        for node in self.nodes:
            counts[id(node.layer)] = counts.get(id(node.layer), 0) + 1
        for node in self.nodes:
            in_slots = [slots[id(t)] for t in node.inputs]
            out_slots = []
            for tensor in node.outputs:
                slots[id(tensor)] = len(slots)
                out_slots.append(slots[id(tensor)])
            compiled.append((node.layer, in_slots, out_slots, node.multi_in, node.multi_out,
                             counts[id(node.layer)] > 1))
        self._steps = compiled
        self._num_slots = len(slots)
        self._output_slots = [slots[id(t)] for t in self.outputs]
        self._input_slots = list(range(len(self.inputs)))
        # layers that read only graph inputs and are called once may skip their input gradient
        self._input_readers = [layer for layer, ins, _, _, _, repeated in compiled
                               if not repeated and all(s < len(self.inputs) for s in ins)]

    def _declared_shape(self) -> Any:
        shapes = [t.shape for t in self.inputs]
        return shapes[0] if self._single_input else shapes

    # ------------------------------------------------------------ container hooks
    def sublayers(self) -> list[tuple[str, Layer]]:
        """``("<index>", layer)`` for each distinct layer, in the order of its first call."""
        return self._children

    #: masks of padded steps ride along the nodes (see :meth:`run_forward`)
    accepts_mask = True

    def forward(self, inputs: Any, mask: Any = None) -> Any:
        """Run the nodes and return the output(s); ``mask`` is the input's mask of padded steps
        (``(N, T)`` bool, ``True`` = a real step; a list, one per input, for several inputs),
        as a :class:`~nnframe.net.Net` before the graph passes it."""
        self._in_masks = [mask] if self._single_input else (list(mask) if mask is not None else None)
        return super().forward(inputs)

    def run_forward(self, inputs: Any) -> Any:
        """Run the nodes in topological order.

        A mask of padded steps rides along, as in a :class:`~nnframe.net.Net`
        (:func:`~nnframe.layer.base.forward_with_mask`): made by a layer
        (``Embedding(mask_padding=True)``) or given to :meth:`forward`, it reaches every
        layer downstream; a layer of several inputs gets the list of their masks (merges
        combine them, attention uses the key's).
        """
        xs = self._check_arrays(inputs)
        values: list[Any] = [None] * self._num_slots
        values[: len(xs)] = xs
        masks: list[Any] = [None] * self._num_slots
        given, self._in_masks = self._in_masks, None
        if given is not None:
            if len(given) != len(xs):
                raise ShapeError(f"{self.name}: expected {len(xs)} masks (one per input), got {len(given)}")
            masks[: len(xs)] = given
        uses: dict[int, Any] = {}
        out_like: dict[int, list[tuple[tuple[int, ...], Any]]] = {}
        self.ctx = {"uses": uses, "out_like": out_like}  # a fresh dict: a shared graph's uses keep theirs
        for index, (layer, ins, outs, multi_in, multi_out, repeated) in enumerate(self._steps):
            args = [values[s] for s in ins] if multi_in else values[ins[0]]
            mask = [masks[s] for s in ins] if multi_in else masks[ins[0]]
            try:
                out, mask = forward_with_mask(layer, args, mask)
            except ShapeError as exc:
                raise ShapeError(f"{self.name} node {index} ({layer.name}): {exc}") from None
            if repeated:
                uses[index] = save_ctx(layer)
            if multi_out:
                out_like[index] = [(o.shape, o.dtype) for o in out]
                # a list gives each output its mask; one mask belongs to the first output (the sequence)
                out_masks = mask if isinstance(mask, list) else [mask] + [None] * (len(out) - 1)
                for slot, value, m in zip(outs, out, out_masks, strict=True):
                    values[slot], masks[slot] = value, m
            else:
                values[outs[0]], masks[outs[0]] = out, mask
        self._out_masks = [masks[s] for s in self._output_slots]
        results = [values[s] for s in self._output_slots]
        return results[0] if self._single_output else results

    def compute_mask(self, inputs: Any, mask: Any) -> Any:
        """The output's mask of padded steps after the last forward pass (a list for several outputs)."""
        if self._out_masks is None:
            return None
        return self._out_masks[0] if self._single_output else list(self._out_masks)

    def run_backward(self, grad: Any) -> Any:
        """Run the nodes' backward in reverse, summing each tensor's gradient over its consumers."""
        xp = backend.xp()
        grads_in = [grad] if self._single_output else list(grad)
        if len(grads_in) != len(self._output_slots):
            raise ShapeError(f"{self.name}: backward expects {len(self._output_slots)} output gradients, "
                             f"got {len(grads_in)}")
        grads: list[Any] = [None] * self._num_slots
        for slot, g in zip(self._output_slots, grads_in, strict=True):
            grads[slot] = g if grads[slot] is None else grads[slot] + g
        done: set[int] = set()
        for index in reversed(range(len(self._steps))):
            layer, ins, outs, multi_in, multi_out, repeated = self._steps[index]
            upstream = [grads[s] for s in outs]
            if all(g is None for g in upstream):
                continue  # an output of a multi-output node that nothing consumed
            if multi_out:  # outputs nothing consumed get a zero gradient
                like = self.ctx["out_like"][index]
                upstream = [g if g is not None else xp.zeros(*like[k]) for k, g in enumerate(upstream)]
            g_out = upstream if multi_out else upstream[0]
            if repeated:
                restore_ctx(self.ctx["uses"][index])
            earlier = snapshot_grads(layer) if repeated and id(layer) in done else None
            dx = layer.backward(g_out)
            if earlier is not None:
                add_grads(earlier)
            done.add(id(layer))
            if dx is None:
                continue
            for slot, d in zip(ins, dx if multi_in else [dx], strict=True):
                if d is not None:
                    grads[slot] = d if grads[slot] is None else grads[slot] + d
        if not self.requires_input_grad:
            return None
        dxs = [grads[s] for s in self._input_slots]
        return dxs[0] if self._single_input else dxs

    def _set_input_grad(self, value: bool) -> None:
        for layer in self._input_readers:
            layer.requires_input_grad = value

    def _input_layers(self) -> list[Layer]:
        return [layer for layer, ins, *_ in self._steps if any(s < len(self.inputs) for s in ins)]

    @property
    def accepts_integer_input(self) -> bool:  # type: ignore[override]
        """``True`` when every input is declared with an integer dtype (token ids)."""
        return all(t.dtype.kind in "iu" for t in self.inputs)

    def _cast_input(self, inputs: Any) -> Any:
        """Cast each input to its declared dtype (floats to the graph's dtype, ids kept integer)."""
        items = [inputs] if self._single_input else inputs
        if not self._single_input and not isinstance(inputs, (list, tuple)):
            raise ShapeError(f"{self.name}: expected a list of {len(self.inputs)} arrays ({self.input_names}), "
                             f"got {type(inputs).__name__}")
        xp = backend.xp()
        cast = []
        for name, tensor, item in zip(self.input_names, self.inputs, items, strict=False):
            array = xp.asarray(item)
            if tensor.dtype.kind in "iu":
                if array.dtype.kind not in "iu":
                    raise ShapeError(f"{self.name}: input {name!r} takes integer ids ({tensor.dtype}), got "
                                     f"dtype {array.dtype}")
            elif array.dtype.kind in "fub":
                array = array.astype(self.dtype, copy=False)
            else:
                raise ShapeError(f"{self.name}: input {name!r} expects float or unsigned-integer input, got "
                                 f"dtype {array.dtype}")
            cast.append(array)
        return cast[0] if self._single_input else cast

    def _check_arrays(self, inputs: Any) -> list[Array]:
        xs = [inputs] if self._single_input else list(inputs)
        if len(xs) != len(self.inputs):
            raise ShapeError(f"{self.name}: expected {len(self.inputs)} inputs ({self.input_names}), got {len(xs)}")
        for name, tensor, x in zip(self.input_names, self.inputs, xs, strict=True):
            if tuple(x.shape[1:]) != tensor.shape:
                raise ShapeError(f"{self.name}: input {name!r} expects shape {(None, *tensor.shape)}, "
                                 f"got {tuple(x.shape)}")
        return xs

    # ------------------------------------------------------------- shape inference
    def shape_walk(self, input_shape: Any, build: bool) -> list[Any]:
        """Each node's output shape(s) in order, the graph's output last (see :meth:`Container.shape_walk`)."""
        given = [input_shape] if self._single_input else list(input_shape)
        if len(given) != len(self.inputs):
            raise ShapeError(f"{self.name}: expected {len(self.inputs)} input shapes, got {input_shape!r}")
        shapes: list[Any] = [None] * self._num_slots
        for k, (name, tensor, shape) in enumerate(zip(self.input_names, self.inputs, given, strict=True)):
            if tuple(shape[1:]) != tensor.shape:
                raise ShapeError(f"{self.name}: input {name!r} expects shape {(None, *tensor.shape)}, got {shape}")
            shapes[k] = tuple(shape)
        walk = []
        for index, (layer, ins, outs, multi_in, multi_out, _) in enumerate(self._steps):
            arg = [shapes[s] for s in ins] if multi_in else shapes[ins[0]]
            try:
                out = self.child_shape(layer, arg, build)
            except ShapeError as exc:
                raise ShapeError(f"{self.name} node {index} ({layer.name}): {exc}") from None
            for slot, shape in zip(outs, out if multi_out else [out], strict=True):
                shapes[slot] = shape
            walk.append(out)
        results = [shapes[s] for s in self._output_slots]
        walk.append(results[0] if self._single_output else results)
        return walk

    # --------------------------------------------------------------- configuration
    def get_config(self) -> dict[str, Any]:
        """The wiring as JSON: inputs, a list of ``{"class", "config", "inputs"}`` nodes, outputs.

        ``inputs`` of a node are references: an input's name (``"image"``), a node's index
        (its only output, ``3``) or ``{"node": 3, "output": 1}`` (output 1 of a node with
        several); a list of them for a layer called on a list. A layer called again (shared)
        is written ``{"layer": <index of the node that first called it>, "inputs": ...}``.
        """
        position = {id(node): k for k, node in enumerate(self.nodes)}
        first_node: dict[int, int] = {}

        def ref(tensor: SymbolicTensor) -> Any:
            if tensor.is_input:
                return self.input_names[next(k for k, t in enumerate(self.inputs) if t is tensor)]
            index = position[id(tensor.node)]
            return {"node": index, "output": tensor.index} if tensor.node.multi_out else index

        nodes = []
        for k, node in enumerate(self.nodes):
            refs = [ref(t) for t in node.inputs]
            wired = refs if node.multi_in else refs[0]
            if id(node.layer) in first_node:
                nodes.append({"layer": first_node[id(node.layer)], "inputs": wired})
            else:
                first_node[id(node.layer)] = k
                nodes.append({**layer_to_config(node.layer), "inputs": wired})
        inputs = [{"name": n, "shape": list(t.shape), "dtype": str(t.dtype)}
                  for n, t in zip(self.input_names, self.inputs, strict=True)]
        outputs = [ref(t) for t in self.outputs]
        config: dict[str, Any] = {
            "dtype": str(self.dtype),
            "inputs": inputs[0] if self._single_input else inputs,
            "nodes": nodes,
            "outputs": outputs[0] if self._single_output else outputs,
        }
        return {**config, **({"name": self._name} if self._name else {})}

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Graph:
        """Rebuild an (unbuilt) graph from :meth:`get_config`'s output or a hand-written spec.

        In a spec, a node may carry a ``"name"`` (the layer's name) and be referred to by it
        (``"conv1"``, or ``"lstm:1"`` for output 1); nodes may come in any order.

        Raises:
            GraphError: for a bad reference or a cycle (naming the nodes), or a malformed config.
            ShapeError: when a layer cannot take the shapes it is wired to.
        """
        return _GraphSpec(config).build(cls)


class _GraphSpec:
    """Reads a graph config: resolves references, orders the nodes, calls the layers symbolically."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        if not isinstance(config, Mapping):
            raise GraphError(f"Graph config must be an object, got {type(config).__name__}")
        for key in ("inputs", "nodes", "outputs"):
            if key not in config:
                raise GraphError(f"Graph config needs {key!r} (found {sorted(config)})")
        self.config = config
        raw_inputs = config["inputs"]
        self.single_input = isinstance(raw_inputs, Mapping)
        self.input_specs = [raw_inputs] if self.single_input else list(raw_inputs)
        self.nodes = list(config["nodes"])
        if not all(isinstance(n, Mapping) for n in self.nodes):
            raise GraphError("Graph config: every node must be an object")
        self.names: dict[str, int] = {}
        for k, node in enumerate(self.nodes):
            name = node.get("name") or (node.get("config") or {}).get("name")
            if isinstance(name, str):
                if name in self.names:
                    raise GraphError(f"Graph config: two nodes are named {name!r}")
                self.names[name] = k

    def _describe(self, k: int) -> str:
        node = self.nodes[k]
        label = node.get("class") or f"layer of node {node.get('layer')}"
        name = node.get("name") or (node.get("config") or {}).get("name")
        return f"node {k} ({name}: {label})" if name else f"node {k} ({label})"

    def _parse_ref(self, ref: Any, where: str, input_names: list[str]) -> tuple[str, Any, int]:
        """``("input", name, 0)`` or ``("node", index, output)``."""
        if isinstance(ref, bool):
            raise GraphError(f"Graph config: {where}: bad reference {ref!r}")
        if isinstance(ref, int):
            if not 0 <= ref < len(self.nodes):
                raise GraphError(f"Graph config: {where} refers to node {ref}, but there are {len(self.nodes)} nodes")
            return ("node", ref, 0)
        if isinstance(ref, Mapping) and set(ref) == {"node", "output"}:
            node, output = self._parse_ref(ref["node"], where, input_names)[1], ref["output"]
            if isinstance(output, bool) or not isinstance(output, int) or output < 0:
                raise GraphError(f"Graph config: {where}: bad output index {output!r}")
            return ("node", node, output)
        if isinstance(ref, str):
            if ref in input_names:
                return ("input", ref, 0)
            name, _, output = ref.rpartition(":") if ":" in ref else (ref, "", "0")
            if name in self.names and output.isdigit():
                return ("node", self.names[name], int(output))
            raise GraphError(f"Graph config: {where} refers to {ref!r}, which is neither an input "
                             f"({input_names}) nor a named node ({sorted(self.names)})")
        raise GraphError(f"Graph config: {where}: a reference is an input name, a node index, a node name "
                         f"or {{'node': i, 'output': k}}, got {ref!r}")

    def _order(self, deps: list[list[int]]) -> list[int]:
        order: list[int] = []
        state: dict[int, int] = {}
        path: list[int] = []

        def visit(k: int) -> None:
            if state.get(k) == 2:
                return
            if state.get(k) == 1:
                cycle = path[path.index(k):] + [k]
                chain = " -> ".join(self._describe(i) for i in cycle)
                raise GraphError(f"Graph config: the wiring has a cycle: {chain}")
            state[k] = 1
            path.append(k)
            for d in deps[k]:
                visit(d)
            path.pop()
            state[k] = 2
            order.append(k)

        for k in range(len(deps)):
            visit(k)
        return order

    def build(self, cls: type[Graph]) -> Graph:
        tensors = []
        for k, spec in enumerate(self.input_specs):
            if not isinstance(spec, Mapping) or "shape" not in spec:
                raise GraphError(f"Graph config: input {k} must be an object with a shape, got {spec!r}")
            tensors.append(Input(spec["shape"], dtype=spec.get("dtype"), name=spec.get("name") or f"input_{k}"))
        input_names = [t.name for t in tensors]
        wired, deps, shared = [], [], []
        for k, node in enumerate(self.nodes):
            if "inputs" not in node:
                raise GraphError(f"Graph config: {self._describe(k)} has no 'inputs'")
            raw = node["inputs"]
            multi = isinstance(raw, list)
            refs = [self._parse_ref(r, self._describe(k), input_names) for r in (raw if multi else [raw])]
            wired.append((refs, multi))
            node_deps = [r[1] for r in refs if r[0] == "node"]
            if "layer" in node:
                owner = self._parse_ref(node["layer"], self._describe(k), [])[1]
                if "class" in self.nodes[owner]:
                    node_deps.append(owner)  # created there first
                else:
                    raise GraphError(f"Graph config: {self._describe(k)} shares the layer of node {owner}, "
                                     "which has no class of its own")
                shared.append(owner)
            elif "class" in node:
                shared.append(None)
            else:
                raise GraphError(f"Graph config: {self._describe(k)} needs a 'class' (a new layer) or a "
                                 "'layer' (the node whose layer it calls again)")
            deps.append(node_deps)
        order = self._order(deps)
        layers: dict[int, Layer] = {}
        outputs: dict[int, Any] = {}
        by_name = dict(zip(input_names, tensors, strict=True))

        def tensor_of(ref: tuple[str, Any, int], where: str) -> SymbolicTensor:
            if ref[0] == "input":
                return by_name[ref[1]]
            produced = outputs[ref[1]]
            many = isinstance(produced, list)
            if (many and ref[2] >= len(produced)) or (not many and ref[2] != 0):
                count = len(produced) if many else 1
                raise GraphError(f"Graph config: {where} asks for output {ref[2]} of {self._describe(ref[1])}, "
                                 f"which has {count}")
            return produced[ref[2]] if many else produced

        for k in order:
            node = self.nodes[k]
            if shared[k] is None:
                try:
                    layers[k] = layer_from_config({"class": node["class"], "config": node.get("config", {})})
                except (TypeError, ValueError) as exc:
                    raise GraphError(f"Graph config: cannot build {self._describe(k)}: {exc}") from None
            else:
                layers[k] = layers[shared[k]]
            refs, multi = wired[k]
            args = [tensor_of(r, self._describe(k)) for r in refs]
            outputs[k] = layers[k](args if multi else args[0])
        raw_out = self.config["outputs"]
        multi_out = isinstance(raw_out, list)
        out_refs = [self._parse_ref(r, "outputs", input_names) for r in (raw_out if multi_out else [raw_out])]
        outs = [tensor_of(r, "outputs") for r in out_refs]
        return cls(tensors[0] if self.single_input else tensors, outs if multi_out else outs[0],
                   name=self.config.get("name"), dtype=self.config.get("dtype"))

