"""Speed benchmarks for nnframe (run ``python -m benchmarks --help``).

This package imports nothing heavy at import time: ``python -m benchmarks`` must be
able to set the BLAS thread count in the environment before NumPy is loaded.
"""
