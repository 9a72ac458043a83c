"""Layers: the :class:`Layer` contract and one family of layers per module."""

from nnframe.layer.activation import (
    ELU,
    GELU,
    SELU,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softplus,
    Tanh,
)
from nnframe.layer.base import (
    Activation,
    Layer,
    get_layer_class,
    layer_from_config,
    layer_to_config,
)
from nnframe.layer.dense import Dense
from nnframe.layer.dropout import Dropout
from nnframe.layer.reshape import Flatten, Reshape

__all__ = [
    "ELU", "GELU", "SELU", "Activation", "Dense", "Dropout", "Flatten", "Identity",
    "Layer", "LeakyReLU", "ReLU", "Reshape", "SiLU", "Sigmoid", "Softmax", "Softplus",
    "Tanh", "get_layer_class", "layer_from_config", "layer_to_config",
]
