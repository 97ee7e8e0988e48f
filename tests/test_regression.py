"""Regression family: torch parity for every option, identities, peers, the seeds' formulas, errors.

Reference values come from ``torch.nn.functional`` (computed in the test), scikit-learn's
metrics (``mean_pinball_loss``, ``mean_absolute_percentage_error``, ``mean_squared_error``),
formulas worked out in float64 or by hand in the test, and the numpy formulas printed in
``seeds/002_f7c8dc85b772d469.txt`` (section "回归": ``huber``, ``logcosh``, ``mse``, ``mae``,
``rmse``, ``mape``, ``smape``).
"""

import itertools
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import lossatlas as la

F64 = torch.float64
REDUCTIONS = ["none", "mean", "sum"]


def close(actual, expected, *, rtol=1e-6, atol=1e-9):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def pair(shape=(6, 3), seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=F64) * scale
    y = torch.randn(shape, generator=g, dtype=F64)
    return x, y


def grads(fn, *tensors, **kwargs):
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves, **kwargs)
    out.sum().backward()
    return out.detach(), [leaf.grad for leaf in leaves]


# --------------------------------------------------------------------------- torch parity

TORCH_PAIRS = [
    ("mse_loss", F.mse_loss, {}),
    ("l1_loss", F.l1_loss, {}),
    *[("smooth_l1_loss", F.smooth_l1_loss, {"beta": b}) for b in (0.0, 0.3, 1.0, 2.5)],
    *[("huber_loss", F.huber_loss, {"delta": d}) for d in (0.3, 1.0, 2.5)],
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(), (7,), (4, 3, 2)], ids=str)
@pytest.mark.parametrize(
    ("name", "reference", "options"), TORCH_PAIRS, ids=[f"{n}-{o}" for n, _, o in TORCH_PAIRS]
)
def test_torch_parity_values_and_gradients(name, reference, options, shape, reduction):
    x, y = pair(shape, seed=len(shape))
    ours, (gx, gy) = grads(getattr(la, name), x, y, **options, reduction=reduction)
    theirs, (tx, ty) = grads(reference, x, y, **options, reduction=reduction)
    close(ours, theirs)
    close(gx, tx)
    close(gy, ty)


@pytest.mark.parametrize(
    ("module", "torch_module", "options"),
    [
        (la.nn.MSELoss, torch.nn.MSELoss, {}),
        (la.nn.L1Loss, torch.nn.L1Loss, {}),
        (la.nn.SmoothL1Loss, torch.nn.SmoothL1Loss, {"beta": 0.5}),
        (la.nn.HuberLoss, torch.nn.HuberLoss, {"delta": 2.0}),
        (la.nn.PoissonNLLLoss, torch.nn.PoissonNLLLoss, {"log_input": True, "full": True}),
    ],
)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_modules_equal_torch_modules(module, torch_module, options, reduction):
    x, y = pair((5, 2), seed=3)
    y = y.abs() * 3  # valid counts for the Poisson case, harmless for the others
    close(
        module(**options, reduction=reduction)(x, y),
        torch_module(**options, reduction=reduction)(x, y),
    )


@pytest.mark.parametrize(
    ("log_input", "full", "eps", "reduction"),
    list(itertools.product([True, False], [False, True], [1e-8, 0.5], REDUCTIONS)),
)
def test_poisson_nll_parity(log_input, full, eps, reduction):
    g = torch.Generator().manual_seed(1)
    rate = torch.rand(5, 4, generator=g, dtype=F64) * 4 + 0.1
    # Counts 0, 1 and above, so full=True's Stirling term (targets > 1 only) is exercised.
    target = torch.poisson(rate, generator=g)
    target[0, :3] = torch.tensor([0.0, 1.0, 7.0], dtype=F64)
    input = rate.log() if log_input else rate
    kwargs = dict(log_input=log_input, full=full, eps=eps, reduction=reduction)
    ours, (gx,) = grads(lambda a: la.poisson_nll_loss(a, target, **kwargs), input)
    theirs, (tx,) = grads(lambda a: F.poisson_nll_loss(a, target, **kwargs), input)
    close(ours, theirs)
    close(gx, tx)


VAR_SHAPES = {
    "same": (4, 3),
    "one fewer dim": (4,),
    "singleton last": (4, 1),
}


@pytest.mark.parametrize("var_shape", list(VAR_SHAPES), ids=list(VAR_SHAPES))
@pytest.mark.parametrize(
    ("full", "eps", "reduction"), list(itertools.product([False, True], [1e-6, 0.3], REDUCTIONS))
)
def test_gaussian_nll_parity(var_shape, full, eps, reduction):
    x, y = pair((4, 3), seed=5)
    g = torch.Generator().manual_seed(6)
    var = torch.rand(*VAR_SHAPES[var_shape], generator=g, dtype=F64) + 0.05
    var.view(-1)[0] = 0.1  # below eps=0.3: clamped, with torch's pass-through gradient
    kwargs = dict(full=full, eps=eps, reduction=reduction)
    ours, (gx, gv) = grads(lambda a, v: la.gaussian_nll_loss(a, y, v, **kwargs), x, var)
    theirs, (tx, tv) = grads(lambda a, v: F.gaussian_nll_loss(a, y, v, **kwargs), x, var)
    close(ours, theirs)
    close(gx, tx)
    close(gv, tv)


def test_gaussian_nll_singleton_middle_dim_and_float_var():
    # torch documents var shaped like the input with one dimension set to 1, and a float.
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 4, generator=g, dtype=F64)
    y = torch.randn(2, 3, 4, generator=g, dtype=F64)
    var = torch.rand(2, 1, 4, generator=g, dtype=F64) + 0.5
    close(la.gaussian_nll_loss(x, y, var), F.gaussian_nll_loss(x, y, var))
    close(
        la.gaussian_nll_loss(x, y, 0.7, reduction="none"),
        F.gaussian_nll_loss(x, y, 0.7, reduction="none"),
    )
    module = la.nn.GaussianNLLLoss(full=True)
    close(module(x, y, var), torch.nn.GaussianNLLLoss(full=True)(x, y, var))


def test_gaussian_nll_hand_value():
    # 0.5 * (log 2 + (3 - 1)^2 / 2) = 0.5 * (0.693147 + 2), plus 0.5 log(2 pi) with full.
    x, y, var = (
        torch.tensor([3.0], dtype=F64),
        torch.tensor([1.0], dtype=F64),
        torch.tensor([2.0], dtype=F64),
    )
    close(la.gaussian_nll_loss(x, y, var), torch.tensor(0.5 * (math.log(2) + 2), dtype=F64))
    close(
        la.gaussian_nll_loss(x, y, var, full=True),
        torch.tensor(0.5 * (math.log(2) + 2) + 0.5 * math.log(2 * math.pi), dtype=F64),
    )


# --------------------------------------------------------------------------- identities


@pytest.mark.parametrize("delta", [0.2, 1.0, 3.0])
def test_huber_is_delta_times_smooth_l1(delta):
    x, y = pair((50,), seed=8, scale=3.0)
    huber, (gh,) = grads(lambda a: la.huber_loss(a, y, delta=delta, reduction="none"), x)
    smooth, (gs,) = grads(
        lambda a: delta * la.smooth_l1_loss(a, y, beta=delta, reduction="none"), x
    )
    close(huber, smooth)
    close(gh, gs)


def test_smooth_l1_beta_zero_is_l1_with_finite_gradients():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0], dtype=F64)
    y = torch.zeros(5, dtype=F64)
    value, (g,) = grads(lambda a: la.smooth_l1_loss(a, y, beta=0.0, reduction="none"), x)
    close(value, la.l1_loss(x, y, reduction="none"))
    assert torch.isfinite(g).all()
    close(g, torch.tensor([-1.0, -1.0, 0.0, 1.0, 1.0], dtype=F64))


def test_quantile_half_is_half_mae():
    # seeds/002_*: "分位数为0.5时,它就是MAE" (the pinball loss at 0.5 is half the MAE).
    x, y = pair((30,), seed=9)
    close(la.quantile_loss(x, y, quantile=0.5), 0.5 * la.l1_loss(x, y))


def test_pseudo_huber_limits():
    delta = 2.0
    small = torch.tensor([1e-4, -3e-3, 1e-2], dtype=F64)
    zero = torch.zeros(3, dtype=F64)
    # |r| << delta: r^2 / 2 (half the MSE), to relative order (r / delta)^2.
    close(
        la.pseudo_huber_loss(small, zero, delta=delta, reduction="none"),
        small**2 / 2,
        rtol=1e-4,
        atol=0,
    )
    # |r| >> delta: delta |r| - delta^2 + O(delta^3 / |r|), so the ratio to delta |r| -> 1.
    large = torch.tensor([1e4, -3e5], dtype=F64)
    value = la.pseudo_huber_loss(large, torch.zeros(2, dtype=F64), delta=delta, reduction="none")
    close(value, delta * large.abs() - delta**2, rtol=0, atol=delta**3 / 1e4)
    close(value / (delta * large.abs()), torch.ones(2, dtype=F64), rtol=1e-3, atol=0)


def test_pseudo_huber_equals_textbook_form():
    # delta^2 (sqrt(1 + (r / delta)^2) - 1), evaluated directly in float64 at moderate r.
    x, y = pair((40,), seed=10, scale=4.0)
    for delta in (0.5, 1.0, 3.0):
        r = x - y
        expected = delta**2 * (torch.sqrt(1 + (r / delta) ** 2) - 1)
        close(la.pseudo_huber_loss(x, y, delta=delta, reduction="none"), expected, rtol=1e-12)


def seed_logcosh(true, pred):
    # seeds/002_*, "Huber 和 Log-cosh 损失函数 Python代码": np.sum(np.log(np.cosh(pred - true)))
    return np.sum(np.log(np.cosh(pred - true)))


def seed_huber(true, pred, delta):
    # seeds/002_*, same section (the np.where form, summed).
    loss = np.where(
        np.abs(true - pred) < delta,
        0.5 * ((true - pred) ** 2),
        delta * np.abs(true - pred) - 0.5 * (delta**2),
    )
    return np.sum(loss)


def test_seed_formulas_for_huber_and_log_cosh():
    x, y = pair((25,), seed=11, scale=3.0)
    for delta in (0.5, 1.0, 2.0):
        ours = la.huber_loss(x, y, delta=delta, reduction="sum")
        assert float(ours) == pytest.approx(seed_huber(y.numpy(), x.numpy(), delta), rel=1e-12)
    assert float(la.log_cosh_loss(x, y, reduction="sum")) == pytest.approx(
        seed_logcosh(y.numpy(), x.numpy()), rel=1e-12
    )


def test_log_cosh_finite_and_exact_at_large_residuals():
    # The seeds' np.log(np.cosh(r)) overflows (cosh(1e4) = inf in float64); the stable form
    # gives |r| - log 2 + log1p(exp(-2|r|)), which is 1e4 - log 2 to float64 precision.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isinf(seed_logcosh(np.zeros(1), np.array([1e4])))
    r = torch.tensor([1e4, -1e4, 800.0, 30.0], dtype=torch.float32, requires_grad=True)
    value = la.log_cosh_loss(r, torch.zeros(4), reduction="none")
    reference = torch.tensor(
        [
            abs(v) - math.log(2) + math.log1p(math.exp(-2 * abs(v)))
            for v in (1e4, -1e4, 800.0, 30.0)
        ],
        dtype=F64,
    )
    close(value.double(), reference, rtol=1e-7, atol=0)
    value.sum().backward()
    close(r.grad.double(), torch.tanh(r.detach().double()), rtol=1e-6, atol=0)


def test_log_cosh_derivatives_exact_at_zero():
    # d/dr log cosh r = tanh r, d2/dr2 = sech^2 r = 1 at 0 (the branch-wise form keeps it).
    r = torch.tensor([0.0, 0.3, -2.0], dtype=F64, requires_grad=True)
    loss = la.log_cosh_loss(r, torch.zeros(3, dtype=F64), reduction="sum")
    (g,) = torch.autograd.grad(loss, r, create_graph=True)
    close(g, torch.tanh(r.detach()))
    hessian = torch.autograd.functional.hessian(
        lambda a: la.log_cosh_loss(a, torch.zeros(3, dtype=F64), reduction="sum"), r.detach()
    )
    close(torch.diagonal(hessian), 1 / torch.cosh(r.detach()) ** 2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "name",
    [
        "log_cosh_loss",
        "pseudo_huber_loss",
        "mse_loss",
        "smape_loss",
        "rmse_loss",
        "quantile_loss",
        "mape_loss",
    ],
)
def test_half_precision_large_residuals_give_finite_float32(name, dtype):
    x = torch.tensor([1e4, -1e4, 0.5], dtype=dtype, requires_grad=True)
    y = torch.tensor([1.0, 2.0, -0.5], dtype=dtype)
    loss = getattr(la, name)(x, y)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert torch.isfinite(x.grad).all()


def test_bf16_autocast_gives_float32():
    x, y = pair((4, 3), seed=12)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = la.log_cosh_loss(x.float().bfloat16(), y.float().bfloat16())
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


# --------------------------------------------------------------------------- RMSE


def test_rmse_reductions_and_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn reference")
    x, y = pair((20,), seed=13)
    # seeds/002_*: rmse = np.sqrt(metrics.mean_squared_error(y_true, y_pred)).
    expected = math.sqrt(sklearn_metrics.mean_squared_error(y.numpy(), x.numpy()))
    assert float(la.rmse_loss(x, y)) == pytest.approx(expected, rel=1e-12)
    close(la.rmse_loss(x, y), la.mse_loss(x, y).sqrt())
    close(la.rmse_loss(x, y, reduction="none"), (x - y).abs())
    close(la.rmse_loss(x, y, reduction="sum"), (x - y).abs().sum())


def test_rmse_gradient_finite_at_zero_error():
    x = torch.tensor([1.0, 2.0], dtype=F64, requires_grad=True)
    loss = la.rmse_loss(x, x.detach().clone())
    assert float(loss.detach()) == 0.0
    loss.backward()
    assert torch.equal(x.grad, torch.zeros(2, dtype=F64))
    # Away from zero the gradient is r / (N * RMSE).
    x.grad = None
    y = torch.tensor([0.0, 0.0], dtype=F64)
    la.rmse_loss(x, y).backward()
    close(x.grad, x.detach() / (2 * math.sqrt(2.5)))


def test_rmse_module_and_empty():
    x, y = pair((3, 2), seed=14)
    close(la.nn.RMSELoss()(x, y), la.rmse_loss(x, y))
    empty = torch.zeros(0, 3, dtype=F64, requires_grad=True)
    loss = la.rmse_loss(empty, torch.zeros(0, 3, dtype=F64))
    assert float(loss.detach()) == 0.0
    loss.backward()


# --------------------------------------------------------------------------- quantile


@pytest.mark.parametrize("q", [0.05, 0.3, 0.5, 0.9])
def test_quantile_equals_sklearn_mean_pinball_loss(q):
    sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn reference")
    x, y = pair((40,), seed=15)
    x[:3] = y[:3]  # exact zeros of the residual
    expected = sklearn_metrics.mean_pinball_loss(y.numpy(), x.numpy(), alpha=q)
    assert float(la.quantile_loss(x, y, quantile=q)) == pytest.approx(expected, rel=1e-12)


def test_many_quantiles_against_sklearn_per_column():
    sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn reference")
    g = torch.Generator().manual_seed(16)
    quantiles = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    x = torch.randn(30, 3, generator=g, dtype=F64)
    y = torch.randn(30, generator=g, dtype=F64)
    none = la.quantile_loss(x, y, quantile=quantiles, reduction="none")
    assert none.shape == (30, 3)
    per_column = [
        sklearn_metrics.mean_pinball_loss(y.numpy(), x[:, j].numpy(), alpha=float(q))
        for j, q in enumerate(quantiles)
    ]
    close(none.mean(dim=0), torch.tensor(per_column, dtype=F64), rtol=1e-12)
    assert float(la.quantile_loss(x, y, quantile=quantiles)) == pytest.approx(
        np.mean(per_column), rel=1e-12
    )
    # Each column equals the single-quantile loss.
    for j, q in enumerate(quantiles.tolist()):
        close(none[:, j], la.quantile_loss(x[:, j], y, quantile=q, reduction="none"))


def test_quantile_hand_values_and_asymmetry():
    # q = 0.9: under-prediction by 1 costs 0.9, over-prediction by 1 costs 0.1.
    y = torch.tensor([1.0, 1.0], dtype=F64)
    x = torch.tensor([0.0, 2.0], dtype=F64)
    close(
        la.quantile_loss(x, y, quantile=0.9, reduction="none"), torch.tensor([0.9, 0.1], dtype=F64)
    )


def test_quantile_module_registers_tensor_quantiles_as_buffer():
    quantiles = torch.tensor([0.25, 0.75])
    module = la.nn.QuantileLoss(quantile=quantiles)
    assert "quantile" in dict(module.named_buffers())
    assert "quantile" in module.state_dict()
    x, y = torch.randn(5, 2), torch.randn(5)
    close(module(x, y), la.quantile_loss(x, y, quantile=quantiles))
    assert module.double().quantile.dtype == F64


def test_quantile_tensor_errors():
    x = torch.randn(4, 2, dtype=F64)
    y = torch.randn(4, dtype=F64)
    with pytest.raises(
        ValueError,
        match=r"quantile must hold values in \(0, 1\), got 1.0 at "
        r"position 1",
    ):
        la.quantile_loss(x, y, quantile=torch.tensor([0.5, 1.0], dtype=F64))
    with pytest.raises(ValueError, match=r"last axis of 3 entries"):
        la.quantile_loss(x, y, quantile=torch.tensor([0.1, 0.5, 0.9], dtype=F64))
    with pytest.raises(
        ValueError,
        match=r"target must have the input's shape without its "
        r"quantile axis \(4,\), got \(4, 1\)",
    ):
        la.quantile_loss(x, y.unsqueeze(1), quantile=torch.tensor([0.1, 0.9], dtype=F64))
    with pytest.raises(ValueError, match=r"quantile must have shape \(\*,\)"):
        la.quantile_loss(x, y, quantile=torch.full((2, 1), 0.5, dtype=F64))
    with pytest.raises(TypeError, match=r"quantile must be a real number in \(0, 1\) or a torch"):
        la.quantile_loss(x, y, quantile="0.5")
    with la.value_checks(False):  # the range of a tensor's entries is a value check
        la.quantile_loss(x, y, quantile=torch.tensor([0.5, 1.0], dtype=F64))


# --------------------------------------------------------------------------- MAPE and SMAPE


def test_mape_equals_sklearn_including_zero_targets():
    sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn reference")
    x, y = pair((30,), seed=17)
    y[:2] = 0.0  # sklearn divides by max(|y|, float64 eps) there: huge but finite
    expected = sklearn_metrics.mean_absolute_percentage_error(y.numpy(), x.numpy())
    ours = la.mape_loss(x, y)
    assert torch.isfinite(ours)
    assert float(ours) == pytest.approx(expected, rel=1e-12)
    # sklearn's documented example: 0.3273...
    assert float(
        la.mape_loss(
            torch.tensor([2.5, 0.0, 2.0, 8.0], dtype=F64),
            torch.tensor([3.0, -0.5, 2.0, 7.0], dtype=F64),
        )
    ) == pytest.approx(
        sklearn_metrics.mean_absolute_percentage_error([3, -0.5, 2, 7], [2.5, 0.0, 2, 8])
    )


def test_mape_and_smape_match_seed_formulas_in_percent():
    # seeds/002_*, Evaluation_index.py: mape = np.mean(np.abs((y_pred - y_true) / y_true)) * 100
    # and smape = 2.0 * np.mean(np.abs(y_pred - y_true) / (np.abs(y_pred) + np.abs(y_true)))
    # * 100 (percentages; lossatlas returns fractions). The seed draws np.random.random(10).
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.random(10), rng.random(10)
    seed_mape = np.mean(np.abs((y_pred - y_true) / y_true)) * 100
    seed_smape = 2.0 * np.mean(np.abs(y_pred - y_true) / (np.abs(y_pred) + np.abs(y_true))) * 100
    x, y = torch.from_numpy(y_pred), torch.from_numpy(y_true)
    assert float(la.mape_loss(x, y)) * 100 == pytest.approx(seed_mape, rel=1e-12)
    assert float(la.smape_loss(x, y)) * 100 == pytest.approx(seed_smape, rel=1e-12)


def test_mape_eps_option():
    x = torch.tensor([1.0, 2.0], dtype=F64)
    y = torch.tensor([0.0, 4.0], dtype=F64)
    # |1 - 0| / max(0, 0.5) = 2 and |2 - 4| / 4 = 0.5.
    close(la.mape_loss(x, y, eps=0.5, reduction="none"), torch.tensor([2.0, 0.5], dtype=F64))
    with pytest.raises(ValueError, match=r"eps must be in \(0, inf\]"):
        la.mape_loss(x, y, eps=0.0)


def test_smape_zero_over_zero_is_zero_with_finite_gradient():
    x = torch.tensor([0.0, 0.0, 1.0], dtype=F64, requires_grad=True)
    y = torch.tensor([0.0, 2.0, 0.0], dtype=F64, requires_grad=True)
    value = la.smape_loss(x, y, reduction="none")
    close(value.detach(), torch.tensor([0.0, 2.0, 2.0], dtype=F64))
    value.sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()
    assert x.grad[0] == 0 and y.grad[0] == 0


def test_smape_bounded_and_symmetric():
    x, y = pair((200,), seed=18, scale=5.0)
    value = la.smape_loss(x, y, reduction="none")
    assert (value >= 0).all() and (value <= 2).all()
    close(value, la.smape_loss(y, x, reduction="none"))
    # Opposite signs reach the bound 2.
    close(la.smape_loss(torch.tensor([3.0]), torch.tensor([-1.0])), torch.tensor(2.0))


# --------------------------------------------------------------------------- seeds' MSE / MAE


def test_seed_mse_mae_sums_and_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn reference")
    x, y = pair((12,), seed=19)
    true, pred = y.numpy(), x.numpy()
    # seeds/002_*: mse = np.sum((true - pred)**2), mae = np.sum(np.abs(true - pred)).
    assert float(la.mse_loss(x, y, reduction="sum")) == pytest.approx(
        np.sum((true - pred) ** 2), rel=1e-12
    )
    assert float(la.l1_loss(x, y, reduction="sum")) == pytest.approx(
        np.sum(np.abs(true - pred)), rel=1e-12
    )
    assert float(la.mse_loss(x, y)) == pytest.approx(
        sklearn_metrics.mean_squared_error(true, pred), rel=1e-12
    )
    assert float(la.l1_loss(x, y)) == pytest.approx(
        sklearn_metrics.mean_absolute_error(true, pred), rel=1e-12
    )


# --------------------------------------------------------------------------- bad input

TWO_TENSOR = [
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "rmse_loss",
    "pseudo_huber_loss",
    "log_cosh_loss",
    "quantile_loss",
    "mape_loss",
    "smape_loss",
    "poisson_nll_loss",
]


def test_gaussian_shapes_raise():
    x, y = pair((4, 3))
    with pytest.raises(ValueError, match="target must have the same shape as input"):
        la.gaussian_nll_loss(x, y[:, :1], torch.ones(4, 3, dtype=F64))
    with pytest.raises(ValueError, match=r"var must have the input's shape \(4, 3\).*got \(3,\)"):
        la.gaussian_nll_loss(x, y, torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match=r"got \(4, 1, 1\)"):
        la.gaussian_nll_loss(
            x.view(4, 3, 1).expand(4, 3, 2),
            y.view(4, 3, 1).expand(4, 3, 2),
            torch.ones(4, 1, 1, dtype=F64),
        )


@pytest.mark.parametrize("name", TWO_TENSOR)
def test_integer_inputs_raise(name):
    x = torch.tensor([1, 2, 3])
    with pytest.raises(TypeError, match="input must be a floating-point tensor"):
        getattr(la, name)(x, x.double())
    with pytest.raises(TypeError, match="target must be a floating-point tensor"):
        getattr(la, name)(x.double(), x)


@pytest.mark.parametrize("name", [*TWO_TENSOR, "gaussian_nll_loss"])
def test_unknown_reduction_suggests(name):
    x = torch.rand(3, dtype=F64) + 0.5
    args = (x, x, x) if name == "gaussian_nll_loss" else (x, x)
    with pytest.raises(
        ValueError,
        match=r"reduction must be one of .* got 'meen'\. "
        r"Did you mean 'mean'\?",
    ):
        getattr(la, name)(*args, reduction="meen")


def test_poisson_value_checks():
    x = torch.tensor([0.5, 1.0], dtype=F64)
    with pytest.raises(
        ValueError,
        match=r"target must hold counts in \[0, inf\], got -1.0 at "
        r"position \(1,\)",
    ):
        la.poisson_nll_loss(x, torch.tensor([1.0, -1.0], dtype=F64))
    with pytest.raises(ValueError, match=r"input must hold rates \(log_input=False\)"):
        la.poisson_nll_loss(-x, torch.tensor([1.0, 2.0], dtype=F64), log_input=False)
    with pytest.raises(TypeError, match="full must be a bool"):
        la.poisson_nll_loss(x, x, full=1)
    with la.value_checks(False):
        la.poisson_nll_loss(x, torch.tensor([1.0, -1.0], dtype=F64))


def test_gaussian_value_checks():
    x, y = pair((3,))
    with pytest.raises(ValueError, match=r"var must hold variances in \[0, inf\], got -0.5"):
        la.gaussian_nll_loss(x, y, torch.tensor([1.0, -0.5, 1.0], dtype=F64))
    with pytest.raises(ValueError, match="var must be non-negative, got -1.0"):
        la.gaussian_nll_loss(x, y, -1.0)
    with pytest.raises(TypeError, match="var must be a tensor or a float"):
        la.gaussian_nll_loss(x, y, "1")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rmse_loss", "quantile_loss", "gaussian_nll_loss"])
def test_inductor_matches_eager(name):
    from lossatlas import testing

    testing.check_compile(la.get(name), backend="inductor")


# --------------------------------------------------------------------------- properties

residuals = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=8)


@given(r=residuals, delta=st.floats(0.05, 20.0))
def test_property_bounds_between_robust_losses(r, delta):
    r = torch.tensor(r, dtype=F64)
    zero = torch.zeros_like(r)
    log_cosh = la.log_cosh_loss(r, zero, reduction="none")
    # |r| - log 2 <= log cosh r <= min(r^2 / 2, |r|).
    assert (log_cosh >= r.abs() - math.log(2) - 1e-9).all()
    assert (log_cosh <= torch.minimum(r**2 / 2, r.abs()) + 1e-9).all()
    # Pseudo-Huber never exceeds Huber with the same delta (both r^2 / 2 at the origin).
    pseudo = la.pseudo_huber_loss(r, zero, delta=delta, reduction="none")
    huber = la.huber_loss(r, zero, delta=delta, reduction="none")
    assert (pseudo <= huber * (1 + 1e-12) + 1e-12).all()


@given(x=residuals, y=residuals, q=st.floats(0.01, 0.99))
def test_property_pinball_mirror_and_smape_bounds(x, y, q):
    n = min(len(x), len(y))
    x, y = torch.tensor(x[:n], dtype=F64), torch.tensor(y[:n], dtype=F64)
    # Swapping prediction and target mirrors the quantile: rho_q(y - x) = rho_{1-q}(x - y).
    close(
        la.quantile_loss(x, y, quantile=q, reduction="none"),
        la.quantile_loss(y, x, quantile=1 - q, reduction="none"),
    )
    smape = la.smape_loss(x, y, reduction="none")
    assert (smape >= 0).all() and (smape <= 2 + 1e-12).all()
