"""Conformance cases of the convolution, pooling, normalization and image-shaping layers.

Collected into ``layer_cases.ALL_CASES``; inputs are kept tiny so that every finite-
difference check runs in well under a second. Awkward geometry on purpose: one channel,
non-square kernels and strides, padding that does not divide evenly, stride larger than
the kernel, batch of one, dilation, groups (incl. depthwise), asymmetric "same" padding.
"""

from __future__ import annotations

import numpy as np
from layer_cases import Case

from nnframe import backend, layer


def _warmed_up_eval(make, input_shape):
    """A layer that has seen one training batch (non-trivial running statistics), in eval mode."""

    def build():
        norm = make()
        rng = np.random.default_rng(7)
        norm.forward(rng.normal(0.5, 2.0, size=input_shape).astype(backend.get_default_dtype()))
        norm.is_training = False
        return norm

    return build


CONV_CASES = [
    # ------------------------------------------------------------------ Conv2D
    Case("Conv2D", lambda: layer.Conv2D(3, 3), (2, 5, 5, 2), output_shape=(2, 3, 3, 3)),
    Case("Conv2D-one-channel", lambda: layer.Conv2D(2, 2), (2, 4, 4, 1), output_shape=(2, 3, 3, 2)),
    Case("Conv2D-nonsquare-kernel-stride", lambda: layer.Conv2D(2, (3, 2), stride=(2, 1)), (2, 6, 5, 2),
         output_shape=(2, 2, 4, 2)),
    Case("Conv2D-padding-uneven", lambda: layer.Conv2D(2, 3, stride=2, padding=1), (2, 6, 6, 2),
         output_shape=(2, 3, 3, 2)),
    Case("Conv2D-stride-gt-kernel", lambda: layer.Conv2D(2, 2, stride=3), (2, 7, 7, 1),
         output_shape=(2, 2, 2, 2)),
    Case("Conv2D-batch1-same", lambda: layer.Conv2D(2, 3, padding="same"), (1, 4, 4, 2),
         output_shape=(1, 4, 4, 2)),
    Case("Conv2D-same-stride2-asymmetric", lambda: layer.Conv2D(2, (2, 3), stride=2, padding="same"),
         (2, 5, 4, 1), output_shape=(2, 3, 2, 2)),
    Case("Conv2D-pad-tuple", lambda: layer.Conv2D(1, (2, 3), padding=(2, 0)), (1, 3, 4, 2),
         output_shape=(1, 6, 2, 1)),
    Case("Conv2D-dilation", lambda: layer.Conv2D(2, 2, dilation=(2, 1)), (2, 5, 4, 2),
         output_shape=(2, 3, 3, 2)),
    Case("Conv2D-groups", lambda: layer.Conv2D(4, 3, groups=2, padding=1), (2, 3, 3, 4),
         output_shape=(2, 3, 3, 4)),
    Case("Conv2D-depthwise", lambda: layer.Conv2D(6, 3, groups=3), (2, 4, 4, 3), output_shape=(2, 2, 2, 6)),
    Case("Conv2D-nobias", lambda: layer.Conv2D(2, 2, bias=False), (2, 3, 3, 2), output_shape=(2, 2, 2, 2)),
    Case("Conv2D-many-channels", lambda: layer.Conv2D(2, 3, padding=1), (1, 3, 3, 6),
         output_shape=(1, 3, 3, 2)),  # KW * C >= 16: the NHWC im2col path
    # ------------------------------------------------------- Conv2DTranspose, Conv1D
    Case("Conv2DTranspose", lambda: layer.Conv2DTranspose(3, (2, 3)), (1, 3, 2, 2),
         output_shape=(1, 4, 4, 3)),
    Case("Conv2DTranspose-stride-padding",
         lambda: layer.Conv2DTranspose(2, 3, stride=2, padding=1, output_padding=1), (2, 3, 3, 2),
         output_shape=(2, 6, 6, 2)),
    Case("Conv2DTranspose-dilation-nobias",
         lambda: layer.Conv2DTranspose(2, 2, stride=(1, 2), dilation=2, bias=False), (2, 2, 3, 1),
         output_shape=(2, 4, 7, 2)),
    Case("Conv2DTranspose-groups", lambda: layer.Conv2DTranspose(4, (3, 2), stride=2, groups=2), (2, 2, 3, 6),
         output_shape=(2, 5, 6, 4)),
    Case("Conv2DTranspose-output-padding-ge-stride",  # allowed: smaller than the dilation (PyTorch's rule)
         lambda: layer.Conv2DTranspose(2, 2, dilation=2, padding=1, output_padding=(1, 0)), (2, 3, 2, 2),
         output_shape=(2, 4, 2, 2)),
    Case("Conv1D", lambda: layer.Conv1D(3, 3, stride=2, padding=1), (2, 7, 2), output_shape=(2, 4, 3)),
    Case("Conv1D-same-dilation-groups", lambda: layer.Conv1D(4, 2, padding="same", dilation=2, groups=2),
         (2, 5, 4), output_shape=(2, 5, 4)),
    # ----------------------------------------------------------------- pooling
    Case("MaxPool2D", lambda: layer.MaxPool2D(2), (2, 4, 4, 2), output_shape=(2, 2, 2, 2)),
    Case("MaxPool2D-overlap-padding", lambda: layer.MaxPool2D(3, stride=2, padding=1), (2, 5, 5, 2),
         output_shape=(2, 3, 3, 2)),
    Case("MaxPool2D-nonsquare-remainder", lambda: layer.MaxPool2D((2, 3), stride=(1, 2)), (1, 4, 6, 2),
         output_shape=(1, 3, 2, 2)),
    Case("AvgPool2D", lambda: layer.AvgPool2D(2), (2, 4, 5, 2), output_shape=(2, 2, 2, 2)),
    Case("AvgPool2D-padding", lambda: layer.AvgPool2D(3, stride=2, padding=1), (2, 5, 5, 1),
         output_shape=(2, 3, 3, 1)),
    Case("AvgPool2D-exclude-pad", lambda: layer.AvgPool2D((3, 2), stride=(2, 3), padding=(1, 1),
                                                          count_include_pad=False), (1, 5, 5, 2),
         output_shape=(1, 3, 2, 2)),
    Case("GlobalAvgPool2D", layer.GlobalAvgPool2D, (2, 3, 3, 4), output_shape=(2, 4)),
    # ----------------------------------------------------------- normalization
    Case("BatchNorm-2d", layer.BatchNorm, (6, 3), train_differs=True, output_shape=(6, 3)),
    Case("BatchNorm-4d", lambda: layer.BatchNorm(momentum=0.3), (3, 3, 3, 2), train_differs=True,
         output_shape=(3, 3, 3, 2)),
    Case("BatchNorm-2d-eval", _warmed_up_eval(layer.BatchNorm, (6, 3)), (4, 3), train_differs=True),
    Case("BatchNorm-4d-eval", _warmed_up_eval(lambda: layer.BatchNorm(eps=1e-3), (2, 3, 3, 2)),
         (2, 2, 3, 2), train_differs=True),
    Case("LayerNorm", layer.LayerNorm, (4, 5), output_shape=(4, 5)),
    Case("LayerNorm-4d", lambda: layer.LayerNorm(eps=1e-3), (2, 2, 3, 4), output_shape=(2, 2, 3, 4)),
    # ----------------------------------------------------- dropout and padding
    Case("Dropout2D", lambda: layer.Dropout2D(0.5, rng=0), (3, 2, 2, 4), train_differs=True),
    Case("ZeroPad2D", lambda: layer.ZeroPad2D((1, 0, 2, 1)), (2, 2, 3, 2), output_shape=(2, 5, 4, 2)),
]
