"""Callbacks: everything around the training loop that is not the training step.

:meth:`nnframe.model.Model.fit` calls, in this order, ``on_train_begin``;
per epoch ``on_epoch_begin(epoch)``, per batch ``on_batch_begin(batch)`` /
``on_batch_end(batch, logs)``, then ``on_epoch_end(epoch, logs)``; finally
``on_train_end``. ``epoch`` and ``batch`` are 0-based indices. Batch logs hold the
running means of the epoch so far (``loss``, metrics) plus ``batch`` and ``size``;
epoch logs hold the epoch's means, ``val_``-prefixed validation results and ``lr``.

A callback stops training by setting ``self.model.stop_training = True``; the loop
checks it after every batch and every epoch (Keras' convention).

A callback that learns something across epochs (the history, early stopping's
patience counter and best weights, ReduceLROnPlateau's counters, a best-only
checkpoint's best value) returns it from :meth:`Callback.state_dict`; checkpoints
save it, and ``fit(..., resume_from=path)`` gives it back through
:meth:`Callback.load_state_dict`, so a resumed run decides exactly as an
uninterrupted one would.

The callbacks live in submodules by what they do: :mod:`~nnframe.callbacks.base` (the
contract), :mod:`~nnframe.callbacks.progress` (progress bar, history, CSV log),
:mod:`~nnframe.callbacks.stopping` (early stopping, NaN), :mod:`~nnframe.callbacks.checkpoint`
and :mod:`~nnframe.callbacks.lr` (schedules, plateaus); import them from here.
"""

from nnframe.callbacks.base import Callback, CallbackList, Logs, float_from_json, float_to_json
from nnframe.callbacks.checkpoint import ModelCheckpoint
from nnframe.callbacks.lr import LRSchedulerCallback, ReduceLROnPlateau
from nnframe.callbacks.progress import CSVLogger, History, ProgressBar
from nnframe.callbacks.stopping import EarlyStopping, TerminateOnNaN

__all__ = [
    "CSVLogger", "Callback", "CallbackList", "EarlyStopping", "History", "LRSchedulerCallback", "Logs",
    "ModelCheckpoint", "ProgressBar", "ReduceLROnPlateau", "TerminateOnNaN", "float_from_json", "float_to_json",
]
