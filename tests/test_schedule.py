"""Learning-rate schedules: values at given steps, warmup, state round trip."""

from __future__ import annotations

import math

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
