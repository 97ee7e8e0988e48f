"""Barron's general robust loss and its special cases; MSLE.

Reference sources: the installed kornia (``kornia.losses.charbonnier_loss``, ``cauchy_loss``,
``geman_mcclure_loss``, ``welsch_loss``: Barron's rho at scale 1), Barron's formula (CVPR 2019,
eq. 1 and its limits, eq. 2-3 of https://arxiv.org/abs/1701.03077) written out in float64 in
the tests, ``torch.nn.functional.mse_loss`` and ``lossatlas.pseudo_huber_loss`` for the
identities. MSLE: Keras's documented outputs (``keras.losses.MeanSquaredLogarithmicError``
docstring: 0.240; the metric's: 0.12011322), Keras's numpy formula
``mean(square(log(maximum(y, 1e-7) + 1) - log(maximum(p, 1e-7) + 1)))`` in float64, and
scikit-learn's installed ``mean_squared_log_error``.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lossatlas as la

kornia_losses = pytest.importorskip("kornia.losses")

F64 = torch.float64
REDUCTIONS = ["none", "mean", "sum"]


def close(actual, expected, *, rtol=1e-7, atol=1e-12):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def pair(shape=(5, 3), seed=0, scale=3.0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=F64) * scale
    y = torch.randn(shape, generator=g, dtype=F64)
    return x.to(dtype), y.to(dtype)


def value_and_grads(fn, x, y, **options):
    x = x.detach().clone().requires_grad_(True)
    y = y.detach().clone().requires_grad_(True)
    out = fn(x, y, **options)
    out.sum().backward()
    return out.detach(), x.grad, y.grad


def barron_by_hand(r, alpha, c):
    """Barron's eq. 1 in float64, for alpha away from 0 and 2 (no stabilisation)."""
    b = abs(alpha - 2.0)
    return b / alpha * (((r / c) ** 2 / b + 1.0) ** (alpha / 2.0) - 1.0)


# --------------------------------------------------------------------------- kornia parity

NAMED = [
    ("charbonnier_loss", kornia_losses.charbonnier_loss, 1.0),
    ("cauchy_loss", kornia_losses.cauchy_loss, 0.0),
    ("geman_mcclure_loss", kornia_losses.geman_mcclure_loss, -2.0),
    ("welsch_loss", kornia_losses.welsch_loss, -math.inf),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(("name", "theirs", "alpha"), NAMED, ids=[n for n, _, _ in NAMED])
def test_named_losses_equal_kornia_at_scale_one(name, theirs, alpha, reduction):
    x, y = pair()
    ours = value_and_grads(getattr(la, name), x, y, reduction=reduction)
    ref = value_and_grads(theirs, x, y, reduction=reduction)
    for a, b in zip(ours, ref, strict=True):
        close(a, b)
    # The general form at the same alpha is the same function (Barron, eq. 2-3 special cases).
    general = value_and_grads(la.general_robust_loss, x, y, alpha=alpha, reduction=reduction)
    for a, b in zip(general, ref, strict=True):
        close(a, b)


@pytest.mark.parametrize("scale", [0.25, 2.0])
@pytest.mark.parametrize(("name", "theirs", "alpha"), NAMED, ids=[n for n, _, _ in NAMED])
def test_scale_is_kornia_on_scaled_inputs(name, theirs, alpha, scale):
    # kornia has no scale argument: rho(x - y, alpha, c) = kornia(x / c, y / c).
    x, y = pair(seed=1)
    expected = theirs(x / scale, y / scale, reduction="none")
    close(getattr(la, name)(x, y, scale=scale, reduction="none"), expected)
    close(la.general_robust_loss(x, y, alpha=alpha, scale=scale, reduction="none"), expected)


def test_kornia_default_reduction_is_none_ours_is_mean():
    x, y = pair(seed=2)
    close(la.cauchy_loss(x, y), kornia_losses.cauchy_loss(x, y).mean())
    assert kornia_losses.cauchy_loss(x, y).shape == x.shape


def test_modules_equal_functionals():
    x, y = pair(seed=3)
    cases = [
        (la.nn.GeneralRobustLoss(alpha=0.5, scale=2.0), la.general_robust_loss, {"alpha": 0.5}),
        (la.nn.CharbonnierLoss(scale=2.0), la.charbonnier_loss, {}),
        (la.nn.CauchyLoss(scale=2.0), la.cauchy_loss, {}),
        (la.nn.GemanMcClureLoss(scale=2.0), la.geman_mcclure_loss, {}),
        (la.nn.WelschLoss(scale=2.0), la.welsch_loss, {}),
    ]
    for module, functional, options in cases:
        close(module(x, y), functional(x, y, scale=2.0, **options))
    alpha = torch.tensor([1.0, 0.0, -2.0], dtype=F64)
    module = la.nn.GeneralRobustLoss(alpha=alpha, reduction="none")
    assert "alpha" in dict(module.named_buffers())
    close(module(x, y), la.general_robust_loss(x, y, alpha=alpha, reduction="none"))


# --------------------------------------------------------------------------- identities


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_alpha_two_is_half_the_mse_over_scale_squared(scale, reduction):
    x, y = pair(seed=4)
    expected = F.mse_loss(x, y, reduction=reduction) / (2 * scale**2)
    ours = la.general_robust_loss(x, y, alpha=2.0, scale=scale, reduction=reduction)
    close(ours, expected)


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_charbonnier_is_pseudo_huber_over_scale_squared(scale):
    x, y = pair(seed=5)
    expected = la.pseudo_huber_loss(x, y, delta=scale, reduction="none") / scale**2
    close(la.charbonnier_loss(x, y, scale=scale, reduction="none"), expected)
    close(la.general_robust_loss(x, y, alpha=1.0, scale=scale, reduction="none"), expected)
    # and the formula by hand: sqrt((r / c)^2 + 1) - 1
    close(expected, torch.sqrt(((x - y) / scale) ** 2 + 1) - 1)


@pytest.mark.parametrize("alpha", [-7.0, -1.0, -0.3, 0.5, 1.5, 3.0, 6.0])
@pytest.mark.parametrize("scale", [0.7, 2.0])
def test_general_matches_barrons_formula(alpha, scale):
    x, y = pair(seed=6)
    expected = barron_by_hand(x - y, alpha, scale)
    close(la.general_robust_loss(x, y, alpha=alpha, scale=scale, reduction="none"), expected)


def test_limits_by_hand():
    # Barron eq. 2-3: alpha = 0 -> log(z / 2 + 1), alpha = -inf -> 1 - exp(-z / 2).
    r = torch.tensor([0.0, 0.1, 1.0, 4.0, 30.0], dtype=F64)
    zero = torch.zeros_like(r)
    z = r**2
    close(la.general_robust_loss(r, zero, alpha=0.0, reduction="none"), torch.log(z / 2 + 1))
    close(
        la.general_robust_loss(r, zero, alpha=-math.inf, reduction="none"),
        1 - torch.exp(-z / 2),
    )
    close(la.geman_mcclure_loss(r, zero, reduction="none"), 2 * z / (z + 4))
    close(la.general_robust_loss(r, zero, alpha=-1e9, reduction="none"), 1 - torch.exp(-z / 2))


# --------------------------------------------------------------------------- continuity in alpha


def _alpha_grads(alpha, x):
    a = torch.tensor(alpha, dtype=F64, requires_grad=True)
    x = x.detach().clone().requires_grad_(True)
    value = la.general_robust_loss(x, torch.zeros_like(x), alpha=a, reduction="sum")
    value.backward()
    return value.detach(), x.grad, a.grad


@pytest.mark.parametrize("singular", [0.0, 2.0])
def test_value_and_input_gradient_continuous_through_singular_alphas(singular):
    x = torch.tensor([1e-3, 0.3, 1.0, 2.5, 40.0, 1e4], dtype=F64)
    at, gx_at, _ = _alpha_grads(singular, x)
    for delta in (1e-3, 1e-6, 1e-9, 1e-12):
        for side in (-1.0, 1.0):
            near, gx_near, _ = _alpha_grads(singular + side * delta, x)
            # rho is continuous in alpha; near 2 it moves like delta * log(1 / delta).
            tolerance = 50 * delta * max(1.0, math.log(1 / delta)) + 1e-13
            close(near, at, rtol=tolerance, atol=0)
            close(gx_near, gx_at, rtol=tolerance, atol=1e-15)


def test_alpha_gradient_continuous_at_zero_and_matches_finite_differences():
    x = torch.tensor([0.2, 1.0, 3.0, 20.0], dtype=F64)
    _, _, ga0 = _alpha_grads(0.0, x)
    h = 1e-5
    plus, _, _ = _alpha_grads(h, x)
    minus, _, _ = _alpha_grads(-h, x)
    close(ga0, (plus - minus) / (2 * h), rtol=1e-8, atol=0)
    for delta in (1e-4, 1e-8):
        close(_alpha_grads(delta, x)[2], ga0, rtol=10 * delta, atol=0)


def test_gradcheck_in_input_and_alpha_tensor():
    x, y = pair((4, 3), seed=7)
    alpha = torch.tensor([0.0, 1.3, -4.0], dtype=F64, requires_grad=True)
    x.requires_grad_(True)

    def fn(x, alpha):
        return la.general_robust_loss(x, y, alpha=alpha, scale=1.5, reduction="none")

    assert torch.autograd.gradcheck(fn, (x, alpha))
    assert torch.autograd.gradgradcheck(fn, (x, alpha))


@pytest.mark.parametrize("alpha", [2.0, 2.0 - 2**-23, 0.0, 1e-7, 4.0, -math.inf])
def test_float32_extremes_are_finite(alpha):
    x = torch.tensor([0.0, 1e-20, 1.0, 1e4, 1e6], dtype=torch.float32, requires_grad=True)
    value = la.general_robust_loss(x, torch.zeros_like(x), alpha=alpha, reduction="none")
    value.sum().backward()
    assert torch.isfinite(value).all() and torch.isfinite(x.grad).all()
    expected = la.general_robust_loss(
        x.detach().double(), torch.zeros(5, dtype=F64), alpha=alpha, reduction="none"
    )
    close(value.double(), expected, rtol=1e-5, atol=1e-30)


def test_alpha_per_dimension_equals_one_call_per_column():
    x, y = pair((6, 4), seed=8)
    alphas = [2.0, 1.0, 0.0, -math.inf]
    ours = la.general_robust_loss(x, y, alpha=torch.tensor(alphas, dtype=F64), reduction="none")
    for j, a in enumerate(alphas):
        close(ours[:, j], la.general_robust_loss(x[:, j], y[:, j], alpha=a, reduction="none"))
    # a float32 alpha with a float64 input is computed in float64
    half = la.general_robust_loss(x, y, alpha=torch.tensor(alphas), reduction="none")
    assert half.dtype == F64


def test_bounded_losses_stay_below_their_bound():
    big = torch.tensor([1e3, 1e8], dtype=F64)
    assert (la.geman_mcclure_loss(big, torch.zeros(2, dtype=F64), reduction="none") <= 2).all()
    assert (la.welsch_loss(big, torch.zeros(2, dtype=F64), reduction="none") <= 1).all()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("alpha", "error", "words"),
    [
        (math.nan, ValueError, "alpha must be a real number or -inf"),
        (math.inf, ValueError, "alpha must be a real number or -inf"),
        ("1", TypeError, "alpha must be"),
        (True, TypeError, "alpha must be"),
        (torch.tensor([1.0, math.nan, 0.0]), ValueError, "alpha must hold"),
        (torch.tensor([1.0, math.inf, 0.0]), ValueError, "alpha must hold"),
        (torch.tensor([1, 2, 0]), TypeError, "alpha"),
        (torch.ones(2), ValueError, "alpha must broadcast"),
        (torch.ones(2, 5, 3), ValueError, "alpha must broadcast"),
    ],
)
def test_bad_alpha(alpha, error, words):
    x, y = pair()
    with pytest.raises(error, match=words):
        la.general_robust_loss(x, y, alpha=alpha)


@pytest.mark.parametrize("name", ["general_robust_loss", *[n for n, _, _ in NAMED]])
def test_bad_scale_shapes_and_dtypes(name):
    fn = getattr(la, name)
    x, y = pair()
    for scale in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="scale"):
            fn(x, y, scale=scale)
    with pytest.raises(ValueError, match="target must have the same shape"):
        fn(x, y[:, :2])
    with pytest.raises(TypeError, match="input"):
        fn(x.long(), y)
    with pytest.raises(ValueError, match="reduction"):
        fn(x, y, reduction="avg")


# --------------------------------------------------------------------------- MSLE


def keras_msle_by_hand(pred, true, eps=1e-7):
    pred, true = np.asarray(pred, dtype=np.float64), np.asarray(true, dtype=np.float64)
    return np.square(np.log(np.maximum(true, eps) + 1.0) - np.log(np.maximum(pred, eps) + 1.0))


def test_msle_keras_documented_values():
    true = torch.tensor([[0.0, 1.0], [0.0, 0.0]], dtype=F64)
    # keras.losses.MeanSquaredLogarithmicError docstring: 0.240
    value = la.msle_loss(torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=F64), true)
    assert value.item() == pytest.approx(0.240, abs=5e-4)
    # keras.metrics.MeanSquaredLogarithmicError docstring: 0.12011322
    value = la.msle_loss(torch.tensor([[1.0, 1.0], [0.0, 0.0]], dtype=F64), true)
    assert value.item() == pytest.approx(0.12011322, rel=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_msle_matches_keras_formula_including_negatives(reduction):
    g = torch.Generator().manual_seed(9)
    pred = torch.randn(5, 4, generator=g, dtype=F64) * 3  # many negative predictions
    true = torch.rand(5, 4, generator=g, dtype=F64) * 5
    true[0, 0] = -2.0  # a negative target is clipped too, as in Keras
    per = torch.from_numpy(keras_msle_by_hand(pred.numpy(), true.numpy()))
    expected = {"none": per, "mean": per.mean(), "sum": per.sum()}[reduction]
    close(la.msle_loss(pred, true, reduction=reduction), expected)
    close(la.nn.MSLELoss(reduction=reduction)(pred, true), expected)


def test_msle_clipped_predictions_get_no_gradient():
    pred = torch.tensor([-3.0, 0.0, 2.0], dtype=F64, requires_grad=True)
    la.msle_loss(pred, torch.ones(3, dtype=F64), reduction="sum").backward()
    assert pred.grad[0] == 0 and pred.grad[1] == 0 and pred.grad[2] > 0
    # d/dp (log1p(p) - log1p(1))^2 = 2 (log 3 - log 2) / 3 at p = 2, by hand
    assert pred.grad[2].item() == pytest.approx(2 * (math.log(3) - math.log(2)) / 3, rel=1e-12)


def test_msle_scikit_learn_parity_and_difference():
    metrics = pytest.importorskip("sklearn.metrics")
    g = torch.Generator().manual_seed(10)
    pred = torch.rand(30, generator=g, dtype=F64) * 10 + 1e-3
    true = torch.rand(30, generator=g, dtype=F64) * 10 + 1e-3
    expected = metrics.mean_squared_log_error(true.numpy(), pred.numpy())
    assert la.msle_loss(pred, true).item() == pytest.approx(expected, rel=1e-12)
    # scikit-learn takes log1p of values in (-1, 0); here (as in Keras) they count as eps
    negative = torch.tensor([-0.5, 1.0], dtype=F64)
    theirs = metrics.mean_squared_log_error([1.0, 1.0], negative.numpy())
    ours = la.msle_loss(negative, torch.ones(2, dtype=F64)).item()
    assert ours == pytest.approx(keras_msle_by_hand([-0.5, 1.0], [1.0, 1.0]).mean(), rel=1e-12)
    assert ours < theirs
    # eps=0 clips at 0
    zero_eps = la.msle_loss(negative, torch.ones(2, dtype=F64), eps=0.0).item()
    assert zero_eps == pytest.approx(math.log(2) ** 2 / 2, rel=1e-12)


def test_msle_errors():
    x, y = pair()
    with pytest.raises(ValueError, match="eps"):
        la.msle_loss(x, y, eps=-1e-3)
    with pytest.raises(ValueError, match="eps"):
        la.nn.MSLELoss(eps=math.nan)
    with pytest.raises(ValueError, match="target must have the same shape"):
        la.msle_loss(x, y[:, :2])
    with pytest.raises(TypeError, match="input"):
        la.msle_loss(x.int(), y)
