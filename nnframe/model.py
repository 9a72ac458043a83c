"""``Model(net, loss, optimizer)``: the seed's three calls, plus the training loop.

::

    pred = model.forward(x)
    loss, step = model.backward(pred, y)   # loss value and the optimizer's step
    model.apply_grad(step)                 # params += step, one in-place add

    history = model.fit(x, y, epochs=10, validation_split=0.1)   # Keras-style loop
    model.evaluate(x_test, y_test)          # {"loss": ..., "accuracy": ...}
    model.save("model.safetensors")         # nnframe.load(path) rebuilds it

``fit`` is a thin loop around :meth:`Model.train_step` (one optimizer step made of
the three calls); the progress bar, history, early stopping, checkpoints and
learning-rate schedules are callbacks (:mod:`nnframe.callbacks`). Evaluation and
prediction run in evaluation mode and restore the previous mode afterwards.
"""

from __future__ import annotations

import contextlib
import math
import os
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from nnframe import atomic, backend, io
from nnframe import callbacks as callbacks_mod
from nnframe import data as data_mod
from nnframe import functional as F
from nnframe import metrics as metrics_mod
from nnframe import random as nn_random
from nnframe.backend import Array
from nnframe.graph import Graph
from nnframe.layer.base import as_shape
from nnframe.layer.container import Container, trace_output_shapes
from nnframe.loss import BaseLoss, KLDivergence, MultiLoss, NLLLoss, SigmoidCrossEntropy, SoftmaxCrossEntropy
from nnframe.optimizer import BaseOptimizer
from nnframe.parameter import ParamBuffer


class Model:
    """A net trained with a loss and an optimizer.

    Args:
        net: the :class:`~nnframe.net.Net` (or any outermost container: a
            :class:`~nnframe.graph.Graph`, a residual block).
        loss: a :class:`~nnframe.loss.BaseLoss`.
        optimizer: a :class:`~nnframe.optimizer.BaseOptimizer`.
        check_finite: raise ``ValueError`` in :meth:`backward` when the loss is NaN
            or infinite, before any gradient reaches the parameters.
        metrics: names or :class:`~nnframe.metrics.Metric` objects reported by
            :meth:`fit` / :meth:`evaluate` next to the loss; ``None`` picks
            ``("accuracy",)`` for classification losses and nothing otherwise.
        scheduler: an :class:`~nnframe.schedule.LRScheduler` on ``optimizer``, saved
            with checkpoints (stepped by :class:`~nnframe.callbacks.LRSchedulerCallback`).

    Attributes:
        epoch: epochs completed by :meth:`fit` (saved in checkpoints).
        global_step: optimizer steps taken by :meth:`train_step`.
        input_shape: the per-sample input shape (see the property).
        stop_training: set by a callback to end :meth:`fit` after the current batch.
        history: the :class:`~nnframe.callbacks.History` of the last :meth:`fit` (for a
            loaded model, the history saved with the checkpoint: every epoch so far).
        metadata: a JSON-serialisable dict saved with checkpoints and restored by
            :func:`load` (the CLI keeps the data set and the input normalisation there).
    """

    def __init__(self, net: Container, loss: BaseLoss, optimizer: BaseOptimizer,
                 check_finite: bool = True, metrics: Sequence[str | metrics_mod.Metric] | None = None,
                 scheduler: Any = None, loss_weights: Sequence[float] | None = None) -> None:
        if isinstance(loss, (list, tuple)):  # one loss per output of a multi-output graph
            loss = MultiLoss(list(loss), loss_weights)
        elif loss_weights is not None:
            raise ValueError("Model: loss_weights needs a list of losses, one per output, e.g. "
                             "loss=[SoftmaxCrossEntropy(), MSE()], loss_weights=[1.0, 0.5]")
        for arg, value, cls, what in (("net", net, Container, "Net (or another container)"),
                                      ("loss", loss, BaseLoss, "BaseLoss"),
                                      ("optimizer", optimizer, BaseOptimizer, "BaseOptimizer")):
            if not isinstance(value, cls):
                raise TypeError(f"Model: {arg} must be a {what}, got {type(value).__name__}")
        if net._nested:
            raise ValueError(f"Model: this {type(net).__name__} sits inside another container, whose flat "
                             "buffers hold its parameters; give the Model the outermost one")
        self.net = net
        self.loss = loss
        self.optimizer = optimizer
        self.check_finite = check_finite
        self.metrics = None if metrics is None else _metric_specs(metrics)
        self.scheduler = scheduler
        self.epoch = 0
        self.global_step = 0
        self._input_shape: tuple[int, ...] | None = None
        self.stop_training = False
        self.history: callbacks_mod.History | None = None
        self.shuffle_rng: np.random.Generator | None = None
        self.split_seed: int | None = None
        self._step_metrics: list[metrics_mod.Metric] | None = None
        self.metadata: dict[str, Any] = {}
        #: the loss's batch weight of the last train_step/eval_step (epoch and evaluate means)
        self.last_loss_weight: float | None = None
        self._warned_integer_input = False
        self._callbacks: list[callbacks_mod.Callback] = []  # the last fit's, whose state checkpoints keep

    def forward(self, inputs: Array) -> Array:
        """The net's output for ``inputs`` (in whatever mode the net is in)."""
        return self.net.forward(inputs)

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """The per-sample input shape (no batch axis): given to :meth:`summary`, read from a
        checkpoint, or else the shape of the net's last input; ``None`` before any."""
        return self._input_shape if self._input_shape is not None else self.net.input_shape

    @input_shape.setter
    def input_shape(self, shape: Any) -> None:
        self._input_shape = None if shape is None else as_shape(shape)

    def backward(self, preds: Array, targets: Array) -> tuple[float, ParamBuffer]:
        """Loss of ``preds`` against ``targets`` and the optimizer's step.

        Returns:
            ``(loss, step)``: a float and a :class:`~nnframe.parameter.ParamBuffer`
            to pass to :meth:`apply_grad` (reused by the next call).

        Raises:
            ValueError: when the loss is NaN or infinite and ``check_finite`` is set.
        """
        loss, grad = self.loss.loss_and_grad(preds, targets)
        if self.check_finite and not math.isfinite(loss):
            raise ValueError(
                f"the loss is {loss} (not finite); lower the learning rate, check the inputs "
                "for NaN/Inf, or pass check_finite=False to Model to train on regardless"
            )
        self.net.backward(grad, input_grad=False)
        step = self.optimizer.compute_step(self.net.grads, self.net.params)
        return loss, step

    def apply_grad(self, step: ParamBuffer | Sequence[Mapping[str, Array]]) -> None:
        """Add ``step`` to the parameters.

        Args:
            step: the :class:`ParamBuffer` from :meth:`backward` (one in-place add),
                or the seed's list of per-layer dicts of arrays.
        """
        params = self.net.params
        if isinstance(step, ParamBuffer):
            if step.layout != params.layout:
                raise ValueError("apply_grad: the step's names/shapes do not match the net's parameters")
            params.flat += step.flat
            return
        if not isinstance(step, (list, tuple)) or len(step) != len(self.net.layers):
            raise TypeError(
                f"apply_grad: expected the step from backward or a list of {len(self.net.layers)} "
                f"per-layer dicts, got {type(step).__name__}"
            )
        xp = backend.xp()
        for layer_step, layer in zip(step, self.net.layers, strict=True):
            for key, value in layer_step.items():
                layer.params[key] += xp.asarray(value, dtype=layer.params[key].dtype)

    # ------------------------------------------------------------------ one step
    def train_step(self, inputs: Array, targets: Array) -> dict[str, float]:
        """One optimizer step on a batch, made of the seed's three calls.

        Runs in whatever mode the net is in (:meth:`fit` puts it in training mode).

        Returns:
            ``{"loss": value, <metric name>: value, ...}`` for this batch (metrics on
            the outputs computed before the step).

        Shapes:
            ``inputs`` ``(N, ...)``; ``targets`` integer labels ``(N,)``, one-hot ``(N, K)``
            or whatever the loss takes.
        """
        if len(inputs) == 0:
            raise ValueError("train_step: the batch is empty (0 samples); a step needs at least one")
        preds = self.forward(inputs)
        loss, step = self.backward(preds, targets)
        self.apply_grad(step)
        self.global_step += 1
        self.last_loss_weight = self.loss.batch_weight(preds, targets)
        return {"loss": loss, **self._output_losses(), **self._batch_metrics(preds, targets)}

    def eval_step(self, inputs: Array, targets: Array) -> dict[str, float]:
        """Loss and metrics on a batch, without changing any parameter.

        Runs in whatever mode the net is in (:meth:`evaluate` puts it in evaluation mode).
        """
        preds = self.forward(inputs)
        self.last_loss_weight = weight = self.loss.batch_weight(preds, targets)
        # a batch of total weight 0 (class weights) has no mean loss, and no say in evaluate's
        value = self.loss.loss(preds, targets) if weight > 0 else math.nan
        return {"loss": value, **self._output_losses(), **self._batch_metrics(preds, targets)}

    def _output_losses(self) -> dict[str, float]:
        """``{"out<k>_loss": value}`` of the last step, for a model with a loss per output."""
        if not isinstance(self.loss, MultiLoss):
            return {}
        return {f"out{k}_loss": value for k, value in enumerate(self.loss.last_parts)}

    def _loss_weight(self, size: int) -> float:
        """The weight of the batch :meth:`train_step`/:meth:`eval_step` just ran, for the mean
        loss over batches: the loss's :meth:`~nnframe.loss.BaseLoss.batch_weight` (a subclass
        whose step does not set ``last_loss_weight`` gets the batch size)."""
        weight = self.last_loss_weight
        self.last_loss_weight = None
        return size if weight is None else weight

    def _batch_metrics(self, preds: Array, targets: Array) -> dict[str, float]:
        if self._step_metrics is None:
            self._step_metrics = self._make_metrics()
        return {m.name: m.compute(preds, targets) for m in self._step_metrics}

    def _make_metrics(self) -> list[metrics_mod.Metric]:
        if isinstance(self.loss, MultiLoss):  # each output's metrics, named out<k>_<metric>
            made = [_OutputMetric(metric, k) for k, part in enumerate(self.loss.losses)
                    for metric in _metrics_for(part, self.metrics)]
        else:
            made = _metrics_for(self.loss, self.metrics)
        names = [m.name for m in made]
        if len(set(names)) != len(names) or "loss" in names:
            raise ValueError(f"metric names must be unique and not 'loss', got {names}")
        return made

    # ---------------------------------------------------------------- evaluation
    @contextlib.contextmanager
    def mode(self, training: bool) -> Iterator[Model]:
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

    @property
    def probability_link(self) -> str | None:
        """How :meth:`predict_proba` turns outputs into probabilities: ``"softmax"`` (over the last
        axis), ``"sigmoid"``, ``"exp"`` (log-probability outputs), or ``None`` for a loss without
        probabilities (e.g. MSE). An exported model applies the same link (``nnframe export --web``)."""
        return _probability_link(self.loss)

    def predict_proba(self, x: Any, batch_size: int = 1024) -> Array:
        """Class probabilities for ``x``: :meth:`predict`'s outputs through the loss's link.

        Softmax over the last axis for :class:`~nnframe.loss.SoftmaxCrossEntropy` and
        :class:`~nnframe.loss.KLDivergence` (from logits), the element-wise sigmoid for
        :class:`~nnframe.loss.SigmoidCrossEntropy`, ``exp`` for log-probability outputs
        (:class:`~nnframe.loss.NLLLoss`, ``KLDivergence(from_logits=False)``).

        Raises:
            TypeError: for a loss whose outputs are not probabilities' logits (e.g. MSE).

        Shapes:
            ``x`` ``(N, ...)`` -> ``(N, ..., K)``, rows summing to 1 (softmax) or each in (0, 1).
        """
        xp = backend.xp()
        link = _probability_link(self.loss)
        if link is None:
            raise TypeError(f"predict_proba: the model's loss {type(self.loss).__name__} does not define "
                            "class probabilities; use predict for its raw outputs")
        outputs = self.predict(x, batch_size)
        if link == "softmax":
            return xp.exp(F.log_softmax(outputs, axis=-1))
        return F.sigmoid(outputs) if link == "sigmoid" else xp.exp(outputs)

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
            metrics: replace the model's metrics (see :class:`Model`).
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
            self.metrics = _metric_specs(metrics)
            self._step_metrics = None
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

    # ------------------------------------------------------------------ summary
    def summary(self, input_shape: Sequence[int] | None = None, print_fn: Any = print) -> None:
        """Print a table: layer index, name, output shape, parameter count (as Keras: it returns
        ``None``; :meth:`summary_text` returns the text instead).

        Args:
            input_shape: the per-sample input shape (no batch axis), e.g. ``(28, 28, 1)``;
                default: the shape seen by the first forward pass or stored in the checkpoint.
            print_fn: called with the text (default :func:`print`).

        Raises:
            ValueError: when the input shape is unknown.
        """
        if not callable(print_fn):
            raise TypeError(f"summary: print_fn must be callable, got {print_fn!r}; "
                            "use summary_text() to get the text")
        print_fn(self.summary_text(input_shape))

    def summary_text(self, input_shape: Sequence[int] | None = None) -> str:
        """The table :meth:`summary` prints, as a string (arguments as :meth:`summary`)."""
        if input_shape is not None:
            self.input_shape = input_shape
        shape = self.input_shape
        if shape is None:
            raise ValueError("summary: the input shape is unknown; pass input_shape=(...) without the batch "
                             "axis, e.g. model.summary(input_shape=(28, 28, 1))")
        shapes = self._output_shapes(shape)
        rows = [(path, "  " * path.count(".") + layer.name, _shape_text(shapes.get(id(layer))),
                 f"{layer.num_params:,}") for path, layer in self.net.named_layers()]
        header = ("#", "Layer", "Output shape", "Params")
        widths = [max(len(r[c]) for r in [header, *rows]) for c in range(4)]

        def line(row: Sequence[str]) -> str:
            return (f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  "
                    f"{row[3]:>{widths[3]}}")

        rule = "-" * len(line(header))
        buffers = sum(int(v.size) for v in self.net.nt_params.values())
        count = len(self.net.sublayers())
        text = "\n".join([
            f"Model: {count} layers, input {_shape_text(shape)}, {self.net.dtype}",
            rule, line(header), rule, *map(line, rows), rule,
            f"Total params: {self.net.num_params:,}" + (f" (+ {buffers:,} non-trainable)" if buffers else ""),
            f"Loss: {self.loss!r}   Optimizer: {self.optimizer!r}",
        ])
        return text

    def _output_shapes(self, shape: Any) -> dict[int, Any]:
        """Each layer's per-sample output shape by ``id(layer)``, from one zero sample run in
        evaluation mode (``shape`` is a list of shapes for a net with several inputs)."""
        xp = backend.xp()
        dtype = np.int64 if self.net.accepts_integer_input else self.net.dtype
        zeros = ([xp.zeros((1, *s), dtype=dtype) for s in shape] if shape and isinstance(shape[0], (list, tuple))
                 else xp.zeros((1, *shape), dtype=dtype))
        with self.mode(training=False):
            if not self.net.is_built:
                self.net.forward(zeros)
            return trace_output_shapes(self.net, zeros)

    # --------------------------------------------------------------- checkpoints
    def save(self, path: str | os.PathLike) -> None:
        """Write a checkpoint (architecture, weights, optimizer, scheduler, RNG, epoch, step, callbacks).

        One safetensors file, written atomically; :func:`load` rebuilds the model and
        ``fit(..., resume_from=path)`` continues the run. See :mod:`nnframe.io`.

        Raises:
            nnframe.io.CheckpointError: when the net is not built yet.
        """
        extra = {
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "metrics": None if self.metrics is None else [_metric_to_config(m) for m in self.metrics],
            "metadata": self.metadata,
        }
        callback_states = self._callback_states()
        callback_arrays = {key: state.pop("arrays") for key, state in callback_states.items() if "arrays" in state}
        train_state = {
            "epoch": self.epoch,
            "step": self.global_step,
            "shuffle_rng": None if self.shuffle_rng is None else io.generator_state(self.shuffle_rng),
            "split_seed": self.split_seed,
            "callbacks": callback_states,
        }
        io.save_checkpoint(path, self.net, self.loss, self.optimizer, scheduler=self.scheduler,
                           extra_config=extra, train_state=train_state, callback_arrays=callback_arrays)

    @classmethod
    def load(cls, path: str | os.PathLike, restore_global_rng: bool = False) -> Model:
        """Rebuild a model from a checkpoint, without the code that built it.

        Args:
            path: a file written by :meth:`save`.
            restore_global_rng: set nnframe's global generator to its saved state
                (``fit(resume_from=...)`` does this); otherwise loading leaves it as it was.

        Raises:
            nnframe.io.CheckpointError: for a malformed, truncated, hostile or mismatched file.
        """
        ckpt = io.read_checkpoint(path)
        global_state = nn_random.get_state()
        try:  # rebuilding draws fresh initial weights and generators: undo that on the global one
            net, loss, optimizer = io.build_parts(ckpt)
        finally:
            nn_random.set_state(global_state)
        metric_specs = ckpt.config.get("metrics")
        try:
            metrics = None if metric_specs is None else [_metric_from_config(m) for m in metric_specs]
            if metrics is not None:
                _metric_specs(metrics)  # names checked here, so a bad one is a checkpoint error
        except (TypeError, ValueError) as exc:
            raise io.CheckpointError(f"checkpoint {ckpt.path!r}: bad metrics config: {exc}") from None
        model = cls(net, loss, optimizer, metrics=metrics)
        metadata = ckpt.config.get("metadata", {})
        if not isinstance(metadata, dict):
            raise io.CheckpointError(f"checkpoint {ckpt.path!r}: metadata must be a JSON object, "
                                     f"got {type(metadata).__name__}")
        model.metadata = metadata
        model._restore(ckpt, restore_global_rng=restore_global_rng)
        saved = _saved_callback_states(ckpt)
        if "History#0" in saved:
            model.history = callbacks_mod.History()
            _give_state(ckpt, "History#0", saved["History#0"], model.history)
        return model

    def _restore(self, ckpt: io.Checkpoint, restore_global_rng: bool) -> None:
        """Load a checkpoint's weights and training state into this model (validated first)."""
        state = ckpt.state
        where = f"checkpoint {ckpt.path!r}"
        epoch, step, split_seed = state.get("epoch", 0), state.get("step", 0), state.get("split_seed")
        for name, value in (("epoch", epoch), ("step", step), ("split_seed", split_seed)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise io.CheckpointError(f"{where}: {name} must be a non-negative integer, got {value!r}")
        shuffle_state = state.get("shuffle_rng")
        shuffle_rng = None if shuffle_state is None else io.restore_generator(None, shuffle_state, "shuffling")
        global_state = (state.get("rng") or {}).get("global")
        global_rng = None
        if restore_global_rng and global_state is not None:
            global_rng = io.restore_generator(None, global_state, "the global generator")
        shape = io.input_shape_of(ckpt)
        if not self.net.is_built:
            if shape is None:
                raise io.CheckpointError(f"{where}: no input_shape stored and the net is not built")
            self.net.build(io.batch_shape(shape))
        self.scheduler = io.restore_into(ckpt, self.net, self.optimizer, self.scheduler)
        self.epoch, self.global_step, self.split_seed = epoch, step, split_seed
        if shape is not None:
            self.input_shape = shape
        if shuffle_rng is not None:
            if self.shuffle_rng is not None and type(self.shuffle_rng.bit_generator) is type(shuffle_rng.bit_generator):
                self.shuffle_rng.bit_generator.state = shuffle_rng.bit_generator.state
            else:
                self.shuffle_rng = shuffle_rng
        if global_rng is not None:
            nn_random.set_state(global_rng.bit_generator.state)


load = Model.load


def _probability_link(loss: BaseLoss) -> str | None:
    """``"softmax"``, ``"sigmoid"`` or ``"exp"``: how the loss turns outputs into probabilities."""
    if isinstance(loss, SoftmaxCrossEntropy):
        return "softmax"
    if isinstance(loss, SigmoidCrossEntropy):
        return "sigmoid"
    if isinstance(loss, NLLLoss):
        return "exp"
    if isinstance(loss, KLDivergence):
        return "softmax" if loss.from_logits else "exp"
    return None


def _shape_text(shape: Any) -> str:
    """``(None, 28, 28, 1)`` for a per-sample shape; several shapes joined by commas."""
    if shape is None:
        return "?"
    if shape and isinstance(shape[0], (list, tuple)):
        return ", ".join(_shape_text(s) for s in shape)
    return str((None, *shape))


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


def _distributed(model: Model) -> Any:
    """:mod:`nnframe.distributed` when the model's optimizer averages over MPI ranks, else ``None``."""
    if not getattr(model.optimizer, "is_distributed", False):
        return None
    from nnframe import distributed

    return distributed


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"fit: {name} must be an integer >= {low}, got {value!r}")


def _metric_specs(metrics: Any) -> list[str | metrics_mod.Metric]:
    if isinstance(metrics, (str, metrics_mod.Metric)):
        metrics = [metrics]
    specs = list(metrics)
    for spec in specs:
        if isinstance(spec, str):
            metrics_mod.get(spec)  # fail early on unknown names
        elif not isinstance(spec, metrics_mod.Metric):
            raise TypeError(f"metrics must be names or Metric objects, got {type(spec).__name__}")
    return specs


def _metrics_for(loss: BaseLoss, specs: Sequence[Any] | None) -> list[metrics_mod.Metric]:
    """The metrics for one output: the given specs, or accuracy for a classification loss."""
    binary = isinstance(loss, SigmoidCrossEntropy)
    if specs is None:
        classification = isinstance(loss, (SoftmaxCrossEntropy, NLLLoss, SigmoidCrossEntropy))
        specs = ["accuracy"] if classification else []
    return [metrics_mod.get(s, binary=binary) if isinstance(s, str) else _copy_metric(s) for s in specs]


class _OutputMetric(metrics_mod.Metric):
    """A metric of one output of a multi-output model, logged as ``out<k>_<name>``."""

    def __init__(self, metric: metrics_mod.Metric, index: int) -> None:
        self.metric, self.index = metric, index
        super().__init__(f"out{index}_{metric.name}")

    def compute(self, predictions: Any, targets: Any) -> float:
        return self.metric.compute(predictions[self.index], targets[self.index])


def _copy_metric(metric: metrics_mod.Metric) -> metrics_mod.Metric:
    return type(metric)(**metric.get_config())


def _metric_to_config(metric: str | metrics_mod.Metric) -> Any:
    if isinstance(metric, str):
        return metric
    return {"class": type(metric).__name__, **metric.get_config()}


def _metric_from_config(config: Any) -> str | metrics_mod.Metric:
    if isinstance(config, str):
        return config
    if not isinstance(config, dict):
        raise TypeError(f"expected a metric name or object, got {type(config).__name__}")
    config = dict(config)
    cls = getattr(metrics_mod, str(config.pop("class", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, metrics_mod.Metric)) or cls is metrics_mod.Metric:
        raise ValueError(f"unknown metric class in {config!r}")
    return cls(**config)
