"""Optimizers: several steps against each paper's update rule and against PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nnframe import optimizer as O
from nnframe.parameter import ParamBuffer, ParamLayout

LAYOUT = ParamLayout(("0.w", "0.b", "2.w"), ((3, 2), (2,), (2, 1)), np.dtype(np.float64), 3)
RNG = np.random.default_rng(0)
GRADS = [RNG.normal(size=LAYOUT.size) for _ in range(6)]
P0 = RNG.normal(size=LAYOUT.size)


def reference(name: str, hp: dict, grads: list[np.ndarray], p0: np.ndarray) -> np.ndarray:
    """The update rules as written in the papers (with PyTorch's conventions), one step at a time."""
    p = p0.copy()
    lr, wd = hp.get("lr"), hp.get("weight_decay", 0.0)
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    u = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if name != "AdamW":
            g = g + wd * p
        if name == "SGD":
            mu = hp.get("momentum", 0.0)
            m = mu * m + g if t > 1 else g.copy()
            d = (g + mu * m if hp.get("nesterov") else m) if mu else g
            p = p - lr * d
        elif name in ("Adam", "AdamW", "RAdam"):
            b1, b2, eps = hp.get("beta1", 0.9), hp.get("beta2", 0.999), hp.get("eps", 1e-8)
            if name == "AdamW":
                p = p * (1 - lr * wd)
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
            if name == "RAdam":
                rho_inf = 2 / (1 - b2) - 1
                rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
                if rho > 5:
                    r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
                    p = p - lr * r * m_hat / (np.sqrt(v) / math.sqrt(1 - b2**t) + eps)
                else:
                    p = p - lr * m_hat
            else:
                p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
        elif name == "Adamax":
            b1, b2, eps = 0.9, 0.999, 1e-8
            m = b1 * m + (1 - b1) * g
            u = np.maximum(b2 * u, np.abs(g) + eps)
            p = p - lr / (1 - b1**t) * m / u
        elif name == "RMSProp":
            a, eps, mu = hp.get("alpha", 0.99), 1e-8, hp.get("momentum", 0.0)
            v = a * v + (1 - a) * g * g
            if hp.get("centered"):
                u = a * u + (1 - a) * g
                denom = np.sqrt(v - u * u) + eps
            else:
                denom = np.sqrt(v) + eps
            if mu:
                m = mu * m + g / denom
                p = p - lr * m
            else:
                p = p - lr * g / denom
        elif name == "Adagrad":
            v = v + g * g
            p = p - lr / (1 + (t - 1) * hp.get("lr_decay", 0.0)) * g / (np.sqrt(v) + 1e-10)
        elif name == "Adadelta":
            rho, eps = hp.get("rho", 0.9), 1e-6
            v = rho * v + (1 - rho) * g * g
            d = np.sqrt(u + eps) / np.sqrt(v + eps) * g
            u = rho * u + (1 - rho) * d * d
            p = p - lr * d
    return p


CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("RAdam", {"lr": 0.01}),
    ("RAdam", {"lr": 0.01, "beta2": 0.5}),  # rho_t > 5 from step 2 on: both branches
    ("Adamax", {"lr": 0.01}),
    ("RMSProp", {"lr": 0.01}),
    ("RMSProp", {"lr": 0.01, "momentum": 0.9, "centered": True}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01}),
    ("Adadelta", {"lr": 1.0}),
]
IDS = [f"{n}-{i}" for i, (n, _) in enumerate(CASES)]


def run_nnframe(name, hp, grads, p0):
    opt = getattr(O, name)(**hp)
    params = ParamBuffer(LAYOUT, p0.copy())
    steps = []
    for g in grads:
        step = opt.compute_step(ParamBuffer(LAYOUT, g.copy()), params)
        steps.append(step.flat.copy())
        params.flat += step.flat
    return params.flat, steps


@pytest.mark.parametrize("name,hp", CASES, ids=IDS)
def test_one_step_matches_the_formula(name, hp):
    p, _ = run_nnframe(name, hp, GRADS[:1], P0)
    np.testing.assert_allclose(p, reference(name, hp, GRADS[:1], P0), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name,hp", CASES, ids=IDS)
def test_six_steps_match_the_formula(name, hp):
    p, _ = run_nnframe(name, hp, GRADS, P0)
    np.testing.assert_allclose(p, reference(name, hp, GRADS, P0), rtol=1e-9, atol=1e-12)  # rounding grows over steps


@pytest.mark.parametrize("name,hp", CASES, ids=IDS)
def test_float32_state_and_step(name, hp):
    layout = ParamLayout(LAYOUT.names, LAYOUT.shapes, np.dtype(np.float32), 3)
    opt = getattr(O, name)(**hp)
    params = ParamBuffer(layout, P0.astype(np.float32))
    step = opt.compute_step(ParamBuffer(layout, GRADS[0].astype(np.float32)), params)
    assert step.flat.dtype == np.float32
    assert all(buf.flat.dtype == np.float32 for buf in opt.state.values())


def test_seed_style_lists_of_dicts_are_accepted():
    grads = [{"w": GRADS[0][:6].reshape(3, 2), "b": GRADS[0][6:8]}, {}, {"w": GRADS[0][8:].reshape(2, 1)}]
    params = [{"w": P0[:6].reshape(3, 2), "b": P0[6:8]}, {}, {"w": P0[8:].reshape(2, 1)}]
    step = O.Adam(lr=0.01).compute_step(grads, params)
    expected = reference("Adam", {"lr": 0.01}, GRADS[:1], P0) - P0
    np.testing.assert_allclose(step.flat, expected, rtol=1e-12)
    assert [sorted(d) for d in step.per_layer()] == [["b", "w"], [], ["w"]]


def test_global_norm_clipping():
    g = np.full(LAYOUT.size, 3.0)
    params = ParamBuffer(LAYOUT, np.zeros(LAYOUT.size))
    step = O.SGD(lr=1.0, clip_norm=1.0).compute_step(ParamBuffer(LAYOUT, g), params)
    assert np.linalg.norm(step.flat) == pytest.approx(1.0)
    small = O.SGD(lr=1.0, clip_norm=100.0).compute_step(ParamBuffer(LAYOUT, g), params)
    np.testing.assert_array_equal(small.flat, -g)


def test_gradients_are_not_modified():
    g = GRADS[0].copy()
    O.Adam(lr=0.1, weight_decay=0.5, clip_norm=0.1).compute_step(ParamBuffer(LAYOUT, g), ParamBuffer(LAYOUT, P0.copy()))
    np.testing.assert_array_equal(g, GRADS[0])


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: O.Adam(lr=-1), "lr must be in"),
        (lambda: O.Adam(beta1=1.0), "beta1 must be in"),
        (lambda: O.Adam(beta2=1.5), "beta2 must be in"),
        (lambda: O.SGD(lr=0.1, weight_decay=-0.1), "weight_decay"),
        (lambda: O.SGD(lr=0.1, nesterov=True), "nesterov"),
        (lambda: O.RMSProp(alpha=1.0), "alpha"),
        (lambda: O.Adam(clip_norm=0), "clip_norm"),
        (lambda: O.Adam(lr=float("nan")), "lr"),
    ],
)
def test_nonsensical_hyperparameters_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_state_dict_is_keyed_by_parameter_name_and_round_trips():
    opt = O.Adam(lr=0.01)
    params = ParamBuffer(LAYOUT, P0.copy())
    for g in GRADS[:3]:
        params.flat += opt.compute_step(ParamBuffer(LAYOUT, g), params).flat
    state = opt.state_dict()
    assert sorted(state["arrays"]) == sorted(f"{b}.{n}" for b in ("m", "v") for n in LAYOUT.names)
    clone = O.Adam(lr=0.01)
    clone.load_state_dict(state, LAYOUT)
    a = opt.compute_step(ParamBuffer(LAYOUT, GRADS[3]), params).flat.copy()
    b = clone.compute_step(ParamBuffer(LAYOUT, GRADS[3]), params).flat
    np.testing.assert_array_equal(a, b)
    bad = dict(state, arrays={**state["arrays"], "m.0.w": np.zeros((2, 2))})
    del bad["arrays"]["v.2.w"]
    with pytest.raises(ValueError, match=r"missing optimizer state: \['v.2.w'\].*m.0.w: expected \(3, 2\)"):
        O.Adam().load_state_dict(bad, LAYOUT)


# ----------------------------------------------------------------- PyTorch oracle
TORCH_NAMES = {"SGD": "SGD", "Adam": "Adam", "AdamW": "AdamW", "RAdam": "RAdam", "Adamax": "Adamax",
               "RMSProp": "RMSprop", "Adagrad": "Adagrad", "Adadelta": "Adadelta"}


def _torch_kwargs(name, hp):
    kw = dict(hp)
    if "beta1" in kw or "beta2" in kw:
        kw["betas"] = (kw.pop("beta1", 0.9), kw.pop("beta2", 0.999))
    return kw


@pytest.mark.parametrize("name,hp", CASES, ids=IDS)
def test_steps_match_pytorch(name, hp):
    torch = pytest.importorskip("torch")
    p = torch.tensor(P0, requires_grad=True)
    opt = getattr(torch.optim, TORCH_NAMES[name])([p], **_torch_kwargs(name, hp))
    for g in GRADS:
        p.grad = torch.tensor(g)
        opt.step()
    ours, _ = run_nnframe(name, hp, GRADS, P0)
    np.testing.assert_allclose(ours, p.detach().numpy(), rtol=1e-10, atol=1e-12)
