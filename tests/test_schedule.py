"""Learning-rate schedules: values at given steps, warmup, state round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnframe import optimizer, schedule


def lrs(sched, n):
    values = [sched.optimizer.lr]
    values += [sched.step() for _ in range(n)]
    return values


def test_step_lr():
    assert lrs(schedule.StepLR(optimizer.SGD(lr=1.0), step_size=2, gamma=0.5), 5) == [1, 1, 0.5, 0.5, 0.25, 0.25]


def test_multistep_lr():
    values = lrs(schedule.MultiStepLR(optimizer.SGD(lr=1.0), [1, 3], gamma=0.1), 4)
    assert values == pytest.approx([1, 0.1, 0.1, 0.01, 0.01])


def test_exponential_lr():
    assert lrs(schedule.ExponentialLR(optimizer.SGD(lr=2.0), 0.5), 3) == [2, 1, 0.5, 0.25]


def test_cosine_with_warmup():
    values = lrs(schedule.CosineAnnealingLR(optimizer.SGD(lr=1.0), t_max=6, eta_min=0.1, warmup_steps=2), 8)
    assert values[:2] == pytest.approx([1 / 3, 2 / 3])
    assert values[2] == pytest.approx(1.0)
    assert values[4] == pytest.approx(0.1 + 0.9 * (1 + math.cos(math.pi * 2 / 4)) / 2)
    assert values[6:] == pytest.approx([0.1, 0.1, 0.1])


def test_one_cycle_matches_pytorch():
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1))
    topt = torch.optim.SGD([p], lr=0.1)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.1, total_steps=20, anneal_strategy="cos",
                                                 cycle_momentum=False)
    expected = []
    for _ in range(20):
        expected.append(topt.param_groups[0]["lr"])
        topt.step()
        tsched.step()
    ours = lrs(schedule.OneCycleLR(optimizer.SGD(lr=0.1), max_lr=0.1, total_steps=20), 19)
    assert ours == pytest.approx(expected, rel=1e-9)


def test_state_round_trip_restores_the_lr():
    a = schedule.StepLR(optimizer.Adam(lr=1.0), step_size=1, gamma=0.5)
    a.step()
    a.step()
    b = schedule.StepLR(optimizer.Adam(lr=1.0), step_size=1, gamma=0.5)
    b.load_state_dict(a.state_dict())
    assert b.optimizer.lr == 0.25 and b.step() == a.step()


def test_bad_arguments():
    with pytest.raises(ValueError, match="step_size must be a positive integer"):
        schedule.StepLR(optimizer.SGD(lr=1.0), 0)
    with pytest.raises(ValueError, match="warmup_steps"):
        schedule.CosineAnnealingLR(optimizer.SGD(lr=1.0), t_max=3, warmup_steps=3)
    with pytest.raises(TypeError, match="expected an optimizer"):
        schedule.ExponentialLR("sgd", 0.9)


def _torch_one_cycle(torch, opt_name, opt_kw, total, **kw):
    p = torch.nn.Parameter(torch.zeros(1))
    topt = getattr(torch.optim, opt_name)([p], **opt_kw)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, total_steps=total, anneal_strategy="cos", **kw)
    key = "betas" if "betas" in topt.param_groups[0] else "momentum"
    values = []
    for _ in range(total):
        group = topt.param_groups[0]
        values.append((group["lr"], group[key][0] if key == "betas" else group[key]))
        topt.step()
        tsched.step()
    return values


@pytest.mark.parametrize("opt_name, torch_name, opt_kw, torch_kw", [
    ("SGD", "SGD", {"lr": 0.1, "momentum": 0.9}, {"lr": 0.1, "momentum": 0.9}),
    ("SGD", "SGD", {"lr": 0.1}, {"lr": 0.1}),  # momentum 0: switched on by the cycle, as in PyTorch
    ("RMSProp", "RMSprop", {"lr": 0.1}, {"lr": 0.1}),
    ("Adam", "Adam", {"lr": 0.1}, {"lr": 0.1}),
    ("AdamW", "AdamW", {"lr": 0.1}, {"lr": 0.1}),
])
@pytest.mark.parametrize("total, kw", [(20, {}), (30, {"pct_start": 0.5, "base_momentum": 0.8, "max_momentum": 0.9}),
                                       (3, {"pct_start": 0.3})])
def test_one_cycle_cycles_momentum_as_pytorch_by_default(opt_name, torch_name, opt_kw, torch_kw, total, kw):
    torch = pytest.importorskip("torch")
    expected = _torch_one_cycle(torch, torch_name, torch_kw, total, max_lr=1.0, **kw)
    opt = getattr(optimizer, opt_name)(**opt_kw)
    sched = schedule.OneCycleLR(opt, max_lr=1.0, total_steps=total, **kw)
    name = "beta1" if hasattr(opt, "beta1") else "momentum"
    ours = [(opt.lr, getattr(opt, name))]
    for _ in range(total - 1):
        sched.step()
        ours.append((opt.lr, getattr(opt, name)))
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name, torch_name, hp", [("SGD", "SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
                                                  ("Adam", "Adam", {"lr": 0.1})])
def test_one_cycle_training_trajectory_matches_pytorch(name, torch_name, hp):
    torch = pytest.importorskip("torch")
    from nnframe.parameter import ParamBuffer, ParamLayout

    rng = np.random.default_rng(0)
    grads = [rng.normal(size=4) for _ in range(12)]
    p = torch.nn.Parameter(torch.tensor(np.ones(4)))
    topt = getattr(torch.optim, torch_name)([p], **hp)
    tsched = torch.optim.lr_scheduler.OneCycleLR(topt, max_lr=0.5, total_steps=12)
    layout = ParamLayout(("0.w",), ((4,),), np.dtype(np.float64), 1)
    params, g = ParamBuffer(layout, np.ones(4)), ParamBuffer(layout)
    opt = getattr(optimizer, name)(**hp)
    sched = schedule.OneCycleLR(opt, max_lr=0.5, total_steps=12)
    for grad in grads:
        p.grad = torch.tensor(grad)
        topt.step()
        tsched.step()
        g.flat[...] = grad
        params.flat += opt.compute_step(g, params).flat
        sched.step()
    np.testing.assert_allclose(params.flat, p.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_one_cycle_edge_cases_documented_as_differing_from_pytorch():
    torch = pytest.importorskip("torch")
    # a rise of exactly one step: PyTorch divides by zero, ours starts at the peak
    with pytest.raises(ZeroDivisionError):
        _torch_one_cycle(torch, "SGD", {"lr": 0.1, "momentum": 0.9}, 10, max_lr=1.0, pct_start=0.1)
    sched = schedule.OneCycleLR(optimizer.SGD(lr=0.1, momentum=0.9), max_lr=1.0, total_steps=10, pct_start=0.1)
    assert (sched.optimizer.lr, sched.optimizer.momentum) == (1.0, 0.85)
    # past the end: PyTorch raises, ours keeps the last values
    for _ in range(15):
        sched.step()
    assert sched.optimizer.lr == pytest.approx(1.0 / 25 / 1e4) and sched.optimizer.momentum == pytest.approx(0.95)


def test_one_cycle_momentum_is_optional_and_refused_without_momentum():
    opt = optimizer.Adam(lr=0.1, beta1=0.8)
    schedule.OneCycleLR(opt, max_lr=1.0, total_steps=10, cycle_momentum=False).step()
    assert opt.beta1 == 0.8
    for make in (optimizer.Adagrad, optimizer.Adadelta):
        with pytest.raises(ValueError, match=r"cycle_momentum=True needs an optimizer with momentum or beta1, "
                                             rf"got {make.__name__}; pass cycle_momentum=False"):
            schedule.OneCycleLR(make(lr=0.1), max_lr=1.0, total_steps=10)
    with pytest.raises(ValueError, match=r"max_momentum must be in \[0, 1\), got 1.5"):
        schedule.OneCycleLR(optimizer.SGD(lr=0.1), max_lr=1.0, total_steps=10, max_momentum=1.5)


def test_one_cycle_momentum_state_round_trips():
    a = schedule.OneCycleLR(optimizer.Adam(lr=0.1), max_lr=1.0, total_steps=10)
    for _ in range(4):
        a.step()
    b = schedule.OneCycleLR(optimizer.Adam(lr=0.1), max_lr=1.0, total_steps=10)
    b.load_state_dict(a.state_dict())
    assert b.optimizer.beta1 == a.optimizer.beta1 == a.momentum_at(4) != 0.95


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(schedule, raise_on_error=False)
    assert result.attempted >= 1 and result.failed == 0
