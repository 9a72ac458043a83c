"""``python -m nnframe``: the ``nnframe`` command (see :mod:`nnframe.cli`)."""

from nnframe.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
