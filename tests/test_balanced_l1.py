"""Balanced L1 (Libra R-CNN): mmdetection's formula by hand, continuity, the gradient, errors.

References (mmdetection is not installed): the paper's equations 8-10 (Pang et al., CVPR 2019)
-- gradient ``alpha ln(b|x| + 1)`` below 1 and ``gamma`` above, ``alpha ln(b + 1) = gamma`` --
and ``mmdet/models/losses/balanced_l1_loss.py``, whose ``beta`` divides only the logarithm's
argument, written below as a scalar loop in float64.
"""

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import lossatlas as la

F64 = torch.float64


def close(actual, expected, *, rtol=1e-7, atol=1e-10):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def ref(x, alpha=0.5, gamma=1.5, beta=1.0):
    """mmdetection's balanced_l1_loss for one residual, b = e^(gamma / alpha) - 1."""
    b = math.exp(gamma / alpha) - 1
    d = abs(x)
    if d < beta:
        return alpha / b * (b * d + 1) * math.log(b * d / beta + 1) - alpha * d
    return gamma * d + gamma / b - alpha * beta


def zeros(n):
    return torch.zeros(n, dtype=F64)


@pytest.mark.parametrize(
    "options", [{}, {"alpha": 0.3, "gamma": 1.0}, {"beta": 0.5}, {"beta": 2.0, "alpha": 1.0}]
)
def test_equals_the_reference(options):
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(8, 4, generator=g, dtype=F64) * 1.5
    target = torch.randn(8, 4, generator=g, dtype=F64)
    expected = torch.tensor(
        [
            [ref(float(p - t), **options) for p, t in zip(a, c, strict=True)]
            for a, c in zip(pred, target, strict=True)
        ],
        dtype=F64,
    )
    close(la.balanced_l1_loss(pred, target, **options, reduction="none"), expected)
    close(la.balanced_l1_loss(pred, target, **options), expected.mean())


def test_b_is_computed_from_alpha_and_gamma():
    # alpha ln(b + 1) = gamma: the inlier gradient alpha ln(b|x| + 1) reaches gamma at |x| = 1.
    for alpha, gamma in ((0.5, 1.5), (0.2, 1.0), (1.0, 0.5)):
        b = la.detection.balanced_l1.balance_constant(alpha, gamma)
        assert math.isclose(alpha * math.log(b + 1), gamma, rel_tol=1e-12)
    assert math.isclose(la.detection.balanced_l1.balance_constant(0.5, 1.5), math.e**3 - 1)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_continuous_at_beta(beta):
    # Both branches give gamma * beta + gamma / b - alpha * beta at |x| = beta.
    b = math.e**3 - 1
    at = 1.5 * beta + 1.5 / b - 0.5 * beta
    for x in (beta, -beta):
        close(
            la.balanced_l1_loss(torch.tensor([x], dtype=F64), zeros(1), beta=beta),
            torch.tensor(at, dtype=F64),
        )
    h = 1e-9
    below = la.balanced_l1_loss(torch.tensor([beta - h], dtype=F64), zeros(1), beta=beta)
    above = la.balanced_l1_loss(torch.tensor([beta + h], dtype=F64), zeros(1), beta=beta)
    close(below, above, rtol=0, atol=1e-8)


def test_gradient_is_the_papers():
    # beta = 1: d ell / dx = alpha ln(b|x| + 1) sign(x) below 1, gamma sign(x) above.
    b = math.e**3 - 1
    x = torch.tensor([-2.5, -0.7, -0.01, 0.0, 0.2, 0.9, 1.3], dtype=F64, requires_grad=True)
    (grad,) = torch.autograd.grad(la.balanced_l1_loss(x, zeros(7), reduction="sum"), x)
    expected = [
        math.copysign(0.5 * math.log(b * abs(v) + 1) if abs(v) < 1 else 1.5, v) if v else 0.0
        for v in x.tolist()
    ]
    close(grad, torch.tensor(expected, dtype=F64))
    # and it meets gamma at |x| = 1 from below
    x = torch.tensor([1 - 1e-9], dtype=F64, requires_grad=True)
    (grad,) = torch.autograd.grad(la.balanced_l1_loss(x, zeros(1)), x)
    close(grad, torch.tensor([1.5], dtype=F64), rtol=1e-7, atol=1e-7)


def test_gradient_jumps_at_beta_other_than_one():
    # mmdetection's beta: below beta, d/dx = alpha ln(b x / beta + 1) + alpha (b x + 1) /
    # (b x + beta) - alpha (the derivative of its formula by hand), not gamma at x = beta.
    b, alpha, beta = math.e**3 - 1, 0.5, 2.0
    x = torch.tensor([0.3, beta - 1e-9, beta + 1e-9], dtype=F64, requires_grad=True)
    (grad,) = torch.autograd.grad(la.balanced_l1_loss(x, zeros(3), beta=beta, reduction="sum"), x)
    inner = [
        alpha * math.log(b * v / beta + 1) + alpha * (b * v + 1) / (b * v + beta) - alpha
        for v in (0.3, beta)
    ]
    close(grad, torch.tensor([inner[0], inner[1], 1.5], dtype=F64), rtol=1e-7, atol=1e-7)
    assert abs(inner[1] - 1.5) > 1e-2  # 1.4876 from below, 1.5 from above


def test_dips_below_zero_for_beta_above_one():
    # slope alpha (1 / beta - 1) at 0: negative for beta > 1 (mmdetection's formula as it is)
    value = la.balanced_l1_loss(torch.tensor([0.05], dtype=F64), zeros(1), beta=2.0)
    assert value < 0
    close(value, torch.tensor(ref(0.05, beta=2.0), dtype=F64))


def test_weight_and_avg_factor():
    g = torch.Generator().manual_seed(1)
    pred, target = (
        torch.randn(5, 4, generator=g, dtype=F64),
        torch.randn(5, 4, generator=g, dtype=F64),
    )
    values = la.balanced_l1_loss(pred, target, reduction="none")
    weight = (torch.rand(5, 4, generator=g, dtype=F64) > 0.5).to(F64)  # mmdetection's bbox_weights
    close(la.balanced_l1_loss(pred, target, weight=weight), (values * weight).mean())
    close(
        la.balanced_l1_loss(pred, target, weight=weight, avg_factor=3.0),
        (values * weight).sum() / 3.0,
    )
    per_box = torch.rand(5, 1, generator=g, dtype=F64)
    close(
        la.balanced_l1_loss(pred, target, weight=per_box, reduction="sum"), (values * per_box).sum()
    )
    m = la.nn.BalancedL1Loss(beta=0.5)
    close(
        m(pred, target, weight=weight, avg_factor=2.0),
        la.balanced_l1_loss(pred, target, beta=0.5, weight=weight, avg_factor=2.0),
    )
    with pytest.raises(ValueError, match="cannot be used with reduction='sum'"):
        la.balanced_l1_loss(pred, target, avg_factor=2.0, reduction="sum")


def test_errors():
    x = torch.zeros(2, 4)
    with pytest.raises(ValueError, match="target must have the same shape as input"):
        la.balanced_l1_loss(x, torch.zeros(2, 3))
    with pytest.raises(TypeError, match="input must be a floating-point tensor"):
        la.balanced_l1_loss(x.long(), x)
    with pytest.raises(ValueError, match=r"weight must broadcast .* \(2, 4\)"):
        la.balanced_l1_loss(x, x, weight=torch.ones(2))
    for name in ("alpha", "gamma", "beta"):
        with pytest.raises(ValueError, match=f"{name} must be in"):
            la.balanced_l1_loss(x, x, **{name: 0.0})
    with pytest.raises(ValueError, match=r"gamma / alpha must be at most ~709"):
        la.balanced_l1_loss(x, x, alpha=1e-3, gamma=1.5)


@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([1e-3, 1.0, 10.0, 1e4]))
def test_non_negative_below_l1_slope_and_finite(seed, scale):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, generator=g, dtype=F64) * scale
    value = la.balanced_l1_loss(x, zeros(16), reduction="none")
    assert torch.isfinite(value).all() and (value >= 0).all()
    # beta <= 1 keeps it non-negative too
    assert (la.balanced_l1_loss(x, zeros(16), beta=0.3, reduction="none") >= 0).all()
