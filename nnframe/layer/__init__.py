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
from nnframe.layer.attention import MultiHeadAttention
from nnframe.layer.base import (
    Activation,
    Layer,
    forward_with_mask,
    get_layer_class,
    layer_from_config,
    layer_to_config,
)
from nnframe.layer.container import Container
from nnframe.layer.conv import Conv1D, Conv2D, Conv2DTranspose
from nnframe.layer.dense import Dense
from nnframe.layer.dropout import Dropout, Dropout2D
from nnframe.layer.embedding import Embedding, Masking
from nnframe.layer.merge import Add, Concatenate, Multiply, Residual
from nnframe.layer.norm import BatchNorm, LayerNorm
from nnframe.layer.pool import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from nnframe.layer.position import PositionalEmbedding, SinusoidalPositionalEncoding
from nnframe.layer.recurrent import GRU, LSTM, RNN
from nnframe.layer.reshape import Flatten, Reshape, ZeroPad2D
from nnframe.layer.transformer import TransformerDecoderBlock, TransformerEncoderBlock

__all__ = [
    "AvgPool2D", "BatchNorm", "Conv1D", "Conv2D", "Conv2DTranspose", "Dropout2D", "GlobalAvgPool2D",
    "LayerNorm", "MaxPool2D", "ZeroPad2D",
    "MultiHeadAttention", "PositionalEmbedding", "SinusoidalPositionalEncoding",
    "TransformerDecoderBlock", "TransformerEncoderBlock",
    "ELU", "GELU", "SELU", "Activation", "Dense", "Dropout", "Flatten", "Identity",
    "Layer", "LeakyReLU", "ReLU", "Reshape", "SiLU", "Sigmoid", "Softmax", "Softplus",
    "Tanh", "get_layer_class", "layer_from_config", "layer_to_config",
    "Embedding", "Masking", "forward_with_mask", "RNN", "LSTM", "GRU",
    "Add", "Concatenate", "Container", "Multiply", "Residual",
]
