"""The training half of :class:`~nnframe.model.Model`: ``fit``, ``evaluate``, ``predict``.

As Keras 3 keeps its ``Trainer`` apart from the model, :class:`Trainer` is a mixin that
:class:`~nnframe.model.Model` inherits: the loop over epochs and batches, the callbacks'
wiring and their saved state, evaluation and prediction in batches. The model itself
(the seed's three calls, one training step, checkpoints) stays in :mod:`nnframe.model`;
users keep calling ``model.fit(...)``.

``fit`` is a thin loop around the model's ``train_step``; the progress bar, history, early
stopping, checkpoints and learning-rate schedules are callbacks (:mod:`nnframe.callbacks`).
Evaluation and prediction run in evaluation mode and restore the previous mode afterwards.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from nnframe import atomic, backend, io
from nnframe import callbacks as callbacks_mod
from nnframe import data as data_mod
from nnframe import metrics as metrics_mod
from nnframe import random as nn_random
from nnframe.backend import Array
from nnframe.graph import Graph


class Trainer:
    """The loop methods of :class:`~nnframe.model.Model` (a mixin; not used on its own).

    It relies on what the model provides: ``net``, ``loss``, ``optimizer``, ``metrics``,
    ``epoch``, ``shuffle_rng``, ``split_seed``, ``history``, ``stop_training``,
    ``train_step``/``eval_step`` (one batch each), ``forward``, ``_loss_weight``,
    ``_use_metrics`` and ``_restore`` (a checkpoint's weights and training state).
    """

    @contextlib.contextmanager
    def mode(self, training: bool) -> Iterator[Trainer]:
        """Context manager: every layer in training (or evaluation) mode; each layer's
        previous mode is restored on exit, exceptions included."""
        previous = [(leaf, leaf.is_training) for _, leaf in self.net.named_leaves()]
        self.net.is_training = training
        try:
            yield self
        finally:
            for leaf, was_training in previous:
                leaf.is_training = was_training

    def evaluate(self, x: Any, y: Any, batch_size: int = 128) -> dict[str, float]:
        """Mean loss and metrics over ``(x, y)``, in evaluation mode.

        The loss of each batch is weighted by the loss's
        :meth:`~nnframe.loss.BaseLoss.batch_weight` (its batch size, or for a
        class-weighted loss the batch's total weight) and metrics by the batch size, so
        the result is that of one batch holding all of ``x`` and does not depend on
        ``batch_size`` (up to float rounding).

        With a :class:`~nnframe.distributed.DistributedOptimizer`, each rank evaluates
        its block of ``x`` and every rank gets the figures over all of ``x``.

        Returns:
            ``{"loss": ..., "accuracy": ..., ...}``.
        """
        dist = _distributed(self)  # under MPI: this rank's block of x, figures reduced over ranks
        if dist is not None:
            x, y = dist.evaluation_shard(self.optimizer, x, y)
        trackers: dict[str, metrics_mod.Mean] = {}
        with self.mode(training=False):
            for index, (xb, yb) in enumerate(self._batches(x, y, batch_size)):
                if any(part.dtype.kind == "f" and not bool(backend.xp().isfinite(part).all())
                       for part in (xb if isinstance(xb, list) else [xb])):
                    raise ValueError(f"evaluate: x holds NaN or infinity (in the batch of samples from "
                                     f"{index * batch_size}); the loss would be NaN")
                self.last_loss_weight = None
                logs = self.eval_step(xb, yb)
                size = data_mod.num_samples(xb)
                loss_weight = self._loss_weight(size)
                for key, value in logs.items():
                    weight = loss_weight if key == "loss" else size
                    tracker = trackers.setdefault(key, metrics_mod.Mean(key))
                    if weight:
                        tracker.update_value(value, weight)
        if dist is not None:
            return dist.reduce_means(trackers, self.optimizer.comm)
        if not trackers:
            raise ValueError("evaluate: x has no samples")
        return {key: tracker.result() for key, tracker in trackers.items()}

    def predict(self, x: Any, batch_size: int = 1024) -> Array:
        """The net's raw outputs for ``x`` (logits for a classifier), in batches, in evaluation mode.

        A classifier's net ends without a softmax (its loss applies it): use
        :meth:`predict_proba` for probabilities.

        Shapes:
            ``x`` ``(N, ...)`` -> the net's output ``(N, ...)``; for a graph with several
            inputs ``x`` is a list of arrays, and with several outputs the result is a list,
            one array per output.
        """
        xp = backend.xp()
        with self.mode(training=False):
            outputs = [self.forward(xb) for xb in self._batches(x, None, batch_size)]
        if not outputs:
            raise ValueError("predict: x has no samples")
        if isinstance(outputs[0], list):
            return [part[0] if len(outputs) == 1 else xp.concatenate(list(part), axis=0)
                    for part in zip(*outputs, strict=True)]
        return outputs[0] if len(outputs) == 1 else xp.concatenate(outputs, axis=0)


    def _warn_integer_input(self, x: Any) -> None:
        """Warn once per model when a float net is fed integer (e.g. uint8 pixel) data."""
        dtype = getattr(x, "dtype", None)
        if self._warned_integer_input or dtype is None or np.dtype(dtype).kind not in "iu" \
                or self.net.accepts_integer_input:
            return
        self._warned_integer_input = True
        warnings.warn(
            f"fit: x has integer dtype {np.dtype(dtype)}, so the net trains on the raw values (0..255 for "
            "pixels), which trains badly; scale or standardise it first: x, mean, std = "
            "nnframe.data.standardize(x), or load the data set with standardize=True",
            UserWarning, stacklevel=3)

    def _batches(self, x: Any, y: Any, batch_size: int, shuffle: bool = False,
                 rng: np.random.Generator | None = None) -> data_mod.BatchIterator:
        """Batches of ``x`` in the net's dtype (integer input kept for layers that take indices)."""
        dtype: Any = self.net.dtype
        x_dtype = getattr(x, "dtype", None)
        if data_mod.is_multi(x):  # several inputs: integer ids stay integer where the graph declares them
            declared = [t.dtype for t in self.net.inputs] if isinstance(self.net, Graph) else [None] * len(x)
            dtype = [part.dtype if kind is not None and kind.kind in "iu" and np.dtype(part.dtype).kind in "iu"
                     else self.net.dtype for part, kind in zip(x, declared, strict=False)]
        elif self.net.accepts_integer_input and x_dtype is not None and np.dtype(x_dtype).kind in "iu":
            dtype = x_dtype
        return data_mod.batches(x, y, batch_size=batch_size, shuffle=shuffle, rng=rng, dtype=dtype)

    # ------------------------------------------------------------------ training
    def fit(self, x: Any, y: Any, epochs: int = 1, batch_size: int = 128,
            validation_data: tuple[Any, Any] | None = None, validation_split: float = 0.0,
            shuffle: bool = True, callbacks: Sequence[callbacks_mod.Callback] | None = None,
            verbose: int = 1, metrics: Sequence[str | metrics_mod.Metric] | None = None,
            initial_epoch: int = 0, resume_from: str | os.PathLike | None = None,
            rng: int | np.random.Generator | None = None,
            distributed: bool | None = None) -> callbacks_mod.History:
        """Train for epochs ``initial_epoch .. epochs - 1`` and return the :class:`History`.

        Each epoch: shuffle (from one generator kept on the model), run
        :meth:`train_step` on every batch in training mode, then :meth:`evaluate` the
        validation data in evaluation mode. Epoch logs: ``loss`` and metrics (means
        over the epoch's training batches, as trained; the loss weighted as in
        :meth:`evaluate`), ``val_loss``, ``val_<metric>``,
        ``lr`` (the learning rate used in the epoch).

        Args:
            x, y: training inputs ``(N, ...)`` and targets (labels ``(N,)`` or one-hot ``(N, K)``).
            epochs: the index of the last epoch + 1 (Keras' convention: with
                ``initial_epoch=3, epochs=5`` two epochs run).
            batch_size: samples per batch.
            validation_data: ``(x_val, y_val)``.
            validation_split: instead, hold out this fraction of ``(x, y)`` at random
                (the split's seed is drawn once and saved in checkpoints).
            shuffle: reshuffle the training data every epoch.
            callbacks: :class:`~nnframe.callbacks.Callback` objects. A
                :class:`~nnframe.callbacks.History` is always added, and a progress bar
                when ``verbose``; :class:`~nnframe.callbacks.ModelCheckpoint` callbacks
                run after the others, so a checkpoint holds the state after every
                other callback's end-of-epoch change (e.g. a scheduler step).
            verbose: 0 silent, 1 a progress bar per epoch, 2 one line per epoch.
            metrics: replace the model's metrics (see :class:`~nnframe.model.Model`).
            initial_epoch: the epoch to start from.
            resume_from: a checkpoint written by :meth:`save` (e.g. by ``ModelCheckpoint``):
                weights, optimizer, scheduler and every generator are restored and
                training continues at the checkpoint's epoch, bit-identical to a run
                that was never interrupted. Callbacks get their saved state back
                (:meth:`~nnframe.callbacks.Callback.load_state_dict`; matched by class
                and order, e.g. the second ``EarlyStopping``), and the returned history
                holds the epochs before the checkpoint too.
            rng: seed or generator for shuffling and the validation split (default: the
                model's generator from an earlier fit or checkpoint, else a child of the
                global generator).
            distributed: data-parallel over the MPI ranks (:mod:`nnframe.distributed`;
                ``batch_size`` is per rank). ``None``: when the optimizer is a
                :class:`~nnframe.distributed.DistributedOptimizer`; ``True`` wraps it in one.

        Returns:
            The :class:`~nnframe.callbacks.History` (also kept as ``self.history``).
        """
        _check_int("epochs", epochs, 0)
        _check_int("initial_epoch", initial_epoch, 0)
        self._warn_integer_input(x)
        if verbose not in (0, 1, 2):
            raise ValueError(f"fit: verbose must be 0, 1 or 2, got {verbose!r}")
        if validation_data is not None and validation_split:
            raise ValueError("fit: pass validation_data or validation_split, not both")
        if validation_data is not None and (not isinstance(validation_data, (tuple, list))
                                            or len(validation_data) != 2):
            raise ValueError("fit: validation_data must be a pair (x_val, y_val)")
        if metrics is not None:
            self._use_metrics(metrics)
        if rng is not None or self.shuffle_rng is None:
            self.shuffle_rng = nn_random.get_rng(rng)

        session = None
        if distributed or _distributed(self) is not None:
            from nnframe import distributed as dist  # mpi4py is imported only when used

            session = dist.fit_session(self, distributed)
        if session is not None:
            callbacks, verbose = session.callbacks(callbacks, verbose)
        cbs = self._callback_list(callbacks, verbose)
        if session is not None:
            cbs = session.wrap(cbs)
        cbs.set_model(self)
        ckpt = None
        if resume_from is not None:
            ckpt = io.read_checkpoint(resume_from)
            atomic.remove_stale_temps(resume_from)  # leftovers of a run killed while saving
            self._restore(ckpt, restore_global_rng=True)
            initial_epoch = self.epoch
        if session is not None:
            session.begin(x)  # rank 0's weights, state and generators everywhere, checksummed
        if validation_split:
            if self.split_seed is None:
                self.split_seed = int(self.shuffle_rng.integers(2**63 - 1))
            (x, y), validation_data = data_mod.train_val_split(
                x, y, validation_split, rng=np.random.default_rng(self.split_seed))
        train_batches = self._batches(x, y, batch_size, shuffle=shuffle, rng=self.shuffle_rng)
        if len(train_batches) == 0:
            raise ValueError(f"fit: no training samples (x has {len(x)} after the validation split); "
                             "fit needs at least one")
        if session is not None:
            train_batches = session.batches(train_batches)
        cbs.set_params({"epochs": epochs, "initial_epoch": initial_epoch, "steps": len(train_batches),
                        "samples": data_mod.num_samples(train_batches.x), "verbose": verbose, "batch_size": batch_size})
        self.history = next(c for c in cbs.callbacks if isinstance(c, callbacks_mod.History))
        self._callbacks = cbs.callbacks
        self.stop_training = False
        logs: dict[str, Any] = {}
        with self.mode(training=True):
            cbs.on_train_begin()
            if ckpt is not None:
                self._restore_callbacks(ckpt)
            for epoch in range(initial_epoch, epochs):
                logs = self._run_epoch(epoch, train_batches, validation_data, batch_size, cbs)
                if self.stop_training:
                    break
            cbs.on_train_end(logs)
        return self.history

    def _run_epoch(self, epoch: int, train_batches: data_mod.BatchIterator,
                   validation_data: tuple[Any, Any] | None, batch_size: int,
                   cbs: callbacks_mod.CallbackList) -> dict[str, Any]:
        self.net.train()
        cbs.on_epoch_begin(epoch)
        trackers: dict[str, metrics_mod.Mean] = {}
        for index, (xb, yb) in enumerate(train_batches):
            size = data_mod.num_samples(xb)
            cbs.on_batch_begin(index, {"batch": index, "size": size})
            self.last_loss_weight = None
            batch_logs = self.train_step(xb, yb)
            loss_weight = self._loss_weight(size)
            for key, value in batch_logs.items():
                weight = loss_weight if key == "loss" else size
                trackers.setdefault(key, metrics_mod.Mean(key)).update_value(value, weight)
            cbs.on_batch_end(index, {"batch": index, "size": size,
                                     **{k: t.result() for k, t in trackers.items()}})
            if self.stop_training:
                break
        logs: dict[str, Any] = {k: t.result() for k, t in trackers.items()}
        if validation_data is not None:
            val = self.evaluate(validation_data[0], validation_data[1], batch_size)
            logs.update({f"val_{k}": v for k, v in val.items()})
        logs["lr"] = float(self.optimizer.lr)
        self.epoch = epoch + 1
        cbs.on_epoch_end(epoch, logs)
        return logs

    def _callback_list(self, callbacks: Sequence[callbacks_mod.Callback] | None,
                       verbose: int) -> callbacks_mod.CallbackList:
        user = callbacks_mod.CallbackList(callbacks or []).callbacks  # checks the types
        checkpoints = [c for c in user if isinstance(c, callbacks_mod.ModelCheckpoint)]
        others = [c for c in user if not isinstance(c, callbacks_mod.ModelCheckpoint)]
        built: list[callbacks_mod.Callback] = [callbacks_mod.History()]
        if verbose and not any(isinstance(c, callbacks_mod.ProgressBar) for c in user):
            built.append(callbacks_mod.ProgressBar(verbose))
        return callbacks_mod.CallbackList(built + others + checkpoints)

    def _keyed_callbacks(self) -> Iterator[tuple[str, callbacks_mod.Callback]]:
        """The last fit's callbacks as ``("<class>#<k>", callback)``, the keys checkpoints use.

        ``k`` counts callbacks of the same class in order, so two ``EarlyStopping``
        callbacks are ``EarlyStopping#0`` and ``EarlyStopping#1``.
        """
        seen: dict[str, int] = {}
        for callback in self._callbacks:
            name = type(callback).__name__
            seen[name] = seen.get(name, -1) + 1
            yield f"{name}#{seen[name]}", callback

    def _callback_states(self) -> dict[str, dict[str, Any]]:
        """``{key: state}`` of the last fit's callbacks that keep any state."""
        states = {key: callback.state_dict() for key, callback in self._keyed_callbacks()}
        return {key: state for key, state in states.items() if state}

    def _restore_callbacks(self, ckpt: io.Checkpoint) -> None:
        """Give each callback of this fit its state from ``ckpt`` (each checks its state before taking it)."""
        saved = _saved_callback_states(ckpt)
        fresh = sorted(set(self._callback_states()) - set(saved) - {"History#0"})
        if fresh:
            warnings.warn(f"fit(resume_from={ckpt.path!r}): no saved state for callbacks {fresh}; "
                          "they start afresh", RuntimeWarning, stacklevel=3)
        for key, callback in self._keyed_callbacks():
            if key in saved:
                _give_state(ckpt, key, saved[key], callback)

    def _restore_history(self, ckpt: io.Checkpoint) -> None:
        """The checkpoint's saved :class:`~nnframe.callbacks.History` (every epoch so far) as ``self.history``."""
        saved = _saved_callback_states(ckpt)
        if "History#0" in saved:
            self.history = callbacks_mod.History()
            _give_state(ckpt, "History#0", saved["History#0"], self.history)


def _saved_callback_states(ckpt: io.Checkpoint) -> dict[str, dict[str, Any]]:
    """The checkpoint's ``{"<class>#<k>": state}`` of callbacks, checked to be JSON objects."""
    saved = ckpt.state.get("callbacks") or {}
    if not isinstance(saved, dict) or not all(isinstance(v, dict) for v in saved.values()):
        raise io.CheckpointError(f"checkpoint {ckpt.path!r}: callbacks state must map names to objects")
    return saved


def _give_state(ckpt: io.Checkpoint, key: str, state: dict[str, Any], callback: callbacks_mod.Callback) -> None:
    """``callback.load_state_dict`` with the state saved under ``key`` and its arrays."""
    arrays = ckpt.callback_arrays.get(key)
    try:
        callback.load_state_dict({**state, "arrays": arrays} if arrays else dict(state))
    except ValueError as exc:
        raise io.CheckpointError(f"checkpoint {ckpt.path!r}: callback {key}: {exc}") from None


def _distributed(model: Any) -> Any:
    """:mod:`nnframe.distributed` when the model's optimizer averages over MPI ranks, else ``None``."""
    if not getattr(model.optimizer, "is_distributed", False):
        return None
    from nnframe import distributed

    return distributed


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"fit: {name} must be an integer >= {low}, got {value!r}")
