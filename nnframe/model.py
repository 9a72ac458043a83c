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

The loop (``fit``, ``evaluate``, ``predict``) lives in :mod:`nnframe.trainer`, whose
:class:`~nnframe.trainer.Trainer` ``Model`` inherits (as Keras 3 keeps its trainer apart
from the model); the summary table is drawn by :mod:`nnframe.summary`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nnframe import backend, io
from nnframe import callbacks as callbacks_mod
from nnframe import functional as F
from nnframe import metrics as metrics_mod
from nnframe import random as nn_random
from nnframe import summary as summary_mod
from nnframe.backend import Array
from nnframe.layer.base import as_shape
from nnframe.layer.container import Container
from nnframe.loss import BaseLoss, KLDivergence, MultiLoss, NLLLoss, SigmoidCrossEntropy, SoftmaxCrossEntropy
from nnframe.optimizer import BaseOptimizer
from nnframe.parameter import ParamBuffer
from nnframe.trainer import Trainer


class Model(Trainer):
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

    def _use_metrics(self, metrics: Sequence[str | metrics_mod.Metric]) -> None:
        """Replace the model's metrics (``fit(metrics=...)``); checked here, made at the next step."""
        self.metrics = _metric_specs(metrics)
        self._step_metrics = None

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
        """The table :meth:`summary` prints, as a string (arguments as :meth:`summary`;
        rendered by :func:`nnframe.summary.summary_text`)."""
        return summary_mod.summary_text(self, input_shape)

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
        model._restore_history(ckpt)
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
