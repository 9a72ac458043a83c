"""Optimizer parameter groups (per-group lr and weight decay, as PyTorch's param_groups):
steps against PyTorch, schedules, checkpoints, and errors."""

from __future__ import annotations

import numpy as np
import pytest

from nnframe import layer, loss, model, net, schedule
from nnframe import optimizer as O
from nnframe.parameter import ParamBuffer, ParamLayout

LAYOUT = ParamLayout(("0.w", "0.b", "2.w", "2.b", "3.gamma"), ((3, 2), (2,), (2, 2), (2,), (2,)),
                     np.dtype(np.float64), 4)
RNG = np.random.default_rng(1)
GRADS = [RNG.normal(size=LAYOUT.size) for _ in range(6)]
P0 = RNG.normal(size=LAYOUT.size)
GROUPS = [{"params": ["*.b", "*.gamma"], "weight_decay": 0.0}, {"params": ["0.w"], "lr": 0.01}]
TORCH_NAMES = {"SGD": "SGD", "Adam": "Adam", "AdamW": "AdamW", "RMSProp": "RMSprop", "Adagrad": "Adagrad",
               "Adamax": "Adamax", "RAdam": "RAdam", "Adadelta": "Adadelta"}
CASES = [("SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.05}),
         ("Adam", {"lr": 0.05, "weight_decay": 0.05}),
         ("AdamW", {"lr": 0.05, "weight_decay": 0.1}),
         ("RMSProp", {"lr": 0.02, "momentum": 0.5, "weight_decay": 0.05}),
         ("Adagrad", {"lr": 0.1, "weight_decay": 0.05}),
         ("Adamax", {"lr": 0.05, "weight_decay": 0.05}),
         ("RAdam", {"lr": 0.05, "weight_decay": 0.05}),
         ("Adadelta", {"lr": 1.0, "weight_decay": 0.05})]


def _run(opt, grads, p0, scheduler_factory=None):
    params, g = ParamBuffer(LAYOUT, p0.copy()), ParamBuffer(LAYOUT)
    sched = scheduler_factory(opt) if scheduler_factory else None
    for grad in grads:
        g.flat[...] = grad
        params.flat += opt.compute_step(g, params).flat
        if sched is not None:
            sched.step()
    return params.flat


def _torch_groups(torch, p0, groups):
    """Torch tensors per parameter name and param_groups built from our patterns."""
    import fnmatch

    tensors = {}
    for name, start, size, shape in zip(LAYOUT.names, LAYOUT.offsets, LAYOUT.sizes, LAYOUT.shapes, strict=True):
        tensors[name] = torch.tensor(p0[start:start + size].reshape(shape), requires_grad=True)
    taken, torch_groups = set(), []
    for group in groups:
        names = [n for n in LAYOUT.names if any(fnmatch.fnmatchcase(n, p) for p in group["params"])]
        taken.update(names)
        torch_groups.append({"params": [tensors[n] for n in names],
                             **{k: v for k, v in group.items() if k != "params"}})
    torch_groups.insert(0, {"params": [tensors[n] for n in LAYOUT.names if n not in taken]})
    return tensors, torch_groups


def _torch_run(torch, name, hp, grads, p0, groups, scheduler_factory=None):
    kw = dict(hp)
    tensors, torch_groups = _torch_groups(torch, p0, groups)
    opt = getattr(torch.optim, TORCH_NAMES[name])(torch_groups, **kw)
    sched = scheduler_factory(opt) if scheduler_factory else None
    for grad in grads:
        for n, start, size, shape in zip(LAYOUT.names, LAYOUT.offsets, LAYOUT.sizes, LAYOUT.shapes, strict=True):
            tensors[n].grad = torch.tensor(grad[start:start + size].reshape(shape))
        opt.step()
        if sched is not None:
            sched.step()
    return np.concatenate([tensors[n].detach().numpy().reshape(-1) for n in LAYOUT.names])


@pytest.mark.parametrize("name,hp", CASES, ids=[c[0] for c in CASES])
def test_groups_match_pytorch_param_groups(name, hp):
    torch = pytest.importorskip("torch")
    ours = _run(getattr(O, name)(**hp, param_groups=GROUPS), GRADS, P0)
    theirs = _torch_run(torch, name, hp, GRADS, P0, GROUPS)
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)
    # and the groups change something: without them the result differs
    assert not np.allclose(_run(getattr(O, name)(**hp), GRADS, P0), theirs)


def test_groups_follow_a_multiplicative_schedule_as_in_pytorch():
    torch = pytest.importorskip("torch")
    hp = {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.05}
    ours = _run(O.SGD(**hp, param_groups=GROUPS), GRADS, P0, lambda o: schedule.StepLR(o, 2, gamma=0.5))
    theirs = _torch_run(torch, "SGD", hp, GRADS, P0, GROUPS,
                        lambda o: torch.optim.lr_scheduler.StepLR(o, 2, gamma=0.5))
    np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_param_groups_report_names_and_current_rates():
    opt = O.AdamW(lr=0.1, weight_decay=0.01, param_groups=GROUPS)
    assert opt.param_groups == [{"params": ["*.b", "*.gamma"], "lr": 0.1, "weight_decay": 0.0},
                                {"params": ["0.w"], "lr": pytest.approx(0.01), "weight_decay": 0.01}]
    _run(opt, GRADS[:1], P0)
    opt.lr = 0.05  # a scheduler's change: every group follows in proportion
    groups = opt.param_groups
    assert groups[0]["names"] == ["0.b", "2.b", "3.gamma"] and groups[1]["names"] == ["0.w"]
    assert groups[1]["lr"] == pytest.approx(0.005)


def test_lr_scale_is_the_rate_as_a_multiple_and_survives_a_zero_lr_in_the_config():
    opt = O.SGD(lr=0.2, param_groups=[{"params": "0.*", "lr_scale": 0.5}])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
    opt.lr = 0.0
    rebuilt = O.get(opt.get_config())
    rebuilt.lr = 0.2
    assert rebuilt.param_groups[0]["lr"] == pytest.approx(0.1)


def _classifier(groups):
    return model.Model(net.Net([layer.Dense(8), layer.LayerNorm(), layer.ReLU(), layer.Dense(3)]),
                       loss.SoftmaxCrossEntropy(), O.AdamW(lr=0.02, weight_decay=0.1, param_groups=groups))


def test_groups_are_saved_in_checkpoints_and_a_resumed_run_is_identical(tmp_path):
    import nnframe

    groups = [{"params": ["*.b", "*.gamma", "*.beta"], "weight_decay": 0.0}, {"params": ["0.w"], "lr": 0.002}]
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)).astype(np.float32), rng.integers(0, 3, size=64)
    nnframe.set_seed(3)
    straight = _classifier(groups)
    straight.fit(x, y, epochs=4, batch_size=16, verbose=0, rng=0)
    nnframe.set_seed(3)
    first = _classifier(groups)
    first.fit(x, y, epochs=2, batch_size=16, verbose=0, rng=0)
    first.save(tmp_path / "half.safetensors")
    loaded = nnframe.load(tmp_path / "half.safetensors")
    assert loaded.optimizer.param_groups == first.optimizer.param_groups
    assert loaded.optimizer.param_groups[0]["names"] == ["0.b", "1.gamma", "1.beta", "3.b"]
    loaded.fit(x, y, epochs=4, batch_size=16, verbose=0, resume_from=tmp_path / "half.safetensors")
    for key, value in straight.net.state_dict().items():
        np.testing.assert_array_equal(loaded.net.state_dict()[key], value, err_msg=key)


@pytest.mark.parametrize("groups, error, match", [
    ("0.w", TypeError, "param_groups must be a list of dicts, got str"),
    ([["0.w"]], TypeError, r"param_groups\[0\] must be a dict, got list"),
    ([{"params": []}], ValueError, r"param_groups\[0\]: 'params' must be a non-empty list of name patterns"),
    ([{"params": ["0.w"], "momentum": 0.5}], ValueError, r"unknown keys \['momentum'\]"),
    ([{"params": ["0.w"], "lr": -1}], ValueError, r"param_groups\[0\]: lr must be in \[0.0, inf\), got -1.0"),
    ([{"params": ["0.w"], "lr": 0.1, "lr_scale": 2}], ValueError, "give 'lr' or 'lr_scale', not both"),
])
def test_bad_groups_are_refused_when_made(groups, error, match):
    with pytest.raises(error, match=match):
        O.Adam(lr=0.1, param_groups=groups)


def test_a_group_matching_nothing_or_overlapping_another_is_refused_with_the_names():
    g = ParamBuffer(LAYOUT)
    with pytest.raises(ValueError, match=r"param_groups\[0\] \['\*.beta'\] matches no parameter; the "
                                         r"parameters are \['0.w', '0.b', '2.w', '2.b', '3.gamma'\]"):
        O.SGD(lr=0.1, param_groups=[{"params": ["*.beta"]}]).compute_step(g, ParamBuffer(LAYOUT))
    with pytest.raises(ValueError, match=r"parameters \['0.b'\] are in param_groups\[0\] and param_groups\[1\]"):
        O.SGD(lr=0.1, param_groups=[{"params": ["*.b"]}, {"params": ["0.*"]}]).compute_step(g, ParamBuffer(LAYOUT))
