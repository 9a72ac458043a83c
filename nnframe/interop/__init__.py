"""Interoperability: ONNX export/import and PyTorch conversion (``nnframe.onnx``, ``nnframe.torch``).

The modules here import ``onnx`` or ``torch`` at their top, so nothing in the core imports
them: :mod:`nnframe.onnx` and :mod:`nnframe.torch` load them only when a conversion is
asked for. :mod:`nnframe.interop.layout` (NumPy only) holds every weight-layout mapping
between nnframe (channels-last: NHWC images, HWIO kernels) and ONNX/PyTorch
(channels-first: NCHW images, OIHW kernels) in one table.
"""
