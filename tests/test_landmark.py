"""Wing and Adaptive Wing losses against their papers' equations, worked by hand in float64.

Sources: Feng et al., "Wing Loss for Robust Facial Landmark Localisation with Convolutional
Neural Networks", CVPR 2018 (https://arxiv.org/abs/1711.06753), the equation that defines
``wing(x)`` and its constant ``C``; Wang et al., "Adaptive Wing Loss for Robust Face Alignment
via Heatmap Regression", ICCV 2019 (https://arxiv.org/abs/1904.07399), the equation that
defines ``AWing(y, y_hat)`` with ``A`` and ``C`` (from the continuity of value and slope at
``theta``). (Equation numbers are not given here: the paper text was not at hand to check
them.) The official AWing repository
(protossw512/AdaptiveWingLoss) ships evaluation code only, no loss, so the paper is the source.
The expected values are written out with :mod:`math`, element by element.
"""

import math

import pytest
import torch

import lossatlas as la

F64 = torch.float64


def close(actual, expected, *, rtol=1e-10, atol=1e-12):
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def wing_by_hand(r, w=10.0, eps=2.0):
    c = w - w * math.log(1 + w / eps)
    return w * math.log(1 + abs(r) / eps) if abs(r) < w else abs(r) - c


def awing_by_hand(pred, y, alpha=2.1, omega=14.0, eps=1.0, theta=0.5):
    d = abs(y - pred)
    p = alpha - y
    if d < theta:
        return omega * math.log(1 + (d / eps) ** p)
    a = omega * (1 / (1 + (theta / eps) ** p)) * p * (theta / eps) ** (p - 1) / eps
    c = theta * a - omega * math.log(1 + (theta / eps) ** p)
    return a * d - c


def derivative(fn, x, h=1e-6):
    """Central difference in float64."""
    return (fn(x + h) - fn(x - h)) / (2 * h)


# --------------------------------------------------------------------------- Wing


@pytest.mark.parametrize(("w", "eps"), [(10.0, 2.0), (5.0, 0.5), (1.0, 3.0)])
def test_wing_matches_the_paper(w, eps):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, generator=g, dtype=F64) * 2 * w
    y = torch.randn(6, 4, generator=g, dtype=F64)
    expected = torch.tensor(
        [
            [wing_by_hand(a - b, w, eps) for a, b in zip(row_x, row_y, strict=True)]
            for row_x, row_y in zip(x.tolist(), y.tolist(), strict=True)
        ],
        dtype=F64,
    )
    close(la.wing_loss(x, y, omega=w, epsilon=eps, reduction="none"), expected)
    close(la.wing_loss(x, y, omega=w, epsilon=eps), expected.mean())
    close(la.nn.WingLoss(omega=w, epsilon=eps, reduction="sum")(x, y), expected.sum())


def test_wing_value_continuous_slope_jumps_at_omega():
    w, eps = 10.0, 2.0

    def f(r):
        return la.wing_loss(torch.tensor([r], dtype=F64), torch.zeros(1, dtype=F64)).item()

    below, above = f(w - 1e-9), f(w + 1e-9)
    assert abs(below - above) < 1e-8  # C joins the values
    # The paper joins only the values: the slope goes from w / (w + eps) to 1.
    assert derivative(f, w - 1e-3) == pytest.approx(w / (w + eps - 1e-3), rel=1e-6)
    assert derivative(f, w + 1e-3) == pytest.approx(1.0, rel=1e-8)
    # and at 0 the slope is w / eps on either side (a kink, like L1)
    assert derivative(f, 1e-4, h=1e-8) == pytest.approx(w / (eps + 1e-4), rel=1e-5)


def test_wing_mmpose_reduction_is_sum_over_batch():
    # mmpose: mean over the batch of the sum over keypoints and coordinates.
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(3, 5, 2, generator=g, dtype=F64) * 8, torch.zeros(3, 5, 2, dtype=F64)
    per = la.wing_loss(x, y, reduction="none")
    close(la.wing_loss(x, y, reduction="sum") / 3, per.sum(dim=(1, 2)).mean())


# --------------------------------------------------------------------------- Adaptive Wing


def test_adaptive_wing_matches_the_paper():
    g = torch.Generator().manual_seed(2)
    y = torch.rand(5, 6, generator=g, dtype=F64)
    y[0, :3] = torch.tensor([0.0, 1.0, 0.5], dtype=F64)
    pred = y + torch.randn(5, 6, generator=g, dtype=F64) * 0.6
    for options in ({}, {"alpha": 2.5, "omega": 5.0, "epsilon": 0.5, "theta": 0.3}):
        expected = torch.tensor(
            [
                [awing_by_hand(p, t, **_paper_names(options)) for p, t in zip(rp, rt, strict=True)]
                for rp, rt in zip(pred.tolist(), y.tolist(), strict=True)
            ],
            dtype=F64,
        )
        close(la.adaptive_wing_loss(pred, y, **options, reduction="none"), expected)
        close(la.nn.AdaptiveWingLoss(**options)(pred, y), expected.mean())


def _paper_names(options):
    return {("eps" if k == "epsilon" else k): v for k, v in options.items()}


@pytest.mark.parametrize("y", [0.0, 0.3, 0.8, 1.0])
def test_adaptive_wing_value_and_slope_continuous_at_theta(y):
    theta = 0.5

    def f(pred):
        return la.adaptive_wing_loss(
            torch.tensor([pred], dtype=F64), torch.tensor([y], dtype=F64), reduction="sum"
        ).item()

    for side in (1.0, -1.0):  # over- and under-prediction
        at = y + side * theta
        assert abs(f(at - side * 1e-10) - f(at + side * 1e-10)) < 1e-8
        inner = derivative(f, at - side * 1e-4, h=1e-7)
        outer = derivative(f, at + side * 1e-4, h=1e-7)
        assert inner == pytest.approx(outer, rel=1e-3, abs=1e-3)  # A is the slope at theta


def test_adaptive_wing_gradients_are_finite_at_zero_error():
    y = torch.tensor([0.0, 0.4, 1.0], dtype=F64, requires_grad=True)
    pred = y.detach().clone().requires_grad_(True)
    la.adaptive_wing_loss(pred, y, reduction="sum").backward()
    assert torch.equal(pred.grad, torch.zeros(3, dtype=F64))  # exponent > 1: flat at 0
    assert torch.isfinite(y.grad).all()
    assert torch.autograd.gradcheck(
        lambda p, t: la.adaptive_wing_loss(p, t, reduction="none"),
        (
            torch.tensor([0.2, 0.9, -0.3], dtype=F64, requires_grad=True),
            torch.tensor([0.1, 0.5, 0.7], dtype=F64, requires_grad=True),
        ),
    )


def test_adaptive_wing_differs_from_the_omega_snippet():
    # The widely copied snippet uses |r / omega| in the log piece: not the paper's (and not
    # continuous at theta).
    pred, y = torch.tensor([0.3], dtype=F64), torch.tensor([0.0], dtype=F64)
    snippet = 14 * math.log(1 + (0.3 / 14) ** 2.1)
    paper = 14 * math.log(1 + 0.3**2.1)
    assert la.adaptive_wing_loss(pred, y).item() == pytest.approx(paper, rel=1e-12)
    assert abs(paper - snippet) > 1.0


# --------------------------------------------------------------------------- errors


def test_errors():
    x, y = torch.rand(4, 3, dtype=F64), torch.rand(4, 3, dtype=F64)
    with pytest.raises(ValueError, match="target must hold heatmap values in"):
        la.adaptive_wing_loss(x, y + 1.5)
    with pytest.raises(ValueError, match="alpha"):
        la.adaptive_wing_loss(x, y, alpha=1.0)
    for name in ("omega", "epsilon", "theta"):
        with pytest.raises(ValueError, match=name):
            la.adaptive_wing_loss(x, y, **{name: 0.0})
    for name in ("omega", "epsilon"):
        with pytest.raises(ValueError, match=name):
            la.wing_loss(x, y, **{name: -1.0})
        with pytest.raises(ValueError, match=name):
            la.nn.WingLoss(**{name: 0.0})
    for fn in (la.wing_loss, la.adaptive_wing_loss):
        with pytest.raises(ValueError, match="target must have the same shape"):
            fn(x, y[:, :2])
        with pytest.raises(TypeError, match="target"):
            fn(x, y.long())
