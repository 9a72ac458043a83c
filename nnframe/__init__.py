"""nnframe: a small, readable neural-network framework on NumPy.

The seed's design: layers with ``forward``/``backward``, a ``Net`` of layers, a
loss, an optimizer and a ``Model`` tying them together::

    from nnframe import layer, model, net, loss, optimizer
"""

# blas_env first: importing it sets OpenBLAS's thread timeout before NumPy loads (see nnframe.blas_env)
from nnframe import blas_env, graph, initializer, layer, loss, model, net, optimizer, schedule
from nnframe.backend import get_default_dtype, set_default_dtype
from nnframe.gradcheck import gradcheck, gradcheck_loss
from nnframe.graph import Graph, Input
from nnframe.model import load
from nnframe.random import set_seed
from nnframe.threads import get_num_threads, set_num_threads

__version__ = "0.1.0"

__all__ = [
    "Graph", "Input", "blas_env", "get_default_dtype", "get_num_threads", "graph", "gradcheck", "gradcheck_loss",
    "initializer", "layer", "load", "loss",
    "model", "net", "optimizer", "schedule", "set_default_dtype", "set_num_threads", "set_seed",
]
